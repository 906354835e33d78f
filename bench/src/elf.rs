//! Section sizes of ELF objects (and of the objects inside an `ar` archive such as an
//! rlib), read from the section headers: no dependence on binutils' output format.

/// Bytes of code and of read-only data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sizes {
    /// `.text` and `.text.*`
    pub text: u64,
    /// `.rodata`, `.rodata.*` and `.lrodata*`
    pub rodata: u64,
}

impl std::ops::AddAssign for Sizes {
    fn add_assign(&mut self, other: Sizes) {
        self.text += other.text;
        self.rodata += other.rodata;
    }
}

/// Sizes of a 64-bit little-endian ELF relocatable object, or of every ELF member of an
/// `ar` archive added up.
pub fn sizes(bytes: &[u8]) -> Result<Sizes, String> {
    if let Some(members) = bytes.strip_prefix(b"!<arch>\n") {
        return archive_sizes(members);
    }
    object_sizes(bytes)
}

fn archive_sizes(mut rest: &[u8]) -> Result<Sizes, String> {
    let mut total = Sizes::default();
    while rest.len() >= 60 {
        let header = &rest[..60];
        let size: usize = std::str::from_utf8(&header[48..58])
            .map_err(|_| "bad archive member size".to_string())?
            .trim()
            .parse()
            .map_err(|_| "bad archive member size".to_string())?;
        let data = rest
            .get(60..60 + size)
            .ok_or("archive member runs past the end")?;
        if data.starts_with(b"\x7fELF") {
            total += object_sizes(data)?;
        }
        let next = (60 + size + 1) & !1;
        rest = rest.get(next..).unwrap_or(&[]);
    }
    Ok(total)
}

fn object_sizes(b: &[u8]) -> Result<Sizes, String> {
    if !b.starts_with(b"\x7fELF") || b.len() < 64 || b[4] != 2 || b[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]) as usize)
    };
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes(s.try_into().unwrap()) as usize)
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .map(|s| u64::from_le_bytes(s.try_into().unwrap()))
    };
    let bad = || "truncated ELF section headers".to_string();
    let shoff = u64_at(0x28).ok_or_else(bad)? as usize;
    let shentsize = u16_at(0x3a).ok_or_else(bad)?;
    let shnum = u16_at(0x3c).ok_or_else(bad)?;
    let shstrndx = u16_at(0x3e).ok_or_else(bad)?;
    let section = |k: usize| shoff + k * shentsize;
    let strtab = u64_at(section(shstrndx) + 24).ok_or_else(bad)? as usize;
    let mut sizes = Sizes::default();
    for k in 0..shnum {
        let name_at = strtab + u32_at(section(k)).ok_or_else(bad)?;
        let name_len = b
            .get(name_at..)
            .and_then(|s| s.iter().position(|&c| c == 0))
            .ok_or_else(bad)?;
        let name = &b[name_at..name_at + name_len];
        let size = u64_at(section(k) + 32).ok_or_else(bad)?;
        let is = |prefix: &[u8]| name == prefix || name.starts_with(&[prefix, b"."].concat());
        if is(b".text") {
            sizes.text += size;
        } else if is(b".rodata") || name.starts_with(b".lrodata") {
            sizes.rodata += size;
        }
    }
    Ok(sizes)
}
