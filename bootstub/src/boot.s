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
