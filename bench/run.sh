#!/usr/bin/env bash
# curtain's benchmark: build the static release binary, run it side by side
# with tini, tini-static, dumb-init and catatonit in the shared harness
# (interleaved, one run), then print curtain's figures against the targets.
#   bench/run.sh            # full run, about 2 minutes
#   bench/run.sh --quick    # smoke run (any harness option passes through)
# Needs root. The harness is ../shared/bench (or $CURTAIN_BENCH_HARNESS).
set -euo pipefail
cd "$(dirname "$0")/.."
harness=${CURTAIN_BENCH_HARNESS:-../shared/bench}
[ -f "$harness/run.py" ] || { echo "bench: no harness at $harness (set CURTAIN_BENCH_HARNESS)" >&2; exit 2; }
need=()
for tool in tini tini-static dumb-init catatonit strace gcc; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
        tini dumb-init catatonit strace gcc libc6-dev
fi
scripts/build-static.sh --quiet
bin=$PWD/target/x86_64-unknown-linux-gnu/release/curtain
out=$PWD/bench/results
python3 "$harness/run.py" --anchors --out "$out" "$@" "$bin --"
latest=$(ls -td "$out"/*/ | head -1)
python3 bench/ratios.py "$latest/results.json" "$bin --"
