#!/usr/bin/env python3
"""Library functions longer than a limit (default 80 lines), test code aside.

A function's length is the number of lines from its `fn` line to its closing
brace. Items under `#[cfg(test)]` (a file's test module, a test-only helper)
are not library code and are skipped; so are the given excluded directories.

    scripts/long-functions.py [--limit N] [--exclude DIR]... [ROOT]

Prints `LINES path:line name`, longest first, and the count at the end.
check-layout.py (rule 6) fails on any of them outside its allow list.
"""
import argparse
import os
import re
import sys

FN = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")


def strip_literals(text):
    """`text` with comments, strings and char literals blanked (newlines kept),
    so that braces and `fn` are only found in code."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif (m := re.match(r'b?r(#*)"', text[i:i + 260])) and (
            i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * m.end())
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(code, open_at):
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


def test_spans(code):
    """(start, end) offsets of items under `#[cfg(test)]`."""
    spans = []
    for m in re.finditer(r"#\[cfg\(test\)\]", code):
        # The item's body is the first `{` after the attribute, unless a `;`
        # (e.g. `mod tests;` or a `use`) ends the item first.
        brace = code.find("{", m.end())
        semi = code.find(";", m.end())
        if brace < 0 or (0 <= semi < brace):
            continue
        spans.append((m.start(), matching_brace(code, brace)))
    return spans


def functions(path):
    """(name, first line, lines) of every function with a body, test code aside."""
    with open(path, encoding="utf-8") as f:
        code = strip_literals(f.read())
    tests = test_spans(code)
    for m in FN.finditer(code):
        if any(a <= m.start() <= b for a, b in tests):
            continue
        # The body starts at the first `{` after the signature; a `;` first
        # means a declaration without a body (trait method, extern).
        j = m.end()
        depth = 0
        while j < len(code):
            ch = code[j]
            if ch in "(<[":
                depth += 1
            elif ch in ")>]":
                depth = max(0, depth - 1) if not code.startswith("->", j - 1) else depth
            elif ch == ";" and depth == 0:
                j = -1
                break
            elif ch == "{" and depth == 0:
                break
            j += 1
        if j < 0 or j >= len(code):
            continue
        end = matching_brace(code, j)
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, end) + 1
        yield m.group(1), first, last - first + 1


def long_functions(root, limit, exclude):
    found = []
    for dirpath, dirs, names in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        dirs[:] = sorted(
            d for d in dirs
            if (d if rel_dir == "." else f"{rel_dir}/{d}") not in exclude
        )
        for name in sorted(names):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            for fn, line, lines in functions(path):
                if lines > limit:
                    found.append((lines, rel, line, fn))
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    return found


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", nargs="?", default=os.path.join(here, "..", "src"))
    p.add_argument("--limit", type=int, default=80)
    p.add_argument("--exclude", action="append", default=["sandbox"],
                   help="directory under ROOT to skip (sandbox always)")
    args = p.parse_args()
    found = long_functions(args.root, args.limit, set(args.exclude))
    for lines, rel, line, fn in found:
        print(f"{lines:4} {rel}:{line} {fn}")
    print(f"{len(found)} functions over {args.limit} lines")


if __name__ == "__main__":
    main()
