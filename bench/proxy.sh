#!/usr/bin/env bash
# The fault proxy's peak memory and descriptors with clients that send and never read, under each
# fault, against the bound each must stay under; prints a Markdown table.
#
#   bench/proxy.sh                        # 1,000 clients, 1 MiB each, every fault
#   CLIENTS=200 SEND=4194304 FAULTS="bandwidth=1b latency=1s" bench/proxy.sh
#
# Method, per fault: a quiet `socklab server` (epoll model) upstream and a `socklab proxy --fault
# FAULT` in front of it; CLIENTS clients (python3, nonblocking sockets) connect, send up to SEND
# bytes each until no socket has taken a byte for a second, and never read. The echo comes back
# to the proxy, which can pass none of it on: its queue for each direction fills, it stops
# reading, and the kernels' buffers fill behind it, so every sender blocks. Then the proxy's peak
# resident size (VmHWM) and its open descriptors are read from /proc before it is stopped.
#
# Bounds: each direction of a link holds at most 256 KiB and 4,096 chunks of 24 bytes
# (src/fault/pipe.rs, CAP and MAX_CHUNKS), so memory may grow by at most CLIENTS × 2 × (256 KiB +
# 96 KiB) over the proxy with no clients; descriptors by 2 per client. Loopback only; every phase
# has a time limit (a stuck proxy is killed, and the row says so).
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-1000}
SEND=${SEND:-1048576}
FAULTS=${FAULTS:-"none latency=1s bandwidth=1b both:bandwidth=1kb slicer=1b:1ms upstream:slicer=1b:1ms timeout both:half_open slow_close=1s"}
bin=${SOCKLAB:-target/release/socklab}
[ -x "$bin" ] || cargo build --release
ulimit -n $((CLIENTS * 4 + 256))
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$out"' EXIT

ready() { # waits for a ready file, prints its address
    for _ in $(seq 100); do [ -s "$1" ] && { cat "$1"; return; }; sleep 0.05; done
    echo "no ready file $1" >&2; exit 1
}
kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

"$bin" server --host 127.0.0.1 --port 0 --model epoll --quiet --ready-file "$out/server" > /dev/null &
upstream=$(ready "$out/server")

echo "| fault | clients | bytes taken | peak RSS | over idle | bound | descriptors | bound | within |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
for fault in $FAULTS; do
    rm -f "$out/proxy"
    args=()
    [ "$fault" = none ] || args=(--fault "$fault")
    "$bin" proxy --upstream "$upstream" "${args[@]}" --ready-file "$out/proxy" > /dev/null &
    proxy=$!
    addr=$(ready "$out/proxy")
    idle_kib=$(kib $proxy VmRSS)
    idle_fds=$(ls /proc/$proxy/fd | wc -l)
    # The clients hold their sockets open (and unread) until told to go: a line on stdin.
    coproc CLIENTS_PROC {
        timeout 120 python3 -u -c '
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
n, size = int(sys.argv[2]), int(sys.argv[3])
socks = []
for _ in range(n):
    s = socket.create_connection((host, int(port)))
    s.setblocking(False)
    socks.append([s, 0])
chunk = b"x" * 65536
quiet = time.monotonic()
end = quiet + 60
while time.monotonic() - quiet < 1.0 and time.monotonic() < end:
    for entry in socks:
        s, sent = entry
        if sent >= size:
            continue
        try:
            k = s.send(chunk[: min(len(chunk), size - sent)])
        except BlockingIOError:
            continue
        entry[1] += k
        quiet = time.monotonic()
    time.sleep(0.005)
print(sum(sent for _, sent in socks), flush=True)
sys.stdin.readline()
' "$addr" "$CLIENTS" "$SEND"
    }
    read -r -t 120 taken <&"${CLIENTS_PROC[0]}" || taken="?"
    peak_kib=$(kib $proxy VmHWM)
    fds=$(ls /proc/$proxy/fd | wc -l)
    echo go >&"${CLIENTS_PROC[1]}"
    wait "$CLIENTS_PROC_PID" 2>/dev/null || true
    kill -TERM $proxy; timeout 30 tail --pid=$proxy -f /dev/null || kill -KILL $proxy
    wait $proxy 2>/dev/null || true
    over=$((peak_kib - idle_kib))
    bound_kib=$((CLIENTS * 2 * (256 + 96)))
    bound_fds=$((idle_fds + 2 * CLIENTS))
    within=yes
    { [ "$over" -le "$bound_kib" ] && [ "$fds" -le "$bound_fds" ]; } || within=NO
    printf '| %s | %d | %s | %d MiB | %d MiB | %d MiB | %d | %d | %s |\n' "$fault" "$CLIENTS" "$taken" \
        $((peak_kib / 1024)) $((over / 1024)) $((bound_kib / 1024)) "$fds" "$bound_fds" "$within"
done
