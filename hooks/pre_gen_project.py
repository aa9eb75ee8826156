"""Refuse bad answers before cookiecutter writes anything, with one sentence naming the rule."""

import keyword
import re
import sys

# Top-level modules a baked project imports or contains; a project folder of the same name on
# sys.path would shadow them.
PROJECT_MODULES = {
    "django",
    "channels",
    "channels_redis",
    "daphne",
    "uvicorn",
    "rest_framework",
    "rest_live",
    "config",
    "todos",
    "tests",
    "test",
    "redis",
    "psycopg",
    "dotenv",
    "dj_database_url",
    "asgiref",
    "twisted",
    "manage",
    "static",
    "templates",
    "docs",
}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


def slug_problem(slug):
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", slug):
        return (
            f"project_slug {slug!r} is not a lowercase Python identifier "
            "(letters a-z, digits and underscores, not starting with a digit)."
        )
    if keyword.iskeyword(slug):
        return f"project_slug {slug!r} is a Python keyword; pick another name."
    if slug in PROJECT_MODULES or slug in sys.stdlib_module_names:
        return (
            f"project_slug {slug!r} would shadow the module of the same name that the project "
            "imports; pick another name."
        )
    return None


def email_problem(email):
    if not EMAIL.fullmatch(email):
        return f"email {email!r} is not an email address like name@example.com."
    return None


def main():
    problems = [
        problem
        for problem in (
            slug_problem("{{ cookiecutter.project_slug }}"),
            email_problem("{{ cookiecutter.email }}"),
        )
        if problem
    ]
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
