#!/bin/sh
# Checks the shipped fail2ban filters with the real fail2ban-regex against a rendered
# corpus (examples/fail2ban_corpus.rs: hostile user and host names, Unicode whitespace and
# invisible characters included), in the ejabberd layout and in Open-Xchange layouts
# (delimiters '|', ';' and tab, attribute names on and off): exactly the 36 real failures
# match, each hostile string's two failures count against its own peer, and only the real
# peers' addresses come out (192.0.2.0/24, 2001:db8::7), never one planted in a field
# (203.0.113.0/24). Needs `apt-get install fail2ban`. Run from the workspace root.
set -eu
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check NAME FILTER CORPUS-ARGS...
check() {
    name=$1 filter=$2
    shift 2
    cargo run -q -p flightrec-audit --example fail2ban_corpus -- "$@" > "$tmp/audit.log"
    fail2ban-regex "$tmp/audit.log" "$filter" > "$tmp/result.txt"
    grep -q "^Lines: 105 lines, 0 ignored, 36 matched, 69 missed" "$tmp/result.txt" || {
        cat "$tmp/result.txt"; echo "fail2ban filter ($name): unexpected match count" >&2; exit 1; }
    fail2ban-regex -o "<ip>" "$tmp/audit.log" "$filter" | sort | uniq -c > "$tmp/ips.txt"
    if grep -v -E '^ *[0-9]+ (192\.0\.2\.[0-9]+|2001:db8::7)$' "$tmp/ips.txt"; then
        echo "fail2ban filter ($name): extracted an address planted by a peer" >&2; exit 1
    fi
    # 17 hostile strings, two failures each from their own peer, and two ordinary ones.
    test "$(wc -l < "$tmp/ips.txt")" -eq 19 &&
        test "$(grep -c -E '^ *2 192\.0\.2\.([1-9]|1[0-7])$' "$tmp/ips.txt")" -eq 17 || {
        cat "$tmp/ips.txt"; echo "fail2ban filter ($name): failures not counted per peer" >&2; exit 1; }
    echo "fail2ban filter OK ($name): 36 of 105 lines matched, two per hostile peer, only real peer addresses"
}

check ejabberd "$here/flightrec-ejabberd.conf" ejabberd
check "open-xchange |" "$here/flightrec-ox.conf" ox
check "open-xchange ; without names" "$here/flightrec-ox.conf[delimiter=;]" ox ';' no-names
check "open-xchange tab" "$here/flightrec-ox.conf[delimiter=\\t]" ox "$(printf '\t')"
