#!/usr/bin/env bash
# The embedded demo: builds the firmware, runs it in QEMU (boot 1: login console, brute
# force, dump to NOR flash, panic, SYSRESETREQ; boot 2: the ring survived in .uninit RAM
# and is dumped as an untimely death; the flash image goes to the host by semihosting),
# then checks, verifies and decodes what it wrote. Every dump is sealed: `flightrec keygen`
# makes the device's key (read by the firmware at its cold boot, installed in its key
# pages, then deleted here) and the auditor's verification key, and `flightrec verify
# --key` checks the flash image and the read-out dumps with it.
#
# Needs: qemu-system-arm (apt-get install -y qemu-system-arm), the thumbv7m-none-eabi
# target (rustup target add thumbv7m-none-eabi). Optional: defmt-print (cargo install
# defmt-print --locked) to show the defmt logs recorded in the dumps.
# Output goes to $FLIGHTREC_FW_OUT (default: firmware-example/out).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${FLIGHTREC_FW_OUT:-$here/out}"
fw_target="${FLIGHTREC_FW_TARGET_DIR:-$here/target}"

command -v qemu-system-arm >/dev/null || {
    echo "run.sh: qemu-system-arm not found: apt-get install -y qemu-system-arm" >&2
    exit 2
}
rustup target list --installed 2>/dev/null | grep -qx thumbv7m-none-eabi ||
    rustup target add thumbv7m-none-eabi

echo "== build the firmware (thumbv7m-none-eabi, opt-level z)"
(cd "$here" && CARGO_TARGET_DIR="$fw_target" cargo build --release --quiet)
elf="$fw_target/thumbv7m-none-eabi/release/flightrec-firmware-example"

cli() { (cd "$root" && cargo run --quiet -p flightrec-cli -- "$@"); }
cli decode --help >/dev/null 2>&1 || {
    echo "run.sh: flightrec-cli does not build" >&2
    exit 1
}

echo "== make the sealing keys (flightrec keygen)"
mkdir -p "$out"
rm -f "$out/flash.img" "$out/dumps.bin" "$out/device.key" "$out/verify.key"
cli keygen --device "$out/device.key" --verify "$out/verify.key"

echo "== run it in QEMU (lm3s6965evb): two boots"
status=0
(cd "$out" && timeout 60 qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -nographic \
    -semihosting-config enable=on,target=native -kernel "$elf" \
    2> >(grep -v "Timer with period zero" >&2)) || status=$?
# The device holds its key now (and evolves it): the file is not needed any more.
rm -f "$out/device.key"
if [ "$status" -ne 0 ]; then
    echo "run.sh: the firmware exited with status $status" >&2
    exit 1
fi
ls -l "$out/flash.img" "$out/dumps.bin"

echo "== check the flash image with flightrec-flash's reader"
(cd "$root" && FLIGHTREC_FLASH_IMAGE="$out/flash.img" FLIGHTREC_DUMPS="$out/dumps.bin" \
    FLIGHTREC_VERIFY_KEY="$out/verify.key" \
    cargo test --quiet -p flightrec-flash --test firmware_image -- --ignored)

echo "== verify the seals with flightrec verify --key"
for f in flash.img dumps.bin; do
    cli verify --key "$out/verify.key" --last-epoch 1 "$out/$f" || {
        echo "run.sh: flightrec verify failed on $f" >&2
        exit 1
    }
done
# One changed byte in a read-out dump must fail.
cp "$out/dumps.bin" "$out/tampered.bin"
printf 'X' | dd of="$out/tampered.bin" bs=1 seek=200 conv=notrunc status=none
if cli verify --key "$out/verify.key" "$out/tampered.bin" >/dev/null 2>&1; then
    echo "run.sh: flightrec verify accepted a changed dump" >&2
    exit 1
fi
rm -f "$out/tampered.bin"
echo "(a changed byte fails verification, as it must)"

echo "== decode with flightrec decode --elf"
decoded="$out/decoded.txt"
cli decode --elf "$elf" "$out/flash.img" >"$decoded" 2>&1 || {
    cat "$decoded" >&2
    echo "run.sh: flightrec decode failed on the flash image" >&2
    exit 1
}
cat "$decoded"
for want in "threshold of auth-failure" "untimely death" 'user="pairing"' \
    "lockout table corrupted" "login console up" "sealing key installed"; do
    grep -qF "$want" "$decoded" || {
        echo "run.sh: '$want' missing from the decoded dumps" >&2
        exit 1
    }
done

if command -v defmt-print >/dev/null; then
    echo "== the defmt logs recorded in the dumps"
    (cd "$root" && cargo run --quiet -p flightrec-flash --example frames -- "$out/dumps.bin") \
        >"$out/frames.bin"
    defmt-print -e "$elf" <"$out/frames.bin" | tee "$out/defmt.txt"
    for want in "login console up" "burst of pin attempts" "trigger fired"; do
        grep -q "$want" "$out/defmt.txt" || { echo "run.sh: defmt log '$want' missing" >&2; exit 1; }
    done
else
    echo "(defmt-print not installed: defmt frames not shown)"
fi
echo "== embedded demo OK"
