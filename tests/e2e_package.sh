#!/usr/bin/env bash
# The release artifacts as a user gets them: scripts/dist.sh, then the Debian
# package installed with dpkg -i: curtain --version, an app supervised by the
# installed binary, `man curtain`, the bash completion, and SHA256SUMS.
#
#   tests/e2e_package.sh      (as root; removes the package and its files at the end)
set -uo pipefail
cd "$(dirname "$0")/.."

if dpkg -s curtain >/dev/null 2>&1; then
    echo "skipped: a curtain package is already installed here, and this suite would replace it"
    exit 0
fi
work=$(mktemp -d /tmp/curtain-package.XXXXXX)
cleanup() { dpkg -r curtain >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT

passed=0
failed=0
ok() { echo "ok   - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; shift; for line in "$@"; do echo "       $line"; done; failed=$((failed + 1)); }

scripts/dist.sh "$work/dist" >/dev/null || { echo "scripts/dist.sh failed"; exit 1; }
if (cd "$work/dist" && sha256sum --quiet -c SHA256SUMS); then ok "SHA256SUMS matches every artifact"
else fail "SHA256SUMS"; fi

deb=$(ls "$work"/dist/curtain_*_amd64.deb)
if dpkg -i "$deb" >/dev/null 2>&1; then ok "dpkg -i $(basename "$deb")"
else fail "dpkg -i" "$(dpkg -i "$deb" 2>&1 | tail -3)"; fi

line=$(/usr/bin/curtain --version 2>&1)
if [[ "$line" == "curtain version "*" (static) - git."* ]]; then ok "installed: $line"
else fail "curtain --version" "$line"; fi

out=$(/usr/bin/curtain --log-format json -- /bin/sh -c 'exit 3' 2>&1); code=$?
if [ "$code" = 3 ] && grep -q '"event":"exit".*"reason":"exited"' <<<"$out"; then
    ok "the installed binary supervises an app: exit 3, reason exited"
else fail "supervise an app" "exit=$code" "$out"; fi

if man -w curtain >/dev/null 2>&1 && man curtain 2>/dev/null | grep -q "tiny PID 1 for containers"; then
    ok "man curtain opens the page ($(man -w curtain))"
else fail "man curtain" "$(man -w curtain 2>&1)"; fi

if bash -c 'source /usr/share/bash-completion/completions/curtain && complete -p curtain' >/dev/null 2>&1; then
    ok "the bash completion loads (complete -p curtain)"
else fail "bash completion" "$(bash -c 'source /usr/share/bash-completion/completions/curtain' 2>&1)"; fi

if [ -s /usr/share/zsh/vendor-completions/_curtain ] && [ -s /usr/share/fish/vendor_completions.d/curtain.fish ]; then
    ok "zsh and fish completions installed"
else fail "zsh and fish completions"; fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
