// The demo page (templates/index.html): a todo list kept live by rest-live.js.
// Its state comes from a snapshot subscription, never from a separate REST load, so no change
// can slip in between loading and listening. Writes go through the REST API; the page then
// hears about them like every other page does, through the socket.

import { LiveClient, LiveMap } from "../rest_live/rest-live.js";

const STATUS_TEXT = {
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Offline",
};

const app = document.getElementById("app");
const list = document.getElementById("todos");
const empty = document.getElementById("empty");
const status = document.getElementById("status");
const errorBox = document.getElementById("error");
const form = document.getElementById("new-todo"); // only for signed-in users
const signedIn = app.dataset.signedIn === "true";
const api = app.dataset.api;

// pk -> the todo as the server last sent it. A snapshot replaces it; the changes of one
// transaction (or a reconnect's catch-up) are applied together, and the page drawn once after.
const todos = new LiveMap();

const live = new LiveClient(app.dataset.socket);
live.on("status", (value) => {
  status.dataset.status = value;
  status.textContent = STATUS_TEXT[value];
});
live.on("error", (error) => showError(error.message));
live.on("transaction", () => render());
live.subscribe(
  { model: "todos.Todo", action: "list", snapshot: true },
  (action, data, info) => {
    todos.apply(action, data, info);
    if (action === "SNAPSHOT") render();
  },
  (error) => {
    // Refused (a re-sync after the login ended, say): the page shows nothing of it, as REST.
    todos.clear();
    render();
    showError(`The live list was refused: ${error.message}`);
  },
);

// --- rendering: one <li> per todo, updated in place so focus survives changes ----------------

function render() {
  const ordered = [...todos.values()].sort(
    (a, b) => Date.parse(a.created_at) - Date.parse(b.created_at) || a.id - b.id,
  );
  const ids = new Set(ordered.map((todo) => String(todo.id)));
  for (const item of [...list.children]) {
    if (!ids.has(item.dataset.id)) item.remove();
  }
  let previous = null;
  for (const todo of ordered) {
    const item = list.querySelector(`li[data-id="${todo.id}"]`) ?? createItem(todo.id);
    updateItem(item, todo);
    const expected = previous ? previous.nextElementSibling : list.firstElementChild;
    if (item !== expected) list.insertBefore(item, expected);
    previous = item;
  }
  empty.textContent = "Nothing to do.";
  empty.hidden = todos.size > 0;
}

function createItem(id) {
  const item = element("li", { className: "todo" });
  item.dataset.id = id;
  if (signedIn) {
    const box = element("input", { type: "checkbox", id: `todo-${id}`, className: "done" });
    item.append(box, element("label", { htmlFor: box.id, className: "title" }));
  } else {
    const mark = element("span", { className: "mark" });
    mark.setAttribute("role", "img");
    item.append(mark, element("span", { className: "title" }));
  }
  item.append(element("span", { className: "tags" }), element("span", { className: "owner" }));
  if (signedIn) item.append(element("button", { type: "button", className: "delete" }));
  return item;
}

function updateItem(item, todo) {
  item.dataset.done = todo.done;
  item.querySelector(".title").textContent = todo.title;
  item.querySelector(".tags").textContent = (todo.tags ?? []).map((tag) => `#${tag}`).join(" ");
  item.querySelector(".owner").textContent = todo.owner ?? "";
  const box = item.querySelector("input.done");
  if (box) box.checked = todo.done;
  const mark = item.querySelector(".mark");
  if (mark) mark.setAttribute("aria-label", todo.done ? "Done:" : "To do:");
  const remove = item.querySelector("button.delete");
  if (remove) {
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete “${todo.title}”`);
  }
}

function element(tag, properties) {
  return Object.assign(document.createElement(tag), properties);
}

// --- writes: REST calls with the CSRF token; the socket brings the result ---------------------

async function write(method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: {
      Accept: "application/json",
      "Content-Type": "application/json",
      "X-CSRFToken": app.dataset.csrfToken,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const detail = await response.json().catch(() => ({}));
    const message = detail.detail ?? Object.values(detail).flat().join(" ");
    throw new Error(message || `The server answered ${response.status}.`);
  }
  showError("");
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

if (signedIn) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = form.elements.title;
    try {
      await write("POST", api, { title: input.value.trim() });
      input.value = "";
    } catch (error) {
      showError(`Could not add the todo: ${error.message}`);
    }
  });

  list.addEventListener("change", async (event) => {
    const box = event.target.closest("input.done");
    if (!box) return;
    const id = box.closest("li").dataset.id;
    try {
      await write("PATCH", `${api}${id}/`, { done: box.checked });
    } catch (error) {
      box.checked = !box.checked;
      showError(`Could not update the todo: ${error.message}`);
    }
  });

  list.addEventListener("click", async (event) => {
    const button = event.target.closest("button.delete");
    if (!button) return;
    button.disabled = true;
    try {
      await write("DELETE", `${api}${button.closest("li").dataset.id}/`);
    } catch (error) {
      button.disabled = false;
      showError(`Could not delete the todo: ${error.message}`);
    }
  });
}
