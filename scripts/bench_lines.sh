#!/usr/bin/env bash
# Side-by-side benchmark of the two module lines (docs/FIPS.md "Both lines side by side"):
# the default build (AWS-LC FIPS 3.1.0, ../Cargo.toml) and the opt-in 4.x build (AWS-LC FIPS
# 4.2.0, fips4/Cargo.toml) run the same criterion benches from benches/ on the same machine, in
# alternating rounds (round 1: FIPS 3 then FIPS 4 for each case; round 2: FIPS 4 first; ...), so
# a change in machine load hits both lines alike. Prints a Markdown table of the median over the
# rounds of each run's criterion median, and the 4.x / 3 ratio.
#
#   bash scripts/bench_lines.sh [ROUNDS]        (make bench-lines ROUNDS=n; default 3)
#   BENCH_WARMUP=s BENCH_MEASURE=s              criterion warm-up / measurement seconds (1 / 2)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
WARM=${BENCH_WARMUP:-1}
MEAS=${BENCH_MEASURE:-2}
OUT=target/bench-lines
rm -rf "$OUT"
mkdir -p "$OUT"
export CELLAR_BENCH_NO_ROUNDS=1 # skip page.rs's own alternating-rounds preamble

line_args() {
  case "$1" in
    fips3) echo "" ;;
    fips4) echo "--manifest-path fips4/Cargo.toml --target-dir target/fips4" ;;
  esac
}

# bench | criterion filter | result directory under criterion/ | label
CASES=(
  "page|^xts_encrypt/cellar/8192\$|xts_encrypt/cellar/8192|XTS page encrypt, 8 KiB"
  "page|^gcm_encrypt_8k/cellar\$|gcm_encrypt_8k/cellar|GCM page encrypt, 8 KiB"
  "cell|^cell_randomized_encrypt/cellar/64\$|cell_randomized_encrypt/cellar/64|RANDOMIZED cell encrypt, 64 B"
  "cell|^cell_Deterministic_encrypt/cellar/64\$|cell_Deterministic_encrypt/cellar/64|DETERMINISTIC cell encrypt, 64 B"
  "keys|^key_wrap_aes256/cellar\$|key_wrap_aes256/cellar|wrap an AES-256 key (KWP)"
  "keys|^key_derive_aes256/cellar\$|key_derive_aes256/cellar|derive an AES-256 key (SP 800-108)"
)

echo "== building the benches of both lines"
# The bench executables are run directly afterwards (no cargo in the timed loop: nothing is
# rebuilt between rounds, and each line's binary runs exactly as built).
declare -A EXE
for line in fips3 fips4; do
  # shellcheck disable=SC2046
  while IFS='|' read -r name exe; do
    EXE[$line:$name]=$exe
  done < <(cargo bench --locked $(line_args $line) --bench page --bench cell --bench keys --no-run \
             --message-format=json 2>/dev/null | python3 -c '
import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in m["target"]["kind"]:
        print(m["target"]["name"] + "|" + m["executable"])')
  for b in page cell keys; do [ -n "${EXE[$line:$b]:-}" ] || { echo "no $b bench executable for $line"; exit 1; }; done
done

echo "machine: $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/load.txt"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="fips3 fips4"; else order="fips4 fips3"; fi
  for case in "${CASES[@]}"; do
    IFS='|' read -r bench filter dir label <<<"$case"
    for line in $order; do
      home="$PWD/$OUT/$line/round$round"
      CRITERION_HOME="$home" "${EXE[$line:$bench]}" --bench \
        --warm-up-time "$WARM" --measurement-time "$MEAS" --noplot "$filter" >"$OUT/last.log" 2>&1 ||
        { cat "$OUT/last.log"; exit 1; }
      est="$home/$dir/new/estimates.json"
      [ -f "$est" ] || { echo "no result at $est"; cat "$OUT/last.log"; exit 1; }
      printf '%s|%s|%s|%s\n' "$round" "$line" "$label" "$est" >>"$OUT/results.txt"
      echo "round $round $line: $label"
    done
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt"

python3 - "$OUT/results.txt" "$ROUNDS" <<'EOF'
import json, statistics, sys
rows, rounds = sys.argv[1], int(sys.argv[2])
data, labels = {}, []
for line in open(rows):
    rnd, ln, label, est = line.rstrip("\n").split("|")
    med = json.load(open(est))["median"]["point_estimate"]  # ns per iteration
    data.setdefault((label, ln), []).append(med)
    if label not in labels:
        labels.append(label)
def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"
print()
print(f"| Operation (median of {rounds} alternating rounds) | FIPS 3 line (AWS-LC FIPS 3.1.0) | FIPS 4 line (AWS-LC FIPS 4.2.0) | 4.x / 3 |")
print("|---|---|---|---|")
for label in labels:
    a, b = statistics.median(data[(label, "fips3")]), statistics.median(data[(label, "fips4")])
    print(f"| {label} | {fmt(a)} | {fmt(b)} | {b / a:.2f} |")
print()
print("per-round medians (ns), FIPS 3 / FIPS 4:")
for label in labels:
    a = " ".join(f"{v:.0f}" for v in data[(label, "fips3")])
    b = " ".join(f"{v:.0f}" for v in data[(label, "fips4")])
    print(f"  {label}: {a} / {b}")
EOF
cat "$OUT/load.txt"
