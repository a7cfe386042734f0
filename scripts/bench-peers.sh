#!/usr/bin/env bash
# Runs every socklab server model and the peers a user would pick instead through `socklab bench`,
# with the same scenarios in one run, and prints a Markdown table with ratios to the best peer.
#
#   scripts/bench-peers.sh                 # all scenarios, 3 s each, 1 repetition
#   DURATION=5 REPEAT=3 scripts/bench-peers.sh > table.md     # median of 3 runs
#   ONLY="pp100 bulk" SERVERS="epoll c-epoll tokio" scripts/bench-peers.sh
#
# Peers: a Rust std thread-per-connection echo and a tokio echo (standalone crates under
# bench/peers/, never dependencies of socklab), socat (fork per connection), a small C epoll echo
# (compiled here with the system cc) as the reference for "as fast as C" (with one thread per CPU,
# and with one thread: "-1t"; socklab's epoll model likewise), and the tutorial's
# Python server (for the iterative model). Every server is started fresh for every measurement
# and stopped with SIGTERM afterwards; its peak RSS (VmHWM) is recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-3}
REPEAT=${REPEAT:-1}
ONLY=${ONLY:-"pp1 pp1pin pp100 bulk connrate c10k"}
SERVERS=${SERVERS:-"iterative fork thread poll epoll epoll-1t uring uring-1t tutorial-py std tokio socat c-epoll c-epoll-1t"}
PORT=${PORT:-17000}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

command -v socat >/dev/null || { echo "socat is needed: apt-get install -y socat" >&2; exit 1; }
cargo build --release -q
(cd bench/peers/std-echo && cargo build --release -q)
(cd bench/peers/tokio-echo && cargo build --release -q)
cc -O2 -pthread -o "$OUT/c-epoll-echo" bench/peers/c-epoll/echo.c
SOCKLAB=$PWD/target/release/socklab

# The command line of server $1 on port $2.
server_cmd() {
  case $1 in
    iterative) echo "$SOCKLAB server --host 127.0.0.1 --port $2 --model iterative --backlog 5" ;;
    fork | thread | poll | epoll | uring) echo "$SOCKLAB server --host 127.0.0.1 --port $2 --model $1 --quiet" ;;
    epoll-1t) echo "$SOCKLAB server --host 127.0.0.1 --port $2 --model epoll --threads 1 --quiet" ;;
    uring-1t) echo "$SOCKLAB server --host 127.0.0.1 --port $2 --model uring --threads 1 --quiet" ;;
    c-epoll-1t) echo "$OUT/c-epoll-echo $2 1" ;;
    tutorial-py) echo "python3 bench/peers/tutorial_server.py $2" ;;
    std) echo "bench/peers/std-echo/target/release/std-echo $2" ;;
    tokio) echo "bench/peers/tokio-echo/target/release/tokio-echo $2" ;;
    socat) echo "socat TCP-LISTEN:$2,bind=127.0.0.1,fork,reuseaddr PIPE" ;;
    c-epoll) echo "$OUT/c-epoll-echo $2" ;;
  esac
}

# Which scenarios a server can serve: the one-at-a-time servers cannot serve 100 clients at once,
# and a process per connection for 10,000 connections would swamp a machine shared with others.
serves() {
  case "$1:$2" in
    iterative:pp100 | iterative:c10k | tutorial-py:pp100 | tutorial-py:c10k) return 1 ;;
    fork:c10k | socat:c10k) return 1 ;;
  esac
}

# The bench arguments of scenario $1 (and "pin" as a first word when both sides share CPU 0).
scenario_args() {
  case $1 in
    pp1) echo "--mode pingpong --conns 1 --size 64" ;;
    pp1pin) echo "pin --mode pingpong --conns 1 --size 64" ;;
    pp100) echo "--mode pingpong --conns 100 --size 64" ;;
    bulk) echo "--mode bulk --conns 1 --size 65536" ;;
    connrate) echo "--mode connrate --conns 4 --size 64" ;;
    c10k) echo "--mode pingpong --conns 10000 --size 64" ;;
  esac
}

wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "server on port $1 did not start" >&2
  return 1
}

run_one() { # server scenario rep -> appends a JSON line to $OUT/results
  local server=$1 scenario=$2 rep=$3 pin="" args
  args=$(scenario_args "$scenario")
  if [[ $args == pin* ]]; then pin="taskset -c 0"; args=${args#pin }; fi
  PORT=$((PORT + 1))
  # setsid: the server and any children (socat, fork model) form one process group to stop.
  # shellcheck disable=SC2046
  setsid $pin $(server_cmd "$server" "$PORT") >/dev/null 2>&1 &
  local pid=$!
  wait_port "$PORT"
  local json
  json=$($pin "$SOCKLAB" bench --addr "127.0.0.1:$PORT" $args --duration "$DURATION" --json 2>/dev/null || true)
  local rss
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  kill -TERM -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -n "$json" ] || json='{"failed":true}'
  echo "{\"server\":\"$server\",\"scenario\":\"$scenario\",\"rep\":$rep,\"rss_kib\":${rss:-0},\"bench\":$json}" >>"$OUT/results"
  echo "  $server $scenario #$rep done" >&2
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
for rep in $(seq "$REPEAT"); do
  for scenario in $ONLY; do
    for server in $SERVERS; do
      if serves "$server" "$scenario"; then run_one "$server" "$scenario" "$rep"; fi
    done
  done
done

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$OUT/results" "$DURATION" "$REPEAT" "$STARTED" "$LOAD_BEFORE" "$LOAD_AFTER" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"Run started {sys.argv[4]}; load average (1/5/15 min) before: {sys.argv[5]}, after: {sys.argv[6]}.")
peers = ["std", "tokio", "socat", "c-epoll", "c-epoll-1t"]
names = {"pp1": "pingpong 1 conn x 64 B", "pp1pin": "pingpong 1 conn x 64 B, both pinned to CPU 0",
         "pp100": "pingpong 100 conns x 64 B", "bulk": "bulk 1 conn, 64 KiB writes",
         "connrate": "connrate (4 conns, 64 B)", "c10k": "10,000 conns x 64 B pingpong"}
# The headline metric of each scenario; True: higher is better.
metric = {"pp1": ("round_trips_per_sec", True), "pp1pin": ("p99_us", False), "pp100": ("round_trips_per_sec", True),
          "bulk": ("mib_per_sec", True), "connrate": ("conns_per_sec", True), "c10k": ("round_trips_per_sec", True)}
def value(b, key):
    if b.get("failed"): return None
    if key == "p99_us":
        p = b["latency_ns"]["p99"]
        return None if p is None else p / 1000
    return b[key]
print(f"Each figure: median of {sys.argv[3]} run(s) of {sys.argv[2]} s. Ratio: to the best peer "
      "(std, tokio, socat, C epoll with 2 or 1 threads) on the headline metric; > 1 is better for socklab.\n")
for sc in [s for s in names if any(r["scenario"] == s for r in rows)]:
    key, higher = metric[sc]
    by = {}
    for r in rows:
        if r["scenario"] == sc: by.setdefault(r["server"], []).append(r)
    med = {}
    for srv, rs in by.items():
        vals = [v for v in (value(r["bench"], key) for r in rs) if v is not None]
        med[srv] = statistics.median(vals) if vals else None
    pv = [med[p] for p in peers if med.get(p)]
    best = (max(pv) if higher else min(pv)) if pv else None
    unit = {"round_trips_per_sec": "round trips/s", "p99_us": "p99 µs", "mib_per_sec": "MiB/s", "conns_per_sec": "conns/s"}[key]
    print(f"### {names[sc]}\n")
    print(f"| server | {unit} | ratio to best peer | p50 µs | p99 µs | p99.9 µs | served | errors | mismatches | lost B | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for srv, rs in by.items():
        # The other columns come from the run whose headline figure is the median one.
        ok = [r for r in rs if value(r["bench"], key) is not None]
        b = sorted(ok, key=lambda r: value(r["bench"], key))[len(ok) // 2]["bench"] if ok else rs[0]["bench"]
        v = med[srv]
        if v is None or best is None: ratio = "–"
        else: ratio = f"{(v / best if higher else best / v):.2f}×"
        lat = b.get("latency_ns") or {}
        us = lambda k: "–" if lat.get(k) is None else f"{lat[k] / 1000:.1f}"
        rss = statistics.median([r["rss_kib"] for r in rs]) / 1024
        vs = "failed" if v is None else (f"{v:,.1f}" if key in ("mib_per_sec", "p99_us") else f"{v:,.0f}")
        if b.get("failed"):
            print(f"| {srv} | failed | – | – | – | – | – | – | – | – | {rss:.1f} |")
        else:
            print(f"| {srv} | {vs} | {ratio} | {us('p50')} | {us('p99')} | {us('p999')} | {b['served']}/{b['conns']} | {b['errors']} | {b['mismatches']} | {b['lost_bytes']} | {rss:.1f} |")
    print()
PY
