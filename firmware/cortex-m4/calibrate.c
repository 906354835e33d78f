/* Calibrates the instruction counter of harness.h: prints, in hex, the ticks of
 *
 *   empty: two reads of the counter with nothing between them (the overhead);
 *   loop N: a loop of exactly 2N instructions (`subs`, `bne`), for two N, whose
 *           difference gives the instructions per tick;
 *   wrap N: the longer loop again with SysTick reloading every 4096 ticks, so the count
 *           spans dozens of wraps of the counter;
 *
 * each line as `label: ticks`, ticks as the difference of icount_ticks() around it. */

#include <stdint.h>

#include "harness.h"

#define SHORT_LOOP 10000u
#define LONG_LOOP 400000u
#define FULL_RELOAD 0xFFFFFFu
#define SMALL_RELOAD 0xFFFu

/* 2n instructions, and the one that loads n (a literal or an immediate) before it. */
static inline __attribute__((always_inline)) void loop(uint32_t n) {
    __asm volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}

static void print(const char *label, uint32_t n, uint64_t ticks) {
    static const char digits[] = "0123456789abcdef";
    char line[48];
    char *at = line;
    while (*label) {
        *at++ = *label++;
    }
    for (int shift = 28; shift >= 0; shift -= 4) {
        *at++ = digits[(n >> shift) & 0xFu];
    }
    *at++ = ':';
    *at++ = ' ';
    for (int shift = 60; shift >= 0; shift -= 4) {
        *at++ = digits[(ticks >> shift) & 0xFu];
    }
    *at++ = '\n';
    *at = '\0';
    semihost_write(line);
}

int main(void) {
    icount_start(FULL_RELOAD);
    uint64_t before = icount_ticks();
    uint64_t after = icount_ticks();
    print("empty ", 0, after - before);

    before = icount_ticks();
    loop(SHORT_LOOP);
    after = icount_ticks();
    print("loop ", SHORT_LOOP, after - before);

    before = icount_ticks();
    loop(LONG_LOOP);
    after = icount_ticks();
    print("loop ", LONG_LOOP, after - before);

    icount_start(SMALL_RELOAD);
    before = icount_ticks();
    loop(LONG_LOOP);
    after = icount_ticks();
    print("wrap ", LONG_LOOP, after - before);
    print("wraps ", 0, icount_wraps);
    return 0;
}
