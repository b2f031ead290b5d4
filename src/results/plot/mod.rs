//! `homeonorm plot`: the panels of the paper's Figures 2 and 3, drawn with plotters
//! from the complete runs under a results folder, into `DIR/report/figures/`.
//!
//! - `accuracy-*`: test accuracy against iteration, mean line and ±1 std band (A)
//! - `heatmap-*`: activation probability of each measured unit every 100th iteration, one seed (B)
//! - `activation-prob-*`: distribution of fc1 units' activation probabilities, seeds pooled (C)
//!   (fc1: the network's probe layer, `Network::probe`; ResNet-20's last block)
//! - `active-value-*`: histogram of fc1 units' mean active values, log axis (D)
//! - `alpha-*`: distribution of α per fc layer, learned or set by a rule (E)
//! - `homeostasis-*`: final accuracy against the CV of fc1's activation
//!   probabilities, one point per method with error bars over seeds (the paper's
//!   thesis, that homeostasis goes with accuracy, in one picture)
//! - `lr-sweep-*`: final accuracy against learning rate, diverged runs marked
//! - `figure2-*` (`plot --paper`): panels A–E in the paper's Figure 2 arrangement
//!
//! Every method keeps one colour in every figure; every value is drawn in its own
//! units (α too); titles wrap to the canvas, with the settings on a smaller second
//! line. [`layout`] records where every text would land, so a test fails when one
//! leaves the canvas or runs into another.

pub mod layout;

use crate::engine::model::Network;
use crate::engine::norm::MethodId;
use crate::engine::settings::{differing_columns, GroupKey, METHOD_SETTINGS};
use crate::results::report::{self, RunRecord, SettingResult, FIGURES_DIR};
use crate::results::rundir::{self, read_csv, ActivationRow, Outcome, UnitRow};
use anyhow::{anyhow, bail, Context, Result};
use layout::{FigureLayout, TextRecorder};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layer of the paper's Figure 2C–D histograms: the first fc layer.
pub const SIZE: (u32, u32) = (1400, 900);
/// The paper-arranged Figure 2 (`plot --paper`).
pub const PAPER_SIZE: (u32, u32) = (2400, 1500);
/// Stacked panels (one per method) a figure of its size holds legibly; past it, the
/// figure grows taller ([`taller_for`]).
const PANELS_PER_FIGURE: usize = 11;

/// A figure's size for `panels` stacked panels: taller in proportion past
/// [`PANELS_PER_FIGURE`], so that each histogram keeps its height.
fn taller_for(size: (u32, u32), panels: usize) -> (u32, u32) {
    let panels = panels.max(PANELS_PER_FIGURE) as u32;
    (size.0, size.1 * panels / PANELS_PER_FIGURE as u32)
}
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

/// A method's colour, as its registration gives it.
pub fn method_colour(method: MethodId) -> RGBColor {
    let [r, g, b] = method.method().colour();
    RGBColor(r, g, b)
}

/// A method's colour for text on white: its colour darkened, where it is light, until it
/// reads as body text does (WCAG's contrast ratio of at least 4.5 against white).
pub fn method_text_colour(method: MethodId) -> RGBColor {
    let RGBColor(r, g, b) = method_colour(method);
    let mut scale = 1.0;
    loop {
        let c = RGBColor((r as f64 * scale) as u8, (g as f64 * scale) as u8, (b as f64 * scale) as u8);
        if contrast_with_white(c) >= 4.5 {
            return c;
        }
        scale *= 0.95;
    }
}

/// WCAG 2's contrast ratio of a colour against white: (1 + 0.05) / (L + 0.05).
pub fn contrast_with_white(RGBColor(r, g, b): RGBColor) -> f64 {
    let linear = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
    1.05 / (luminance + 0.05)
}

/// The bundled font under the name the figures use (the tests' drawings use it too).
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, bytes);
    });
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// Where figures go: files of a format, or the text-layout recorder (the layout test).
#[derive(Clone, Copy)]
enum Target<'a> {
    File(Format),
    Layout(&'a std::cell::RefCell<Vec<FigureLayout>>),
}

/// Draws one figure of `size` with one generic drawing function, into the target. A
/// file is drawn under a temporary name (same extension: the backend picks the
/// format from it) and renamed when whole, so a failed drawing or a full disk never
/// leaves a partial figure under the name `report.md` links.
macro_rules! render {
    ($target:expr, $path:expr, $size:expr, |$root:ident| $body:expr) => {{
        let path: &Path = $path;
        let size: (u32, u32) = $size;
        let name = path.file_name().expect("a figure file name").to_string_lossy();
        let tmp = path.with_file_name(format!(".tmp-{name}"));
        let drawn = (|| -> Result<()> {
            match $target {
                Target::File(Format::Png) => {
                    let $root = BitMapBackend::new(&tmp, size).into_drawing_area();
                    $root.fill(&WHITE).map_err(err)?;
                    $body?;
                    $root.present().map_err(err)?;
                }
                Target::File(Format::Svg) => {
                    let $root = SVGBackend::new(&tmp, size).into_drawing_area();
                    $root.fill(&WHITE).map_err(err)?;
                    $body?;
                    $root.present().map_err(err)?;
                }
                Target::Layout(layouts) => {
                    let recorder = TextRecorder::new(size);
                    let (texts, ink) = (recorder.texts.clone(), recorder.ink.clone());
                    let $root = recorder.into_drawing_area();
                    $body?;
                    let (texts, ink) = (texts.take(), ink.take());
                    layouts.borrow_mut().push(FigureLayout { name: name.to_string(), size, texts, ink });
                    return Ok(());
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

/// A figure's or a panel's title: a main line and a smaller line of details, each
/// wrapped to the width it is drawn in.
struct Title {
    main: String,
    detail: String,
}

impl Title {
    fn new(main: impl Into<String>, detail: impl Into<String>) -> Title {
        Title { main: main.into(), detail: detail.into() }
    }
}

/// `text` broken into lines no wider than `width` pixels in `style`.
fn wrap<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, style: &TextStyle, width: u32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
        let fits = area.estimate_text_size(&candidate, style).map_or(true, |(w, _)| w <= width);
        if fits || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Draws `title` at the top of `area`; returns the area below it.
fn titled<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, title: &Title) -> Result<DrawingArea<DB, Shift>> {
    let (width, _) = area.dim_in_pixel();
    let top = Pos::new(HPos::Center, VPos::Top);
    let main = TextStyle::from((FONT, 26).into_font()).pos(top);
    let detail = TextStyle::from((FONT, 17).into_font()).color(&RGBColor(80, 80, 80)).pos(top);
    let mut y = 8;
    for (text, style) in [(&title.main, &main), (&title.detail, &detail)] {
        for line in wrap(area, text, style, width.saturating_sub(40)) {
            let (_, h) = area.estimate_text_size(&line, style).map_err(err)?;
            area.draw_text(&line, style, (width as i32 / 2, y)).map_err(err)?;
            y += h as i32 + 4;
        }
    }
    Ok(area.split_vertically(y + 8).1)
}

/// A group of settings drawn in one figure: every setting the same but the method.
struct FigureGroup<'r> {
    /// The settings all members share.
    key: GroupKey,
    settings: Vec<&'r SettingResult>,
}

impl FigureGroup<'_> {
    /// Whether `r` may join: no member of its method holds other settings of that method
    /// (group-norm with 4 groups and with 8 are two figures).
    fn takes(&self, r: &SettingResult, own: &[&str]) -> bool {
        let method = r.key.settings.method;
        let theirs = r.key.without(own);
        self.settings.iter().all(|o| o.key.settings.method != method || o.key.without(own) == theirs)
    }
}

/// Groups results by their key without `apart` (the settings a figure shows side by side).
fn figure_groups<'r>(results: impl Iterator<Item = &'r SettingResult>, apart: &[&str]) -> Vec<FigureGroup<'r>> {
    // What a method's members within one figure may differ in: `apart` but the method.
    let own: Vec<&str> = apart.iter().copied().filter(|&k| k != "method").collect();
    let mut groups: Vec<FigureGroup> = Vec::new();
    for r in results {
        let key = r.key.without(apart);
        match groups.iter_mut().find(|g| g.key == key && g.takes(r, &own)) {
            Some(g) => g.settings.push(r),
            None => groups.push(FigureGroup { key, settings: vec![r] }),
        }
    }
    // A method with one setting goes into every figure of its key (vanilla beside
    // group-norm with 4 groups and beside it with 8).
    for i in 0..groups.len() {
        for j in 0..groups.len() {
            if i == j || groups[i].key != groups[j].key {
                continue;
            }
            let shared: Vec<&SettingResult> = groups[j]
                .settings
                .iter()
                .copied()
                .filter(|r| groups.iter().filter(|g| g.key == groups[i].key).all(|g| g.takes(r, &own)))
                .filter(|r| !groups[i].settings.iter().any(|o| std::ptr::eq(*o, *r)))
                .collect();
            groups[i].settings.extend(shared);
        }
    }
    groups
}

/// A figure name's part for a group, and its settings line: dataset, lr, batch and
/// length, and any other setting in which the groups differ (so no two share a name;
/// of two groups with the same shared settings, the method settings that part them).
fn group_names(groups: &[FigureGroup], apart: &[&str]) -> Vec<(String, String)> {
    let keys: Vec<&GroupKey> = groups.iter().map(|g| &g.key).collect();
    let shown = |c: &String| !["dataset", "lr", "batch_size", "iterations"].contains(&c.as_str());
    let others: Vec<String> = differing_columns(&keys).into_iter().filter(shown).collect();
    groups
        .iter()
        .map(|g| {
            let s = &g.key.settings;
            let mut columns = g.key.columns();
            let mut others = others.clone();
            let twins: Vec<&GroupKey> =
                groups.iter().filter(|h| h.key == g.key).flat_map(|h| h.settings.iter().map(|r| &r.key)).collect();
            if groups.iter().filter(|h| h.key == g.key).count() > 1 {
                let method_settings = differing_columns(&twins).into_iter().filter(|c| METHOD_SETTINGS.contains(&&**c));
                for column in method_settings {
                    let mine = g.settings.iter().flat_map(|r| r.key.columns()).find(|(n, _)| *n == column);
                    if let Some(cell) = mine {
                        columns.push(cell);
                        others.push(column);
                    }
                }
            }
            let value = |name: &str| columns.iter().find(|(n, _)| n == name).map_or(String::new(), |(_, v)| v.clone());
            let mut slug = format!("{}", s.dataset);
            let mut detail = format!("{}", s.dataset);
            if !apart.contains(&"lr") {
                slug += &format!("-lr{}", s.lr);
                detail += &format!(", lr {}", s.lr);
            }
            slug += &format!("-b{}-it{}", s.batch_size, s.iterations);
            detail += &format!(", batch {}, {} iterations", s.batch_size, s.iterations);
            // A figure names its network, but for the paper's: one network's result set
            // has no other to differ from, so `others` would leave it out.
            if s.model != Network::default() && !others.iter().any(|c| c == "model") {
                detail += &format!(", {}", s.model);
            }
            for other in &others {
                let v = value(other);
                let safe: String =
                    v.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
                slug += &format!("-{other}-{safe}");
                detail += &format!(", {other} {}", if v.is_empty() { "–" } else { &v });
            }
            (slug, detail)
        })
        .collect()
}

/// Draws every figure for the complete runs under `root`; returns the files written.
/// With `paper`, also the paper's Figure 2 as one picture per setting group.
pub fn plot(root: &Path, format: Format, paper: bool) -> Result<Vec<PathBuf>> {
    plot_into(root, Target::File(format), paper)
}

/// Where the text of every figure `plot` draws (the paper figures too) would land.
pub fn layout(root: &Path) -> Result<Vec<FigureLayout>> {
    let layouts = std::cell::RefCell::new(Vec::new());
    plot_into(root, Target::Layout(&layouts), true)?;
    Ok(layouts.into_inner())
}

/// One histogram panel: its label, the method whose colour it takes, and the values.
struct HistPanel {
    label: String,
    method: MethodId,
    values: Vec<f64>,
}

/// The x axis of a histogram.
#[derive(Clone, Copy)]
enum Axis {
    /// Probabilities, [0, 1].
    Unit,
    /// Positive values on decades.
    Log,
    /// A linear axis over the values' own range (α).
    Fitted,
}

/// What one setting group's figures show: of each setting, the runs that recorded
/// the measures (a partial run folder records its curve only).
struct GroupData {
    /// The layer the histograms and the homeostasis figure describe: the network's
    /// probe (fc1 but in ResNet-20; a group is one network).
    probe: &'static str,
    heat: Vec<HeatPanel>,
    probs: Vec<HistPanel>,
    values: Vec<HistPanel>,
    alphas: Vec<HistPanel>,
    /// The methods of settings without a heat map, and without unit measures.
    heat_not_recorded: Vec<MethodId>,
    units_not_recorded: Vec<MethodId>,
}

fn group_data(settings: &[&SettingResult], complete: &[&RunRecord]) -> Result<GroupData> {
    let mut data = GroupData {
        probe: settings.first().map_or(Network::default(), |r| r.key.settings.model).probe(),
        heat: Vec::new(),
        probs: Vec::new(),
        values: Vec::new(),
        alphas: Vec::new(),
        heat_not_recorded: Vec::new(),
        units_not_recorded: Vec::new(),
    };
    for r in settings {
        let mut runs: Vec<&RunRecord> = complete.iter().copied().filter(|c| c.key == r.key).collect();
        runs.sort_by_key(|c| c.seed);
        let method = r.key.settings.method;
        match runs.iter().find(|c| rundir::has(&c.dir, rundir::ACTIVATION_PROB)) {
            Some(first) => data.heat.push(heat_panel(&first.dir, method, first.seed)?),
            None => data.heat_not_recorded.push(method),
        }
        let (mut probs, mut values) = (Vec::new(), Vec::new());
        let mut alphas: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut seeds = 0;
        for run in &runs {
            let Some(units) = rundir::read_optional_csv::<UnitRow>(&run.dir)? else { continue };
            seeds += 1;
            for u in units {
                if u.layer == data.probe {
                    probs.push(u.activation_prob);
                    values.extend(u.mean_active_value);
                }
                if let Some(alpha) = u.alpha {
                    alphas.entry(u.layer.clone()).or_default().push(alpha);
                }
            }
        }
        if seeds == 0 {
            data.units_not_recorded.push(method);
            continue;
        }
        let panel = |label: String, values: Vec<f64>| HistPanel { label, method, values };
        let (of, active) = (probs.len(), values.len());
        let layer = data.probe;
        data.probs.push(panel(format!("{method}: {} {layer} units, {seeds} seed(s)", of / seeds), probs));
        data.values
            .push(panel(format!("{method}: {active} of {of} {layer} units ever active, {seeds} seed(s)"), values));
        for (layer, a) in alphas {
            let units = a.len() / seeds;
            data.alphas.push(panel(format!("{method}, {layer}: {units} units × {seeds} seed(s)"), a));
        }
    }
    Ok(data)
}

/// A figure's detail line, naming the methods whose runs did not record what it shows.
fn with_not_recorded(detail: &str, methods: &[MethodId]) -> String {
    if methods.is_empty() {
        return detail.to_string();
    }
    let names: Vec<&str> = methods.iter().map(|m| m.name()).collect();
    format!("{detail}; not recorded: {}", names.join(", "))
}

fn plot_into(root: &Path, target: Target, paper: bool) -> Result<Vec<PathBuf>> {
    register_font();
    let found = report::collect(root)?;
    let records = found.runs;
    let complete: Vec<&RunRecord> =
        records.iter().filter(|r| r.summary.as_ref().is_some_and(|s| s.outcome == Outcome::Complete)).collect();
    if complete.is_empty() {
        bail!(
            "{}: no complete runs to plot ({} run folder(s) found, none complete; {} unreadable){}",
            root.display(),
            records.len(),
            found.unreadable.len(),
            report::reasons(&found.unreadable)
        );
    }
    let results = report::summarize(&records)?;
    let dir = root.join(rundir::REPORT_DIR).join(FIGURES_DIR);
    let ext = match target {
        Target::File(format) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            format.extension()
        }
        Target::Layout(_) => "layout",
    };
    let mut written = Vec::new();

    let groups = figure_groups(results.iter().filter(|r| !r.complete.is_empty()), &["method"]);
    for (group, (slug, detail)) in groups.iter().zip(group_names(&groups, &["method"])) {
        let settings = &group.settings;
        let seeds = settings.iter().map(|r| r.complete.len()).max().unwrap_or(0);
        let detail = format!("{detail}, {seeds} seed(s)");
        let data = group_data(settings, &complete)?;
        let figure = |name: &str| dir.join(format!("{name}-{slug}.{ext}"));

        let title = Title::new("Test accuracy (mean ± 1 std over seeds)", &detail);
        written.push(render!(target, &figure("accuracy"), SIZE, |root| draw_accuracy(&root, &title, settings))?);
        // The measures' figures, of the settings whose runs recorded them (none: not drawn).
        if !data.heat.is_empty() {
            let layers = data.heat.first().map_or(String::new(), |h| h.layers.join(" then "));
            let title = Title::new(
                "Activation probability of each measured unit on the training batch",
                format!(
                    "columns: {layers} units; rows: every recorded iteration — {}",
                    with_not_recorded(&detail, &data.heat_not_recorded)
                ),
            );
            written.push(render!(target, &figure("heatmap"), SIZE, |root| draw_heatmaps(&root, &title, &data.heat))?);
        }
        if data.probs.is_empty() {
            log::info!("{slug}: no run recorded the unit measures: accuracy figures only");
            continue;
        }
        let detail = with_not_recorded(&detail, &data.units_not_recorded);
        let title = Title::new(format!("{} activation probability on the test set, seeds pooled", data.probe), &detail);
        let stacked = taller_for(SIZE, data.probs.len());
        written.push(render!(target, &figure("activation-prob"), stacked, |root| draw_histograms(
            &root,
            &title,
            "activation probability",
            Axis::Unit,
            &data.probs
        ))?);
        let title = Title::new(format!("{} mean active value on the test set, seeds pooled", data.probe), &detail);
        written.push(render!(target, &figure("active-value"), stacked, |root| draw_histograms(
            &root,
            &title,
            "mean active value (log scale)",
            Axis::Log,
            &data.values
        ))?);
        if !data.alphas.is_empty() {
            let title = Title::new("α per layer (learned, or set by a homeostatic rule), seeds pooled", &detail);
            written.push(render!(target, &figure("alpha"), SIZE, |root| draw_histograms(
                &root,
                &title,
                "α",
                Axis::Fitted,
                &data.alphas
            ))?);
        }
        let title = Title::new("Homeostasis against accuracy (mean ± 1 std over seeds)", &detail);
        written.push(render!(target, &figure("homeostasis"), SIZE, |root| draw_homeostasis(
            &root, &title, data.probe, settings
        ))?);
        if paper && !data.heat.is_empty() {
            let title = Title::new("Figure 2: normalization and homeostasis", &detail);
            let size = taller_for(PAPER_SIZE, data.probs.len());
            written
                .push(render!(target, &figure("figure2"), size, |root| draw_figure2(&root, &title, settings, &data))?);
        }
    }

    // Learning-rate sweeps: every setting the same but method and lr, at two or more learning rates.
    let apart = ["method", "lr"];
    let sweeps = figure_groups(results.iter(), &apart);
    for (group, (slug, detail)) in sweeps.iter().zip(group_names(&sweeps, &apart)) {
        let settings = &group.settings;
        let mut lrs: Vec<f64> = settings.iter().map(|r| r.key.settings.lr).collect();
        lrs.sort_by(f64::total_cmp);
        lrs.dedup();
        if lrs.len() < 2 {
            continue;
        }
        let seeds = settings.iter().map(|r| r.complete.len() + r.diverged.len()).max().unwrap_or(0);
        // The title names only the marks the figure draws.
        let mut marks = vec!["● ours, mean ± 1 std".to_string()];
        if settings.iter().any(|r| !r.diverged.is_empty()) {
            marks.push("× a setting with diverged runs".into());
        }
        if !lr_sweep_paper_points(settings).is_empty() {
            marks.push("□ the paper's, mean ± 1 std, drawn beside ours".into());
        }
        let title = Title::new(
            format!("Final test accuracy against learning rate ({})", marks.join("; ")),
            format!("{detail}, up to {seeds} seed(s)"),
        );
        let path = dir.join(format!("lr-sweep-{slug}.{ext}"));
        written.push(render!(target, &path, SIZE, |root| draw_lr_sweep(&root, &title, settings))?);
    }
    Ok(written)
}

/// The paper's Figure 2 in its arrangement: accuracy (A) and heat maps (B) on top;
/// activation probabilities (C), mean active values (D) and α (E) below.
fn draw_figure2<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &Title,
    settings: &[&SettingResult],
    data: &GroupData,
) -> Result<()> {
    let area = titled(root, title)?;
    let (width, height) = area.dim_in_pixel();
    let (top, bottom) = area.split_vertically(height * 11 / 20);
    let (a, b) = top.split_horizontally(width * 2 / 5);
    let lower = bottom.split_evenly((1, 3));
    draw_accuracy(&a, &Title::new("A  test accuracy", "mean ± 1 std over seeds"), settings)?;
    let layers = data.heat.first().map_or(String::new(), |h| h.layers.join(" then "));
    draw_heatmaps(&b, &Title::new(format!("B  activation probability, {layers} units"), "training batch"), &data.heat)?;
    let c = Title::new(format!("C  {} activation probability", data.probe), "test set");
    draw_histograms(&lower[0], &c, "activation probability", Axis::Unit, &data.probs)?;
    let d = Title::new(format!("D  {} mean active value", data.probe), "test set");
    draw_histograms(&lower[1], &d, "mean active value (log scale)", Axis::Log, &data.values)?;
    let e = Title::new("E  α", "learned, or set by a homeostatic rule");
    if data.alphas.is_empty() {
        let area = titled(&lower[2], &e)?;
        let (w, h) = area.dim_in_pixel();
        let centre = TextStyle::from((FONT, 20).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
        area.draw_text("no method here has an α", &centre, (w as i32 / 2, h as i32 / 2)).map_err(err)?;
    } else {
        draw_histograms(&lower[2], &e, "α", Axis::Fitted, &data.alphas)?;
    }
    Ok(())
}

/// A percent axis over what a figure draws (`lo` to `hi`): `margin` points beyond each
/// end, out to whole fives within 0–100, at least 5 wide; 0–100 when nothing is drawn.
fn percent_axis(lo: f64, hi: f64, margin: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 100.0);
    }
    let lo = (((lo - margin) / 5.0).floor() * 5.0).max(0.0);
    let hi = (((hi + margin) / 5.0).ceil() * 5.0).min(100.0);
    (lo, hi.max(lo + 5.0))
}

/// A light grid: faint major lines, no minor ones.
const GRID: RGBAColor = RGBAColor(0, 0, 0, 0.08);

fn draw_accuracy<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &Title,
    settings: &[&SettingResult],
) -> Result<()> {
    let area = titled(root, title)?;
    // Each method's legend entry (its width also places the legend, below).
    let label = |r: &SettingResult| format!("{} (n = {})", r.key.settings.method, r.complete.len());
    let x_max = settings.iter().flat_map(|r| r.curve.iter().map(|p| p.iteration)).max().unwrap_or(1).max(1) as f64;
    // The axis fits the curves and their bands: the few points between methods are the result.
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in settings.iter().flat_map(|r| r.curve.iter()) {
        let spread = p.accuracy_std.unwrap_or(0.0);
        lo = lo.min(100.0 * (p.accuracy_mean - spread));
        hi = hi.max(100.0 * (p.accuracy_mean + spread));
    }
    let (lo, hi) = percent_axis(lo, hi, 1.0);
    let mut chart = ChartBuilder::on(&area)
        .margin(20)
        .margin_right(40)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max, lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .x_desc("iteration")
        .y_desc("test accuracy (%)")
        .x_labels(6)
        .y_labels(8)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FONT, 18))
        .axis_desc_style((FONT, 22))
        .draw()
        .map_err(err)?;
    for r in settings {
        let colour = method_colour(r.key.settings.method);
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
        // A marker at each evaluation: the line between two is not measured.
        chart.draw_series(mean.iter().map(|&p| Circle::new(p, 5, colour.filled()))).map_err(err)?;
        chart.draw_series(LineSeries::new(mean, colour.stroke_width(2))).map_err(err)?.label(label(r)).legend(
            move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (24, 0)], colour.stroke_width(2))
                    + Circle::new((12, 0), 5, colour.filled())
            },
        );
    }
    // A method whose accuracy falls, or a wide band, reaches the lower right, where a fixed
    // legend hid it: the legend takes the corner with the least drawn under it.
    let unit = |(x, y): (f64, f64)| (x / x_max, (y - lo) / (hi - lo));
    let mut drawn = Vec::new();
    for r in settings {
        for shift in [-1.0, 0.0, 1.0] {
            let line: Vec<(f64, f64)> = r
                .curve
                .iter()
                .map(|p| unit((p.iteration as f64, 100.0 * (p.accuracy_mean + shift * p.accuracy_std.unwrap_or(0.0)))))
                .collect();
            drawn.extend(along(&line, 16));
        }
    }
    let (width, height) = chart.plotting_area().dim_in_pixel();
    let longest = settings.iter().map(|r| label(r).len());
    // The legend's box as plotters draws it at font 18: about 10 px a character beside a
    // 40 px swatch, 24 px a line, and its margin from the axes.
    let box_width = (longest.max().unwrap_or(0) * 10 + 70) as f64 / width.max(1) as f64;
    let box_height = (settings.len() * 24 + 30) as f64 / height.max(1) as f64;
    draw_legend(&mut chart, quietest_corner(&drawn, box_width, box_height))?;
    Ok(())
}

/// `steps` points on each segment of `line`, its ends included.
fn along(line: &[(f64, f64)], steps: usize) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = line.first().copied().into_iter().collect();
    for pair in line.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        points.extend((1..=steps).map(|i| {
            let t = i as f64 / steps as f64;
            (x0 + t * (x1 - x0), y0 + t * (y1 - y0))
        }));
    }
    points
}

/// The corner of the unit square where a `width` × `height` box covers the fewest of
/// `points` (x and y from 0 to 1, y up); the lower right when it ties.
fn quietest_corner(points: &[(f64, f64)], width: f64, height: f64) -> SeriesLabelPosition {
    let corners = [
        (SeriesLabelPosition::LowerRight, 1.0 - width, 0.0),
        (SeriesLabelPosition::LowerLeft, 0.0, 0.0),
        (SeriesLabelPosition::UpperLeft, 0.0, 1.0 - height),
        (SeriesLabelPosition::UpperRight, 1.0 - width, 1.0 - height),
    ];
    let covered = |x0: f64, y0: f64| {
        points.iter().filter(|&&(x, y)| x >= x0 && x <= x0 + width && y >= y0 && y <= y0 + height).count()
    };
    let mut best = (SeriesLabelPosition::LowerRight, usize::MAX);
    for (corner, x0, y0) in corners {
        let count = covered(x0, y0);
        if count < best.1 {
            best = (corner, count);
        }
    }
    best.0
}

/// One run's heat map: its layers (in the file's order) and per recorded iteration
/// every unit of them, one layer after another.
fn heat_panel(dir: &Path, method: MethodId, seed: u64) -> Result<HeatPanel> {
    let rows = read_csv::<ActivationRow>(dir)?;
    let layers = report::layer_names(rows.iter().map(|r| r.layer.as_str()));
    let mut by_iteration: BTreeMap<usize, Vec<Vec<f64>>> = BTreeMap::new();
    for r in rows {
        let entry = by_iteration.entry(r.iteration).or_insert_with(|| vec![Vec::new(); layers.len()]);
        let k = layers.iter().position(|l| *l == r.layer).expect("a layer of this file");
        entry[k].push(r.activation_prob);
    }
    let units = by_iteration.values().next().map_or(Vec::new(), |per_layer| per_layer.iter().map(Vec::len).collect());
    let rows = by_iteration.into_iter().map(|(it, per_layer)| (it, per_layer.concat())).collect();
    Ok(HeatPanel { method, seed, layers, units, rows })
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

/// One heat map: a run's method, seed, layers and rows (iteration, units of each layer in turn).
struct HeatPanel {
    method: MethodId,
    seed: u64,
    layers: Vec<String>,
    /// Each layer's units (the layers lie side by side in each row).
    units: Vec<usize>,
    rows: Vec<(usize, Vec<f64>)>,
}

fn draw_heatmaps<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &Title, panels: &[HeatPanel]) -> Result<()> {
    let area = titled(root, title)?;
    let (width, _) = area.dim_in_pixel();
    let (main, bar) = area.split_horizontally(width.saturating_sub(110));
    let cols = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(cols);
    for (area, HeatPanel { method, seed, layers, units: layer_units, rows: data }) in
        main.split_evenly((rows, cols)).iter().zip(panels)
    {
        let cells = downsample(data, 150);
        let units = cells.first().map_or(1, |c| c.len()).max(1);
        let last_iteration = data.last().map_or(0, |d| d.0);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{method} (seed {seed})"), (FONT, 18).into_font().color(&method_text_colour(*method)))
            .margin(8)
            .margin_right(16)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..units as f64, last_iteration as f64..0f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(if layers.len() > 1 { format!("unit ({})", layers.join(" | ")) } else { "unit".to_string() })
            .y_desc("iteration")
            .x_labels(4)
            .y_labels(4)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(err)?;
        let row_height = last_iteration as f64 / cells.len().max(1) as f64;
        chart
            .draw_series(cells.iter().enumerate().flat_map(|(r, row)| {
                row.iter().enumerate().map(move |(u, &p)| {
                    let y0 = r as f64 * row_height;
                    Rectangle::new([(u as f64, y0), (u as f64 + 1.0, y0 + row_height)], probability_colour(p).filled())
                })
            }))
            .map_err(err)?;
        // Where one layer's units end and the next one's begin.
        let mut edge = 0;
        for n in &layer_units[..layer_units.len().saturating_sub(1)] {
            edge += n;
            let line = vec![(edge as f64, 0.0), (edge as f64, last_iteration as f64)];
            chart.draw_series(std::iter::once(PathElement::new(line.clone(), WHITE.stroke_width(3)))).map_err(err)?;
            chart.draw_series(std::iter::once(PathElement::new(line, BLACK.stroke_width(1)))).map_err(err)?;
        }
    }
    draw_colour_bar(&bar, "activation probability")?;
    Ok(())
}

/// `x` rounded to tenths by `round` where that cannot overflow (|x| near f64::MAX stays as it is).
/// How many ticks a log axis over the exponents `lo..hi` (whole numbers) asks for: one
/// per decade, so that plotters puts them on the decades.
fn decade_ticks(lo: f64, hi: f64) -> usize {
    (hi - lo).round().max(1.0) as usize + 1
}

/// A log axis's label at exponent `x`: its value when `x` is a decade (`1e-1`, `1e0`,
/// `1e2`), nothing elsewhere, where no short label would be exact.
fn decade_label(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("1e{}", x.round() as i64)
    } else {
        String::new()
    }
}

fn tenths(x: f64, round: fn(f64) -> f64) -> f64 {
    if x.abs() < f64::MAX / 10.0 {
        round(x * 10.0) / 10.0
    } else {
        x
    }
}

/// The heat maps' colour of an activation probability; grey for a value that is not one (NaN).
fn probability_colour(p: f64) -> RGBColor {
    if p.is_finite() {
        ViridisRGB::get_color(p.clamp(0.0, 1.0))
    } else {
        RGBColor(128, 128, 128)
    }
}

/// A vertical viridis bar for 0–1 at the left of `area`, its tick labels right of it and,
/// right of those, `label` (what the colour means) turned upright.
fn draw_colour_bar<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, label: &str) -> Result<()> {
    let (_, height) = area.dim_in_pixel();
    let (top, bottom) = (40, height as i32 - 40);
    let (left, right) = (8, 30);
    let y_of = |v: f64| bottom - (v * (bottom - top) as f64).round() as i32;
    for i in 0..100 {
        let v = i as f64 / 100.0;
        let colour = ViridisRGB::get_color(v + 0.005);
        area.draw(&Rectangle::new([(left, y_of(v + 0.01)), (right, y_of(v))], colour.filled())).map_err(err)?;
    }
    area.draw(&Rectangle::new([(left, top), (right, bottom)], BLACK.stroke_width(1))).map_err(err)?;
    let tick = TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for k in 0..=5 {
        let (v, y) = (k as f64 / 5.0, y_of(k as f64 / 5.0));
        area.draw(&PathElement::new(vec![(right, y), (right + 4, y)], BLACK.stroke_width(1))).map_err(err)?;
        area.draw_text(&format!("{v:.1}"), &tick, (right + 7, y)).map_err(err)?;
    }
    let upright = TextStyle::from((FONT, 16).into_font().transform(FontTransform::Rotate270))
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text(label, &upright, (right + 55, (top + bottom) / 2)).map_err(err)?;
    Ok(())
}

/// Width of a histogram panel's y tick labels, and height of the shared x axis.
const Y_LABELS: i32 = 56;
const X_AXIS: i32 = 56;

/// One histogram panel per series, stacked on a shared x axis, with one shared y label.
fn draw_histograms<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &Title,
    x_desc: &str,
    axis: Axis,
    panels: &[HistPanel],
) -> Result<()> {
    let area = titled(root, title)?;
    let all: Vec<f64> = panels
        .iter()
        .flat_map(|p| p.values.iter().copied())
        .filter(|v| v.is_finite() && (!matches!(axis, Axis::Log) || *v > 0.0))
        .collect();
    let min = all.iter().copied().fold(f64::INFINITY, f64::min);
    let max = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Bin edges run over `lo..hi` (decades for a log axis).
    let (lo, hi) = match axis {
        Axis::Unit => (0.0, 1.0),
        // No value at all (every unit of a dead layer): a decade range around 1, not an infinite one.
        Axis::Log if !min.is_finite() => (-1.0, 1.0),
        Axis::Log => (min.max(1e-6).log10().floor(), max.max(min * 10.0).log10().ceil()),
        // α: its own units, with 0 and 1 always in view (the paper reads α against them).
        Axis::Fitted if !min.is_finite() => (0.0, 1.0),
        Axis::Fitted => (tenths(min.min(0.0), f64::floor), tenths(max.max(1.0), f64::ceil)),
    };
    if !(hi - lo).is_finite() {
        bail!("{}: values from {min:e} to {max:e} span more than a number can hold", title.main);
    }
    let log = matches!(axis, Axis::Log);
    const BINS: usize = 40;
    let width = (hi - lo) / BINS as f64;
    let bin = |v: f64| -> Option<usize> {
        let x = if log { (v > 0.0).then(|| v.log10())? } else { v };
        Some((((x - lo) / width).floor().max(0.0) as usize).min(BINS - 1))
    };
    // One rotated y label for the whole stack, in a strip of its own on the left.
    let (_, height) = area.dim_in_pixel();
    let (label_strip, stack) = area.split_horizontally(34);
    let rotated = TextStyle::from((FONT, 20).into_font())
        .transform(FontTransform::Rotate270)
        .pos(Pos::new(HPos::Center, VPos::Center));
    label_strip.draw_text("fraction of the panel's values", &rotated, (17, height as i32 / 2)).map_err(err)?;
    // Equal plot heights: the last panel is taller by the shared x axis it carries.
    let (_, stack_height) = stack.dim_in_pixel();
    let n = panels.len().max(1) as i32;
    let each = (stack_height as i32 - X_AXIS) / n;
    let stacked = stack.split_by_breakpoints(Vec::<i32>::new(), (1..n).map(|k| k * each).collect::<Vec<_>>());
    // Each panel's fraction of its values per bin, on one y scale for the whole stack:
    // the panels are drawn to be compared.
    let fractions: Vec<[f64; BINS]> = panels
        .iter()
        .map(|panel| {
            let mut counts = [0.0; BINS];
            for b in panel.values.iter().filter_map(|&v| bin(v)) {
                counts[b] += 1.0;
            }
            let total = panel.values.len().max(1) as f64;
            counts.map(|c| c / total)
        })
        .collect();
    let y_max = fractions.iter().flatten().copied().fold(0.0, f64::max).max(0.01) * 1.15;
    // A panel under about 100 pixels of plot (its label strip and margins take 36) is short:
    // decided once, so that every panel of the stack is labelled alike.
    let short = each < 136;
    for (i, ((area, panel), fractions)) in stacked.iter().zip(panels).zip(&fractions).enumerate() {
        let colour = method_colour(panel.method);
        let last = i + 1 == panels.len();
        // The panel's label sits in its own strip above the plot, clear of the bars.
        let text_colour = method_text_colour(panel.method);
        let label = TextStyle::from((FONT, 16).into_font()).color(&text_colour).pos(Pos::new(HPos::Left, VPos::Top));
        area.draw_text(&panel.label, &label, (Y_LABELS + 6, 4)).map_err(err)?;
        let mut chart = ChartBuilder::on(area)
            .margin_top(24)
            .margin_bottom(if last { 4 } else { 12 })
            .margin_right(30)
            .x_label_area_size(if last { X_AXIS } else { 0 })
            .y_label_area_size(Y_LABELS)
            .build_cartesian_2d(lo..hi, 0f64..y_max)
            .map_err(err)?;
        // plotters picks the finest 1-2-5 step giving at most this many ticks from 0: 5
        // leave at least two above 0, 3 one or two (with 2, a panel whose tallest bar was
        // 0.35 had only 0, and no scale). A short panel labels only its tick in the upper
        // half, the one of the two there always is, so that no two labels meet.
        let y_ticks = if short { 3 } else { 5 };
        // No "0" at the foot of a panel: it would sit on the shared x axis's first label.
        // Each tick as the short decimal it is (0.05, 0.2), not rounded to a grid.
        let labelled = |y: f64| y > 0.0 && !(short && y <= y_max / 2.0);
        let y_label = |y: &f64| if labelled(*y) { format!("{}", (y * 1e9).round() / 1e9) } else { String::new() };
        let mut mesh = chart.configure_mesh();
        mesh.bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .y_labels(y_ticks)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 18));
        mesh.y_label_formatter(&y_label);
        if log {
            // Ticks at the decades only (the range's ends are decades), each labelled with
            // its exact value: plotters' own ticks in exponent space fell on 10^0.2 = 1.58
            // and the like, which no short label names.
            mesh.x_labels(decade_ticks(lo, hi)).x_label_formatter(&|x| decade_label(*x));
        }
        if last {
            mesh.x_desc(x_desc);
        } else {
            mesh.x_labels(0);
        }
        mesh.draw().map_err(err)?;
        // A bin with values is never drawn shorter than 2 pixels of the axis (a row at least
        // shows): a rare bin's true height can round to no pixel, and the panel would hide it.
        let pixels = chart.plotting_area().dim_in_pixel().1.max(1) as f64;
        let least = 2.0 * y_max / pixels;
        chart
            .draw_series(fractions.iter().enumerate().filter(|(_, &f)| f > 0.0).map(|(b, &f)| {
                let x0 = lo + b as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, f.max(least))], colour.filled())
            }))
            .map_err(err)?;
    }
    Ok(())
}

/// One point per method: x the CV of the probe layer's (fc1's) activation probabilities
/// on the test set, y the final test accuracy, each with ±1 std over seeds.
fn draw_homeostasis<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &Title,
    probe: &str,
    settings: &[&SettingResult],
) -> Result<()> {
    let area = titled(root, title)?;
    let points: Vec<(MethodId, f64, f64, f64, f64)> = settings
        .iter()
        .filter_map(|r| {
            let layer = r.layer(probe)?;
            let accuracy = r.final_accuracy.mean? * 100.0;
            let spread = r.final_accuracy.std.unwrap_or(0.0) * 100.0;
            Some((
                r.key.settings.method,
                layer.get("activation_prob_cv")?,
                layer.prob_cv_std.unwrap_or(0.0),
                accuracy,
                spread,
            ))
        })
        .collect();
    let x_max = points.iter().map(|p| p.1 + p.2).fold(0.1, f64::max) * 1.1;
    let (y_lo, y_hi) =
        points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.3 - p.4), hi.max(p.3 + p.4)));
    let (y_lo, y_hi) = if y_lo.is_finite() { ((y_lo - 2.0).max(0.0), (y_hi + 2.0).min(100.0)) } else { (0.0, 100.0) };
    let mut chart = ChartBuilder::on(&area)
        .margin(20)
        .margin_right(40)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max, y_lo..y_hi.max(y_lo + 1.0))
        .map_err(err)?;
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .x_desc(format!("CV of {probe} activation probability across units (lower: more homeostatic)"))
        .y_desc("final test accuracy (%)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FONT, 18))
        .axis_desc_style((FONT, 22))
        .draw()
        .map_err(err)?;
    for &(method, cv, cv_std, accuracy, spread) in &points {
        let colour = method_colour(method);
        chart
            .draw_series([
                PathElement::new(vec![(cv - cv_std, accuracy), (cv + cv_std, accuracy)], colour.stroke_width(2)),
                PathElement::new(vec![(cv, accuracy - spread), (cv, accuracy + spread)], colour.stroke_width(2)),
            ])
            .map_err(err)?;
        chart
            .draw_series([Circle::new((cv, accuracy), 8, colour.filled())])
            .map_err(err)?
            .label(method.name())
            .legend(move |(x, y)| Circle::new((x + 15, y), 7, colour.filled()));
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    Ok(())
}

/// The legend every chart of methods draws, at `position`.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 18))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// The paper's accuracies for the methods of an lr-sweep figure in the paper's protocol:
/// (method, lr, mean, std) in %.
fn lr_sweep_paper_points(settings: &[&SettingResult]) -> Vec<(MethodId, f64, f64, Option<f64>)> {
    report::paper_numbers()
        .into_iter()
        .filter(|p| p.measure == report::Measure::Accuracy)
        .filter_map(|p| {
            let r = settings.iter().find(|r| {
                r.key.settings.method.name() == p.method && report::is_paper_protocol(&r.key.settings, p.dataset)
            })?;
            Some((r.key.settings.method, p.lr, p.value, p.std))
        })
        .collect()
}

/// The paper's marks sit this factor to the right of ours on the log axis, so that
/// neither hides the other.
const PAPER_OFFSET: f64 = 1.08;

fn draw_lr_sweep<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &Title,
    settings: &[&SettingResult],
) -> Result<()> {
    let area = titled(root, title)?;
    let paper = lr_sweep_paper_points(settings);
    let lrs: Vec<f64> = settings.iter().map(|r| r.key.settings.lr).collect();
    let (lo, hi) = (lrs.iter().copied().fold(f64::INFINITY, f64::min), lrs.iter().copied().fold(0.0, f64::max));
    // The y axis fits what is drawn (ours ± std, the paper's ± std), to whole fives.
    let (mut y_lo, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for r in settings {
        if let Some(m) = r.final_accuracy.mean {
            let s = r.final_accuracy.std.unwrap_or(0.0);
            (y_lo, y_hi) = (y_lo.min(100.0 * (m - s)), y_hi.max(100.0 * (m + s)));
        }
    }
    for &(_, _, v, std) in &paper {
        let s = std.unwrap_or(0.0);
        (y_lo, y_hi) = (y_lo.min(v - s), y_hi.max(v + s));
    }
    let (y_lo, y_hi) = percent_axis(y_lo, y_hi, 2.0);
    let mut chart = ChartBuilder::on(&area)
        .margin(20)
        .margin_right(40)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d((lo / 1.5..hi * 1.5).log_scale(), y_lo..y_hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .x_desc("learning rate (log scale)")
        .y_desc("final test accuracy (%)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FONT, 18))
        .axis_desc_style((FONT, 22))
        .draw()
        .map_err(err)?;
    // Vertical bars with caps, (x, from, to) each (error bars that show at any width).
    let bars = |chart: &mut ChartContext<'_, DB, _>, bars: &[(f64, f64, f64)], colour: RGBColor| -> Result<()> {
        let style = colour.stroke_width(2);
        chart
            .draw_series(bars.iter().map(|&(x, lo, hi)| PathElement::new(vec![(x, lo), (x, hi)], style)))
            .map_err(err)?;
        let caps = bars.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]);
        chart
            .draw_series(caps.map(|at| EmptyElement::at(at) + PathElement::new(vec![(-6, 0), (6, 0)], style)))
            .map_err(err)?;
        Ok(())
    };
    let mut methods: Vec<MethodId> = settings.iter().map(|r| r.key.settings.method).collect();
    methods.sort();
    methods.dedup();
    for method in methods {
        let colour = method_colour(method);
        let mut points: Vec<&&SettingResult> = settings.iter().filter(|r| r.key.settings.method == method).collect();
        points.sort_by(|a, b| a.key.settings.lr.total_cmp(&b.key.settings.lr));
        let line: Vec<(f64, f64)> =
            points.iter().filter_map(|r| r.final_accuracy.mean.map(|m| (r.key.settings.lr, 100.0 * m))).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), colour.stroke_width(3)))
            .map_err(err)?
            .label(method.name())
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (24, 0)], colour.stroke_width(3))
                    + Circle::new((12, 0), 6, colour.filled())
            });
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 6, colour.filled()))).map_err(err)?;
        let ours: Vec<(f64, f64, f64)> = points
            .iter()
            .filter_map(|r| {
                let (m, s) = (r.final_accuracy.mean?, r.final_accuracy.std?);
                Some((r.key.settings.lr, 100.0 * (m - s), 100.0 * (m + s)))
            })
            .collect();
        bars(&mut chart, &ours, colour)?;
        let diverged_at = y_lo + 0.03 * (y_hi - y_lo);
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|r| !r.diverged.is_empty())
                    .map(|r| Cross::new((r.key.settings.lr, diverged_at), 10, colour.stroke_width(3))),
            )
            .map_err(err)?;
        // The paper's numbers for this method: open squares beside ours, ± its std.
        let theirs: Vec<(f64, f64, Option<f64>)> =
            paper.iter().filter(|p| p.0 == method).map(|&(_, lr, v, s)| (lr * PAPER_OFFSET, v, s)).collect();
        let square = move |(x, y): (i32, i32)| Rectangle::new([(x - 7, y - 7), (x + 7, y + 7)], colour.stroke_width(2));
        let spread: Vec<(f64, f64, f64)> =
            theirs.iter().filter_map(|&(lr, v, std)| Some((lr, v - std?, v + std?))).collect();
        bars(&mut chart, &spread, colour)?;
        chart
            .draw_series(theirs.iter().map(|&(lr, v, _)| {
                EmptyElement::at((lr, v)) + Rectangle::new([(-7, -7), (7, 7)], WHITE.filled()) + square((0, 0))
            }))
            .map_err(err)?;
        if !theirs.is_empty() {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(err)?
                .label(format!("{}, the paper", method.name()))
                .legend(move |(x, y)| square((x + 12, y)));
        }
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_axis_names_its_decades_exactly_and_nothing_between() {
        assert_eq!(decade_label(0.0), "1e0");
        assert_eq!(decade_label(-1.0), "1e-1");
        assert_eq!(decade_label(2.0000000001), "1e2");
        // Where plotters' ticks in exponent space fell: 10^0.2 = 1.58 was labelled "2e0".
        for x in [0.2, 0.4, 0.6, 0.8, -0.5, 1.3] {
            assert_eq!(decade_label(x), "", "{x}");
        }
        assert_eq!(decade_ticks(-1.0, 2.0), 4);
        assert_eq!(decade_ticks(0.0, 1.0), 2);
    }

    #[test]
    fn the_legend_takes_the_corner_with_the_least_drawn_under_it() {
        let rising = along(&[(0.1, 0.75), (0.5, 0.95), (1.0, 0.95)], 16);
        assert!(matches!(quietest_corner(&rising, 0.25, 0.3), SeriesLabelPosition::LowerRight));
        // A curve that climbs and then falls to the bottom right (homeostatic scaling on LeNet5).
        let falling = [rising.clone(), along(&[(0.1, 0.5), (0.6, 0.5), (1.0, 0.05)], 16)].concat();
        assert!(matches!(quietest_corner(&falling, 0.25, 0.3), SeriesLabelPosition::LowerLeft));
        // Nowhere clear: the corner covering the fewest (upper left: 2 points; 3 and 4 at the right, 5 at the lower left).
        let crowded = [
            along(&[(0.9, 0.1), (1.0, 0.1)], 2),
            along(&[(0.0, 0.1), (0.1, 0.1)], 4),
            along(&[(0.0, 0.9), (0.1, 0.9)], 1),
            along(&[(0.9, 0.9), (1.0, 0.9)], 3),
        ]
        .concat();
        assert!(matches!(quietest_corner(&crowded, 0.25, 0.3), SeriesLabelPosition::UpperLeft));
        assert_eq!(
            along(&[(0.0, 0.0), (1.0, 2.0)], 4),
            vec![(0.0, 0.0), (0.25, 0.5), (0.5, 1.0), (0.75, 1.5), (1.0, 2.0)]
        );
    }
}
