#!/usr/bin/env python3
"""The quick fuzz build of `make test` (scripts/fuzz.sh with FUZZ_RUNS) takes
the debug build's compiled dependencies instead of compiling them again. Cargo
reuses a compiled crate only when everything it hashes is the same: version,
features, profile, and the same for every crate below it. This check compares
the two builds' unit graphs (`cargo build --unit-graph`) and fails on any
dependency the fuzz build would compile differently from
`cargo build --workspace --lib --bins`: a version in fuzz/Cargo.lock that
differs from Cargo.lock, a feature one side turns on, a profile setting.
The fix is in fuzz/Cargo.toml (a feature unifier, the [profile.dev] copy) or in
fuzz/Cargo.lock (`cargo update --manifest-path fuzz/Cargo.toml -p NAME
--precise VERSION`). Nothing is built. Exits 1 on a difference.
"""
import json
import os
import subprocess
import sys

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# Compiled only for the fuzz targets: libFuzzer and the crate its input type comes from.
FUZZ_ONLY = {"libfuzzer-sys", "arbitrary"}


def units(args):
    """[(package, target, mode, features, profile)] of the registry crates a
    `cargo build ARGS` would compile (a crate can be there twice: for the
    build scripts and for the library, with different features)."""
    # --unit-graph is unstable: RUSTC_BOOTSTRAP for this cargo call only.
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    out = subprocess.run(
        ["cargo", "build", "--unit-graph", "-Z", "unstable-options", *args],
        cwd=REPO, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"check-fuzz-deps: cargo {' '.join(args)}: {out.stderr.strip()}")
    found = []
    for unit in json.loads(out.stdout)["units"]:
        pkg = unit["pkg_id"]
        if pkg.startswith("path+"):
            continue  # this repository's crates: built with other flags on purpose
        found.append((pkg.rsplit("#", 1)[-1], unit["target"]["name"], unit["mode"],
                      tuple(sorted(unit["features"])),
                      json.dumps(unit["profile"], sort_keys=True)))
    return found


def main():
    main_build = set(units(["--workspace", "--lib", "--bins"]))
    fuzz_build = units(["--manifest-path", "fuzz/Cargo.toml", "--bins"])
    problems = []
    for unit in sorted(set(fuzz_build) - main_build):
        pkg, target, mode, features, profile = unit
        if pkg.split("@")[0] in FUZZ_ONLY:
            continue
        like = [u for u in main_build if u[:3] == unit[:3]]
        if not like:
            problems.append(f"{pkg} ({target}, {mode}): not in the debug build "
                            "(another version in fuzz/Cargo.lock?)")
            continue
        for other in like:
            if other[3] != features:
                problems.append(f"{pkg} ({target}, {mode}): features {list(features)} in the "
                                f"fuzz build, {list(other[3])} in the debug build")
            elif other[4] != profile:
                problems.append(f"{pkg} ({target}, {mode}): profile {profile} in the fuzz "
                                f"build, {other[4]} in the debug build")
    for problem in problems:
        print(f"check-fuzz-deps: {problem}")
    if problems:
        print("check-fuzz-deps: the quick fuzz build would compile these again (see this "
              "script's docstring for the fix)")
        return 1
    print(f"check-fuzz-deps: the fuzz build's {len(fuzz_build)} dependency units match the debug build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
