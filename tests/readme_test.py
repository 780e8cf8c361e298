#!/usr/bin/env python3
"""README.md's "Running by hand" block, run as it is written, in a folder with nothing in it
but a link to the build: it must set up a store (making data/), import units, add a device,
serve, and sync a record from a field client. The one change is the port: an ephemeral one
instead of 8080, so the test never meets a server of the developer's.

usage: readme_test.py README.md BUILD_DIR
"""
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path


def main():
    readme, build = Path(sys.argv[1]), Path(sys.argv[2]).resolve()
    text = readme.read_text(encoding="utf-8")
    m = re.search(r"<!-- readme-by-hand: begin -->\n```sh\n(.*?)```\n<!-- readme-by-hand: end -->", text, re.S)
    if not m:
        print("README.md has no readme-by-hand block", file=sys.stderr)
        return 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lines = []
    for line in m.group(1).splitlines():
        lines.append(line.replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
        if "fieldsync-server" in line and line.rstrip().split("#")[0].rstrip().endswith("&"):
            # A person starts the next command a moment later; the script waits for the port.
            lines.append(f"for i in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break; sleep 0.05; done")
    script = "set -euo pipefail\ntrap 'kill %1 2>/dev/null || true; wait' EXIT\n" + "\n".join(lines) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "build").symlink_to(build)
        p = subprocess.run(["bash", "-c", script], cwd=tmp, capture_output=True, text=True, timeout=120)
        print(p.stdout)
        print(p.stderr, file=sys.stderr)
        if p.returncode != 0:
            print(f"the README block failed with exit {p.returncode}", file=sys.stderr)
            return 1
        replica = subprocess.run([str(build / "tools/fieldsync"), "--replica", str(Path(tmp) / "data/ap1"), "status"],
                                 capture_output=True, text=True, timeout=60)
        print(replica.stdout)
    print("README block passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
