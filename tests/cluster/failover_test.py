#!/usr/bin/env python3
"""Failover under load (issue 17; ARCHITECTURE.md, "Failover").

Starts the high-availability cluster of tools/cluster (etcd, three PostgreSQL nodes under
Patroni in strict synchronous mode, HAProxy, fieldsync servers), and while devices push
change-sets and others pull with stored cursors, all through HAProxy:

  1. kills the primary node (its Patroni and its PostgreSQL together), waits for writes to
     come back, and starts the node again (it rejoins as a standby);
  2. kills the new primary's postmaster alone (Patroni lives on);
  3. kills one fieldsync server.

Then checks what a sync system promises: every acknowledged change is in history exactly
once and no change is there twice; every puller holds every acknowledged record; no puller
was given the same version of a record twice without a reset in between. Prints the seconds
without writes after each kill (printed, never asserted: tests do not assert on time).

usage: failover_test.py SERVER_BIN ADMIN_BIN [--fast] [--servers N] [--keep DIR]
  --fast   Patroni's short timings (tools/cluster up --fast) instead of its defaults
  --keep   run the cluster in DIR and keep its logs there (DIR/cluster/logs) when it stops
Exit status 0 when every check holds, 1 otherwise.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.path.join(HERE, "..", "..", "tools", "cluster")
UNIT = "xa-binh-hoa"
DISTRICT = "huyen-giong-trom"
PUSHERS = 4
PULLERS = 2
PER_SET = 50
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đặng", "Bùi"]
GIVEN = ["Thị Lan", "Văn Bình", "Thị Hoa", "Minh Tâm", "Thị Thu", "Văn Sáu", "Hữu Phước", "Ngọc Ánh"]


def log(*parts):
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


class Client:
    """One device's HTTP connection to HAProxy; reconnects after any failure."""

    def __init__(self, url, token):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.token = token
        self.conn = None

    def sync(self, body):
        """POST /v1/sync: (status, answer) or (None, error text) when no answer came."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=40)
            self.conn.request("POST", "/v1/sync", body=json.dumps(body).encode(),
                              headers={"Authorization": "Bearer " + self.token,
                                       "Content-Type": "application/json"})
            r = self.conn.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.close()
            try:
                return r.status, json.loads(data) if data else None
            except ValueError:
                return r.status, data.decode(errors="replace")
        except (OSError, http.client.HTTPException) as e:
            self.close()
            return None, f"{type(e).__name__}: {e}"

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Run:
    def __init__(self):
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.acked = set()          # change ids answered "applied"
        self.answer_times = []      # monotonic time of every push answered 200
        self.answers = []           # (first sent, answered) of every push answered 200
        self.retries = 0            # pushes answered without a decision (sent again)
        self.problems = []


def pusher(run, client, k):
    n = 0
    cursor = ""
    while not run.stop.is_set():
        changes = []
        for i in range(PER_SET):
            rid = f"p{k}-{n}-{i}"
            name = f"{random.choice(SURNAMES)} {random.choice(GIVEN)} {rid}"
            changes.append({"change_id": "c-" + rid, "collection": "members", "id": rid, "unit_id": UNIT,
                            "op": "put", "base_version": 0,
                            "data": {"name": name, "cell": UNIT, "role": "đảng viên"}})
        body = {"batch_id": f"b-p{k}-{n}", "changes": changes, "limit": 1}
        # The same change-set until it is answered: a retry is answered from its first answer.
        first_sent = time.monotonic()
        while True:
            if cursor:
                body["cursor"] = cursor
            status, answer = client.sync(body)
            if status == 200:
                break
            if status is not None and status not in (502, 503, 504):
                run.problems.append(f"pusher {k}: HTTP {status}: {answer}")
                return
            with run.lock:
                run.retries += 1
            time.sleep(0.2)
        now = time.monotonic()
        with run.lock:
            run.answer_times.append(now)
            run.answers.append((first_sent, now))
            for r in answer["results"]:
                if r["status"] == "applied":
                    run.acked.add(r["change_id"])
                else:
                    run.problems.append(f"pusher {k}: {r['change_id']} answered {r['status']}")
        cursor = answer.get("cursor", cursor) if not answer.get("reset") else answer.get("cursor", "")
        n += 1


class Puller:
    def __init__(self, client, j):
        self.client, self.j = client, j
        self.cursor = ""
        self.held = {}       # record id -> version
        self.resets = 0
        self.twice = []      # (id, version) given again at a version already held, without a reset

    def page(self, wait_ms):
        """One pull; returns (got an answer, more)."""
        status, answer = self.client.sync({"cursor": self.cursor, "limit": 1000, "wait_ms": wait_ms})
        if status != 200:
            return False, True
        if answer.get("reset"):
            self.resets += 1
            self.held.clear()
        for c in answer.get("changes", []):
            if self.held.get(c["id"], 0) >= c["version"]:
                self.twice.append((c["id"], c["version"]))
            self.held[c["id"]] = c["version"]
        self.cursor = answer["cursor"]
        return True, bool(answer.get("more"))


def puller_loop(run, p):
    while not run.stop.is_set():
        ok, _ = p.page(1000)
        if not ok:
            time.sleep(0.2)


def seconds_without_writes(times, moment, resumed):
    """The longest time between two push answers (or the kill and the next answer) in
    [moment, resumed]: how long no device had a change-set accepted."""
    ts = sorted(t for t in times if moment < t <= resumed)
    before = [t for t in times if t <= moment]
    points = ([before[-1]] if before else [moment]) + ts
    return max((b - a for a, b in zip(points, points[1:])), default=resumed - moment)


def wait_for_writes_after(run, moment, timeout):
    """Waits until a change-set first sent after `moment` is answered (one in flight at the
    kill may be answered just after it); returns when, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with run.lock:
            done = [answered for sent, answered in run.answers[-200:] if sent > moment]
        if done:
            return min(done)
        time.sleep(0.2)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("server_bin")
    ap.add_argument("admin_bin")
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--keep")
    a = ap.parse_args()
    random.seed(17)

    made = a.keep is None
    base = a.keep or tempfile.mkdtemp(prefix="fieldsync-failover-")
    os.makedirs(base, exist_ok=True)
    os.chmod(base, 0o755)  # PostgreSQL's user (tools/cluster runs it as fieldsync-pg under root) goes through it
    cdir = os.path.join(base, "cluster")
    up = [CLUSTER, "up", "--dir", cdir, "--servers", str(a.servers),
          "--server-bin", a.server_bin, "--admin-bin", a.admin_bin]
    if a.fast:
        up.append("--fast")
    cluster = lambda *args: run([CLUSTER, *args, "--dir", cdir])
    ok = False
    r = None
    try:
        log("starting the cluster:", " ".join(up[1:]))
        t = time.monotonic()
        subprocess.run(up, check=True)
        log(f"cluster up in {time.monotonic() - t:.1f} s")
        with open(os.path.join(cdir, "cluster.json")) as f:
            state = json.load(f)
        store = "postgres:" + state["postgres_conninfo"]
        url = state["fieldsync_url"]

        admin = lambda *args: run([a.admin_bin, "--store", store, *args]).strip()
        admin("unit", "add", "--id", DISTRICT, "--name", "Huyện Giồng Trôm", "--kind", "district")
        admin("unit", "add", "--id", UNIT, "--name", "Xã Bình Hòa", "--kind", "commune", "--parent", DISTRICT)
        tokens = [admin("device", "add", "--name", f"Điện thoại chi bộ ấp {k + 1}", "--unit", UNIT)
                  for k in range(PUSHERS)]
        pull_tokens = [admin("device", "add", "--name", f"Máy Văn phòng Huyện ủy {j + 1}", "--unit", DISTRICT)
                       for j in range(PULLERS)]

        r = Run()
        pullers = [Puller(Client(url, tok), j) for j, tok in enumerate(pull_tokens)]
        # Daemons: a failure part-way (the cluster stopped under them) must not keep the test
        # alive for their retries.
        threads = [threading.Thread(target=pusher, args=(r, Client(url, tok), k), daemon=True)
                   for k, tok in enumerate(tokens)]
        threads += [threading.Thread(target=puller_loop, args=(r, p), daemon=True) for p in pullers]
        for th in threads:
            th.start()

        gaps = []
        time.sleep(8)
        events = [("the primary node (Patroni and PostgreSQL)", "kill-primary"),
                  ("the new primary's postmaster alone", "kill-postmaster")]
        for what, verb in events:
            asked = time.monotonic()
            said = cluster(verb).strip()
            # Writes are lost from the kill on: a change-set sent before the command returned
            # may have been answered by the node it was about to kill.
            moment = time.monotonic()
            log(f"killed {what} ({moment - asked:.1f} s to find and kill it): {said}")
            resumed = wait_for_writes_after(r, moment, 180)
            if resumed is None:
                r.problems.append(f"no write answered within 180 s of killing {what}")
                break
            with r.lock:
                gap = seconds_without_writes(r.answer_times, moment, resumed)
            gaps.append((what, gap))
            log(f"writes answered again; {gap:.1f} s without writes")
            time.sleep(5)
            if verb == "kill-primary":
                # "killed NODE, the leader, at ..."
                node = said.split()[1].rstrip(",") if len(said.split()) > 1 else ""
                log("starting the lost node again:", cluster("restart-node", node).strip())
                time.sleep(10)
        moment = time.monotonic()
        log("killed a fieldsync server:", cluster("kill-server", "1").strip())
        time.sleep(8)
        with r.lock:
            gap = seconds_without_writes(r.answer_times, moment, time.monotonic())
        gaps.append(("one fieldsync server", gap))

        r.stop.set()
        for th in threads:
            th.join(timeout=120)
        if any(th.is_alive() for th in threads):
            r.problems.append("a device's thread did not finish")
        # The pullers catch up: pages until one says nothing more.
        for p in pullers:
            for _ in range(1000):
                got, more = p.page(0)
                if got and not more:
                    break
                if not got:
                    time.sleep(0.5)

        # What the store holds, read through HAProxy from the primary.
        psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
        rows = run([psql, state["postgres_conninfo"], "-At", "-c",
                    "SELECT change_id, count(*) FROM history WHERE change_id LIKE 'c-p%' GROUP BY change_id"])
        in_history = {}
        for line in rows.splitlines():
            cid, n = line.rsplit("|", 1)
            in_history[cid] = int(n)
        # The promotion was noticed: the first write on the new timeline wrote off the seqs
        # the lost primary may have shown (ARCHITECTURE.md, "Failover").
        lost_seqs = run([psql, state["postgres_conninfo"], "-At", "-c",
                         "SELECT value FROM meta WHERE key = 'lost_seqs'"]).strip()
        timeline = run([psql, state["postgres_conninfo"], "-At", "-c",
                        "SELECT value FROM meta WHERE key = 'timeline'"]).strip()
        if not lost_seqs:
            r.problems.append("the promotion was not noticed: no seqs written off (meta lost_seqs)")
        twice = sorted(c for c, n in in_history.items() if n > 1)
        missing = sorted(r.acked - in_history.keys())
        acked_ids = {c[2:] for c in r.acked}

        print()
        print("Failover under load: %d pushing devices (change-sets of %d), %d pulling, %d servers%s"
              % (PUSHERS, PER_SET, PULLERS, a.servers, ", Patroni's short timings" if a.fast else ", Patroni's default timings"))
        for what, gap in gaps:
            print(f"  seconds without writes after killing {what}: " + (f"{gap:.1f}" if gap is not None else "none came back"))
        print(f"  changes acknowledged: {len(r.acked)}; in history: {len(in_history)}; "
              f"pushes sent again after no answer: {r.retries}")
        print(f"  acknowledged but not in history: {len(missing)}; in history twice or more: {len(twice)}")
        print(f"  timeline now {timeline}; seqs written off at promotions: {lost_seqs or 'none'}")
        for p in pullers:
            lacking = acked_ids - p.held.keys()
            print(f"  puller {p.j + 1}: holds {len(p.held)} records, lacks {len(lacking)} acknowledged ones, "
                  f"given a version twice: {len(p.twice)}, resets: {p.resets}")
            if lacking:
                r.problems.append(f"puller {p.j + 1} lacks {len(lacking)} acknowledged records, e.g. {sorted(lacking)[:3]}")
            if p.twice:
                r.problems.append(f"puller {p.j + 1} was given a version it held: {p.twice[:3]}")
        if missing:
            r.problems.append(f"{len(missing)} acknowledged changes are not in history, e.g. {missing[:3]}")
        if twice:
            r.problems.append(f"{len(twice)} changes are in history more than once, e.g. {twice[:3]}")
        if len(r.acked) < 1000:
            r.problems.append(f"only {len(r.acked)} changes acknowledged: the load did not run")
        for problem in r.problems[:20]:
            print("PROBLEM:", problem)
        ok = not r.problems
        print("failover test:", "passed" if ok else "FAILED")
    except subprocess.CalledProcessError as e:
        print(f"failover test: FAILED: {' '.join(e.cmd)} exited {e.returncode}\n{e.stdout or ''}{e.stderr or ''}")
    except Exception:
        traceback.print_exc()
        print("failover test: FAILED")
    finally:
        if r is not None:
            r.stop.set()
        # Stopped in any case: down keeps a given DIR's logs/.
        if os.path.exists(os.path.join(cdir, "cluster.json")):
            subprocess.run([CLUSTER, "down", "--dir", cdir])
        if made:
            shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
