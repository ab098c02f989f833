/* switch.S (arm64) - the goroutine context switch.
 *
 * void ctx_switch(void **save_sp, void *new_sp)
 *
 * Stores the callee-saved registers (x19-x29, the link register x30, the
 * low halves d8-d15 of v8-v15 as AAPCS64 requires) and FPCR in a 176-byte
 * frame on the current stack, saves SP in *save_sp, switches to new_sp and
 * restores the same frame from there; `ret` through x30 resumes the other
 * context. See the x86-64 version for the rest.
 */
    .text
    .globl ctx_switch
    .hidden ctx_switch
    .type ctx_switch, %function
    .p2align 4
ctx_switch:
    .cfi_startproc
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x9, fpcr
    str x9, [sp, #160]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldr x9, [sp, #160]
    msr fpcr, x9
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    br x30      /* not ret: the return predictor expects our caller */
    .cfi_endproc
    .size ctx_switch, .-ctx_switch

/* First code of every new context: fn (x19) called with arg (x20). */
    .globl ctx_start
    .hidden ctx_start
    .type ctx_start, %function
    .p2align 4
ctx_start:
    .cfi_startproc
    .cfi_undefined x30
    mov x29, #0
    mov x0, x20
    blr x19
    brk #0
    .cfi_endproc
    .size ctx_start, .-ctx_start

    .section .note.GNU-stack,"",@progbits
