//! Builds tiny x86-64 PVH ELF kernels from bytes, for tests: the generator
//! is the fixture (no binary is checked in).
//!
//! Shared by the runner's unit tests (`#[path]` include) and the integration
//! tests in `tests/`. The machine code is hand-assembled 32-bit protected-mode
//! code, since PVH enters in 32-bit mode with flat segments.

// Each test crate uses a different subset of the helpers.
#![allow(dead_code)]

/// Guest-physical (and file-offset-aligned) load address of the code.
pub const LOAD_ADDR: u64 = 0x10_0000;
/// File offset of the code.
pub const CODE_OFFSET: u64 = 0x1000;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// A description of the ELF to build; every field can be bent to produce
/// a specific malformation.
#[derive(Clone, Debug)]
pub struct ElfBuilder {
    /// `EI_CLASS` (2 = ELF64).
    pub class: u8,
    /// `EI_DATA` (1 = little endian).
    pub data: u8,
    /// `e_type` (2 = EXEC).
    pub e_type: u16,
    /// `e_machine` (62 = x86-64).
    pub machine: u16,
    /// Machine code loaded at `load_addr`.
    pub code: Vec<u8>,
    /// `p_paddr` of the code segment.
    pub load_addr: u64,
    /// Extra `p_memsz` beyond the code (.bss).
    pub bss: u64,
    /// Override of the code segment's `p_filesz` (default: code length).
    pub filesz: Option<u64>,
    /// Override of the code segment's `p_offset`.
    pub offset: Option<u64>,
    /// Emit the code segment as PT_LOAD (otherwise as PT_NULL).
    pub with_load: bool,
    /// PVH entry in the note; `None` omits the note.
    pub pvh_entry: Option<u64>,
    /// Size of the note's descriptor (4 or 8).
    pub note_desc_size: u32,
    /// Name in the note.
    pub note_name: Vec<u8>,
    /// `e_entry` (unused by PVH, set for completeness).
    pub e_entry: u64,
    /// More `PT_LOAD` segments after the code segment, in this order.
    pub extra_loads: Vec<ExtraLoad>,
}

/// An additional `PT_LOAD` segment: its bytes follow the code in the file.
#[derive(Clone, Debug)]
pub struct ExtraLoad {
    /// `p_paddr` (and `p_vaddr`).
    pub paddr: u64,
    /// The file bytes (`p_filesz` of them).
    pub data: Vec<u8>,
    /// `p_memsz`.
    pub mem_size: u64,
}

impl ElfBuilder {
    /// A valid kernel running `code` at [`LOAD_ADDR`] with the PVH entry at
    /// its first byte.
    pub fn new(code: Vec<u8>) -> Self {
        ElfBuilder {
            class: 2,
            data: 1,
            e_type: 2,
            machine: 62,
            code,
            load_addr: LOAD_ADDR,
            bss: 0,
            filesz: None,
            offset: None,
            with_load: true,
            pvh_entry: Some(LOAD_ADDR),
            note_desc_size: 8,
            note_name: b"Xen\0".to_vec(),
            e_entry: LOAD_ADDR,
            extra_loads: Vec::new(),
        }
    }

    /// Serializes the ELF: header, program headers (code, the extra loads,
    /// note), the note, then the code at [`CODE_OFFSET`] and the extra
    /// loads' bytes after it.
    pub fn build(&self) -> Vec<u8> {
        let mut f = vec![0u8; CODE_OFFSET as usize];
        f.extend_from_slice(&self.code);
        let mut extra_offsets = Vec::new();
        for e in &self.extra_loads {
            extra_offsets.push(f.len() as u64);
            f.extend_from_slice(&e.data);
        }
        let loads = 1 + self.extra_loads.len();

        // ELF header.
        f[0..4].copy_from_slice(b"\x7fELF");
        f[4] = self.class;
        f[5] = self.data;
        f[6] = 1; // EI_VERSION
        put16(&mut f, 16, self.e_type);
        put16(&mut f, 18, self.machine);
        put32(&mut f, 20, 1);
        put64(&mut f, 24, self.e_entry);
        put64(&mut f, 32, EHDR_SIZE as u64); // e_phoff
        put64(&mut f, 40, 0); // e_shoff
        put32(&mut f, 48, 0);
        put16(&mut f, 52, EHDR_SIZE as u16);
        put16(&mut f, 54, PHDR_SIZE as u16);
        let phnum = loads + usize::from(self.pvh_entry.is_some());
        put16(&mut f, 56, phnum as u16);
        put16(&mut f, 58, 64); // e_shentsize
        put16(&mut f, 60, 0);
        put16(&mut f, 62, 0);

        // Code segment.
        let ph = EHDR_SIZE;
        put32(&mut f, ph, if self.with_load { PT_LOAD } else { 0 });
        put32(&mut f, ph + 4, 5); // R+X
        put64(&mut f, ph + 8, self.offset.unwrap_or(CODE_OFFSET));
        put64(&mut f, ph + 16, self.load_addr);
        put64(&mut f, ph + 24, self.load_addr);
        let filesz = self.filesz.unwrap_or(self.code.len() as u64);
        put64(&mut f, ph + 32, filesz);
        put64(
            &mut f,
            ph + 40,
            (self.code.len() as u64).wrapping_add(self.bss),
        );
        put64(&mut f, ph + 48, 0x1000);

        for (i, (e, off)) in self.extra_loads.iter().zip(extra_offsets).enumerate() {
            let ph = EHDR_SIZE + (1 + i) * PHDR_SIZE;
            put32(&mut f, ph, PT_LOAD);
            put32(&mut f, ph + 4, 6); // R+W
            put64(&mut f, ph + 8, off);
            put64(&mut f, ph + 16, e.paddr);
            put64(&mut f, ph + 24, e.paddr);
            put64(&mut f, ph + 32, e.data.len() as u64);
            put64(&mut f, ph + 40, e.mem_size);
            put64(&mut f, ph + 48, 0x1000);
        }

        // Note segment and the note itself.
        if let Some(entry) = self.pvh_entry {
            let note_off = EHDR_SIZE + (loads + 1) * PHDR_SIZE;
            let name_pad = self.note_name.len().div_ceil(4) * 4;
            let desc_pad = (self.note_desc_size as usize).div_ceil(4) * 4;
            let note_len = 12 + name_pad + desc_pad;
            let ph = EHDR_SIZE + loads * PHDR_SIZE;
            put32(&mut f, ph, PT_NOTE);
            put32(&mut f, ph + 4, 4);
            put64(&mut f, ph + 8, note_off as u64);
            put64(&mut f, ph + 16, 0);
            put64(&mut f, ph + 24, 0);
            put64(&mut f, ph + 32, note_len as u64);
            put64(&mut f, ph + 40, note_len as u64);
            put64(&mut f, ph + 48, 4);
            put32(&mut f, note_off, self.note_name.len() as u32);
            put32(&mut f, note_off + 4, self.note_desc_size);
            put32(&mut f, note_off + 8, XEN_ELFNOTE_PHYS32_ENTRY);
            let name_at = note_off + 12;
            f[name_at..name_at + self.note_name.len()].copy_from_slice(&self.note_name);
            let desc_at = name_at + name_pad;
            let bytes = entry.to_le_bytes();
            let n = (self.note_desc_size as usize).min(8);
            f[desc_at..desc_at + n].copy_from_slice(&bytes[..n]);
        }
        f
    }
}

fn put16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(f: &mut [u8], at: usize, v: u64) {
    f[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Hand-assembled 32-bit code snippets.
pub mod code {
    /// `mov dx, port` (operand-size prefix: 16-bit in a 32-bit segment).
    fn mov_dx(out: &mut Vec<u8>, port: u16) {
        out.extend_from_slice(&[0x66, 0xBA]);
        out.extend_from_slice(&port.to_le_bytes());
    }

    /// Writes `msg` to COM1 one byte at a time (`mov al, b; out dx, al`).
    pub fn serial_print(out: &mut Vec<u8>, msg: &[u8]) {
        mov_dx(out, 0x3F8);
        for &b in msg {
            out.extend_from_slice(&[0xB0, b, 0xEE]);
        }
    }

    /// `mov eax, value; out 0xF4 (dx), eax`: the debug-exit write.
    pub fn debug_exit(out: &mut Vec<u8>, value: u32) {
        mov_dx(out, 0xF4);
        out.push(0xB8);
        out.extend_from_slice(&value.to_le_bytes());
        out.push(0xEF);
    }

    /// `cli; hlt; jmp back to hlt`: stops the CPU for good.
    pub fn cli_hlt(out: &mut Vec<u8>) {
        out.extend_from_slice(&[0xFA, 0xF4, 0xEB, 0xFD]);
    }

    /// Prints `msg`, writes `exit` to the debug-exit port, then halts.
    pub fn hello(msg: &[u8], exit: u32) -> Vec<u8> {
        let mut c = Vec::new();
        serial_print(&mut c, msg);
        debug_exit(&mut c, exit);
        cli_hlt(&mut c);
        c
    }

    /// `mov eax, addr; jmp eax`: continues at `addr` (outside RAM, say).
    pub fn jump_to(addr: u32) -> Vec<u8> {
        let mut c = vec![0xB8];
        c.extend_from_slice(&addr.to_le_bytes());
        c.extend_from_slice(&[0xFF, 0xE0]);
        c
    }

    /// `ud2` with the empty IDT the vCPU starts with: #UD → #GP → #DF →
    /// triple fault (shutdown).
    pub fn triple_fault() -> Vec<u8> {
        vec![0x0F, 0x0B]
    }

    /// Prints `msg` and spins forever (`jmp $`).
    pub fn spin(msg: &[u8]) -> Vec<u8> {
        let mut c = Vec::new();
        serial_print(&mut c, msg);
        c.extend_from_slice(&[0xEB, 0xFE]);
        c
    }

    /// Prints `msg`, then `cli; hlt` forever.
    pub fn halt(msg: &[u8]) -> Vec<u8> {
        let mut c = Vec::new();
        serial_print(&mut c, msg);
        cli_hlt(&mut c);
        c
    }

    /// Reads a byte from `port` (`in al, dx`) and echoes it to COM1, so a
    /// test can see what the port returned.
    pub fn echo_port_byte(port: u16) -> Vec<u8> {
        let mut c = Vec::new();
        mov_dx(&mut c, port);
        c.push(0xEC); // in al, dx
        mov_dx(&mut c, 0x3F8);
        c.push(0xEE); // out dx, al
        c
    }

    /// Reads the 32-bit value at `addr` (`mov eax, [addr]`) and writes it to
    /// the debug-exit port, so the exit status shows the low bits.
    pub fn exit_with_dword_at(addr: u32) -> Vec<u8> {
        let mut c = vec![0xA1];
        c.extend_from_slice(&addr.to_le_bytes());
        mov_dx(&mut c, 0xF4);
        c.push(0xEF); // out dx, eax
        cli_hlt(&mut c);
        c
    }

    /// `mov dword [addr], value`.
    pub fn store_dword(out: &mut Vec<u8>, addr: u32, value: u32) {
        out.extend_from_slice(&[0xC7, 0x05]);
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }

    /// `mov eax, [addr]; mov dx, 0x3F8; out dx, al`: prints the low byte
    /// of the dword at `addr`.
    pub fn print_low_byte_at(out: &mut Vec<u8>, addr: u32) {
        out.push(0xA1);
        out.extend_from_slice(&addr.to_le_bytes());
        mov_dx(out, 0x3F8);
        out.push(0xEE);
    }

    /// `mov dx, port; mov al, v; out dx, al`.
    fn outb(out: &mut Vec<u8>, port: u16, v: u8) {
        mov_dx(out, port);
        out.extend_from_slice(&[0xB0, v, 0xEE]);
    }

    /// Enables COM1's THRE interrupt (IER = 0x02), sends `byte`, then reads
    /// the in-kernel PIC's IRR (OCW3; no exit to user space) and writes
    /// IRR & 0x10 (IRQ 4) to the debug-exit port: 16 if the interrupt was
    /// raised at the write, 0 if the write did not reach the UART yet.
    pub fn serial_thre_irq(byte: u8) -> Vec<u8> {
        let mut c = Vec::new();
        outb(&mut c, 0x3F9, 0x02);
        outb(&mut c, 0x3F8, byte);
        outb(&mut c, 0x20, 0x0A);
        // xor eax, eax; in al, 0x20; and eax, 0x10
        c.extend_from_slice(&[0x31, 0xC0, 0xE4, 0x20, 0x83, 0xE0, 0x10]);
        mov_dx(&mut c, 0xF4);
        c.push(0xEF); // out dx, eax
        cli_hlt(&mut c);
        c
    }

    /// With DX = the Status port: `in al, dx; test al, mask; j(n)z back`
    /// (spin while `(al & mask) == 0` if `until_set`, else while set).
    fn spin_on_status(out: &mut Vec<u8>, mask: u8, until_set: bool) {
        let jcc = if until_set { 0x74 } else { 0x75 };
        out.extend_from_slice(&[0xEC, 0xA8, mask, jcc, 0xFB]);
    }

    /// Drives the primary IDE master by PIO, as a minimal driver: if
    /// `cache_off`, SET FEATURES 0x82 (write cache off); WRITE SECTORS of
    /// one sector at LBA `lba` filled with `fill`; if `flush`, FLUSH CACHE.
    /// Then prints "done\n" (or "error\n" if Status has ERR) and spins.
    pub fn pio_write_sector(lba: u8, fill: u8, cache_off: bool, flush: bool) -> Vec<u8> {
        let mut c = Vec::new();
        outb(&mut c, 0x1F6, 0xE0);
        if cache_off {
            outb(&mut c, 0x1F1, 0x82);
            outb(&mut c, 0x1F7, 0xEF);
            spin_on_status(&mut c, 0x80, false);
        }
        outb(&mut c, 0x1F2, 1);
        outb(&mut c, 0x1F3, lba);
        outb(&mut c, 0x1F4, 0);
        outb(&mut c, 0x1F5, 0);
        outb(&mut c, 0x1F7, 0x30); // WRITE SECTORS
        spin_on_status(&mut c, 0x08, true); // until DRQ
        mov_dx(&mut c, 0x1F0);
        c.extend_from_slice(&[0x66, 0xB8, fill, fill]); // mov ax, fill:fill
        c.extend_from_slice(&[0xB9, 0x00, 0x01, 0x00, 0x00]); // mov ecx, 256
        c.extend_from_slice(&[0x66, 0xEF, 0x49, 0x75, 0xFB]); // L: out dx, ax; dec ecx; jnz L
        mov_dx(&mut c, 0x1F7);
        spin_on_status(&mut c, 0x80, false); // while BSY
        if flush {
            c.extend_from_slice(&[0xB0, 0xE7, 0xEE]); // FLUSH CACHE
            spin_on_status(&mut c, 0x80, false);
        }
        // test al, 1 (ERR); jnz error
        let mut ok = Vec::new();
        serial_print(&mut ok, b"done\n");
        ok.extend_from_slice(&[0xEB, 0xFE]);
        c.extend_from_slice(&[0xA8, 0x01, 0x75, ok.len() as u8]);
        c.extend_from_slice(&ok);
        serial_print(&mut c, b"error\n");
        c.extend_from_slice(&[0xEB, 0xFE]);
        c
    }

    /// Checks the `hvm_start_info` magic at EBX (exit 9 if wrong), then
    /// prints the command line it points to, a newline, and exits with 0.
    pub fn print_cmdline() -> Vec<u8> {
        let mut c = vec![0x81, 0x3B]; // cmp dword [ebx], imm32
        c.extend_from_slice(&0x336e_c578u32.to_le_bytes());
        let mut fail = Vec::new();
        debug_exit(&mut fail, 9);
        cli_hlt(&mut fail);
        let mut ok = vec![0x8B, 0x73, 0x18]; // mov esi, [ebx + 24]
        mov_dx(&mut ok, 0x3F8);
        ok.extend_from_slice(&[
            0x8A, 0x06, // L: mov al, [esi]
            0x84, 0xC0, // test al, al
            0x74, 0x04, // jz done
            0xEE, // out dx, al
            0x46, // inc esi
            0xEB, 0xF6, // jmp L
        ]);
        ok.extend_from_slice(&[0xB0, b'\n', 0xEE]); // done: newline
        debug_exit(&mut ok, 0);
        cli_hlt(&mut ok);
        c.extend_from_slice(&[0x74, fail.len() as u8]); // je ok
        c.extend_from_slice(&fail);
        c.extend_from_slice(&ok);
        c
    }
}
