#!/bin/sh
# Rebuilds one model of the firmware harness from a directory the firmware test kept
# (KERAS2SRC_KEEP=1 cargo test --release --test firmware prints where; each model's
# subdirectory holds model.hpp, model.cpp and samples.h) and runs it under QEMU with
# instruction counting, as tests/firmware.rs does: for experiments on a hand-edited
# model.hpp. Prints, per sample, whether every output is within the tests' tolerance of
# Keras's (tests/fixtures/models/NAME.io.json) and the instructions of the predict call
# (SysTick ticks times the instructions per tick that firmware/cortex-m4/calibrate.c
# measures first), then the model's .text that the link kept.
#
#   scripts/firmware-icount.sh DIR [-O2|-Os] [extra compiler flags...]
set -eu
dir=$(cd "$1" && pwd)
shift
opt=${1:--O2}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")/.." && pwd)
harness=$here/firmware/cortex-m4
arch="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
common="-ffunction-sections -fdata-sections -Wall -Wextra -Werror"
link="--specs=nano.specs --specs=nosys.specs -nostartfiles -Wl,--gc-sections -T $harness/mps2-an386.ld"
qemu() {
    qemu-system-arm -M mps2-an386 -display none -monitor none -icount shift=0 \
        -serial none -chardev stdio,id=semihost \
        -semihosting-config enable=on,target=native,chardev=semihost -kernel "$1"
}
cd "$dir"
arm-none-eabi-gcc $arch -Os -std=c11 $common -c "$harness/startup.c" -o startup.o
arm-none-eabi-gcc $arch -Os -std=c11 $common $link "$harness/calibrate.c" startup.o \
    -o calibrate.elf
qemu calibrate.elf >calibrate.out
arm-none-eabi-g++ $arch $opt "$@" -std=c++17 -fno-exceptions -fno-rtti $common -I. \
    -c model.cpp -o model.o
arm-none-eabi-gcc $arch $opt -std=c11 $common -I. -I"$harness" -c "$harness/main.c" -o main.o
arm-none-eabi-gcc $arch $opt $link -Wl,-Map=fw.map startup.o main.o model.o -lm -o fw.elf
qemu fw.elf >fw.out
name=$(sed -n 's/^#define KERAS2SRC_\(.*\)_IMPLEMENTATION$/\1/p' model.cpp | tr A-Z a-z)
python3 - "$here/tests/fixtures/models/$name.io.json" <<'PY'
import json, re, struct, sys

# calibrate.c: loops of 2N instructions; two of them give the instructions per tick.
loops = [(2 * int(n, 16), int(t, 16)) for n, t in
         re.findall(r"^loop ([0-9a-f]+): ([0-9a-f]+)$", open("calibrate.out").read(), re.M)]
per_tick = round((loops[1][0] - loops[0][0]) / (loops[1][1] - loops[0][1]))
out = open("fw.out").read()
got = [[struct.unpack("<f", struct.pack("<I", int(w, 16)))[0] for w in rest.split()]
       for rest in re.findall(r"^sample [0-9a-f]+:(.*)$", out, re.M)]
ticks = [int(t, 16) for t in re.findall(r"^ticks [0-9a-f]+: ([0-9a-f]+)$", out, re.M)]
io = json.load(open(sys.argv[1]))
for s, (values, t) in enumerate(zip(got, ticks)):
    want = [v for o in io["outputs"] for v in o["data"][s]]
    bad = [i for i, (g, w) in enumerate(zip(values, want))
           if not abs(g - w) <= 1e-5 + 1e-4 * abs(w)]
    ok = "matches Keras" if len(values) == len(want) and not bad else f"DIFFERS at {bad}"
    print(f"sample {s}: {ok}; {per_tick * t} instructions ({t} ticks x {per_tick})")
# model.o's .text sections that the link kept (a long name sits alone on its line).
text = open("fw.map").read().split("Linker script and memory map", 1)[1]
sizes = re.findall(r"^ (\.text\S*)\s+0x[0-9a-f]+\s+0x([0-9a-f]+) model\.o$", text, re.M)
print("model .text:", sum(int(size, 16) for _, size in sizes), "bytes")
PY
