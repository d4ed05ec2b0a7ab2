#!/usr/bin/env bash
# Quick start: builds surge, starts a local cluster (3 coordinators, 3 nodes, 64 shards x 3
# replicas) on loopback, shows its status, kills the coordinator leader with kill -9 and shows
# the cluster answering from a new leader, creates a tenant, submits a burst of orders and
# shows them spread over shards and replicas, resubmits them (all recognised as retries). A
# fourth node joins and the scheduler moves replicas and leaders onto it. Then the warehouse
# part: review and carrier rules, waybill ranges, a printing station writing labels to a folder
# while a node is killed with -9 mid-run; that node stays down and its replicas are rebuilt on
# the other nodes; a PDF/PNG label preview, and a summary that no order was lost and no label or
# waybill doubled. Then it stops everything.
# Every port runs TLS (peer ports mutual TLS) with certificates dev up makes.
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
# dev up made a cluster CA and a certificate per process: mutual TLS between them, TLS on
# the client ports. surgectl calls with the operator certificate it made.
export SURGE_CA="$dir/certs/ca.pem" SURGE_CERT="$dir/certs/operator-surgectl.pem" SURGE_KEY="$dir/certs/operator-surgectl.key"
# dev up initialized the cluster and kept its first admin token in a 0600 file.
export SURGE_TOKEN_FILE="$dir/admin.token"
echo "== TLS on every port; certificates in $dir/certs; admin token in $SURGE_TOKEN_FILE"
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
tenant="demo-$(date +%s)"
key=$($ctl -o json tenant create "$tenant" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
echo "api key: ${key:0:12}... (printed once; surge keeps only its hash)"
echo
echo "== the warehouse: review and carrier rules, and the carriers' waybill number ranges"
$ctl tenant rules set --tenant "$tenant" rules/examples/rules.toml
$ctl waybill add-range --tenant "$tenant" --carrier SF --prefix SF --from 1 --to 200000
$ctl waybill add-range --tenant "$tenant" --carrier ZTO --prefix ZT --from 1 --to 200000
sleep 1.5 # nodes take in new rules with their next heartbeat (every second)
echo
echo "== operators: a viewer token for the 杭州 warehouse dashboard can read, not change"
viewer=$($ctl -o json token create --name 杭州仓看板 --role viewer | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
as_viewer() { SURGE_TOKEN="$viewer" $ctl "$@"; }   # --token/SURGE_TOKEN wins over SURGE_TOKEN_FILE
as_viewer node list > /dev/null && echo "   viewer: node list answered"
if as_viewer node drain 1 2> "$dir.viewer.err"; then
  echo "a viewer token drained a node" >&2; exit 1
fi
echo "   viewer: node drain refused: $(head -n 1 "$dir.viewer.err")"
$ctl audit list --limit 5
echo
echo "== a burst of 5000 orders (~1 KiB each), batches of 200, through surge-client"
SURGE_API_KEY="$key" $ctl order burst --count 5000 --batch 200 --run quickstart
echo
echo "== the same burst again: every order is recognised as a retry, none is stored twice"
SURGE_API_KEY="$key" $ctl order burst --count 5000 --batch 200 --run quickstart | tail -n 1
echo
echo "== platform orders: a Tmall export (one Trade per line, receivers in Chinese) imported twice"
echo "   (the closed trade cancels nothing it never imported; the second import finds only retries)"
SURGE_API_KEY="$key" $ctl order import --platform tmall platforms/tests/fixtures/tmall.jsonl
SURGE_API_KEY="$key" $ctl order import --platform tmall platforms/tests/fixtures/tmall.jsonl
echo
echo "== scale out: node-4 joins the running cluster; the scheduler moves replicas and leaders onto it"
$ctl dev add-node --dir "$dir"
$ctl cluster status --wait-balanced --timeout 10m | tail -n 10
echo
echo "== a node down longer than max-down-time gets its replicas rebuilt elsewhere (default 5m; 20s here)"
$ctl cluster set max-down-time 20s
echo
labels="$dir/labels"
echo "== printing station dock-1 writes labels (ZPL) to $labels"
SURGE_API_KEY="$key" $ctl station run --tenant "$tenant" --station dock-1 --out-dir "$labels" \
  --exit-after-idle 10 > "$dir.station.log" 2>&1 &
station=$!
echo "== a second burst of 3000 orders; node-2 is killed with -9 while they flow"
SURGE_API_KEY="$key" $ctl order burst --count 3000 --batch 100 --run warehouse > "$dir.burst2.log" 2>&1 &
burst=$!
sleep 2
victim=$(python3 -c "import json; d=json.load(open('$dir/cluster.json')); print([n['pid'] for n in d['nodes'] if n['name']=='node-2'][0])")
echo "   kill -9 node-2 (pid $victim) at $(date +%T)"
kill -9 "$victim"
wait $burst || { cat "$dir.burst2.log"; exit 1; }
tail -n 1 "$dir.burst2.log"
echo "   waiting for the station to print what is ready (it stops after 10 s without a job)"
wait $station || { cat "$dir.station.log"; exit 1; }
cat "$dir.station.log" | tail -n 1
echo
echo "== self-heal: node-2 stays down; after max-down-time its replicas are rebuilt on the three other nodes"
$ctl cluster status --wait-balanced --timeout 10m | tail -n 10
$ctl shard verify | tail -n 1
echo "(every shard's replicas hold identical data: shard verify compares their digests)"
echo
first=$(head -n 1 "$labels/printed.log" | cut -f2)
echo "== order $first: its history, and its label as PDF and PNG preview"
SURGE_API_KEY="$key" $ctl order get "$first"
SURGE_API_KEY="$key" $ctl label get "$first" --pdf --out "$labels/preview-$first.pdf"
pdftoppm -png -r 100 -singlefile "$labels/preview-$first.pdf" "$labels/preview-$first"
echo "   the label's text, read back from its PDF (the Chinese is drawn from an embedded font subset):"
pdftotext -layout "$labels/preview-$first.pdf" - | grep -v '^\s*$' | sed 's/^/   | /' | sed -n 1,14p
echo "preview image: $labels/preview-$first.png"
echo
echo "== every order, by status (held: the review rules held it, e.g. a buyer remark or a blocked receiver)"
SURGE_API_KEY="$key" $ctl -o json order tally > "$dir.tally.json"
SURGE_API_KEY="$key" $ctl order tally
echo
echo "== summary"
python3 - "$labels/printed.log" "$dir.tally.json" <<'PY'
import json, sys
lines = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
tally = json.load(open(sys.argv[2]))
jobs = [l[0] for l in lines]; orders = [l[1] for l in lines]; waybills = [l[3] for l in lines]
total = sum(v["orders"] for v in tally.values())
printed = tally["LABEL_PRINTED"]["orders"]
print(f"orders submitted: 8004 (5000 + 3000 + 4 from the Tmall file); orders in the cluster: {total}")
print(f"labels printed: {len(lines)} for {len(set(orders))} orders, {len(set(waybills))} distinct waybills, {len(set(jobs))} distinct jobs")
print(f"orders LABEL_PRINTED: {printed}; held for review: {sum(v['held'] for v in tally.values())}")
ok = total == 8004 and len(set(jobs)) == len(lines) and len(set(waybills)) == len(lines) and len(set(orders)) == len(lines) and printed == len(lines)
print("nothing lost, nothing doubled" if ok else "MISMATCH: see above")
sys.exit(0 if ok else 1)
PY
echo
echo "cluster files, logs, data and labels: $dir (node-2 stayed down; its replicas now live on the other nodes)"
