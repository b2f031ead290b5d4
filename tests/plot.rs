//! The figures, drawn from a results folder of small real runs.

mod common;

use homeonorm::engine::data::DatasetKind;
use homeonorm::engine::model::Network;
use homeonorm::engine::settings::TrainSettings;
use homeonorm::results::plot::{self, method_colour, Format};
use homeonorm::runs::train::train_seed_batch;
use std::path::Path;

fn results(root: &Path) -> std::path::PathBuf {
    results_for(root, &["vanilla", "synaptic-scaling"])
}

/// Two seeds of each method at two learning rates, 20 iterations each (4 evaluations).
fn results_for(root: &Path, methods: &[&str]) -> std::path::PathBuf {
    let data = common::small_cifar(root);
    let out = root.join("results");
    for &method in methods {
        for lr in [0.003, 0.01] {
            let mut s = TrainSettings::preset(DatasetKind::Cifar10, method.parse().unwrap());
            (s.lr, s.iterations, s.eval_every, s.record_every) = (lr, 20, 5, 5);
            train_seed_batch(&s, &[0, 1], &data, &out, &Default::default()).unwrap();
        }
    }
    out
}

/// Width, height and the number of pixels of exactly `colour`.
fn png_pixels(path: &Path, colour: (u8, u8, u8)) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let count = buf[..info.buffer_size()].chunks(channels).filter(|p| (p[0], p[1], p[2]) == colour).count();
    (info.width, info.height, count)
}

#[test]
fn every_figure_is_drawn_at_its_size_in_the_method_colours() {
    let tmp = tempfile::tempdir().unwrap();
    let out = results(tmp.path());
    let files = plot::plot(&out, Format::Png, false).unwrap();
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for prefix in ["accuracy-", "heatmap-", "activation-prob-", "active-value-", "alpha-", "homeostasis-", "lr-sweep-"]
    {
        assert!(names.iter().any(|n| n.starts_with(prefix)), "no {prefix} figure in {names:?}");
    }
    assert_eq!(files.len(), 2 * 6 + 1, "six figures per learning rate and one sweep: {names:?}");
    let (vanilla, synaptic) =
        (method_colour("vanilla".parse().unwrap()), method_colour("synaptic-scaling".parse().unwrap()));
    // Heat maps name each panel in the method's text colour (darkened where it is light).
    let synaptic_text = plot::method_text_colour("synaptic-scaling".parse().unwrap());
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        let colour = if name.starts_with("heatmap-") { synaptic_text } else { synaptic };
        let (w, h, synaptic_pixels) = png_pixels(file, (colour.0, colour.1, colour.2));
        assert_eq!((w, h), plot::SIZE, "{}", file.display());
        assert!(synaptic_pixels > 20, "{}: synaptic-scaling's colour is missing", file.display());
        if name.starts_with("accuracy-") || name.starts_with("lr-sweep-") || name.starts_with("homeostasis-") {
            let (_, _, vanilla_pixels) = png_pixels(file, (vanilla.0, vanilla.1, vanilla.2));
            assert!(vanilla_pixels > 100, "{name}: vanilla's line is missing");
        }
    }
    let svg = plot::plot(&out, Format::Svg, false).unwrap();
    let text =
        std::fs::read_to_string(svg.iter().find(|f| f.to_string_lossy().contains("accuracy-")).unwrap()).unwrap();
    assert!(text.contains("<svg") && text.to_uppercase().contains("#D55E00"), "SVG lacks synaptic-scaling's colour");
}

#[test]
fn every_methods_text_colour_reads_on_white() {
    use homeonorm::results::plot::{contrast_with_white, method_text_colour};
    for method in homeonorm::engine::norm::method_names() {
        let id = method.parse().unwrap();
        let (colour, text) = (method_colour(id), method_text_colour(id));
        assert!(contrast_with_white(text) >= 4.5, "{method}: {text:?} on white");
        if contrast_with_white(colour) >= 4.5 {
            assert_eq!(text, colour, "{method}: a colour that reads already is kept");
        }
    }
    // Black and white are the bounds of the ratio.
    assert!((contrast_with_white(plotters::style::RGBColor(0, 0, 0)) - 21.0).abs() < 1e-9);
    assert!((contrast_with_white(plotters::style::RGBColor(255, 255, 255)) - 1.0).abs() < 1e-9);
}

#[test]
fn a_folder_without_complete_runs_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run = homeonorm::results::rundir::run_path(tmp.path(), "cifar10", "vanilla", 0.003, 0);
    std::fs::create_dir_all(&run).unwrap();
    let config = serde_json::json!({"dataset": "cifar10", "method": "vanilla", "lr": 0.003, "batch_size": 32,
        "iterations": 10, "eval_stats": "batch", "test_batch_size": 32, "normalize_conv": true, "seed": 0});
    std::fs::write(run.join("config.json"), config.to_string()).unwrap();
    let err = plot::plot(tmp.path(), Format::Png, false).err().unwrap().to_string();
    assert!(err.contains("no complete runs"), "{err}");
    assert!(!tmp.path().join("report/figures").exists(), "no empty picture is written");
}

#[test]
fn no_text_leaves_the_canvas_or_runs_into_other_text_with_every_method() {
    let tmp = tempfile::tempdir().unwrap();
    let methods = homeonorm::engine::norm::method_names();
    let out = results_for(tmp.path(), &methods);
    let layouts = plot::layout(&out).unwrap();
    let names: Vec<&str> = layouts.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(layouts.len(), 2 * 7 + 1, "six figures and Figure 2 per learning rate, one sweep: {names:?}");
    let mut problems = Vec::new();
    for figure in &layouts {
        assert!(figure.texts.len() > 10, "{}: only {} texts recorded", figure.name, figure.texts.len());
        problems.extend(figure.problems(4));
    }
    assert!(problems.is_empty(), "{} layout problems:\n{}", problems.len(), problems.join("\n"));

    // Fifteen panels stacked: short ones, each with at least one labelled tick.
    assert_every_histogram_panel_has_labelled_ticks(&layouts, methods.len(), 1);

    // α is drawn in its own units, one panel per method and layer, named by both.
    let alpha = layouts.iter().find(|l| l.name.starts_with("alpha-")).unwrap();
    let texts: Vec<&str> = alpha.texts.iter().map(|t| t.text.as_str()).collect();
    assert!(texts.iter().any(|t| t.starts_with("synaptic-scaling, fc1: 120 units")), "{texts:?}");
    assert!(texts.iter().any(|t| t.starts_with("scale-only, fc2: 84 units")), "{texts:?}");
    assert!(texts.contains(&"α") && !texts.iter().any(|t| t.contains("scaled")), "{texts:?}");
}

/// Every stand-alone histogram figure's panels (`panels` of them, one per method) each
/// carry a scale of at least `least` ticks above their foot, labelled with their values
/// (the numbers at the figure's left edge).
fn assert_every_histogram_panel_has_labelled_ticks(
    layouts: &[plot::layout::FigureLayout],
    panels: usize,
    least: usize,
) {
    let histograms: Vec<_> = layouts
        .iter()
        .filter(|l| l.name.starts_with("activation-prob-") || l.name.starts_with("active-value-"))
        .collect();
    assert!(!histograms.is_empty());
    for figure in histograms {
        let named = figure.texts.iter().filter(|t| t.text.contains(" fc1 units")).count();
        let y_labels =
            figure.texts.iter().filter(|t| t.x1 < 120 && t.text.parse::<f64>().is_ok_and(|v| v > 0.0)).count();
        assert!(named == panels && y_labels >= least * panels, "{}: {named} panels, {y_labels} y labels", figure.name);
    }
}

#[test]
fn histogram_panels_with_room_show_two_labelled_ticks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = results(tmp.path());
    assert_every_histogram_panel_has_labelled_ticks(&plot::layout(&out).unwrap(), 2, 2);
}

#[test]
fn each_methods_own_settings_get_their_own_figures_and_the_others_share_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::small_cifar(tmp.path());
    let out = tmp.path().join("results");
    let train = |method: &str, groups: usize, sweep: &str| {
        let mut s = TrainSettings::preset(DatasetKind::Cifar10, method.parse().unwrap());
        (s.iterations, s.eval_every, s.record_every, s.groups) = (20, 10, 5, groups);
        train_seed_batch(&s, &[0], &data, &out.join(sweep), &Default::default()).unwrap();
    };
    // Two sweeps in one results folder; vanilla does not read `groups`, so its one run
    // goes with both group-norm settings'.
    train("vanilla", 1, "first");
    train("group-norm", 2, "first");
    train("group-norm", 1, "second");
    let layouts = plot::layout(&out).unwrap();
    let mut names: Vec<&str> =
        layouts.iter().filter(|l| l.name.starts_with("accuracy-")).map(|l| l.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["accuracy-cifar10-lr0.003-b32-it20-groups-1.layout", "accuracy-cifar10-lr0.003-b32-it20-groups-2.layout"]
    );
    for figure in layouts.iter().filter(|l| l.name.starts_with("accuracy-")) {
        let legend: Vec<&str> = figure.texts.iter().map(|t| t.text.as_str()).filter(|t| t.contains("(n = ")).collect();
        assert_eq!(legend.len(), 2, "{}: {legend:?}", figure.name);
        assert!(legend.iter().any(|t| t.starts_with("vanilla")), "{}: {legend:?}", figure.name);
    }
}

#[test]
fn the_layout_check_fails_on_overlapping_or_clipped_text() {
    use homeonorm::results::plot::layout::{FigureLayout, TextBox};
    let text = |x0, y0, x1, y1| TextBox { text: "t".into(), x0, y0, x1, y1 };
    let figure = |texts| FigureLayout { name: "f".into(), size: (100, 50), texts, ink: Vec::new() };
    assert!(figure(vec![text(0, 0, 10, 10), text(10, 0, 20, 10)]).problems(4).is_empty(), "touching is fine");
    assert_eq!(figure(vec![text(0, 0, 10, 10), text(5, 5, 15, 15)]).problems(4).len(), 1, "25 px² overlap");
    assert_eq!(figure(vec![text(95, 0, 110, 10)]).problems(4).len(), 1, "off the right edge");
    assert_eq!(figure(vec![text(-1, 0, 10, 10)]).problems(4).len(), 1, "off the left edge");
    // A label over a colour bar or heat map (filled coloured rectangles) is a problem, by a
    // single pixel; beside it, not.
    let over_ink = |x0| FigureLayout {
        ink: vec![text(50, 0, 60, 50), text(60, 0, 70, 50)],
        ..figure(vec![text(x0, 5, x0 + 12, 15)])
    };
    assert_eq!(over_ink(55).problems(4).len(), 1, "a tick label drawn over the bar");
    assert_eq!(over_ink(39).problems(4).len(), 1, "a tick label one pixel into the bar");
    assert!(over_ink(70).problems(4).is_empty(), "a tick label right of the bar");
    assert!(over_ink(38).problems(4).is_empty(), "a tick label touching the bar from the left");
}

#[test]
fn a_colour_bar_label_over_the_bar_is_caught_by_the_recorder() {
    use homeonorm::results::plot::layout::TextRecorder;
    use plotters::prelude::*;
    homeonorm::results::plot::register_font();
    let recorder = TextRecorder::new((200, 100));
    let (texts, ink) = (recorder.texts.clone(), recorder.ink.clone());
    let root = recorder.into_drawing_area();
    root.fill(&WHITE).unwrap();
    root.draw(&Rectangle::new([(100, 10), (120, 90)], ViridisRGB::get_color(0.5).filled())).unwrap();
    root.draw(&Text::new("1.0", (95, 10), ("sans-serif", 16))).unwrap();
    let figure = homeonorm::results::plot::layout::FigureLayout {
        name: "bar".into(),
        size: (200, 100),
        texts: texts.take(),
        ink: ink.take(),
    };
    assert_eq!(figure.ink.len(), 1, "the white canvas is not ink, the bar is: {:?}", figure.ink);
    assert_eq!(figure.problems(4).len(), 1, "{:?}", figure.problems(4));
}

#[test]
fn the_recorders_text_boxes_hold_every_pixel_the_png_backend_draws() {
    use homeonorm::results::plot::layout::TextRecorder;
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    homeonorm::results::plot::register_font();
    let (w, h) = (400u32, 200u32);
    let mut failures: Vec<String> = Vec::new();
    for (text, size, h_pos, v_pos) in [
        ("0.8", 16, HPos::Right, VPos::Center),
        ("0.8", 16, HPos::Right, VPos::Center),
        ("1.0", 16, HPos::Left, VPos::Center),
        ("iteration", 15, HPos::Center, VPos::Top),
        ("synaptic-scaling (seed 0)", 18, HPos::Left, VPos::Bottom),
    ] {
        let style = TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(h_pos, v_pos));
        let at = (200, 100);
        let mut pixels = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            root.draw_text(text, &style, at).unwrap();
            root.present().unwrap();
        }
        let recorder = TextRecorder::new((w, h));
        let texts = recorder.texts.clone();
        recorder.into_drawing_area().draw_text(text, &style, at).unwrap();
        let recorded = texts.take().pop().unwrap();
        let inked: Vec<(i32, i32)> = (0..h as i32)
            .flat_map(|y| (0..w as i32).map(move |x| (x, y)))
            .filter(|&(x, y)| pixels[((y * w as i32 + x) * 3) as usize] < 200)
            .collect();
        assert!(!inked.is_empty(), "{text}: nothing drawn");
        let outside: Vec<&(i32, i32)> = inked
            .iter()
            .filter(|(x, y)| *x < recorded.x0 || *x >= recorded.x1 || *y < recorded.y0 || *y >= recorded.y1)
            .collect();
        if !outside.is_empty() {
            let span = |f: fn(&(i32, i32)) -> i32| {
                (inked.iter().map(f).min().unwrap(), inked.iter().map(f).max().unwrap() + 1)
            };
            let (xs, ys) = (span(|p| p.0), span(|p| p.1));
            failures.push(format!("{text}: drawn in x {xs:?}, y {ys:?}, outside the recorded {recorded:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Rewrites one file of a run through `edit`, the run kept complete.
fn edit_run_file(run: &Path, name: &str, edit: impl FnOnce(String) -> String) {
    let text = edit(std::fs::read_to_string(run.join(name)).unwrap());
    common::rewrite_run_file(run, name, text.as_bytes());
}

#[test]
fn an_alpha_near_the_largest_float_and_a_nan_probability_are_drawn_not_hung_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = results(tmp.path());
    let run = homeonorm::results::rundir::run_path(&out, "cifar10", "synaptic-scaling", 0.003, 0);
    edit_run_file(&run, "unit_stats.csv", |text| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let mut fields: Vec<String> = lines[1].split(',').map(String::from).collect();
        fields[5] = "1e308".into(); // α of fc1's first unit
        lines[1] = fields.join(",");
        lines.join("\n") + "\n"
    });
    edit_run_file(&run, "activation_prob.csv", |text| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let mut fields: Vec<String> = lines[1].split(',').map(String::from).collect();
        fields[3] = "NaN".into();
        lines[1] = fields.join(",");
        lines.join("\n") + "\n"
    });
    assert_eq!(
        homeonorm::results::rundir::state(&run),
        homeonorm::results::rundir::RunState::Done(homeonorm::results::rundir::Outcome::Complete)
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let root = out.clone();
    std::thread::spawn(move || {
        tx.send(plot::plot(&root, Format::Png, false).map(|f| f.len()).map_err(|e| e.to_string()))
    });
    let drawn = rx.recv_timeout(std::time::Duration::from_secs(300)).expect("plot finished within 5 minutes");
    assert_eq!(drawn, Ok(13), "every figure drawn");
}

/// The pixels of exactly `colour` in the part of a PNG between the fractions `x` and `y`
/// of its width and height.
fn png_pixels_in(path: &Path, colour: (u8, u8, u8), x: (f64, f64), y: (f64, f64)) -> usize {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h, channels) = (info.width as usize, info.height as usize, info.color_type.samples());
    let span = |(lo, hi): (f64, f64), n: usize| (lo * n as f64) as usize..(hi * n as f64) as usize;
    span(y, h)
        .flat_map(|row| span(x, w).map(move |col| (row, col)))
        .filter(|(row, col)| {
            let p = &buf[(row * w + col) * channels..][..3];
            (p[0], p[1], p[2]) == colour
        })
        .count()
}

#[test]
fn a_rare_unit_shows_in_figure_2s_short_histogram_panel() {
    let tmp = tempfile::tempdir().unwrap();
    let out = results_for(tmp.path(), &["synaptic-scaling"]);
    // 600 fc1 units per seed (1,200 pooled), every one at 0.5 but one at 0.97: a bar 1,200
    // times shorter than the panel's one peak, under half a pixel at its true height.
    for seed in [0, 1] {
        let run = homeonorm::results::rundir::run_path(&out, "cifar10", "synaptic-scaling", 0.003, seed);
        edit_run_file(&run, "unit_stats.csv", |text| {
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            let template: Vec<String> = lines[1].split(',').map(String::from).collect();
            lines.retain(|l| !l.starts_with("fc1,"));
            for unit in 0..600 {
                let mut fields = template.clone();
                fields[1] = unit.to_string();
                fields[2] = if seed == 0 && unit == 0 { "0.97" } else { "0.5" }.into();
                lines.insert(1 + unit, fields.join(","));
            }
            lines.join("\n") + "\n"
        });
    }
    let files = plot::plot(&out, Format::Png, true).unwrap();
    let figure2 = files.iter().find(|f| f.to_string_lossy().contains("figure2-cifar10-lr0.003")).unwrap();
    let colour = method_colour("synaptic-scaling".parse().unwrap());
    // Panel C is the lower left third; 0.97 lies at the right end of its axis, where no
    // other unit is.
    let rare = png_pixels_in(figure2, (colour.0, colour.1, colour.2), (0.28, 0.333), (0.55, 1.0));
    // (its true height rounds to no pixel: without the least height, 0 pixels here)
    assert!(rare >= 10, "the rare unit's bar in panel C, a row of pixels at least: {rare} pixels");
}

/// A result set of one network but LeNet5 has no other network to differ from; its
/// figures still name it in their settings line (the paper's LeNet5 goes unnamed).
#[test]
fn a_figure_names_its_network_unless_it_is_lenet5() {
    let tmp = tempfile::tempdir().unwrap();
    let data = common::small_cifar(tmp.path());
    for (model, named) in [(Network::Lenet5, ""), (Network::Mlp, ", mlp")] {
        let out = tmp.path().join(model.to_string());
        let mut s = TrainSettings::preset(DatasetKind::Cifar10, "vanilla".parse().unwrap());
        (s.iterations, s.eval_every, s.record_every, s.model) = (20, 10, 5, model);
        train_seed_batch(&s, &[0], &data, &out, &Default::default()).unwrap();
        let layouts = plot::layout(&out).unwrap();
        let accuracy = layouts.iter().find(|l| l.name.starts_with("accuracy-")).expect("an accuracy figure");
        let line = accuracy.texts.iter().map(|t| t.text.as_str()).find(|t| t.contains("20 iterations")).unwrap();
        assert_eq!(line, format!("cifar10, lr 0.003, batch 32, 20 iterations{named}, 1 seed(s)"), "{model}");
    }
}
