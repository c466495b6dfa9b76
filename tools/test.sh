#!/usr/bin/env bash
# Runs every test layer of DESIGN §7 and ends with a summary line and, last, the
# same counts in ctest's form:
#   "summary: N passed, N failed"
#   "P% tests passed, N tests failed out of T"
# Layers: format check; normal build (unit, integration, e2e); ASan+UBSan build
# (unit, integration); ThreadSanitizer build (the tests that run media workers
# and the node's threads); libFuzzer targets, each briefly on its seed corpus.
# FUZZ_SECONDS (default 20) sets the time per fuzz target.
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
passed=0
failed=0
failures=()

count_ctest() { # $1 = log file, $2 = phase name
  local line
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -1)
  if [ -z "$line" ]; then
    failed=$((failed + 1)); failures+=("$2: ctest did not run"); return
  fi
  local f t
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
  t=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/')
  passed=$((passed + t - f)); failed=$((failed + f))
  if [ "$f" != 0 ]; then failures+=("$2: $f failed"); fi
}

step() { echo; echo "=== $* ==="; }

step "format check"
if bash tools/format-check.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("format-check"); fi

step "build (RelWithDebInfo)"
if cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build -j"$JOBS"; then
  step "unit + integration + e2e (normal build)"
  (cd build && ctest --output-on-failure --timeout 600) 2>&1 | tee build/ctest.log
  count_ctest build/ctest.log "normal build"
else
  failed=$((failed + 1)); failures+=("build")
fi

step "build (ASan+UBSan)"
if cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHD_SANITIZE=ON >/dev/null && cmake --build build-asan -j"$JOBS"; then
  step "unit + integration under ASan+UBSan"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure --timeout 600 -LE e2e) 2>&1 | tee build-asan/ctest.log
  count_ctest build-asan/ctest.log "asan build"
else
  failed=$((failed + 1)); failures+=("asan build")
fi

step "build (ThreadSanitizer: hudong + the threaded tests)"
# media workers (src/io/media_workers.c) are the node's threads: a data race
# there aborts the server (halt_on_error) and fails the test; bench_threads runs
# the load generator's own threads (bench load --threads 2) under TSan too
TSAN_TESTS='integration/(workers|itest_media|itest_media_shards|rooms|api|ice_tcp|cluster|bench_threads)$|unit/test_(spsc|worker_shards)$'
if cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="-fsanitize=thread -g" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null &&
  cmake --build build-tsan -j"$JOBS" --target hudong workers_itest itest_media test_spsc test_worker_shards; then
  (cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --output-on-failure --timeout 600 -R "$TSAN_TESTS") 2>&1 | tee build-tsan/ctest.log
  count_ctest build-tsan/ctest.log "tsan build"
else
  failed=$((failed + 1)); failures+=("tsan build")
fi

step "fuzz targets (libFuzzer, ${FUZZ_SECONDS}s each)"
if CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DHD_FUZZ=ON >/dev/null && cmake --build build-fuzz -j"$JOBS"; then
  # one target per core at a time (each is single-threaded and CPU-bound)
  run_fuzz() { # $1 = target binary; writes build-fuzz/<name>.log and .rc
    local name corpus work
    name=$(basename "$1")
    corpus=tests/fuzz/corpus/$name
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
    "$1" -max_total_time="$FUZZ_SECONDS" -print_final_stats=0 "$work" >"build-fuzz/$name.log" 2>&1
    echo $? >"build-fuzz/$name.rc"
    rm -rf "$work"
  }
  rm -f build-fuzz/*.rc
  targets=()
  for fz in build-fuzz/fuzz_*; do
    [ -x "$fz" ] && [ -f "$fz" ] && targets+=("$fz")
  done
  for fz in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    run_fuzz "$fz" &
  done
  wait
  for fz in "${targets[@]}"; do
    name=$(basename "$fz")
    if [ "$(cat "build-fuzz/$name.rc" 2>/dev/null)" = 0 ]; then
      echo "fuzz $name: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "build-fuzz/$name.log" || tail -1 "build-fuzz/$name.log"))"
      passed=$((passed + 1))
    else
      echo "fuzz $name: FAILED"; tail -40 "build-fuzz/$name.log"
      failed=$((failed + 1)); failures+=("fuzz $name")
    fi
  done
else
  failed=$((failed + 1)); failures+=("fuzz build")
fi

echo
if [ "${#failures[@]}" -gt 0 ]; then
  # the failing checks themselves, so that the tail of the log says what broke
  for log in build/ctest.log build-asan/ctest.log build-tsan/ctest.log; do
    [ -f "$log" ] && grep -E '^([0-9]+: )?(FAIL - |not ok |\[  FAILED  \]|.*\*\*\*Failed|.*Sanitizer)' "$log" | head -40 |
      sed "s|^|$log: |"
  done
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "summary: $passed passed, $failed failed"
# the closing line in ctest's own form, for tools that read ctest output
total=$((passed + failed))
echo "$(( total ? passed * 100 / total : 0 ))% tests passed, $failed tests failed out of $total"
[ "$failed" = 0 ]
