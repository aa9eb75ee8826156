"""Node tools some tests run (TypeScript's `tsc`, the AsyncAPI JSON schemas), pinned in tests/js/.

`node_modules_dir()` installs tests/js/package-lock.json with `npm ci` once per machine, into
.cache/node-<hash of package.json and package-lock.json>/, and returns its node_modules folder;
later calls (and later sessions) reuse it until a pin changes. A file lock keeps pytest-xdist
workers from installing it twice, and the install happens in a scratch folder renamed into place
only once it is complete, so a crash never leaves a half-installed folder that looks ready.

Without `node` or `npm` on PATH it raises `NodeNotInstalled`; in a test, call `require_node()`
(or `node_modules_or_skip()`) instead, which skips, or fails under REQUIRE_SERVICES=1 as in CI::

    from harness import node_tools

    def test_something():
        modules = node_tools.node_modules_or_skip()
        node_tools.run_node(["-e", "require('@asyncapi/specs')"], cwd=modules.parent)
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import baking
from harness.skips import missing

TEMPLATE_DIR = Path(__file__).resolve().parent.parent
JS_DIR = TEMPLATE_DIR / "tests" / "js"
CACHE_DIR = TEMPLATE_DIR / ".cache"
MANIFESTS = ("package.json", "package-lock.json")
INSTALL_TIMEOUT = 600
# Variables that would change which packages node resolves; the rest of the environment is passed
# on (a machine's CA bundle, proxy or registry mirror must still apply to npm).
DROPPED_VARIABLES = ("NODE_PATH",)


class NodeNotInstalled(RuntimeError):
    """`node` or `npm` is not on PATH; the message says what to install."""


class NodeInstallFailed(RuntimeError):
    """`npm ci` failed; the message carries its output."""


def node_env() -> dict[str, str]:
    """The environment node and npm run in: ours, minus what could change module resolution."""
    env = {name: value for name, value in os.environ.items() if name not in DROPPED_VARIABLES}
    env["NO_UPDATE_NOTIFIER"] = "1"
    return env


def executables() -> tuple[str, str]:
    """The paths of `node` and `npm`, or NodeNotInstalled."""
    node, npm = shutil.which("node"), shutil.which("npm")
    missing = [name for name, path in (("node", node), ("npm", npm)) if path is None]
    if missing:
        raise NodeNotInstalled(
            f"{' and '.join(missing)} not on PATH; install Node.js 20 or newer with npm "
            "(apt-get install nodejs npm) to run this test"
        )
    return node, npm


def lock_key() -> str:
    """A hash of tests/js/package.json and package-lock.json: a new pin means a new folder."""
    digest = hashlib.sha256()
    for name in MANIFESTS:
        digest.update(name.encode() + b"\0" + (JS_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def install_dir() -> Path:
    """Where the pinned packages are installed (node_modules is inside)."""
    return CACHE_DIR / f"node-{lock_key()}"


def node_modules_dir() -> Path:
    """The node_modules folder holding tests/js/'s pinned packages, installing them on first use.

    Safe to call from several processes at once: one installs, the others wait for it.
    """
    _, npm = executables()
    target = install_dir()
    modules = target / "node_modules"
    marker = target / ".complete"
    if marker.exists():
        return modules
    CACHE_DIR.mkdir(exist_ok=True)
    with open(CACHE_DIR / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():  # another worker installed it while we waited for the lock
            return modules
        shutil.rmtree(target, ignore_errors=True)  # left by a crash before the marker
        scratch = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=CACHE_DIR))
        scratch.chmod(0o755)  # mkdtemp makes it private; the cache is shared like the venvs
        try:
            for name in MANIFESTS:
                shutil.copyfile(JS_DIR / name, scratch / name)
            _npm_ci(npm, scratch)
            (scratch / ".complete").write_text(lock_key() + "\n")
            scratch.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    _remove_stale_installs(keep=target)
    return modules


def _npm_ci(npm: str, prefix: Path) -> None:
    argv = [
        npm, "ci", "--prefix", str(prefix),
        "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier",
        "--loglevel", "error",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            argv,
            cwd=prefix,
            env=node_env(),
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise NodeInstallFailed(f"{' '.join(argv)} timed out after {INSTALL_TIMEOUT}s") from error
    if result.returncode != 0:
        raise NodeInstallFailed(
            f"{' '.join(argv)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )


def _remove_stale_installs(keep: Path, unused_days: float = 7) -> None:
    """Delete installs of older pins unused for a week, skipping any in use right now."""
    baking.prune_cache("node-*.lock", keep=keep, unused_days=unused_days)


def bin_path(name: str) -> Path:
    """An installed package's command, e.g. `bin_path("tsc")`."""
    return node_modules_dir() / ".bin" / name


def run_node(
    args: list[str], *, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `node *args` with the pinned packages on NODE_PATH; never raises on the exit code."""
    node, _ = executables()
    modules = node_modules_dir()
    env = {**node_env(), "NODE_PATH": str(modules)}
    return subprocess.run(
        [node, *args],
        cwd=cwd or modules.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def require_node() -> None:
    """In a test: skip (or fail under REQUIRE_SERVICES=1) without node and npm on PATH."""
    try:
        executables()
    except NodeNotInstalled as error:
        missing(str(error))


def node_modules_or_skip() -> Path:
    """In a test: `node_modules_dir()`, or skip (fail under REQUIRE_SERVICES=1) without node/npm.

    A failed install (no network, a bad pin) is a failure, not a skip.
    """
    require_node()
    return node_modules_dir()
