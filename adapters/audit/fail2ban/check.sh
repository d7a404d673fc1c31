#!/bin/sh
# Checks flightrec-ejabberd.conf with the real fail2ban-regex against a rendered corpus
# (hostile user names included): exactly the 12 real failures match, and only the real
# peers' addresses come out (192.0.2.0/24, 2001:db8::7), never one planted in a field
# (203.0.113.0/24). Needs `apt-get install fail2ban`. Run from the workspace root.
set -eu
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo run -q -p flightrec-audit --example fail2ban_corpus > "$tmp/audit.log"
fail2ban-regex "$tmp/audit.log" "$here/flightrec-ejabberd.conf" > "$tmp/result.txt"
grep -q "^Lines: 53 lines, 0 ignored, 12 matched, 41 missed" "$tmp/result.txt" || {
    cat "$tmp/result.txt"; echo "fail2ban filter: unexpected match count" >&2; exit 1; }
fail2ban-regex -o "<ip>" "$tmp/audit.log" "$here/flightrec-ejabberd.conf" | sort -u > "$tmp/ips.txt"
if grep -v -E '^(192\.0\.2\.[0-9]+|2001:db8::7)$' "$tmp/ips.txt"; then
    echo "fail2ban filter: extracted an address planted by a peer" >&2; exit 1
fi
test "$(wc -l < "$tmp/ips.txt")" -eq 12
echo "fail2ban filter OK: 12 of 53 lines matched, only real peer addresses"
