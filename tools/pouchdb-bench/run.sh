#!/usr/bin/env bash
# PouchDB Server beside fieldsync on the same records (issue 18): starts pouchdb-server (its
# default LevelDB backend in a temporary folder: the in-memory one would not be a fair match
# for fieldsync's durable SQLite) on a free loopback port, posts N docs with _bulk_docs in
# batches of B from C clients (bench.mjs), then runs
#   fieldsync-bench --devices C --batch B --changes N
# and prints both rates and their ratio. Not like for like in one respect, in PouchDB's favour:
# its LevelDB writes are not fsynced (pouchdb-adapter-leveldb-core passes no `sync` option, and
# leveldown's default is false), while fieldsync commits with synchronous=FULL.
#
# Usage: tools/pouchdb-bench/run.sh [--docs N] [--batch B] [--clients C]   (200000, 1000, 4)
# Needs node and the pinned packages: npm ci --prefix tools/pouchdb-bench (run here if missing);
# fieldsync-bench from $FIELDSYNC_BUILD (default: build/ of the checkout).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bench=${FIELDSYNC_BUILD:-$repo/build}/tools/fieldsync-bench

docs=200000 batch=1000 clients=4
while [ $# -gt 0 ]; do
  case "$1" in
    --docs) docs=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    *) echo "usage: $0 [--docs N] [--batch B] [--clients C]" >&2; exit 2 ;;
  esac
done

[ -x "$bench" ] || { echo "run.sh: no $bench (cmake --build build --target fieldsync-bench)" >&2; exit 1; }
if [ ! -x "$here/node_modules/.bin/pouchdb-server" ]; then
  npm ci --prefix "$here" --no-audit --no-fund >&2
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/pouchdb-bench.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

# A free port: bound and released by the kernel's choice; the small race is harmless here.
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
# Started from its folder: pouchdb-server writes config.json and its log in the working directory.
(cd "$dir" && exec "$here/node_modules/.bin/pouchdb-server" --host 127.0.0.1 --port "$port" --dir "$dir" \
   > "$dir/server.log" 2>&1) &
server_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/" > /dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$dir/server.log" >&2; echo "run.sh: pouchdb-server stopped" >&2; exit 1; }
  sleep 0.2
done
echo "pouchdb-server $(curl -s "http://127.0.0.1:$port/" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log(j.version+", adapters "+j["pouchdb-adapters"])})') on 127.0.0.1:$port, LevelDB in $dir"

pouch_line=$(node "$here/bench.mjs" --url "http://127.0.0.1:$port" --docs "$docs" --batch "$batch" --clients "$clients")
echo "$pouch_line"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
# The machine to fieldsync alone, as pouchdb-server had it.

# fieldsync-bench's server logs each request to stderr: not figures.
fs_out=$("$bench" --devices "$clients" --batch "$batch" --changes "$docs" 2>/dev/null)
push_line=$(grep '^push:' <<< "$fs_out")
echo "fieldsync $push_line"

pouch_rate=$(sed -E 's/.*: ([0-9]+) docs\/s.*/\1/' <<< "$pouch_line")
fs_rate=$(sed -E 's/.* s: ([0-9]+) accepted changes\/s.*/\1/' <<< "$push_line")
echo "note: pouchdb's LevelDB writes are not fsynced, fieldsync's are (synchronous=FULL)"
echo "pouchdb: $pouch_rate docs/s; fieldsync: $fs_rate accepted changes/s; ratio fieldsync/pouchdb: $(node -e "console.log(($fs_rate / $pouch_rate).toFixed(2))")"
