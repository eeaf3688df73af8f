//! The identities exchanged in the pairing handshake.
//!
//! `replication-link` carries 32-byte digests; ours are FNV-1a 64 values
//! in the first eight bytes (little endian), the rest zero. FNV is not a
//! cryptographic hash: it tells honest mistakes apart (another build,
//! another guest, another epoch length), which is all the handshake is for.

use core::fmt::Write;

/// FNV-1a 64 offset basis and prime.
const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`, continuing from `state`.
pub const fn fnv1a64_continue(mut state: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        state ^= bytes[i] as u64;
        state = state.wrapping_mul(PRIME);
        i += 1;
    }
    state
}

/// FNV-1a 64 of `bytes`.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_continue(OFFSET, bytes)
}

/// A 32-byte link digest holding `v`.
pub fn digest(v: u64) -> [u8; 32] {
    let mut d = [0u8; 32];
    d[..8].copy_from_slice(&v.to_le_bytes());
    d
}

/// The configuration digest: everything two boards must agree on besides
/// the build and the guest. The text is `epoch=<N> ram=<bytes> gic=<v>`.
pub fn config_digest(epoch: u64, guest_ram: u64, gic: u8) -> [u8; 32] {
    let mut text: heapless::String<96> = heapless::String::new();
    // 96 bytes hold three u64s and the labels.
    let _ = write!(text, "epoch={epoch} ram={guest_ram} gic={gic}");
    digest(fnv1a64(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn config_digest_depends_on_each_field() {
        let a = config_digest(1_000_000, 1 << 30, 3);
        assert_eq!(
            &a[..8],
            &fnv1a64(b"epoch=1000000 ram=1073741824 gic=3").to_le_bytes()
        );
        assert_ne!(a, config_digest(10_000, 1 << 30, 3));
        assert_ne!(a, config_digest(1_000_000, 1 << 29, 3));
        assert_eq!(&a[8..], &[0; 24]);
    }
}
