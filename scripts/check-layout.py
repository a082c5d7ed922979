#!/usr/bin/env python3
"""The layout rules of README's layout table, checked on the source text of the
library (src/) and of the sandbox crate (sandbox/src/).

1. `impl Notifier` only under src/notifier/; `crate::notifier` used only by
   src/notifier/ and src/ffi/.
2. src/ffi/ uses only the notifier, the error type and its own files.
3. src/message/ and src/config.rs use nothing above them (only `error`, and
   message/ its own files).
4. Dependencies point down the layers below, and modules of one layer do not
   use each other in a circle.
5. A backend file (store/, outbox/, metrics/ sinks) never uses a sibling
   backend; where one shares another module's pool, a comment says so.
6. No library function runs over 80 lines (scripts/long-functions.py; test
   code aside, and the sandbox, a crate of its own, is not library code).
7. In both crates, the files of one module (a directory, or the sandbox
   crate's top level) do not use each other in a circle.
What the crate boundary enforces is left to the compiler: the library cannot
name the sandbox (it does not depend on it), and the sandbox reaches the
library only through its public API.
Prints every breach with its file and line; exits 1 if there is any.
"""
import importlib.util
import os
import re
import sys

REPO = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..")
ROOT = os.path.join(REPO, "src")
SANDBOX = os.path.join(REPO, "sandbox", "src")

# Lower number = lower layer. A module may use modules of a lower layer, and
# modules of its own layer as long as they form no circle.
LAYERS = {
    "error": 0, "clock": 0, "secret": 0,
    "store": 1, "sqlite_conn": 1, "config": 1,
    "outbox": 2, "ledger": 2, "wechat": 2, "send_machine": 2, "message": 2, "metrics": 2, "journal": 2, "push": 2, "reach": 2,
    "notifier": 3,
    "ffi": 4,
}
BACKENDS = {
    "store": {"memory", "sqlite", "redis"},
    "outbox": {"memory", "sqlite", "redis"},
    "metrics": {"sqlite_sink", "redis_sink"},
}
# Rule 6. Files whose long functions are allowed: none.
LONG_FUNCTIONS_ALLOWED: set = set()
MAX_FUNCTION_LINES = 80
CRATE_REF = re.compile(r"\bcrate::(\w+)")
# `use crate::{a, b::c}` names several modules in one group.
CRATE_GROUP = re.compile(r"\buse crate::\{([^;]*)\}", re.S)
SUPER_REF = re.compile(r"\bsuper::(\w+)")
# `use super::{a, b::c}`, as CRATE_GROUP.
SUPER_GROUP = re.compile(r"\buse super::\{([^;]*)\}", re.S)
# Circles between the files of one module that are known, as (module, files
# of the circle): reported, not failed. None are.
KNOWN_CIRCLES: set = set()
IMPL_NOTIFIER = re.compile(r"\bimpl\s+(crate::notifier::)?Notifier\b")


def rust_files(root=ROOT):
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            if name.endswith(".rs"):
                path = os.path.join(dirpath, name)
                yield os.path.relpath(path, root).replace(os.sep, "/"), path


def top_module(rel):
    """`wechat/client.rs` -> `wechat`; `lib.rs` and `bin/…` -> None."""
    first = rel.split("/")[0]
    if first in ("lib.rs", "bin"):
        return None
    return first[:-3] if first.endswith(".rs") else first


def code_lines(path):
    """Lines without comments, with their numbers; a file's test module is skipped
    (tests may reach anywhere in the crate)."""
    in_tests = False
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            stripped = line.strip()
            if stripped.startswith("#[cfg(test)]"):
                in_tests = True
            if in_tests:
                continue
            yield no, line.split("//")[0]


def used_modules(path):
    """(line, module) for every `crate::module` the file's non-test code names."""
    text_lines = list(code_lines(path))
    for no, line in text_lines:
        for m in CRATE_REF.finditer(line):
            yield no, m.group(1)
    joined = "\n".join(l for _, l in text_lines)
    yield from group_names(joined, CRATE_GROUP)


def group_names(joined, pattern):
    """(line, first name) for every name of `use …::{a, b::c}` groups."""
    for g in pattern.finditer(joined):
        no = joined[: g.start()].count("\n") + 1
        for part in re.split(r",", re.sub(r"\{[^}]*\}", "", g.group(1))):
            name = part.strip().split("::")[0]
            if name:
                yield no, name


def long_function_problems():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "long_functions", os.path.join(here, "long-functions.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [
        f"src/{rel}:{line}: fn {name} runs {lines} lines, over {MAX_FUNCTION_LINES}: "
        f"split it by what its parts do (rule 6)"
        for lines, rel, line, name in module.long_functions(ROOT, MAX_FUNCTION_LINES, {"sandbox"})
        if rel not in LONG_FUNCTIONS_ALLOWED
    ]


def sibling_uses(path, module, siblings):
    """The files of the same module that a file's non-test code names:
    `super::x`, and `crate::module::x` (`crate::x` at the crate's top level)."""
    lines = list(code_lines(path))
    found = set()
    prefix = r"\bcrate::" + (module + "::" if module else "")
    for _, line in lines:
        for m in SUPER_REF.finditer(line):
            found.add(m.group(1))
        for m in re.finditer(prefix + r"(\w+)", line):
            found.add(m.group(1))
    joined = "\n".join(l for _, l in lines)
    found.update(name for _, name in group_names(joined, SUPER_GROUP))
    if not module:
        found.update(name for _, name in group_names(joined, CRATE_GROUP))
    return found & siblings


def circles(graph):
    """Each circle of a directed graph once, as a list of nodes."""
    found, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def sibling_circles(root, label):
    """Rule 7 for one crate: (problems, notes)."""
    by_module = {}
    for rel, path in rust_files(root):
        parts = rel[:-3].split("/")
        if parts[-1] in ("mod", "lib", "main") or parts[0] == "bin":
            continue
        module = "/".join(parts[:-1])
        by_module.setdefault(module, {})[parts[-1]] = path
    problems, notes = [], []
    for module, files in sorted(by_module.items()):
        graph = {name: sibling_uses(path, module, set(files) - {name})
                 for name, path in files.items()}
        for cycle in circles(graph):
            where = f"{label}{module + '/' if module else ''}"
            text = f"import circle in {where}: " + " -> ".join(cycle) + " (rule 7)"
            if (module, frozenset(cycle)) in KNOWN_CIRCLES:
                notes.append(text + ", known")
            else:
                problems.append(text)
    return problems, notes


def main():
    problems = []
    graph = {}
    for rel, path in rust_files():
        top = top_module(rel)
        with open(path, encoding="utf-8") as f:
            full = f.read()
        for no, line in code_lines(path):
            if IMPL_NOTIFIER.search(line) and not rel.startswith("notifier/"):
                problems.append(f"src/{rel}:{no}: impl Notifier outside src/notifier/ (rule 1)")
        for no, used in used_modules(path):
            if used == top or used not in LAYERS:
                continue
            if used == "notifier" and top not in ("notifier", "ffi"):
                problems.append(f"src/{rel}:{no}: uses crate::notifier (rule 1)")
            if top == "ffi" and used not in ("notifier", "error"):
                problems.append(f"src/{rel}:{no}: ffi uses crate::{used} (rule 2)")
            if top in ("message", "config") and used != "error":
                problems.append(f"src/{rel}:{no}: {top} uses crate::{used} (rule 3)")
            if top in LAYERS and LAYERS[used] > LAYERS[top]:
                problems.append(
                    f"src/{rel}:{no}: {top} uses crate::{used}, a higher layer (rule 4)")
            if top is not None:
                graph.setdefault(top, set()).add(used)
        parts = rel[:-3].split("/")
        if len(parts) == 2 and parts[0] in BACKENDS and parts[1] in BACKENDS[parts[0]]:
            siblings = BACKENDS[parts[0]] - {parts[1]}
            for no, line in code_lines(path):
                for m in SUPER_REF.finditer(line):
                    if m.group(1) in siblings:
                        problems.append(
                            f"src/{rel}:{no}: backend uses its sibling backend super::{m.group(1)} (rule 5)")
                for m in re.finditer(r"\bcrate::(store|outbox|metrics)::(\w+)", line):
                    if "pool" not in full.lower():
                        problems.append(
                            f"src/{rel}:{no}: backend uses crate::{m.group(1)}::{m.group(2)} without a comment on the shared pool (rule 5)")
    problems += long_function_problems()
    # Rule 4, circles: a depth-first search over the module graph.
    for cycle in circles(graph):
        problems.append("import circle: " + " -> ".join(cycle) + " (rule 4)")
    notes = []
    for root, label in ((ROOT, "src/"), (SANDBOX, "sandbox/src/")):
        more, known = sibling_circles(root, label)
        problems += more
        notes += known
    for n in notes:
        print("note: " + n)
    if problems:
        print("layout rules broken:")
        for p in problems:
            print("  " + p)
        return 1
    known = f" but the {len(notes)} known above" if notes else ""
    print(f"layout rules hold ({len(graph)} library modules and the sandbox crate, "
          f"no import circle{known})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
