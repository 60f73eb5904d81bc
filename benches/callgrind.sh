#!/usr/bin/env bash
# Instruction-count ratios (valgrind callgrind: repeatable on a noisy machine, SPEC 7).
# Each variant of examples/instr.rs runs N and 2N operations; the difference divided by N is the
# per-operation cost without set-up. Prints Cellar (Rust and extern "C") against AWS-LC directly.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
cargo build --release --example instr -q
bin=target/release/examples/instr
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
          sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
per_op() { local a b; a=$(count "$1" "$N"); b=$(count "$1" $((2 * N))); echo $(( (b - a) / N )); }
report() {  # name base rust c
    local base rust c
    base=$(per_op "$2"); rust=$(per_op "$3"); c=$(per_op "$4")
    python3 -c "import sys; b,r,c=map(int,sys.argv[2:]); print(f'{sys.argv[1]:<28} base {b:>8} instr/op  rust {r:>8} ({r/b:.3f}x)  C {c:>8} ({c/b:.3f}x, C/rust {c/r:.3f})')" "$1" "$base" "$rust" "$c"
}
report "XTS encrypt 8 KiB" xts-base xts-rust xts-c
report "GCM page encrypt 8 KiB" gcm-base gcm-rust gcm-c
report "RANDOMIZED cell 64 B" cell-base cell-rust cell-c
