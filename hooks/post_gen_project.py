"""Write .env with a fresh secret, remove the files of options not chosen, print next steps."""

import secrets
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

PROJECT = Path.cwd()


def metrics_chosen():
    return "{{ cookiecutter.metrics }}" == "prometheus"


def write_env_file():
    """.env starts as .env.example with a secret key of its own (and a metrics token)."""
    # URL-safe characters need no quoting in .env files.
    secret = secrets.token_urlsafe(48)
    env = (PROJECT / ".env.example").read_text()
    env = env.replace("DJANGO_SECRET_KEY=\n", f"DJANGO_SECRET_KEY={secret}\n", 1)
    if metrics_chosen():
        env = env.replace("METRICS_TOKEN=\n", f"METRICS_TOKEN={secrets.token_urlsafe(32)}\n", 1)
    (PROJECT / ".env").write_text(env)


def remove(*relative_paths):
    for relative in relative_paths:
        path = PROJECT / relative
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def remove_example_app():
    # The demo page is the example app's: its template and its static files go with it.
    remove("todos", "templates/index.html", "static/todos")
    templates = PROJECT / "templates"
    if templates.is_dir() and not any(templates.iterdir()):
        templates.rmdir()


def remove_github_ci():
    remove(".github")


def remove_metrics_files():
    remove("config/metrics.py", "tests/test_metrics.py")


def remove_compose_file():
    # compose.yaml only starts the servers .env points at; with SQLite and the in-memory layer
    # there are none.
    remove("compose.yaml")


class Service(NamedTuple):
    """A server .env points at: a newcomer starts it first, or empties its variable."""

    name: str
    address: str
    variable: str
    instead: str  # what the project uses when the variable is empty


def services():
    chosen = []
    if "{{ cookiecutter.database }}" == "postgresql":
        chosen.append(
            Service(
                "PostgreSQL",
                "127.0.0.1:5432 (user, password and database {{ cookiecutter.project_slug }})",
                "DATABASE_URL",
                "SQLite",
            )
        )
    if "{{ cookiecutter.channel_layer }}" == "redis":
        chosen.append(
            Service("Redis", "127.0.0.1:6379", "REDIS_URL", "the in-memory channel layer")
        )
    return chosen


def next_steps():
    """The message printed after baking: the README's "Run it", for the options chosen."""
    needed = services()
    names = " and ".join(service.name for service in needed)
    lines = [
        "",
        "Project written to {{ cookiecutter.project_slug }}/. Next:",
        "",
        "    cd {{ cookiecutter.project_slug }}",
    ]
    if needed:
        lines.append(f"    docker compose up -d --wait       # {names}, as .env expects")
    lines += [
        "    python -m venv .venv && . .venv/bin/activate",
        "    pip install -r requirements.txt",
        "    python manage.py migrate",
    ]
    if "{{ cookiecutter.include_example_app }}" == "y":
        lines.append("    python manage.py seed_demo        # a demo user, also for /admin/")
    lines += ["    python manage.py runserver", ""]
    if needed:
        lines += [f"{service.name} is expected on {service.address}." for service in needed]
        lines += [
            f'No Docker? README.md, section "Start {names}", sets up your own; or empty',
            f"{' and '.join(service.variable for service in needed)} in .env for "
            f"{' and '.join(service.instead for service in needed)}.",
            "",
        ]
    fresh = (
        "DJANGO_SECRET_KEY and METRICS_TOKEN are" if metrics_chosen() else "DJANGO_SECRET_KEY is"
    )
    lines.append(
        f"Settings live in .env (a fresh {fresh} already there); .env.example documents each one."
    )
    return "\n".join(lines) + "\n"


def rendered_again_by_cruft():
    """Whether this is `cruft diff` or `cruft update` rendering the template to compare with a
    project made already, where next steps would only interrupt the upgrade.

    cruft (and only cruft) puts `_commit` in the context; `cruft create` renders where the user
    asked, as cookiecutter does, but diff and update render into a fresh temporary directory.
    """
    if not "{{ cookiecutter._commit | default('') }}":
        return False
    render_dir = PROJECT.resolve().parent
    return render_dir.name.startswith("tmp") and (
        render_dir.parent == Path(tempfile.gettempdir()).resolve()
    )


def main():
    write_env_file()
    if "{{ cookiecutter.include_example_app }}" != "y":
        remove_example_app()
    if "{{ cookiecutter.ci }}" != "github":
        remove_github_ci()
    if not metrics_chosen():
        remove_metrics_files()
    if not services():
        remove_compose_file()
    if not rendered_again_by_cruft():
        print(next_steps())


if __name__ == "__main__":
    main()
