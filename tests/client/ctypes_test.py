#!/usr/bin/env python3
"""Uses only libfieldsync.so (through ctypes) and the contract of fieldsync.h: creates records
with Vietnamese text, syncs them through the transport callback (the HTTP request is sent by
Python's http.client, as a phone app would send it with its own stack), and reads them back in
a second replica that syncs with the built-in transport.

usage: ctypes_test.py LIBFIELDSYNC_SO TEST_SERVER
"""
import ctypes
import http.client
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

FS_OK, FS_ERR_INVALID_JSON, FS_ERR_NOT_FOUND, FS_ERR_NETWORK = 0, 2, 5, 8
FS_STATE_SYNCED, FS_STATE_PENDING = 0, 1


class fs_error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char * 512)]


class fs_sync_report(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in
                ("pushed", "applied", "merged", "conflicts", "rejected", "pulled",
                 "bytes_sent", "bytes_received", "duration_ms", "decided")]


TRANSPORT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                ctypes.c_char_p, ctypes.POINTER(ctypes.c_char), ctypes.c_size_t,
                                ctypes.c_int64, ctypes.c_void_p)
PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int64,
                               ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)


def load(path):
    lib = ctypes.CDLL(path)
    p, s, e = ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(fs_error)
    sig = {
        "fs_replica_open": (p, [s, e]),
        "fs_replica_close": (None, [p]),
        "fs_replica_configure": (ctypes.c_int, [p, s, s, e]),
        "fs_replica_put": (ctypes.c_void_p, [p, s, s, s, s, e]),
        "fs_replica_put_many": (ctypes.c_void_p, [p, s, e]),
        "fs_replica_patch": (ctypes.c_int, [p, s, s, s, e]),
        "fs_replica_remove": (ctypes.c_int, [p, s, s, e]),
        "fs_replica_get": (ctypes.c_void_p, [p, s, s, e]),
        "fs_replica_list": (ctypes.c_void_p, [p, s, s, s, s, e]),
        "fs_replica_pending_count": (ctypes.c_int64, [p, e]),
        "fs_replica_record_state": (ctypes.c_int, [p, s, s, e]),
        "fs_replica_sync": (ctypes.c_int, [p, PROGRESS_FN, p, ctypes.POINTER(fs_sync_report), e]),
        "fs_replica_set_transport": (ctypes.c_int, [p, TRANSPORT_FN, p, e]),
        "fs_http_response_set": (ctypes.c_int, [p, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]),
        "fs_replica_last_error_code": (ctypes.c_int, [p]),
        "fs_replica_last_error_message": (s, [p]),
        "fs_free": (None, [p]),
        "fs_version": (s, []),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


def take_string(lib, ptr):
    """Copies a char* the library returned, then frees it with fs_free (fieldsync.h)."""
    if not ptr:
        return None
    value = ctypes.string_at(ptr).decode("utf-8")
    lib.fs_free(ptr)
    return value


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("CHECK failed:", what, file=sys.stderr)


def main():
    lib = load(sys.argv[1])
    server = subprocess.Popen([sys.argv[2]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url, token = server.stdout.readline().split()
        run(lib, url, token)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    if failures:
        print(len(failures), "checks failed", file=sys.stderr)
        return 1
    print("ctypes test passed (fieldsync %s)" % lib.fs_version().decode())
    return 0


def run(lib, url, token):
    err = fs_error()
    tmp = tempfile.TemporaryDirectory()
    a = lib.fs_replica_open(os.path.join(tmp.name, "a.db").encode(), ctypes.byref(err))
    check(a and err.code == FS_OK, "open a")
    check(lib.fs_replica_configure(a, url.encode(), token.encode(), ctypes.byref(err)) == FS_OK, "configure a")

    # The app's own HTTP stack: every request goes through this callback.
    sent = []
    fail_next = [1]  # the first request "has no network": the library must retry it

    def transport(user, method, target, headers, body, body_len, timeout_ms, response):
        if fail_next[0] > 0:
            fail_next[0] -= 1
            return 1
        parts = urllib.parse.urlsplit(target.decode())
        hdrs = {}
        for line in headers.decode().split("\r\n"):
            if line:
                k, v = line.split(": ", 1)
                hdrs[k] = v
        payload = ctypes.string_at(body, body_len)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_ms / 1000.0)
        try:
            conn.request(method.decode(), parts.path, body=payload, headers=hdrs)
            res = conn.getresponse()
            data = res.read()
        except OSError:
            return 1
        finally:
            conn.close()
        sent.append(json.loads(payload))
        return lib.fs_http_response_set(response, res.status, data, len(data))

    transport_cb = TRANSPORT_FN(transport)  # kept alive for as long as the replica uses it
    check(lib.fs_replica_set_transport(a, transport_cb, None, ctypes.byref(err)) == FS_OK, "set transport")

    name = "Võ Thị Ngọc Hân"
    rid = take_string(lib, lib.fs_replica_put(a, b"members", None, b"xa-phong-nam", json.dumps(
        {"name": name, "cell": "Chi bộ ấp 2", "role": "đảng viên"}, ensure_ascii=False).encode(), ctypes.byref(err)))
    check(rid is not None and len(rid) == 36, "put returns a UUID")
    check(lib.fs_replica_record_state(a, b"members", rid.encode(), None) == FS_STATE_PENDING, "pending")
    check(lib.fs_replica_put(a, b"members", None, b"u", b"{oops", ctypes.byref(err)) is None, "bad json refused")
    check(err.code == FS_ERR_INVALID_JSON, "bad json code")
    check(lib.fs_replica_last_error_code(a) == FS_ERR_INVALID_JSON, "last error code")
    check(len(lib.fs_replica_last_error_message(a)) > 0, "last error message")

    many = [{"collection": "study_sessions", "unit_id": "xa-phong-nam",
             "data": {"unit": "xa-phong-nam", "date": "2014-0%d-15" % (k + 1), "audience": "giáo viên",
                      "invited": 40, "attended": 39 - k}} for k in range(3)]
    many_ids = json.loads(take_string(lib, lib.fs_replica_put_many(
        a, json.dumps(many, ensure_ascii=False).encode(), ctypes.byref(err))) or "null")
    check(isinstance(many_ids, list) and len(many_ids) == 3, "put_many returns the ids")

    progress = []

    def on_progress(user, phase, pushed, to_push, pulled, sent_b, recv_b):
        progress.append((phase, pushed, pulled))
        return 1

    progress_cb = PROGRESS_FN(on_progress)
    report = fs_sync_report()
    rc = lib.fs_replica_sync(a, progress_cb, None, ctypes.byref(report), ctypes.byref(err))
    check(rc == FS_OK, "sync a: " + err.message.decode(errors="replace"))
    check(report.applied == 4, "applied 4")
    check(any(p[0] == 2 for p in progress), "a retry wait was reported")
    check(len(sent) >= 1 and sent[0]["changes"][0]["data"]["name"] == name, "the callback carried the change")
    check(len(sent[0]["changes"]) == 4, "one change-set of 4")
    check(lib.fs_replica_pending_count(a, None) == 0, "nothing pending")
    check(lib.fs_replica_record_state(a, b"members", rid.encode(), None) == FS_STATE_SYNCED, "synced")

    # A second replica with the built-in transport reads it back.
    b = lib.fs_replica_open(os.path.join(tmp.name, "b.db").encode(), ctypes.byref(err))
    check(lib.fs_replica_configure(b, url.encode(), token.encode(), ctypes.byref(err)) == FS_OK, "configure b")
    check(lib.fs_replica_sync(b, PROGRESS_FN(0), None, None, ctypes.byref(err)) == FS_OK, "sync b")
    rec = json.loads(take_string(lib, lib.fs_replica_get(b, b"members", rid.encode(), ctypes.byref(err))))
    check(rec["data"]["name"] == name, "name round-trips byte for byte")
    check(rec["version"] == 1 and rec["state"] == "synced", "version and state")
    sessions = json.loads(take_string(lib, lib.fs_replica_list(b, b"study_sessions", b"xa-phong-nam", None, None,
                                                               ctypes.byref(err))))
    check(sorted(x["data"]["attended"] for x in sessions) == [37, 38, 39], "put_many records arrive")
    listed = json.loads(take_string(lib, lib.fs_replica_list(
        b, b"members", None, b"cell", json.dumps("Chi bộ ấp 2", ensure_ascii=False).encode(), ctypes.byref(err))))
    check([r["id"] for r in listed] == [rid], "list by field")
    check(lib.fs_replica_get(b, b"members", b"khong-co", ctypes.byref(err)) is None and err.code == FS_OK, "absent")
    check(lib.fs_replica_remove(b, b"members", b"khong-co", ctypes.byref(err)) == FS_ERR_NOT_FOUND, "remove absent")

    lib.fs_replica_close(a)
    lib.fs_replica_close(b)
    tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
