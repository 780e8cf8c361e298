#!/usr/bin/env python3
"""The fieldsync command-line client against a real server: every verb, its exit code, and
Vietnamese text round-tripping through put, sync, get and list.

usage: cli_test.py FIELDSYNC TEST_SERVER
"""
import json
import os
import re
import stat
import subprocess
import sys
import tempfile

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("CHECK failed:", what, file=sys.stderr)


def main():
    exe, server_exe = sys.argv[1], sys.argv[2]
    server = subprocess.Popen([server_exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url, token = server.stdout.readline().split()
        with tempfile.TemporaryDirectory() as tmp:
            run(exe, url, token, tmp)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    if failures:
        print(len(failures), "checks failed", file=sys.stderr)
        return 1
    print("CLI test passed")
    return 0


def run(exe, url, token, tmp):
    def fs(replica, *args, stdin=None):
        p = subprocess.run([exe, "--replica", replica, *args], input=stdin, capture_output=True, text=True,
                           timeout=120)
        return p.returncode, p.stdout, p.stderr

    a, b = tmp + "/a", tmp + "/b"
    # Before init: the error names the command that sets the replica up, not a library call.
    rc, _, err = fs(tmp + "/chua-init", "sync")
    check(rc == 1, "sync before init exits 1 (usage)")
    check("init --server URL --token TOKEN" in err and "configure(" not in err, "sync before init names init: " + err)
    check(not os.path.exists(tmp + "/chua-init"), "sync before init makes no replica")
    # A mistyped --replica is refused by every verb but init, and nothing is made.
    for verb in (["status"], ["get", "members", "m-1"], ["list", "members"], ["put", "members", "--unit", "ap-1", "{}"],
                 ["delete", "members", "m-1"], ["discard", "members", "m-1"], ["patch", "members", "m-1", "{}"]):
        rc, _, err = fs(tmp + "/go-nham", *verb)
        check(rc == 1 and "no replica in " + tmp + "/go-nham" in err and "init --server URL" in err,
              " ".join(verb) + " on a missing replica exits 1 naming init: " + err)
    check(not os.path.exists(tmp + "/go-nham"), "the refused verbs made nothing")
    # The replica file keeps the token: 0600 whatever the umask.
    old = os.umask(0)
    try:
        check(fs(a, "init", "--server", url, "--token", token)[0] == 0, "init a")
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(a + "/replica.db").st_mode)
    check(mode == 0o600, "replica.db (with the token) is 0600 under umask 0: %o" % mode)
    check(fs(b, "init", "--server", url, "--token", token)[0] == 0, "init b")
    name = "Huỳnh Thị Mỹ Duyên"
    rc, out, _ = fs(a, "put", "members", "--unit", "xa-tan-hao",
                    json.dumps({"name": name, "cell": "Chi bộ ấp 7"}, ensure_ascii=False))
    check(rc == 0 and len(out.strip()) == 36, "put prints the new id")
    mid = out.strip()
    rc, _, _ = fs(a, "put", "registrations", "--id", "dk-1", "--unit", "xa-tan-hao", "-",
                  stdin=json.dumps({"member": mid, "year": 2014,
                                    "commitments": ["Tiết kiệm giấy, mực in, điện"]}, ensure_ascii=False))
    check(rc == 0, "put from stdin")
    check(fs(a, "put", "members", "--unit", "u", "{\"cell\":\"x\"}")[0] == 3, "schema violation exits 3")
    check(fs(a, "put", "members", "--unit", "u", "{oops")[0] == 3, "bad JSON exits 3")
    check(fs(a, "put", "members", "{}")[0] == 1, "missing --unit exits 1")
    check(fs(a, "get", "members", "khong-co")[0] == 2, "absent record exits 2")
    check(fs(a, "frobnicate")[0] == 1, "unknown verb exits 1")
    for verb in ("init", "put", "patch", "get", "list", "delete", "status", "sync", "attach", "uploads", "download"):
        rc, out, _ = fs(a, verb, "--help")
        check(rc == 0 and out.startswith("usage: fieldsync"), verb + " --help")

    rc, out, _ = fs(a, "status")
    check(rc == 0 and "pending:   2" in out, "status shows 2 pending")
    rc, out, err = fs(a, "sync")
    check(rc == 0 and "pushed 2 (applied 2" in out, "sync report: " + out + err)
    check("pushed" in err, "plain progress lines when not on a terminal")

    rc, out, _ = fs(b, "sync", "--quiet")
    check(rc == 0 and "pulled 2" in out and err_free(out), "b pulls both")
    rc, out, _ = fs(b, "get", "members", mid)
    rec = json.loads(out)
    check(rc == 0 and rec["data"]["name"] == name and rec["state"] == "synced" and rec["version"] == 1, "get")
    rc, out, _ = fs(b, "list", "members", "--field", "cell", "--value", json.dumps("Chi bộ ấp 7", ensure_ascii=False))
    check(rc == 0 and [json.loads(l)["id"] for l in out.splitlines()] == [mid], "list by field")
    check(fs(b, "patch", "members", mid, json.dumps({"role": "phó bí thư"}, ensure_ascii=False))[0] == 0, "patch")
    check(fs(b, "delete", "registrations", "dk-1")[0] == 0, "delete")
    check(fs(b, "delete", "registrations", "dk-1")[0] == 2, "delete twice exits 2")
    check(fs(b, "sync", "--quiet")[0] == 0, "b syncs")
    check(fs(a, "sync", "--quiet")[0] == 0, "a syncs")
    rc, out, _ = fs(a, "get", "members", mid)
    check(json.loads(out)["data"]["role"] == "phó bí thư", "a sees b's patch")
    rc, out, _ = fs(a, "list", "registrations")
    check(rc == 0 and out.strip() == "", "the deleted registration is gone from a")

    # Conflict: both edit the same field offline; the second sync exits 7 and status names it.
    fs(a, "patch", "members", mid, "{\"role\": \"bí thư\"}")
    fs(b, "patch", "members", mid, "{\"role\": \"chi ủy viên\"}")
    check(fs(a, "sync", "--quiet")[0] == 0, "a wins the race")
    rc, out, _ = fs(b, "sync", "--quiet")
    check(rc == 7 and "conflicts 1" in out, "b's sync exits 7 with a conflict")
    rc, out, _ = fs(b, "status")
    check("conflicts: 1" in out and "members/" + mid + ": held for review" in out
          and "internal" not in out, "status lists the conflict as held for review, not as an error")
    rc, _, err = fs(b, "discard", "members", mid)
    check(rc == 3 and "held for review" in err, "a held change cannot be discarded: the reviewer decides")
    check(fs(b, "discard", "members", "khong-co")[0] == 2, "discard of an absent record exits 2")
    # An unsent edit is discarded: back to the server's version, nothing left to send.
    fs(a, "patch", "members", mid, "{\"notes\": \"viết nhầm\"}")
    rc, out, _ = fs(a, "discard", "members", mid)
    check(rc == 0 and "back to the server's version" in out, "discard of an unsent edit: " + out)
    rc, out, _ = fs(a, "get", "members", mid)
    got = json.loads(out)
    check(got["state"] == "synced" and "notes" not in got["data"], "the edit is gone: " + out)

    # --cbor: a fresh replica pulls the same records in CBOR, fewer body bytes than in JSON.
    def received(out):
        m = re.search(r"received ([0-9.]+) (B|KB)", out)
        check(m is not None, "sync report names the bytes received: " + out)
        return float(m.group(1)) * (1024 if m.group(2) == "KB" else 1)
    d, e = tmp + "/d", tmp + "/e"
    for r in (d, e):
        check(fs(r, "init", "--server", url, "--token", token)[0] == 0, "init " + r)
    rc_c, out_c, err_c = fs(d, "--cbor", "--no-gzip", "sync", "--quiet")
    rc_j, out_j, err_j = fs(e, "--no-gzip", "sync", "--quiet")
    check(rc_c == 0 and rc_j == 0, "CBOR and JSON syncs: " + err_c + err_j)
    check(received(out_c) < received(out_j), "CBOR answers are smaller: " + out_c + " vs " + out_j)
    rc, out, _ = fs(d, "get", "members", mid)
    check(rc == 0 and json.loads(out)["data"]["name"] == name, "the CBOR replica holds the same record")

    attachments(fs, tmp, a, b)

    # Wrong token: exit 6, no retry loop.
    c = tmp + "/c"
    fs(c, "init", "--server", url, "--token", "sai-token")
    rc, _, err = fs(c, "sync")
    check(rc == 6 and "retrying" not in err, "401 exits 6 without retrying")


def attachments(fs, tmp, a, b):
    """attach, uploads, sync (records first, then files) and download; file names with
    Vietnamese marks precomposed (NFC) and decomposed (NFD, as a Mac names files) arrive as
    they were written, byte for byte."""
    import random
    rng = random.Random(20141126)
    photo = b"\xff\xd8\xff\xe0" + bytes(rng.getrandbits(8) for _ in range(300 * 1024))
    scan = b"\x89PNG\r\n\x1a\n" + bytes(rng.getrandbits(8) for _ in range(20 * 1024))
    nfc = "Biên bản kiểm tra.jpg"
    nfd = "Bie\u0302n ba\u0309n ky\u0301 te\u0302n.png"  # Biên bản ký tên.png, decomposed
    photo_path, scan_path = os.path.join(tmp, "photo.jpg"), os.path.join(tmp, nfd)
    with open(photo_path, "wb") as f:
        f.write(photo)
    with open(scan_path, "wb") as f:
        f.write(scan)
    with open(os.path.join(tmp, "ghi-chu.txt"), "w") as f:
        f.write("không phải ảnh")
    check(fs(a, "put", "registrations", "--id", "dk-anh", "--unit", "xa-tan-hao",
             json.dumps({"member": "m-1", "year": 2015, "commitments": ["Chụp biên bản"]}))[0] == 0, "put dk-anh")
    rc, out, err = fs(a, "attach", "registrations", "dk-anh", "scans", photo_path, "--name", nfc)
    check(rc == 0, "attach a photo: " + err)
    ref = json.loads(out) if rc == 0 else {}
    check(ref.get("name") == nfc and ref.get("content_type") == "image/jpeg" and ref.get("size") == len(photo),
          "attach prints the reference: " + out)
    rc, out, err = fs(a, "attach", "registrations", "dk-anh", "scans", scan_path)
    check(rc == 0 and json.loads(out)["name"] == nfd, "attach names the file by its own (NFD) name: " + out + err)
    check(fs(a, "attach", "registrations", "dk-anh", "scans", os.path.join(tmp, "ghi-chu.txt"))[0] == 3,
          "a text file is refused with exit 3")
    check(fs(a, "attach", "registrations", "khong-co", "scans", photo_path)[0] == 2, "an absent record exits 2")
    check(fs(a, "attach", "registrations", "dk-anh", "scans", tmp + "/khong-co.jpg")[0] == 2, "an absent file exits 2")
    check(fs(a, "attach", "registrations", "dk-anh")[0] == 1, "attach without FIELD FILE exits 1")
    rc, out, _ = fs(a, "uploads")
    lines = out.splitlines()
    check(rc == 0 and len(lines) == 2 and all(l.startswith("waiting") for l in lines) and nfc in lines[0],
          "uploads lists two waiting files: " + out)

    rc, out, err = fs(a, "sync")
    check(rc == 0 and "pushed 1" in out and "files: sent 2" in out, "sync sends the record, then the files: " + out + err)
    check("upload: " in err, "plain upload progress lines when not on a terminal: " + err)
    check(out.index("pushed 1") < out.index("files: sent"), "records are reported before files")
    rc, out, _ = fs(a, "uploads")
    check(rc == 0 and all(l.startswith("sent") for l in out.splitlines()), "both sent: " + out)
    rc, out, _ = fs(a, "sync", "--quiet")
    check(rc == 0 and "files:" not in out, "nothing to send: no files line: " + out)

    # b still has the conflict of the members test: its syncs exit 7.
    check(fs(b, "sync", "--quiet")[0] == 7, "b pulls the record")
    rc, out, _ = fs(b, "get", "registrations", "dk-anh")
    scans = json.loads(out)["data"]["scans"] if rc == 0 else []
    check([s["name"] for s in scans] == [nfc, nfd], "names arrive unnormalised: %r" % [s["name"] for s in scans])
    got = os.path.join(tmp, "tai-ve.jpg")
    rc, out, err = fs(b, "download", ref.get("sha256", ""), got)
    check(rc == 0, "download: " + err)
    with open(got, "rb") as f:
        check(f.read() == photo, "downloaded bytes are the photo's")
    rc, _, err = fs(b, "download", "0" * 64, got)
    check(rc == 2, "a blob the server does not hold exits 2: " + err)
    check(fs(b, "download", "khong-phai-hash", got)[0] == 3, "a bad hash exits 3")


def err_free(out):
    return "error" not in out


if __name__ == "__main__":
    sys.exit(main())
