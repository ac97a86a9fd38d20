#!/bin/sh
# Build the static release binary that goes into images:
#   target/x86_64-unknown-linux-gnu/release/curtain  (or under $CARGO_TARGET_DIR)
# crt-static: runs in a FROM-scratch image (no libc there).
# relocation-model=static: a plain static executable instead of static-pie;
#   the pie's self-relocation cost 100-140 us of start-up here.
set -eu
cd "$(dirname "$0")/.."
RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
    exec cargo build --release --locked --target x86_64-unknown-linux-gnu "$@"
