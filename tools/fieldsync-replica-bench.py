#!/usr/bin/env python3
"""fieldsync-replica-bench: figures for the client library (issue 3's closing note). Not a test:
it prints what it measured and asserts nothing.

  fieldsync-replica-bench.py --lib build/client-lib/libfieldsync.so --server URL --token TOKEN \
      --replica DIR [--records 100000]

1. local put rate: N puts of ~200-byte Vietnamese member records into a fresh replica through
   the C ABI (each put is its own durable transaction, as the app's puts are);
2. push: one sync that sends them to the server in bounded change-sets.
The initial sync of those records into an empty replica is then measured with the CLI, e.g.
  /usr/bin/time -v fieldsync --replica EMPTY_DIR sync --quiet
(after `fieldsync --replica EMPTY_DIR init --server URL --token TOKEN`).
"""
import argparse
import ctypes
import json
import os
import time


class fs_error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char * 512)]


class fs_sync_report(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int64) for n in ("pushed", "applied", "merged", "conflicts", "rejected", "pulled",
                                               "bytes_sent", "bytes_received", "duration_ms", "decided")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--replica", required=True, help="a directory; replica.db is created in it")
    ap.add_argument("--records", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=1,
                    help="records per local transaction: 1 = fs_replica_put each, N > 1 = fs_replica_put_many")
    a = ap.parse_args()

    lib = ctypes.CDLL(a.lib)
    p, s, e = ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(fs_error)
    lib.fs_replica_open.restype, lib.fs_replica_open.argtypes = p, [s, e]
    lib.fs_replica_configure.argtypes = [p, s, s, e]
    lib.fs_replica_put.restype, lib.fs_replica_put.argtypes = p, [p, s, s, s, s, e]
    lib.fs_replica_put_many.restype, lib.fs_replica_put_many.argtypes = p, [p, s, e]
    lib.fs_replica_sync.argtypes = [p, p, p, ctypes.POINTER(fs_sync_report), e]
    lib.fs_free.argtypes = [p]
    lib.fs_replica_close.argtypes = [p]

    os.makedirs(a.replica, exist_ok=True)
    err = fs_error()
    r = lib.fs_replica_open(os.path.join(a.replica, "replica.db").encode(), ctypes.byref(err))
    if not r:
        raise SystemExit("open: " + err.message.decode())
    lib.fs_replica_configure(r, a.server.encode(), a.token.encode(), ctypes.byref(err))

    families = ["Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đặng", "Bùi"]
    given = ["An", "Bình", "Cường", "Dũng", "Hạnh", "Hương", "Lan", "Nhung"]
    bodies = []
    for i in range(a.records):
        rec = {"name": "%s Văn %s %d" % (families[i % 8], given[(i // 8) % 8], i),
               "cell": "Chi bộ ấp %d" % (i % 9 + 1), "role": "đảng viên",
               "notes": "Rời khỏi phòng thì tắt quạt máy, tắt đèn; không sử dụng máy in cho việc riêng"}
        bodies.append(json.dumps(rec, ensure_ascii=False).encode())
    print("record size: about %d bytes of JSON" % (sum(len(b) for b in bodies[:1000]) // 1000))

    if a.batch > 1:
        batches = []
        for k in range(0, len(bodies), a.batch):
            items = ",".join(b'{"collection":"members","unit_id":"xa-binh-hoa","data":%s}'.decode() % b.decode()
                             for b in bodies[k:k + a.batch])
            batches.append(("[" + items + "]").encode())
    t0 = time.perf_counter()
    if a.batch > 1:
        for b in batches:
            ptr = lib.fs_replica_put_many(r, b, ctypes.byref(err))
            if not ptr:
                raise SystemExit("put_many: " + err.message.decode())
            lib.fs_free(ptr)
    else:
        for b in bodies:
            ptr = lib.fs_replica_put(r, b"members", None, b"xa-binh-hoa", b, ctypes.byref(err))
            if not ptr:
                raise SystemExit("put: " + err.message.decode())
            lib.fs_free(ptr)
    t1 = time.perf_counter()
    print("local puts: %d in %.1f s = %.0f puts/s (%s, synchronous=FULL)" %
          (a.records, t1 - t0, a.records / (t1 - t0),
           "one durable transaction per put" if a.batch <= 1 else "put_many, %d per transaction" % a.batch))

    rep = fs_sync_report()
    t0 = time.perf_counter()
    rc = lib.fs_replica_sync(r, None, None, ctypes.byref(rep), ctypes.byref(err))
    t1 = time.perf_counter()
    if rc:
        raise SystemExit("sync: " + err.message.decode())
    print("push sync: %d changes (%d applied) in %.1f s = %.0f changes/s, %.1f MB sent, %.1f MB received" %
          (rep.pushed, rep.applied, t1 - t0, rep.pushed / (t1 - t0), rep.bytes_sent / 1e6, rep.bytes_received / 1e6))
    lib.fs_replica_close(r)


if __name__ == "__main__":
    main()
