#!/usr/bin/env bash
# Container tier: the compose cluster (3 coordinators, 3 nodes) under docker kill, docker pause
# and network disconnects, with order intake and label printing across node kills; then a
# fourth node container joins and receives replicas and leaders, and a node docker-killed for
# good is healed after max-down-time. Every wait is bounded; the cluster is torn down on exit.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)
bin="${SURGE_BIN_DIR:-${CARGO_TARGET_DIR:-$root/target}/debug}"
project="surgect$$"
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose -p "$project" -f compose.yaml)
else
  compose=(docker-compose -p "$project" -f compose.yaml)
fi
# The container of a compose service, whichever compose flavour named it.
cid() { docker ps -aq --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=$1"; }

for b in surge-coordinator surge-node surgectl; do
  [ -x "$bin/$b" ] || { echo "container-test: $bin/$b missing; build with cargo build --workspace --bins" >&2; exit 1; }
done

# Build context: stripped binaries plus the shared libraries they link, FROM scratch.
ctx=$(mktemp -d)
cleanup() {
  "${compose[@]}" --profile scale down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$ctx"
}
trap cleanup EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/data" "$ctx/rootfs/tmp"
for b in surge-coordinator surge-node surgectl; do
  objcopy --strip-debug "$bin/$b" "$ctx/rootfs/usr/local/bin/$b"
done
for lib in $(ldd "$bin/surge-coordinator" "$bin/surge-node" "$bin/surgectl" | awk '/=> \//{print $3} /^[ \t]*\/lib/{print $1}' | sort -u); do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
# The CJK font nodes draw Chinese label text with (Debian's fonts-noto-cjk, which
# install-deps.sh installs), at the path the node looks for it.
for f in /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc /usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc; do
  mkdir -p "$ctx/rootfs$(dirname "$f")"
  cp "$f" "$ctx/rootfs$f"
done
cp Dockerfile "$ctx/"
# The cluster's CA and one certificate per container, valid for its compose host name; the
# operator's for surgectl. Mounted read-only at /etc/surge/certs.
export SURGE_CERTS="$ctx/certs"
"$bin/surgectl" cert init --dir "$SURGE_CERTS" --cluster container-test --coordinator-count 0 --node-count 0 >/dev/null
for c in 1 2 3; do "$bin/surgectl" cert issue --dir "$SURGE_CERTS" --coordinator "$c" --host "coordinator-$c" >/dev/null; done
for n in 1 2 3 4; do "$bin/surgectl" cert issue --dir "$SURGE_CERTS" --node "node-$n" --host "node-$n" >/dev/null; done
docker build -q -t surge:dev "$ctx" >/dev/null

"${compose[@]}" up -d
tls=(-e SURGE_CA=/etc/surge/certs/ca.pem -e SURGE_CERT=/etc/surge/certs/operator-surgectl.pem -e SURGE_KEY=/etc/surge/certs/operator-surgectl.key)
ctl() { docker exec "${tls[@]}" "$(cid coordinator-1)" /usr/local/bin/surgectl --coordinators coordinator-1:7000,coordinator-2:7000,coordinator-3:7000 "$@"; }
ctl_from() { local c=$1; shift; docker exec "${tls[@]}" "$(cid "$c")" /usr/local/bin/surgectl --coordinators coordinator-1:7000,coordinator-2:7000,coordinator-3:7000 "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - start > limit )); then echo "container-test: timed out waiting for $what" >&2; "${compose[@]}" logs --tail 30 >&2; return 1; fi
    sleep 0.5
  done
  echo "container-test: $what after $((SECONDS - start)) s"
}

wait_for 60 "a coordinator leader" ctl cluster status
# The first admin token, printed once by init; every later admin call carries it.
token=$(ctl -o json cluster init --shards 16 --replicas 3 | json "d['admin_token']")
tls+=(-e "SURGE_TOKEN=$token")
placed() { ctl -o json cluster status | json "sum(1 for n in d['nodes'] if n['state']=='up')==3 and all(s['replicas'] for s in d['shards'])" | grep -q True; }
wait_for 60 "3 nodes up and 16 shards placed" placed

# Orders: a burst through the nodes, then docker kill of a node while a second burst runs
# (surge-client fails over to the new shard leaders), then the first burst again: every order
# is recognised as a retry, none stored twice.
nodes=node-1:7200,node-2:7200,node-3:7200
key=$(ctl -o json tenant create container-demo | json "d['api_key']")
orders() { ctl --nodes "$nodes" --api-key "$key" "$@"; }
intake_ready() { orders order burst --count 1 --batch 1 --run ready; }
wait_for 60 "order intake ready" intake_ready
orders order burst --count 2000 --batch 100 --run first | tail -n 1
docker kill "$(cid node-1)" >/dev/null
orders order burst --count 2000 --batch 100 --run second | tail -n 1
docker start "$(cid node-1)" >/dev/null
orders order burst --count 2000 --batch 100 --run first | tail -n 1 | tee "$ctx/again"
grep -q "(2000 were retries" "$ctx/again" || { echo "container-test: resubmitted orders were not all recognised" >&2; exit 1; }
echo "container-test: orders survived docker kill of node-1"

# Labels: rules and waybill ranges, a printing station writing labels to a folder while
# node-3 is docker-killed mid-burst. Every order the review passed is printed once, with its
# own waybill. (The orders of the bursts above, held for want of carrier rules, are allocated
# and printed too once the rules arrive.)
docker cp "$root/rules/examples/rules.toml" "$(cid coordinator-1):/tmp/rules.toml"
ctl tenant rules set --tenant container-demo /tmp/rules.toml
ctl waybill add-range --tenant container-demo --carrier SF --prefix SF --from 1 --to 100000 >/dev/null
ctl waybill add-range --tenant container-demo --carrier ZTO --prefix ZT --from 1 --to 100000 >/dev/null
sleep 2
orders station run --tenant container-demo --station dock-1 --out-dir /tmp/labels --exit-after-idle 15 > "$ctx/station" 2>&1 &
station=$!
orders order burst --count 1000 --batch 100 --run labels > "$ctx/burst" 2>&1 &
burst=$!
sleep 1
docker kill "$(cid node-3)" >/dev/null
wait $burst || { cat "$ctx/burst" >&2; exit 1; }
docker start "$(cid node-3)" >/dev/null
wait $station || { cat "$ctx/station" >&2; exit 1; }
tail -n 1 "$ctx/station"
docker cp "$(cid coordinator-1):/tmp/labels" "$ctx/labels"
orders -o json order tally > "$ctx/tally"
python3 - "$ctx/labels/printed.log" "$ctx/tally" <<'PY' || { echo "container-test: labels lost or doubled" >&2; exit 1; }
import json, sys
lines = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
tally = json.load(open(sys.argv[2]))
jobs, orders, waybills = ({l[i] for l in lines} for i in (0, 1, 3))
printed = tally["LABEL_PRINTED"]["orders"]
print(f"container-test: {len(lines)} labels, {len(waybills)} waybills, {printed} orders printed")
assert len(jobs) == len(orders) == len(waybills) == len(lines) == printed > 1000
# The sample orders' receivers are Chinese: the nodes drew them as ^GF graphics with the font.
import os
first = [os.path.join(os.path.dirname(sys.argv[1]), f"{j}.zpl") for j in sorted(jobs)[:20]]
assert all("^GFA," in open(f).read() for f in first), "Chinese label text not drawn as graphics"
PY
echo "container-test: labels printed once across docker kill of node-3"

# docker kill the coordinator leader: a new leader answers.
leader=$(ctl -o json cluster status | json "d['leader_id']")
docker kill "$(cid "coordinator-$leader")" >/dev/null
other=$(( leader % 3 + 1 ))
new_leader() { ctl_from "coordinator-$other" -o json cluster status | json "d['leader_id']" | grep -vqx "$leader"; }
wait_for 15 "a new coordinator leader after docker kill of coordinator-$leader" new_leader
docker start "$(cid "coordinator-$leader")" >/dev/null
all_members() { ctl_from "coordinator-$other" -o json cluster status | json "all(c['role'] in ('leader','follower') for c in d['coordinators']) and len(d['coordinators'])==3" | grep -q True; }
wait_for 30 "coordinator-$leader back as a member" all_members

# docker pause a node: Down after 10 s of silence, Up again after unpause.
docker pause "$(cid node-2)" >/dev/null
node_state() { ctl_from "coordinator-$other" -o json node list | json "sorted(n['state'] for n in d)" | grep -q "$1"; }
wait_for 30 "a paused node marked down" node_state "'down'"
docker unpause "$(cid node-2)" >/dev/null
all_up() { ctl_from "coordinator-$other" -o json node list | json "all(n['state']=='up' for n in d)" | grep -q True; }
wait_for 30 "the node up again" all_up

# Disconnect the leader from the network: the others elect a new leader; reconnect heals.
leader=$(ctl_from "coordinator-$other" -o json cluster status | json "d['leader_id']")
network=$(docker network ls -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.network=surge")
docker network disconnect "$network" "$(cid "coordinator-$leader")"
other=$(( leader % 3 + 1 ))
wait_for 15 "a new leader with coordinator-$leader cut off" new_leader
docker network connect --alias "coordinator-$leader" "$network" "$(cid "coordinator-$leader")"
wait_for 30 "coordinator-$leader rejoined" all_members

# Scale out: one more node container joins the running cluster and, with no other command,
# ends up holding replicas and leaders, with the cluster balanced.
"${compose[@]}" --profile scale up -d node-4 >/dev/null 2>&1
joined() { ctl -o json cluster status | json "any(n['replicas'] > 0 and n['leaders'] > 0 for n in d['nodes'] if n['address'] == 'node-4:7200')" | grep -q True; }
wait_for 180 "node-4 holding replicas and leaders" joined
balanced() { ctl -o json cluster status | json "d['rebalance']['balanced']" | grep -q True; }
wait_for 180 "the cluster balanced over 4 nodes" balanced
ctl node list

# Self-heal: node-2 is docker-killed for good; after max-down-time (20 s here) its replicas
# are rebuilt on the three other nodes.
ctl cluster set max-down-time 20s
gone=$(ctl -o json node list | json "[n['id'] for n in d if n['address']=='node-2:7200'][0]")
docker kill "$(cid node-2)" >/dev/null
healed() { ctl -o json cluster status | json "all(len(s['replicas'])==3 and $gone not in s['replicas'] for s in d['shards']) and d['rebalance']['balanced']" | grep -q True; }
wait_for 240 "node-2's replicas rebuilt on the other nodes" healed
ctl shard verify | tail -n 3
insecure=$(ctl -o json cluster status | json "sum(1 for p in d['coordinators'] + d['nodes'] if p['insecure'])")
[ "$insecure" = 0 ] || { echo "container-test: $insecure processes run in plaintext" >&2; exit 1; }
echo "container-test: every process on mutual TLS"
echo "container-test: 9 passed, 0 failed"
