#!/bin/sh
# The yardstick for flightrec's forwarder: rsyslog's own omrelp / omfwd (plain TCP and TLS with
# the gtls driver, a CA and certificate made here with openssl) sending N lines of a
# local file (imfile) to a second rsyslogd, as a user without flightrec's forwarder would.
# Prints the sender's CPU per event (utime + stime of the sending rsyslogd, /proc/PID/stat).
# Usage: [RELP_WINDOW=W] benches/forward/rsyslog-yardstick.sh [N] (default 1200000). W is
# omrelp's windowSize (default 0: librelp's own, under which omrelp forwards only about a
# thousand lines a second here, so give 1024 as our forwarder uses). MODES picks the senders
# (default "omrelp omfwd omfwd-tls"). Needs rsyslog, rsyslog-relp, rsyslog-gnutls, openssl.
# Everything runs under a temporary directory on 127.0.0.1.
set -eu
N=${1:-1200000}
tmp=$(mktemp -d)
trap 'kill $(cat "$tmp"/*.pid 2>/dev/null) 2>/dev/null; rm -rf "$tmp"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Lines shaped like the forwarder's messages (about the same length).
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "<84>1 2026-12-07T05:34:26.763428Z gw1 flightrec 7442 auth-failure [flightrec@32473 host=\"gw1\" boot=\"3aa390a5-2e8f-45be-b545-1d479f3eb930\" seq=\"%d\" session=\"%d\" user=\"load%d\" vhost=\"example.org\" peer=\"192.0.2.7\" port=\"40000\" mechanism=\"PLAIN\" reason=\"bad password\"] 2026-12-07 05:34:26 Failed PLAIN authentication for load%d@example.org from 192.0.2.7 port 40000: bad\\x20password\n", i, i, i, i }' > "$tmp/in.log"
# TLS: a CA and a server certificate for localhost, as the load test makes with rcgen.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=yardstick-CA \
    -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$tmp/key.pem" -out "$tmp/req.pem" 2>/dev/null
openssl x509 -req -in "$tmp/req.pem" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial -days 2 \
    -copy_extensions copy -out "$tmp/cert.pem" 2>/dev/null
tls="defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"$tmp/ca.pem\" defaultNetstreamDriverCertFile=\"$tmp/cert.pem\" defaultNetstreamDriverKeyFile=\"$tmp/key.pem\""
for mode in ${MODES:-omrelp omfwd omfwd-tls}; do
    gtls=""
    rm -f "$tmp/out.log"
    mkdir -p "$tmp/wb-$mode" "$tmp/wa-$mode"
    p=$(port)
    if [ $mode = omrelp ]; then
        input="module(load=\"imrelp\") input(type=\"imrelp\" address=\"127.0.0.1\" port=\"$p\")"
        action="module(load=\"omrelp\") action(type=\"omrelp\" target=\"127.0.0.1\" port=\"$p\" windowSize=\"${RELP_WINDOW:-0}\")"
    elif [ $mode = omfwd ]; then
        input="module(load=\"imtcp\") input(type=\"imtcp\" address=\"127.0.0.1\" port=\"$p\")"
        action="action(type=\"omfwd\" target=\"127.0.0.1\" port=\"$p\" protocol=\"tcp\" tcp_framing=\"octet-counted\")"
    else
        gtls=" $tls"
        input="module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\") input(type=\"imtcp\" address=\"127.0.0.1\" port=\"$p\")"
        action="action(type=\"omfwd\" target=\"localhost\" port=\"$p\" protocol=\"tcp\" tcp_framing=\"octet-counted\" streamDriver=\"gtls\" streamDriverMode=\"1\" streamDriverAuthMode=\"x509/name\" streamDriverPermittedPeers=\"localhost\")"
    fi
    cat > "$tmp/b.conf" <<CONF
global(workDirectory="$tmp/wb-$mode" maxMessageSize="64k"$gtls)
$input
action(type="omfile" file="$tmp/out.log" template="RSYSLOG_FileFormat")
CONF
    cat > "$tmp/a.conf" <<CONF
global(workDirectory="$tmp/wa-$mode" maxMessageSize="64k"$gtls)
module(load="imfile")
input(type="imfile" file="$tmp/in.log" tag="gw" readMode="0")
$action
CONF
    rsyslogd -n -f "$tmp/b.conf" -i "$tmp/b.pid" &
    sleep 1
    start=$(date +%s.%N)
    rsyslogd -n -f "$tmp/a.conf" -i "$tmp/a.pid" &
    apid=$!
    while [ "$(wc -l 2>/dev/null < "$tmp/out.log" || echo 0)" -lt "$N" ]; do sleep 0.2; done
    end=$(date +%s.%N)
    ticks=$(awk '{ print $14 + $15 }' "/proc/$apid/stat")
    hz=$(getconf CLK_TCK)
    echo "$mode: $N lines from a local file in $(echo "$end - $start" | bc) s; sender CPU $(echo "$ticks * 1000000000 / $hz / $N" | bc) ns/event"
    kill "$apid" "$(cat "$tmp/b.pid")"; wait 2>/dev/null || true
    rm -f "$tmp"/*.pid
done
