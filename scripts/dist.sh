#!/usr/bin/env bash
# Release artifacts, in one command: the static binary (stripped), its man
# page and bash/zsh/fish completions (made from curtain's option table
# by tools/dist, a build tool that is not linked into curtain), a Debian
# package holding all three, and SHA256SUMS.
#
#   scripts/dist.sh [OUTDIR]      (default: dist/)
#
# Needs the Rust toolchain, and dpkg-deb (Debian's dpkg) for the package.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
target=${CARGO_TARGET_DIR:-target}

scripts/build-static.sh --quiet
bin=$target/x86_64-unknown-linux-gnu/release/curtain
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
line=$("$bin" --version)

rm -rf "$out"
mkdir -p "$out/share"
install -m 755 "$bin" "$out/curtain"
strip "$out/curtain" 2>/dev/null || true   # the release profile strips already
cargo run --release --quiet --locked --manifest-path tools/dist/Cargo.toml -- "$out/share" "$line"

pkg=$(mktemp -d)
trap 'rm -rf "$pkg"' EXIT
chmod 755 "$pkg"
install -D -m 755 "$out/curtain" "$pkg/usr/bin/curtain"
mkdir -p "$pkg/usr/share/man/man1"
gzip -9n -c "$out/share/curtain.1" > "$pkg/usr/share/man/man1/curtain.1.gz"
install -D -m 644 "$out/share/curtain.bash" "$pkg/usr/share/bash-completion/completions/curtain"
install -D -m 644 "$out/share/_curtain" "$pkg/usr/share/zsh/vendor-completions/_curtain"
install -D -m 644 "$out/share/curtain.fish" "$pkg/usr/share/fish/vendor_completions.d/curtain.fish"
mkdir -p "$pkg/DEBIAN"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: curtain
Version: $version
Architecture: amd64
Maintainer: curtain developers <curtain@localhost>
Section: admin
Priority: optional
Installed-Size: $(du -sk "$pkg/usr" | cut -f1)
Homepage: https://localhost/curtain
Description: tiny PID 1 for containers that explains every stop
 curtain starts the app as its child, forwards signals, reaps zombies, runs
 pre-stop drain steps without a shell, enforces its own grace period and ends
 with one structured exit event and a Kubernetes termination message that
 explain the stop. A static binary: it needs no libc in the image.
CONTROL
dpkg-deb --root-owner-group --build "$pkg" "$out/curtain_${version}_amd64.deb" >/dev/null
(cd "$out" && sha256sum curtain "curtain_${version}_amd64.deb" share/* > SHA256SUMS)
echo "$out: $(cd "$out" && ls | tr '\n' ' ')"
