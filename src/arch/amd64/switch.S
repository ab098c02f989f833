/* switch.S (x86-64) - the goroutine context switch.
 *
 * void ctx_switch(void **save_sp, void *new_sp)
 *
 * Pushes the callee-saved registers (rbp, rbx, r12-r15) and the FP control
 * words (MXCSR, x87 control word) on the current stack, stores the stack
 * pointer in *save_sp, loads new_sp and pops the same frame from there,
 * then jumps to the return address it finds: the other context resumes
 * where it last called ctx_switch. The
 * caller-saved registers are dead across a call by the ABI, so nothing
 * else needs saving: this is the whole cost of a switch, no system call
 * (ucontext's swapcontext makes a sigprocmask call each time).
 *
 * A new context is a frame built by ctx_init (ctx.c) whose return address
 * is ctx_start below, with the entry function in r12 and its argument in
 * r13. The saved registers lie on the goroutine's stack below its saved SP,
 * which is where the collector's conservative stack scan will find them.
 */
    .text
    .globl ctx_switch
    .hidden ctx_switch
    .type ctx_switch, @function
    .p2align 4
ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    /* not `ret`: the return-stack predictor holds this context's return
     * address, not the other one's, so ret would mispredict every time */
    popq %rcx
    jmpq *%rcx
    .cfi_endproc
    .size ctx_switch, .-ctx_switch

/* First code of every new context: call fn(arg); fn never returns. The
 * undefined return address (0) ends debugger and unwinder backtraces. */
    .globl ctx_start
    .hidden ctx_start
    .type ctx_start, @function
    .p2align 4
ctx_start:
    .cfi_startproc
    .cfi_undefined rip
    movq %r13, %rdi
    callq *%r12
    ud2
    .cfi_endproc
    .size ctx_start, .-ctx_start

    .section .note.GNU-stack,"",@progbits
