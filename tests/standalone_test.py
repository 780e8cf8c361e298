#!/usr/bin/env python3
"""The project stands alone: no tracked file names a folder beside the checkout (the team's
shared folder) or an absolute path of a build machine (a home or work directory). A clone
with nothing beside it must build and pass, so nothing may point out of it.

usage: standalone_test.py SOURCE_DIR
"""
import re
import subprocess
import sys
from pathlib import Path

# Spelled in pieces so that this file does not match itself.
SIBLING = re.compile(r"\.\./" + "shared" + r"\b")
ABSOLUTE = re.compile(r"(?<![\w.~-])/(?:" + "|".join(["home", "work", "root", "Users"]) + r")/[\w.-]")


def tracked_files(root):
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True).stdout
        return [root / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        # Not a git checkout (an exported tarball): every file outside builds and packages.
        skip = {".git", "node_modules"}
        return [p for p in root.rglob("*")
                if p.is_file() and not any(part in skip or part.startswith("build") for part in p.relative_to(root).parts)]


def main():
    root = Path(sys.argv[1]).resolve()
    found = []
    files = tracked_files(root)
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            for what, pattern in (("a folder beside the checkout", SIBLING), ("an absolute machine path", ABSOLUTE)):
                if pattern.search(line):
                    found.append(f"{path.relative_to(root)}:{n}: {what}: {line.strip()[:120]}")
    for f in found:
        print(f, file=sys.stderr)
    print(f"{len(files)} files checked, {len(found)} outside references")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
