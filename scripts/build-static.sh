#!/bin/sh
# Build the static release binary that goes into images:
#   target/x86_64-unknown-linux-gnu/release/curtain  (or under $CARGO_TARGET_DIR)
# crt-static: runs in a FROM-scratch image (no libc there).
# relocation-model=static: a plain static executable instead of static-pie;
#   the pie's self-relocation cost 100-140 us of start-up here.
# Hot functions first: the functions curtain runs (start-up, signals,
#   shutdown; listed in scripts/hot-symbols.txt) are linked next to each
#   other, so the kernel maps a few pages of text instead of most of the
#   binary (idle RSS and start-up, see README "Performance"). The list has
#   no hashes; the first link writes a map, from which the exact names are
#   taken, and the binary is linked again only when they changed. Needs
#   rust-lld, rustc's default linker from 1.90 on; older rustc: one plain link.
set -eu
cd "$(dirname "$0")/.."
out=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release
case $out in /*) ;; *) out=$PWD/$out ;; esac

build() {
    RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
        cargo build --release --locked --target x86_64-unknown-linux-gnu "$@"
}

minor=$(rustc -V | sed -n 's/^rustc 1\.\([0-9][0-9]*\)\..*/\1/p')
if [ "${minor:-0}" -lt 90 ]; then
    echo "build-static: rustc 1.${minor:-?} does not link with rust-lld: functions stay in link order" >&2
    build "$@"
    exit 0
fi

order=$out/curtain.order
mkdir -p "$out"
[ -f "$order" ] || : >"$order"
export CURTAIN_SYMBOL_ORDER="$order"
build "$@"
# Map lines "VMA LMA Size Align NAME" name symbols. The list leaves out what
# changes between builds and toolchains: a legacy-mangled Rust name's hash
# (17h<16 hex digits>E at the end), a v0 name's crate disambiguators
# (Cs<base 62>_). Also first: every IFUNC resolver, which a static binary
# runs at start-up (the IRELATIVE relocations' addends are their addresses).
readelf -rW "$out/curtain" >"$order.irel"
awk 'FILENAME == ARGV[1] { if ($3 == "R_X86_64_IRELATIVE") irel[$4] = 1; next }
     FILENAME == ARGV[2] {
         if ($1 ~ /^#/ || !NF) next
         if ($1 ~ /\*$/) prefix[++np] = substr($1, 1, length($1) - 1)
         want[$1] = ++n; next
     }
     NF == 5 && $5 !~ /:\(/ && $5 !~ /^\./ && !($5 in seen) {
         key = $5; sub(/17h[0-9a-f]+E$/, "E", key); gsub(/Cs[0-9A-Za-z]+_/, "C", key)
         rank = (key in want) ? want[key] : 0
         for (i = 1; !rank && i <= np; i++)
             if (substr(key, 1, length(prefix[i])) == prefix[i]) rank = want[prefix[i] "*"]
         if (!rank && ($1 in irel)) rank = n + 1
         if (rank) { seen[$5] = 1; names[rank] = names[rank] $5 "\n" }
     }
     END { for (i = 1; i <= n + 1; i++) printf "%s", names[i] }' \
    "$order.irel" scripts/hot-symbols.txt "$order.map" >"$order.new"
rm -f "$order.irel"
if cmp -s "$order.new" "$order"; then
    rm -f "$order.new"
else
    mv "$order.new" "$order"
    build "$@"
fi
