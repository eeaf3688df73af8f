//! Outcomes, refusals and link counters in words, and the board's own
//! console lines worth quoting in an error.

use crate::runner::Outcome;
use replication_link::{Refusal, Stats};

/// How the board's run ended, in words.
pub fn describe_outcome(out: &Outcome) -> String {
    out.describe()
}

/// Whether the board stopped by itself with status 0 (its exit record
/// says so: a QEMU terminated by a signal exits 0 without one).
pub fn finished(out: &Outcome) -> bool {
    out.exit_code() == Some(0)
}

/// A refusal in words: for a configuration, which lanes differ (the
/// configuration digest's layout is `el2_hypervisor::replica::digest`'s).
pub fn describe_refusal(r: &Refusal) -> String {
    match r {
        Refusal::Configuration { ours, theirs } => {
            use el2_hypervisor::replica::digest::PairingConfig;
            PairingConfig::from_digest(ours)
                .differences(&PairingConfig::from_digest(theirs))
                .to_string()
        }
        other => other.to_string(),
    }
}

/// The host link's counters, in words.
pub fn describe_stats(s: &Stats) -> String {
    format!(
        "{} packets sent, {} received, {} retransmission timeouts, {} duplicates, {} gaps, {} rejected",
        s.packets_sent, s.packets_received, s.retransmissions, s.duplicates, s.gaps, s.rejected
    )
}

/// The board's own lines about the link, the replay and failures (for
/// error messages). A line the board printed while the guest was in the
/// middle of one is found inside it and cut from its start.
pub fn board_report(console: &str) -> Vec<&str> {
    const STARTS: [&str; 5] = [
        "replay:",
        "record:",
        "hypervisor: link:",
        "hypervisor: bad",
        "hypervisor: recorded",
    ];
    console
        .lines()
        .map(str::trim_end)
        .filter_map(|l| {
            let at = STARTS.iter().filter_map(|p| l.find(p)).min();
            match at {
                Some(i) => Some(&l[i..]),
                None if l.contains("PANIC") || l.contains("panicked") => Some(l),
                None => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn board_report_finds_lines_inside_guest_lines() {
        let console = "[    0.000000] efi: x\n[    0.000000]replay: divergence at epoch 19 count 5\n\
            hypervisor: link: paired with a Replayer\nreplay: stopped\nguest replay: no\n";
        assert_eq!(
            board_report(console),
            [
                "replay: divergence at epoch 19 count 5",
                "hypervisor: link: paired with a Replayer",
                "replay: stopped",
                "replay: no",
            ]
        );
    }

    #[test]
    fn only_the_exit_record_says_the_board_finished() {
        let mut out = Outcome {
            qemu_exit: Some(0),
            record: Some(Some(0)),
            timed_out: false,
            console: "hypervisor: the guest powered off\n".into(),
            wall: Duration::ZERO,
            lines: vec![],
            peak_rss_kib: None,
            cpu: Default::default(),
        };
        assert!(finished(&out));
        assert_eq!(
            describe_outcome(&out),
            "the board stopped with status 0 (finished)"
        );
        // QEMU terminated by a signal exits 0, but the board wrote no record.
        out.record = None;
        assert!(!finished(&out));
        assert!(describe_outcome(&out).contains("without the board's exit record"));
    }
}
