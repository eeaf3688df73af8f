//! QEMU command lines, kept in `qemu-configs/*.args`.
//!
//! A config file has one option per line, `-flag value` (the value is the
//! rest of the line, spaces included), `#` comments, and `${NAME}`
//! variables. A line whose variables are all empty or unset is dropped, so
//! optional parts (`-initrd ${BUNDLE}`) need no conditionals.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;

/// Variables for a config.
pub type Vars = BTreeMap<String, String>;

/// Expands a config's text into arguments.
///
/// # Errors
/// A line that uses a variable in a malformed way (`${` without `}`).
pub fn expand(text: &str, vars: &Vars) -> Result<Vec<String>> {
    let mut args = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (flag, value) = match line.split_once(char::is_whitespace) {
            Some((f, v)) => (f, Some(v.trim())),
            None => (line, None),
        };
        let mut used = 0;
        let mut empty = 0;
        let mut subst = |s: &str| -> Result<String> {
            let mut out = String::new();
            let mut rest = s;
            while let Some(i) = rest.find("${") {
                out.push_str(&rest[..i]);
                let Some(j) = rest[i..].find('}') else {
                    bail!("line {}: `${{` without `}}`", n + 1)
                };
                let name = &rest[i + 2..i + j];
                used += 1;
                match vars.get(name).filter(|v| !v.is_empty()) {
                    Some(v) => out.push_str(v),
                    None => empty += 1,
                }
                rest = &rest[i + j + 1..];
            }
            out.push_str(rest);
            Ok(out)
        };
        let flag = subst(flag)?;
        let value = value.map(&mut subst).transpose()?;
        if used > 0 && used == empty {
            continue;
        }
        args.push(flag);
        args.extend(value);
    }
    Ok(args)
}

/// Reads and expands `qemu-configs/<name>.args`.
pub fn config(name: &str, vars: &Vars) -> Result<Vec<String>> {
    let path = crate::paths::root()
        .join("qemu-configs")
        .join(format!("{name}.args"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    expand(&text, vars).with_context(|| format!("in {}", path.display()))
}

/// The random-number seed a board gets unless told otherwise (`--seed`).
pub const DEFAULT_SEED: u64 = 1;

/// Sets what every board config needs for the hypervisor's command line:
/// `SEED` (QEMU `-seed`) and `BOARD_CMDLINE`, which starts with the same
/// seed as `tandem.seed` (so that it enters the pairing digest) followed
/// by `options`.
pub fn set_board_cmdline(vars: &mut Vars, seed: u64, options: &str) {
    vars.insert("SEED".into(), seed.to_string());
    vars.insert(
        "BOARD_CMDLINE".into(),
        crate::board_options::board_cmdline(seed, options),
    );
}

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-aarch64";

/// QEMU's version as (major, minor), if it runs.
pub fn version() -> Option<(u32, u32)> {
    let out = std::process::Command::new(QEMU)
        .arg("--version")
        .output()
        .ok()?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_version(s: &str) -> Option<(u32, u32)> {
    let v = s.split("version ").nth(1)?;
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// True if `path` exists (used to give clear errors before QEMU starts).
pub fn require(path: &Path, what: &str) -> Result<()> {
    if !path.exists() {
        bail!("{what} not found at {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(kv: &[(&str, &str)]) -> Vars {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expands_and_drops_empty_lines() {
        let text = "# comment\n-M virt,gic-version=${GIC}\n-initrd ${BUNDLE}\n-append ${A} x\n-nodefaults\n";
        let args = expand(text, &vars(&[("GIC", "3"), ("A", "a b")])).unwrap();
        assert_eq!(
            args,
            [
                "-M",
                "virt,gic-version=3",
                "-append",
                "a b x",
                "-nodefaults"
            ]
        );
    }

    #[test]
    fn board_configs_carry_the_seed_twice_and_no_semihosting() {
        let mut v = vars(&[
            ("IMAGE", "hv.bin"),
            ("GIC", "3"),
            ("CPU", "max"),
            ("MEM", "1G"),
        ]);
        v.insert("LINK_SOCK".into(), "/tmp/s".into());
        set_board_cmdline(&mut v, 77, "tandem.mode=record");
        for name in ["virt", "virt-link", "virt-gdb"] {
            let args = config(name, &v).unwrap();
            let at = |flag: &str| args.iter().position(|a| a == flag);
            let seed = at("-seed").unwrap_or_else(|| panic!("{name}: no -seed"));
            assert_eq!(args[seed + 1], "77", "{name}");
            let append = at("-append").unwrap();
            assert_eq!(
                args[append + 1],
                "tandem.seed=77 tandem.mode=record",
                "{name}"
            );
            assert!(
                !args.iter().any(|a| a.contains("semihosting")),
                "{name} enables semihosting: {args:?}"
            );
        }
    }

    #[test]
    fn malformed_variable_is_an_error() {
        assert!(expand("-m ${MEM\n", &Vars::new()).is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds)"),
            Some((10, 0))
        );
        assert_eq!(parse_version("garbage"), None);
    }
}
