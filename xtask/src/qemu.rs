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
