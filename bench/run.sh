#!/usr/bin/env bash
# bench/run.sh: berthd and a real containerd 1.6, side by side, on this machine.
#
#   bench/run.sh [--rounds N] [--count N] [--warmup N] [--settle SECONDS] [--no-build]
#                [--list] [scenario...]
#
# Each scenario runs N rounds; in every round it runs once against berthd, then once
# against containerd, so slow drifts of the machine hit both alike. Every figure is the
# median over the rounds. stdout gets two "#" header lines and one line per figure:
#
#   version_rtt_us_p50    berth=85.2       containerd=160.3      ratio=0.53
#
# (ratio = berth / containerd); progress and raw samples go to stderr. This is a
# benchmark, not a test: nothing here judges the numbers. Needs root. See bench/README.md.
#
# Adding a scenario: write `scenario_NAME IMPL ROUND` (runs one measurement against
# IMPL, which is "berth" or "containerd", and calls `sample FIGURE IMPL VALUE` for each
# figure) and `register NAME "what it measures"` it below the others. Use
# `daemon_start`/`daemon_stop` for a fresh daemon, or `shared_daemon IMPL` for a warm
# one that lives for the whole run.
set -euo pipefail
export LC_ALL=C

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
BERTHD=${BERTHD:-$REPO/bin/berthd}
CONTAINERD=${CONTAINERD:-/usr/bin/containerd}
CTR=${CTR:-/usr/bin/ctr}
BUILD_DIR=${BUILD_DIR:-$REPO/build/release}
TOOL=${BENCH_TOOL:-$BUILD_DIR/bin/bench_version_rtt}
# containerd plugins turned off; why each one is in bench/README.md ("Fairness").
CONTAINERD_DISABLED_PLUGINS=${CONTAINERD_DISABLED_PLUGINS:-io.containerd.grpc.v1.cri io.containerd.snapshotter.v1.aufs io.containerd.snapshotter.v1.devmapper}

IMPLS=(berth containerd)  # the order within a round
ROUNDS=5
RTT_COUNT=2000
RTT_WARMUP=500
SETTLE=1           # seconds an idle daemon is left alone before its memory is read
READY_TIMEOUT_MS=30000
STOP_TIMEOUT=10    # seconds between SIGTERM and SIGKILL
BUILD=1

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- scenarios

SCENARIOS=()
declare -A SCENARIO_DOC=()
register() { SCENARIOS+=("$1"); SCENARIO_DOC[$1]=$2; }

# (1) Spawn the daemon on a fresh root/state/socket; time until a Version call succeeds.
scenario_startup() {
  local impl=$1
  daemon_start "$impl"
  sample start_ready_ms "$impl" "$D_READY_MS"
  daemon_stop "$D_PID"
}
register startup "start-to-ready: spawn on a fresh root, poll until a Version RPC succeeds (ms)"

# (2) Memory of a fresh, idle daemon: after ready and $SETTLE seconds of nothing.
scenario_idle_rss() {
  local impl=$1 rss_kb anon_kb pss_kb threads
  daemon_start "$impl"
  waitable /dev/null sleep "$SETTLE"
  rss_kb=$(status_field VmRSS "$D_PID")
  anon_kb=$(status_field RssAnon "$D_PID")
  threads=$(status_field Threads "$D_PID")
  pss_kb=$(awk '$1 == "Pss:" {print $2}' "/proc/$D_PID/smaps_rollup" 2>/dev/null || true)
  [[ -n $rss_kb && -n $anon_kb && -n $pss_kb && -n $threads ]] || die "$impl: cannot read /proc/$D_PID"
  sample idle_rss_mib "$impl" "$(awk -v k="$rss_kb" 'BEGIN {print k / 1024}')"
  sample idle_anon_mib "$impl" "$(awk -v k="$anon_kb" 'BEGIN {print k / 1024}')"
  sample idle_pss_mib "$impl" "$(awk -v k="$pss_kb" 'BEGIN {print k / 1024}')"
  sample idle_threads "$impl" "$threads"
  daemon_stop "$D_PID"
}
register idle_rss "idle memory of a fresh daemon, --settle s after ready: VmRSS, RssAnon, PSS (MiB), threads"

# (3) Version RPC round trip on a warm daemon: one connection, warm-up, then
#     $RTT_COUNT sequential calls timed by bench_version_rtt.
scenario_version_rtt() {
  local impl=$1 out
  shared_daemon "$impl"
  waitable "$WORK/rtt.out" "$TOOL" --address "${SHARED_SOCK[$impl]}" --count "$RTT_COUNT" \
    --warmup "$RTT_WARMUP" || die "$impl: bench_version_rtt failed$(log_tail "${SHARED_DIR[$impl]}")"
  out=$(<"$WORK/rtt.out")
  log "  $impl: $out"
  sample version_rtt_us_p50 "$impl" "$(field p50_us "$out")"
  sample version_rtt_us_p99 "$impl" "$(field p99_us "$out")"
}
register version_rtt "Version RPC round trip over the unix socket, p50/p99 of sequential calls (us)"

# ------------------------------------------------------------------ daemons

WORK=""
declare -A LIVE=()        # pid -> dir, for every daemon started and not yet stopped
declare -A HELPERS=()     # pid -> 1, for every other child still running
declare -A SHARED_PID=() SHARED_SOCK=() SHARED_DIR=()   # impl -> warm daemon (shared_daemon)

# waitable OUT CMD...: run CMD with stdout to OUT and wait for it. Anything that may take
# more than a moment runs this way: bash defers a trap (Ctrl-C, SIGTERM) until a foreground
# child is done, but a `wait` is interrupted at once, and cleanup then kills CMD.
waitable() {
  local out=$1 pid rc=0
  shift
  "$@" >"$out" &
  pid=$!
  HELPERS[$pid]=1
  wait "$pid" || rc=$?
  unset "HELPERS[$pid]"
  return "$rc"
}

daemon_bin() {
  case $1 in
    berth) echo "$BERTHD" ;;
    containerd) echo "$CONTAINERD" ;;
    *) die "unknown implementation $1" ;;
  esac
}

# config_IMPL DIR: the daemon's config.toml on stdout, everything under DIR.
config_berth() {
  cat <<EOF
version = 2
root = "$1/root"
state = "$1/state"

[grpc]
  address = "$1/berth.sock"
EOF
}

config_containerd() {
  local p list=""
  for p in $CONTAINERD_DISABLED_PLUGINS; do list+="${list:+, }\"$p\""; done
  cat <<EOF
version = 2
root = "$1/root"
state = "$1/state"
disabled_plugins = [$list]

[grpc]
  address = "$1/containerd.sock"

[ttrpc]
  address = "$1/containerd.sock.ttrpc"

# The opt plugin would otherwise create /opt/containerd/{bin,lib}.
[plugins."io.containerd.internal.v1.opt"]
  path = "$1/opt"
EOF
}

sock_of() { echo "$1/$2.sock"; }

# status_field NAME PID: a "NAME: value" line of /proc/PID/status (the number only).
status_field() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$2/status" 2>/dev/null || true; }

# PIDs of running processes whose executable is $1 (resolved), other than our daemons.
others_running() {
  local want link exe pid
  want=$(readlink -f -- "$1")
  for link in /proc/[0-9]*/exe; do
    pid=${link#/proc/}
    pid=${pid%/exe}
    [[ -n ${LIVE[$pid]:-} ]] && continue
    exe=$(readlink -- "$link" 2>/dev/null) || continue
    # A binary rebuilt since the process started shows as "PATH (deleted)".
    [[ ${exe% (deleted)} == "$want" ]] && echo "$pid"
  done
  return 0
}

# Last lines of a daemon's log, for error messages.
log_tail() { printf '\n--- %s/daemon.log (tail) ---\n%s' "$1" "$(tail -n 30 "$1/daemon.log" 2>/dev/null)"; }

# True while PID exists and is not a zombie.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z && ${stat:0:1} != X ]]
}

# daemon_start IMPL: start IMPL on a fresh root/state/socket under $WORK and wait until a
# Version call succeeds. Sets D_PID, D_DIR, D_SOCK and D_READY_MS (spawn to first successful
# Version). bench_version_rtt is loaded and polling *before* the daemon is spawned, so its
# own start-up is not counted.
daemon_start() {
  local impl=$1 bin dir rfd wpid line="" t0 ready
  bin=$(daemon_bin "$impl")
  dir=$(mktemp -d "$WORK/$impl.XXXXXX")
  "config_$impl" "$dir" >"$dir/config.toml"
  D_DIR=$dir
  D_SOCK=$(sock_of "$dir" "$impl")
  exec {rfd}< <(exec "$TOOL" --address "$D_SOCK" --wait-ready "$READY_TIMEOUT_MS" \
                     --pid-file "$dir/pid")
  wpid=$!
  HELPERS[$wpid]=1
  read -r -u "$rfd" line || true
  if [[ $line != polling ]]; then
    exec {rfd}<&-
    wait "$wpid" || true
    die "$impl: bench_version_rtt did not start polling"
  fi
  t0=$EPOCHREALTIME
  "$bin" --config "$dir/config.toml" </dev/null >"$dir/daemon.log" 2>&1 {rfd}<&- &
  D_PID=$!
  LIVE[$D_PID]=$dir
  echo "$D_PID" >"$dir/pid.tmp" && mv "$dir/pid.tmp" "$dir/pid"
  line=""
  read -r -u "$rfd" line || true
  exec {rfd}<&-
  wait "$wpid" || true
  unset "HELPERS[$wpid]"
  ready=${line#ready_epoch=}
  if [[ $line != ready_epoch=* ]]; then
    die "$impl (pid $D_PID) never answered Version on $D_SOCK$(log_tail "$dir")"
  fi
  D_READY_MS=$(awk -v a="$t0" -v b="$ready" 'BEGIN {printf "%.3f", (b - a) * 1000}')
}

# daemon_stop PID: SIGTERM, then SIGKILL after $STOP_TIMEOUT s; reap; remove its directory.
daemon_stop() {
  local pid=$1 dir=${LIVE[$1]:-} i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 100; i++)); do
    alive "$pid" || break
    sleep 0.01
  done
  if alive "$pid"; then
    log "pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  unset "LIVE[$pid]"
  if [[ -n $dir ]]; then
    unmount_under "$dir"
    rm -rf -- "$dir"
  fi
}

# shared_daemon IMPL: a warm daemon of IMPL that lives for the rest of the run (started on
# first use). Sets SHARED_PID[IMPL], SHARED_SOCK[IMPL], SHARED_DIR[IMPL].
shared_daemon() {
  local impl=$1
  [[ -n ${SHARED_PID[$impl]:-} ]] && return 0
  daemon_start "$impl"
  SHARED_PID[$impl]=$D_PID
  SHARED_SOCK[$impl]=$D_SOCK
  SHARED_DIR[$impl]=$D_DIR
  log "  $impl: shared daemon pid $D_PID on $D_SOCK"
}

stop_shared_daemons() {
  local impl
  for impl in "${!SHARED_PID[@]}"; do
    daemon_stop "${SHARED_PID[$impl]}"
    unset "SHARED_PID[$impl]" "SHARED_SOCK[$impl]" "SHARED_DIR[$impl]"
  done
}

# Lazily unmount everything mounted at or below $1 (deepest first).
unmount_under() {
  local m
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo \
    | sort -r | while read -r m; do umount -l -- "$m" || log "cannot unmount $m"; done
}

cleanup() {
  local rc=$? pid i
  trap - EXIT INT TERM
  set +e
  for pid in "${!HELPERS[@]}"; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  for pid in "${!LIVE[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    local any=0
    for pid in "${!LIVE[@]}"; do alive "$pid" && any=1; done
    ((any)) || break
    sleep 0.1
  done
  for pid in "${!LIVE[@]}"; do
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ -n $WORK && -d $WORK ]]; then
    # Anything else still running with our private temp dir on its command line was
    # started by this run (bench_version_rtt, and shims once scenarios run containers).
    # shellcheck disable=SC2013  # PIDs are single words
    for pid in $(grep -lsF -- "$WORK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
      [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
      kill -KILL "$pid" 2>/dev/null
    done
    unmount_under "$WORK"
    rm -rf -- "$WORK"
  fi
  exit "$rc"
}

# ------------------------------------------------------------------ results

declare -A SAMPLES=()     # "figure|impl" -> space-separated values
FIGURES=()                # figures in the order first sampled
REPORTED=0                # how many of FIGURES are printed already

sample() {
  local fig=$1 impl=$2 val=$3
  [[ $val =~ ^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$ ]] || die "$fig/$impl: not a number: '$val'"
  if [[ -z ${SAMPLES["$fig|berth"]+x} && -z ${SAMPLES["$fig|containerd"]+x} ]]; then
    FIGURES+=("$fig")
  fi
  SAMPLES["$fig|$impl"]+="$val "
}

median() {
  tr ' ' '\n' <<<"$1" | awk NF | sort -g \
    | awk '{v[NR] = $1} END {
             if (NR == 0) { print "n/a"; exit }
             m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
             if (m == int(m)) printf "%d\n", m
             else printf (m < 10 && m > -10) ? "%.2f\n" : "%.1f\n", m }'
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# Print the figures sampled since the last call.
report() {
  local fig b c
  for fig in "${FIGURES[@]:REPORTED}"; do
    b=$(median "${SAMPLES["$fig|berth"]:-}")
    c=$(median "${SAMPLES["$fig|containerd"]:-}")
    log "  $fig samples: berth=[${SAMPLES["$fig|berth"]:-}] containerd=[${SAMPLES["$fig|containerd"]:-}]"
    printf '%-22s berth=%-10s containerd=%-10s ratio=%s\n' "$fig" "$b" "$c" "$(ratio "$b" "$c")"
  done
  REPORTED=${#FIGURES[@]}
}

# field NAME "k=v k=v ...": the value of NAME.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# ------------------------------------------------------------------- setup

usage() {
  cat <<EOF
usage: bench/run.sh [options] [scenario...]
  --rounds N        rounds per scenario, alternating berth/containerd (default $ROUNDS)
  --count N         timed Version calls per round in version_rtt (default $RTT_COUNT)
  --warmup N        untimed Version calls first (default $RTT_WARMUP)
  --settle SECONDS  idle time before memory is read in idle_rss (default $SETTLE)
  --no-build        do not run the build first
  --list            list the scenarios and exit
environment: BERTHD=$BERTHD CONTAINERD=$CONTAINERD CTR=$CTR
             BENCH_TOOL=$TOOL
             CONTAINERD_DISABLED_PLUGINS="$CONTAINERD_DISABLED_PLUGINS"
scenarios (default: all, in this order):
EOF
  local s
  for s in "${SCENARIOS[@]}"; do printf '  %-12s %s\n' "$s" "${SCENARIO_DOC[$s]}"; done
}

positive() { [[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || die "$1 wants a positive integer, got '$2'"; }

SELECTED=()
while (($#)); do
  case $1 in
    --rounds) positive "$1" "${2:-}"; ROUNDS=$2; shift 2 ;;
    --count) positive "$1" "${2:-}"; RTT_COUNT=$2; shift 2 ;;
    --warmup) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--warmup wants an integer"; RTT_WARMUP=$2; shift 2 ;;
    --settle) [[ ${2:-} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--settle wants seconds"; SETTLE=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --list) for s in "${SCENARIOS[@]}"; do printf '%-12s %s\n' "$s" "${SCENARIO_DOC[$s]}"; done; exit 0 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) [[ -n ${SCENARIO_DOC[$1]+x} ]] || die "unknown scenario '$1' (see --list)"; SELECTED+=("$1"); shift ;;
  esac
done
# Run in registration order, whatever order they were named in.
RUN=()
for s in "${SCENARIOS[@]}"; do
  if ((${#SELECTED[@]} == 0)) || [[ " ${SELECTED[*]} " == *" $s "* ]]; then RUN+=("$s"); fi
done

[[ $(id -u) == 0 ]] || die "must run as root (containerd and berthd manage mounts and cgroups)"

if ((BUILD)); then
  log "building (make build, then bench_version_rtt in $BUILD_DIR)"
  if [[ -f $REPO/Makefile ]]; then
    make -C "$REPO" build PRESET=release >&2 || die "make build failed"
  fi
  if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
    (cd "$REPO" && cmake --preset release >&2) || die "cmake --preset release failed"
  fi
  cmake --build "$BUILD_DIR" --target bench_version_rtt >&2 || die "building bench_version_rtt failed"
fi
for b in "$BERTHD" "$CONTAINERD" "$CTR" "$TOOL"; do
  [[ -x $b ]] || die "$b is missing (build it, or point BERTHD/CONTAINERD/CTR/BENCH_TOOL at it)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prime: start and stop each daemon once, uncounted, so both binaries are in the page cache
# and the first measured start is not a cold one; ask each for its version on the way.
declare -A VERSION=()
for impl in "${IMPLS[@]}"; do
  daemon_start "$impl"
  VERSION[$impl]=$("$CTR" -a "$D_SOCK" version 2>/dev/null \
    | awk '/^Server:/ {s = 1} s && $1 == "Version:" {v = $2} s && $1 == "Revision:" {r = $2}
           END {print (v == "" ? "?" : v) (r == "" ? "" : " (" r ")")}')
  log "primed $impl: ready in $D_READY_MS ms (not counted), version ${VERSION[$impl]}"
  daemon_stop "$D_PID"
done

# Other copies of either daemon share pages with ours (lowering PSS) and may use CPU.
others=$( { others_running "$BERTHD"; others_running "$CONTAINERD"; } | wc -l)
if ((others > 0)); then
  log "warning: $others other berthd/containerd processes are running on this machine"
fi
mem_gib=$(awk '$1 == "MemTotal:" {printf "%.1f", $2 / 1048576}' /proc/meminfo)
cpu=$(awk -F': ' '$1 ~ /^model name/ {print $2; exit}' /proc/cpuinfo)
echo "# berth bench: berthd ${VERSION[berth]} vs containerd ${VERSION[containerd]}; scenarios: ${RUN[*]}; median of $ROUNDS rounds, each berth then containerd, fresh temp roots; ratio = berth/containerd"
echo "# machine: $(hostname) nproc=$(nproc) kernel=$(uname -r) cpu=\"$cpu\" mem=${mem_gib}GiB load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" other_daemons=$others; containerd disabled_plugins: $CONTAINERD_DISABLED_PLUGINS; $(date -u +%Y-%m-%dT%H:%M:%SZ)"

for s in "${RUN[@]}"; do
  log "scenario $s: ${SCENARIO_DOC[$s]}"
  for ((round = 1; round <= ROUNDS; round++)); do
    for impl in "${IMPLS[@]}"; do
      "scenario_$s" "$impl" "$round"
    done
  done
  report
done
stop_shared_daemons
