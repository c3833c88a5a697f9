#!/usr/bin/env python3
"""Section sizes of the bare-metal embedding example, against its budget.

usage: size_budget.py ELF [TEXT_BUDGET_BYTES]

Prints .text, .rodata and .data+.bss (sums of the sections whose names
start so) and exits 1 if .text is over budget (default 32 KiB). The budget
is on the whole image's .text: vmdma-core's IDE controller, PCI function
and DMA layer, the compiler's built-in routines they call (memcpy, ...),
and the example's own functions. The split by symbol is printed too; code
the optimiser inlined into the example's functions counts as the example's.
.bss holds the example's guest RAM and disk too; the RAM budget of one
channel's state is checked by `cargo test -p vmdma-embed`
(state_fits_the_budget) and, for every target, by a compile-time
assertion in the example; the image exports the sizes
(VMDMA_EMBED_STATE_SIZES), which this script prints.
"""
import struct
import sys

SHT_SYMTAB = 2
STT_FUNC = 2


class Elf:
    def __init__(self, path):
        self.data = open(path, "rb").read()
        if self.data[:4] != b"\x7fELF":
            raise SystemExit(f"{path}: not an ELF file")
        self.is64 = self.data[4] == 2
        self.end = "<" if self.data[5] == 1 else ">"
        if self.is64:
            (self.shoff,) = self.unpack("Q", 0x28)
            self.shentsize, self.shnum, self.shstrndx = self.unpack("HHH", 0x3A)
        else:
            (self.shoff,) = self.unpack("I", 0x20)
            self.shentsize, self.shnum, self.shstrndx = self.unpack("HHH", 0x2E)
        self.headers = [self.header(i) for i in range(self.shnum)]
        names = self.headers[self.shstrndx]
        self.sections = [(self.string(names["offset"], h["name"]), h) for h in self.headers]

    def unpack(self, fmt, off):
        return struct.unpack_from(self.end + fmt, self.data, off)

    def header(self, i):
        off = self.shoff + i * self.shentsize
        if self.is64:
            name, typ, _flags, addr, offset, size, link = self.unpack("IIQQQQI", off)
        else:
            name, typ, _flags, addr, offset, size, link = self.unpack("IIIIIII", off)
        return {"name": name, "type": typ, "addr": addr, "offset": offset, "size": size, "link": link}

    def string(self, table_off, off):
        raw = self.data[table_off + off:]
        return raw[: raw.index(b"\0")].decode(errors="replace")

    def symbols(self):
        """(name, info, section index, value, size) of every symbol."""
        out = []
        for _, h in self.sections:
            if h["type"] != SHT_SYMTAB:
                continue
            strtab = self.headers[h["link"]]["offset"]
            entsize = 24 if self.is64 else 16
            for i in range(h["size"] // entsize):
                off = h["offset"] + i * entsize
                if self.is64:
                    name, info, _other, shndx, value, size = self.unpack("IBBHQQ", off)
                else:
                    name, value, size, info, _other, shndx = self.unpack("IIIBBH", off)
                out.append((self.string(strtab, name), info, shndx, value, size))
        return out

    def functions(self):
        """(name, size) of every function symbol."""
        return [(n, size) for n, info, _, _, size in self.symbols() if info & 0xF == STT_FUNC]

    def read_symbol(self, wanted):
        """The bytes of data symbol `wanted`, or None."""
        for name, _info, shndx, value, size in self.symbols():
            if name == wanted and 0 < shndx < len(self.headers):
                h = self.headers[shndx]
                start = h["offset"] + value - h["addr"]
                return self.data[start : start + size]
        return None


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    path = sys.argv[1]
    budget = int(sys.argv[2]) if len(sys.argv) > 2 else 32 * 1024
    elf = Elf(path)
    total = lambda prefix: sum(
        h["size"] for n, h in elf.sections if n == prefix or n.startswith(prefix + ".")
    )
    text, rodata = total(".text"), total(".rodata")
    data_bss = total(".data") + total(".bss")
    example = builtins = 0
    for name, size in elf.functions():
        if name == "_start" or "vmdma_embed" in name:
            example += size
        elif "compiler_builtins" in name or name.startswith("__aeabi") or name.startswith("mem"):
            builtins += size
    print(f"{path}: .text {text} B, .rodata {rodata} B, .data+.bss {data_bss} B; .text budget {budget} B")
    print(
        f"  .text by symbol: vmdma-core and its dependencies {text - example - builtins} B, "
        f"compiler built-ins {builtins} B, the example's own functions {example} B"
    )
    sizes = elf.read_symbol("VMDMA_EMBED_STATE_SIZES")
    if sizes is not None and len(sizes) == 16:
        c, a, b, p = struct.unpack(elf.end + "4I", sizes)
        print(
            f"  state of one channel: controller {c} B, address space {a} B, "
            f"bounce arena with retry queue {b} B, PIO buffer {p} B: {c + a + b + p} B"
        )
    if text > budget:
        print(f"error: .text is {text - budget} B over its budget", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
