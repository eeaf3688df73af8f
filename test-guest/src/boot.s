// test-guest/src/boot.s: the test guest's first instructions at EL1, and its
// exception vectors. Everything Rust cannot do: the arm64 Image header, the
// stack, BSS, VBAR_EL1, and recording an expected synchronous exception.
//
// The hypervisor enters us as the Linux arm64 boot protocol says: EL1h,
// MMU off, DAIF masked, x0 = the guest DTB. With the MMU off every data
// access is Device-nGnRnE, so every access here is naturally aligned.

.section .text.head, "ax"
.global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0                       // text_offset
    .quad   __image_size            // image_size, BSS and stack included
    .quad   0x2                     // flags: little-endian, 4 KiB pages, near the start of RAM
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5 (no PE/COFF header)

primary_entry:
    mov     x19, x0                 // keep the DTB pointer

    // Linked at 0x42000000 and not position-independent: refuse to run
    // anywhere else (adr is PC-relative, the literal is the link address).
    adr     x1, _start
    ldr     x2, =_start
    cmp     x1, x2
    b.ne    wrong_address

    mrs     x1, CurrentEL
    cmp     x1, #(1 << 2)
    b.ne    wrong_el

    msr     DAIFSet, #0xf

    adrp    x1, __stack_top
    add     x1, x1, :lo12:__stack_top
    mov     sp, x1

    // Zero BSS (8-byte aligned by the linker script).
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    str     xzr, [x1], #8
    b       1b

2:  adrp    x1, test_guest_vectors
    add     x1, x1, :lo12:test_guest_vectors
    msr     VBAR_EL1, x1
    isb

    mov     x0, x19
    bl      test_guest_main         // never returns

wrong_address:
    adr     x1, msg_wrong_address
    b       early_fail
wrong_el:
    adr     x1, msg_wrong_el
    // fall through

// Prints the NUL-terminated string at x1 on the PL011 (no FR polling: the
// hypervisor's PL011 never fills) and asks for a reset (QEMU exit 5).
early_fail:
    mov     x2, #0x09000000
3:  ldrb    w3, [x1], #1
    cbz     w3, 4f
    str     w3, [x2]
    b       3b
4:  ldr     x0, =0x84000009         // PSCI SYSTEM_RESET
    smc     #0
5:  wfi
    b       5b

msg_wrong_address:
    .asciz  "test-guest: not loaded at its link address 0x42000000; stopping\n"
msg_wrong_el:
    .asciz  "test-guest: not entered at EL1; stopping\n"
    .balign 4
    .ltorg

// The vector table (Arm ARM D1.3: 16 entries of 0x80 bytes, 2 KiB aligned).
// Only "current EL with SP_ELx, synchronous" (0x200) is expected, and only
// while a probe has armed TEST_GUEST_FAULT; anything else is reported by
// Rust's `test_guest_unexpected_exception(vector, esr, elr, far)`.
.macro unexpected_vector idx
    .balign 0x80
    mov     x0, #\idx
    b       vector_unexpected
.endm

.section .text.vectors, "ax"
.balign 2048
.global test_guest_vectors
test_guest_vectors:
    unexpected_vector 0             // current EL, SP_EL0: sync
    unexpected_vector 1             //   IRQ
    unexpected_vector 2             //   FIQ
    unexpected_vector 3             //   SError
    .balign 0x80                    // current EL, SP_ELx: sync (0x200)
    b       sync_spx
    .balign 0x80                    //   IRQ (0x280): the SGI checks
    b       irq_spx
    unexpected_vector 6             //   FIQ
    unexpected_vector 7             //   SError
    unexpected_vector 8             // lower EL, AArch64
    unexpected_vector 9
    unexpected_vector 10
    unexpected_vector 11
    unexpected_vector 12            // lower EL, AArch32
    unexpected_vector 13
    unexpected_vector 14
    unexpected_vector 15

// An expected fault: TEST_GUEST_FAULT holds armed, esr, far, elr, and the
// PSTATE seen at this vector (DAIF and PAN; u64 each, see `FaultRecord` in
// guest.rs). Record them, disarm (a second fault is unexpected), and
// return: past the faulting instruction (every data probe is one 4-byte
// instruction), or, for an instruction abort, to x30 (an instruction probe
// branches with `blr` to the address that aborts). Only x0/x1 are used,
// saved on the stack.
sync_spx:
    stp     x0, x1, [sp, #-16]!
    adrp    x0, TEST_GUEST_FAULT
    add     x0, x0, :lo12:TEST_GUEST_FAULT
    ldr     x1, [x0]
    cbz     x1, 6f
    str     xzr, [x0]
    mrs     x1, DAIF
    str     x1, [x0, #32]
    mrs     x1, s3_0_c4_c2_3            // PAN
    str     x1, [x0, #40]
    mrs     x1, ESR_EL1
    str     x1, [x0, #8]
    mrs     x1, FAR_EL1
    str     x1, [x0, #16]
    mrs     x1, ELR_EL1
    str     x1, [x0, #24]
    add     x1, x1, #4
    msr     ELR_EL1, x1
    mrs     x1, ESR_EL1
    lsr     x1, x1, #26
    cmp     x1, #0x21                   // instruction abort, same EL
    b.ne    7f
    msr     ELR_EL1, x30
7:  ldp     x0, x1, [sp], #16
    eret
6:  ldp     x0, x1, [sp], #16
    mov     x0, #4
    // fall through

// An IRQ (only the SGI checks unmask them): acknowledge it through the
// (virtual) CPU interface, record it in TEST_GUEST_IRQ (count, intid, the
// bit of an INTID below 64; see `IrqRecord` in guest.rs), end it, return.
irq_spx:
    stp     x0, x1, [sp, #-16]!
    stp     x2, x3, [sp, #-16]!
    stp     x4, x5, [sp, #-16]!
    adrp    x4, TEST_GUEST_GICC         // GICv2: its GICC (GICV), else 0
    ldr     x4, [x4, :lo12:TEST_GUEST_GICC]
    cbz     x4, 1f
    ldr     w2, [x4, #0xc]              // GICC_IAR
    b       2f
1:  mrs     x2, ICC_IAR1_EL1
2:  adrp    x0, TEST_GUEST_IRQ
    add     x0, x0, :lo12:TEST_GUEST_IRQ
    ldr     x1, [x0]
    add     x1, x1, #1
    str     x1, [x0]
    str     x2, [x0, #8]
    ldr     x1, [x0, #16]
    mov     x3, #1
    lsl     x3, x3, x2
    cmp     x2, #64
    csel    x3, x3, xzr, lo
    orr     x1, x1, x3
    str     x1, [x0, #16]
    cbz     x4, 3f
    str     w2, [x4, #0x10]             // GICC_EOIR
    b       4f
3:  msr     ICC_EOIR1_EL1, x2
4:  isb
    ldp     x4, x5, [sp], #16
    ldp     x2, x3, [sp], #16
    ldp     x0, x1, [sp], #16
    eret

vector_unexpected:
    mrs     x1, ESR_EL1
    mrs     x2, ELR_EL1
    mrs     x3, FAR_EL1
    bl      test_guest_unexpected_exception     // never returns
