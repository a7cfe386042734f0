#!/usr/bin/env bash
# Runs socklab's server models and the peers a user would pick instead through `socklab bench`,
# interleaved so that noise from other work on the machine hits every server alike, and prints a
# Markdown table per scenario: median, spread (min–max) and ratios to the C epoll echo of the
# same run.
#
#   scripts/bench-peers.sh                      # all scenarios, 5 rounds of 2 s per server
#   ROUNDS=7 DURATION=3 scripts/bench-peers.sh > table.md
#   ONLY="pp100 bulk" SERVERS="epoll epoll-1t c-epoll tokio" scripts/bench-peers.sh
#   EXTRA_mine='/path/to/other/socklab server --host 127.0.0.1 --port PORT --model epoll --quiet' \
#     SERVERS="epoll mine c-epoll" scripts/bench-peers.sh      # a build under test, by name
#
# Method, per scenario: every server that can serve it is started at once (each on its own
# loopback port), then ROUNDS rounds drive each server in turn for DURATION seconds; round r
# starts at the r-th server of the list (rotating order), so no server always runs first, last or
# right after the same neighbour. A slow minute on a shared machine then lands on every server in
# some round instead of on one server's whole measurement. Per server the table gives the median
# of its rounds and the min–max spread; "× C" is its median over the C echo's median, and "paired"
# is the median over rounds of (its figure / the C echo's figure in the same round), which cancels
# drift that is slower than one round. After the rounds every server is stopped with SIGTERM and
# its peak RSS (VmHWM) is read from /proc. In the same rounds the kernel counts each server's system
# calls (`socklab bench --server-pid`, perf events; needs root): the last column, per 1,000 round
# trips (per MiB for bulk, per connection for connrate), which the machine's noise does not move.
# The last column is the load generator's own CPU time over each round (getrusage): at about 100 % of
# a CPU the generator, not the server, set the pace.
#
# CC=cubic sets the TCP congestion control for the run (the sysctl net.ipv4.tcp_congestion_control,
# root; the machine's own is restored at the end, and the header names both). With BBR, Linux's
# default here, a loopback bulk stream is paced by BBR's own timers and bandwidth estimates, and
# two identical servers in the same run differed by 4-9 % in medians over 10-25 rounds; with
# cubic the spread fell to about 2 % (BENCHMARKS.md, "io_uring, fourth step").
#
# Bounds: each load is `socklab bench --duration DURATION` (plus its own grace of at most 5 s
# for outstanding echoes), killed by `timeout` if it ever runs DURATION + 30 s; loopback only.
#
# Peers: a Rust std thread-per-connection echo and a tokio echo (standalone crates under
# bench/peers/, never dependencies of socklab), socat (fork per connection), a small C epoll echo
# (compiled here with the system cc; one thread and SO_REUSEPORT listener per CPU, and "-1t" with
# one thread) as the reference for "as fast as C", and the tutorial's Python server (for the
# iterative model).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-2}
ROUNDS=${ROUNDS:-5}
ONLY=${ONLY:-"pp1 pp1pin pp100 bulk connrate c10k"}
SERVERS=${SERVERS:-"iterative fork thread poll epoll epoll-1t epoll-2t uring uring-1t tutorial-py std tokio socat c-epoll c-epoll-1t"}
PORT=${PORT:-17000}
CC=${CC:-}
CC_MACHINE=$(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo unknown)
OUT=$(mktemp -d)
PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
restore_cc() {
  if [ -n "$CC" ] && [ "$CC" != "$CC_MACHINE" ]; then sysctl -qw net.ipv4.tcp_congestion_control="$CC_MACHINE" || true; fi
}
trap 'stop_all; rm -rf "$OUT"; restore_cc' EXIT
if [ -n "$CC" ] && [ "$CC" != "$CC_MACHINE" ]; then
  sysctl -qw net.ipv4.tcp_congestion_control="$CC" ||
    { echo "CC=$CC: could not set net.ipv4.tcp_congestion_control (root needed; see /proc/sys/net/ipv4/tcp_available_congestion_control)" >&2; exit 1; }
fi
CC_RUN=$(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo unknown)

command -v socat >/dev/null || { echo "socat is needed: apt-get install -y socat" >&2; exit 1; }
cargo build --release -q
(cd bench/peers/std-echo && cargo build --release -q)
(cd bench/peers/tokio-echo && cargo build --release -q)
cc -O2 -pthread -o "$OUT/c-epoll-echo" bench/peers/c-epoll/echo.c
# .cargo/config.toml (it applies to the peers' crates below it too) builds for the host by name:
# binaries are under target/<host tuple>/release/.
HOST=$(rustc -vV | sed -n 's/^host: //p')
SOCKLAB=$PWD/target/$HOST/release/socklab

# The command line of server $1 on port $2.
server_cmd() {
  case $1 in
    iterative) echo "$SOCKLAB server --host 127.0.0.1 --port $2 --model iterative --backlog 5" ;;
    fork | thread | poll | epoll | uring) echo "$SOCKLAB server --host 127.0.0.1 --port $2 --model $1 --quiet" ;;
    epoll-[0-9]*t) local n=${1#epoll-}; echo "$SOCKLAB server --host 127.0.0.1 --port $2 --model epoll --threads ${n%t} --quiet" ;;
    uring-[0-9]*t) local n=${1#uring-}; echo "$SOCKLAB server --host 127.0.0.1 --port $2 --model uring --threads ${n%t} --quiet" ;;
    c-epoll-1t) echo "$OUT/c-epoll-echo $2 1" ;;
    tutorial-py) echo "python3 bench/peers/tutorial_server.py $2" ;;
    std) echo "bench/peers/std-echo/target/$HOST/release/std-echo $2" ;;
    tokio) echo "bench/peers/tokio-echo/target/$HOST/release/tokio-echo $2" ;;
    socat) echo "socat TCP-LISTEN:$2,bind=127.0.0.1,fork,reuseaddr PIPE" ;;
    c-epoll) echo "$OUT/c-epoll-echo $2" ;;
    *)
      # A server under test: EXTRA_<name>='command line with PORT' (dashes in the name become _).
      local var="EXTRA_${1//-/_}"
      if [ -n "${!var:-}" ]; then echo "${!var//PORT/$2}"; else echo "unknown server $1" >&2; return 1; fi
      ;;
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
    *) echo "unknown scenario $1" >&2; return 1 ;;
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

run_scenario() { # scenario -> appends one JSON line per round and server to $OUT/results
  local scenario=$1 pin="" args
  args=$(scenario_args "$scenario")
  if [[ $args == pin* ]]; then pin="taskset -c 0"; args=${args#pin }; fi
  local names=() ports=() i=0
  for server in $SERVERS; do
    serves "$server" "$scenario" || continue
    names+=("$server")
    ports+=($((PORT + i)))
    i=$((i + 1))
  done
  PORT=$((PORT + i))
  # Start them all at once. setsid: a server and any children (socat, fork model) form one process
  # group to stop.
  local first=${#PIDS[@]}
  for i in "${!names[@]}"; do
    # shellcheck disable=SC2046
    setsid $pin $(server_cmd "${names[$i]}" "${ports[$i]}") >/dev/null 2>&1 &
    PIDS+=($!)
  done
  for port in "${ports[@]}"; do wait_port "$port"; done
  local n=${#names[@]}
  for round in $(seq "$ROUNDS"); do
    for k in $(seq 0 $((n - 1))); do
      i=$(((round - 1 + k) % n))
      local json
      # shellcheck disable=SC2086
      json=$(timeout -s KILL $((DURATION + 30)) $pin "$SOCKLAB" bench --addr "127.0.0.1:${ports[$i]}" $args \
        --duration "$DURATION" --server-pid "${PIDS[$((first + i))]}" --json 2>/dev/null || true)
      [ -n "$json" ] || json='{"failed":true}'
      echo "{\"server\":\"${names[$i]}\",\"scenario\":\"$scenario\",\"round\":$round,\"slot\":$k,\"bench\":$json}" >>"$OUT/results"
    done
    echo "  $scenario round $round/$ROUNDS done" >&2
  done
  for i in "${!names[@]}"; do
    local rss
    rss=$(awk '/VmHWM/ {print $2}' "/proc/${PIDS[$((first + i))]}/status" 2>/dev/null || echo 0)
    echo "{\"server\":\"${names[$i]}\",\"scenario\":\"$scenario\",\"rss_kib\":${rss:-0}}" >>"$OUT/rss"
  done
  stop_all
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
for scenario in $ONLY; do run_scenario "$scenario"; done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
FINISHED=$(date -u '+%H:%M UTC')

python3 - "$OUT/results" "$OUT/rss" "$DURATION" "$ROUNDS" "$STARTED" "$FINISHED" "$LOAD_BEFORE" "$LOAD_AFTER" "$CC_RUN" "$CC_MACHINE" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rss = {(r["server"], r["scenario"]): r["rss_kib"] / 1024 for r in map(json.loads, open(sys.argv[2]))}
dur, rounds, started, finished, before, after, cc, cc_machine = sys.argv[3:11]
cc_note = cc if cc == cc_machine else f"{cc}, set for this run (the machine's: {cc_machine})"
print(f"Run {started} to {finished}; load average (1/5/15 min) before: {before}, after: {after}; "
      f"TCP congestion control: {cc_note}.")
print(f"Every server of a scenario up at once; {rounds} rounds of {dur} s, each round driving every server "
      "in turn, in rotating order. Figures: median of the rounds, and min–max over the rounds. "
      "× C: median / the C epoll echo's median (`c-epoll`, one thread per CPU); paired: median over rounds of "
      "(figure / C echo's figure in the same round). For p99 both ratios are C / server, so > 1 is better "
      "for the row everywhere.\n")
names = {"pp1": "pingpong 1 conn x 64 B", "pp1pin": "pingpong 1 conn x 64 B, server and load generator pinned to CPU 0",
         "pp100": "pingpong 100 conns x 64 B", "bulk": "bulk 1 conn, 64 KiB writes",
         "connrate": "connrate (4 conns, 64 B)", "c10k": "10,000 conns x 64 B pingpong"}
# The headline metric of each scenario; True: higher is better.
metric = {"pp1": ("round_trips_per_sec", True), "pp1pin": ("p99_us", False), "pp100": ("round_trips_per_sec", True),
          "bulk": ("mib_per_sec", True), "connrate": ("conns_per_sec", True), "c10k": ("round_trips_per_sec", True)}
unit = {"round_trips_per_sec": "round trips/s", "p99_us": "p99 µs", "mib_per_sec": "MiB/s", "conns_per_sec": "conns/s"}
REF = "c-epoll"
# The server's system calls, counted by the kernel (socklab bench --server-pid): per 1,000 round trips,
# per MiB or per connection. A server that forks per connection is counted only as its children
# exit, after the measurement: no figure for those.
per_unit = {"pp1": "1,000 round trips", "pp1pin": "1,000 round trips", "pp100": "1,000 round trips",
            "bulk": "MiB", "connrate": "connection", "c10k": "1,000 round trips"}
def syscalls(srv, good):
    if srv in ("fork", "socat"): return "– (forks per connection)"
    per = [g["server_syscalls_per"] for g in good if g.get("server_syscalls_per") is not None]
    if not per:
        why = next((g.get("server_syscalls_not_counted") for g in good if g.get("server_syscalls_not_counted")), None)
        return f"– ({why})" if why else "–"
    return f"{statistics.median(per):,.1f} ({min(per):,.1f}–{max(per):,.1f})"
# The load generator's own CPU time over each round, in CPUs (socklab bench's generator_cpu).
def generator(good):
    cpu = [g["generator_cpu"] for g in good if g.get("generator_cpu") is not None]
    return f"{statistics.median(cpu) * 100:.0f} %" if cpu else "–"
def value(b, key):
    if b.get("failed"): return None
    if key == "p99_us":
        p = (b.get("latency_ns") or {}).get("p99")
        return None if p is None else p / 1000
    return b[key]
def fmt(key, v):
    return "–" if v is None else (f"{v:,.1f}" if key in ("mib_per_sec", "p99_us") else f"{v:,.0f}")
for sc in [s for s in names if any(r["scenario"] == s for r in rows)]:
    key, higher = metric[sc]
    by = {}
    for r in rows:
        if r["scenario"] == sc: by.setdefault(r["server"], []).append(r)
    vals = {s: [value(r["bench"], key) for r in rs] for s, rs in by.items()}
    med = {s: (statistics.median([v for v in vs if v is not None]) if any(v is not None for v in vs) else None)
           for s, vs in vals.items()}
    ref_round = {r["round"]: value(r["bench"], key) for r in by.get(REF, [])}
    def ratio(a, c):
        if a is None or c is None or a == 0 or c == 0: return None
        return a / c if higher else c / a
    print(f"### {names[sc]}\n")
    print(f"| server | {unit[key]} (median) | min–max | spread | × C | paired × C (min–max) | p50 µs | p99 µs | served | errors | mismatches | lost B | peak RSS MiB | server syscalls per {per_unit[sc]} (median, min–max) | load generator CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for srv, rs in by.items():
        ok = [v for v in vals[srv] if v is not None]
        failed = len(vals[srv]) - len(ok)
        v = med[srv]
        lo, hi = (min(ok), max(ok)) if ok else (None, None)
        spread = "–" if not ok or not v else f"{(hi - lo) / v * 100:.0f} %"
        r = ratio(v, med.get(REF))
        rc = "–" if r is None else f"{r:.2f}×"
        pr = [ratio(value(x["bench"], key), ref_round.get(x["round"])) for x in rs]
        pr = [p for p in pr if p is not None]
        pc = "–" if not pr or srv == REF else f"{statistics.median(pr):.2f}× ({min(pr):.2f}–{max(pr):.2f})"
        # Detail columns: the round whose headline figure is the median one; counts: summed over rounds.
        okr = sorted([x for x in rs if value(x["bench"], key) is not None], key=lambda x: value(x["bench"], key))
        b = okr[len(okr) // 2]["bench"] if okr else {}
        lat = b.get("latency_ns") or {}
        us = lambda k: "–" if lat.get(k) is None else f"{lat[k] / 1000:.1f}"
        good = [x["bench"] for x in rs if not x["bench"].get("failed")]
        served = f"{min(g['served'] for g in good)}/{good[0]['conns']}" if good else "–"
        tot = lambda k: sum(g[k] for g in good)
        name = srv + (f" ({failed} of {len(rs)} rounds failed)" if failed else "")
        print(f"| {name} | {fmt(key, v)} | {fmt(key, lo)}–{fmt(key, hi)} | {spread} | {rc} | {pc} | {us('p50')} | {us('p99')} | "
              f"{served} | {tot('errors') if good else '–'} | {tot('mismatches') if good else '–'} | {tot('lost_bytes') if good else '–'} | "
              f"{rss.get((srv, sc), 0):.1f} | {syscalls(srv, good)} | {generator(good)} |")
    busy = [g["generator_cpu"] for r in rows if r["scenario"] == sc and not (g := r["bench"]).get("failed")
            and g.get("generator_cpu") is not None]
    if busy and statistics.median(busy) >= 0.9:
        print(f"\nThe load generator used a median {statistics.median(busy) * 100:.0f} % of a CPU: it set the pace "
              "here, so these figures measure how much work each server leaves it per unit, not the server's own ceiling.")
    print()
PY
