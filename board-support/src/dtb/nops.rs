//! Removing `FDT_NOP` tokens from a flattened device tree, in place.
//!
//! A boot loader that deletes nodes with libfdt's `fdt_nop_node` leaves
//! their tokens as NOPs (QEMU `-M raspi4b` does this to the nodes it does
//! not model). The Devicetree Specification (v0.4, 5.4.1) lets NOPs stand
//! anywhere between tokens, but the `fdt` crate stops or panics on NOPs in
//! several places (after a node's properties, before an `FDT_END_NODE`).
//! So the hypervisor compacts the structure block once, before parsing.

use super::DtbError;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

fn be32(blob: &[u8], at: usize) -> Result<u32, DtbError> {
    blob.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(DtbError::Malformed)
}

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// The structure block's `(offset, size)` from the header (spec 5.2).
fn struct_block(blob: &[u8]) -> Result<(usize, usize), DtbError> {
    let off = be32(blob, 8)? as usize;
    let size = be32(blob, 36)? as usize;
    if off.checked_add(size).is_none_or(|end| end > blob.len()) {
        return Err(DtbError::Malformed);
    }
    Ok((off, size))
}

/// One token of the structure block: its kind and its length in bytes
/// (padding included), at offset `at` of `block`.
fn token(block: &[u8], at: usize) -> Result<(u32, usize), DtbError> {
    let kind = be32(block, at)?;
    let len = match kind {
        FDT_BEGIN_NODE => {
            let name = block.get(at + 4..).ok_or(DtbError::Malformed)?;
            let nul = name
                .iter()
                .position(|&b| b == 0)
                .ok_or(DtbError::Malformed)?;
            4 + align4(nul + 1)
        }
        FDT_PROP => 12 + align4(be32(block, at + 4)? as usize),
        FDT_END_NODE | FDT_NOP | FDT_END => 4,
        _ => return Err(DtbError::Malformed),
    };
    if at + len > block.len() {
        return Err(DtbError::Malformed);
    }
    Ok((kind, len))
}

/// Calls `f(offset, kind, len)` on each token of `block` up to `FDT_END`.
pub(super) fn for_each_token(
    block: &[u8],
    mut f: impl FnMut(usize, u32, usize),
) -> Result<(), DtbError> {
    let mut at = 0;
    loop {
        let (kind, len) = token(block, at)?;
        f(at, kind, len);
        at += len;
        if kind == FDT_END {
            return Ok(());
        }
    }
}

/// Removes every `FDT_NOP` from the structure block of `blob`, moving the
/// tokens after each down and shrinking `size_dt_struct`; returns how many
/// were removed. The strings block and memory reservations do not move.
///
/// # Errors
/// [`DtbError::Malformed`] when the header or a token does not parse (the
/// blob is then left as it was).
pub fn strip_nops(blob: &mut [u8]) -> Result<usize, DtbError> {
    if be32(blob, 0)? != 0xd00d_feed {
        return Err(DtbError::Malformed);
    }
    let (off, size) = struct_block(blob)?;
    // Check the whole block first: nothing moves in a malformed tree.
    for_each_token(&blob[off..off + size], |_, _, _| {})?;
    let block = &mut blob[off..off + size];
    let (mut read, mut write, mut removed) = (0, 0, 0);
    loop {
        let (kind, len) = token(block, read)?;
        if kind == FDT_NOP {
            removed += 1;
        } else {
            block.copy_within(read..read + len, write);
            write += len;
        }
        read += len;
        if kind == FDT_END {
            break;
        }
    }
    block[write..].fill(0);
    blob[36..40].copy_from_slice(&(write as u32).to_be_bytes());
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree as bytes, by hand: `/` with a property and two children.
    fn tree() -> Vec<u8> {
        let mut s = Vec::new();
        let mut tok = |v: &[u32]| v.iter().for_each(|x| s.extend(x.to_be_bytes()));
        tok(&[FDT_BEGIN_NODE, 0]); // "" name, padded
        tok(&[FDT_PROP, 4, 0, 0x1234]);
        tok(&[FDT_NOP]);
        tok(&[
            FDT_BEGIN_NODE,
            u32::from_be_bytes(*b"a\0\0\0"),
            FDT_NOP,
            FDT_END_NODE,
        ]);
        tok(&[FDT_NOP, FDT_NOP, FDT_END_NODE, FDT_END]);
        let strings = b"p\0";
        let mut blob = vec![0u8; 40];
        let put =
            |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        put(&mut blob, 0, 0xd00d_feed);
        put(&mut blob, 8, 40); // off_dt_struct
        put(&mut blob, 12, 40 + s.len() as u32); // off_dt_strings
        put(&mut blob, 32, strings.len() as u32);
        put(&mut blob, 36, s.len() as u32);
        blob.extend(&s);
        blob.extend(strings);
        let total = blob.len() as u32;
        put(&mut blob, 4, total);
        blob
    }

    #[test]
    fn nops_go_and_everything_else_stays_in_order() {
        let mut blob = tree();
        assert_eq!(strip_nops(&mut blob), Ok(4));
        let (off, size) = struct_block(&blob).unwrap();
        let mut kinds = Vec::new();
        for_each_token(&blob[off..off + size], |_, k, _| kinds.push(k)).unwrap();
        assert_eq!(
            kinds,
            [
                FDT_BEGIN_NODE,
                FDT_PROP,
                FDT_BEGIN_NODE,
                FDT_END_NODE,
                FDT_END_NODE,
                FDT_END
            ]
        );
        assert_eq!(strip_nops(&mut blob), Ok(0), "a second pass finds none");
    }

    #[test]
    fn a_malformed_block_is_refused_untouched() {
        let mut blob = tree();
        let off = 40 + 8 + 16; // the first NOP, after `/` and its property
        blob[off + 3] = 7; // an unknown token
        let before = blob.clone();
        assert_eq!(strip_nops(&mut blob), Err(DtbError::Malformed));
        assert_eq!(blob, before);
        assert_eq!(strip_nops(&mut [0u8; 8]), Err(DtbError::Malformed));
    }
}
