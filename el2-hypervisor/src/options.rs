//! The hypervisor's own options, read from the board's command line
//! (`/chosen/bootargs`: QEMU `-append`, or `cmdline.txt` on a Raspberry Pi).
//!
//! Every option is `tandem.NAME=VALUE`; other words belong to no one (the
//! guest's command line travels in the guest bundle, not here). An unknown
//! `tandem.*` option or a bad value is an error that names it, so a typo
//! never silently changes behaviour.

use core::fmt;

/// What to do deliberately wrong, for the smoke tests (`test-hooks` builds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// Execute an undefined instruction at EL2.
    Exception,
    /// `panic!` in the hypervisor.
    Panic,
    /// Change this board's boundary fingerprint at this epoch, as a guest
    /// that diverged would (`tandem.selftest=diverge:N`).
    Diverge(u64),
}

/// What this board does with the guest's execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Run the guest; no log (epochs only if `tandem.epoch` is set).
    #[default]
    Free,
    /// Record every environment input and epoch boundary to the link.
    Record,
    /// Take every environment input from the link and check each boundary.
    Replay,
    /// The primary of a live pair: log to the backup board, hold the
    /// guest's output until the backup has what precedes it, and run on
    /// alone if the backup dies.
    Primary,
    /// The backup of a live pair: replay the primary's log as it comes,
    /// emit nothing, and take over when the primary dies.
    Backup,
}

impl Mode {
    /// A live pair (the peer is a board), not a file through the host.
    pub const fn is_pair(self) -> bool {
        matches!(self, Mode::Primary | Mode::Backup)
    }
    /// Whether this mode needs the link.
    pub const fn has_link(self) -> bool {
        !matches!(self, Mode::Free)
    }
}

/// Which device carries the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinkMedium {
    /// The board's second PL011 (COBS-framed byte stream).
    #[default]
    Serial,
    /// A virtio-net device (one packet per Ethernet frame).
    Ethernet,
}

/// How a guest timer deadline inside an epoch is met, at its exact
/// instruction on both boards (`replica::epoch_time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Deadlines {
    /// The epoch ends there, and the boundary raises the timer's line
    /// (`tandem.deadline=epoch-end`): one more epoch end in the log per
    /// deadline.
    EpochEnd,
    /// The line is raised there and the epoch goes on
    /// (`tandem.deadline=inline`): nothing is logged, since both boards
    /// compute the same instruction from the same base.
    #[default]
    Inline,
}

/// When a pair's primary waits for its backup's acknowledgements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AckPolicy {
    /// Only before output leaves the board (the output rule: held output
    /// waits; the guest runs on) (`tandem.ack=output`).
    #[default]
    Output,
    /// At every epoch's end, until the backup has acknowledged the whole
    /// log, as the 1995 prototype did (`tandem.ack=epoch`).
    Epoch,
}

/// Which generic timer the guest is given (`tandem.guest-timer`): its
/// counter reads must all reach the hypervisor, which answers them from
/// guest time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestTimer {
    /// The CP15 (system-register) timer, `arm,armv8-timer`: counter reads
    /// trap with FEAT_ECV (`CNTHCTL_EL2.EL1TVCT`), so only on a core that
    /// has it (`tandem.guest-timer=sysreg`).
    Sysreg,
    /// The memory-mapped timer, `arm,armv7-timer-mem`, and no CP15 timer
    /// node (`emul::timer_mem`): every counter read is a stage-2 abort,
    /// on any core (`tandem.guest-timer=mmio`).
    Mmio,
}

impl GuestTimer {
    pub const ALL: [Self; 2] = [GuestTimer::Sysreg, GuestTimer::Mmio];

    /// The value of `tandem.guest-timer` that chooses it.
    pub const fn option(self) -> &'static str {
        match self {
            GuestTimer::Sysreg => "sysreg",
            GuestTimer::Mmio => "mmio",
        }
    }

    /// The one `tandem.guest-timer` names, if any.
    pub fn from_option(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.option() == value)
    }

    /// The timer for a core with FEAT_ECV or without (`ecv`), or the one
    /// `forced` by the option: the system-register timer where counter
    /// reads trap, the memory-mapped one where they cannot.
    ///
    /// # Errors
    /// The system-register timer forced on a core without ECV: the
    /// guest's CNTVCT_EL0 reads would reach the hardware counter, which
    /// differs from board to board.
    pub const fn choose(forced: Option<Self>, ecv: bool) -> Result<Self, &'static str> {
        match (forced, ecv) {
            (Some(GuestTimer::Sysreg), false) => Err(
                "tandem.guest-timer=sysreg needs FEAT_ECV to trap the guest's counter reads (this core has none; use mmio)",
            ),
            (Some(t), _) => Ok(t),
            (None, true) => Ok(GuestTimer::Sysreg),
            (None, false) => Ok(GuestTimer::Mmio),
        }
    }
}

impl Deadlines {
    pub const ALL: [Self; 2] = [Deadlines::Inline, Deadlines::EpochEnd];

    /// The value of `tandem.deadline` that chooses it.
    pub const fn option(self) -> &'static str {
        match self {
            Deadlines::EpochEnd => "epoch-end",
            Deadlines::Inline => "inline",
        }
    }

    /// The one `tandem.deadline` names, if any.
    pub fn from_option(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.option() == value)
    }
}

impl AckPolicy {
    pub const ALL: [Self; 2] = [AckPolicy::Output, AckPolicy::Epoch];

    /// The value of `tandem.ack` that chooses it.
    pub const fn option(self) -> &'static str {
        match self {
            AckPolicy::Output => "output",
            AckPolicy::Epoch => "epoch",
        }
    }

    /// The one `tandem.ack` names, if any.
    pub fn from_option(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.option() == value)
    }
}

/// What counts an epoch's guest instructions, and how its exact end is
/// reached (`tandem.epoch-counter`; `replica::step_to_count`). The board
/// chooses, behind one interface (`hw::EpochCounter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EpochCounterKind {
    /// The PMU cycle counter, which under QEMU `-icount shift=0` counts one
    /// per instruction and overflows at the exact instruction
    /// (`tandem.epoch-counter=cycles`; QEMU's boards).
    #[default]
    Cycles,
    /// The cycle counter programmed to overflow a margin early, then
    /// single steps to the exact count (`tandem.epoch-counter=steps`):
    /// the real-core path, forced on QEMU to prove it.
    Steps,
    /// INST_RETIRED (event 0x08) on the PMU's last event counter, kept for
    /// the hypervisor, overflowing a margin early, then single steps
    /// (`tandem.epoch-counter=inst-retired`): real cores, where the
    /// overflow comes with skid. Not on QEMU, which delivers that
    /// overflow only at the next exception-level change or PMU access
    /// (design card, section 8): millions of instructions late, which the
    /// board reports as an overshoot and stops.
    InstRetired,
}

impl EpochCounterKind {
    pub const ALL: [Self; 3] = [Self::Cycles, Self::Steps, Self::InstRetired];

    /// The value of `tandem.epoch-counter` that chooses it.
    pub const fn option(self) -> &'static str {
        match self {
            Self::Cycles => "cycles",
            Self::Steps => "steps",
            Self::InstRetired => "inst-retired",
        }
    }

    /// The one `tandem.epoch-counter` names, if any.
    pub fn from_option(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.option() == value)
    }

    /// Whether epochs end by single-stepping from an early overflow.
    pub const fn steps(self) -> bool {
        !matches!(self, Self::Cycles)
    }
}

/// The most `tandem.step-skid` takes: half the step margin, so that a
/// simulated skid never overshoots an epoch's end.
pub const MAX_STEP_SKID: u64 = crate::replica::step_to_count::STEP_MARGIN / 2;

/// Failure-detection timing of a live pair, in milliseconds of the board's
/// clock (under QEMU `-icount`, virtual time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairTiming {
    /// A heartbeat after this long without sending (`tandem.heartbeat-ms`).
    pub heartbeat_ms: u64,
    /// The peer is declared dead after this long unheard (`tandem.fail-ms`).
    pub fail_ms: u64,
}

impl PairTiming {
    /// Defaults that suit two QEMU boards on one loaded host: a board's
    /// clock runs with its instructions, and a host stall of a second or
    /// two (QEMU translating a new kernel path) must not pass for a death.
    pub const DEFAULT: Self = Self {
        heartbeat_ms: 20,
        fail_ms: 2_000,
    };
}

impl Default for PairTiming {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Epoch length used by record, replay and a pair when `tandem.epoch` is
/// not given: 10 million instructions (10 ms of guest time). Timer
/// deadlines are met inside an epoch, and held output waits only for the
/// log before it, so a longer epoch no longer delays either; it costs a
/// backup up to one epoch of re-execution at a takeover. Measured
/// (docs/measurements.md): 215 epochs and 11 KB of log for the default
/// guest's boot and workload at 10M, against 2,133 and 99 KB at 1M.
pub const DEFAULT_EPOCH: u64 = 10_000_000;

/// Parsed options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Options {
    /// Record, replay, or neither.
    pub mode: Mode,
    /// Guest instructions per epoch; 0 = no epochs (free mode only).
    pub epoch: u64,
    /// The seed of the board's random-number source (QEMU `-seed`, which
    /// makes the RNDR the guest can still execute a deterministic PRNG):
    /// part of the pairing digest, so two boards seeded apart refuse to
    /// pair. `None` when not given (record/replay need it: xtask gives it).
    pub seed: Option<u64>,
    /// The link's device (`tandem.link=serial|ethernet`).
    pub link: LinkMedium,
    /// How timer deadlines inside an epoch are met (`tandem.deadline`).
    pub deadlines: Deadlines,
    /// A live pair's failure detection.
    pub timing: PairTiming,
    /// When a primary waits for acknowledgements (`tandem.ack`).
    pub ack: AckPolicy,
    /// What counts epochs (`tandem.epoch-counter`).
    pub epoch_counter: EpochCounterKind,
    /// A simulated overflow skid of up to this many instructions on the
    /// forced step path (`tandem.step-skid`, at most
    /// [`MAX_STEP_SKID`]; 0: none): each board lands its early overflow
    /// where its own clock says, as two real cores would
    /// (`replica::step_to_count::simulated_skid`). Not in the pairing
    /// digest: real boards differ in skid too.
    pub step_skid: u64,
    /// The guest's timer as forced by `tandem.guest-timer` (`None`: as
    /// the core allows, [`GuestTimer::choose`]).
    pub guest_timer: Option<GuestTimer>,
    /// A deliberate failure, honoured only by `test-hooks` builds.
    pub selftest: Option<SelfTest>,
    /// Stop after the banner instead of starting a guest.
    pub banner_only: bool,
}

/// A bad option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionError<'a> {
    Unknown(&'a str),
    BadValue { name: &'a str, value: &'a str },
}

impl fmt::Display for OptionError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::Unknown(w) => write!(f, "unknown option `{w}`"),
            OptionError::BadValue { name, value } => {
                write!(f, "bad value `{value}` for option `tandem.{name}`")
            }
        }
    }
}

fn boolean<'a>(name: &'a str, value: &'a str) -> Result<bool, OptionError<'a>> {
    match value {
        "on" | "1" | "yes" | "true" => Ok(true),
        "off" | "0" | "no" | "false" => Ok(false),
        _ => Err(OptionError::BadValue { name, value }),
    }
}

/// A decimal number, `_` allowed between digits (`10_000_000`).
fn number(s: &str) -> Option<u64> {
    let mut n: u64 = 0;
    let mut digits = 0;
    for c in s.chars() {
        match c {
            '0'..='9' => {
                n = n.checked_mul(10)?.checked_add(c as u64 - '0' as u64)?;
                digits += 1;
            }
            '_' if digits > 0 => {}
            _ => return None,
        }
    }
    (digits > 0).then_some(n)
}

/// Parses the board command line.
///
/// # Errors
/// The first unknown `tandem.*` option or bad value.
pub fn parse(cmdline: &str) -> Result<Options, OptionError<'_>> {
    let mut o = Options::default();
    for word in cmdline.split_ascii_whitespace() {
        let Some(opt) = word.strip_prefix("tandem.") else {
            continue;
        };
        let (name, value) = opt.split_once('=').unwrap_or((opt, "on"));
        match name {
            "seed" => {
                o.seed = Some(number(value).ok_or(OptionError::BadValue { name, value })?);
            }
            "mode" => {
                o.mode = match value {
                    "free" => Mode::Free,
                    "record" => Mode::Record,
                    "replay" => Mode::Replay,
                    "primary" => Mode::Primary,
                    "backup" => Mode::Backup,
                    _ => return Err(OptionError::BadValue { name, value }),
                }
            }
            "link" => {
                o.link = match value {
                    "serial" => LinkMedium::Serial,
                    "ethernet" => LinkMedium::Ethernet,
                    _ => return Err(OptionError::BadValue { name, value }),
                }
            }
            "deadline" => {
                o.deadlines =
                    Deadlines::from_option(value).ok_or(OptionError::BadValue { name, value })?
            }
            "guest-timer" => {
                o.guest_timer = Some(
                    GuestTimer::from_option(value).ok_or(OptionError::BadValue { name, value })?,
                )
            }
            "ack" => {
                o.ack =
                    AckPolicy::from_option(value).ok_or(OptionError::BadValue { name, value })?
            }
            "epoch-counter" => {
                o.epoch_counter = EpochCounterKind::from_option(value)
                    .ok_or(OptionError::BadValue { name, value })?
            }
            "step-skid" => {
                o.step_skid = match number(value) {
                    Some(n) if n <= MAX_STEP_SKID => n,
                    _ => return Err(OptionError::BadValue { name, value }),
                }
            }
            "heartbeat-ms" => {
                o.timing.heartbeat_ms = match number(value) {
                    Some(n) if (1..=10_000).contains(&n) => n,
                    _ => return Err(OptionError::BadValue { name, value }),
                }
            }
            "fail-ms" => {
                o.timing.fail_ms = match number(value) {
                    Some(n) if (10..=600_000).contains(&n) => n,
                    _ => return Err(OptionError::BadValue { name, value }),
                }
            }
            "epoch" => {
                o.epoch = match number(value) {
                    Some(n) if (1_000..=1_000_000_000_000).contains(&n) => n,
                    _ => return Err(OptionError::BadValue { name, value }),
                }
            }
            "banner-only" => o.banner_only = boolean(name, value)?,
            "selftest" => {
                o.selftest = Some(match value {
                    "exception" => SelfTest::Exception,
                    "panic" => SelfTest::Panic,
                    _ => match value.strip_prefix("diverge:").and_then(number) {
                        Some(n) => SelfTest::Diverge(n),
                        None => return Err(OptionError::BadValue { name, value }),
                    },
                })
            }
            _ => return Err(OptionError::Unknown(word)),
        }
    }
    if o.mode != Mode::Free && o.epoch == 0 {
        o.epoch = DEFAULT_EPOCH;
    }
    if o.timing.heartbeat_ms.saturating_mul(4) > o.timing.fail_ms {
        // Fewer than four heartbeats per timeout: one late packet would
        // declare a live peer dead.
        return Err(OptionError::BadValue {
            name: "fail-ms",
            value: "(less than four heartbeat intervals)",
        });
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_options_and_ignores_others() {
        let o = parse("console=ttyAMA0 tandem.seed=42 tandem.selftest=panic tandem.banner-only")
            .unwrap();
        assert!(o.banner_only);
        assert_eq!(o.seed, Some(42));
        assert_eq!(o.selftest, Some(SelfTest::Panic));
        let o = parse("tandem.selftest=diverge:30").unwrap();
        assert_eq!(o.selftest, Some(SelfTest::Diverge(30)));
        assert!(parse("tandem.selftest=diverge:").is_err());
        assert_eq!(parse("").unwrap(), Options::default());
    }

    #[test]
    fn deadlines_inline_by_default_or_at_an_epoch_end() {
        assert_eq!(parse("").unwrap().deadlines, Deadlines::Inline);
        let o = parse("tandem.deadline=epoch-end").unwrap();
        assert_eq!(o.deadlines, Deadlines::EpochEnd);
        assert_eq!(
            parse("tandem.deadline=inline").unwrap().deadlines,
            Deadlines::Inline
        );
        assert!(parse("tandem.deadline=late").is_err());
    }

    #[test]
    fn the_ack_policy_is_the_output_rule_unless_asked() {
        assert_eq!(parse("").unwrap().ack, AckPolicy::Output);
        assert_eq!(parse("tandem.ack=epoch").unwrap().ack, AckPolicy::Epoch);
        assert_eq!(parse("tandem.ack=output").unwrap().ack, AckPolicy::Output);
        assert!(parse("tandem.ack=never").is_err());
    }

    #[test]
    fn a_step_skid_is_a_number_up_to_half_the_margin() {
        assert_eq!(parse("").unwrap().step_skid, 0);
        assert_eq!(parse("tandem.step-skid=100").unwrap().step_skid, 100);
        assert_eq!(
            parse("tandem.step-skid=128").unwrap().step_skid,
            MAX_STEP_SKID
        );
        for bad in ["129", "-1", "x", ""] {
            let w = alloc::format!("tandem.step-skid={bad}");
            assert!(parse(&w).is_err(), "{w}");
        }
    }

    #[test]
    fn the_epoch_counter_is_the_cycle_counter_unless_asked() {
        assert_eq!(parse("").unwrap().epoch_counter, EpochCounterKind::Cycles);
        for k in EpochCounterKind::ALL {
            let o = parse(&alloc::format!("tandem.epoch-counter={}", k.option())).unwrap();
            assert_eq!(o.epoch_counter, k);
        }
        assert!(EpochCounterKind::Steps.steps() && !EpochCounterKind::Cycles.steps());
        assert_eq!(
            parse("tandem.epoch-counter=instructions"),
            Err(OptionError::BadValue {
                name: "epoch-counter",
                value: "instructions"
            })
        );
    }

    #[test]
    fn the_guest_timer_follows_the_core_unless_forced() {
        assert_eq!(parse("").unwrap().guest_timer, None);
        for t in GuestTimer::ALL {
            let o = parse(&alloc::format!("tandem.guest-timer={}", t.option())).unwrap();
            assert_eq!(o.guest_timer, Some(t));
        }
        assert!(parse("tandem.guest-timer=cp15").is_err());
        assert_eq!(GuestTimer::choose(None, true), Ok(GuestTimer::Sysreg));
        assert_eq!(GuestTimer::choose(None, false), Ok(GuestTimer::Mmio));
        let mmio = Some(GuestTimer::Mmio);
        assert_eq!(GuestTimer::choose(mmio, true), Ok(GuestTimer::Mmio));
        assert_eq!(GuestTimer::choose(mmio, false), Ok(GuestTimer::Mmio));
        let sysreg = Some(GuestTimer::Sysreg);
        assert_eq!(GuestTimer::choose(sysreg, true), Ok(GuestTimer::Sysreg));
        assert!(
            GuestTimer::choose(sysreg, false)
                .unwrap_err()
                .contains("FEAT_ECV")
        );
    }

    #[test]
    fn semihosting_is_no_longer_an_option() {
        // It was a door into the host (docs/design.md, "Exit status").
        assert_eq!(
            parse("tandem.semihosting=on"),
            Err(OptionError::Unknown("tandem.semihosting=on"))
        );
    }

    #[test]
    fn modes_and_epochs() {
        let o = parse("tandem.mode=record").unwrap();
        assert_eq!((o.mode, o.epoch), (Mode::Record, DEFAULT_EPOCH));
        let o = parse("tandem.mode=replay tandem.epoch=10_000").unwrap();
        assert_eq!((o.mode, o.epoch), (Mode::Replay, 10_000));
        assert_eq!(parse("tandem.epoch=5000").unwrap().epoch, 5000);
        assert!(parse("tandem.epoch=99999999999999999999999").is_err());
        assert!(parse("tandem.epoch=5").is_err());
        assert!(parse("tandem.epoch=ten").is_err());
        assert!(parse("tandem.mode=mirror").is_err());
    }

    #[test]
    fn pair_options() {
        let o = parse("tandem.mode=backup tandem.link=ethernet tandem.fail-ms=500").unwrap();
        assert_eq!((o.mode, o.link), (Mode::Backup, LinkMedium::Ethernet));
        assert!(o.mode.is_pair() && o.mode.has_link());
        assert_eq!(o.timing.fail_ms, 500);
        assert_eq!(o.timing.heartbeat_ms, PairTiming::DEFAULT.heartbeat_ms);
        assert_eq!(
            parse("tandem.mode=primary").unwrap().link,
            LinkMedium::Serial
        );
        assert!(!Mode::Record.is_pair() && !Mode::Free.has_link());
        assert!(parse("tandem.link=wifi").is_err());
        assert!(parse("tandem.heartbeat-ms=0").is_err());
        // A timeout of fewer than four heartbeats is refused.
        assert!(parse("tandem.heartbeat-ms=100 tandem.fail-ms=300").is_err());
        assert!(parse("tandem.heartbeat-ms=100 tandem.fail-ms=400").is_ok());
    }

    #[test]
    fn rejects_typos_by_name() {
        assert_eq!(
            parse("tandem.bannr-only"),
            Err(OptionError::Unknown("tandem.bannr-only"))
        );
        assert_eq!(
            parse("tandem.seed=maybe"),
            Err(OptionError::BadValue {
                name: "seed",
                value: "maybe"
            })
        );
    }
}
