/*
 * stack.c: running Python on a large stack when the thread's own is small.
 *
 * Dirty schedulers have small stacks (320 KB by default), and Python code
 * that recurses through C (sorted with a key, __repr__, json.dumps) uses
 * far more before Python's recursion limit stops it: on a dirty scheduler
 * that crashes the VM. Python runs on threads whose stacks are at least
 * PYERL_STACK_SIZE, so such code ends in RecursionError instead.
 *
 * A thread whose stack is smaller gets, on its first call, a stack of that
 * size (reserved, committed by the kernel only as it is touched, with a
 * guard page below) and switches to it for each call: the same OS thread,
 * so the call still costs no hand-off. The stack is the thread's for its
 * life; dirty schedulers live as long as the VM.
 *
 * On x86-64 the switch is a plain call with the stack pointer moved
 * (call_on_stack); elsewhere it is swapcontext, which also saves and
 * restores the signal mask: two system calls per call, about 0.45 us on
 * the development machine, a third of what a short py:call costs.
 *
 * AddressSanitizer must be told about the switch, or it takes the new stack
 * for a corrupt one. So must valgrind (builds with -DPYERL_VALGRIND, see
 * make valgrind): a jump of the stack pointer to a stack it does not know
 * is, to memcheck, a huge frame, and it marks the memory in between (other
 * threads' stacks, heap blocks) as unusable.
 */
#include "stack.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define ASAN_SWITCH 1
#endif
#if defined(PYERL_VALGRIND)
#include <valgrind/valgrind.h>
#endif

#define GUARD_SIZE (64 * 1024)

#if defined(__x86_64__)
#define DIRECT_SWITCH 1
#endif

struct thread_stack {
    int checked;  /* we looked at the thread's own stack */
    int switches; /* ... and found it small */
    char *base;   /* the large stack, guard page included */
#ifndef DIRECT_SWITCH
    ucontext_t caller, callee;
#endif
    void (*fn)(void *);
    void *arg;
#ifdef ASAN_SWITCH
    const void *caller_bottom;
    size_t caller_size;
#endif
};

static _Thread_local struct thread_stack thread_stack;

static size_t
own_stack_size(void)
{
    pthread_attr_t attr;
    void *addr;
    size_t size = 0;

    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &addr, &size);
        pthread_attr_destroy(&attr);
    }
    return size;
}

/* Runs on the large stack. */
static void
trampoline(void)
{
    struct thread_stack *ts = &thread_stack;

#ifdef ASAN_SWITCH
    __sanitizer_finish_switch_fiber(NULL, &ts->caller_bottom, &ts->caller_size);
#endif
    ts->fn(ts->arg);
#ifdef ASAN_SWITCH
    __sanitizer_start_switch_fiber(NULL, ts->caller_bottom, ts->caller_size);
#endif
    /* Returning goes back to the caller's stack: through uc_link, or to
     * call_on_stack. */
}

#ifdef DIRECT_SWITCH
/* Calls fn() with the stack pointer at top (16-byte aligned), then puts
 * the stack pointer back. The old one is kept in rbx, which fn preserves;
 * everything fn may change is declared clobbered. */
static void
call_on_stack(void (*fn)(void), char *top)
{
    __asm__ volatile("mov %%rsp, %%rbx\n\t"
                     "mov %[top], %%rsp\n\t"
                     "call *%[fn]\n\t"
                     "mov %%rbx, %%rsp"
                     :
                     : [fn] "r"(fn), [top] "r"(top)
                     : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm0",
                       "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                       "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}
#endif

static int
prepare(struct thread_stack *ts)
{
    char *base;

    ts->checked = 1;
    ts->switches = own_stack_size() < PYERL_STACK_SIZE;
    if (!ts->switches) {
        return 0;
    }
    base = mmap(NULL, GUARD_SIZE + PYERL_STACK_SIZE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) {
        return -1;
    }
    if (mprotect(base, GUARD_SIZE, PROT_NONE) != 0
#ifndef DIRECT_SWITCH
        || getcontext(&ts->callee) != 0
#endif
    ) {
        munmap(base, GUARD_SIZE + PYERL_STACK_SIZE);
        return -1;
    }
    ts->base = base;
#if defined(PYERL_VALGRIND)
    /* Never deregistered: the stack is the thread's for its life. */
    VALGRIND_STACK_REGISTER(base + GUARD_SIZE, base + GUARD_SIZE + PYERL_STACK_SIZE);
#endif
    return 0;
}

int
pyerl_run_on_large_stack(void (*fn)(void *), void *arg)
{
    struct thread_stack *ts = &thread_stack;

    if (!ts->checked && prepare(ts) < 0) {
        ts->checked = 0;
        return -1;
    }
    if (!ts->switches) {
        fn(arg);
        return 0;
    }
    ts->fn = fn;
    ts->arg = arg;
#ifdef ASAN_SWITCH
    void *fake_stack = NULL;
    __sanitizer_start_switch_fiber(&fake_stack, ts->base + GUARD_SIZE, PYERL_STACK_SIZE);
#endif
#ifdef DIRECT_SWITCH
    call_on_stack(trampoline, ts->base + GUARD_SIZE + PYERL_STACK_SIZE);
#else
    ts->callee.uc_stack.ss_sp = ts->base + GUARD_SIZE;
    ts->callee.uc_stack.ss_size = PYERL_STACK_SIZE;
    ts->callee.uc_link = &ts->caller;
    makecontext(&ts->callee, trampoline, 0);
    if (swapcontext(&ts->caller, &ts->callee) != 0) {
        return -1;
    }
#endif
#ifdef ASAN_SWITCH
    __sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
#endif
    return 0;
}
