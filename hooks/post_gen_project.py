"""Write .env with a fresh secret, remove the files of options not chosen, print next steps."""

import secrets
import shutil
from pathlib import Path

PROJECT = Path.cwd()


def write_env_file():
    """.env starts as .env.example with a secret key of its own."""
    # URL-safe characters need no quoting in .env files.
    secret = secrets.token_urlsafe(48)
    example = (PROJECT / ".env.example").read_text()
    (PROJECT / ".env").write_text(
        example.replace("DJANGO_SECRET_KEY=\n", f"DJANGO_SECRET_KEY={secret}\n", 1)
    )


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


def print_next_steps():
    print(
        "\n"
        "Project written to {{ cookiecutter.project_slug }}/. Next:\n"
        "\n"
        "    cd {{ cookiecutter.project_slug }}\n"
        "    python -m venv .venv && . .venv/bin/activate\n"
        "    pip install -r requirements.txt\n"
        "    python manage.py migrate\n"
        "    python manage.py runserver\n"
        "\n"
        "Settings live in .env (a fresh DJANGO_SECRET_KEY is already there); "
        ".env.example documents each one.\n"
    )


def main():
    write_env_file()
    if "{{ cookiecutter.include_example_app }}" != "y":
        remove_example_app()
    if "{{ cookiecutter.ci }}" != "github":
        remove_github_ci()
    print_next_steps()


if __name__ == "__main__":
    main()
