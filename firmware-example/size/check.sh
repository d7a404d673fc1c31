#!/usr/bin/env bash
# Footprint of flightrec on a Cortex-M: builds the probes (thumbv7em-none-eabihf, opt-level
# "z", LTO), prints their sections, fails if any of them links a panic path (the core's
# "no panic reachable from any input", checked by the linker) or has a `.data` section (a
# recorder `static` is all zero and belongs in `.bss`: an initial image in `.data` costs
# its size in flash too), and measures the append path's stack by painting it in QEMU
# (thumbv7m, lm3s6965evb).
#
# Needs: rustup targets thumbv7em-none-eabihf and thumbv7m-none-eabi, the llvm-tools
# component (llvm-size, llvm-nm), qemu-system-arm. The numbers are in benches/RESULTS.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
bin="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
[ -x "$bin/llvm-size" ] || rustup component add llvm-tools

cargo build --release --quiet --target thumbv7em-none-eabihf
out=target/thumbv7em-none-eabihf/release
probes="empty frames frames_dump security core flash flash_seal"
printf '%-12s %8s %8s %8s %8s\n' probe .text .rodata .data .bss
for p in $probes; do
    "$bin/llvm-size" -A "$out/$p" | awk -v p="$p" '
        $1 == ".text" { t = $2 } $1 == ".rodata" { r = $2 }
        $1 == ".data" { d = $2 } $1 == ".bss" { b = $2 }
        END { printf "%-12s %8d %8d %8d %8d\n", p, t, r, d, b }'
done

status=0
for p in $probes; do
    data="$("$bin/llvm-size" -A "$out/$p" | awk '$1 == ".data" { d = $2 } END { print d + 0 }')"
    if [ "$data" -ne 0 ]; then
        echo "check.sh: probe '$p' has $data bytes of .data (a static that is not all zero)" >&2
        status=1
    fi
    if "$bin/llvm-nm" --demangle "$out/$p" | grep -E 'core::panicking|rust_begin_unwind|unwrap_failed'; then
        echo "check.sh: probe '$p' links a panic path (above)" >&2
        status=1
    fi
done

cargo build --release --quiet --target thumbv7m-none-eabi --bin stack
timeout 30 qemu-system-arm -cpu cortex-m3 -machine lm3s6965evb -nographic \
    -semihosting-config enable=on,target=native \
    -kernel target/thumbv7m-none-eabi/release/stack 2> >(grep -v "Timer with period zero" >&2)
exit $status
