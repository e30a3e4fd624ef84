#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) from a working corpus seeded with seeds/<target>.
# Fails on a crash, a panic, a timeout or an OOM; the reproducer lands in artifacts/<target>/.
# Needs no nightly toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc take the sanitizer flags.
#
#   protocol/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail

secs="${1:-60}"
shift || true
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(handshake decoder mask utf8)
fi

target_dir="${CARGO_TARGET_DIR:-$here/target}"
export RUSTC_BOOTSTRAP=1

status=0
for t in "${targets[@]}"; do
    corpus="$target_dir/fuzz-corpus/$t"
    mkdir -p "$corpus"
    for f in seeds/"$t"/*; do
        [ -e "$corpus/${f##*/}" ] || cp "$f" "$corpus/"
    done
    echo "== fuzz $t for ${secs}s (corpus $corpus)"
    if ! cargo fuzz run "$t" "$corpus" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        echo "!! fuzz target $t failed; reproducer in $here/artifacts/$t/" >&2
        status=1
    fi
done
exit "$status"
