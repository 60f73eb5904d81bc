#!/usr/bin/env bash
# Runs every Cellar fuzz target for N seconds (default 15) on a temporary copy of its committed
# seed corpus (fuzz/corpus/<target>), so the tree stays clean. Builds once first. Fails if any
# target crashes, panics or times out; prints one line per target with its execution count.
#
#   scripts/fuzz.sh [seconds] [target...]
#
# Stable Rust only: cargo-fuzz needs RUSTC_BOOTSTRAP=1 for its -Z flags, and runs with `-s none`
# (no sanitizer): AWS-LC's FIPS module does not build under ASan instrumentation. The C side is
# covered by ASan/UBSan in ffi-tests. Debug assertions (-a) are on, so overflow checks fire.
# Crash inputs land in fuzz/artifacts/<target>/ (ignored by git).
set -euo pipefail

secs="${1:-15}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz missing: installing (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets"
cargo fuzz build -s none -a >/dev/null

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    if [ -d "corpus/$t" ]; then cp -r "corpus/$t/." "$work/$t/"; fi
    log="$work/$t.log"
    start=$(date +%s)
    # -rss_limit_mb: the targets allocate at most a few pages; -timeout: a hang is a bug.
    if cargo fuzz run -s none -a "$t" "$work/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        fail=1
    fi
    end=$(date +%s)
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
    line=$(printf '%-18s %-6s execs=%-10s exec/s=%-8s cov=%-6s %ss' "$t" "$status" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$((end - start))")
    echo "$line"
    summary+=("$line")
    if [ "$status" != ok ]; then
        echo "---- $t log (tail) ----"
        tail -n 60 "$log"
        echo "----"
    fi
done

echo "== fuzz summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
if [ "$fail" != 0 ]; then
    echo "fuzz: FAILED (crash inputs in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ok"
