#!/usr/bin/env python3
"""fieldsync-blob-bench: attachment throughput (issue 19's closing note). Not a test: it prints
what it measured and asserts nothing.

  tools/fieldsync-blob-bench.py --build build [--mib 5] [--chunk-kib 256]
        [--slow-kib 256] [--slow-chunk-kib 64] [--kbit 64] [--latency-ms 600]

Starts fieldsync-server on a fresh store in a temporary folder and an admin device, then
1. loopback: uploads a photo of --mib MiB in chunks of --chunk-kib (GET /v1/uploads for the
   offset, then PUT after PUT on one kept-alive connection, as the client library does), and
   downloads it whole and in 256 KiB ranges;
2. the slow link: the same through fieldsync-proxy at --kbit kbit/s each way with --latency-ms,
   for a photo of --slow-kib KiB in chunks of --slow-chunk-kib (a 5 MiB photo would take over
   ten minutes at 64 kbit/s; the rate is what matters).
Each figure is payload bytes over wall time, request headers and answers included in the time.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time


def start(cmd, pattern):
    # Both announce their port on stdout (the server's request log, on stderr, is not read).
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout
    deadline = time.time() + 30
    while time.time() < deadline:
        line = out.readline()
        m = re.search(pattern, line)
        if m:
            # Whatever it writes later is read and dropped, so a full pipe never stops it.
            threading.Thread(target=lambda: [None for _ in out], daemon=True).start()
            return p, int(m.group(1))
    p.kill()
    raise SystemExit("did not start: " + " ".join(cmd))


def photo(size, seed):
    rng = random.Random(seed)
    return b"\xff\xd8\xff\xe0" + rng.randbytes(size - 4)


def upload(port, token, data, chunk):
    sha = hashlib.sha256(data).hexdigest()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    auth = {"Authorization": "Bearer " + token}
    t0 = time.monotonic()
    c.request("GET", "/v1/uploads/" + sha, headers=auth)
    offset = json.loads(c.getresponse().read())["offset"]
    while offset < len(data):
        part = data[offset:offset + chunk]
        c.request("PUT", "/v1/uploads/" + sha, body=part,
                  headers={**auth, "Content-Type": "image/jpeg", "Upload-Offset": str(offset),
                           "Upload-Length": str(len(data))})
        r = c.getresponse()
        body = json.loads(r.read())
        if r.status not in (200, 201):
            raise SystemExit("upload refused: %s" % body)
        offset = body["offset"]
    return sha, time.monotonic() - t0


def download(port, token, sha, size, ranged):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    auth = {"Authorization": "Bearer " + token}
    t0 = time.monotonic()
    got = b""
    if not ranged:
        c.request("GET", "/v1/blobs/" + sha, headers=auth)
        got = c.getresponse().read()
    else:
        while len(got) < size:
            c.request("GET", "/v1/blobs/" + sha,
                      headers={**auth, "Range": "bytes=%d-%d" % (len(got), len(got) + ranged - 1)})
            got += c.getresponse().read()
    took = time.monotonic() - t0
    if hashlib.sha256(got).hexdigest() != sha:
        raise SystemExit("downloaded bytes differ")
    return took


def rate(nbytes, secs):
    return "%.1f MiB/s" % (nbytes / secs / 1048576) if nbytes / secs > 1048576 else "%.0f bytes/s" % (nbytes / secs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--mib", type=float, default=5)
    ap.add_argument("--chunk-kib", type=int, default=256)
    ap.add_argument("--slow-kib", type=int, default=256)
    ap.add_argument("--slow-chunk-kib", type=int, default=64)
    ap.add_argument("--kbit", type=int, default=64)
    ap.add_argument("--latency-ms", type=int, default=600)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="fieldsync-blob-bench-")
    procs = []
    try:
        db = os.path.join(work, "store.db")
        admin = os.path.join(a.build, "tools", "fieldsync-admin")
        subprocess.run([admin, "--db", db, "init"], check=True, stderr=subprocess.DEVNULL)
        token = subprocess.run([admin, "--db", db, "device", "add", "--name", "Máy đo", "--unit", "huyen",
                                "--role", "admin", "--unit-later"],
                               check=True, capture_output=True, text=True).stdout.split()[0]
        server, port = start([os.path.join(a.build, "server", "fieldsync-server"), "--db", db,
                              "--listen", "127.0.0.1:0"], r"listening on 127\.0\.0\.1:(\d+)")
        procs.append(server)

        size = int(a.mib * 1048576)
        data = photo(size, 1)
        sha, up = upload(port, token, data, a.chunk_kib * 1024)
        down = download(port, token, sha, size, 0)
        ranged = download(port, token, sha, size, 256 * 1024)
        print("loopback, %.1f MiB photo, %d KiB chunks: upload %.3f s (%s), download %.3f s (%s), "
              "download in 256 KiB ranges %.3f s (%s)" % (a.mib, a.chunk_kib, up, rate(size, up), down,
                                                         rate(size, down), ranged, rate(size, ranged)))

        proxy, pport = start([os.path.join(a.build, "tools", "fieldsync-proxy"), "--target", "127.0.0.1:%d" % port,
                              "--listen", "127.0.0.1:0", "--kbit", str(a.kbit), "--latency-ms", str(a.latency_ms)],
                             r"http://127\.0\.0\.1:(\d+)")
        procs.append(proxy)
        slow = photo(a.slow_kib * 1024, 2)
        sha, up = upload(pport, token, slow, a.slow_chunk_kib * 1024)
        down = download(pport, token, sha, len(slow), 0)
        print("slow link (%d kbit/s each way, %d ms latency), %d KiB photo, %d KiB chunks: upload %.1f s (%s, "
              "%.0f%% of the link), download %.1f s (%s)" % (
                  a.kbit, a.latency_ms, a.slow_kib, a.slow_chunk_kib, up, rate(len(slow), up),
                  100.0 * len(slow) * 8 / up / (a.kbit * 1000), down, rate(len(slow), down)))
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
