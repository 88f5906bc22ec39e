#!/usr/bin/env python3
"""Fails when a module of the guidesmith library imports from a layer above its own.

The layers are the tables of docs/ARCHITECTURE.md ("### Layer N: name", one row per module, the module name in
backticks in the first column), so the document and the code cannot drift apart: a module of src/lib.rs missing from
the tables, a table naming a module that does not exist, or a `crate::x` path in a module's code (comments aside)
that reaches a higher layer is an error. Modules of the same layer may use each other; the front ends (the binary in
src/main.rs and src/cli/, the GUI) sit above every layer and are not checked here.

Usage: python3 .ci/check_layers.py [repository root]
"""

import pathlib
import re
import sys

LAYER_HEADING = re.compile(r"^### Layer (\d+): (.+?)\s*$")
TABLE_ROW = re.compile(r"^\|\s*`([a-z_][a-z0-9_]*)`\s*\|")
MOD_LINE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;", re.M)
CRATE_PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
CRATE_GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)


def layers(architecture: pathlib.Path) -> dict:
    """Module name -> (layer number, layer name), from the layer tables."""
    out = {}
    current = None
    for line in architecture.read_text(encoding="utf-8").splitlines():
        heading = LAYER_HEADING.match(line)
        if heading:
            current = (int(heading.group(1)), heading.group(2))
            continue
        if line.startswith("## ") or line.startswith("### "):
            current = None
            continue
        row = TABLE_ROW.match(line)
        if row and current is not None:
            name = row.group(1)
            if name in out:
                raise SystemExit(f"docs/ARCHITECTURE.md: module `{name}` is in two layer tables")
            out[name] = current
    return out


def code_lines(path: pathlib.Path):
    """(line number, text) of the lines of a Rust file that are not comments."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("//"):
            continue
        yield number, line.split("//", 1)[0] if "://" not in line else line


def imported_modules(path: pathlib.Path):
    """(line number, module) of every `crate::module` path in the file's code."""
    lines = list(code_lines(path))
    text = "\n".join(line for _, line in lines)
    starts = []
    offset = 0
    for number, line in lines:
        starts.append((offset, number))
        offset += len(line) + 1

    def line_of(position: int) -> int:
        found = starts[0][1]
        for start, number in starts:
            if start > position:
                break
            found = number
        return found

    for match in CRATE_GROUP.finditer(text):
        for item in match.group(1).split(","):
            name = item.strip().split("::", 1)[0].strip()
            if re.fullmatch(r"[a-z_][a-z0-9_]*", name) and name not in ("self", "super"):
                yield line_of(match.start()), name
    for match in CRATE_PATH.finditer(text):
        yield line_of(match.start()), match.group(1)


def module_files(src: pathlib.Path, module: str):
    single = src / f"{module}.rs"
    if single.is_file():
        yield single
    folder = src / module
    if folder.is_dir():
        yield from sorted(folder.rglob("*.rs"))


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    src = root / "src"
    table = layers(root / "docs" / "ARCHITECTURE.md")
    declared = MOD_LINE.findall((src / "lib.rs").read_text(encoding="utf-8"))
    errors = []
    for module in declared:
        if module not in table:
            errors.append(f"src/lib.rs: module `{module}` is in no layer table of docs/ARCHITECTURE.md")
    for module in table:
        if module not in declared:
            errors.append(f"docs/ARCHITECTURE.md: layer table names `{module}`, which src/lib.rs does not declare")
    checked = 0
    for module in declared:
        if module not in table:
            continue
        level, name = table[module]
        for path in module_files(src, module):
            for line, used in imported_modules(path):
                checked += 1
                if used == module or used not in table:
                    continue
                used_level, used_name = table[used]
                if used_level > level:
                    errors.append(
                        f"{path.relative_to(root)}:{line}: `{module}` (layer {level}, {name}) uses `crate::{used}` "
                        f"(layer {used_level}, {used_name}); a module may only use its own layer and those below"
                    )
    if errors:
        print("\n".join(errors), file=sys.stderr)
        print(f"layer check failed: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"layer check: {len(declared)} modules in {len(set(table.values()))} layers, {checked} crate paths, all downward")
    return 0


if __name__ == "__main__":
    sys.exit(main())
