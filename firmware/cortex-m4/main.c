/* Runs the model on every sample of samples.h and prints, per sample, each output float
 * as its 32-bit pattern in hex, then the predict call's peak stack use in bytes and the
 * SysTick ticks it took (harness.h: 40 instructions a tick under `-icount shift=0`), in hex:
 *
 *   sample 0: 3f800000 bf000000 ...
 *   stack 0: 00000a40
 *   ticks 0: 00001388
 *
 * samples.h (generated per model) defines SAMPLE_COUNT, OUTPUT_COUNT, outputs[],
 * output_lens[] and PREDICT(s), which calls the model's extern "C" entry. */

#include <stdint.h>

#include "harness.h"
#include "samples.h"

static char *put_text(char *at, const char *text) {
    while (*text) {
        *at++ = *text++;
    }
    return at;
}

static char *put_hex(char *at, uint32_t value) {
    for (int shift = 28; shift >= 0; shift -= 4) {
        *at++ = "0123456789abcdef"[(value >> shift) & 0xFu];
    }
    return at;
}

static void print_label(const char *label, uint32_t index) {
    char line[24];
    char *at = put_text(line, label);
    at = put_hex(at, index);
    *put_text(at, ":") = '\0';
    semihost_write(line);
}

static void print_word(uint32_t value, int last) {
    char word[12] = " ";
    char *at = put_hex(word + 1, value);
    *put_text(at, last ? "\n" : "") = '\0';
    semihost_write(word);
}

static uint32_t float_bits(float value) {
    union {
        float f;
        uint32_t u;
    } pun = {value};
    return pun.u;
}

int main(void) {
    icount_start(0xFFFFFFu);
    for (uint32_t s = 0; s < SAMPLE_COUNT; ++s) {
        stack_paint();
        const uintptr_t sp = stack_pointer();
        const uint64_t before = icount_ticks();
        PREDICT(s);
        const uint64_t after = icount_ticks();
        const uintptr_t lowest = stack_lowest_used();
        if (lowest == (uintptr_t)__stack_bottom) {
            semihost_write("stack overflow\n");
            return 2;
        }

        print_label("sample ", s);
        for (uint32_t k = 0; k < OUTPUT_COUNT; ++k) {
            for (uint32_t i = 0; i < output_lens[k]; ++i) {
                const int last = k + 1 == OUTPUT_COUNT && i + 1 == output_lens[k];
                print_word(float_bits(outputs[k][i]), last);
            }
        }
        print_label("stack ", s);
        print_word((uint32_t)(sp - lowest), 1);
        print_label("ticks ", s);
        print_word((uint32_t)(after - before), 1);
    }
    return 0;
}
