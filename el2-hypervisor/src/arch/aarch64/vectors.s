// el2-hypervisor/src/arch/aarch64/vectors.s: the EL2 exception vector table.
//
// Every vector saves the interrupted context as a `TrapFrame` (x0-x30,
// ELR_EL2, SPSR_EL2: 272 bytes, see exceptions.rs) on SP_EL2, calls
// `el2_trap(frame, kind)` in Rust, restores the (possibly edited) frame and
// returns with ERET. `kind` is the vector's index (0-15) in the table
// (Arm ARM D1.3.1, "Exception vectors": current EL with SP0, current EL
// with SPx, lower EL AArch64, lower EL AArch32; each sync, IRQ, FIQ, SError).

.equ FRAME_SIZE, 272

.macro VENTRY kind
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       trap_common
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el2_vectors
el2_vectors:
    VENTRY 0
    VENTRY 1
    VENTRY 2
    VENTRY 3
    VENTRY 4
    VENTRY 5
    VENTRY 6
    VENTRY 7
    VENTRY 8
    VENTRY 9
    VENTRY 10
    VENTRY 11
    VENTRY 12
    VENTRY 13
    VENTRY 14
    VENTRY 15

trap_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    mrs     x1, ELR_EL2
    mrs     x2, SPSR_EL2
    stp     x1, x2, [sp, #248]
    mov     x1, x0
    mov     x0, sp
    bl      el2_trap
    // fall through

.global trap_restore
trap_restore:
    ldp     x1, x2, [sp, #248]
    msr     ELR_EL2, x1
    msr     SPSR_EL2, x2
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    add     sp, sp, #FRAME_SIZE
    eret

// enter_guest(frame: *const TrapFrame, stack_top: usize) -> !
// Starts a context for the first time: the frame is copied to the top of
// the EL2 stack, where every later trap of that context will save it, and
// restored from there.
.global enter_context
enter_context:
    sub     x1, x1, #FRAME_SIZE
    mov     sp, x1
    mov     x2, #0
1:  ldr     x3, [x0, x2]
    str     x3, [x1, x2]
    add     x2, x2, #8
    cmp     x2, #FRAME_SIZE
    b.lo    1b
    b       trap_restore
