//! The figures, drawn from a results folder of small real runs.

mod common;

use homeonorm::data::DatasetKind;
use homeonorm::plot::{self, method_colour, Format};
use homeonorm::settings::TrainSettings;
use homeonorm::train::train_seed_batch;
use std::path::Path;

fn results(root: &Path) -> std::path::PathBuf {
    results_for(root, &["vanilla", "synaptic-scaling"])
}

/// Two seeds of each method at two learning rates, 40 iterations each.
fn results_for(root: &Path, methods: &[&str]) -> std::path::PathBuf {
    let data = common::small_cifar(root);
    let out = root.join("results");
    for &method in methods {
        for lr in [0.003, 0.01] {
            let mut s = TrainSettings::preset(DatasetKind::Cifar10, method.parse().unwrap());
            (s.lr, s.iterations, s.eval_every, s.record_every) = (lr, 40, 10, 5);
            train_seed_batch(&s, &[0, 1], &data, &out).unwrap();
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
    for file in &files {
        let (w, h, synaptic_pixels) = png_pixels(file, (synaptic.0, synaptic.1, synaptic.2));
        assert_eq!((w, h), plot::SIZE, "{}", file.display());
        assert!(synaptic_pixels > 20, "{}: synaptic-scaling's colour is missing", file.display());
        let name = file.file_name().unwrap().to_string_lossy();
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
fn a_folder_without_complete_runs_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run = homeonorm::rundir::run_path(tmp.path(), "cifar10", "vanilla", 0.003, 0);
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
    let methods = homeonorm::norm::method_names();
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

    // α is drawn in its own units, one panel per method and layer, named by both.
    let alpha = layouts.iter().find(|l| l.name.starts_with("alpha-")).unwrap();
    let texts: Vec<&str> = alpha.texts.iter().map(|t| t.text.as_str()).collect();
    assert!(texts.iter().any(|t| t.starts_with("synaptic-scaling, fc1: 120 units")), "{texts:?}");
    assert!(texts.iter().any(|t| t.starts_with("scale-only, fc2: 84 units")), "{texts:?}");
    assert!(texts.contains(&"α") && !texts.iter().any(|t| t.contains("scaled")), "{texts:?}");
}

#[test]
fn the_layout_check_fails_on_overlapping_or_clipped_text() {
    use homeonorm::plot::layout::{FigureLayout, TextBox};
    let text = |x0, y0, x1, y1| TextBox { text: "t".into(), x0, y0, x1, y1 };
    let figure = |texts| FigureLayout { name: "f".into(), size: (100, 50), texts };
    assert!(figure(vec![text(0, 0, 10, 10), text(10, 0, 20, 10)]).problems(4).is_empty(), "touching is fine");
    assert_eq!(figure(vec![text(0, 0, 10, 10), text(5, 5, 15, 15)]).problems(4).len(), 1, "25 px² overlap");
    assert_eq!(figure(vec![text(95, 0, 110, 10)]).problems(4).len(), 1, "off the right edge");
    assert_eq!(figure(vec![text(-1, 0, 10, 10)]).problems(4).len(), 1, "off the left edge");
}
