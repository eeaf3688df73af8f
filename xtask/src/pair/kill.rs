//! `--kill WHO@WHEN`: which board of a pair to SIGKILL, and when.

use anyhow::{Result, anyhow, bail};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A board of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Who {
    Primary,
    Backup,
}

impl Who {
    pub const BOTH: [Who; 2] = [Who::Primary, Who::Backup];

    pub fn name(self) -> &'static str {
        match self {
            Who::Primary => "primary",
            Who::Backup => "backup",
        }
    }
    pub fn index(self) -> usize {
        match self {
            Who::Primary => 0,
            Who::Backup => 1,
        }
    }
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When to kill, as given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum When {
    /// Once the board says it is in this epoch (its status lines, at a
    /// boundary at least 20 ms of board time after the last one: the kill
    /// lands at that epoch or a little after).
    Epoch(u64),
    /// This long after both boards started.
    After(Duration),
    /// An epoch chosen from the seed.
    Random,
}

/// One `--kill`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KillSpec {
    pub who: Who,
    pub when: When,
}

impl FromStr for KillSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let usage = "expected primary|backup @ epoch=N | after=SECONDS | random";
        let (who, when) = s.split_once('@').ok_or_else(|| anyhow!("`{s}`: {usage}"))?;
        let who = match who {
            "primary" => Who::Primary,
            "backup" => Who::Backup,
            _ => bail!("`{s}`: no board `{who}` ({usage})"),
        };
        let when = if when == "random" {
            When::Random
        } else if let Some(n) = when.strip_prefix("epoch=") {
            When::Epoch(
                n.replace('_', "")
                    .parse()
                    .map_err(|_| anyhow!("`{s}`: bad epoch `{n}`"))?,
            )
        } else if let Some(t) = when.strip_prefix("after=") {
            let secs: f64 = t
                .parse()
                .map_err(|_| anyhow!("`{s}`: bad number of seconds `{t}`"))?;
            if !(0.0..=86_400.0).contains(&secs) {
                bail!("`{s}`: seconds out of range");
            }
            When::After(Duration::from_secs_f64(secs))
        } else {
            bail!("`{s}`: {usage}");
        };
        Ok(Self { who, when })
    }
}

impl fmt::Display for KillSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.when {
            When::Epoch(n) => write!(f, "{}@epoch={n}", self.who),
            When::After(d) => write!(f, "{}@after={}", self.who, d.as_secs_f64()),
            When::Random => write!(f, "{}@random", self.who),
        }
    }
}

/// A kill with its moment fixed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trigger {
    Epoch(u64),
    After(Duration),
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Epoch(n) => write!(f, "at epoch {n}"),
            Trigger::After(d) => write!(f, "{:.1} s after the start", d.as_secs_f64()),
        }
    }
}

/// Guest instructions over which `random` chooses: most of the default
/// guest's run (its boot and workload take about 2.1 billion; see
/// docs/pair.md), so that the kill lands before it ends.
pub const RANDOM_SPAN_INSTRUCTIONS: u64 = 2_000_000_000;

/// Fixes a kill's moment: `random` becomes an epoch from `seed`, at least
/// the tenth of the span, so that the pair has paired and booted a little.
pub fn resolve(spec: KillSpec, seed: u64, epoch_len: u64) -> Trigger {
    match spec.when {
        When::Epoch(n) => Trigger::Epoch(n),
        When::After(d) => Trigger::After(d),
        When::Random => {
            let span = (RANDOM_SPAN_INSTRUCTIONS / epoch_len.max(1)).max(10);
            let salt = match spec.who {
                Who::Primary => 0x7072_696d,
                Who::Backup => 0x6261_636b,
            };
            let lo = span / 10;
            Trigger::Epoch(lo + splitmix64(seed ^ salt) % (span - lo))
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): one well-mixed value per seed.
pub fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let k: KillSpec = "primary@epoch=1_200".parse().unwrap();
        assert_eq!((k.who, k.when), (Who::Primary, When::Epoch(1200)));
        let k: KillSpec = "backup@after=2.5".parse().unwrap();
        assert_eq!(k.when, When::After(Duration::from_millis(2500)));
        let k: KillSpec = "backup@random".parse().unwrap();
        assert_eq!(k.to_string(), "backup@random");
        for bad in [
            "primary",
            "witness@random",
            "primary@epoch=x",
            "primary@after=-1",
            "primary@soon",
        ] {
            assert!(bad.parse::<KillSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn random_is_seeded_and_in_range() {
        let k: KillSpec = "primary@random".parse().unwrap();
        let a = resolve(k, 7, 1_000_000);
        assert_eq!(a, resolve(k, 7, 1_000_000));
        let epochs: Vec<u64> = (0..50)
            .map(|s| match resolve(k, s, 1_000_000) {
                Trigger::Epoch(e) => e,
                Trigger::After(_) => unreachable!(),
            })
            .collect();
        assert!(epochs.iter().all(|&e| (200..2_000).contains(&e)));
        // Different seeds choose different epochs.
        assert!(epochs.iter().any(|&e| e != epochs[0]));
    }
}
