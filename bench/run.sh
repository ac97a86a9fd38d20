#!/usr/bin/env bash
# curtain's benchmark, from a clone, as root:
#   bench/run.sh                 full run (about 105 s here), table + JSON
#   bench/run.sh --quick         smoke run (about 15 s), judges nothing
#   bench/run.sh --render bench/results/<stamp>/results.json
# Installs Debian's tini, dumb-init, catatonit, strace and gcc when one is
# missing, builds curtain's static binary and the probe (bench/probe.c), then
# runs bench/bench.py. bench/README.md says what is measured and how.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --render ]; then
    exec python3 bench/bench.py "$@"
fi
[ "$(id -u)" = 0 ] || { echo "bench: run as root (pid namespaces, strace)" >&2; exit 2; }
need=
for tool in tini tini-static dumb-init catatonit strace gcc python3; do
    command -v "$tool" >/dev/null || need=yes
done
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need=yes  # gcc -static needs libc6-dev
if [ -n "$need" ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
        tini dumb-init catatonit strace gcc libc6-dev python3
fi
scripts/build-static.sh --quiet
mkdir -p target/bench
gcc -O2 -static -Wall -Wextra -Werror -o target/bench/probe bench/probe.c
exec python3 bench/bench.py --probe target/bench/probe \
    --curtain target/x86_64-unknown-linux-gnu/release/curtain "$@"
