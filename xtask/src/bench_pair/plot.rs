//! The plot of `cargo xtask bench pair`: the workload's overhead (against
//! the hypervisor alone) and the log's size (bytes per guest second)
//! against the epoch length, one line per configuration, as SVG.

use super::table::{Config, Row};
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::path::Path;

const COLOURS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
];

/// One line: a configuration's points (epoch length, value), by length.
type Series = (Config, Vec<(u64, f64)>);

fn series(rows: &[Row], value: impl Fn(&Row) -> Option<f64>) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for r in rows.iter().filter(|r| r.config.has_epochs()) {
        // One point per length: the output rule's if a pair ran both policies.
        if r.ack.as_deref().is_some_and(|a| a != "output") {
            continue;
        }
        let (Some(e), Some(v)) = (r.epoch, value(r)) else {
            continue;
        };
        match out.iter_mut().find(|(c, _)| *c == r.config) {
            Some((_, pts)) => pts.push((e, v)),
            None => out.push((r.config, vec![(e, v)])),
        }
    }
    for (_, pts) in out.iter_mut() {
        pts.sort_by_key(|p| p.0);
    }
    out
}

/// Writes the plot to `path` (two panels, stacked). Nothing to plot (no
/// run with epochs) is not an error: no file is written, `false`.
///
/// # Errors
/// The file cannot be written.
pub fn write(rows: &[Row], path: &Path) -> Result<bool> {
    let hyp = rows
        .iter()
        .find(|r| r.config == Config::Hyp)
        .map(|r| r.workload.as_secs_f64());
    let overhead = series(rows, |r| {
        hyp.map(|h| r.workload.as_secs_f64() / h.max(1e-9))
    });
    let log = series(rows, |r| r.log_per_guest_second());
    let lengths: Vec<u64> = overhead
        .iter()
        .chain(log.iter())
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .collect();
    let (Some(&lo), Some(&hi)) = (lengths.iter().min(), lengths.iter().max()) else {
        return Ok(false);
    };
    let x = (lo as f64 / 2.0)..(hi as f64 * 2.0);
    let root = SVGBackend::new(path, (800, 720)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| anyhow!("plotting {}: {e:?}", path.display());
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = root.split_vertically(360);
    panel(
        &top,
        "workload time / hypervisor alone",
        x.clone(),
        &overhead,
        false,
    )
    .map_err(|e| anyhow!("plotting {}: {e}", path.display()))?;
    panel(&bottom, "log bytes per guest second", x, &log, true)
        .map_err(|e| anyhow!("plotting {}: {e}", path.display()))?;
    root.present().map_err(err)?;
    Ok(true)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x: std::ops::Range<f64>,
    data: &[Series],
    log_y: bool,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("{e:?}");
    let values = data.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let top = values.clone().fold(0.0f64, f64::max).max(1.0) * 1.2;
    let bottom = values.fold(f64::INFINITY, f64::min).min(1.0);
    let mut chart = ChartBuilder::on(area);
    chart
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64);
    let x = x.log_scale();
    macro_rules! draw {
        ($chart:expr) => {{
            let mut c = $chart;
            c.configure_mesh()
                .x_desc("epoch length (guest instructions)")
                .x_label_formatter(&|v| format!("{v:.0e}"))
                .draw()
                .map_err(e)?;
            for (i, (config, pts)) in data.iter().enumerate() {
                let colour = COLOURS[i % COLOURS.len()];
                let pts: Vec<(f64, f64)> = pts.iter().map(|&(e, v)| (e as f64, v)).collect();
                c.draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
                    .map_err(e)?
                    .label(config.name())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
                c.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, colour.filled())))
                    .map_err(e)?;
            }
            c.configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(e)?;
        }};
    }
    if log_y {
        draw!(
            chart
                .build_cartesian_2d(x, (bottom.max(1.0) / 2.0..top * 2.0).log_scale())
                .map_err(e)?
        );
    } else {
        draw!(
            chart
                .build_cartesian_2d(x, (bottom.min(1.0) * 0.9)..top)
                .map_err(e)?
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::table::tests::rows;
    use super::*;

    #[test]
    fn the_plot_is_written_as_svg() {
        let dir = std::env::temp_dir().join(format!("tandem-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bench-pair.svg");
        assert!(write(&rows(), &path).unwrap());
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        for text in ["pair-eth", "record", "epochs", "log bytes per guest second"] {
            assert!(svg.contains(text), "no {text} in the plot");
        }
        // Nothing with epochs: no plot.
        let none: Vec<Row> = rows().into_iter().take(2).collect();
        let empty = dir.join("none.svg");
        assert!(!write(&none, &empty).unwrap());
        assert!(!empty.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
