#!/usr/bin/env bash
# bench/run.sh: berthd and a real containerd 1.6, side by side, on this machine.
#
#   bench/run.sh [--rounds N] [--count N] [--warmup N] [--settle SECONDS] [--no-build]
#                [--list] [scenario...]
#
# Each scenario runs N rounds (5; 3 for the heavy pull, berth_pull, many and cri_*, unless --rounds is given);
# in every round it runs once against berthd, then once
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
# one that lives for the whole run; `registry_up` for the local registry with test/big.
# A measurement that fails on one side is reported as n/a with a reason (`fail`), not fatal.
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

# The image scenarios (content_fetch, pull): fixture images are built once into this cache
# (tests/fixtures/build-images.sh) and served by one registry on 127.0.0.1 for the whole run.
FIXTURES=${BENCH_FIXTURES:-$REPO/build/bench-fixtures}
BIG_MIB=${BENCH_BIG_MIB:-256}
CTR_TIMEOUT=${BENCH_CTR_TIMEOUT:-300}   # seconds before one ctr command is killed (-> n/a)
NS=bench                                # containerd namespace the image scenarios use
CTR_NS=$NS                              # namespace ctr_run uses (container scenarios: $CNS)
CTR_DEBUG=--debug                       # ctr_run's flag (container scenarios: none)
CLIENT=$CTR                             # ctr_run's client (berth_pull: berth for berthd)
DAEMON_LOG_LEVEL=""                     # a daemon's [debug] level; "" = its default (info)

# The container scenarios (run, many, concurrent): the busybox fixture image, imported into each
# fresh daemon in namespace $CNS; container ids start with $CID_PREFIX (unique to this run), so
# their cgroups (/sys/fs/cgroup/*/$CNS/<id>) are told apart from anything else on the host.
CNS=bench-run
CID_PREFIX="bench$$"
BUSYBOX_REF=docker.io/berth/busybox:latest
RUN_N=${BENCH_RUN_N:-20}                # ctr run --rm per round (run)
MANY_N=${BENCH_MANY_N:-50}              # detached containers (many)
CONC_N=${BENCH_CONC_N:-20}              # concurrent starts (concurrent)

# The CRI scenarios (cri_*): both daemons with their CRI plugin on, each in a network namespace of
# its own (cri_daemon), driven by bench_cri; pods run busybox, sandboxes berth-pause.
CRI_TOOL=${BENCH_CRI_TOOL:-$(dirname -- "$TOOL")/bench_cri}
CRI_PODS=${BENCH_CRI_PODS:-10}          # pods per round (cri_pod_start, cri_pod_memory)
CRI_CONC_N=${BENCH_CRI_CONC_N:-100}     # pods started at once (cri_concurrent)
CRI_EXEC_N=${BENCH_CRI_EXEC_N:-50}      # timed crictl exec (and exec -s) per round (cri_exec)
CRI_PF_MIB=${BENCH_CRI_PF_MIB:-256}     # MiB read through one forwarded connection (cri_portforward)
CRI_PF_N=${BENCH_CRI_PF_N:-3}           # timed GETs of those per round (cri_portforward)
# crictl (the streaming scenarios cri_exec, cri_portforward): speaks SPDY to the daemons'
# streaming servers. On PATH, else the dev VM's copy.
CRICTL=${CRICTL:-$(command -v crictl || echo /work/shared/tools/crictl)}
CNI_BIN=${BENCH_CNI_BIN:-/usr/lib/cni}  # Debian's containernetworking-plugins
PAUSE_BIN=${BERTH_PAUSE:-$(dirname -- "$BERTHD")/berth-pause}
CRI_PAUSE_REF=docker.io/berth/bench-pause:latest   # the pause image built by pause_archive
CRI_ON=0                                # a CRI scenario's daemon_start (set local by cri_daemon)
CRI_SANDBOX_IMAGE=""                    # its sandbox_image
CRI_TAG="" CRI_OUT=""
# BENCH_STATE_TMPFS=1: every daemon's state dir (bundles, shim sockets and files, pod netns) on a
# tmpfs of its own, as /run/containerd and /run/berth are on a real node; default: on the temp
# dir's filesystem like the root (where an fsync costs a journal commit).
STATE_TMPFS=${BENCH_STATE_TMPFS:-0}

IMPLS=(berth containerd)  # the order within a round
ROUNDS=5
ROUNDS_SET=0       # --rounds given: it applies to every scenario
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
declare -A SCENARIO_DOC=() SCENARIO_ROUNDS=()
# register NAME DOC [ROUNDS]: ROUNDS replaces the default of 5 for a heavy scenario (an
# explicit --rounds still applies to all).
register() { SCENARIOS+=("$1"); SCENARIO_DOC[$1]=$2; [[ -z ${3:-} ]] || SCENARIO_ROUNDS[$1]=$3; }
rounds_of() { if ((ROUNDS_SET)); then echo "$ROUNDS"; else echo "${SCENARIO_ROUNDS[$1]:-$ROUNDS}"; fi; }

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

# (4) Content store write throughput: `ctr content fetch` of test/big (7 layers, 256 MiB of
#     random data) from the local registry into a fresh daemon (empty content store). ctr
#     downloads the blobs and streams them into the daemon's content service (Write), which
#     hashes, writes, fsyncs and commits them. Fetch only: no unpack.
scenario_content_fetch() {
  local impl=$1 round=$2 t
  failed_before content_fetch "$impl" content_fetch_s content_fetch_mib_s && return 0
  registry_up
  daemon_start "$impl"
  sync -f "$D_DIR"
  if ctr_run fetch content fetch --plain-http "$BIG_REF"; then
    t=$CTR_S
    if image_ok 0; then
      sample content_fetch_s "$impl" "$t"
      sample content_fetch_mib_s "$impl" "$(awk -v b="$BIG_BYTES" -v t="$t" 'BEGIN {printf "%.1f", b / 1048576 / t}')"
    else
      fail content_fetch "$impl" "$round" "$CTR_ERR" content_fetch_s content_fetch_mib_s
    fi
  else
    fail content_fetch "$impl" "$round" "$CTR_ERR" content_fetch_s content_fetch_mib_s
  fi
  log_errors "$impl"
  daemon_stop "$D_PID"
}
register content_fetch "ctr content fetch of test/big (7 layers, 256 MiB) from a local registry into a fresh daemon: s, MiB/s"

# (5) Image pull into the overlayfs snapshotter, on two fresh daemons per round:
#     pull_s    cold `ctr images pull`: fetch every blob, then unpack the 7 layers;
#     unpack_s  the same pull once `ctr content fetch` (untimed) has put every blob in the
#               content store: ctr finds them present and only unpacks (plus one resolve).
scenario_pull() {
  local impl=$1 round=$2 t n
  failed_before pull "$impl" pull_s unpack_s && return 0
  registry_up
  daemon_start "$impl"
  sync -f "$D_DIR"
  if ctr_run pull images pull --snapshotter overlayfs --plain-http "$BIG_REF"; then
    t=$CTR_S
    if image_ok 1; then sample pull_s "$impl" "$t"; else fail pull "$impl" "$round" "$CTR_ERR" pull_s; fi
  else
    fail pull "$impl" "$round" "$CTR_ERR" pull_s
  fi
  log_errors "$impl"
  daemon_stop "$D_PID"

  daemon_start "$impl"
  if ! ctr_run fetch content fetch --plain-http "$BIG_REF"; then
    fail pull "$impl" "$round" "untimed content fetch before the unpack: $CTR_ERR" unpack_s
  else
    sync -f "$D_DIR"
    if ctr_run unpack images pull --snapshotter overlayfs --plain-http "$BIG_REF"; then
      t=$CTR_S
      # ctr --debug logs every registry request; by digest means a blob (or the manifest) was
      # downloaded again, i.e. the daemon did not report it present: then this is no unpack.
      n=$(grep -c 'msg="do request" digest=' "$D_DIR/unpack.err" || true)
      if ((n > 0)); then
        fail pull "$impl" "$round" "the unpack-only pull downloaded $n blobs again (the content store did not report them present)" unpack_s
      elif image_ok 1; then
        sample unpack_s "$impl" "$t"
      else
        fail pull "$impl" "$round" "$CTR_ERR" unpack_s
      fi
    else
      fail pull "$impl" "$round" "$CTR_ERR" unpack_s
    fi
  fi
  log_errors "$impl"
  daemon_stop "$D_PID"
}
register pull "ctr images pull of test/big into overlayfs, fresh daemon: cold (fetch+unpack) and unpack alone (s)" 3

# (5b) Cold pull with each project's own client: `berth images pull` into a fresh berthd vs
#      `ctr images pull` into a fresh containerd (same registry, image, snapshotter overlayfs),
#      both daemons logging at debug level, so that the breakdown can be read from their logs:
#      berth_pull_s        the client's wall time (the headline ratio);
#      pull_fetch_s        berth: the fetch part of the pull as `berth --debug` reports it
#                          ("pull timings: ... fetch=..s"); containerd: `ctr content fetch` of
#                          the same image on another fresh daemon (ctr 1.6 fetches everything
#                          before it unpacks, so this is the fetch part of its pull);
#      pull_apply_s        the daemon's Diff.Apply summed over the layers, from its log
#                          ("diff applied": containerd's d=, berthd's total_s=);
#      pull_apply_cpu_s    berthd's Apply as CPU time of its thread, and split up by stage:
#      pull_read_s, pull_verify_s, pull_decompress_s, pull_diffid_s, pull_write_s
#                          (src/diff/walking.cc logs each per layer);
#      pull_apply_runq_s   berthd's Apply time runnable but waiting for a CPU (a busy machine;
#                          the kernel's schedstat);
#      pull_apply_blocked_s  the rest of its wall time: pull_apply_s - cpu - runq, asleep (I/O,
#                          locks). containerd logs only the total per layer: these are n/a there;
#      pull_daemon_cpu_s, pull_client_cpu_s
#                          CPU time (user + system) the daemon and the client used during the
#                          pull, from /proc (10 ms ticks): unlike wall times, not stretched
#                          when other work competes for the CPUs;
#      pull_sync_s         `sync -f` of the daemon's filesystem right after the pull: the
#                          write-back of what the pull left dirty (neither daemon fsyncs the
#                          unpacked files; both fsync content blobs at commit). Not in
#                          berth_pull_s: what is measured is what the client waits for.
BERTH=${BERTH:-$REPO/bin/berth}
BERTH_PULL_FIGS=(berth_pull_s pull_fetch_s pull_apply_s pull_apply_cpu_s pull_read_s
  pull_verify_s pull_decompress_s pull_diffid_s pull_write_s pull_apply_runq_s
  pull_apply_blocked_s pull_daemon_cpu_s
  pull_client_cpu_s pull_sync_s)
BERTH_APPLY_PARTS=(read verify decompress diffid write)   # berthd's "diff applied" *_s fields (CPU)
scenario_berth_pull() {
  local impl=$1 round=$2 t sync_s t0 fetch="" fetch_err="" line part d_cpu c_cpu
  local DAEMON_LOG_LEVEL=debug
  failed_before berth_pull "$impl" "${BERTH_PULL_FIGS[@]}" && return 0
  registry_up
  if [[ $impl == containerd ]]; then
    # containerd's fetch part: `ctr content fetch` on a fresh daemon of its own.
    daemon_start "$impl"
    sync -f "$D_DIR"
    if ctr_run fetch content fetch --plain-http "$BIG_REF"; then
      fetch=$CTR_S
      image_ok 0 || fetch=""
    fi
    [[ -n $fetch ]] || fetch_err="ctr content fetch (on its own daemon): $CTR_ERR"
    log_errors "$impl"
    daemon_stop "$D_PID"
  fi

  daemon_start "$impl"
  sync -f "$D_DIR"
  local CLIENT=$CTR
  if [[ $impl == berth ]]; then
    [[ -x $BERTH ]] || die "$BERTH is missing (build it, or point BERTH at it)"
    CLIENT=$BERTH
  fi
  d_cpu="" c_cpu=""
  cpu_ticks "$D_PID" && d_cpu=$CPU_TICKS
  cpu_ticks $$ children && c_cpu=$CPU_TICKS
  if ctr_run pull images pull --snapshotter overlayfs --plain-http "$BIG_REF"; then
    t=$CTR_S
    if [[ -n $c_cpu ]] && cpu_ticks $$ children; then c_cpu=$(ticks_s $((CPU_TICKS - c_cpu))); else c_cpu=""; fi
    if [[ -n $d_cpu ]] && cpu_ticks "$D_PID"; then d_cpu=$(ticks_s $((CPU_TICKS - d_cpu))); else d_cpu=""; fi
    t0=$EPOCHREALTIME
    waitable /dev/null sync -f "$D_DIR"
    sync_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}')
    CLIENT=$CTR  # the checks use ctr on both sides
    if image_ok 1 && apply_times "$impl"; then
      if [[ $impl == berth ]]; then
        # berth --debug: "pull timings: resolve=0.01s fetch=1.2s unpack=0.9s total=2.1s bytes=N"
        line=$(grep -m1 -o 'pull timings:.*' "$D_DIR/pull.err" || true)
        fetch=$(field fetch "${line#pull timings: }")
        fetch=${fetch%s}
        if [[ -n $fetch ]]; then
          log "  berth: $line"
        else
          fetch_err="no \"pull timings: ... fetch=..s\" line on the stderr of berth --debug images pull"
        fi
      fi
      sample berth_pull_s "$impl" "$t"
      if [[ -n $fetch ]]; then sample pull_fetch_s "$impl" "$fetch"; else sample_na pull_fetch_s "$impl" "$fetch_err"; fi
      sample pull_apply_s "$impl" "${APPLY_S[total]}"
      for part in apply_cpu "${BERTH_APPLY_PARTS[@]}" apply_runq apply_blocked; do
        if [[ $impl == berth && -n ${APPLY_S[$part]} ]]; then
          sample "pull_${part}_s" "$impl" "${APPLY_S[$part]}"
        elif [[ $impl == berth ]]; then
          sample_na "pull_${part}_s" "$impl" "no runq_s in berthd's log (no /proc/thread-self/schedstat)"
        else
          sample_na "pull_${part}_s" "$impl" "not measured: containerd logs only a total per layer"
        fi
      done
      if [[ -n $d_cpu ]]; then sample pull_daemon_cpu_s "$impl" "$d_cpu"; else sample_na pull_daemon_cpu_s "$impl" "cannot read /proc/$D_PID/stat"; fi
      if [[ -n $c_cpu ]]; then sample pull_client_cpu_s "$impl" "$c_cpu"; else sample_na pull_client_cpu_s "$impl" "cannot read /proc/$$/stat"; fi
      sample pull_sync_s "$impl" "$sync_s"
    else
      fail berth_pull "$impl" "$round" "$CTR_ERR" "${BERTH_PULL_FIGS[@]}"
    fi
  else
    fail berth_pull "$impl" "$round" "$CTR_ERR" "${BERTH_PULL_FIGS[@]}"
  fi
  log_errors "$impl"
  daemon_stop "$D_PID"
}
register berth_pull "cold pull of test/big into overlayfs with each side's own client: berth images pull into berthd vs ctr images pull into containerd (s), with the fetch, the daemons' Diff.Apply and berthd's Apply split up (s)" 3

# cpu_ticks PID [children]: sets CPU_TICKS to the user + system CPU time of PID (with
# "children": of its reaped children) in clock ticks, from /proc/PID/stat. No subshell, so that
# reading our own children's time does not add to it.
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {
  local stat f
  read -r stat <"/proc/$1/stat" || return 1
  read -ra f <<<"${stat##*) }"   # f[0] is field 3 (state): utime is f[11], cutime f[13]
  if [[ ${2:-} == children ]]; then CPU_TICKS=$((f[13] + f[14])); else CPU_TICKS=$((f[11] + f[12])); fi
}
ticks_s() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", t / hz}'; }

# apply_times IMPL: the current daemon's "diff applied" debug lines (one per layer), summed:
# APPLY_S[total] (berthd's total_s, containerd's d, a Go duration) and, for berthd,
# APPLY_S[read|verify|decompress|diffid|write]. Fails (CTR_ERR) unless there is one per layer.
declare -A APPLY_S=()
apply_times() {
  local out n k
  out=$(awk -v impl="$1" '
    function val(line, key,   m) {
      if (!match(line, " " key "=[^ ]+")) return ""
      m = substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2)
      gsub(/"/, "", m)
      return m
    }
    # A Go time.Duration as String() prints it: 1h2m3.5s, 1.5s, 812.3ms, 35.1µs, 900ns.
    function godur(d,   s, u, num) {
      s = 0
      while (match(d, /^[0-9.]+(ns|us|µs|ms|s|m|h)/)) {
        num = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
        match(num, /[a-zµ]+$/); u = substr(num, RSTART); num = substr(num, 1, RSTART - 1) + 0
        s += num * (u == "h" ? 3600 : u == "m" ? 60 : u == "s" ? 1 : u == "ms" ? 1e-3 : u == "ns" ? 1e-9 : 1e-6)
      }
      return d == "" ? s : -1
    }
    index($0, "msg=\"diff applied\"") {
      n++
      if (impl == "containerd") {
        v = godur(val($0, "d")); if (v < 0) bad++; sum["total"] += v
      } else {
        split("total cpu read verify decompress diffid write", parts, " ")
        miss = 0
        for (i in parts) { v = val($0, parts[i] "_s"); if (v == "") miss = 1; sum[parts[i]] += v }
        bad += miss
        v = val($0, "runq_s"); if (v ~ /^[0-9.]+$/) { sum["runq"] += v; runq++ }
      }
    }
    END {
      if (runq != n) delete sum["runq"]
      printf "n=%d bad=%d", n, bad
      for (k in sum) printf " %s=%.3f", k, sum[k]
      print ""
    }' "$D_DIR/daemon.log")
  n=$(field n "$out")
  if ((n != BIG_LAYERS)) || [[ $(field bad "$out") != 0 ]]; then
    CTR_ERR="$n \"diff applied\" debug lines in the $1 log ($(field bad "$out") without the timings expected), want $BIG_LAYERS with them (one per layer)"
    return 1
  fi
  APPLY_S=()
  for k in total "${BERTH_APPLY_PARTS[@]}"; do APPLY_S[$k]=$(field "$k" "$out"); done
  APPLY_S[apply_cpu]=$(field cpu "$out")
  APPLY_S[apply_runq]=$(field runq "$out")
  APPLY_S[apply_blocked]=""
  [[ -z ${APPLY_S[apply_runq]} ]] || APPLY_S[apply_blocked]=$(awk -v a="${APPLY_S[total]}" \
    -v b="${APPLY_S[apply_cpu]}" -v c="${APPLY_S[apply_runq]}" 'BEGIN {printf "%.3f", a - b - c}')
  log "  $1 Diff.Apply over $n layers: $out"
}

# (6) `ctr run --rm busybox ID true` latency: create the container (snapshot, spec), create and
#     start the task (shim start, runc create/start), wait for the exit, delete task, container
#     and snapshot. One untimed warm-up run per round on a fresh daemon with the image
#     unpacked, then $RUN_N timed runs, each one sample (so the figure is the median of
#     rounds x $RUN_N runs).
#     Both daemons drive the same runc, whose own cost is a floor neither can go below:
#     runc_floor_ms is `runc run` of a busybox bundle (create, start, wait, delete; no daemon,
#     no shim, no snapshot) measured in the same round, and run_overhead_ms = run_rm_ms minus
#     it, the part each daemon (with ctr, shim, snapshot and mounts) adds.
runc_floor() {
  local bundle=$WORK/runc-floor samples="" i t0 t1
  if [[ ! -d $bundle ]]; then
    mkdir -p "$bundle/rootfs/bin" || return 1
    cp /bin/busybox "$bundle/rootfs/bin/busybox" && ln -s busybox "$bundle/rootfs/bin/true" || return 1
    (cd "$bundle" && runc spec) || return 1
    jq '.process.args = ["/bin/true"] | .process.terminal = false | .root.readonly = false' \
      "$bundle/config.json" >"$bundle/config.tmp" && mv "$bundle/config.tmp" "$bundle/config.json" || return 1
  fi
  for ((i = 0; i < 5; i++)); do
    t0=$(date +%s%N)
    runc --root "$WORK/runc-floor-root" run --bundle "$bundle" "berth-bench-floor-$$-$i" </dev/null >/dev/null 2>&1 || return 1
    t1=$(date +%s%N)
    samples+="$(awk -v d=$((t1 - t0)) 'BEGIN {printf "%.1f", d / 1e6}') "
  done
  median "$samples"
}

scenario_run() {
  local impl=$1 round=$2 i floor ms
  local CTR_NS=$CNS CTR_DEBUG=""
  failed_before run "$impl" run_rm_ms && return 0
  floor=$(runc_floor) || floor=""
  if containers_daemon "$impl" && ctr_run warm run --rm "$BUSYBOX_REF" "$(cid "$impl" "$round" w)" true; then
    [[ -n $floor ]] && sample runc_floor_ms "$impl" "$floor"
    for ((i = 1; i <= RUN_N; i++)); do
      if ! ctr_run run run --rm "$BUSYBOX_REF" "$(cid "$impl" "$round" "$i")" true; then
        fail run "$impl" "$round" "$CTR_ERR" run_rm_ms
        break
      fi
      ms=$(awk -v s="$CTR_S" 'BEGIN {printf "%.1f", s * 1000}')
      sample run_rm_ms "$impl" "$ms"
      [[ -n $floor ]] && sample run_overhead_ms "$impl" "$(awk -v a="$ms" -v b="$floor" 'BEGIN {printf "%.1f", a - b}')"
    done
  else
    fail run "$impl" "$round" "$CTR_ERR" run_rm_ms
  fi
  containers_stop "$impl"
}
register run "ctr run --rm busybox true on a warm daemon: create, start, exit, delete latency (ms, every run a sample)"

# (7) $MANY_N detached containers (`ctr run -d busybox ID sleep 1000`, one after another) on a
#     fresh daemon: the time to start them all, then, after --settle s, the shims' memory per
#     container (VmRSS and PSS summed over every shim process / $MANY_N) and the daemon's.
scenario_many() {
  local impl=$1 round=$2 i t0 t n figs
  local CTR_NS=$CNS CTR_DEBUG=""
  figs=("start${MANY_N}_s" shim_rss_kib shim_pss_kib shims "daemon_rss_${MANY_N}_mib" "daemon_pss_${MANY_N}_mib")
  failed_before many "$impl" "${figs[@]}" && return 0
  if ! containers_daemon "$impl"; then
    fail many "$impl" "$round" "$CTR_ERR" "${figs[@]}"
    containers_stop "$impl"
    return 0
  fi
  t0=$EPOCHREALTIME
  for ((i = 1; i <= MANY_N; i++)); do
    ctr_run start run -d "$BUSYBOX_REF" "$(cid "$impl" "$round" "$i")" sleep 1000 || break
  done
  t=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}')
  if [[ -n $CTR_ERR ]]; then
    fail many "$impl" "$round" "container $i: $CTR_ERR" "${figs[@]}"
  elif ! n=$(running_tasks) || ((n != MANY_N)); then
    fail many "$impl" "$round" "$n tasks running after $MANY_N ctr run -d, want $MANY_N" "${figs[@]}"
  else
    waitable /dev/null sleep "$SETTLE"
    shim_memory
    if ((SHIM_COUNT == 0)); then
      fail many "$impl" "$round" "no shim process found (cmdline with -address $D_SOCK)" "${figs[@]}"
    else
      log "  $impl: $SHIM_COUNT shim processes for $MANY_N containers"
      sample "start${MANY_N}_s" "$impl" "$t"
      sample shim_rss_kib "$impl" "$(awk -v k="$SHIM_RSS_KB" -v n="$MANY_N" 'BEGIN {printf "%.0f", k / n}')"
      sample shim_pss_kib "$impl" "$(awk -v k="$SHIM_PSS_KB" -v n="$MANY_N" 'BEGIN {printf "%.0f", k / n}')"
      sample shims "$impl" "$SHIM_COUNT"
      sample "daemon_rss_${MANY_N}_mib" "$impl" "$(awk -v k="$(status_field VmRSS "$D_PID")" 'BEGIN {printf "%.1f", k / 1024}')"
      sample "daemon_pss_${MANY_N}_mib" "$impl" "$(awk '$1 == "Pss:" {printf "%.1f", $2 / 1024}' "/proc/$D_PID/smaps_rollup")"
    fi
  fi
  containers_stop "$impl"
}
register many "$MANY_N detached busybox containers on a fresh daemon: time to start them one by one (s), per-container shim VmRSS/PSS (KiB), shim count, daemon VmRSS/PSS (MiB)" 3

# (8) $CONC_N `ctr run -d busybox ID sleep 1000` started at the same moment on a fresh daemon:
#     wall time until the last ctr returns (every task checked running afterwards).
scenario_concurrent() {
  local impl=$1 round=$2 i t0 t pid rc bad="" n
  local CTR_NS=$CNS CTR_DEBUG=""
  local -a pids=()
  failed_before concurrent "$impl" "concurrent${CONC_N}_s" && return 0
  if ! containers_daemon "$impl"; then
    fail concurrent "$impl" "$round" "$CTR_ERR" "concurrent${CONC_N}_s"
    containers_stop "$impl"
    return 0
  fi
  t0=$EPOCHREALTIME
  for ((i = 1; i <= CONC_N; i++)); do
    timeout -k 5 "$CTR_TIMEOUT" "$CTR" -a "$D_SOCK" -n "$CNS" run -d "$BUSYBOX_REF" \
      "$(cid "$impl" "$round" "$i")" sleep 1000 >"$D_DIR/conc-$i.out" 2>"$D_DIR/conc-$i.err" </dev/null &
    pids+=("$!")
    HELPERS[$!]=1
  done
  i=0
  for pid in "${pids[@]}"; do
    i=$((i + 1))
    rc=0
    wait "$pid" || rc=$?
    unset "HELPERS[$pid]"
    ((rc == 0)) || [[ -n $bad ]] || bad="ctr run -d (container $i) exited $rc: $(last_line "$D_DIR/conc-$i.err")"
  done
  t=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}')
  if [[ -n $bad ]]; then
    fail concurrent "$impl" "$round" "$bad" "concurrent${CONC_N}_s"
  elif ! n=$(running_tasks) || ((n != CONC_N)); then
    fail concurrent "$impl" "$round" "$n tasks running after $CONC_N concurrent ctr run -d, want $CONC_N" "concurrent${CONC_N}_s"
  else
    sample "concurrent${CONC_N}_s" "$impl" "$t"
  fi
  containers_stop "$impl"
}
register concurrent "$CONC_N concurrent ctr run -d of busybox on a fresh daemon: wall time until all are started (s)"

# (9) Kubernetes CRI (runtime.v1), both daemons with their CRI plugin on, driven by the same
#     client (bench_cri, one gRPC connection, like the kubelet). A pod here is RunPodSandbox +
#     CreateContainer + StartContainer of one busybox `sleep` container. Each daemon runs in a
#     network namespace of its own (the CNI bridge and the pods' veths live there; the host's
#     network is never touched), with its own CNI config, bridge and pod subnet; see
#     cri_daemon. berthd is measured twice per round: with the same pause image as containerd
#     (sandbox_image = the bench's pause image, whose /pause is berth-pause: the apples-to-apples
#     rows) and with sandbox_image = "" (berth's built-in pause, no image: the *_builtin rows,
#     whose containerd= column repeats containerd's same measurement).
#
#     cri_pod_start: on a fresh daemon, one untimed warm-up pod (started, then removed), then
#     $CRI_PODS pods one after another, each left running; every pod is a sample of
#       pod_start_ms          the three calls together (issue 11's figure), and of each call:
#       pod_runp_ms, pod_create_ms, pod_startc_ms.
CRI_FIGS_START=(pod_start_ms pod_runp_ms pod_create_ms pod_startc_ms)
scenario_cri_pod_start() {
  local impl=$1 round=$2 variant
  for variant in $(cri_variants "$impl"); do
    local suffix=${variant#image}
    cri_figs "$impl" "$suffix" "${CRI_FIGS_START[@]}"
    failed_before "cri_pod_start$suffix" "$impl" "${CF[@]}" && continue
    if ! cri_daemon "$impl" "$variant" || ! cri_pods warm 1 || ! cri_tool rmpods rmpods; then
      fail "cri_pod_start$suffix" "$impl" "$round" "$CTR_ERR" "${CF[@]}"
    elif ! cri_pods "p$round" "$CRI_PODS"; then
      fail "cri_pod_start$suffix" "$impl" "$round" "$CTR_ERR" "${CF[@]}"
    else
      cri_sample_pods "$impl" "$suffix" pod_start_ms total_ms pod_runp_ms runp_ms \
        pod_create_ms create_ms pod_startc_ms start_ms
    fi
    cri_stop "$impl"
  done
}
register cri_pod_start "CRI pod start (RunPodSandbox + CreateContainer + StartContainer of one container), $CRI_PODS pods one by one on a fresh daemon, every pod a sample (ms); berth with containerd's pause image and with its built-in pause (_builtin)" 3

#     cri_pod_memory: $CRI_PODS pods started (untimed) on a fresh daemon; after --settle s, the
#     supervision memory per running pod: PSS (/proc/PID/smaps_rollup) of the daemon's shims plus
#     the pods' sandbox (pause) processes, / $CRI_PODS; the containers' own processes (sleep)
#     are not counted. Also each part alone, the shim count and the daemon's VmRSS/PSS before
#     the pods (ready, images imported) and with them.
CRI_FIGS_MEM=(pod_mem_pss_kib pod_shim_pss_kib pod_pause_pss_kib pod_shim_rss_kib pod_shims
  cri_daemon_rss_0_mib "cri_daemon_rss_${CRI_PODS}_mib" "cri_daemon_pss_${CRI_PODS}_mib")
scenario_cri_pod_memory() {
  local impl=$1 round=$2 variant rss0
  for variant in $(cri_variants "$impl"); do
    local suffix=${variant#image}
    cri_figs "$impl" "$suffix" "${CRI_FIGS_MEM[@]}"
    failed_before "cri_pod_memory$suffix" "$impl" "${CF[@]}" && continue
    if ! cri_daemon "$impl" "$variant"; then
      fail "cri_pod_memory$suffix" "$impl" "$round" "$CTR_ERR" "${CF[@]}"
      cri_stop "$impl"
      continue
    fi
    waitable /dev/null sleep "$SETTLE"
    rss0=$(status_field VmRSS "$D_PID")
    if ! cri_pods "m$round" "$CRI_PODS"; then
      fail "cri_pod_memory$suffix" "$impl" "$round" "$CTR_ERR" "${CF[@]}"
    else
      waitable /dev/null sleep "$SETTLE"
      shim_memory
      pause_memory
      if ((SHIM_COUNT == 0 || PAUSE_COUNT != CRI_PODS)); then
        fail "cri_pod_memory$suffix" "$impl" "$round" "$SHIM_COUNT shim processes (cmdline with -address $D_SOCK) and $PAUSE_COUNT sandbox processes (in the sandboxes' cgroups) for $CRI_PODS pods" \
          "${CF[@]}"
      else
        log "  $impl${suffix}: $SHIM_COUNT shims (PSS $SHIM_PSS_KB KiB), $PAUSE_COUNT sandbox processes (PSS $PAUSE_PSS_KB KiB) for $CRI_PODS pods"
        cri_sample "$suffix" pod_mem_pss_kib "$impl" "$(awk -v a="$SHIM_PSS_KB" -v b="$PAUSE_PSS_KB" -v n="$CRI_PODS" 'BEGIN {printf "%.0f", (a + b) / n}')"
        cri_sample "$suffix" pod_shim_pss_kib "$impl" "$(awk -v k="$SHIM_PSS_KB" -v n="$CRI_PODS" 'BEGIN {printf "%.0f", k / n}')"
        cri_sample "$suffix" pod_pause_pss_kib "$impl" "$(awk -v k="$PAUSE_PSS_KB" -v n="$CRI_PODS" 'BEGIN {printf "%.0f", k / n}')"
        cri_sample "$suffix" pod_shim_rss_kib "$impl" "$(awk -v k="$SHIM_RSS_KB" -v n="$CRI_PODS" 'BEGIN {printf "%.0f", k / n}')"
        cri_sample "$suffix" pod_shims "$impl" "$SHIM_COUNT"
        cri_sample "$suffix" cri_daemon_rss_0_mib "$impl" "$(awk -v k="$rss0" 'BEGIN {printf "%.1f", k / 1024}')"
        cri_sample "$suffix" "cri_daemon_rss_${CRI_PODS}_mib" "$impl" "$(awk -v k="$(status_field VmRSS "$D_PID")" 'BEGIN {printf "%.1f", k / 1024}')"
        cri_sample "$suffix" "cri_daemon_pss_${CRI_PODS}_mib" "$impl" "$(awk '$1 == "Pss:" {printf "%.1f", $2 / 1024}' "/proc/$D_PID/smaps_rollup")"
      fi
    fi
    cri_stop "$impl"
  done
}
register cri_pod_memory "CRI supervision memory per running pod: PSS of shims + sandbox (pause) processes / $CRI_PODS pods (KiB), shim count, daemon VmRSS/PSS (MiB); berth with containerd's pause image and with its built-in pause (_builtin)" 3

#     cri_concurrent: $CRI_CONC_N pods started at the same moment (bench_cri --concurrent: one
#     thread per pod, all released together, one connection) on a fresh daemon:
#       cri_conc${N}_s        wall time from the release until the last pod's StartContainer
#                             returned (n/a for that round when any pod failed; the reason is
#                             the first error);
#       cri_conc${N}_ok       how many of them succeeded (every round, failures included);
#       cri_conc${N}_p50_ms, cri_conc${N}_max_ms  one pod's three calls, median and slowest;
#       cri_conc_daemon_rss_mib  the daemon's VmRSS with the pods running.
scenario_cri_concurrent() {
  local impl=$1 round=$2 variant out ok err f
  local figs=("cri_conc${CRI_CONC_N}_s" "cri_conc${CRI_CONC_N}_ok" "cri_conc${CRI_CONC_N}_p50_ms" "cri_conc${CRI_CONC_N}_max_ms" cri_conc_daemon_rss_mib)
  for variant in $(cri_variants "$impl"); do
    local suffix=${variant#image}
    cri_figs "$impl" "$suffix" "${figs[@]}"
    failed_before "cri_concurrent$suffix" "$impl" "${CF[@]}" && continue
    if ! cri_daemon "$impl" "$variant"; then
      fail "cri_concurrent$suffix" "$impl" "$round" "$CTR_ERR" "${CF[@]}"
      cri_stop "$impl"
      continue
    fi
    cri_pods "c$round" "$CRI_CONC_N" --concurrent || true
    out=$(tail -n 1 "$D_DIR/cri-c$round.out" 2>/dev/null || true)
    ok=$(field ok "$out")
    if [[ -z $ok ]]; then
      fail "cri_concurrent$suffix" "$impl" "$round" "$CTR_ERR" "${CF[@]}"
    else
      log "  $impl${suffix}: $out"
      cri_sample "$suffix" "cri_conc${CRI_CONC_N}_ok" "$impl" "$ok"
      if ((ok == CRI_CONC_N)); then
        cri_sample "$suffix" "cri_conc${CRI_CONC_N}_s" "$impl" "$(awk -v m="$(field wall_ms "$out")" 'BEGIN {printf "%.2f", m / 1000}')"
      else
        err=$(grep -m1 'ok=0' "$D_DIR/cri-c$round.out" | sed 's/^pod=[0-9]* ok=0 //' | cut -c1-300)
        log "  $impl${suffix} round $round: $((CRI_CONC_N - ok)) of $CRI_CONC_N pods failed, e.g. $err"
        cri_figs "$impl" "$suffix" "cri_conc${CRI_CONC_N}_s"
        for f in "${CF[@]}"; do
          sample_na "$f" "$impl" "$((CRI_CONC_N - ok)) of $CRI_CONC_N pods failed, e.g. $err"
        done
      fi
      cri_sample "$suffix" "cri_conc${CRI_CONC_N}_p50_ms" "$impl" "$(cri_pod_stat total_ms 50 "$D_DIR/cri-c$round.out")"
      cri_sample "$suffix" "cri_conc${CRI_CONC_N}_max_ms" "$impl" "$(cri_pod_stat total_ms 100 "$D_DIR/cri-c$round.out")"
      cri_sample "$suffix" cri_conc_daemon_rss_mib "$impl" "$(awk -v k="$(status_field VmRSS "$D_PID")" 'BEGIN {printf "%.1f", k / 1024}')"
    fi
    cri_stop "$impl"
  done
}
register cri_concurrent "CRI: $CRI_CONC_N pods (RunPodSandbox + CreateContainer + StartContainer) started at once on a fresh daemon: wall time (s), how many succeeded, per-pod p50/max (ms), daemon VmRSS (MiB)" 3

# (10) CRI streaming (issue 12): Exec and PortForward return a one-time URL of the daemon's
#      streaming server (stream_server_address, 127.0.0.1 in the daemon's network namespace, a
#      random port), which crictl then dials and speaks SPDY to. The same crictl (1.25, $CRICTL)
#      drives both daemons; it runs with nsenter in the daemon's network namespace (as the
#      curl that reads through the forward), since that is where 127.0.0.1:<port> is. One pod per
#      round on a fresh daemon (bench_cri pods: busybox `sleep 100000`, pause image sandbox).
#
#      cri_exec: one untimed `crictl exec CTR true` and `crictl exec -s CTR true`, then
#      $CRI_EXEC_N of each, one after another; a sample is the wall time of one crictl process
#      (spawn to reap). Each round's median is a round value; the figure is the median of those:
#        cri_exec_ms       crictl exec: Exec RPC, SPDY connection to the URL, the exec in the
#                          container, its stdout/stderr streams and exit status back;
#        cri_exec_sync_ms  crictl exec -s: ExecSync (one RPC, no streaming server), for scale;
#        cri_crictl_floor_ms  crictl version (one Version RPC), as many times: what crictl's own
#                          process start and connection cost in each of the figures above.
CRI_FIGS_EXEC=(cri_exec_ms cri_exec_sync_ms cri_crictl_floor_ms)
scenario_cri_exec() {
  local impl=$1 round=$2 ms
  failed_before cri_exec "$impl" "${CRI_FIGS_EXEC[@]}" && return 0
  if ! cri_stream_pod "$impl" "e$round"; then
    fail cri_exec "$impl" "$round" "$CTR_ERR" "${CRI_FIGS_EXEC[@]}"
  elif ! crictl_loop exec-warm 1 exec "$CRI_CTR" true || ! crictl_loop exec-sync-warm 1 exec -s "$CRI_CTR" true; then
    fail cri_exec "$impl" "$round" "untimed warm-up: $CTR_ERR" "${CRI_FIGS_EXEC[@]}"
  elif ! crictl_loop exec "$CRI_EXEC_N" exec "$CRI_CTR" true; then
    fail cri_exec "$impl" "$round" "$CTR_ERR" "${CRI_FIGS_EXEC[@]}"
  else
    ms=$(median "$LOOP_MS")
    log "  $impl: crictl exec true: median $ms ms of $CRI_EXEC_N ($(loop_range))"
    sample cri_exec_ms "$impl" "$ms"
    if ! crictl_loop exec-sync "$CRI_EXEC_N" exec -s "$CRI_CTR" true; then
      fail cri_exec "$impl" "$round" "$CTR_ERR" cri_exec_sync_ms cri_crictl_floor_ms
    else
      ms=$(median "$LOOP_MS")
      log "  $impl: crictl exec -s true: median $ms ms of $CRI_EXEC_N ($(loop_range))"
      sample cri_exec_sync_ms "$impl" "$ms"
      if ! crictl_loop version "$CRI_EXEC_N" version; then
        fail cri_exec "$impl" "$round" "$CTR_ERR" cri_crictl_floor_ms
      else
        ms=$(median "$LOOP_MS")
        log "  $impl: crictl version: median $ms ms of $CRI_EXEC_N ($(loop_range))"
        sample cri_crictl_floor_ms "$impl" "$ms"
      fi
    fi
  fi
  cri_stop "$impl"
}
register cri_exec "CRI streaming exec round trip: crictl exec CTR true ($CRI_EXEC_N per round, one after another, through the daemon's streaming server) and crictl exec -s (ExecSync) for comparison; median of one crictl process (ms)" 3

#      cri_portforward: in the pod's container (started by `crictl exec -s`, untimed) busybox
#      httpd serves /tmp/big, a sparse file of $CRI_PF_MIB MiB (reading it costs no disk I/O;
#      httpd sends it with sendfile), on port $CRI_PF_PORT. `crictl port-forward SANDBOX
#      :$CRI_PF_PORT` runs in the background until it prints "Forwarding from 127.0.0.1:<port>";
#      one untimed 1 MiB GET through it, then $CRI_PF_N timed GETs of /tmp/big with curl, one
#      after another, each a new TCP connection to crictl and so a new forwarded connection (a
#      pair of SPDY streams on crictl's one connection to the streaming server). A round's value
#      is the median of its GETs; the figure the median of those:
#        cri_pf_mib_s      size / curl's time_total (connect to last byte), MiB/s. Higher is
#                          better. The bytes go httpd -> the pod's loopback -> the daemon (its
#                          PortForward dials into the pod's netns) -> SPDY data frames over TCP
#                          -> crictl -> TCP -> curl, all on this machine's 2 CPUs;
#        cri_pf_daemon_cpu_s, cri_pf_crictl_cpu_s  CPU time (user + system, 10 ms ticks,
#                          /proc/PID/stat) the daemon and crictl used during one GET: the
#                          daemon's share of the copying, whatever the wall time, and what its
#                          framing costs the client (the same crictl on both sides);
#        cri_pf_setup_ms   from spawning crictl port-forward to its "Forwarding from" line:
#                          process start, PortForward RPC, SPDY connection to the URL.
CRI_FIGS_PF=(cri_pf_mib_s cri_pf_daemon_cpu_s cri_pf_crictl_cpu_s cri_pf_setup_ms)
CRI_PF_PORT=5000
scenario_cri_portforward() {
  local impl=$1 round=$2 code size t d0 c0 i mibs="" dcpu="" ccpu=""
  failed_before cri_portforward "$impl" "${CRI_FIGS_PF[@]}" && return 0
  if ! cri_stream_pod "$impl" "f$round"; then
    fail cri_portforward "$impl" "$round" "$CTR_ERR" "${CRI_FIGS_PF[@]}"
  elif ! crictl_loop pf-httpd 1 exec -s "$CRI_CTR" sh -c \
      "truncate -s ${CRI_PF_MIB}M /tmp/big && truncate -s 1M /tmp/small && httpd -p $CRI_PF_PORT -h /tmp"; then
    fail cri_portforward "$impl" "$round" "starting httpd in the pod: $CTR_ERR" "${CRI_FIGS_PF[@]}"
  elif ! pf_start; then
    fail cri_portforward "$impl" "$round" "$CTR_ERR" "${CRI_FIGS_PF[@]}"
  elif ! pf_get small 1048576; then
    fail cri_portforward "$impl" "$round" "untimed 1 MiB GET: $CTR_ERR" "${CRI_FIGS_PF[@]}"
  else
    log "  $impl: port-forward ready in $PF_SETUP_MS ms"
    for ((i = 1; i <= CRI_PF_N; i++)); do
      d0="" c0=""
      cpu_ticks "$D_PID" && d0=$CPU_TICKS
      cpu_ticks "$PF_PID" && c0=$CPU_TICKS
      pf_get big $((CRI_PF_MIB * 1048576)) || break
      if [[ -n $d0 ]] && cpu_ticks "$D_PID"; then d0=$(ticks_s $((CPU_TICKS - d0))); else d0=""; fi
      if [[ -n $c0 ]] && cpu_ticks "$PF_PID"; then c0=$(ticks_s $((CPU_TICKS - c0))); else c0=""; fi
      read -r code size t <<<"$PF_GOT"
      mibs+="$(awk -v b="$size" -v t="$t" 'BEGIN {printf "%.1f", b / 1048576 / t}') "
      dcpu+="$d0 " ccpu+="$c0 "
      log "  $impl: GET /big $i: HTTP $code, $size bytes in $t s; CPU: daemon ${d0:-?} s, crictl ${c0:-?} s"
    done
    if [[ -n $CTR_ERR ]]; then
      fail cri_portforward "$impl" "$round" "GET $i of $CRI_PF_N: $CTR_ERR" "${CRI_FIGS_PF[@]}"
    else
      sample cri_pf_mib_s "$impl" "$(median "$mibs")"
      dcpu=$(median "$dcpu") ccpu=$(median "$ccpu")
      if [[ $dcpu != n/a ]]; then sample cri_pf_daemon_cpu_s "$impl" "$dcpu"; else sample_na cri_pf_daemon_cpu_s "$impl" "cannot read /proc/$D_PID/stat"; fi
      if [[ $ccpu != n/a ]]; then sample cri_pf_crictl_cpu_s "$impl" "$ccpu"; else sample_na cri_pf_crictl_cpu_s "$impl" "cannot read /proc/$PF_PID/stat"; fi
      sample cri_pf_setup_ms "$impl" "$PF_SETUP_MS"
    fi
  fi
  pf_stop "$impl"
  cri_stop "$impl"
}
register cri_portforward "CRI port-forward throughput: $CRI_PF_N GETs of a $CRI_PF_MIB MiB file from busybox httpd in a pod through crictl port-forward (MiB/s), daemon and crictl CPU per GET (s), the forward's setup time (ms)" 3

# ----------------------------------------------------- CRI scenario helpers

# cri_variants IMPL: the sandbox variants measured for IMPL: "image" (sandbox_image = the
# bench's pause image) for both, and "image_builtin" (sandbox_image = "") for berthd.
cri_variants() { if [[ $1 == berth ]]; then echo image image_builtin; else echo image; fi; }

# cri_figs IMPL SUFFIX FIGURE...: CF = the figure names of a variant (SUFFIX "" or "_builtin");
# for containerd also the _builtin names, whose containerd= column repeats its one measurement.
CF=()
cri_figs() {
  local impl=$1 s=$2 f
  shift 2
  CF=()
  for f; do
    CF+=("$f$s")
    [[ $impl != containerd ]] || CF+=("${f}_builtin")
  done
}

# cri_sample SUFFIX FIGURE IMPL VALUE: sample FIGURE (+SUFFIX); containerd has no built-in
# variant, so its values also go into the _builtin row, as the figure berth's is compared with.
cri_sample() {
  local s=$1 fig=$2 impl=$3 v=$4
  sample "$fig$s" "$impl" "$v"
  if [[ $impl == containerd && -z $s ]]; then sample "${fig}_builtin" "$impl" "$v"; fi
}

# cri_sample_pods IMPL SUFFIX FIGURE FIELD...: every "pod=.. ok=1" line of the last cri_pods is a
# sample of each FIGURE, from its FIELD.
cri_sample_pods() {
  local impl=$1 s=$2 fig fld v
  shift 2
  while (($#)); do
    fig=$1 fld=$2
    shift 2
    while read -r v; do
      cri_sample "$s" "$fig" "$impl" "$v"
    done < <(awk -v k="$fld" '$2 == "ok=1" {for (i = 3; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2)}' "$CRI_OUT")
  done
}

# cri_pod_stat FIELD PERCENT FILE: the nearest-rank PERCENT percentile of FIELD over the
# successful pods in FILE (bench_cri pods output).
cri_pod_stat() {
  awk -v k="$1" '$2 == "ok=1" {for (i = 3; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2)}' "$3" \
    | sort -g | awk -v p="$2" '{v[NR] = $1} END {if (NR == 0) {print "n/a"; exit} r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r]}'
}

# cri_tool LABEL ARGS...: bench_cri against the current daemon, output in $D_DIR/cri-LABEL.out;
# CTR_ERR (and status 1) when it fails.
cri_tool() {
  local label=$1 rc=0 pid
  shift
  CTR_ERR=""
  CRI_OUT=$D_DIR/cri-$label.out
  # Spawned as waitable does, with its stderr redirected in the child only (a redirection of
  # the waiting shell's would also catch the exit trap's report when Ctrl-C lands meanwhile).
  timeout -k 5 "$CTR_TIMEOUT" "$CRI_TOOL" --address "$D_SOCK" "$@" >"$CRI_OUT" 2>"$D_DIR/cri-$label.err" </dev/null &
  pid=$!
  HELPERS[$pid]=1
  wait "$pid" || rc=$?
  unset "HELPERS[$pid]"
  if ((rc != 0)); then
    CTR_ERR="bench_cri $1 exited $rc: $(grep -m1 -E 'ok=0|error=' "$CRI_OUT" 2>/dev/null | cut -c1-300)$(last_line "$D_DIR/cri-$label.err")"
  fi
  return "$rc"
}

# cri_pods LABEL N [--concurrent]: start N pods named LABEL-1.. on the current CRI daemon.
cri_pods() {
  local label=$1 n=$2
  shift 2
  cri_tool "$label" pods --count "$n" --image "$BUSYBOX_REF" --cgroup-parent "/$CRI_TAG" \
    --log-dir "$D_DIR/pods" --namespace "$CRI_TAG" --name "$label" --timeout-s "$CTR_TIMEOUT" "$@"
}

# cri_daemon IMPL VARIANT: a fresh daemon of IMPL with its CRI plugin on (sandbox_image = the
# bench's pause image, or "" for VARIANT image_builtin), in a network namespace of its own,
# with busybox and the pause image imported into k8s.io and both known to its CRI, Status
# ready. Sets CRI_TAG (this daemon's netns, CNI network, cgroup parent and pod namespace name).
cri_daemon() {
  local impl=$1 variant=$2
  local CRI_ON=1 CRI_SANDBOX_IMAGE=$CRI_PAUSE_REF
  [[ $variant == image_builtin ]] && CRI_SANDBOX_IMAGE=""
  fixtures_up
  pause_archive
  daemon_start "$impl"
  local CTR_NS=k8s.io CTR_DEBUG=""
  ctr_run import images import "$FIXTURES/busybox-oci.tar" || return 1
  ctr_run import-pause images import "$PAUSE_ARCHIVE" || return 1
  cri_tool ready ready --image "$BUSYBOX_REF" --image "$CRI_PAUSE_REF" --timeout-ms 60000 || return 1
}

# cri_stream_pod IMPL LABEL: a fresh CRI daemon of IMPL (pause image sandbox) with one pod
# (bench_cri pods: busybox `sleep 100000`) running; sets CRI_SANDBOX and CRI_CTR (its ids) and
# CRICTL_CMD (crictl with that daemon's endpoints; $D_DIR/crictl.yaml, so that no other
# config file is read).
CRI_SANDBOX="" CRI_CTR=""
CRICTL_CMD=()
cri_stream_pod() {
  local impl=$1 label=$2 line
  CRI_SANDBOX="" CRI_CTR=""
  cri_daemon "$impl" image || return 1
  cri_pods "$label" 1 || return 1
  line=$(awk '$2 == "ok=1"' "$CRI_OUT")
  CRI_SANDBOX=$(field sandbox "$line")
  CRI_CTR=$(field container "$line")
  if [[ -z $CRI_SANDBOX || -z $CRI_CTR ]]; then
    CTR_ERR="no sandbox/container id in the output of bench_cri pods: $(head -c 300 "$CRI_OUT")"
    return 1
  fi
  printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\n' "$D_SOCK" "$D_SOCK" >"$D_DIR/crictl.yaml"
  CRICTL_CMD=("$CRICTL" --config "$D_DIR/crictl.yaml" --runtime-endpoint "unix://$D_SOCK"
              --image-endpoint "unix://$D_SOCK" --timeout 60s)
}

# crictl_loop LABEL N ARGS...: `crictl ARGS` N times, one after another, in the current CRI
# daemon's network namespace (one nsenter for the loop, $CRI_LOOP runs in it: it takes
# $EPOCHREALTIME just before each spawn and after each reap). LOOP_MS = the N wall times in ms;
# at the first failure CTR_ERR (and status 1). crictl's stderr: $D_DIR/LABEL.err; killed after
# $CTR_TIMEOUT s for the whole loop.
CRI_LOOP=""
LOOP_MS=""
crictl_loop() {
  local label=$1 n=$2 pid rc=0 f
  shift 2
  CTR_ERR="" LOOP_MS=""
  if [[ -z $CRI_LOOP ]]; then
    CRI_LOOP=$WORK/crictl-loop.sh
    cat >"$CRI_LOOP" <<'LOOP'
# crictl-loop.sh N ERR CMD...: CMD N times (stdin /dev/null, stdout dropped, stderr appended
# to ERR), one line "T0 T1" per run; "fail I RC" and exit 1 at the first failure.
n=$1 err=$2
shift 2
for ((i = 1; i <= n; i++)); do
  t0=$EPOCHREALTIME
  "$@" </dev/null >/dev/null 2>>"$err"
  rc=$?
  t1=$EPOCHREALTIME
  if ((rc != 0)); then echo "fail $i $rc"; exit 1; fi
  echo "$t0 $t1"
done
LOOP
  fi
  : >"$D_DIR/$label.err"
  timeout -k 5 "$CTR_TIMEOUT" nsenter "--net=/run/netns/$CRI_TAG" bash "$CRI_LOOP" "$n" "$D_DIR/$label.err" \
    "${CRICTL_CMD[@]}" "$@" >"$D_DIR/$label.out" 2>>"$D_DIR/$label.err" </dev/null &
  pid=$!
  HELPERS[$pid]=1
  wait "$pid" || rc=$?
  unset "HELPERS[$pid]"
  LOOP_MS=$(awk '$1 != "fail" && NF == 2 {printf "%.2f ", ($2 - $1) * 1000}' "$D_DIR/$label.out")
  if ((rc == 124)); then
    CTR_ERR="crictl $1 $2 ($label): killed after ${CTR_TIMEOUT} s, after $(wc -w <<<"$LOOP_MS") of $n runs: $(last_line "$D_DIR/$label.err")"
  elif ((rc != 0)); then
    f=$(grep -m1 '^fail ' "$D_DIR/$label.out" || true)
    if [[ -n $f ]]; then
      CTR_ERR="crictl $1 $2 ($label, run $(cut -d' ' -f2 <<<"$f") of $n) exited $(cut -d' ' -f3 <<<"$f"): $(last_line "$D_DIR/$label.err")"
    else
      CTR_ERR="crictl $1 ($label): the loop exited $rc: $(last_line "$D_DIR/$label.err")"
    fi
  fi
  return "$rc"
}

# loop_range: "min-max ms" of LOOP_MS.
loop_range() { tr ' ' '\n' <<<"$LOOP_MS" | awk NF | sort -g | awk 'NR == 1 {a = $1} {b = $1} END {printf "%s-%s ms", a, b}'; }

# pf_start: `crictl port-forward $CRI_SANDBOX :$CRI_PF_PORT` in the background, in the daemon's
# network namespace (nsenter execs crictl: PF_PID is crictl's), its stdout read through a pipe
# until "Forwarding from 127.0.0.1:<port> -> ...". Sets PF_PORT and PF_SETUP_MS (spawn to that
# line); CTR_ERR (and status 1) when crictl exits or says nothing of the kind within 60 s.
PF_PID="" PF_FD="" PF_PORT="" PF_SETUP_MS=""
pf_start() {
  local t0 line="" re='^Forwarding from 127\.0\.0\.1:([0-9]+) '
  PF_PORT="" PF_SETUP_MS=""
  t0=$EPOCHREALTIME
  exec {PF_FD}< <(exec nsenter "--net=/run/netns/$CRI_TAG" "${CRICTL_CMD[@]}" port-forward "$CRI_SANDBOX" \
                    ":$CRI_PF_PORT" </dev/null 2>"$D_DIR/pf.err")
  PF_PID=$!
  HELPERS[$PF_PID]=1
  while read -r -t 60 -u "$PF_FD" line; do
    echo "$line" >>"$D_DIR/pf.out"
    if [[ $line =~ $re ]]; then
      PF_PORT=${BASH_REMATCH[1]}
      break
    fi
  done
  if [[ -z $PF_PORT ]]; then
    CTR_ERR="crictl port-forward printed no \"Forwarding from 127.0.0.1:<port>\" line$(alive "$PF_PID" && echo " in 60 s" || echo " and exited"): $(last_line "$D_DIR/pf.out") $(last_line "$D_DIR/pf.err")"
    return 1
  fi
  PF_SETUP_MS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", (b - a) * 1000}')
}

# pf_get NAME BYTES: GET http://127.0.0.1:$PF_PORT/NAME with curl (in the daemon's netns,
# body dropped); PF_GOT = "HTTP-CODE SIZE TIME_TOTAL_S". CTR_ERR (and status 1) unless it is a
# 200 of BYTES bytes and crictl is still running.
PF_GOT=""
pf_get() {
  local name=$1 want=$2 code size
  CTR_ERR="" PF_GOT=""
  if ! waitable "$D_DIR/curl-$name.out" timeout -k 5 "$CTR_TIMEOUT" nsenter "--net=/run/netns/$CRI_TAG" \
      curl -sS --noproxy '*' -o /dev/null -w '%{http_code} %{size_download} %{time_total}' \
      "http://127.0.0.1:$PF_PORT/$name" 2>"$D_DIR/curl-$name.err"; then
    CTR_ERR="curl of /$name through the port-forward failed: $(cat "$D_DIR/curl-$name.out") $(last_line "$D_DIR/curl-$name.err") (crictl: $(last_line "$D_DIR/pf.err"))"
    return 1
  fi
  PF_GOT=$(<"$D_DIR/curl-$name.out")
  read -r code size _ <<<"$PF_GOT"
  if [[ $code != 200 || $size != "$want" ]]; then
    CTR_ERR="GET /$name through the port-forward: HTTP $code, $size bytes, want 200 and $want (crictl: $(last_line "$D_DIR/pf.err"))"
    return 1
  fi
  if ! alive "$PF_PID"; then
    CTR_ERR="crictl port-forward exited during GET /$name: $(last_line "$D_DIR/pf.err")"
    return 1
  fi
}

# pf_stop IMPL: SIGTERM to crictl port-forward (by PID), reap it, close its pipe; its stderr
# lines, if any, are copied to stderr.
pf_stop() {
  local i
  [[ -n $PF_PID ]] || return 0
  kill -TERM "$PF_PID" 2>/dev/null || true
  for ((i = 0; i < 500; i++)); do alive "$PF_PID" || break; sleep 0.01; done
  alive "$PF_PID" && kill -KILL "$PF_PID" 2>/dev/null
  wait "$PF_PID" 2>/dev/null || true
  unset "HELPERS[$PF_PID]"
  exec {PF_FD}<&-
  PF_PID="" PF_FD=""
  if [[ -s $D_DIR/pf.err ]]; then
    log "  $1: crictl port-forward said on stderr ($(wc -l <"$D_DIR/pf.err") lines), e.g.:"
    head -n 3 "$D_DIR/pf.err" | cut -c1-300 | sed 's/^/      /' >&2
  fi
}

# cri_stop IMPL: remove every pod of the current CRI daemon through its CRI (their containers
# go with them), stop the daemon and its netns; then remove by PID and path whatever was left:
# shims, pod processes, runc state, cgroups, CNI cache entries (cri_leftovers).
cri_stop() {
  local impl=$1 pid n=0 t0
  if alive "$D_PID"; then
    t0=$EPOCHREALTIME
    if cri_tool rmpods rmpods --parallel 4 --timeout-s "$CTR_TIMEOUT"; then
      log "  $impl: $(cat "$CRI_OUT") in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}') s"
    else
      log "  $impl: removing the pods failed: $CTR_ERR"
    fi
  fi
  for pid in $(shim_pids); do
    n=$((n + 1))
    kill -KILL "$pid" 2>/dev/null || true
  done
  ((n == 0)) || log "  warning: $impl left $n shim processes after its pods were removed; killed them"
  log_errors "$impl"
  daemon_stop "$D_PID"
  cri_leftovers "$CRI_TAG" "$impl"
}

# cri_leftovers TAG [IMPL]: after the daemon of TAG has stopped, kill the processes still in its
# pods' cgroups (/sys/fs/cgroup/*/TAG/*), delete runc state of those ids that a killed shim left,
# remove the cgroups and containerd's CNI cache entries of its pods (/var/lib/cni/results:
# containerd 1.6 has no setting for it; berthd's cache is in the daemon's dir). Each leftover is
# reported.
cri_leftovers() {
  local tag=$1 impl=${2:-} f d pid id n=0
  local -a pod_ids=()
  local -A seen=()
  [[ -n $tag ]] || return 0
  for f in /sys/fs/cgroup/*/"$tag"/*/cgroup.procs; do
    [[ -f $f ]] || continue
    d=${f%/cgroup.procs}
    id=${d##*/}
    [[ -n ${seen[$id]:-} ]] || { seen[$id]=1; pod_ids+=("$id"); }
    while read -r pid; do kill -KILL "$pid" 2>/dev/null && n=$((n + 1)); done <"$f"
  done
  ((n == 0)) || log "  warning: killed $n pod processes left in /sys/fs/cgroup/*/$tag ($impl)"
  for id in "${pod_ids[@]}"; do
    for d in /run/containerd/runc/k8s.io "$WORK"/*/state/runc/k8s.io; do
      [[ ! -d $d/$id ]] || runc --root "$d" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  ((${#pod_ids[@]} == 0)) || log "  warning: ${#pod_ids[@]} pod cgroups were left under /sys/fs/cgroup/*/$tag ($impl); removing them"
  for d in /sys/fs/cgroup/*/"$tag"; do
    [[ -d $d ]] || continue
    for ((n = 0; n < 50; n++)); do
      find "$d" -depth -type d -exec rmdir -- {} + 2>/dev/null
      [[ -d $d ]] || break
      sleep 0.1
    done
    [[ -d $d ]] && log "  warning: cannot remove cgroup $d"
  done
  for d in /run/containerd/runc/k8s.io; do
    rmdir -- "$d" 2>/dev/null || true   # only when empty: other runtimes' k8s.io pods may be there
  done
  if [[ -d /var/lib/cni/results ]]; then
    rm -f -- /var/lib/cni/results/"$tag"-*
    { grep -lsF -- "$tag" /var/lib/cni/results/cni-loopback-* || true; } | while read -r f; do rm -f -- "$f"; done
  fi
  unset "CRI_TAGS[$tag]"
  return 0
}

# cni_dirs_restore: containerd 1.6 creates /var/lib/cni/results for its CNI cache; when the run
# found no /var/lib/cni, the (empty) directories it left are removed again.
CNI_DIR_EXISTED=1
[[ -e /var/lib/cni ]] || CNI_DIR_EXISTED=0
cni_dirs_restore() {
  ((CNI_DIR_EXISTED)) && return 0
  rmdir -- /var/lib/cni/results /var/lib/cni 2>/dev/null
  return 0
}

# cri_netns_up IMPL DIR: the network namespace and CNI config of a new CRI daemon: netns
# /run/netns/$CRI_TAG (lo up), DIR/cni/net.d/10-bench.conflist (bridge + host-local on a private
# /16 that exists only in that netns), host-local's dataDir DIR/cni/ipam.
declare -A CRI_TAGS=()    # tag -> 1 while its netns/cgroups may exist
CRI_SEQ=0
cri_netns_up() {
  local impl=$1 dir=$2
  CRI_SEQ=$((CRI_SEQ + 1))
  CRI_TAG="berth-bench-$$-$CRI_SEQ"
  CRI_TAGS[$CRI_TAG]=1
  ip netns add "$CRI_TAG" || return 1
  ip -n "$CRI_TAG" link set lo up || return 1
  mkdir -p "$dir/cni/net.d" "$dir/cni/ipam" "$dir/cni/cache" "$dir/pods"
  jq -n --arg name "$CRI_TAG" --arg br "bbr-${impl:0:1}$CRI_SEQ" --arg data "$dir/cni/ipam" \
    --arg subnet "10.$((200 + CRI_SEQ % 50)).0.0/16" '{
      cniVersion: "1.0.0", name: $name,
      plugins: [{type: "bridge", bridge: $br, isGateway: true, ipMasq: false,
                 ipam: {type: "host-local", ranges: [[{subnet: $subnet}]],
                        routes: [{dst: "0.0.0.0/0"}], dataDir: $data}}]}' \
    >"$dir/cni/net.d/10-bench.conflist"
}

# The CRI section of a daemon's config (when a CRI scenario runs): the same for both, plus
# berth's private CNI cache (containerd 1.6 always uses /var/lib/cni/results).
cri_config() {
  local impl=$1 dir=$2
  cat <<EOF

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$CRI_SANDBOX_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$dir/cni/net.d"
EOF
  [[ $impl != berth ]] || printf '    cache_dir = "%s"\n' "$dir/cni/cache"
}

# pause_memory: PAUSE_COUNT and PAUSE_PSS_KB over the current daemon's sandbox processes: the
# processes in the cgroups of the sandboxes bench_cri started (<parent>/<sandbox id>).
pause_memory() {
  local id f pid pss ctl
  PAUSE_COUNT=0 PAUSE_PSS_KB=0
  for ctl in pids memory cpu,cpuacct; do [[ -d /sys/fs/cgroup/$ctl/$CRI_TAG ]] && break; done
  while read -r id; do
    f=/sys/fs/cgroup/$ctl/$CRI_TAG/$id/cgroup.procs
    [[ -f $f ]] || continue
    while read -r pid; do
      pss=$(awk '$1 == "Pss:" {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
      [[ -n $pss ]] || continue
      PAUSE_COUNT=$((PAUSE_COUNT + 1))
      PAUSE_PSS_KB=$((PAUSE_PSS_KB + pss))
    done <"$f"
  done < <(awk '$2 == "ok=1" {sub("sandbox=", "", $3); print $3}' "$CRI_OUT")
}

# pause_archive: once per run, $WORK/pause-oci.tar: an OCI image archive (as `ctr images
# export` writes one) of $CRI_PAUSE_REF, one layer holding /pause = berth-pause (static),
# entrypoint ["/pause"]: the sandbox image both daemons get, built offline.
PAUSE_ARCHIVE=""
pause_archive() {
  [[ -z $PAUSE_ARCHIVE ]] || return 0
  local s=$WORK/pause-oci l=$WORK/pause-layer cfg man diffid ld cd md
  [[ -x $PAUSE_BIN ]] || die "$PAUSE_BIN is missing (build berth-pause, or point BERTH_PAUSE at it)"
  rm -rf -- "$s" "$l"
  mkdir -p "$s/blobs/sha256" "$l"
  install -m 0755 "$PAUSE_BIN" "$l/pause"
  tar -C "$l" -cf "$WORK/pause-layer.tar" --format=ustar --owner=0 --group=0 --numeric-owner --mtime=@946684800 pause
  diffid=sha256:$(sha256sum <"$WORK/pause-layer.tar" | cut -d' ' -f1)
  gzip -n -c "$WORK/pause-layer.tar" >"$WORK/pause-layer.tar.gz"
  ld=$(sha256sum <"$WORK/pause-layer.tar.gz" | cut -d' ' -f1)
  mv "$WORK/pause-layer.tar.gz" "$s/blobs/sha256/$ld"
  cfg=$(jq -cn --arg d "$diffid" '{architecture: "amd64", os: "linux",
      config: {Entrypoint: ["/pause"], WorkingDir: "/"},
      rootfs: {type: "layers", diff_ids: [$d]},
      history: [{created: "2000-01-01T00:00:00Z", created_by: "berth bench: /pause = berth-pause"}]}')
  printf '%s' "$cfg" >"$WORK/pause-config.json"
  cd=$(sha256sum <"$WORK/pause-config.json" | cut -d' ' -f1)
  mv "$WORK/pause-config.json" "$s/blobs/sha256/$cd"
  man=$(jq -cn --arg c "sha256:$cd" --argjson cs "${#cfg}" --arg l "sha256:$ld" \
      --argjson ls "$(stat -c %s "$s/blobs/sha256/$ld")" '{schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
      layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l, size: $ls}]}')
  printf '%s' "$man" >"$WORK/pause-manifest.json"
  md=$(sha256sum <"$WORK/pause-manifest.json" | cut -d' ' -f1)
  mv "$WORK/pause-manifest.json" "$s/blobs/sha256/$md"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$s/oci-layout"
  jq -cn --arg d "sha256:$md" --argjson sz "${#man}" --arg n "$CRI_PAUSE_REF" '{schemaVersion: 2,
      manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $sz,
                   annotations: {"io.containerd.image.name": $n,
                                 "org.opencontainers.image.ref.name": ($n | sub("^.*:"; ""))}}]}' \
    >"$s/index.json"
  tar -C "$s" -cf "$WORK/pause-oci.tar" --format=ustar --owner=0 --group=0 --numeric-owner \
    oci-layout index.json blobs
  rm -rf -- "$s" "$l" "$WORK/pause-layer.tar"
  PAUSE_ARCHIVE=$WORK/pause-oci.tar
  log "  pause image $CRI_PAUSE_REF: $PAUSE_ARCHIVE (/pause = $PAUSE_BIN, $(stat -c %s "$PAUSE_BIN") bytes)"
}

# ----------------------------------------------- container scenario helpers

# cid IMPL ROUND N: a container id unique to this run, implementation, round and N.
cid() { echo "$CID_PREFIX-${1:0:1}$2-$3"; }

# containers_daemon IMPL: a fresh daemon of IMPL (D_PID, D_SOCK, D_DIR) with the busybox
# fixture imported and unpacked (overlayfs) in namespace $CNS. Sets CTR_ERR when the import fails.
containers_daemon() {
  fixtures_up
  daemon_start "$1"
  CTR_NS=$CNS ctr_run import images import "$FIXTURES/busybox-oci.tar"
}

# running_tasks: how many tasks of the current daemon in $CNS are RUNNING (fails if ctr does).
running_tasks() {
  CTR_NS=$CNS ctr_run tasks tasks ls || return 1
  awk '$3 == "RUNNING"' "$D_DIR/tasks.out" | wc -l
}

# shim_pids: the current daemon's shims: processes started with `-address $D_SOCK` (a v2 shim's
# command line: -namespace NS -id ID -address SOCK ...), by /proc/PID/cmdline.
shim_pids() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    [[ $pid == "$D_PID" ]] && continue
    tr '\0' '\n' 2>/dev/null <"$f" | awk -v s="$D_SOCK" '
      $0 == "-namespace" {ns = 1} prev == "-address" && $0 == s {addr = 1} {prev = $0}
      END {exit !(ns && addr)}' && echo "$pid"
  done
  return 0
}

# shim_memory: SHIM_COUNT, SHIM_RSS_KB (sum of VmRSS) and SHIM_PSS_KB (sum of smaps_rollup Pss)
# over the current daemon's shims.
shim_memory() {
  local pid rss pss
  SHIM_COUNT=0 SHIM_RSS_KB=0 SHIM_PSS_KB=0
  for pid in $(shim_pids); do
    rss=$(status_field VmRSS "$pid")
    pss=$(awk '$1 == "Pss:" {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
    [[ -n $rss && -n $pss ]] || continue
    SHIM_COUNT=$((SHIM_COUNT + 1))
    SHIM_RSS_KB=$((SHIM_RSS_KB + rss))
    SHIM_PSS_KB=$((SHIM_PSS_KB + pss))
  done
}

# containers_stop IMPL: delete every task (SIGKILL) and container (with its snapshot) of the
# current daemon in $CNS through ctr, then stop the daemon. Whatever that left behind is
# reported and removed by PID and path: shims, container processes, cgroups.
containers_stop() {
  local impl=$1 pid n
  if alive "$D_PID"; then
    if CTR_NS=$CNS ctr_run tasks tasks ls -q; then
      if [[ -s $D_DIR/tasks.out ]]; then
        waitable "$D_DIR/task-rm.out" xargs -a "$D_DIR/tasks.out" -P 4 -n 1 "$CTR" -a "$D_SOCK" -n "$CNS" tasks rm -f \
          2>"$D_DIR/task-rm.err" || log "  $impl: ctr tasks rm -f failed: $(last_line "$D_DIR/task-rm.err")"
      fi
    fi
    if CTR_NS=$CNS ctr_run containers containers ls -q; then
      if [[ -s $D_DIR/containers.out ]]; then
        waitable "$D_DIR/c-rm.out" xargs -a "$D_DIR/containers.out" -P 4 -n 1 "$CTR" -a "$D_SOCK" -n "$CNS" containers rm \
          2>"$D_DIR/c-rm.err" || log "  $impl: ctr containers rm failed: $(last_line "$D_DIR/c-rm.err")"
      fi
    fi
  fi
  n=0
  for pid in $(shim_pids); do
    n=$((n + 1))
    kill -KILL "$pid" 2>/dev/null || true
  done
  ((n == 0)) || log "  warning: $impl left $n shim processes after its containers were deleted; killed them"
  kill_containers "$D_DIR"
  log_errors "$impl"
  daemon_stop "$D_PID"
  remove_cgroups
}

# kill_containers DIR: SIGKILL the init processes recorded in bundles under DIR (init.pid) and
# every process in this run's container cgroups. A safety net: normally there are none.
kill_containers() {
  local f pid
  local -A killed=()
  for f in "$1"/*/state/io.containerd.runtime.v2.task/*/*/init.pid "$1"/state/io.containerd.runtime.v2.task/*/*/init.pid; do
    [[ -f $f ]] || continue
    pid=$(<"$f")
    if ! [[ $pid =~ ^[0-9]+$ ]] || ! alive "$pid"; then continue; fi
    kill -KILL "$pid" 2>/dev/null && killed[$pid]=1
  done
  for f in /sys/fs/cgroup/*/"$CNS"/"$CID_PREFIX"-*/cgroup.procs; do
    [[ -f $f ]] || continue
    while read -r pid; do kill -KILL "$pid" 2>/dev/null && killed[$pid]=1; done <"$f"
  done
  ((${#killed[@]} == 0)) || log "  warning: killed ${#killed[@]} container processes left by the daemon in $1"
}

# remove_cgroups: this run's container cgroups (reported: the runtime should have removed them),
# then the namespace's parent cgroups if empty (runc creates them and nobody removes them).
remove_cgroups() {
  local d i
  local -A ids=()
  for d in /sys/fs/cgroup/*/"$CNS"/"$CID_PREFIX"-*/; do
    [[ -d $d ]] || continue
    d=${d%/}
    ids[${d##*/}]=1
    for ((i = 0; i < 50; i++)); do rmdir -- "$d" 2>/dev/null && break; sleep 0.1; done
  done
  ((${#ids[@]} == 0)) || log "  warning: the cgroups of ${#ids[@]} containers were left under /sys/fs/cgroup/*/$CNS; removed them"
  for d in /sys/fs/cgroup/*/"$CNS"/; do [[ -d $d ]] && rmdir -- "$d" 2>/dev/null; done
  # runc state of this run's containers whose shim was killed above (containerd's shim keeps it
  # under /run/containerd/runc, ours under the daemon's state dir: <state>/runc), then the empty
  # namespace roots.
  for d in /run/containerd/runc/"$CNS"/"$CID_PREFIX"-* "$WORK"/*/state/runc/"$CNS"/"$CID_PREFIX"-*; do
    [[ -d $d ]] && runc --root "${d%/*}" delete --force "${d##*/}" >/dev/null 2>&1
  done
  for d in /run/containerd/runc/"$CNS" "$WORK"/*/state/runc/"$CNS"; do
    [[ -d $d ]] && rmdir -- "$d" 2>/dev/null
  done
  return 0
}

# --------------------------------------------------- image scenario helpers

REG_DIR="" REG_ADDR="" BIG_REF="" BIG_BYTES="" BIG_LAYERS="" FIXTURES_OK=0

# fixtures_up: on first use, build (or reuse) the fixture images in $FIXTURES
# (tests/fixtures/build-images.sh): the OCI layout with test/big, and busybox-oci.tar.
fixtures_up() {
  ((FIXTURES_OK)) && return 0
  local fx=$REPO/tests/fixtures t0
  t0=$EPOCHREALTIME
  waitable "$WORK/fixtures.log" "$fx/build-images.sh" "$FIXTURES" --big-mib "$BIG_MIB" \
    || die "tests/fixtures/build-images.sh $FIXTURES --big-mib $BIG_MIB failed: $(tail -n 5 "$WORK/fixtures.log")"
  log "  fixtures in $FIXTURES ($(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}') s): $(tail -n 1 "$WORK/fixtures.log" | cut -c1-120)"
  [[ -f $FIXTURES/busybox-oci.tar ]] || die "no busybox-oci.tar in $FIXTURES"
  FIXTURES_OK=1
}

# registry_up: on first use, build (or reuse) the fixture images in $FIXTURES, start one
# registry on 127.0.0.1 under $WORK, push test/big to it and read every blob through it once
# (untimed), so the registry's files are in the page cache before either daemon fetches.
# Sets REG_ADDR, BIG_REF, BIG_BYTES (manifest + config + layers) and BIG_LAYERS.
registry_up() {
  [[ -n $REG_ADDR ]] && return 0
  local fx=$REPO/tests/fixtures layout manifest mdigest msize t0 urls=() d
  for d in jq curl skopeo docker-registry umoci timeout; do
    command -v "$d" >/dev/null || die "$d is missing (the image scenarios need it; see tests/fixtures/README.md)"
  done
  fixtures_up
  layout=$FIXTURES/oci
  manifest=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "big")
                    | "\(.digest) \(.size)"' "$layout/index.json")
  read -r mdigest msize <<<"$manifest"
  [[ $mdigest == sha256:* && -f $layout/blobs/sha256/${mdigest#sha256:} ]] || die "no tag big in $layout"
  BIG_BYTES=$(jq --argjson m "$msize" '[.config.size, .layers[].size] | add + $m' "$layout/blobs/sha256/${mdigest#sha256:}")
  BIG_LAYERS=$(jq '.layers | length' "$layout/blobs/sha256/${mdigest#sha256:}")
  REG_DIR=$WORK/registry
  REG_ADDR=$("$fx/registry.sh" start "$REG_DIR" 2>"$WORK/registry.err") \
    || die "cannot start the registry: $(cat "$WORK/registry.err")"
  t0=$EPOCHREALTIME
  waitable "$WORK/push.out" "$fx/registry.sh" push "$REG_DIR" "$layout" big 2>"$WORK/push.err" \
    || die "pushing test/big failed: $(tail -n 5 "$WORK/push.err")"
  BIG_REF=$REG_ADDR/test/big:latest
  urls=(-o /dev/null "http://$REG_ADDR/v2/test/big/manifests/$mdigest")
  for d in $(jq -r '.config.digest, .layers[].digest' "$layout/blobs/sha256/${mdigest#sha256:}"); do
    urls+=(-o /dev/null "http://$REG_ADDR/v2/test/big/blobs/$d")
  done
  waitable /dev/null curl -sSf --fail-early -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "${urls[@]}" || die "cannot read test/big back from the registry"
  log "  registry on $REG_ADDR: $BIG_REF, $BIG_LAYERS layers, $BIG_BYTES bytes ($(awk -v b="$BIG_BYTES" 'BEGIN {printf "%.1f", b / 1048576}') MiB), pushed and read back in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}') s"
}

# ctr_run LABEL ARGS...: `$CTR --debug -a $D_SOCK -n $NS ARGS` against the current daemon
# ($CTR_DEBUG, $CTR_NS and $CLIENT replace --debug, $NS and $CTR when a scenario sets them
# `local`; berth takes ctr's global flags)
# (killed after $CTR_TIMEOUT s), stdout/stderr to $D_DIR/LABEL.out/.err. Sets CTR_S (wall
# seconds, from just before the spawn to just after it is reaped) and, when it fails, CTR_ERR.
# --debug because without it `content fetch` and `images pull` run a progress display that
# polls the daemon (ListStatuses, Info) every 100 ms and, once the fetch is done, waits for its
# next tick before returning: that quantised every time to the 100 ms grid.
ctr_run() {
  local label=$1 pid rc=0 t0 t1
  shift
  CTR_ERR=""
  t0=$EPOCHREALTIME
  # shellcheck disable=SC2086  # CTR_DEBUG is one word or none
  timeout -k 5 "$CTR_TIMEOUT" "$CLIENT" $CTR_DEBUG -a "$D_SOCK" -n "$CTR_NS" "$@" \
    >"$D_DIR/$label.out" 2>"$D_DIR/$label.err" </dev/null &
  pid=$!
  HELPERS[$pid]=1
  wait "$pid" || rc=$?
  t1=$EPOCHREALTIME
  unset "HELPERS[$pid]"
  CTR_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
  if ((rc == 124)); then
    CTR_ERR="${CLIENT##*/} $1 $2 killed after ${CTR_TIMEOUT} s"
  elif ((rc != 0)); then
    CTR_ERR="${CLIENT##*/} $1 $2 exited $rc: $(last_line "$D_DIR/$label.err")"
  fi
  return "$rc"
}

# Last non-empty line of a file, without terminal escapes, at most 300 characters.
last_line() { sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$1" 2>/dev/null | awk 'NF {l = $0} END {print l}' | cut -c1-300; }

# image_ok UNPACKED: `ctr images check` says $BIG_REF is complete in the current daemon (and,
# with UNPACKED=1, unpacked, with one committed overlayfs snapshot per layer). Untimed.
# Sets CTR_ERR when not.
image_ok() {
  local want_unpacked=$1 row n
  # Exits 1 when the snapshotter is missing, but still prints the table.
  ctr_run check images check || true
  row=$(awk -v r="$BIG_REF" '$1 == r' "$D_DIR/check.out")
  if [[ $row != *" complete ("* ]]; then
    CTR_ERR="not complete after ctr exited 0: ctr images check: ${row:-no $BIG_REF} $(last_line "$D_DIR/check.err")"
    return 1
  fi
  ((want_unpacked)) || return 0
  if [[ $row != *" true" ]]; then
    CTR_ERR="not unpacked after ctr exited 0: ctr images check: $row $(last_line "$D_DIR/check.err")"
    return 1
  fi
  if ! ctr_run snapshots snapshots --snapshotter overlayfs ls; then
    CTR_ERR="after the pull: $CTR_ERR"
    return 1
  fi
  n=$(grep -c ' Committed *$' "$D_DIR/snapshots.out" || true)
  if ((n != BIG_LAYERS)); then
    CTR_ERR="after the pull: $n committed overlayfs snapshots, want $BIG_LAYERS"
    return 1
  fi
}

# fail SCENARIO IMPL ROUND REASON FIGURE...: this round of IMPL gave no value for FIGUREs: they
# are reported as n/a, and IMPL is not tried again in later rounds of SCENARIO.
declare -A FAILED=()      # "scenario|impl" -> round of the first failure
fail() {
  local scen=$1 impl=$2 round=$3 reason=$4 fig st=0
  shift 4
  if ! alive "$D_PID"; then
    wait "$D_PID" 2>/dev/null || st=$?
    if ((st > 128)); then reason+=" (the daemon died: signal $((st - 128)))"; else reason+=" (the daemon exited $st)"; fi
    log "  $impl: daemon pid $D_PID is gone$(log_tail "$D_DIR")"
  fi
  log "  $impl round $round: n/a for $*: $reason"
  FAILED["$scen|$impl"]=${FAILED["$scen|$impl"]:-$round}
  for fig; do sample_na "$fig" "$impl" "$reason"; done
}

# failed_before SCENARIO IMPL FIGURE...: true (and logged) when IMPL failed in an earlier round.
failed_before() {
  local scen=$1 impl=$2 fig
  shift 2
  [[ -n ${FAILED["$scen|$impl"]:-} ]] || return 1
  log "  $impl: skipped, failed in round ${FAILED["$scen|$impl"]}"
  for fig; do sample_na "$fig" "$impl" "skipped"; done
  return 0
}

# log_errors IMPL: error-level lines of the current daemon's log (at most 3), to stderr.
log_errors() {
  local n
  n=$(grep -cE 'level=(error|fatal|panic)' "$D_DIR/daemon.log" 2>/dev/null || true)
  ((${n:-0} > 0)) || return 0
  log "  $1 logged $n error lines, e.g.:"
  grep -E 'level=(error|fatal|panic)' "$D_DIR/daemon.log" | head -n 3 | cut -c1-400 | sed 's/^/      /' >&2
}

# ------------------------------------------------------------------ daemons

WORK=""
declare -A LIVE=()        # pid -> dir, for every daemon started and not yet stopped
declare -A NETNS_OF=()    # pid -> network namespace (/run/netns/NAME) of a CRI daemon
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
  # Outside the CRI scenarios berthd's CRI plugin is off when containerd's is (the default), so
  # both serve the same set; it would also use the host's CNI paths (/etc/cni, /var/lib/cni).
  local disabled=""
  if ((!CRI_ON)) && [[ " $CONTAINERD_DISABLED_PLUGINS " == *" io.containerd.grpc.v1.cri "* ]]; then
    disabled='disabled_plugins = ["io.containerd.grpc.v1.cri"]'
  fi
  cat <<EOF
version = 2
root = "$1/root"
state = "$1/state"
$disabled

[grpc]
  address = "$1/berth.sock"
EOF
  log_level_config
  if ((CRI_ON)); then cri_config berth "$1"; fi
}

# The [debug] table when a scenario sets DAEMON_LOG_LEVEL (same key in both daemons).
log_level_config() {
  [[ -z $DAEMON_LOG_LEVEL ]] || printf '\n[debug]\n  level = "%s"\n' "$DAEMON_LOG_LEVEL"
}

config_containerd() {
  local p list=""
  for p in $CONTAINERD_DISABLED_PLUGINS; do
    # The CRI scenarios need containerd's CRI plugin.
    ((CRI_ON)) && [[ $p == io.containerd.grpc.v1.cri ]] && continue
    list+="${list:+, }\"$p\""
  done
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
  log_level_config
  if ((CRI_ON)); then cri_config containerd "$1"; fi
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
  local -a wrap=()
  bin=$(daemon_bin "$impl")
  dir=$(mktemp -d "$WORK/$impl.XXXXXX")
  if ((CRI_ON)); then
    # A CRI daemon runs in a network namespace of its own (nsenter execs it: same PID).
    cri_netns_up "$impl" "$dir" || die "$impl: cannot set up network namespace $CRI_TAG"
    wrap=(nsenter "--net=/run/netns/$CRI_TAG")
  fi
  if ((STATE_TMPFS)); then
    # The daemon's state dir on a tmpfs, as /run is on a real node (unmounted by daemon_stop).
    mkdir -p "$dir/state"
    mount -t tmpfs -o mode=0711 berth-bench-state "$dir/state" || die "cannot mount a tmpfs on $dir/state"
  fi
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
  "${wrap[@]}" "$bin" --config "$dir/config.toml" </dev/null >"$dir/daemon.log" 2>&1 {rfd}<&- &
  D_PID=$!
  LIVE[$D_PID]=$dir
  ((CRI_ON)) && NETNS_OF[$D_PID]=$CRI_TAG
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
  local st=0
  wait "$pid" 2>/dev/null || st=$?
  # 143 = our SIGTERM, 0 = clean exit, 137 = our SIGKILL (reported above); anything else is a
  # crash or a failed shutdown: worth knowing even when every figure came out.
  if ((st != 0 && st != 143 && st != 137)); then
    if ((st > 128)); then
      log "  warning: daemon pid $pid died of signal $((st - 128)) while stopping$(log_tail "$dir")"
    else
      log "  warning: daemon pid $pid exited $st when stopped$(log_tail "$dir")"
    fi
  fi
  unset "LIVE[$pid]"
  if [[ -n $dir ]]; then
    report_mounts "$dir"
    unmount_under "$dir"
    rm -rf -- "$dir"
  fi
  if [[ -n ${NETNS_OF[$pid]:-} ]]; then
    ip netns delete "${NETNS_OF[$pid]}" || log "  warning: cannot delete network namespace ${NETNS_OF[$pid]}"
    unset "NETNS_OF[$pid]"
  fi
}

# report_mounts DIR: warn about mounts a stopped daemon left at or below DIR (they are
# unmounted next) and about mounts elsewhere whose options name DIR (an overlay with its
# layers in DIR, say: left alone, as they are not ours to touch).
report_mounts() {
  local n
  # (not counted: the tmpfs of BENCH_STATE_TMPFS=1 on DIR/state, which is the bench's own)
  n=$(awk -v d="$1" '($5 == d || index($5, d "/") == 1) && !($5 == d "/state" && index($0, " - tmpfs berth-bench-state "))' \
    /proc/self/mountinfo | wc -l)
  ((n == 0)) || log "  warning: $n mounts left under $1 after the daemon stopped; unmounting them"
  awk -v d="$1" '!($5 == d || index($5, d "/") == 1) && index($0, d "/")' /proc/self/mountinfo \
    | while read -r line; do log "  warning: mount outside $1 refers to it: $line"; done
  return 0
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
  local rc=$? pid i t
  trap - EXIT INT TERM
  set +e
  for pid in "${!HELPERS[@]}"; do kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  # Containers of the container scenarios first (their shims go with the command-line sweep).
  [[ -n $WORK && -d $WORK ]] && kill_containers "$WORK"
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
  if [[ -n $REG_DIR ]]; then "$REPO/tests/fixtures/registry.sh" stop "$REG_DIR" >/dev/null 2>&1; fi
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
  remove_cgroups
  # CRI scenarios: pod processes, cgroups, runc state, CNI cache entries, then the netns.
  for t in "${!CRI_TAGS[@]}"; do
    cri_leftovers "$t" cleanup
    [[ -e /run/netns/$t ]] && ip netns delete "$t"
  done
  cni_dirs_restore
  exit "$rc"
}

# ------------------------------------------------------------------ results

declare -A SAMPLES=()     # "figure|impl" -> space-separated values
declare -A NA=()          # "figure|impl" -> why a round gave no value (the first reason)
declare -A KNOWN=()       # figure -> 1
FIGURES=()                # figures in the order first sampled
REPORTED=0                # how many of FIGURES are printed already

known() { [[ -n ${KNOWN[$1]+x} ]] || { FIGURES+=("$1"); KNOWN[$1]=1; }; }

sample() {
  local fig=$1 impl=$2 val=$3
  [[ $val =~ ^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$ ]] || die "$fig/$impl: not a number: '$val'"
  known "$fig"
  SAMPLES["$fig|$impl"]+="$val "
}

# sample_na FIGURE IMPL REASON: a round without a value; the figure is then n/a for IMPL.
sample_na() {
  local fig=$1 impl=$2
  known "$fig"
  SAMPLES["$fig|$impl"]+="n/a "
  [[ -n ${NA["$fig|$impl"]+x} ]] \
    || NA["$fig|$impl"]=$(tr '\n' ' ' <<<"$3" | sed 's/ *$//' | cut -c1-300)
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

# value_of FIGURE IMPL: the median, or n/a when a round of IMPL gave no value.
value_of() {
  if [[ -n ${NA["$1|$2"]+x} ]]; then echo n/a; else median "${SAMPLES["$1|$2"]:-}"; fi
}

# Print the figures sampled since the last call. A figure that is n/a for a side gets the
# reason appended after a "#" (stderr has it too).
report() {
  local fig b c note impl
  for fig in "${FIGURES[@]:REPORTED}"; do
    b=$(value_of "$fig" berth)
    c=$(value_of "$fig" containerd)
    log "  $fig samples: berth=[${SAMPLES["$fig|berth"]:-}] containerd=[${SAMPLES["$fig|containerd"]:-}]"
    note=""
    for impl in "${IMPLS[@]}"; do
      if [[ -n ${NA["$fig|$impl"]+x} ]]; then
        log "  $fig: $impl n/a: ${NA["$fig|$impl"]}"
        note+="  # $impl: ${NA["$fig|$impl"]}"
      fi
    done
    printf '%-22s berth=%-10s containerd=%-10s ratio=%s%s\n' "$fig" "$b" "$c" "$(ratio "$b" "$c")" "$note"
  done
  REPORTED=${#FIGURES[@]}
}

# field NAME "k=v k=v ...": the value of NAME.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# ------------------------------------------------------------------- setup

usage() {
  cat <<EOF
usage: bench/run.sh [options] [scenario...]
  --rounds N        rounds per scenario, alternating berth/containerd (default $ROUNDS;
                    3 for pull, berth_pull, many and cri_* unless --rounds is given)
  --count N         timed Version calls per round in version_rtt (default $RTT_COUNT)
  --warmup N        untimed Version calls first (default $RTT_WARMUP)
  --settle SECONDS  idle time before memory is read in idle_rss (default $SETTLE)
  --no-build        do not run the build first
  --list            list the scenarios and exit
environment: BERTHD=$BERTHD BERTH=$BERTH CONTAINERD=$CONTAINERD CTR=$CTR
             BENCH_TOOL=$TOOL BENCH_CRI_TOOL=$CRI_TOOL BERTH_PAUSE=$PAUSE_BIN
             BENCH_CNI_BIN=$CNI_BIN BENCH_CRI_PODS=$CRI_PODS BENCH_CRI_CONC_N=$CRI_CONC_N
             CRICTL=$CRICTL BENCH_CRI_EXEC_N=$CRI_EXEC_N BENCH_CRI_PF_MIB=$CRI_PF_MIB BENCH_CRI_PF_N=$CRI_PF_N
             BENCH_STATE_TMPFS=$STATE_TMPFS
             BENCH_FIXTURES=$FIXTURES BENCH_BIG_MIB=$BIG_MIB BENCH_CTR_TIMEOUT=$CTR_TIMEOUT
             CONTAINERD_DISABLED_PLUGINS="$CONTAINERD_DISABLED_PLUGINS"
scenarios (default: all, in this order):
EOF
  local s
  for s in "${SCENARIOS[@]}"; do printf '  %-14s %s\n' "$s" "${SCENARIO_DOC[$s]}"; done
}

positive() { [[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || die "$1 wants a positive integer, got '$2'"; }

SELECTED=()
while (($#)); do
  case $1 in
    --rounds) positive "$1" "${2:-}"; ROUNDS=$2; ROUNDS_SET=1; shift 2 ;;
    --count) positive "$1" "${2:-}"; RTT_COUNT=$2; shift 2 ;;
    --warmup) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--warmup wants an integer"; RTT_WARMUP=$2; shift 2 ;;
    --settle) [[ ${2:-} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--settle wants seconds"; SETTLE=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --list) for s in "${SCENARIOS[@]}"; do printf '%-14s %s\n' "$s" "${SCENARIO_DOC[$s]}"; done; exit 0 ;;
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
  log "building (make build, then bench_version_rtt and bench_cri in $BUILD_DIR)"
  if [[ -f $REPO/Makefile ]]; then
    make -C "$REPO" build PRESET=release >&2 || die "make build failed"
  fi
  if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
    (cd "$REPO" && cmake --preset release >&2) || die "cmake --preset release failed"
  fi
  cmake --build "$BUILD_DIR" --target bench_version_rtt bench_cri >&2 || die "building bench_version_rtt and bench_cri failed"
fi
for b in "$BERTHD" "$CONTAINERD" "$CTR" "$TOOL"; do
  [[ -x $b ]] || die "$b is missing (build it, or point BERTHD/CONTAINERD/CTR/BENCH_TOOL at it)"
done
if [[ " ${RUN[*]}" == *" cri_"* ]]; then
  [[ -x $CRI_TOOL ]] || die "$CRI_TOOL is missing (build bench_cri, or point BENCH_CRI_TOOL at it)"
  for b in "$CNI_BIN/bridge" "$CNI_BIN/host-local" "$CNI_BIN/loopback"; do
    [[ -x $b ]] || die "$b is missing (the CRI scenarios need containernetworking-plugins)"
  done
  for b in nsenter ip runc; do command -v "$b" >/dev/null || die "$b is missing (the CRI scenarios need it)"; done
fi
if [[ " ${RUN[*]} " == *" cri_exec "* || " ${RUN[*]} " == *" cri_portforward "* ]]; then
  [[ -x $CRICTL ]] || die "$CRICTL is missing (cri_exec and cri_portforward need crictl; point CRICTL at it)"
  command -v curl >/dev/null || die "curl is missing (cri_portforward needs it)"
fi

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
# containerd decompresses layers with unpigz when it is on PATH (CONTAINERD_DISABLE_PIGZ unset).
if [[ -z ${CONTAINERD_DISABLE_PIGZ:-} ]] && command -v unpigz >/dev/null; then gz=unpigz; else gz=go; fi
mem_gib=$(awk '$1 == "MemTotal:" {printf "%.1f", $2 / 1048576}' /proc/meminfo)
cpu=$(awk -F': ' '$1 ~ /^model name/ {print $2; exit}' /proc/cpuinfo)
rounds_doc="$ROUNDS rounds"
for s in "${RUN[@]}"; do
  [[ $(rounds_of "$s") == "$ROUNDS" ]] || rounds_doc+=", $s $(rounds_of "$s")"
done
echo "# berth bench: berthd ${VERSION[berth]} vs containerd ${VERSION[containerd]}; scenarios: ${RUN[*]}; median of $rounds_doc, each berth then containerd, fresh temp roots; ratio = berth/containerd"
echo "# machine: $(hostname) nproc=$(nproc) kernel=$(uname -r) cpu=\"$cpu\" mem=${mem_gib}GiB load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" other_daemons=$others; containerd disabled_plugins: $CONTAINERD_DISABLED_PLUGINS (the cri_* scenarios enable io.containerd.grpc.v1.cri in both); containerd_gzip=$gz; state_tmpfs=$STATE_TMPFS; $(date -u +%Y-%m-%dT%H:%M:%SZ)"

for s in "${RUN[@]}"; do
  n=$(rounds_of "$s")
  log "scenario $s ($n rounds): ${SCENARIO_DOC[$s]}"
  for ((round = 1; round <= n; round++)); do
    for impl in "${IMPLS[@]}"; do
      "scenario_$s" "$impl" "$round"
    done
  done
  report
done
stop_shared_daemons
