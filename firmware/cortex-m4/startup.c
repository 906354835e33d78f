/* Startup for a Cortex-M4F under QEMU (mps2-an386): vector table, Reset_Handler,
 * semihosting and stack painting. Nothing here uses floating point. */

#include <stdint.h>
#include <string.h>

#include "harness.h"

extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_bottom[], __stack_top[];
extern void (*__init_array_start[])(void), (*__init_array_end[])(void);

int main(void);
void Reset_Handler(void);
void Fault_Handler(void);
void SysTick_Handler(void);

/* Initial SP, then the handlers of the 15 system exceptions (no other interrupt is used). */
__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)__stack_top,
    (uintptr_t)Reset_Handler,
    (uintptr_t)Fault_Handler, /* NMI */
    (uintptr_t)Fault_Handler, /* HardFault */
    (uintptr_t)Fault_Handler, /* MemManage */
    (uintptr_t)Fault_Handler, /* BusFault */
    (uintptr_t)Fault_Handler, /* UsageFault */
    0, 0, 0, 0,               /* reserved */
    0, 0, 0, 0,               /* SVCall, DebugMonitor, reserved, PendSV */
    (uintptr_t)SysTick_Handler,
};

void Reset_Handler(void) {
    /* Full access to the FPU (CP10, CP11) before any floating-point instruction. */
    volatile uint32_t *const cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");

    memcpy(__data_start, __data_load, (size_t)((char *)__data_end - (char *)__data_start));
    memset(__bss_start, 0, (size_t)((char *)__bss_end - (char *)__bss_start));
    stack_paint();
    for (void (**init)(void) = __init_array_start; init < __init_array_end; ++init) {
        (*init)();
    }
    semihost_exit(main());
}

void Fault_Handler(void) {
    semihost_write("fault\n");
    semihost_exit(3);
}

/* ARM semihosting: operation in r0, argument in r1, `bkpt 0xAB` traps to the host. */
static void semihost(uint32_t op, const void *arg) {
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}

void semihost_write(const char *text) {
    semihost(0x04 /* SYS_WRITE0 */, text);
}

void semihost_exit(int status) {
    /* ADP_Stopped_ApplicationExit with a status: QEMU's own exit code. */
    const uint32_t block[2] = {0x20026u, (uint32_t)status};
    semihost(0x20 /* SYS_EXIT_EXTENDED */, block);
    for (;;) {
    }
}

/* Naked: no frame of its own, so it paints everything below its caller's SP. */
__attribute__((naked)) void stack_paint(void) {
    __asm volatile(
        "    ldr  r0, =__stack_bottom\n"
        "    ldr  r1, =0xC5C5C5C5\n" /* STACK_PAINT */
        "    mov  r2, sp\n"
        "1:  cmp  r0, r2\n"
        "    bhs  2f\n"
        "    str  r1, [r0], #4\n"
        "    b    1b\n"
        "2:  bx   lr\n"
        "    .ltorg\n");
}

uintptr_t stack_lowest_used(void) {
    const uint32_t *p = __stack_bottom;
    while (p < __stack_top && *p == STACK_PAINT) {
        ++p;
    }
    return (uintptr_t)p;
}

volatile uint32_t icount_wraps;
uint32_t icount_reload;

void SysTick_Handler(void) {
    icount_wraps = icount_wraps + 1u;
}

void icount_start(uint32_t reload) {
    SYST_CSR = 0;
    icount_reload = reload;
    icount_wraps = 0;
    SYST_RVR = reload;
    SYST_CVR = 0; /* any write clears it: the first tick loads the reload value */
    SYST_CSR = 7; /* ENABLE | TICKINT | CLKSOURCE (core clock) */
    while (SYST_CVR == 0) {
        /* until the first tick has loaded the reload value */
    }
}
