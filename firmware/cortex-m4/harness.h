/* The bare-metal harness's services (startup.c), for main.c. */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdint.h>

/* Writes a NUL-terminated string through semihosting (SYS_WRITE0). */
void semihost_write(const char *text);

/* Ends the program: QEMU exits with `status` (SYS_EXIT_EXTENDED). */
void semihost_exit(int status) __attribute__((noreturn));

/* Fills the stack below the caller's SP with STACK_PAINT. */
void stack_paint(void);

/* The stack's lowest address (the linker script's STACK_SIZE below its top). */
extern uint32_t __stack_bottom[];

/* The lowest stack address written since the last stack_paint(); __stack_bottom when the
 * whole stack was used (it may have overflowed). */
uintptr_t stack_lowest_used(void);

/* The current stack pointer. */
static inline uintptr_t stack_pointer(void) {
    uintptr_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

#define STACK_PAINT 0xC5C5C5C5u

/* Instruction counting. SysTick counts down on the core clock (25 MHz on mps2-an386); under
 * `qemu-system-arm -icount shift=0` the virtual clock advances 1 ns per instruction, so one
 * tick is 40 instructions (tests/firmware.rs measures this with calibrate.c rather than
 * assuming it). QEMU does not emulate the DWT cycle counter (CYCCNT reads 0). The counter
 * is 24 bits: SysTick_Handler counts its wraps, so a count may span any number of them. */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

/* Starts SysTick from `reload` (at most 0xFFFFFF) on the core clock, its interrupt on. */
void icount_start(uint32_t reload);

/* Wraps of SysTick since icount_start, and its reload value. */
extern volatile uint32_t icount_wraps;
extern uint32_t icount_reload;

/* Ticks since icount_start. Inline, so that reading it adds no call (nor stack) around
 * what it measures. SysTick counts reload, ..., 1, 0, reload, ...; its interrupt (a wrap)
 * comes as it reaches 0, so a read of 0 is retried (for at most one tick): any other value
 * v read with the same wraps w before and after it is w * (reload + 1) + reload - v ticks
 * after the first reload. */
static inline uint64_t icount_ticks(void) {
    uint32_t wraps, value;
    do {
        wraps = icount_wraps;
        value = SYST_CVR;
    } while (value == 0 || wraps != icount_wraps);
    return (uint64_t)wraps * (icount_reload + 1u) + (icount_reload - value);
}

#endif
