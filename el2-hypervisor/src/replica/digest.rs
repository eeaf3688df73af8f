//! The identities exchanged in the pairing handshake.
//!
//! `replication-link` carries 32-byte digests; ours are FNV-1a 64 values
//! in the first eight bytes (little endian), the rest zero. FNV is not a
//! cryptographic hash: it tells honest mistakes apart (another build,
//! another guest, another epoch length), which is all the handshake is for.

use crate::options::EpochCounterKind;
use core::fmt::Write;

/// FNV-1a 64 (<http://www.isthe.com/chongo/tech/comp/fnv/>): the offset
/// basis (the state before any byte) and the prime. The one definition of
/// the hypervisor's FNV: the handshake's digests, the guest bundle's
/// hashes, the vGIC's and the PL011's state and the state fingerprint
/// (word-wise) all use these.
pub const FNV1A64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
pub const FNV1A64_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`, continuing from `state`.
pub const fn fnv1a64_continue(mut state: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        state ^= bytes[i] as u64;
        state = state.wrapping_mul(FNV1A64_PRIME);
        i += 1;
    }
    state
}

/// FNV-1a 64 of `bytes`.
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_continue(FNV1A64_OFFSET, bytes)
}

/// One step of the word-wise FNV-1a: a whole 64-bit word folded in at once
/// (XOR, then the prime). Each step is a bijection of the state for a
/// given word and of the word for a given state, so a single changed word
/// always changes the result. The state fingerprint and the guest image
/// hash use it: eight times fewer steps than bytes, which matters for tens
/// of MiB hashed under QEMU TCG before the guest starts.
pub const fn fnv1a64_word(state: u64, word: u64) -> u64 {
    (state ^ word).wrapping_mul(FNV1A64_PRIME)
}

/// Word-wise FNV-1a 64 of `bytes`, continuing from `state`: little-endian
/// 8-byte words, the last one padded with zeros (callers that must tell
/// `b"a"` from `b"a\0"` hash the length first).
pub fn fnv1a64_words_continue(mut state: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    for w in words.by_ref() {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        state = fnv1a64_word(state, u64::from_le_bytes(b));
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut b = [0u8; 8];
        b[..tail.len()].copy_from_slice(tail);
        state = fnv1a64_word(state, u64::from_le_bytes(b));
    }
    state
}

/// A 32-byte link digest holding `v`.
pub fn digest(v: u64) -> [u8; 32] {
    let mut d = [0u8; 32];
    d[..8].copy_from_slice(&v.to_le_bytes());
    d
}

/// Everything two boards must agree on besides the build and the guest,
/// carried in the Hello's 32-byte configuration digest as four 8-byte
/// little-endian lanes, so that a refusal can say which part differs:
///
/// | bytes | lane |
/// | --- | --- |
/// | 0..8 | epoch length, in guest instructions (the value itself) |
/// | 8..16 | guest RAM, in bytes (the value itself) |
/// | 16..24 | the platform the guest sees: [`Platform::digest`] |
/// | 24..32 | the board's random-number seed (`tandem.seed`; [`NO_SEED`] when not given) |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairingConfig {
    pub epoch: u64,
    /// Timer deadlines end epochs (`Deadlines::EpochEnd`) rather than
    /// being met inside them: both boards must do the same. Carried in
    /// the top bit of the epoch lane (an epoch length is below 2^40).
    pub deadlines_end_epochs: bool,
    /// What counts epochs and lands their ends (`tandem.epoch-counter`):
    /// the boundaries are the same either way, but a board that single
    /// steps to them shows its guest the steps (an LDXR/STXR pair across
    /// a step fails its STXR, an exception taken mid-step saves
    /// SPSR_EL1.SS = 1; `replica::step_to_count`), so both boards must
    /// count alike. Carried in bits 41:40 of the epoch lane (its index in
    /// [`EpochCounterKind::ALL`]); the step margin is a constant of the
    /// build, which the build digest covers.
    pub epoch_counter: EpochCounterKind,
    pub guest_ram: u64,
    pub platform: u64,
    pub seed: u64,
}

/// The bit of the epoch lane that says deadlines end epochs.
const DEADLINE_BIT: u32 = 63;
/// The lowest of the two bits of the epoch lane that say what counts epochs.
const COUNTER_SHIFT: u32 = 40;
/// The epoch length's bits in the epoch lane (options cap it below 2^40).
const EPOCH_MASK: u64 = (1 << COUNTER_SHIFT) - 1;

fn counter_index(k: EpochCounterKind) -> u64 {
    EpochCounterKind::ALL
        .iter()
        .position(|&x| x == k)
        .unwrap_or(0) as u64
}

/// The seed lane of a board given no `tandem.seed`.
pub const NO_SEED: u64 = u64::MAX;

impl PairingConfig {
    /// The Hello's configuration digest.
    pub fn digest(&self) -> [u8; 32] {
        let mut d = [0u8; 32];
        for (lane, v) in d.chunks_exact_mut(8).zip([
            (self.epoch & EPOCH_MASK)
                | (counter_index(self.epoch_counter) << COUNTER_SHIFT)
                | (u64::from(self.deadlines_end_epochs) << DEADLINE_BIT),
            self.guest_ram,
            self.platform,
            self.seed,
        ]) {
            lane.copy_from_slice(&v.to_le_bytes());
        }
        d
    }

    /// The lanes of a configuration digest.
    pub fn from_digest(d: &[u8; 32]) -> Self {
        let lane = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&d[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        Self {
            epoch: lane(0) & EPOCH_MASK,
            deadlines_end_epochs: lane(0) >> DEADLINE_BIT != 0,
            // An index past the known kinds (a newer peer) reads as the
            // last one; the lanes still differ, so the pairing is refused.
            epoch_counter: EpochCounterKind::ALL[((lane(0) >> COUNTER_SHIFT) & 0b11)
                .min(EpochCounterKind::ALL.len() as u64 - 1)
                as usize],
            guest_ram: lane(1),
            platform: lane(2),
            seed: lane(3),
        }
    }

    /// What differs between ours (`self`) and the peer's, in words.
    pub fn differences(&self, theirs: &Self) -> Differences {
        Differences {
            ours: *self,
            theirs: *theirs,
        }
    }
}

/// [`PairingConfig::differences`]: each differing lane named, with both
/// values where they mean something to a person.
pub struct Differences {
    ours: PairingConfig,
    theirs: PairingConfig,
}

impl core::fmt::Display for Differences {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (a, b) = (&self.ours, &self.theirs);
        let seed = |s: u64| -> heapless::String<24> {
            let mut t = heapless::String::new();
            if s == NO_SEED {
                let _ = t.push_str("none");
            } else {
                let _ = write!(t, "{s}");
            }
            t
        };
        let mut sep = "";
        if a.epoch != b.epoch {
            write!(
                f,
                "epoch length differs (ours {}, peer {} instructions)",
                a.epoch, b.epoch
            )?;
            sep = "; ";
        }
        if a.deadlines_end_epochs != b.deadlines_end_epochs {
            let how = |end: bool| if end { "epoch-end" } else { "inline" };
            write!(
                f,
                "{sep}timer deadlines differ (ours {}, peer {}: tandem.deadline)",
                how(a.deadlines_end_epochs),
                how(b.deadlines_end_epochs)
            )?;
            sep = "; ";
        }
        if a.epoch_counter != b.epoch_counter {
            write!(
                f,
                "{sep}epoch counter differs (ours {}, peer {}: tandem.epoch-counter)",
                a.epoch_counter.option(),
                b.epoch_counter.option()
            )?;
            sep = "; ";
        }
        if a.guest_ram != b.guest_ram {
            write!(
                f,
                "{sep}guest RAM differs (ours {} MiB, peer {} MiB)",
                a.guest_ram >> 20,
                b.guest_ram >> 20
            )?;
            sep = "; ";
        }
        if a.platform != b.platform {
            write!(
                f,
                "{sep}platform differs (CPU ID registers, MIDR/MPIDR, cache geometry, CNTFRQ, GIC or list registers: ours {:#018x}, peer {:#018x})",
                a.platform, b.platform
            )?;
            sep = "; ";
        }
        if a.seed != b.seed {
            write!(
                f,
                "{sep}random-number seed differs (ours {}, peer {})",
                seed(a.seed),
                seed(b.seed)
            )?;
            sep = "; ";
        }
        if sep.is_empty() {
            f.write_str("configuration digests differ in no known lane")?;
        }
        Ok(())
    }
}

/// The hardware-derived values the guest can see, which two boards must
/// present identically: a guest that reads a different ID register, cache
/// geometry or counter frequency may take a different path.
pub struct Platform<'a> {
    /// GIC architecture version given to the guest.
    pub gic_version: u8,
    /// Number of list registers (ICH_VTR_EL2.ListRegs + 1): how many
    /// interrupts can be in flight, which decides when each is delivered.
    pub list_registers: u8,
    /// Which generic timer the guest is given (0: the system-register
    /// one, 1: the memory-mapped one; `options::GuestTimer`): a different
    /// device tree, so a different guest.
    pub guest_timer: u8,
    /// The group-3 ID registers (op0 3, op1 0, CRn 0, CRm 1..7, op2 0..7,
    /// in that order) as the guest reads them, after sanitising.
    pub id_registers: &'a [u64],
    /// MIDR and MPIDR as the guest reads them (VPIDR_EL2, VMPIDR_EL2).
    pub midr: u64,
    pub mpidr: u64,
    /// CTR_EL0, DCZID_EL0 and CLIDR_EL1: cache line sizes and levels
    /// (the guest's cache maintenance loops and `DC ZVA` stride).
    pub ctr: u64,
    pub dczid: u64,
    pub clidr: u64,
    /// CNTFRQ_EL0: the counter frequency the guest computes time with.
    pub cntfrq: u64,
}

impl Platform<'_> {
    /// FNV-1a 64 over every field, little endian, in declaration order.
    pub fn digest(&self) -> u64 {
        let mut h = fnv1a64(&[self.gic_version, self.list_registers, self.guest_timer]);
        h = fnv1a64_continue(h, &(self.id_registers.len() as u64).to_le_bytes());
        for r in self.id_registers {
            h = fnv1a64_continue(h, &r.to_le_bytes());
        }
        for v in [
            self.midr,
            self.mpidr,
            self.ctr,
            self.dczid,
            self.clidr,
            self.cntfrq,
        ] {
            h = fnv1a64_continue(h, &v.to_le_bytes());
        }
        h
    }
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

    fn config() -> PairingConfig {
        PairingConfig {
            epoch: 1_000_000,
            deadlines_end_epochs: false,
            epoch_counter: EpochCounterKind::Cycles,
            guest_ram: 992 << 20,
            platform: 0x1234,
            seed: 1,
        }
    }

    #[test]
    fn config_digest_lanes_round_trip() {
        let c = config();
        let d = c.digest();
        assert_eq!(&d[..8], &1_000_000u64.to_le_bytes());
        assert_eq!(PairingConfig::from_digest(&d), c);
        let e = PairingConfig {
            deadlines_end_epochs: true,
            ..c
        };
        assert_eq!(PairingConfig::from_digest(&e.digest()), e);
        for k in EpochCounterKind::ALL {
            let f = PairingConfig {
                epoch_counter: k,
                ..e
            };
            assert_eq!(PairingConfig::from_digest(&f.digest()), f);
        }
        // The default lanes are what they were before the counter's bits.
        assert_eq!(&c.digest()[..8], &1_000_000u64.to_le_bytes());
    }

    #[test]
    fn each_lane_changes_the_digest_and_is_named() {
        let a = config();
        let cases: [(PairingConfig, &str); 6] = [
            (
                PairingConfig {
                    epoch_counter: EpochCounterKind::Steps,
                    ..a
                },
                "epoch counter differs (ours cycles, peer steps: tandem.epoch-counter)",
            ),
            (
                PairingConfig { epoch: 10_000, ..a },
                "epoch length differs (ours 1000000, peer 10000",
            ),
            (
                PairingConfig {
                    deadlines_end_epochs: true,
                    ..a
                },
                "timer deadlines differ (ours inline, peer epoch-end",
            ),
            (
                PairingConfig {
                    guest_ram: 480 << 20,
                    ..a
                },
                "guest RAM differs (ours 992 MiB, peer 480 MiB)",
            ),
            (
                PairingConfig {
                    platform: 0x99,
                    ..a
                },
                "platform differs",
            ),
            (
                PairingConfig { seed: NO_SEED, ..a },
                "random-number seed differs (ours 1, peer none)",
            ),
        ];
        for (b, want) in cases {
            assert_ne!(a.digest(), b.digest());
            let text = alloc::format!("{}", a.differences(&b));
            assert!(text.starts_with(want), "{text}");
            assert!(!text.contains(';'), "only one lane differs: {text}");
        }
        let both = PairingConfig {
            epoch: 5000,
            seed: 7,
            ..a
        };
        let text = alloc::format!("{}", a.differences(&both));
        assert!(text.contains("epoch") && text.contains("seed"), "{text}");
    }

    #[test]
    fn platform_digest_depends_on_every_field() {
        let ids = [0u64; 56];
        let base = Platform {
            gic_version: 3,
            list_registers: 4,
            guest_timer: 0,
            id_registers: &ids,
            midr: 0x000f_0510,
            mpidr: 1 << 31,
            ctr: 0x8444_c004,
            dczid: 4,
            clidr: 0x0a20_0023,
            cntfrq: 62_500_000,
        };
        let d = base.digest();
        let mut other_ids = ids;
        other_ids[9] = 1;
        let variants = [
            Platform {
                gic_version: 2,
                ..base
            },
            Platform {
                list_registers: 16,
                ..base
            },
            Platform {
                id_registers: &other_ids,
                ..base
            },
            Platform {
                guest_timer: 1,
                ..base
            },
            Platform {
                midr: 0x410f_d083,
                ..base
            },
            Platform { mpidr: 0, ..base },
            Platform { ctr: 0, ..base },
            Platform {
                dczid: 0x10,
                ..base
            },
            Platform { clidr: 0, ..base },
            Platform {
                cntfrq: 1_000_000_000,
                ..base
            },
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(v.digest(), d, "field {i} does not enter the digest");
        }
    }
}
