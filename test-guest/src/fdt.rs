//! Just enough of a flattened-device-tree reader (DTSpec v0.4, chapter 5)
//! to find guest RAM (the first `reg` range of the root's `memory` node)
//! and the command line (`/chosen/bootargs`).
//!
//! Reads byte by byte from a slice: the guest runs with its MMU off, where
//! the DTB is Device memory and only naturally aligned accesses are allowed
//! (the bare-metal target is `+strict-align`, so the compiler never merges
//! these into unaligned loads).

/// Why the memory range was not found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    BadHeader,
    Truncated,
    NoMemoryNode,
    BadReg,
}

/// One property met while walking the tree: the depth of its node (the
/// root's properties are at 1), the node's name, the property's.
struct Property<'a> {
    depth: usize,
    node: &'a [u8],
    name: &'a [u8],
    value: &'a [u8],
}

/// Walks every property of `dtb` in order until `visit` returns a value;
/// `Ok(None)` if it never does.
fn walk<'a, T>(
    dtb: &'a [u8],
    mut visit: impl FnMut(&Property<'a>) -> Result<Option<T>, FdtError>,
) -> Result<Option<T>, FdtError> {
    if be32(dtb, 0)? != MAGIC {
        return Err(FdtError::BadHeader);
    }
    let structs = be32(dtb, 8)? as usize;
    let strings = be32(dtb, 12)? as usize;
    let mut depth = 0usize;
    let mut node: &[u8] = b"";
    let mut off = structs;
    loop {
        let token = be32(dtb, off)?;
        off += 4;
        match token {
            BEGIN_NODE => {
                node = cstr(dtb, off)?;
                off += (node.len() + 1).next_multiple_of(4);
                depth += 1;
            }
            END_NODE => {
                depth = depth.checked_sub(1).ok_or(FdtError::Truncated)?;
                node = b"";
            }
            PROP => {
                let len = be32(dtb, off)? as usize;
                let name = cstr(dtb, strings + be32(dtb, off + 4)? as usize)?;
                let value = dtb.get(off + 8..off + 8 + len).ok_or(FdtError::Truncated)?;
                off += 8 + len.next_multiple_of(4);
                let p = Property {
                    depth,
                    node,
                    name,
                    value,
                };
                if let Some(t) = visit(&p)? {
                    return Ok(Some(t));
                }
            }
            NOP => {}
            END => return Ok(None),
            _ => return Err(FdtError::Truncated),
        }
    }
}

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

fn be32(b: &[u8], off: usize) -> Result<u32, FdtError> {
    let s = b.get(off..off + 4).ok_or(FdtError::Truncated)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The DTB's `totalsize`, if `header` (its first 8 bytes) has the magic.
pub fn total_size(header: [u8; 8]) -> Result<usize, FdtError> {
    if be32(&header, 0)? != MAGIC {
        return Err(FdtError::BadHeader);
    }
    Ok(be32(&header, 4)? as usize)
}

/// A NUL-terminated string at `off`.
fn cstr(b: &[u8], off: usize) -> Result<&[u8], FdtError> {
    let rest = b.get(off..).ok_or(FdtError::Truncated)?;
    let len = rest
        .iter()
        .position(|&c| c == 0)
        .ok_or(FdtError::Truncated)?;
    Ok(&rest[..len])
}

/// A big-endian number of `cells` 32-bit cells (1 or 2).
fn cells_value(b: &[u8], cells: u32) -> Result<u64, FdtError> {
    match cells {
        1 => Ok(u64::from(be32(b, 0)?)),
        2 => Ok((u64::from(be32(b, 0)?) << 32) | u64::from(be32(b, 4)?)),
        _ => Err(FdtError::BadReg),
    }
}

/// `(base, size)` of the first range in the `reg` of the root's `memory`
/// (or `memory@...`) node.
pub fn memory_range(dtb: &[u8]) -> Result<(u64, u64), FdtError> {
    let (mut addr_cells, mut size_cells) = (2, 1); // DTSpec defaults
    walk(dtb, |p| {
        let in_memory = p.depth == 2 && (p.node == b"memory" || p.node.starts_with(b"memory@"));
        if p.depth == 1 && p.name == b"#address-cells" {
            addr_cells = be32(p.value, 0)?;
        } else if p.depth == 1 && p.name == b"#size-cells" {
            size_cells = be32(p.value, 0)?;
        } else if in_memory && p.name == b"reg" {
            let at = addr_cells as usize * 4;
            let base = cells_value(p.value, addr_cells)?;
            let size = cells_value(p.value.get(at..).ok_or(FdtError::BadReg)?, size_cells)?;
            return Ok(Some((base, size)));
        }
        Ok(None)
    })?
    .ok_or(FdtError::NoMemoryNode)
}

/// Whether the tree's interrupt controller is a GICv2 (`arm,cortex-a15-gic`
/// or `arm,gic-400` in a `compatible`); false for a GICv3 or none.
pub fn gic_is_v2(dtb: &[u8]) -> Result<bool, FdtError> {
    const V2: [&[u8]; 2] = [b"arm,cortex-a15-gic", b"arm,gic-400"];
    let found = walk(dtb, |p| {
        let hit = p.name == b"compatible" && p.value.split(|&c| c == 0).any(|c| V2.contains(&c));
        Ok(hit.then_some(()))
    })?;
    Ok(found.is_some())
}

/// `/chosen/bootargs` without its NUL; empty when there is none.
pub fn bootargs(dtb: &[u8]) -> Result<&[u8], FdtError> {
    let found = walk(dtb, |p| {
        Ok((p.depth == 2 && p.node == b"chosen" && p.name == b"bootargs").then_some(p.value))
    })?;
    let value = found.unwrap_or(b"");
    Ok(value.strip_suffix(b"\0").unwrap_or(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal DTB writer for the tests.
    #[derive(Default)]
    struct Dtb {
        structs: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Dtb {
        fn word(&mut self, w: u32) -> &mut Self {
            self.structs.extend_from_slice(&w.to_be_bytes());
            self
        }
        fn begin(&mut self, name: &str) -> &mut Self {
            self.word(BEGIN_NODE);
            self.structs.extend_from_slice(name.as_bytes());
            self.structs.push(0);
            while !self.structs.len().is_multiple_of(4) {
                self.structs.push(0);
            }
            self
        }
        fn end(&mut self) -> &mut Self {
            self.word(END_NODE)
        }
        fn prop(&mut self, name: &str, cells: &[u32]) -> &mut Self {
            let nameoff = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.word(PROP).word(cells.len() as u32 * 4).word(nameoff);
            for &c in cells {
                self.word(c);
            }
            self
        }
        fn prop_str(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let nameoff = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.word(PROP).word(value.len() as u32).word(nameoff);
            self.structs.extend_from_slice(value);
            while !self.structs.len().is_multiple_of(4) {
                self.structs.push(0);
            }
            self
        }
        fn finish(&mut self) -> Vec<u8> {
            self.word(END);
            let structs_off = 40u32;
            let strings_off = structs_off + self.structs.len() as u32;
            let total = strings_off + self.strings.len() as u32;
            let mut out = Vec::new();
            for w in [
                MAGIC,
                total,
                structs_off,
                strings_off,
                0,
                17,
                16,
                0,
                self.strings.len() as u32,
                self.structs.len() as u32,
            ] {
                out.extend_from_slice(&w.to_be_bytes());
            }
            out.extend_from_slice(&self.structs);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    #[test]
    fn tells_a_gicv2_from_a_gicv3() {
        let with = |compatible: &[u8]| {
            Dtb::default()
                .begin("")
                .prop_str("compatible", b"linux,dummy-virt\0")
                .begin("intc@8000000")
                .prop_str("compatible", compatible)
                .end()
                .end()
                .finish()
        };
        assert_eq!(gic_is_v2(&with(b"arm,cortex-a15-gic\0")), Ok(true));
        assert_eq!(gic_is_v2(&with(b"brcm,x\0arm,gic-400\0")), Ok(true));
        assert_eq!(gic_is_v2(&with(b"arm,gic-v3\0")), Ok(false));
        assert_eq!(gic_is_v2(&with(b"arm,cortex-a15-gic-not\0")), Ok(false));
    }

    #[test]
    fn finds_memory_with_two_cells() {
        let dtb = Dtb::default()
            .begin("")
            .prop("#address-cells", &[2])
            .prop("#size-cells", &[2])
            .begin("chosen")
            .prop("reg", &[9, 9, 9, 9])
            .end()
            .begin("memory@42000000")
            .prop("device_type", &[0x6d656d6f])
            .prop("reg", &[0, 0x4200_0000, 0, 0x3e00_0000])
            .end()
            .end()
            .finish();
        assert_eq!(total_size(dtb[..8].try_into().unwrap()), Ok(dtb.len()));
        assert_eq!(memory_range(&dtb), Ok((0x4200_0000, 0x3e00_0000)));
    }

    #[test]
    fn default_cells_and_nested_memory_ignored() {
        let dtb = Dtb::default()
            .begin("")
            .begin("soc")
            .begin("memory@0")
            .prop("reg", &[1, 2, 3])
            .end()
            .end()
            .begin("memory")
            .prop("reg", &[0, 0x8000_0000, 0x1000])
            .end()
            .end()
            .finish();
        assert_eq!(memory_range(&dtb), Ok((0x8000_0000, 0x1000)));
    }

    #[test]
    fn bootargs_of_chosen_only() {
        let mut d = Dtb::default();
        d.begin("").begin("soc");
        d.prop("bootargs", &[0x4e4f_0000]).end();
        d.begin("chosen");
        // "a=b\0": the property's bytes, one cell.
        d.prop("bootargs", &[0x613d_6200]).end().end();
        let dtb = d.finish();
        assert_eq!(bootargs(&dtb), Ok(&b"a=b"[..]));
        let none = Dtb::default()
            .begin("")
            .begin("chosen")
            .end()
            .end()
            .finish();
        assert_eq!(bootargs(&none), Ok(&b""[..]));
    }

    #[test]
    fn errors() {
        let none = Dtb::default().begin("").end().finish();
        assert_eq!(memory_range(&none), Err(FdtError::NoMemoryNode));
        assert_eq!(
            memory_range(&none[..none.len() - 4]),
            Err(FdtError::Truncated)
        );
        assert_eq!(memory_range(&[0u8; 40]), Err(FdtError::BadHeader));
        assert_eq!(total_size([0; 8]), Err(FdtError::BadHeader));
        let short = Dtb::default()
            .begin("")
            .prop("#address-cells", &[2])
            .prop("#size-cells", &[2])
            .begin("memory@0")
            .prop("reg", &[0, 0x4000_0000])
            .end()
            .end()
            .finish();
        assert_eq!(memory_range(&short), Err(FdtError::Truncated));
    }
}
