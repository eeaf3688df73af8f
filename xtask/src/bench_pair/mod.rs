//! `cargo xtask bench pair`: the same guest (the default guest's boot and
//! its CPU-bound workload) run side by side in one invocation as QEMU bare
//! at EL1, the hypervisor alone, the hypervisor with epochs and no link,
//! recording to a file, a pair over Ethernet and a pair over serial, at
//! several epoch lengths; a table, QEMU's peak memory, a failover figure
//! from one primary kill, a plot in `docs/`, and one last line. Figures
//! are printed, never asserted: a benchmark, not a test.
//!
//! | module | job |
//! | --- | --- |
//! | [`table`] | the rows and how they print, the last line |
//! | [`plot`] | the SVG plot of overhead and log size against epoch length |
//! | [`runs`] | running each configuration and reading its figures |

pub mod plot;
pub mod runs;
pub mod table;

use anyhow::Result;
use table::{Config, DEFAULT_EPOCH, Row};

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub configs: Vec<Config>,
    pub epochs: Vec<u64>,
    /// Acking policies to run each pair with, passed as `tandem.ack=P`;
    /// `None`: the boards' default (the output rule), no option passed.
    pub acks: Option<Vec<String>>,
    /// Kill the primary of one Ethernet pair, for the failover figure.
    pub failover: bool,
    /// Where the plot goes (`None`: no plot).
    pub plot: Option<std::path::PathBuf>,
}

impl BenchOptions {
    /// `--quick`: the workload's configurations at the default epoch only,
    /// no failover run, no plot.
    pub fn quick(mut self) -> Self {
        self.epochs = vec![DEFAULT_EPOCH];
        self.failover = false;
        self.plot = None;
        self
    }
}

/// Runs the benchmark and prints it; the last line printed is
/// [`table::last_line`].
pub fn run(o: &BenchOptions) -> Result<()> {
    let ctx = runs::Context::new()?;
    let mut rows: Vec<Row> = Vec::new();
    let mut configs = o.configs.clone();
    configs.sort();
    configs.dedup();
    for &c in &configs {
        if !c.has_epochs() {
            rows.push(ctx.run(c, None, None)?);
            continue;
        }
        for &e in &o.epochs {
            let acks: Vec<Option<&str>> = match (&o.acks, c.is_pair()) {
                (Some(list), true) => list.iter().map(|a| Some(a.as_str())).collect(),
                _ => vec![None],
            };
            for ack in acks {
                rows.push(ctx.run(c, Some(e), ack)?);
            }
        }
    }
    let failover = if o.failover {
        Some(ctx.failover()?)
    } else {
        None
    };
    println!("{}", ctx.heading());
    for line in table::table(&rows) {
        println!("{line}");
    }
    if let Some(m) = table::memory_line(&rows) {
        println!("{m}");
    }
    if let Some(f) = failover {
        println!("{}", table::failover_line(&f));
    }
    if let Some(path) = &o.plot
        && plot::write(&rows, path)?
    {
        println!("plot: {}", path.display());
    }
    println!("{}", table::last_line(&rows));
    Ok(())
}
