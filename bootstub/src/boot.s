// bootstub/src/boot.s: the first instructions at EL2, before any Rust runs.
//
// The arm64 Image header (Documentation/arch/arm64/booting.rst in Linux)
// makes QEMU's `-kernel` loader (and a Raspberry Pi's firmware) treat us as a
// kernel: it loads us at RAM base + 2 MiB and passes the DTB in x0.

.section .text.head, "ax"
.global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0                       // text_offset: 2 MiB-aligned base + 0
    .quad   __image_size            // image_size, BSS included
    .quad   0xa                     // flags: little-endian, 4 KiB pages, placed anywhere
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5 (PE/COFF offset: none)

primary_entry:
    mov     x19, x0                 // keep the DTB pointer

    // Only EL2 is ours: anything else parks (no console is set up yet).
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.ne    park

    // Only core 0 (MPIDR_EL1.Aff0 == 0) runs the hypervisor.
    mrs     x1, MPIDR_EL1
    and     x1, x1, #0xff
    cbnz    x1, park

    // Mask every exception until the hypervisor has its vectors.
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

2:  mov     x0, x19
    bl      bootstub_rust_entry     // never returns

park:
    wfi
    b       park

// A secondary core's entry from the spin table (the hypervisor writes this
// address to the core's cpu-release-addr: el2-hypervisor's
// arch/aarch64/secondaries.rs). It never runs guest code and never leaves:
// exceptions masked, it marks itself parked in `SECONDARY_PARKED[Aff0]`
// (hypervisor memory, which stage 2 never maps for the guest) and waits in
// WFI. WFI, not WFE: under QEMU icount a WFE loop keeps executing (and
// counting) instructions, which would move the boot core's epoch counter;
// a core in WFI executes nothing until an interrupt is pending for it,
// and its GIC CPU interface stays disabled, so none is.
.global secondary_park
secondary_park:
    msr     DAIFSet, #0xf
    mrs     x1, MPIDR_EL1
    and     x1, x1, #0xff
    cmp     x1, #{SECONDARY_SLOTS}
    b.hs    3f
    adrp    x2, SECONDARY_PARKED
    add     x2, x2, :lo12:SECONDARY_PARKED
    mov     w3, #1
    strb    w3, [x2, x1]
    dsb     sy
3:  wfi
    b       3b
