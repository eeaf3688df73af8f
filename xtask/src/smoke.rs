//! The QEMU smoke scenarios (`ci/smoke.toml`, expected console lines in
//! `ci/expect/`), run by `cargo xtask test`.
//!
//! An expect file lists lines that must appear in the console, in order
//! (each as a substring of one console line); `${NAME}` in it is replaced
//! by a value xtask computes (e.g. the workload's answer), so nothing is
//! hard-coded that the run could get wrong. A scenario whose success is a
//! failure (a deliberate exception) says so with its `exit_code`.

use crate::image::{Image, ImageKind};
use crate::qemu::Vars;
use crate::runner::{BoardRun, run};
use crate::{guest, paths};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub scenario: Vec<Scenario>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// What the scenario shows, printed on failure.
    pub about: String,
    #[serde(default = "default_config")]
    pub config: String,
    /// `release` or `test-hooks`.
    #[serde(default = "default_image")]
    pub image: String,
    #[serde(default = "default_cpu")]
    pub cpu: String,
    #[serde(default = "default_gic")]
    pub gic: u8,
    #[serde(default = "default_memory")]
    pub memory: String,
    #[serde(default)]
    pub board_cmdline: String,
    /// Boot the default guest (its bundle as the board's initrd).
    #[serde(default)]
    pub guest: bool,
    /// Boot the in-repo bare-metal test guest (`test-guest/`) instead.
    #[serde(default)]
    pub test_guest: bool,
    /// The test guest's command line (its bundle is built for the
    /// scenario), e.g. `test-guest.stop=reset`.
    #[serde(default)]
    pub guest_cmdline: Option<String>,
    /// Flip one byte of the guest kernel inside the bundle (its header,
    /// and so the image hash it claims, untouched).
    #[serde(default)]
    pub damage_bundle: bool,
    /// Give the board this device tree instead of QEMU's: `bare` is a valid
    /// tree with nothing in it but what QEMU needs to fill in (cells,
    /// `/chosen`; QEMU adds the memory): no GIC, no UART.
    #[serde(default)]
    pub dtb: Option<String>,
    /// The guest prints `expected trap counts: kind=N ...`: the
    /// hypervisor's counts must equal them.
    #[serde(default)]
    pub traps_match_guest: bool,
    pub exit_code: i32,
    /// File in `ci/expect/`.
    pub expect: String,
    /// Substrings that must not appear anywhere.
    #[serde(default)]
    pub forbid: Vec<String>,
    /// Host files that must not exist after the run (removed before it):
    /// what a guest that escaped to the host would create.
    #[serde(default)]
    pub absent_files: Vec<String>,
    /// Trap kinds whose count on the `hypervisor: traps:` line must be > 0.
    #[serde(default)]
    pub nonzero_traps: Vec<String>,
    /// Trap kinds whose count on that line must be 0.
    #[serde(default)]
    pub zero_traps: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
}

fn default_config() -> String {
    "virt".into()
}
fn default_image() -> String {
    "release".into()
}
fn default_cpu() -> String {
    "max".into()
}
fn default_gic() -> u8 {
    3
}
fn default_memory() -> String {
    "512M".into()
}
fn default_timeout() -> u64 {
    60
}

pub fn load() -> Result<Suite> {
    let path = paths::root().join("ci").join("smoke.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Values that expect files may use.
pub fn expect_vars() -> BTreeMap<&'static str, String> {
    let mut v = BTreeMap::new();
    v.insert(
        "WORKLOAD_RESULT",
        guest::expected_workload_result().to_string(),
    );
    v
}

/// Checks `console` against an expect file's text. Returns the first
/// expected line not found (after the previous one matched).
pub fn check_expect(
    expect: &str,
    console: &str,
    vars: &BTreeMap<&'static str, String>,
) -> Result<(), String> {
    let lines: Vec<&str> = console.lines().collect();
    let mut at = 0;
    for raw in expect.lines() {
        let want = raw.trim_end();
        if want.trim().is_empty() || want.trim_start().starts_with('#') {
            continue;
        }
        let mut want = want.to_string();
        for (k, v) in vars {
            want = want.replace(&format!("${{{k}}}"), v);
        }
        match lines[at..].iter().position(|l| line_matches(l, &want)) {
            Some(i) => at += i + 1,
            None => return Err(want),
        }
    }
    Ok(())
}

/// The text an expect line may use for "any characters" within one line.
pub const ANY: &str = "${*}";

/// Whether `line` holds `want`: its pieces between [`ANY`]s, in order, the
/// whole as a whole value: where `want` begins (ends) with a letter or
/// digit, the line must not continue a word or number there, so
/// `result 905564` does not accept `result 9055641` (a piece next to an
/// [`ANY`] may, by asking for it: `pmu=v3${*}`).
fn line_matches(line: &str, want: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let pieces: Vec<&str> = want.split(ANY).collect();
    let last = pieces.len() - 1;
    let mut from = 0;
    for (n, piece) in pieces.iter().enumerate() {
        if piece.is_empty() {
            continue;
        }
        let found = line[from..].match_indices(piece).find(|&(i, _)| {
            let (start, end) = (from + i, from + i + piece.len());
            let joins_before =
                n == 0 && word(piece.chars().next()) && word(line[..start].chars().next_back());
            let joins_after =
                n == last && word(piece.chars().next_back()) && word(line[end..].chars().next());
            !joins_before && !joins_after
        });
        match found {
            Some((i, _)) => from += i + piece.len(),
            None => return false,
        }
    }
    true
}

/// `target/tandem/smoke`, made if need be.
fn smoke_dir() -> Result<std::path::PathBuf> {
    let dir = paths::out_dir().join("smoke");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The test guest's bundle for a scenario: the suite's, or one with the
/// scenario's command line; with one kernel byte flipped if it asks for a
/// damaged bundle (the header, and the image hash it claims, untouched).
fn test_guest_bundle(s: &Scenario, inputs: &Inputs) -> Result<std::path::PathBuf> {
    let missing = || anyhow::anyhow!("this scenario needs the test guest");
    let bundle = match &s.guest_cmdline {
        None => inputs.test_guest_bundle.clone().ok_or_else(missing)?,
        Some(cmdline) => {
            let kernel = inputs.test_guest_kernel.as_ref().ok_or_else(missing)?;
            let bundle = smoke_dir()?.join(format!("{}.bundle", s.name));
            guest::write_bundle(kernel, None, cmdline, &bundle)?;
            bundle
        }
    };
    if !s.damage_bundle {
        return Ok(bundle);
    }
    let mut bytes = std::fs::read(&bundle)?;
    // The kernel is the first part, at its offset in the file.
    let at = el2_hypervisor::guest::bundle::KERNEL_OFFSET as usize + 64;
    anyhow::ensure!(bytes.len() > at, "the bundle is too short to damage");
    bytes[at] ^= 0x01;
    let damaged = smoke_dir()?.join(format!("{}.damaged.bundle", s.name));
    std::fs::write(&damaged, bytes)?;
    Ok(damaged)
}

/// A device tree with nothing a board needs: the root's cells and an empty
/// `/chosen`, which QEMU requires to add the memory and command line.
fn bare_dtb() -> Result<Vec<u8>> {
    let mut w = vm_fdt::FdtWriter::new()?;
    let root = w.begin_node("")?;
    w.property_u32("#address-cells", 2)?;
    w.property_u32("#size-cells", 2)?;
    w.property_string("compatible", "linux,dummy-virt")?;
    let chosen = w.begin_node("chosen")?;
    w.end_node(chosen)?;
    w.end_node(root)?;
    Ok(w.finish()?)
}

/// The images and guest a suite needs.
pub struct Inputs {
    pub release: Image,
    pub test_hooks: Image,
    pub bundle: Option<std::path::PathBuf>,
    pub test_guest_bundle: Option<std::path::PathBuf>,
    /// The test guest's kernel, for scenarios with their own command line.
    pub test_guest_kernel: Option<std::path::PathBuf>,
}

/// Runs every scenario whose name contains `filter`; returns (passed, failed).
pub fn run_suite(suite: &Suite, inputs: &Inputs, filter: Option<&str>) -> Result<(usize, usize)> {
    let vars = expect_vars();
    let (mut passed, mut failed) = (0, 0);
    for s in &suite.scenario {
        if filter.is_some_and(|f| !s.name.contains(f)) {
            continue;
        }
        match run_one(s, inputs, &vars) {
            Ok(wall) => {
                passed += 1;
                println!("smoke {} ... ok ({:.1} s)", s.name, wall.as_secs_f64());
            }
            Err(e) => {
                failed += 1;
                println!("smoke {} ... FAILED\n  about: {}\n  {e:#}", s.name, s.about);
            }
        }
    }
    Ok((passed, failed))
}

fn run_one(
    s: &Scenario,
    inputs: &Inputs,
    vars: &BTreeMap<&'static str, String>,
) -> Result<Duration> {
    let image = match s.image.as_str() {
        "release" => &inputs.release,
        "test-hooks" => &inputs.test_hooks,
        other => bail!("unknown image `{other}` (release, test-hooks)"),
    };
    let mut v = Vars::new();
    v.insert("IMAGE".into(), image.bin.display().to_string());
    v.insert("GIC".into(), s.gic.to_string());
    v.insert("CPU".into(), s.cpu.clone());
    v.insert("MEM".into(), s.memory.clone());
    crate::qemu::set_board_cmdline(&mut v, crate::qemu::DEFAULT_SEED, &s.board_cmdline);
    if s.guest {
        let bundle = inputs
            .bundle
            .as_ref()
            .context("this scenario needs the guest bundle")?;
        v.insert("BUNDLE".into(), bundle.display().to_string());
    }
    if s.test_guest {
        let bundle = test_guest_bundle(s, inputs)?;
        v.insert("BUNDLE".into(), bundle.display().to_string());
    }
    match s.dtb.as_deref() {
        None => {}
        Some("bare") => {
            let path = smoke_dir()?.join("bare.dtb");
            std::fs::write(&path, bare_dtb()?)?;
            v.insert("DTB".into(), path.display().to_string());
        }
        Some(other) => bail!("unknown dtb `{other}` (bare)"),
    }
    let transcript = paths::out_dir()
        .join("smoke")
        .join(format!("{}.console.txt", s.name));
    for f in &s.absent_files {
        match std::fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("cannot remove {f} before the run: {e}"),
        }
    }
    let out = run(&BoardRun {
        config: &s.config,
        vars: v,
        elf: Some(&image.elf),
        timeout: Duration::from_secs(s.timeout_s),
        echo: false,
        interactive: false,
        transcript: transcript.clone(),
        extra_args: vec![],
    })?;
    let expect_path = paths::root().join("ci").join("expect").join(&s.expect);
    let expect = std::fs::read_to_string(&expect_path)
        .with_context(|| format!("reading {}", expect_path.display()))?;
    let keep = || format!("console kept in {}", transcript.display());
    if out.timed_out {
        bail!("timed out after {} s; {}", s.timeout_s, keep());
    }
    if let Some(f) = s
        .absent_files
        .iter()
        .find(|f| std::path::Path::new(f).exists())
    {
        bail!(
            "{f} exists after the run: the guest reached the host; {}",
            keep()
        );
    }
    if out.exit_code() != Some(s.exit_code) {
        bail!(
            "{}, expected status {}; {}",
            out.describe(),
            s.exit_code,
            keep()
        );
    }
    if let Err(line) = check_expect(&expect, &out.console, vars) {
        bail!(
            "expected console line not found (in order): `{line}`; {}",
            keep()
        );
    }
    if let Some(bad) = s.forbid.iter().find(|f| out.console.contains(f.as_str())) {
        bail!("forbidden text found: `{bad}`; {}", keep());
    }
    if !s.nonzero_traps.is_empty() || !s.zero_traps.is_empty() {
        let counts =
            trap_counts(&out.console).with_context(|| format!("no `traps:` line; {}", keep()))?;
        for kind in &s.nonzero_traps {
            match counts.get(kind.as_str()) {
                Some(n) if *n > 0 => {}
                Some(_) => bail!("trap count `{kind}` is 0; {}", keep()),
                None => bail!("trap kind `{kind}` missing from the traps line; {}", keep()),
            }
        }
        for kind in &s.zero_traps {
            match counts.get(kind.as_str()) {
                Some(0) => {}
                Some(n) => bail!("trap count `{kind}` is {n}, not 0; {}", keep()),
                None => bail!("trap kind `{kind}` missing from the traps line; {}", keep()),
            }
        }
    }
    if s.traps_match_guest {
        let want = out
            .console
            .lines()
            .find_map(|l| l.split_once("expected trap counts:").map(|(_, r)| r))
            .with_context(|| {
                format!(
                    "the guest printed no `expected trap counts:` line; {}",
                    keep()
                )
            })?;
        let counts =
            trap_counts(&out.console).with_context(|| format!("no `traps:` line; {}", keep()))?;
        for (kind, n) in want.split_whitespace().filter_map(|kv| kv.split_once('=')) {
            let n: u64 = n.parse().with_context(|| format!("bad count `{n}`"))?;
            match counts.get(kind) {
                Some(&got) if got == n => {}
                got => bail!(
                    "trap count `{kind}`: the guest expects {n}, the hypervisor counted {got:?}; {}",
                    keep()
                ),
            }
        }
    }
    Ok(out.wall)
}

/// Parses the hypervisor's `traps: kind=N ...` line.
pub fn trap_counts(console: &str) -> Option<BTreeMap<String, u64>> {
    let line = console
        .lines()
        .rev()
        .find_map(|l| l.split_once("traps:").map(|(_, r)| r))?;
    Some(
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect(),
    )
}

/// Which images a suite needs built.
pub fn kinds() -> [ImageKind; 2] {
    [ImageKind::VIRT, ImageKind::VIRT_TEST_HOOKS]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_lines_match_in_order() {
        let vars = BTreeMap::from([("X", "42".to_string())]);
        let console = "a\nresult 42\nb\n";
        assert!(check_expect("a\n# comment\nresult ${X}\n", console, &vars).is_ok());
        assert_eq!(check_expect("b\na\n", console, &vars), Err("a".into()));
        assert_eq!(
            check_expect("result 43\n", console, &vars),
            Err("result 43".into())
        );
    }

    #[test]
    fn expect_lines_match_whole_values_only() {
        let v = BTreeMap::new();
        let console = "tandem-guest: workload result 9055641\nirq=12 smc=3\n";
        assert!(check_expect("workload result 905564", console, &v).is_err());
        assert!(check_expect("workload result 9055641", console, &v).is_ok());
        assert!(check_expect("irq=1", console, &v).is_err());
        assert!(check_expect("q=12", console, &v).is_err());
        assert!(check_expect("irq=12", console, &v).is_ok());
        // Punctuation at either end needs no boundary.
        assert!(check_expect(": workload", console, &v).is_ok());
    }

    #[test]
    fn any_matches_within_one_line() {
        let v = BTreeMap::new();
        let console = "*** panic at boot.rs:77:34: selftest: deliberate panic\nnext\n";
        assert!(
            check_expect(
                "panic at boot.rs:${*}: selftest: deliberate panic",
                console,
                &v
            )
            .is_ok()
        );
        assert!(check_expect("panic at boot.rs:${*}: other", console, &v).is_err());
        // Pieces keep their order.
        assert!(check_expect("deliberate${*}panic at", console, &v).is_err());
        assert!(check_expect("boot.rs${*}next", console, &v).is_err());
        // Next to `${*}` a piece may continue a word: it asked for more.
        assert!(check_expect("panic at boo${*}", console, &v).is_ok());
        assert!(check_expect("panic at boo", console, &v).is_err());
    }

    #[test]
    fn trap_line_parses() {
        let c = trap_counts("x\nhypervisor: traps: counter-read=3 wfi=0 total=3\n").unwrap();
        assert_eq!(c["counter-read"], 3);
        assert_eq!(c["wfi"], 0);
        assert!(trap_counts("nothing").is_none());
    }

    #[test]
    fn the_checked_in_suite_parses_and_its_expect_files_exist() {
        let suite = load().unwrap();
        assert!(!suite.scenario.is_empty());
        for s in &suite.scenario {
            assert!(
                paths::root().join("ci/expect").join(&s.expect).exists(),
                "{}",
                s.expect
            );
            assert!(
                paths::root()
                    .join("qemu-configs")
                    .join(format!("{}.args", s.config))
                    .exists()
            );
        }
    }
}
