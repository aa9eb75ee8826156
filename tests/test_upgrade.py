"""Upgrading a baked project with cruft: template fixes come in, the user's own edits stay.

Each test makes a template repository in tmp_path from this checkout (cruft reads templates from
git), bakes from it with `cruft create` (or plain cookiecutter, then `cruft link`), commits the
project and edits it like a user, moves the template on by a commit, and runs `cruft update`.
cruft renders the template twice per update, hooks included, and the post-gen hook writes .env
with a new secret each time: `[tool.cruft] skip` in the baked pyproject.toml keeps that out of
every diff and update, which these tests check too. Everything is local: git repositories in
tmp_path, cruft on this venv's Python, no network.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from harness import baking
from harness.combos import BY_NAME, TEMPLATE_DIR, combo_params
from harness.skips import missing

SLUG_DIR = "{{cookiecutter.project_slug}}"
CHANGELOG = TEMPLATE_DIR / "CHANGELOG.md"
REST_LIVE_INIT = TEMPLATE_DIR / SLUG_DIR / "rest_live" / "__init__.py"
# What a template checkout holds besides the template: the tooling's venvs, caches and outputs.
NOT_TEMPLATE = shutil.ignore_patterns(
    ".git", ".venv", ".cache", "demo", "artifacts", "__pycache__", ".pytest_cache", ".ruff_cache"
)
# The commit released as 0.1.0 (CHANGELOG.md): a project baked from it must upgrade as documented.
RELEASE_0_1_0 = "d546142"
LOCAL_EDIT = "# Local edit: this line must survive `cruft update`."
DIFF_HEADER = re.compile(
    r"^diff --git upstream-template-old/(\S+) upstream-template-new/\S+$", re.M
)


@pytest.fixture
def env(tmp_path, cookiecutter_config) -> dict[str, str]:
    """The environment git and cruft run in: no developer's config, a git identity that CI lacks.

    HOME in tmp_path hides ~/.gitconfig and ~/.cookiecutterrc (cruft update reads the latter).
    """
    if shutil.which("git") is None:
        missing("git is not installed; apt-get install git")
    if importlib.util.find_spec("cruft") is None:
        missing(f"cruft is not installed in {sys.prefix}; pip install -r requirements-dev.txt")
    home = tmp_path / "home"
    home.mkdir()
    return baking.clean_env(
        overrides={
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Template Tests",
            "GIT_AUTHOR_EMAIL": "template-tests@example.com",
            "GIT_COMMITTER_NAME": "Template Tests",
            "GIT_COMMITTER_EMAIL": "template-tests@example.com",
            "COOKIECUTTER_CONFIG": str(cookiecutter_config),
        }
    )


def git(repo: Path, env: dict[str, str], *args: str) -> str:
    return baking.run_command(["git", *args], cwd=repo, env=env).stdout


def cruft(project: Path, env: dict[str, str], *args: str) -> baking.CommandResult:
    """`cruft ARGS` in `project`; the exit code is the caller's to check."""
    return baking.run_command(
        [sys.executable, "-m", "cruft", *args], cwd=project, env=env, check=False
    )


def commit_all(repo: Path, env: dict[str, str], message: str) -> str:
    git(repo, env, "add", "-A")
    git(repo, env, "commit", "-q", "-m", message)
    return git(repo, env, "rev-parse", "HEAD").strip()


def copy_checkout(destination: Path) -> None:
    """This checkout's working tree as it is now (uncommitted work included), minus tooling."""
    shutil.copytree(TEMPLATE_DIR, destination, ignore=NOT_TEMPLATE, dirs_exist_ok=True)


def template_repo(path: Path, env: dict[str, str]) -> Path:
    copy_checkout(path)
    git(path, env, "init", "-q", "--initial-branch=main")
    commit_all(path, env, "template")
    return path


def init_project_repo(project: Path, env: dict[str, str]) -> None:
    """Commit the bake as a user would; .env must be ignored, or cruft update refuses to run."""
    git(project, env, "init", "-q", "--initial-branch=main")
    git(project, env, "check-ignore", "-q", ".env")  # exits 1, failing here, if it is not
    commit_all(project, env, "Bake")


def status(project: Path, env: dict[str, str]) -> dict[str, str]:
    """`git status` as {path: two-letter code}."""
    lines = git(project, env, "status", "--porcelain", "--untracked-files=all").splitlines()
    return {line[3:]: line[:2] for line in lines}


def diff_paths(result: baking.CommandResult) -> set[str]:
    """The files a `cruft diff` shows a difference in."""
    return set(DIFF_HEADER.findall(result.stdout))


def leftovers(project: Path) -> list[Path]:
    """Reject and backup files that a patch applied without a 3-way merge leaves behind."""
    return [
        path.relative_to(project)
        for pattern in ("*.rej", "*.orig")
        for path in project.rglob(pattern)
        if ".git" not in path.parts
    ]


def test_update_brings_a_rest_live_fix_and_keeps_local_edits(tmp_path, env, cookiecutter_config):
    template = template_repo(tmp_path / "template", env)
    first_commit = git(template, env, "rev-parse", "HEAD").strip()
    created = cruft(
        tmp_path, env, "create", str(template), "--no-input",
        "--config-file", str(cookiecutter_config), "--output-dir", str(tmp_path / "projects"),
    )  # fmt: skip
    assert created.returncode == 0, created.describe()
    project = tmp_path / "projects" / "live_todos"
    env_file = (project / ".env").read_text()
    secret = re.search(r"^DJANGO_SECRET_KEY=(.+)$", env_file, re.M).group(1)

    # .cruft.json: where the template is, which commit, the answers, and no secret.
    state = json.loads((project / ".cruft.json").read_text())
    assert state["template"] == str(template)
    assert state["commit"] == first_commit
    answers = state["context"]["cookiecutter"]
    assert {key: answers[key] for key in BY_NAME["defaults"].answers} == (
        BY_NAME["defaults"].answers
    )
    assert "skip" not in state, "skips belong in pyproject.toml's [tool.cruft] (see its comment)"
    assert secret not in (project / ".cruft.json").read_text()

    init_project_repo(project, env)
    fresh = cruft(project, env, "diff", "--exit-code")
    assert fresh.returncode == 0 and not diff_paths(fresh), (
        f"a fresh bake must not differ from its template (.env skipped)\n{fresh.describe()}"
    )

    # The user's edits: a rendered settings file, and rest_live/ itself.
    for relative in ("config/settings.py", "rest_live/conf.py"):
        with open(project / relative, "a") as file:
            file.write(f"\n{LOCAL_EDIT}\n")
    commit_all(project, env, "Local edits")
    edited = cruft(project, env, "diff", "--exit-code")
    assert edited.returncode == 1, edited.describe()
    assert diff_paths(edited) == {"config/settings.py", "rest_live/conf.py"}, edited.describe()
    assert f"-{LOCAL_EDIT}" in edited.stdout.splitlines(), edited.describe()

    # The template moves on: a changed line in the module the user edited, and a new module.
    conf = template / SLUG_DIR / "rest_live" / "conf.py"
    conf_lines = conf.read_text().splitlines(keepends=True)
    assert conf_lines[0].startswith('"""'), "the test edits conf.py's docstring; it moved"
    conf_lines[0] = conf_lines[0].replace('"""', '"""Template fix: ', 1)
    conf.write_text("".join(conf_lines))
    (template / SLUG_DIR / "rest_live" / "template_fix.py").write_text(
        'def fixed():\n    return "from the template"\n'
    )
    second_commit = commit_all(template, env, "Fix rest_live")

    before = cruft(project, env, "check")
    assert before.returncode == 1 and "out of date" in before.stdout, before.describe()

    updated = cruft(project, env, "update", "-y")
    assert updated.returncode == 0, updated.describe()

    conf_now = (project / "rest_live" / "conf.py").read_text()
    assert conf_now.startswith('"""Template fix: '), "the template's change did not arrive"
    assert conf_now.rstrip().endswith(LOCAL_EDIT), "the local edit to rest_live/ was lost"
    assert (project / "config" / "settings.py").read_text().rstrip().endswith(LOCAL_EDIT)
    assert "def fixed():" in (project / "rest_live" / "template_fix.py").read_text()
    assert (project / ".env").read_text() == env_file, ".env (the secret) must be left alone"
    assert leftovers(project) == [], f"the update did not merge cleanly\n{updated.describe()}"
    assert set(status(project, env)) == {
        ".cruft.json", "rest_live/conf.py", "rest_live/template_fix.py"
    }, updated.describe()  # fmt: skip
    assert json.loads((project / ".cruft.json").read_text())["commit"] == second_commit

    after = cruft(project, env, "check")
    assert after.returncode == 0 and "up to date" in after.stdout, after.describe()
    # Against the new commit, the project differs by the user's edits and nothing else.
    remaining = cruft(project, env, "diff")
    assert diff_paths(remaining) == {"config/settings.py", "rest_live/conf.py"}, (
        remaining.describe()
    )


@pytest.mark.parametrize("combo", combo_params("no_example", "production"))
def test_a_fresh_bake_does_not_differ_from_its_template(tmp_path, env, cookiecutter_config, combo):
    """The hooks drop files and write .env on every render cruft does: none of it may show."""
    template = template_repo(tmp_path / "template", env)
    answers = json.dumps(combo.overrides)
    created = cruft(
        tmp_path, env, "create", str(template), "--no-input", "--extra-context", answers,
        "--config-file", str(cookiecutter_config), "--output-dir", str(tmp_path / "projects"),
    )  # fmt: skip
    assert created.returncode == 0, created.describe()
    project = tmp_path / "projects" / "live_todos"
    init_project_repo(project, env)

    result = cruft(project, env, "diff", "--exit-code")

    assert result.returncode == 0 and not diff_paths(result), result.describe()


def test_next_steps_are_printed_on_the_first_bake_only(tmp_path, env, cookiecutter_config):
    """The post-gen hook runs on each render cruft does: its message is for a new project."""
    template = template_repo(tmp_path / "template", env)
    created = cruft(
        tmp_path, env, "create", str(template), "--no-input",
        "--config-file", str(cookiecutter_config), "--output-dir", str(tmp_path / "projects"),
    )  # fmt: skip
    assert created.returncode == 0, created.describe()
    assert "Project written to live_todos/. Next:" in created.output, created.describe()
    project = tmp_path / "projects" / "live_todos"
    init_project_repo(project, env)

    diffed = cruft(project, env, "diff", "--exit-code")
    (template / SLUG_DIR / "rest_live" / "template_fix.py").write_text("FIXED = True\n")
    commit_all(template, env, "Fix rest_live")
    updated = cruft(project, env, "update", "-y")

    for result in (diffed, updated):
        assert result.returncode == 0, result.describe()
        assert "Project written to" not in result.output, result.describe()
    assert (project / "rest_live" / "template_fix.py").exists(), updated.describe()


def test_a_0_1_0_project_upgrades_as_the_changelog_says(tmp_path, env, cookiecutter_config):
    """0.1.0 had neither cruft nor the skip: link at its commit, keep .env out of the way once."""
    release = f"{RELEASE_0_1_0}^{{commit}}"
    found = subprocess.run(
        ["git", "-C", TEMPLATE_DIR, "rev-parse", "-q", "--verify", release], capture_output=True
    )
    if found.returncode:
        pytest.skip(f"this checkout's history lacks {RELEASE_0_1_0} (0.1.0); a shallow clone?")
    template = tmp_path / "template"
    template.mkdir()
    archive = subprocess.run(
        ["git", "-C", TEMPLATE_DIR, "archive", RELEASE_0_1_0], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", template], input=archive.stdout, check=True)
    git(template, env, "init", "-q", "--initial-branch=main")
    old = commit_all(template, env, "0.1.0")
    project = Path(
        cookiecutter(
            str(template),
            no_input=True,
            output_dir=str(tmp_path / "projects"),
            config_file=str(cookiecutter_config),
        )
    )
    init_project_repo(project, env)
    env_file = (project / ".env").read_text()

    # The template moves on to this checkout.
    git(template, env, "rm", "-q", "-r", ".")
    copy_checkout(template)
    commit_all(template, env, "Now")

    # The steps in CHANGELOG.md's Upgrading notes for 0.1.0.
    linked = cruft(project, env, "link", str(template), "--checkout", old, "--no-input")
    assert linked.returncode == 0, linked.describe()
    commit_all(project, env, "Link to the template with cruft")
    kept = tmp_path / "env.kept"
    (project / ".env").rename(kept)
    updated = cruft(project, env, "update", "-y")
    kept.rename(project / ".env")
    assert updated.returncode == 0, updated.describe()

    assert leftovers(project) == [], f"the update did not merge cleanly\n{updated.describe()}"
    assert not [path for path, code in status(project, env).items() if "U" in code]
    assert (project / "rest_live" / "migrations" / "0001_initial.py").exists()
    assert "[tool.cruft]" in (project / "pyproject.toml").read_text()
    assert (project / ".env").read_text() == env_file
    after = cruft(project, env, "diff", "--exit-code")
    assert after.returncode == 0, f"now the project is the template's\n{after.describe()}"


def test_rest_live_version_is_the_newest_release_in_the_changelog():
    releases = re.findall(
        r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", CHANGELOG.read_text(), re.M
    )
    assert releases, "CHANGELOG.md has no release heading like '## [0.1.0] - 2026-11-24'"
    module = ast.parse(REST_LIVE_INIT.read_text())
    versions = [
        node.value.value
        for node in module.body
        if isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["__version__"]
    ]
    assert versions == [releases[0]], (
        f"rest_live.__version__ is {versions}, the newest release in CHANGELOG.md {releases[0]}: "
        "bump them together"
    )
