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

#endif
