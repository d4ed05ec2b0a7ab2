#!/usr/bin/env bash
# Quick start: builds surge, starts a local cluster (3 coordinators, 3 nodes, 64 shards x 3
# replicas) on loopback, shows its status, kills the coordinator leader with kill -9 and shows
# the cluster answering from a new leader, creates a tenant, submits a burst of orders and
# shows them spread over shards and replicas, resubmits them (all recognised as retries), then
# stops everything.
# SURGE_DEV_DIR picks the working directory (default: a fresh temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
echo "== building (the first build compiles RocksDB: 10-15 minutes on 2 cores)"
cargo build --workspace --bins --locked --quiet
dir="${SURGE_DEV_DIR:-$(mktemp -d /tmp/surge-dev.XXXXXX)}"
ctl=./target/debug/surgectl
./target/debug/surgectl dev up --dir "$dir" > "$dir.up.log" 2>&1 &
up=$!
trap 'kill -TERM $up 2>/dev/null; wait $up 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  [ -f "$dir/cluster.json" ] && break
  kill -0 $up 2>/dev/null || { cat "$dir.up.log"; exit 1; }
  sleep 0.2
done
[ -f "$dir/cluster.json" ] || { echo "cluster did not come up; see $dir/logs" >&2; exit 1; }
echo "== the cluster"
$ctl cluster status
leader=$($ctl -o json cluster status | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])')
pid=$(python3 -c "import json; d=json.load(open('$dir/cluster.json')); print([c['pid'] for c in d['coordinators'] if c['id']==$leader][0])")
echo
echo "== kill -9 coordinator $leader (the leader, pid $pid)"
kill -9 "$pid"
start=$(date +%s.%N)
$ctl cluster status
echo "(answered $(python3 -c "import time; print(round(time.time()-$start, 2))") s after the kill)"
echo
echo "== nodes"
$ctl node list
echo
echo "== a merchant: tenant demo and its API key"
key=$($ctl -o json tenant create "demo-$(date +%s)" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
echo "api key: ${key:0:12}... (printed once; surge keeps only its hash)"
echo
echo "== a burst of 5000 orders (~1 KiB each), batches of 200, through surge-client"
SURGE_API_KEY="$key" $ctl order burst --count 5000 --batch 200 --run quickstart
echo
echo "== the same burst again: every order is recognised as a retry, none is stored twice"
SURGE_API_KEY="$key" $ctl order burst --count 5000 --batch 200 --run quickstart | tail -n 1
echo
echo "== the oldest five received orders"
SURGE_API_KEY="$key" $ctl order list --limit 5
echo
echo "cluster files, logs and data: $dir"
