#!/usr/bin/env bash
# Smoke test of deploy/ on one machine: three nats-server nodes started with
# deploy/nats/nats-server.conf (ports and paths in a temporary directory),
# adsyn as an edge,api process and a segments,stats,syndication,api process
# against them, then deploy/smoke_test.go. .ci/run runs it; so can you.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
pids=()
cleanup() {
  status=$?
  # adsyn first, then NATS: adsyn drains into NATS as it stops.
  for (( i=${#pids[@]}-1; i>=0; i-- )); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if (( status != 0 )); then
    for f in "$tmp"/*.log; do echo "--- $f (last 20 lines)"; tail -n 20 "$f"; done
  fi
  rm -rf "$tmp"
  exit $status
}
trap cleanup EXIT

echo "smoke: building nats-server (the version in go.mod), nk, adsyn and the smoke test"
builds=()
go build -o "$tmp/nats-server" github.com/nats-io/nats-server/v2 & builds+=($!)
go build -o "$tmp/nk" github.com/nats-io/nkeys/nk & builds+=($!)
go build -o "$tmp/adsyn" ./cmd/adsyn & builds+=($!)
go test -c -o "$tmp/smoke.test" ./deploy/ & builds+=($!)
for b in "${builds[@]}"; do wait "$b"; done

# Two NKey users, as deploy/nats/nats-server.conf describes: seeds for
# adsyn, public keys for the servers.
for user in adsyn reader; do
  "$tmp/nk" -gen user -pubout > "$tmp/$user.pair"
  head -n 1 "$tmp/$user.pair" > "$tmp/$user.nk"
  chmod 600 "$tmp/$user.nk"
done
export ADSYN_NKEY_PUB=$(sed -n 2p "$tmp/adsyn.pair")
export ADSYN_READER_NKEY_PUB=$(sed -n 2p "$tmp/reader.pair")
export NATS_ROUTE_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')

# Ports from a random base, so that parallel runs on one machine do not meet.
base=$(( 20000 + RANDOM % 20000 ))
client() { echo $(( base + $1 )); }
route() { echo $(( base + 10 + $1 )); }
monitor() { echo $(( base + 20 + $1 )); }
routes=()
for i in 1 2 3; do routes+=("nats-route://route:$NATS_ROUTE_PASSWORD@127.0.0.1:$(route $i)"); done
export NATS_ROUTES="[$(IFS=,; echo "${routes[*]}")]"
urls=nats://127.0.0.1:$(client 1),nats://127.0.0.1:$(client 2),nats://127.0.0.1:$(client 3)

for i in 1 2 3; do
  mkdir -p "$tmp/nats$i"
  NATS_SERVER_NAME=nats$i NATS_CLIENT_LISTEN=127.0.0.1:$(client $i) NATS_MONITOR_LISTEN=127.0.0.1:$(monitor $i) \
    NATS_CLUSTER_LISTEN=127.0.0.1:$(route $i) NATS_STORE_DIR="$tmp/nats$i" \
    "$tmp/nats-server" -c deploy/nats/nats-server.conf > "$tmp/nats$i.log" 2>&1 &
  pids+=($!)
done
wait_for() { # URL WHAT
  for _ in $(seq 1 150); do
    if curl -sf -o /dev/null "$1"; then return 0; fi
    sleep 0.2
  done
  echo "smoke: $2 did not come up ($1)"; return 1
}
for i in 1 2 3; do wait_for "http://127.0.0.1:$(monitor $i)/healthz?js-enabled-only=true" "nats$i"; done
echo "smoke: ${SECONDS}s: three NATS nodes up: $urls"

edge=127.0.0.1:$(( base + 31 )) api=127.0.0.1:$(( base + 32 )) workers_api=127.0.0.1:$(( base + 33 ))
common=(--nats "$urls" --nats-nkey "$tmp/adsyn.nk" --replicas 3 --profile-keys "$tmp/profile.keys")
# The master keyring every process shares: id:base64(32 random bytes).
( umask 077; printf 'k1:%s\n' "$(head -c 32 /dev/urandom | base64)" > "$tmp/profile.keys" )
"$tmp/adsyn" serve "${common[@]}" --roles edge,api --demo --data "$tmp/edge" --http "$edge" --api "$api" \
  > "$tmp/edge.out" 2> "$tmp/edge.log" &
pids+=($!)
wait_for "http://$api/readyz" "adsyn edge,api"
"$tmp/adsyn" serve "${common[@]}" --roles segments,stats,syndication,api --allow-private-partners \
  --data "$tmp/workers" --api "$workers_api" > "$tmp/workers.out" 2> "$tmp/workers.log" &
pids+=($!)
wait_for "http://$workers_api/readyz" "adsyn segments,stats,syndication"
admin=$(awk '$1 == "admin" { print $2 }' "$tmp/edge.out")
[[ -n $admin ]] || { echo "smoke: the edge,api process printed no admin key"; exit 1; }
echo "smoke: ${SECONDS}s: adsyn up: edge http://$edge, API http://$api, workers http://$workers_api"

ADSYN_SMOKE_EDGE=http://$edge ADSYN_SMOKE_API=http://$api ADSYN_SMOKE_WORKERS_API=http://$workers_api \
  ADSYN_SMOKE_NATS=$urls ADSYN_SMOKE_READER_NKEY=$tmp/reader.nk ADSYN_SMOKE_ADMIN_KEY=$admin \
  "$tmp/smoke.test" -test.v -test.run '^TestSmoke$'
# The way back when every admin key is lost, against the running cluster
# with the documented NKey user: the admin key the edge printed is listed.
"$tmp/adsyn" keys list --nats "$urls" --nats-nkey "$tmp/adsyn.nk" > "$tmp/keys.out"
grep -q admin "$tmp/keys.out" || { echo "smoke: adsyn keys list --nats shows no admin key:"; cat "$tmp/keys.out"; exit 1; }
echo "smoke: ${SECONDS}s: passed; stopping"
