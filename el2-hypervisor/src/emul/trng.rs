//! The SMCCC TRNG firmware interface 1.0 (Arm DEN 0098), offered to a
//! guest that has the memory-mapped timer (`emul::timer_mem`).
//!
//! Why: on a core without FEAT_ECV the guest's CNTVCT_EL0 reads reach the
//! hardware counter. After `time_init()` Linux 6.1 reads time only from the
//! memory-mapped frame, but before it `random_get_entropy()` is the CP15
//! counter, and `extract_entropy()` (drivers/char/random.c) calls it four
//! times for every random number drawn while the CRNG is unseeded: about
//! 800 reads in a boot of the default guest (counted on `-cpu max` with
//! the memory-mapped timer forced, where they still trap), each a
//! board-dependent value that would seed the guest's CRNG differently on
//! the two boards. Linux asks the SMCCC TRNG first
//! (`arch_get_random_seed_longs`), and with its answers the CRNG is seeded
//! in `random_init_early()` before any of those reads: none happen.
//!
//! The random words are environment inputs: the board supplies them
//! ([`mix`] of its physical counter: a stand-in, not a hardware entropy
//! source) and a pair logs each one, like every firmware call's result, so
//! that the backup's guest draws the same.
//!
//! Calls: TRNG_VERSION (1.0), TRNG_FEATURES (0 for VERSION, FEATURES,
//! RND32 and RND64), TRNG_RND32 (up to 96 bits in W1-W3) and TRNG_RND64
//! (up to 192 bits in X1-X3), the low bits in the last register, the
//! unrequested high bits zero. TRNG_GET_UUID, which Linux does not call,
//! answers NOT_SUPPORTED (a departure from the specification, which
//! requires it: there is no UUID to give).

use super::psci::{function as f, status};

/// TRNG_VERSION: 1.0 (major in [30:16], minor in [15:0]).
pub const TRNG_VERSION_1_0: u64 = 0x1_0000;

/// What the board does with a TRNG call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrngCall {
    /// Write this to x0 (and leave x1-x3).
    Return(u64),
    /// Write 0 (success) to x0 and `bits` random bits to x1-x3
    /// ([`random_registers`]); `wide` for RND64, 32-bit registers for RND32.
    Random { bits: u32, wide: bool },
}

const fn ret(s: i32) -> TrngCall {
    TrngCall::Return(s as i64 as u64)
}

/// Decides a firmware call if it is a TRNG call (`args` is x0-x3 at the
/// SMC/HVC); `None` for any other function.
pub fn handle(args: [u64; 4]) -> Option<TrngCall> {
    let fid = args[0] as u32;
    Some(match fid {
        f::TRNG_VERSION => TrngCall::Return(TRNG_VERSION_1_0),
        f::TRNG_FEATURES => match args[1] as u32 {
            f::TRNG_VERSION | f::TRNG_FEATURES | f::TRNG_RND_32 | f::TRNG_RND_64 => {
                ret(status::SUCCESS)
            }
            _ => ret(status::NOT_SUPPORTED),
        },
        f::TRNG_GET_UUID => ret(status::NOT_SUPPORTED),
        f::TRNG_RND_32 | f::TRNG_RND_64 => {
            let wide = fid == f::TRNG_RND_64;
            let bits = if wide { args[1] } else { args[1] & 0xffff_ffff };
            let max = if wide { 192 } else { 96 };
            if bits == 0 || bits > max {
                ret(status::INVALID_PARAMETERS)
            } else {
                TrngCall::Random {
                    bits: bits as u32,
                    wide,
                }
            }
        }
        _ => return None,
    })
}

/// X1-X3 of a successful RND call for `bits` bits from three entropy
/// words: each register holds `64` bits (RND64) or `32` (RND32), the
/// lowest in X3; bits above `bits` are zero.
pub const fn random_registers(bits: u32, wide: bool, words: [u64; 3]) -> [u64; 3] {
    let per: u32 = if wide { 64 } else { 32 };
    let mut out = [0u64; 3];
    let mut i = 0;
    while i < 3 {
        // Register 2 (X3) holds bits [per-1:0], register 0 (X1) the top.
        let low = (2 - i as u32) * per;
        let have = bits.saturating_sub(low);
        let n = if have > per { per } else { have };
        out[i] = if n == 0 {
            0
        } else if n == 64 {
            words[i]
        } else {
            words[i] & ((1u64 << n) - 1)
        };
        i += 1;
    }
    out
}

/// One entropy word from the board's counter `counter` for word `i` of a
/// call: SplitMix64 (a bijective mix, so distinct counters give distinct
/// words). Not a cryptographic source: what the board has until it drives
/// a hardware RNG (the Pi 4's RNG200). Either way the word is logged.
pub const fn mix(counter: u64, i: u64) -> u64 {
    let mut z = counter
        .wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(fid: u32, x1: u64) -> Option<TrngCall> {
        handle([u64::from(fid), x1, 0, 0])
    }

    #[test]
    fn linux_finds_version_1_0_and_its_calls() {
        // smccc_probe_trng: TRNG_VERSION >= 1.0.
        assert_eq!(call(f::TRNG_VERSION, 0), Some(TrngCall::Return(0x1_0000)));
        for fid in [
            f::TRNG_VERSION,
            f::TRNG_FEATURES,
            f::TRNG_RND_32,
            f::TRNG_RND_64,
        ] {
            assert_eq!(
                call(f::TRNG_FEATURES, u64::from(fid)),
                Some(TrngCall::Return(0))
            );
        }
        let no = Some(TrngCall::Return(u64::MAX));
        assert_eq!(call(f::TRNG_FEATURES, u64::from(f::TRNG_GET_UUID)), no);
        assert_eq!(call(f::TRNG_FEATURES, u64::from(f::PSCI_VERSION)), no);
        assert_eq!(call(f::TRNG_GET_UUID, 0), no);
        // Not TRNG: PSCI's business.
        assert_eq!(call(f::PSCI_VERSION, 0), None);
        assert_eq!(call(f::SMCCC_VERSION, 0), None);
    }

    #[test]
    fn rnd_takes_1_to_192_or_96_bits() {
        let bad = Some(TrngCall::Return(-2i64 as u64));
        assert_eq!(call(f::TRNG_RND_64, 0), bad);
        assert_eq!(call(f::TRNG_RND_64, 193), bad);
        assert_eq!(call(f::TRNG_RND_64, 1 << 40), bad);
        assert_eq!(
            call(f::TRNG_RND_64, 192),
            Some(TrngCall::Random {
                bits: 192,
                wide: true
            })
        );
        assert_eq!(call(f::TRNG_RND_32, 97), bad);
        // SMC32: W1 only.
        assert_eq!(
            call(f::TRNG_RND_32, (1 << 32) | 96),
            Some(TrngCall::Random {
                bits: 96,
                wide: false
            })
        );
    }

    #[test]
    fn registers_carry_the_low_bits_last_and_zero_above() {
        let w = [u64::MAX; 3];
        // Linux's arch_get_random_seed_longs: 3 longs = 192 bits, 1 = 64.
        assert_eq!(random_registers(192, true, w), [u64::MAX; 3]);
        assert_eq!(random_registers(64, true, w), [0, 0, u64::MAX]);
        assert_eq!(random_registers(65, true, w), [0, 1, u64::MAX]);
        assert_eq!(random_registers(1, true, w), [0, 0, 1]);
        assert_eq!(
            random_registers(96, false, w),
            [0xffff_ffff, 0xffff_ffff, 0xffff_ffff]
        );
        assert_eq!(random_registers(40, false, w), [0, 0xff, 0xffff_ffff]);
        let v = [1, 2, 3];
        assert_eq!(random_registers(192, true, v), v);
    }

    #[test]
    fn mixed_words_differ_by_counter_and_index() {
        assert_ne!(mix(0, 0), mix(1, 0));
        assert_ne!(mix(5, 0), mix(5, 1));
        assert_eq!(mix(5, 2), mix(5, 2));
        assert_ne!(mix(0, 0), 0);
    }
}
