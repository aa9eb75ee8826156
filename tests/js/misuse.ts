// Compiled by tests/test_typescript.py, which expects an error on each line marked `// error`
// and nowhere else: proof that the declarations check, rather than accept anything.
import { LiveClient, LiveMap, type ServerFrame } from "./rest-live.js";

interface Todo {
  title: string;
}

const live = new LiveClient("/ws/", { resume: "yes" }); // error
live.subscribe({ model: "todos.Todo", action: "lsit" }, () => {}); // error
live.subscribe({ action: "list" }, () => {}); // error
live.subscribe<Todo>({ model: "todos.Todo", action: "list" }, (action, data, info) => {
  if (action === "SNAPSHOT") {
    console.log(data.title); // error
    console.log(info.pk); // error
  } else if (action === "DELETED") {
    const slug: string = data.slug; // error
  } else {
    const count: number = data.title; // error
    console.log(info.pks, count); // error
  }
});
live.on("status", (status: number) => status); // error
live.on("transaction", (transaction) => transaction.frames[0].pks); // error
live.on("colour", () => {}); // error
const version: string = (await live.hello()).protocol; // error
const status: "open" | "closed" = live.status; // error
const kept = new LiveMap<Todo>();
kept.set("9f3c", { title: 1 }); // error
function size(frame: ServerFrame): number {
  if (frame.type === "reset") return frame.instances.length; // error
  if (frame.type === "error") return frame.code === 418 ? 1 : 0; // error
  return 0;
}
void [version, status, size];
