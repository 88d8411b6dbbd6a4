#!/usr/bin/env bash
# fuzz/run.sh SECONDS [TARGET...]: runs each libFuzzer target of build/fuzz (default: all of
# them) for SECONDS, two at a time (the machine's two cores), each from a working copy of its
# corpus (fuzz/corpus/<target>: seeds and past crashes; the copy grows, the repository's does
# not). Prints each target's runs and coverage; exits 1 if any target crashed, leaked, timed
# out or ran out of memory, naming the input it saved under build/fuzz/artifacts/<target>/.
#
# tar_apply writes what layers hold (device nodes too) and content_write a content store under
# TMPDIR: they run in a private mount namespace with TMPDIR on a tmpfs mounted nodev,nosuid
# (device nodes stay inert, fsyncs cost nothing), gone when they exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${FUZZ_BUILD_DIR:-build/fuzz}
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in fuzz/corpus/*/; do targets+=("$(basename "$f")"); done
fi
work=$BUILD/fuzz-work
rm -rf "$work"
mkdir -p "$work" "$BUILD/artifacts"

run_one() {  # run_one TARGET: its log is $work/TARGET.log, its status $work/TARGET.rc
  local t=$1 bin=$BUILD/bin/fuzz_$1 rc=0
  local corpus=$work/$t-corpus art=$BUILD/artifacts/$t/
  mkdir -p "$corpus" "$art"
  cp fuzz/corpus/"$t"/* "$corpus"/
  local args=("$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=65536
              -print_final_stats=1 -artifact_prefix="$art" "$corpus")
  if [[ ! -x $bin ]]; then
    echo "fuzz: $bin is missing (cmake --preset fuzz && cmake --build --preset fuzz)" >"$work/$t.log"
    rc=2
  elif [[ $t == tar_apply || $t == content_write ]]; then
    unshare --mount --propagation private bash -c \
      'mkdir -p "$1" && mount -t tmpfs -o nodev,nosuid,size=1g tmpfs "$1" && shift && TMPDIR=$0 exec "$@"' \
      "$work/tmp" "$work/tmp" "${args[@]}" >"$work/$t.log" 2>&1 || rc=$?
  else
    "${args[@]}" >"$work/$t.log" 2>&1 || rc=$?
  fi
  echo "$rc" >"$work/$t.rc"
}

pids=()
for t in "${targets[@]}"; do
  if ((${#pids[@]} >= 2)); then wait "${pids[0]}" || true; pids=("${pids[@]:1}"); fi
  run_one "$t" &
  pids+=($!)
done
wait || true

failed=0
for t in "${targets[@]}"; do
  rc=$(cat "$work/$t.rc" 2>/dev/null || echo 2)
  stats=$(grep -aE '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$t.log" |
          sed 's/stat:://' | tr '\n' ' ')
  cov=$(grep -aoE 'cov: [0-9]+ ft: [0-9]+' "$work/$t.log" | tail -1)
  if [[ $rc == 0 ]]; then
    echo "fuzz: $t: ok, ${seconds} s: $stats$cov"
  else
    failed=1
    echo "fuzz: $t: FAILED (exit $rc): $stats$cov"
    grep -aE 'ERROR: |SUMMARY: |Test unit written to|==[0-9]+==' "$work/$t.log" | head -20 | sed 's/^/  /'
    echo "  log: $work/$t.log; once fixed, keep the input as fuzz/corpus/$t/crash-<what>"
  fi
done
exit "$failed"
