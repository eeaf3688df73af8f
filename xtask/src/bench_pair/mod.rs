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
    /// Runs of each configuration (interleaved rounds; the median row).
    pub runs: usize,
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
    let mut configs = o.configs.clone();
    configs.sort();
    configs.dedup();
    // Every (configuration, epoch, acking policy) to run.
    let mut keys: Vec<(Config, Option<u64>, Option<&str>)> = Vec::new();
    for &c in &configs {
        if !c.has_epochs() {
            keys.push((c, None, None));
            continue;
        }
        for &e in &o.epochs {
            match (&o.acks, c.is_pair()) {
                (Some(list), true) => {
                    keys.extend(list.iter().map(|a| (c, Some(e), Some(a.as_str()))))
                }
                _ => keys.push((c, Some(e), None)),
            }
        }
    }
    // Rounds of every key in turn, so that a slow spell of the machine
    // falls on all configurations alike rather than on one.
    let mut samples: Vec<Vec<Row>> = vec![Vec::new(); keys.len()];
    for round in 1..=o.runs {
        if o.runs > 1 {
            crate::util::step(&format!("bench pair: round {round} of {}", o.runs));
        }
        for (k, &(c, e, ack)) in keys.iter().enumerate() {
            samples[k].push(ctx.run(c, e, ack)?);
        }
    }
    let rows: Vec<Row> = samples.into_iter().filter_map(table::median).collect();
    let failover = if o.failover {
        Some(ctx.failover()?)
    } else {
        None
    };
    println!("{}", ctx.heading(o.runs));
    for line in table::table(&rows) {
        println!("{line}");
    }
    if let Some(c) = table::cpu_line(&rows) {
        println!("{c}");
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
