#!/usr/bin/env bash
# Starts `kvick --threads 2` over and over while busy loops saturate the CPUs,
# and reports any start that does not answer PING within 5 s. This is how a
# lost cross-core wake-up in glommio was found (see WAKE_TICK in
# src/server/mod.rs); run it after touching startup or the core mesh.
#
# Usage: scripts/startup-probe.sh [starts, default 60]   (needs redis-cli)
set -uo pipefail
cd "$(dirname "$0")/.."
STARTS=${1:-60}
BIN=target/release/kvick
[[ -x $BIN ]] || cargo build --release --bins
hogs=()
for _ in $(seq 1 "$(($(nproc) * 2))"); do
    (while :; do :; done) &
    hogs+=($!)
done
trap 'kill "${hogs[@]}" 2>/dev/null' EXIT
hung=0
for n in $(seq 1 "$STARTS"); do
    port=$((42000 + n % 1000))
    "$BIN" --threads 2 --port "$port" >/dev/null 2>&1 &
    pid=$!
    ok=0
    for _ in $(seq 1 100); do
        timeout 1 redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && { ok=1; break; }
        sleep 0.05
    done
    if ((ok == 0)); then
        echo "start $n (pid $pid, port $port): no PONG within 5 s"
        hung=$((hung + 1))
    fi
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
done
echo "$hung of $STARTS starts hung"
((hung == 0))
