//! ELF parsing and validation for PVH kernels.
//!
//! [`parse`] is the only entry point: it checks the whole file against the
//! guest's RAM layout and returns a [`KernelImage`] whose segments are known
//! to be inside the file and inside loadable RAM, pairwise disjoint in
//! memory, with the PVH entry point inside one of them. Nothing is written to guest memory until everything
//! has been validated. Every failure is a distinct [`ElfError`] variant.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{EI_CLASS, EI_DATA, ELFCLASS64, ELFDATA2LSB, EM_X86_64, ET_EXEC};
use goblin::elf::program_header::{PT_LOAD, PT_NOTE, ProgramHeader};
use thiserror::Error;

use crate::layout::{BOOT_AREA_END, BOOT_AREA_START, HIGH_RAM_START, LEGACY_HOLE_START};

/// `XEN_ELFNOTE_PHYS32_ENTRY`: the PVH 32-bit entry point note type.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// Most program headers accepted (a PVH kernel has a handful).
pub const MAX_PROGRAM_HEADERS: usize = 64;
const PHDR64_SIZE: u16 = 56;

/// Why an ELF file cannot be booted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ElfError {
    /// The file does not start with the ELF magic or its header is cut off.
    #[error("not an ELF file ({0})")]
    NotElf(String),
    /// `EI_CLASS` is not ELF64.
    #[error("not a 64-bit ELF file (EI_CLASS {0})")]
    NotElf64(u8),
    /// `EI_DATA` is not little endian.
    #[error("not a little-endian ELF file (EI_DATA {0})")]
    NotLittleEndian(u8),
    /// `e_machine` is not x86-64.
    #[error("not an x86-64 ELF file (e_machine {0})")]
    NotX86_64(u16),
    /// `e_type` is not `ET_EXEC`.
    #[error("not an executable ELF file (e_type {0}; PVH needs ET_EXEC)")]
    NotExecutable(u16),
    /// The program header table is malformed or lies outside the file.
    #[error("bad program header table: {0}")]
    BadProgramHeaders(String),
    /// No `PT_LOAD` segment with a non-zero size.
    #[error("no PT_LOAD segment")]
    NoLoadSegment,
    /// A segment's `p_filesz` exceeds its `p_memsz`.
    #[error("segment {index}: p_filesz {filesz:#x} exceeds p_memsz {memsz:#x}")]
    FileSizeExceedsMemSize {
        /// Program header index.
        index: usize,
        /// `p_filesz`.
        filesz: u64,
        /// `p_memsz`.
        memsz: u64,
    },
    /// A segment's file range lies (partly) outside the file.
    #[error(
        "segment {index}: file range {offset:#x}+{filesz:#x} is outside the file ({file_len} bytes)"
    )]
    SegmentOutsideFile {
        /// Program header index.
        index: usize,
        /// `p_offset`.
        offset: u64,
        /// `p_filesz`.
        filesz: u64,
        /// File length.
        file_len: usize,
    },
    /// A segment's memory range lies (partly) outside guest RAM.
    #[error(
        "segment {index}: memory {start:#x}..{end:#x} is outside guest RAM (0..{ram_size:#x}; try a larger --memory)"
    )]
    SegmentOutsideRam {
        /// Program header index.
        index: usize,
        /// First byte.
        start: u64,
        /// End (exclusive; saturated on overflow).
        end: u64,
        /// RAM size.
        ram_size: u64,
    },
    /// A segment overlaps the boot-information area.
    #[error(
        "segment {index}: memory {start:#x}..{end:#x} overlaps the boot information area {BOOT_AREA_START:#x}..{BOOT_AREA_END:#x}"
    )]
    SegmentOverlapsBootArea {
        /// Program header index.
        index: usize,
        /// First byte.
        start: u64,
        /// End (exclusive).
        end: u64,
    },
    /// A segment overlaps the legacy hole below 1 MiB.
    #[error(
        "segment {index}: memory {start:#x}..{end:#x} overlaps the legacy hole {LEGACY_HOLE_START:#x}..{HIGH_RAM_START:#x}"
    )]
    SegmentInLegacyHole {
        /// Program header index.
        index: usize,
        /// First byte.
        start: u64,
        /// End (exclusive).
        end: u64,
    },
    /// Two `PT_LOAD` segments claim the same guest memory (the later one
    /// would overwrite the earlier one's code or data while loading).
    #[error(
        "segments {first} and {second} overlap in memory ({first_start:#x}..{first_end:#x} and {second_start:#x}..{second_end:#x})"
    )]
    SegmentsOverlap {
        /// Program header index of the segment that comes first in the file.
        first: usize,
        /// Its first byte.
        first_start: u64,
        /// Its end (exclusive).
        first_end: u64,
        /// Program header index of the later segment.
        second: usize,
        /// Its first byte.
        second_start: u64,
        /// Its end (exclusive).
        second_end: u64,
    },
    /// A `PT_NOTE` segment holds a note whose sizes run past the segment.
    #[error("segment {index}: malformed ELF note")]
    MalformedNote {
        /// Program header index.
        index: usize,
    },
    /// No `XEN_ELFNOTE_PHYS32_ENTRY` note: not a PVH kernel.
    #[error("no PVH entry note (Xen note type 18, XEN_ELFNOTE_PHYS32_ENTRY); not a PVH kernel")]
    MissingPvhNote,
    /// The PVH note's descriptor is not a 32-bit address.
    #[error("PVH entry note has a bad descriptor ({0})")]
    BadPvhNote(String),
    /// The PVH entry point is not inside a loaded segment's file data.
    #[error("PVH entry point {0:#x} is not inside a loaded segment")]
    EntryOutsideSegments(u64),
}

/// One `PT_LOAD` segment, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSegment<'a> {
    /// Its index in the program header table (for error messages).
    pub index: usize,
    /// Guest-physical load address (`p_paddr`).
    pub paddr: u64,
    /// Bytes copied from the file (`p_filesz` of them).
    pub data: &'a [u8],
    /// Total size in memory (`p_memsz`); the tail past `data` is zeroed.
    pub mem_size: u64,
}

/// A validated PVH kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImage<'a> {
    /// 32-bit PVH entry point (guest-physical).
    pub entry: u32,
    /// Segments to load, in file order; their memory ranges are disjoint.
    pub segments: Vec<LoadSegment<'a>>,
}

/// Parses and validates `file` for a guest with `ram_size` bytes of RAM.
pub fn parse(file: &[u8], ram_size: u64) -> Result<KernelImage<'_>, ElfError> {
    let header =
        goblin::elf::Elf::parse_header(file).map_err(|e| ElfError::NotElf(e.to_string()))?;
    let class = header.e_ident[EI_CLASS];
    if class != ELFCLASS64 {
        return Err(ElfError::NotElf64(class));
    }
    let data = header.e_ident[EI_DATA];
    if data != ELFDATA2LSB {
        return Err(ElfError::NotLittleEndian(data));
    }
    if header.e_machine != EM_X86_64 {
        return Err(ElfError::NotX86_64(header.e_machine));
    }
    if header.e_type != ET_EXEC {
        return Err(ElfError::NotExecutable(header.e_type));
    }
    let phdrs = program_headers(file, header.e_phoff, header.e_phnum, header.e_phentsize)?;

    let mut segments = Vec::new();
    let mut entry = None;
    for (index, ph) in phdrs.iter().enumerate() {
        match ph.p_type {
            PT_LOAD => {
                if let Some(seg) = load_segment(file, index, ph, ram_size)? {
                    segments.push(seg);
                }
            }
            PT_NOTE => {
                let bytes = file_range(file, index, ph)?;
                if let Some(e) = find_pvh_entry(bytes, index, ph.p_align)? {
                    entry.get_or_insert(e);
                }
            }
            _ => {}
        }
    }
    if segments.is_empty() {
        return Err(ElfError::NoLoadSegment);
    }
    check_disjoint(&segments)?;
    let entry = entry.ok_or(ElfError::MissingPvhNote)?;
    let inside = segments
        .iter()
        .any(|s| entry >= s.paddr && entry - s.paddr < s.data.len() as u64);
    if !inside {
        return Err(ElfError::EntryOutsideSegments(entry));
    }
    let entry = u32::try_from(entry).map_err(|_| ElfError::EntryOutsideSegments(entry))?;
    Ok(KernelImage { entry, segments })
}

fn program_headers(
    file: &[u8],
    phoff: u64,
    phnum: u16,
    phentsize: u16,
) -> Result<Vec<ProgramHeader>, ElfError> {
    if phnum == 0 {
        return Err(ElfError::NoLoadSegment);
    }
    if phentsize != PHDR64_SIZE {
        return Err(ElfError::BadProgramHeaders(format!(
            "e_phentsize {phentsize}, expected {PHDR64_SIZE}"
        )));
    }
    let count = usize::from(phnum);
    if count > MAX_PROGRAM_HEADERS {
        return Err(ElfError::BadProgramHeaders(format!(
            "{count} program headers (at most {MAX_PROGRAM_HEADERS})"
        )));
    }
    let off = usize::try_from(phoff)
        .ok()
        .filter(|&off| {
            off.checked_add(count * usize::from(PHDR64_SIZE))
                .is_some_and(|end| end <= file.len())
        })
        .ok_or_else(|| {
            ElfError::BadProgramHeaders(format!(
                "table at {phoff:#x} ({count} entries) is outside the file ({} bytes)",
                file.len()
            ))
        })?;
    ProgramHeader::parse(file, off, count, Ctx::new(Container::Big, Endian::Little))
        .map_err(|e| ElfError::BadProgramHeaders(e.to_string()))
}

/// The file bytes of a segment, checked.
fn file_range<'a>(file: &'a [u8], index: usize, ph: &ProgramHeader) -> Result<&'a [u8], ElfError> {
    let err = || ElfError::SegmentOutsideFile {
        index,
        offset: ph.p_offset,
        filesz: ph.p_filesz,
        file_len: file.len(),
    };
    let start = usize::try_from(ph.p_offset).map_err(|_| err())?;
    let len = usize::try_from(ph.p_filesz).map_err(|_| err())?;
    let end = start.checked_add(len).ok_or_else(err)?;
    file.get(start..end).ok_or_else(err)
}

fn load_segment<'a>(
    file: &'a [u8],
    index: usize,
    ph: &ProgramHeader,
    ram_size: u64,
) -> Result<Option<LoadSegment<'a>>, ElfError> {
    if ph.p_filesz > ph.p_memsz {
        return Err(ElfError::FileSizeExceedsMemSize {
            index,
            filesz: ph.p_filesz,
            memsz: ph.p_memsz,
        });
    }
    let data = file_range(file, index, ph)?;
    if ph.p_memsz == 0 {
        return Ok(None);
    }
    let start = ph.p_paddr;
    let end = start.checked_add(ph.p_memsz);
    let Some(end) = end.filter(|&e| e <= ram_size) else {
        return Err(ElfError::SegmentOutsideRam {
            index,
            start,
            end: end.unwrap_or(u64::MAX),
            ram_size,
        });
    };
    if start < BOOT_AREA_END && end > BOOT_AREA_START {
        return Err(ElfError::SegmentOverlapsBootArea { index, start, end });
    }
    if start < HIGH_RAM_START && end > LEGACY_HOLE_START {
        return Err(ElfError::SegmentInLegacyHole { index, start, end });
    }
    Ok(Some(LoadSegment {
        index,
        paddr: start,
        data,
        mem_size: ph.p_memsz,
    }))
}

/// Refuses segments whose memory ranges overlap: loading them in file
/// order would let a later segment (its data or its zeroed tail) overwrite
/// an earlier one, so the kernel would not run the code its file holds.
/// At most [`MAX_PROGRAM_HEADERS`] segments, so the pairwise check is
/// bounded; `load_segment` already checked that no range overflows.
fn check_disjoint(segments: &[LoadSegment<'_>]) -> Result<(), ElfError> {
    let end = |s: &LoadSegment<'_>| s.paddr.saturating_add(s.mem_size);
    for (i, a) in segments.iter().enumerate() {
        for b in segments.iter().skip(i + 1) {
            if a.paddr < end(b) && b.paddr < end(a) {
                return Err(ElfError::SegmentsOverlap {
                    first: a.index,
                    first_start: a.paddr,
                    first_end: end(a),
                    second: b.index,
                    second_start: b.paddr,
                    second_end: end(b),
                });
            }
        }
    }
    Ok(())
}

/// Walks the notes in one `PT_NOTE` segment and returns the PVH entry if
/// present. Each step consumes at least 12 bytes, so the walk is bounded by
/// the segment size.
fn find_pvh_entry(mut notes: &[u8], index: usize, p_align: u64) -> Result<Option<u64>, ElfError> {
    let align = if p_align == 8 { 8 } else { 4 };
    let malformed = || ElfError::MalformedNote { index };
    while notes.len() >= 12 {
        let word = |at: usize| -> Result<usize, ElfError> {
            let b = notes.get(at..at + 4).ok_or_else(malformed)?;
            let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            usize::try_from(v).map_err(|_| malformed())
        };
        let (namesz, descsz, ntype) = (word(0)?, word(4)?, word(8)?);
        let name_end = 12usize.checked_add(namesz).ok_or_else(malformed)?;
        let desc_start = name_end
            .checked_next_multiple_of(align)
            .ok_or_else(malformed)?;
        let desc_end = desc_start.checked_add(descsz).ok_or_else(malformed)?;
        let name = notes.get(12..name_end).ok_or_else(malformed)?;
        let desc = notes.get(desc_start..desc_end).ok_or_else(malformed)?;
        if ntype == XEN_ELFNOTE_PHYS32_ENTRY as usize
            && name.strip_suffix(b"\0").unwrap_or(name) == b"Xen"
        {
            let value = match *desc {
                [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])),
                [a, b, c, d, e, f, g, h] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
                _ => {
                    return Err(ElfError::BadPvhNote(format!(
                        "{descsz} bytes, expected 4 or 8"
                    )));
                }
            };
            if value > u64::from(u32::MAX) {
                return Err(ElfError::BadPvhNote(format!(
                    "entry {value:#x} is above 4 GiB"
                )));
            }
            return Ok(Some(value));
        }
        let next = desc_end
            .checked_next_multiple_of(align)
            .ok_or_else(malformed)?;
        notes = notes.get(next..).unwrap_or(&[]);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_elf::{ElfBuilder, ExtraLoad, LOAD_ADDR, code};

    const RAM: u64 = 64 << 20;

    fn with_extra(paddr: u64, data: &[u8], mem_size: u64) -> ElfBuilder {
        let mut b = good();
        b.extra_loads.push(ExtraLoad {
            paddr,
            data: data.to_vec(),
            mem_size,
        });
        b
    }

    fn good() -> ElfBuilder {
        let mut b = ElfBuilder::new(code::hello(b"hi\n", 0));
        b.bss = 0x100;
        b
    }

    #[test]
    fn valid_kernel_parses() {
        let f = good().build();
        let k = parse(&f, RAM).unwrap();
        assert_eq!(k.entry, LOAD_ADDR as u32);
        assert_eq!(k.segments.len(), 1);
        assert_eq!(k.segments[0].paddr, LOAD_ADDR);
        assert_eq!(k.segments[0].data, &good().code[..]);
        assert_eq!(k.segments[0].mem_size, good().code.len() as u64 + 0x100);
    }

    #[test]
    fn four_byte_note_descriptor_parses() {
        let mut b = good();
        b.note_desc_size = 4;
        assert_eq!(parse(&b.build(), RAM).unwrap().entry, LOAD_ADDR as u32);
    }

    #[test]
    fn garbage_and_truncation() {
        assert!(matches!(parse(b"", RAM), Err(ElfError::NotElf(_))));
        assert!(matches!(
            parse(&[0xAB; 4096], RAM),
            Err(ElfError::NotElf(_))
        ));
        let f = good().build();
        assert!(matches!(parse(&f[..40], RAM), Err(ElfError::NotElf(_))));
        // Header intact, program headers cut off.
        assert!(matches!(
            parse(&f[..80], RAM),
            Err(ElfError::BadProgramHeaders(_))
        ));
        // Headers intact, segment data cut off.
        assert!(matches!(
            parse(&f[..f.len() - 1], RAM),
            Err(ElfError::SegmentOutsideFile { index: 0, .. })
        ));
    }

    #[test]
    fn wrong_class_endianness_machine_type() {
        let mut b = good();
        b.class = 1;
        // goblin reads it as ELF32; the class check names the problem.
        assert_eq!(parse(&b.build(), RAM), Err(ElfError::NotElf64(1)));
        let mut b = good();
        b.data = 2;
        assert_eq!(parse(&b.build(), RAM), Err(ElfError::NotLittleEndian(2)));
        let mut b = good();
        b.machine = 3;
        assert_eq!(parse(&b.build(), RAM), Err(ElfError::NotX86_64(3)));
        let mut b = good();
        b.e_type = 3;
        assert_eq!(parse(&b.build(), RAM), Err(ElfError::NotExecutable(3)));
    }

    #[test]
    fn elf32_is_refused_by_class() {
        // A real ELF32 header (52 bytes) with class 1.
        let mut f = vec![0u8; 52];
        f[0..4].copy_from_slice(b"\x7fELF");
        f[4] = 1;
        f[5] = 1;
        f[6] = 1;
        f[16] = 2;
        f[18] = 3;
        assert_eq!(parse(&f, RAM), Err(ElfError::NotElf64(1)));
    }

    #[test]
    fn no_load_segment() {
        let mut b = good();
        b.with_load = false;
        assert_eq!(parse(&b.build(), RAM), Err(ElfError::NoLoadSegment));
        let mut f = good().build();
        f[56] = 0; // e_phnum = 0
        assert_eq!(parse(&f, RAM), Err(ElfError::NoLoadSegment));
    }

    #[test]
    fn bad_program_header_table() {
        let mut f = good().build();
        f[54] = 32; // e_phentsize
        assert!(matches!(
            parse(&f, RAM),
            Err(ElfError::BadProgramHeaders(_))
        ));
        let mut f = good().build();
        f[32..40].copy_from_slice(&u64::MAX.to_le_bytes()); // e_phoff
        assert!(matches!(
            parse(&f, RAM),
            Err(ElfError::BadProgramHeaders(_))
        ));
        let mut f = good().build();
        f[56..58].copy_from_slice(&1000u16.to_le_bytes()); // e_phnum
        assert!(matches!(
            parse(&f, RAM),
            Err(ElfError::BadProgramHeaders(_))
        ));
    }

    #[test]
    fn filesz_above_memsz() {
        let mut b = good();
        b.bss = 0;
        b.filesz = Some(b.code.len() as u64 + 1);
        assert!(matches!(
            parse(&b.build(), RAM),
            Err(ElfError::FileSizeExceedsMemSize { index: 0, .. })
        ));
    }

    #[test]
    fn file_offset_out_of_range() {
        let mut b = good();
        b.offset = Some(u64::MAX - 2);
        assert!(matches!(
            parse(&b.build(), RAM),
            Err(ElfError::SegmentOutsideFile { index: 0, .. })
        ));
    }

    #[test]
    fn segment_outside_ram() {
        let mut b = good();
        b.load_addr = RAM - 8;
        b.pvh_entry = Some(RAM - 8);
        assert!(matches!(
            parse(&b.build(), RAM),
            Err(ElfError::SegmentOutsideRam { index: 0, .. })
        ));
        let mut b = good();
        b.load_addr = u64::MAX - 4;
        assert!(matches!(
            parse(&b.build(), RAM),
            Err(ElfError::SegmentOutsideRam { end: u64::MAX, .. })
        ));
        let mut b = good();
        b.bss = u64::MAX - b.code.len() as u64 - 10;
        assert!(matches!(
            parse(&b.build(), RAM),
            Err(ElfError::SegmentOutsideRam { .. })
        ));
    }

    #[test]
    fn segment_in_reserved_low_memory() {
        let mut b = good();
        b.load_addr = 0x7000;
        b.pvh_entry = Some(0x7000);
        assert!(matches!(
            parse(&b.build(), RAM),
            Err(ElfError::SegmentOverlapsBootArea { .. })
        ));
        let mut b = good();
        b.load_addr = 0x5FF0;
        b.pvh_entry = Some(0x5FF0);
        assert!(matches!(
            parse(&b.build(), RAM),
            Err(ElfError::SegmentOverlapsBootArea { .. })
        ));
        let mut b = good();
        b.load_addr = 0xB_8000;
        b.pvh_entry = Some(0xB_8000);
        assert!(matches!(
            parse(&b.build(), RAM),
            Err(ElfError::SegmentInLegacyHole { .. })
        ));
        // Low RAM outside both areas is fine.
        let mut b = good();
        b.load_addr = 0x8000;
        b.pvh_entry = Some(0x8000);
        assert!(parse(&b.build(), RAM).is_ok());
    }

    #[test]
    fn overlapping_segments_are_refused() {
        let code_end = LOAD_ADDR + good().code.len() as u64 + 0x100; // + bss
        // A second segment over the code (the zeroed tail would wipe it).
        assert_eq!(
            parse(&with_extra(LOAD_ADDR, &[], 0x1000).build(), RAM),
            Err(ElfError::SegmentsOverlap {
                first: 0,
                first_start: LOAD_ADDR,
                first_end: code_end,
                second: 1,
                second_start: LOAD_ADDR,
                second_end: LOAD_ADDR + 0x1000,
            })
        );
        // One byte of overlap with the first segment's .bss.
        let f = with_extra(code_end - 1, &[1, 2], 2).build();
        let e = parse(&f, RAM).unwrap_err();
        assert!(matches!(e, ElfError::SegmentsOverlap { .. }), "{e:?}");
        // A segment starting inside the first one and reaching far past it.
        let f = with_extra(LOAD_ADDR + 0x40, &[], 0x10_0000).build();
        let e = parse(&f, RAM).unwrap_err();
        assert!(matches!(e, ElfError::SegmentsOverlap { .. }), "{e:?}");
        assert!(e.to_string().contains("overlap in memory"));
        // Touching is fine, and so is an empty segment at the same address.
        let f = with_extra(code_end, &[9; 4], 0x10).build();
        let k = parse(&f, RAM).unwrap();
        assert_eq!(k.segments.len(), 2);
        assert_eq!(k.segments[1].index, 1);
        let f = with_extra(LOAD_ADDR, &[], 0).build();
        assert_eq!(parse(&f, RAM).unwrap().segments.len(), 1);
    }

    #[test]
    fn missing_or_bad_note() {
        let mut b = good();
        b.pvh_entry = None;
        assert_eq!(parse(&b.build(), RAM), Err(ElfError::MissingPvhNote));
        let mut b = good();
        b.note_name = b"Linux\0".to_vec();
        assert_eq!(parse(&b.build(), RAM), Err(ElfError::MissingPvhNote));
        let mut b = good();
        b.note_desc_size = 2;
        assert!(matches!(
            parse(&b.build(), RAM),
            Err(ElfError::BadPvhNote(_))
        ));
        let mut b = good();
        b.pvh_entry = Some(1 << 32);
        assert!(matches!(
            parse(&b.build(), RAM),
            Err(ElfError::BadPvhNote(_))
        ));
        // Note sizes running past the segment.
        let mut f = good().build();
        let note = 64 + 2 * 56;
        f[note + 4..note + 8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        assert_eq!(parse(&f, RAM), Err(ElfError::MalformedNote { index: 1 }));
    }

    #[test]
    fn entry_outside_segments() {
        let mut b = good();
        b.pvh_entry = Some(LOAD_ADDR + 0x10_0000);
        assert_eq!(
            parse(&b.build(), RAM),
            Err(ElfError::EntryOutsideSegments(LOAD_ADDR + 0x10_0000))
        );
        // Inside .bss is not inside the file data.
        let mut b = good();
        b.pvh_entry = Some(LOAD_ADDR + b.code.len() as u64);
        assert!(matches!(
            parse(&b.build(), RAM),
            Err(ElfError::EntryOutsideSegments(_))
        ));
    }

    #[test]
    fn truncations_and_mutations_never_panic() {
        let f = good().build();
        for len in 0..f.len() {
            let _ = parse(&f[..len], RAM);
        }
        // Deterministic xorshift: flip bytes in the header, program headers
        // and note (the first 0x100 bytes), several at a time.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..5000 {
            let mut m = f.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % 0x100) as usize;
                m[at] = next() as u8;
            }
            if let Ok(k) = parse(&m, RAM) {
                // Whatever passes validation must be loadable as promised.
                for (i, seg) in k.segments.iter().enumerate() {
                    assert!(seg.paddr + seg.mem_size <= RAM);
                    assert!(seg.data.len() as u64 <= seg.mem_size);
                    for other in &k.segments[i + 1..] {
                        assert!(
                            seg.paddr + seg.mem_size <= other.paddr
                                || other.paddr + other.mem_size <= seg.paddr
                        );
                    }
                }
            }
        }
    }
}
