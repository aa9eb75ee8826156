"""rest-live.d.ts, the TypeScript declarations of rest-live.js, checked with the pinned `tsc`.

Three compiles, each beside a copy of the declarations: tests/js/usage.ts uses the whole API and
must type-check under --strict; tests/js/misuse.ts must fail, with an error on each line marked
`// error` and nowhere else (so the declarations are no `any`); and a file generated from what the
module exports when node imports it must type-check, so the declarations name every export, and no
other, with the constants' values. TypeScript comes from tests/js/package-lock.json (node_tools).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness import node_tools
from harness.combos import TEMPLATE_DIR

STATIC = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "static" / "rest_live"
FIXTURES = Path(__file__).parent / "js"
# Strictness from the command line (as the brief for these declarations says), the rest here.
TSC_FLAGS = ["--noEmit", "--strict"]
TSCONFIG = {
    "compilerOptions": {
        "target": "es2022",
        "module": "esnext",
        "moduleResolution": "bundler",
        "lib": ["es2022", "dom"],
        "types": [],
        "skipLibCheck": False,  # rest-live.d.ts itself is checked too
        "noUnusedLocals": False,
        "forceConsistentCasingInFileNames": True,
    }
}
# `misuse.ts(12,7): error TS2322: ...` (with --pretty false)
DIAGNOSTIC = re.compile(r"^(?P<file>[^(\s]+)\((?P<line>\d+),(?P<column>\d+)\): error TS\d+")


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return node_tools.node_modules_or_skip()


def compile_files(node_modules: Path, directory: Path, *names: str) -> tuple[int, str]:
    """`tsc --noEmit --strict` on `names` in `directory` (beside rest-live.d.ts): (exit, output)."""
    config = {**TSCONFIG, "files": list(names)}
    (directory / "tsconfig.json").write_text(json.dumps(config, indent=2))
    tsc = node_modules / "typescript" / "bin" / "tsc"
    result = node_tools.run_node(
        [str(tsc), "--project", "tsconfig.json", "--pretty", "false", *TSC_FLAGS], cwd=directory
    )
    return result.returncode, result.stdout + result.stderr


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A folder of rest-live.d.ts (what `import "./rest-live.js"` finds) and tests/js/*.ts."""
    shutil.copyfile(STATIC / "rest-live.d.ts", tmp_path / "rest-live.d.ts")
    for fixture in FIXTURES.glob("*.ts"):
        shutil.copyfile(fixture, tmp_path / fixture.name)
    return tmp_path


def test_the_declarations_type_check_the_whole_api(node_modules, workdir):
    status, output = compile_files(node_modules, workdir, "usage.ts")
    assert status == 0, output


def test_the_declarations_reject_misuse(node_modules, workdir):
    status, output = compile_files(node_modules, workdir, "misuse.ts")
    assert status != 0, "misuse.ts compiled: the declarations accept anything"
    source = (workdir / "misuse.ts").read_text().splitlines()
    expected = {number for number, line in enumerate(source, 1) if line.endswith("// error")}
    errors = [match.groupdict() for match in map(DIAGNOSTIC.match, output.splitlines()) if match]
    assert errors, output
    assert {error["file"] for error in errors} == {"misuse.ts"}, output
    assert {int(error["line"]) for error in errors} == expected, output


# Prints each export of the module: its name, typeof, and the value of a string or number.
EXPORTS_SCRIPT = """
const module = await import(process.argv[1]);
const described = Object.entries(module).map(([name, value]) => [
  name, typeof value, ["string", "number"].includes(typeof value) ? value : null,
]);
console.log(JSON.stringify(described));
"""


def test_the_declarations_name_every_export_of_the_module(node_modules, workdir):
    # Node reads a .js outside a `"type": "module"` package as CommonJS: copied as .mjs.
    shutil.copyfile(STATIC / "rest-live.js", workdir / "runtime.mjs")
    result = node_tools.run_node(
        ["--input-type=module", "-e", EXPORTS_SCRIPT, (workdir / "runtime.mjs").as_uri()],
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    exports = json.loads(result.stdout)
    assert {"LiveClient", "LiveMap", "socketUrl"} <= {name for name, _, _ in exports}

    # Every name, and no other (a missing or an extra key is an error); each constant's value
    # as its declared type; classes and functions as what they are.
    lines = ['import * as client from "./rest-live.js";', "", "type Exports = typeof client;"]
    lines.append("const names: { [name in keyof Exports]: true } = {")
    lines += [f"  {name}: true," for name, _, _ in exports]
    lines.append("};")
    for name, kind, value in exports:
        if value is not None:
            lines.append(f"const {name}_value: Exports[{json.dumps(name)}] = {json.dumps(value)};")
        elif kind == "function":
            lines.append(f"const {name}_kind: Function = client.{name};")
    lines.append("void names;")
    (workdir / "exports.ts").write_text("\n".join(lines) + "\n")
    status, output = compile_files(node_modules, workdir, "exports.ts")
    assert status == 0, output + "\n" + (workdir / "exports.ts").read_text()
