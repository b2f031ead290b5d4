//! `homeonorm plot`: the panels of the paper's Figures 2 and 3, drawn with plotters
//! from the complete runs under a results folder, into `DIR/report/figures/`.
//!
//! - `accuracy-*`: test accuracy against iteration, mean line and ±1 std band (A)
//! - `heatmap-*`: activation probability of each fc unit every 100th iteration, one seed (B)
//! - `activation-prob-*`: distribution of fc1 units' activation probabilities, seeds pooled (C)
//! - `active-value-*`: histogram of fc1 units' mean active values, log axis (D)
//! - `alpha-*`: distribution of learned α per fc layer (E)
//! - `lr-sweep-*`: final accuracy against learning rate, diverged runs marked
//!
//! Every method keeps one colour in every figure.

use crate::report::{self, RunRecord, SettingResult};
use crate::rundir::{self, read_csv, ActivationRow, Outcome, UnitRow};
use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const FIGURES_DIR: &str = "figures";
pub const SIZE: (u32, u32) = (1400, 900);
const FONT: &str = "sans-serif";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }
}

/// One colour per method, in `METHODS` order (colour-blind-friendly Okabe–Ito hues).
pub const METHOD_COLOURS: [RGBColor; 6] = [
    RGBColor(0, 0, 0),       // vanilla: black
    RGBColor(0, 114, 178),   // batch-norm: blue
    RGBColor(230, 159, 0),   // weight-norm: orange
    RGBColor(213, 94, 0),    // synaptic-scaling: vermillion
    RGBColor(0, 158, 115),   // mean-only: green
    RGBColor(204, 121, 167), // scale-only: purple
];

pub fn method_colour(method: &str) -> RGBColor {
    let i = crate::norm::method_names().iter().position(|m| *m == method).unwrap_or(0);
    METHOD_COLOURS[i % METHOD_COLOURS.len()]
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, bytes);
    });
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// Draws into a PNG or SVG file with one generic drawing function. The figure is
/// drawn under a temporary name (same extension: the backend picks the format from
/// it) and renamed when whole, so a failed drawing or a full disk never leaves a
/// partial figure under the name `report.md` links.
macro_rules! render {
    ($format:expr, $path:expr, |$root:ident| $body:expr) => {{
        let path: &Path = $path;
        let name = path.file_name().expect("a figure file name").to_string_lossy();
        let tmp = path.with_file_name(format!(".tmp-{name}"));
        let drawn = (|| -> Result<()> {
            match $format {
                Format::Png => {
                    let $root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
                    $root.fill(&WHITE).map_err(err)?;
                    $body?;
                    $root.present().map_err(err)?;
                }
                Format::Svg => {
                    let $root = SVGBackend::new(&tmp, SIZE).into_drawing_area();
                    $root.fill(&WHITE).map_err(err)?;
                    $body?;
                    $root.present().map_err(err)?;
                }
            }
            std::fs::rename(&tmp, path).map_err(anyhow::Error::from)
        })();
        match drawn {
            Ok(()) => Ok::<PathBuf, anyhow::Error>(path.to_path_buf()),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e.context(format!("cannot write {}", path.display())))
            }
        }
    }};
}

/// A group of settings drawn in one figure: same dataset, lr, batch and length.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
struct FigureKey {
    dataset: String,
    lr: f64,
    batch_size: usize,
    iterations: usize,
}

impl FigureKey {
    fn of(r: &SettingResult) -> FigureKey {
        FigureKey {
            dataset: r.key.dataset.clone(),
            lr: r.key.lr,
            batch_size: r.key.batch_size,
            iterations: r.key.iterations,
        }
    }
    fn slug(&self) -> String {
        format!("{}-lr{}-b{}-it{}", self.dataset, self.lr, self.batch_size, self.iterations)
    }
    fn caption(&self, what: &str, seeds: usize) -> String {
        format!(
            "{what} — {}, lr {}, batch {}, {} iterations, {seeds} seed(s)",
            self.dataset, self.lr, self.batch_size, self.iterations
        )
    }
}

/// Draws every figure for the complete runs under `root`; returns the files written.
pub fn plot(root: &Path, format: Format) -> Result<Vec<PathBuf>> {
    register_font();
    let records = report::collect(root)?.runs;
    let complete: Vec<&RunRecord> =
        records.iter().filter(|r| r.summary.as_ref().is_some_and(|s| s.outcome == Outcome::Complete)).collect();
    if complete.is_empty() {
        bail!("{}: no complete runs to plot ({} run folder(s) found, none complete)", root.display(), records.len());
    }
    let results = report::summarize(&records)?;
    let dir = root.join(report::REPORT_DIR).join(FIGURES_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ext = format.extension();
    let mut written = Vec::new();

    let mut groups: Vec<(FigureKey, Vec<&SettingResult>)> = Vec::new();
    for r in results.iter().filter(|r| !r.complete.is_empty()) {
        let key = FigureKey::of(r);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(r),
            None => groups.push((key, vec![r])),
        }
    }
    for (key, settings) in &groups {
        let runs_of =
            |r: &SettingResult| -> Vec<&RunRecord> { complete.iter().copied().filter(|c| c.key == r.key).collect() };
        let seeds = settings.iter().map(|r| r.complete.len()).max().unwrap_or(0);
        let slug = key.slug();
        let path = dir.join(format!("accuracy-{slug}.{ext}"));
        written.push(render!(format, &path, |root| draw_accuracy(&root, key, settings, seeds))?);

        let mut heat = Vec::new();
        let mut probs = Vec::new();
        let mut values = Vec::new();
        let mut alphas = Vec::new();
        for r in settings {
            let runs = runs_of(r);
            let first = runs.iter().min_by_key(|c| c.seed).unwrap();
            heat.push((r.key.method.clone(), first.seed, heat_rows(&first.dir)?));
            let mut p = Vec::new();
            let mut v = Vec::new();
            let mut a: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for run in &runs {
                for u in read_csv::<UnitRow>(&run.dir.join(rundir::UNIT_STATS))? {
                    if u.layer == "fc1" {
                        p.push(u.activation_prob);
                        v.extend(u.mean_active_value);
                    }
                    if let (Some(alpha), true) = (u.alpha, u.layer.starts_with("fc")) {
                        a.entry(u.layer.clone()).or_default().push(alpha);
                    }
                }
            }
            probs.push((r.key.method.clone(), p));
            values.push((r.key.method.clone(), v));
            if !a.is_empty() {
                alphas.push((r.key.method.clone(), a));
            }
        }
        let path = dir.join(format!("heatmap-{slug}.{ext}"));
        written.push(render!(format, &path, |root| draw_heatmaps(&root, key, &heat))?);
        let path = dir.join(format!("activation-prob-{slug}.{ext}"));
        let caption = key.caption("fc1 activation probability, seeds pooled", seeds);
        written.push(render!(format, &path, |root| draw_histograms(
            &root,
            &caption,
            "activation probability",
            &probs,
            false
        ))?);
        let path = dir.join(format!("active-value-{slug}.{ext}"));
        let caption = key.caption("fc1 mean active value (test set), seeds pooled", seeds);
        written.push(render!(format, &path, |root| draw_histograms(
            &root,
            &caption,
            "mean active value (log scale)",
            &values,
            true
        ))?);
        if !alphas.is_empty() {
            let mut panels = Vec::new();
            for (method, layers) in &alphas {
                for (layer, a) in layers {
                    panels.push((format!("{method} {layer}"), method.clone(), a.clone()));
                }
            }
            let path = dir.join(format!("alpha-{slug}.{ext}"));
            let caption = key.caption("learned α per fc layer", seeds);
            written.push(render!(format, &path, |root| draw_alpha(&root, &caption, &panels))?);
        }
    }

    // Learning-rate sweeps: datasets with complete settings at two or more learning rates.
    let mut by_dataset: BTreeMap<(String, usize, usize), Vec<&SettingResult>> = BTreeMap::new();
    for r in &results {
        by_dataset.entry((r.key.dataset.clone(), r.key.batch_size, r.key.iterations)).or_default().push(r);
    }
    for ((dataset, batch, iterations), settings) in by_dataset {
        let mut lrs: Vec<f64> = settings.iter().map(|r| r.key.lr).collect();
        lrs.sort_by(f64::total_cmp);
        lrs.dedup();
        if lrs.len() < 2 {
            continue;
        }
        let path = dir.join(format!("lr-sweep-{dataset}-b{batch}-it{iterations}.{ext}"));
        written.push(render!(format, &path, |root| draw_lr_sweep(&root, &dataset, batch, iterations, &settings))?);
    }
    Ok(written)
}

fn draw_accuracy<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    key: &FigureKey,
    settings: &[&SettingResult],
    seeds: usize,
) -> Result<()> {
    let x_max = settings.iter().flat_map(|r| r.curve.iter().map(|p| p.iteration)).max().unwrap_or(1).max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(key.caption("test accuracy (mean ± 1 std over seeds)", seeds), (FONT, 30))
        .margin(24)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max, 0f64..100f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("iteration")
        .y_desc("test accuracy (%)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FONT, 20))
        .axis_desc_style((FONT, 24))
        .draw()
        .map_err(err)?;
    for r in settings {
        let colour = method_colour(&r.key.method);
        let mean: Vec<(f64, f64)> = r.curve.iter().map(|p| (p.iteration as f64, 100.0 * p.accuracy_mean)).collect();
        let upper =
            r.curve.iter().map(|p| (p.iteration as f64, 100.0 * (p.accuracy_mean + p.accuracy_std.unwrap_or(0.0))));
        let lower = r
            .curve
            .iter()
            .rev()
            .map(|p| (p.iteration as f64, 100.0 * (p.accuracy_mean - p.accuracy_std.unwrap_or(0.0))));
        chart
            .draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), colour.mix(0.2))))
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(mean, colour.stroke_width(3)))
            .map_err(err)?
            .label(format!("{} (n = {})", r.key.method, r.complete.len()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 30, y)], colour.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 22))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Heat-map rows of one run: (iteration, fc1 units then fc2 units).
fn heat_rows(dir: &Path) -> Result<Vec<(usize, Vec<f64>)>> {
    let mut rows: BTreeMap<usize, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for r in read_csv::<ActivationRow>(&dir.join(rundir::ACTIVATION_PROB))? {
        let entry = rows.entry(r.iteration).or_default();
        match r.layer.as_str() {
            "fc1" => entry.0.push(r.activation_prob),
            "fc2" => entry.1.push(r.activation_prob),
            _ => {}
        }
    }
    Ok(rows
        .into_iter()
        .map(|(it, (mut a, b))| {
            (it, {
                a.extend(b);
                a
            })
        })
        .collect())
}

/// At most `max` rows, averaging consecutive rows (keeps SVG files small).
fn downsample(rows: &[(usize, Vec<f64>)], max: usize) -> Vec<Vec<f64>> {
    let group = rows.len().div_ceil(max).max(1);
    rows.chunks(group)
        .map(|chunk| {
            let n = chunk.len() as f64;
            (0..chunk[0].1.len())
                .map(|u| chunk.iter().map(|r| r.1.get(u).copied().unwrap_or(0.0)).sum::<f64>() / n)
                .collect()
        })
        .collect()
}

/// One heat map: method, seed, and its rows (iteration, fc1 then fc2 units).
type HeatPanel = (String, u64, Vec<(usize, Vec<f64>)>);

fn draw_heatmaps<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    key: &FigureKey,
    panels: &[HeatPanel],
) -> Result<()> {
    let title = format!(
        "fc unit activation probability on the training batch (columns: fc1 then fc2 units; rows: every 100th iteration) — {}, lr {}, {} iterations",
        key.dataset, key.lr, key.iterations
    );
    let root = root.titled(&title, (FONT, 22)).map_err(err)?;
    let (main, bar) = root.split_horizontally(SIZE.0 - 130);
    let cols = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(cols);
    for (area, (method, seed, data)) in main.split_evenly((rows, cols)).iter().zip(panels) {
        let cells = downsample(data, 150);
        let units = cells.first().map_or(1, |c| c.len()).max(1);
        let last_iteration = data.last().map_or(0, |d| d.0);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{method} (seed {seed})"), (FONT, 22).into_font().color(&method_colour(method)))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..units as f64, last_iteration as f64..0f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("unit")
            .y_desc("iteration")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 18))
            .draw()
            .map_err(err)?;
        let row_height = last_iteration as f64 / cells.len().max(1) as f64;
        chart
            .draw_series(cells.iter().enumerate().flat_map(|(r, row)| {
                row.iter().enumerate().map(move |(u, &p)| {
                    let y0 = r as f64 * row_height;
                    Rectangle::new(
                        [(u as f64, y0), (u as f64 + 1.0, y0 + row_height)],
                        ViridisRGB::get_color(p.clamp(0.0, 1.0)).filled(),
                    )
                })
            }))
            .map_err(err)?;
    }
    // Colour bar 0–1.
    let mut chart = ChartBuilder::on(&bar)
        .margin_top(60)
        .margin_bottom(60)
        .margin_right(20)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(err)?;
    chart.configure_mesh().disable_mesh().disable_x_axis().y_labels(6).label_style((FONT, 18)).draw().map_err(err)?;
    chart
        .draw_series((0..100).map(|i| {
            let v = i as f64 / 100.0;
            Rectangle::new([(0.0, v), (1.0, v + 0.01)], ViridisRGB::get_color(v + 0.005).filled())
        }))
        .map_err(err)?;
    Ok(())
}

/// One histogram panel per method on a shared x axis (log-spaced bins if `log`).
fn draw_histograms<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    caption: &str,
    x_desc: &str,
    series: &[(String, Vec<f64>)],
    log: bool,
) -> Result<()> {
    let root = root.titled(caption, (FONT, 26)).map_err(err)?;
    let all: Vec<f64> =
        series.iter().flat_map(|s| s.1.iter().copied()).filter(|v| v.is_finite() && (!log || *v > 0.0)).collect();
    let (lo, hi) = if log {
        // No value at all (every unit of a dead layer): a decade range around 1, not an infinite one.
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let lo = if lo.is_finite() { lo.max(1e-6) } else { 0.1 };
        let hi = all.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
        (lo.log10().floor(), hi.log10().ceil())
    } else {
        (0.0, 1.0)
    };
    const BINS: usize = 40;
    let width = (hi - lo) / BINS as f64;
    let bin = |v: f64| -> Option<usize> {
        let x = if log { (v > 0.0).then(|| v.log10())? } else { v };
        Some((((x - lo) / width).floor().max(0.0) as usize).min(BINS - 1))
    };
    let panels = root.split_evenly((series.len().max(1), 1));
    for (i, (area, (method, values))) in panels.iter().zip(series).enumerate() {
        let mut counts = [0usize; BINS];
        for &v in values {
            if let Some(b) = bin(v) {
                counts[b] += 1;
            }
        }
        let total = values.len().max(1) as f64;
        let y_max = counts.iter().map(|&c| c as f64 / total).fold(0.0, f64::max).max(0.01) * 1.1;
        let colour = method_colour(method);
        let last = i + 1 == series.len();
        let mut chart = ChartBuilder::on(area)
            .margin_left(20)
            .margin_right(30)
            .x_label_area_size(if last { 50 } else { 0 })
            .y_label_area_size(80)
            .build_cartesian_2d(lo..hi, 0f64..y_max)
            .map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.disable_mesh()
            .y_labels(3)
            .label_style((FONT, 16))
            .axis_desc_style((FONT, 20))
            .y_desc(format!("{method}: fraction"));
        if log {
            mesh.x_label_formatter(&|x| format!("{:.0e}", 10f64.powf(*x)));
        }
        if last {
            mesh.x_desc(x_desc);
        }
        mesh.draw().map_err(err)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(b, &c)| {
                let x0 = lo + b as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, c as f64 / total)], colour.filled())
            }))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{method}: {} units", values.len()),
                (lo + 0.02 * (hi - lo), y_max * 0.9),
                (FONT, 18),
            )))
            .map_err(err)?;
    }
    Ok(())
}

fn draw_alpha<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    caption: &str,
    panels: &[(String, String, Vec<f64>)],
) -> Result<()> {
    let hi = panels.iter().flat_map(|p| p.2.iter().copied()).fold(1.0f64, f64::max).ceil();
    let lo = panels.iter().flat_map(|p| p.2.iter().copied()).fold(0.0f64, f64::min).floor();
    let series: Vec<(String, Vec<f64>)> = panels
        .iter()
        .map(|(_, method, values)| (method.clone(), values.iter().map(|v| (v - lo) / (hi - lo)).collect()))
        .collect();
    // Reuse the linear histogram on [0, 1] with α rescaled from [lo, hi]; label the axis accordingly.
    let labels: Vec<String> = panels.iter().map(|p| p.0.clone()).collect();
    draw_histograms(
        root,
        &format!("{caption}; panels: {}", labels.join(", ")),
        &format!("α, scaled from [{lo}, {hi}] to [0, 1]"),
        &series,
        false,
    )
}

fn draw_lr_sweep<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    dataset: &str,
    batch: usize,
    iterations: usize,
    settings: &[&SettingResult],
) -> Result<()> {
    let lrs: Vec<f64> = settings.iter().map(|r| r.key.lr).collect();
    let (lo, hi) = (lrs.iter().copied().fold(f64::INFINITY, f64::min), lrs.iter().copied().fold(0.0, f64::max));
    let seeds = settings.iter().map(|r| r.complete.len() + r.diverged.len()).max().unwrap_or(0);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("final test accuracy vs learning rate — {dataset}, batch {batch}, {iterations} iterations, up to {seeds} seed(s); × marks diverged runs"),
            (FONT, 24),
        )
        .margin(24)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d((lo / 1.5..hi * 1.5).log_scale(), 0f64..100f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("learning rate (log scale)")
        .y_desc("final test accuracy (%)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FONT, 20))
        .axis_desc_style((FONT, 24))
        .draw()
        .map_err(err)?;
    let mut methods: Vec<&str> = settings.iter().map(|r| r.key.method.as_str()).collect();
    methods.dedup();
    for method in methods {
        let colour = method_colour(method);
        let mut points: Vec<&&SettingResult> = settings.iter().filter(|r| r.key.method == method).collect();
        points.sort_by(|a, b| a.key.lr.total_cmp(&b.key.lr));
        let line: Vec<(f64, f64)> =
            points.iter().filter_map(|r| r.final_accuracy.mean.map(|m| (r.key.lr, 100.0 * m))).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), colour.stroke_width(3)))
            .map_err(err)?
            .label(method)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 30, y)], colour.stroke_width(3)));
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 6, colour.filled()))).map_err(err)?;
        chart
            .draw_series(points.iter().filter_map(|r| {
                let (m, s) = (r.final_accuracy.mean?, r.final_accuracy.std?);
                Some(PathElement::new(
                    vec![(r.key.lr, 100.0 * (m - s)), (r.key.lr, 100.0 * (m + s))],
                    colour.stroke_width(2),
                ))
            }))
            .map_err(err)?;
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|r| !r.diverged.is_empty())
                    .map(|r| Cross::new((r.key.lr, 3.0), 10, colour.stroke_width(3))),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 22))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}
