//! PVH entry: the Xen ELF note, the 32-bit entry stub, the boot GDT, the
//! page tables (built by the assembler, so they cost no guest instructions)
//! and the boot stack.
//!
//! A PVH loader enters `pvh_start32` in 32-bit protected mode with paging
//! off, flat segments, interrupts disabled and `%ebx` = the guest-physical
//! address of `hvm_start_info`. The stub enables PAE, loads CR3 with an
//! identity map of the low 4 GiB (2 MiB pages; 3-4 GiB uncached for MMIO),
//! sets EFER.LME, enables paging, far-jumps to 64-bit code and calls
//! [`crate::guest_main`] with the start info address. SSE is never enabled
//! (the target is soft-float).

core::arch::global_asm!(
    r#"
    /* XEN_ELFNOTE_PHYS32_ENTRY (18), name "Xen". The descriptor is 8 bytes
       (like Linux); QEMU reads it as a native word. */
    .pushsection .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad pvh_start32
    .balign 4
    .popsection

    .pushsection .text.boot, "ax", @progbits
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    cld
    movl %ebx, %esi                 /* hvm_start_info, kept until main */
    lgdtl boot_gdt_ptr
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl %eax, %fs
    movl %eax, %gs
    movl $boot_stack_top, %esp
    movl %cr4, %eax
    orl $0x20, %eax                 /* CR4.PAE */
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx          /* IA32_EFER */
    rdmsr
    orl $0x100, %eax                /* LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax           /* PG | PE */
    movl %eax, %cr0
    ljmpl $0x08, $boot_start64

    .code64
boot_start64:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl %eax, %fs
    movl %eax, %gs
    movq $boot_stack_top, %rsp
    movl %esi, %edi                 /* zero-extends: argument 1 */
    call {main}
1:  cli
    hlt
    jmp 1b
    .popsection

    /* GDT: null, 64-bit code (0x08), data (0x10). Accessed bits preset. */
    .pushsection .data.boot_gdt, "aw", @progbits
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00AF9B000000FFFF
    .quad 0x00CF93000000FFFF
boot_gdt_end:
    .balign 8
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt
    .popsection

    /* Identity map of 0..4 GiB: PML4[0] -> PDPT[0..4] -> 4 PDs of 2 MiB
       pages. 0..3 GiB write-back (0xE3 = P|RW|A|D|PS); 3..4 GiB uncached
       (0xFB = P|RW|PWT|PCD|A|D|PS) for the PCI hole, the LAPIC and MMIO.
       The accessed and dirty bits are preset (0x20 on the upper levels),
       so the CPU never writes the tables: they stay byte-identical to the
       file, which the hostile suite's image check relies on. */
    .pushsection .data.page_tables, "aw", @progbits
    .balign 4096
boot_pml4:
    .quad boot_pdpt + 0x23
    .fill 511, 8, 0
boot_pdpt:
    .quad boot_pd + 0x0023
    .quad boot_pd + 0x1023
    .quad boot_pd + 0x2023
    .quad boot_pd + 0x3023
    .fill 508, 8, 0
boot_pd:
    .set boot_pde, 0
    .rept 1536
    .quad (boot_pde << 21) | 0xE3
    .set boot_pde, boot_pde + 1
    .endr
    .rept 512
    .quad (boot_pde << 21) | 0xFB
    .set boot_pde, boot_pde + 1
    .endr
    .popsection

    .pushsection .bss.boot_stack, "aw", @nobits
    .balign 16
boot_stack_bottom:
    .skip 0x10000
boot_stack_top:
    .popsection
"#,
    main = sym crate::guest_main,
    options(att_syntax)
);
