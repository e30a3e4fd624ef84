//! `report.svg`: per scenario, one bar per server: throughput on the top row, p99 latency (or,
//! for `connect`, server RSS per connection) on the bottom row. Each panel has its own scale.

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::Report;
use super::report::{p99, rss_per_conn, throughput};
use super::scenarios::{Load, Scenario};
use super::units::{ms, si};

const COLORS: [RGBColor; 6] = [
    RGBColor(140, 140, 140),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// One panel: title, value formatter, one value per server.
type Panel = (String, Box<dyn Fn(f64) -> String>, Vec<Option<f64>>);

/// Draws the chart into `path`.
pub fn svg(rep: &Report, scs: &[Scenario], path: &Path) -> Result<(), String> {
    draw(rep, scs, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn draw(rep: &Report, scs: &[Scenario], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let cols = scs.len().max(1);
    let w = (cols as u32 * 260).max(520);
    let root = SVGBackend::new(path, (w, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(70);
    top.draw(&Text::new(
        format!(
            "ringcast end-to-end ({}) — {} — {}",
            if rep.quick { "quick" } else { "full" },
            rep.machine.started,
            rep.machine.cpu_model
        ),
        (10, 8),
        ("sans-serif", 18).into_font(),
    ))?;
    let mut x = 10;
    for (i, name) in rep.servers.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        top.draw(&Rectangle::new([(x, 40), (x + 14, 54)], c.filled()))?;
        top.draw(&Text::new(
            name.clone(),
            (x + 20, 40),
            ("sans-serif", 14).into_font(),
        ))?;
        x += 30 + 8 * name.len() as i32;
    }
    let panels = body.split_evenly((2, cols));
    let n = rep.servers.len().max(1);
    for (i, sc) in scs.iter().enumerate() {
        let connect = matches!(sc.load, Load::Connect { .. });
        let rows: [Panel; 2] = [
            (
                if connect {
                    format!("{} {}: setup conn/s", sc.letter, sc.key)
                } else {
                    format!("{} {}: delivered/s", sc.letter, sc.key)
                },
                Box::new(si),
                values(rep, sc, |r| throughput(r, sc)),
            ),
            if connect {
                (
                    format!("{} {}: RSS KiB/conn", sc.letter, sc.key),
                    Box::new(|v| format!("{v:.1}")),
                    values(rep, sc, rss_per_conn),
                )
            } else {
                (
                    format!("{} {}: p99 latency", sc.letter, sc.key),
                    Box::new(ms),
                    values(rep, sc, |r| p99(r, sc)),
                )
            },
        ];
        for (row, (title, fmt, vals)) in rows.iter().enumerate() {
            let area = &panels[row * cols + i];
            let max = vals.iter().flatten().cloned().fold(0.0, f64::max);
            let top = if max > 0.0 { max * 1.2 } else { 1.0 };
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 13))
                .margin(6)
                .x_label_area_size(22)
                .y_label_area_size(58)
                .build_cartesian_2d((0..n).into_segmented(), 0f64..top)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n)
                .x_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(k) => rep.servers.get(*k).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .y_labels(5)
                .y_label_formatter(&|v| fmt(*v))
                .label_style(("sans-serif", 11))
                .draw()?;
            chart.draw_series(vals.iter().enumerate().filter_map(|(k, v)| {
                let v = (*v)?;
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(k), 0.0),
                        (SegmentValue::Exact(k + 1), v),
                    ],
                    COLORS[k % COLORS.len()].filled(),
                );
                bar.set_margin(0, 0, 6, 6);
                Some(bar)
            }))?;
            chart.draw_series(vals.iter().enumerate().map(|(k, v)| {
                let label = v.map_or("n/a".to_string(), fmt);
                Text::new(
                    label,
                    (SegmentValue::CenterOf(k), v.unwrap_or(0.0) + top * 0.02),
                    ("sans-serif", 10).into_font(),
                )
            }))?;
        }
    }
    root.present()?;
    Ok(())
}

fn values(
    rep: &Report,
    sc: &Scenario,
    f: impl Fn(&super::RunResult) -> Option<f64>,
) -> Vec<Option<f64>> {
    rep.servers
        .iter()
        .map(|name| {
            rep.results
                .iter()
                .find(|r| r.scenario == sc.key && &r.server == name && r.ok())
                .and_then(&f)
        })
        .collect()
}
