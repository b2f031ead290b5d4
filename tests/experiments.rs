//! Experiment files, sweeps (grid, shards, resume, concurrent workers) and the report.

mod common;

use homeonorm::engine::data::DatasetKind;
use homeonorm::results::rundir::{self, Outcome, RunState};
use homeonorm::runs::claim;
use homeonorm::runs::experiment::Experiment;
use homeonorm::runs::sweep::{self, Shard, SweepOptions};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

fn parse(text: &str) -> Result<Experiment, String> {
    Experiment::parse(Path::new("experiments/test.toml"), text).map_err(|e| e.to_string())
}

fn options(out: &Path, shard: Shard) -> SweepOptions {
    SweepOptions {
        out: out.to_path_buf(),
        shard,
        seeds_per_batch: homeonorm::runs::packing::SeedsPerModel::Asked(10),
        checkpoints: Default::default(),
        claim_timeout: Duration::from_secs(600),
        data_limit: homeonorm::engine::data::Limit { train: Some(usize::MAX), test: Some(usize::MAX) },
        retrain_changed: false,
        data_files: Default::default(),
    }
}

#[test]
fn the_grid_expands_in_a_stable_order_with_presets_and_overrides() {
    let e = parse(
        r#"
name = "grid"
datasets = ["cifar10", "svhn"]
methods = ["vanilla", "synaptic-scaling"]
learning_rates = [0.01, 0.001]
seeds = [4, 2, 9]

[settings]
eval_every = 50

[settings.svhn]
iterations = 70
batch_size = 64
"#,
    )
    .unwrap();
    assert_eq!(e.runs.len(), 2 * 2 * 2 * 3);
    let first = &e.runs[0];
    assert_eq!(
        (first.settings.dataset, first.settings.method.name(), first.settings.lr, first.seed),
        (DatasetKind::Cifar10, "vanilla", 0.01, 4)
    );
    assert_eq!(e.runs[1].seed, 2);
    assert_eq!(e.runs[3].settings.lr, 0.001);
    assert_eq!(e.runs[6].settings.method, "synaptic-scaling");
    let svhn = &e.runs[12];
    assert_eq!(svhn.settings.dataset, DatasetKind::Svhn);
    assert_eq!((svhn.settings.batch_size, svhn.settings.iterations, svhn.settings.eval_every), (64, 70, 50));
    assert_eq!(svhn.settings.test_batch_size, 1000, "the test batch stays the preset's 1,000");
    assert_eq!((first.settings.batch_size, first.settings.iterations), (32, 45_000));
}

#[test]
fn the_shipped_experiment_files_parse() {
    // Every file in experiments/, read from the folder: one added without its grid size
    // here fails, as does one listed here that is gone.
    let mut expected: std::collections::BTreeMap<&str, usize> = [
        ("paper-cifar10.toml", 60),
        ("paper-svhn.toml", 60),
        ("lr-sweep-cifar10.toml", 360),
        ("quick.toml", 24),
        ("table1-cifar10.toml", 150),
        ("table1-quick.toml", 30),
        ("neural-column-quick.toml", 12),
        ("neural-column-rates.toml", 8),
        ("reproduction-cifar10.toml", 40),
        ("reproduction-ablations-cifar10.toml", 30),
        ("gap-standardization-cifar10.toml", 6),
        ("gap-standardization-ten-seeds-cifar10.toml", 40),
        ("gap-jpeg-q75-cifar10.toml", 6),
        ("gap-jpeg-q50-cifar10.toml", 6),
        ("reproduction-lr-sweep-cifar10.toml", 60),
        ("architectures-quick.toml", 40),
        ("architectures-long-cifar10.toml", 60),
        ("architectures-long-resnet20-cifar10.toml", 15),
        ("architectures-cifar10.toml", 240),
    ]
    .into_iter()
    .collect();
    let folder = common::repo_root().join("experiments");
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let e = Experiment::load(&path).unwrap_or_else(|err| panic!("{file}: {err:#}"));
        let runs =
            expected.remove(file.as_str()).unwrap_or_else(|| panic!("{file}: shipped, but its grid size is not here"));
        assert_eq!(e.runs.len(), runs, "{file}");
    }
    assert!(expected.is_empty(), "listed but not shipped: {:?}", expected.keys());
    let paper = Experiment::load(&common::repo_root().join("experiments/paper-cifar10.toml")).unwrap();
    assert!(paper
        .runs
        .iter()
        .all(|r| r.settings.lr == 0.003 && r.settings.iterations == 45_000 && r.settings.batch_size == 32));
}

#[test]
fn a_models_axis_multiplies_the_grid_and_places_each_network_in_its_own_folders() {
    let e = parse("name = \"m\"\ndatasets = [\"cifar10\"]\nmodels = [\"lenet5\", \"plain-cnn\"]\nmethods = [\"vanilla\", \"batch-norm\"]\nseeds = 2\n").unwrap();
    let order: Vec<(String, String, u64)> =
        e.runs.iter().map(|r| (r.settings.model.to_string(), r.settings.method.to_string(), r.seed)).collect();
    assert_eq!(order.len(), 8);
    assert_eq!(order[0], ("lenet5".into(), "vanilla".into(), 0));
    assert_eq!(order[4], ("plain-cnn".into(), "vanilla".into(), 0), "dataset, network, method, lr, seed");
    let out = tempfile::tempdir().unwrap();
    let dirs: BTreeSet<std::path::PathBuf> =
        sweep::plan(&e, &options(out.path(), Shard::default())).into_iter().map(|r| r.dir).collect();
    assert_eq!(dirs.len(), 8, "no two runs share a folder");
    let root = out.path().join("m");
    assert!(dirs.contains(&rundir::run_path(&root, "cifar10", "vanilla", 0.003, 1)), "LeNet5 where it always was");
    assert!(dirs.contains(&rundir::run_path(&root.join("plain-cnn"), "cifar10", "batch-norm", 0.003, 0)));
    // Without the axis, one network: the settings' own.
    let one = parse(
        "name = \"m\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\"]\nseeds = 1\n[settings]\nmodel = \"mlp\"\n",
    )
    .unwrap();
    assert_eq!(one.runs.len(), 1);
    assert_eq!(one.runs[0].settings.model, homeonorm::engine::model::Network::Mlp);
}

#[test]
fn rule_settings_are_axes_of_the_methods_that_read_them_and_pack_with_the_seeds() {
    let e = parse(
        "name = \"r\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\", \"adaptive-threshold\", \"homeostatic-scaling\"]\n\
         target_rates = [0.2, 0.5]\nthreshold_rates = [0.01, 0.1]\nseeds = 2\n",
    )
    .unwrap();
    let of = |method: &str| -> Vec<(f64, f64, f64, u64)> {
        e.runs
            .iter()
            .filter(|r| r.settings.method.name() == method)
            .map(|r| (r.settings.target_rate, r.settings.threshold_rate, r.settings.scaling_rate, r.seed))
            .collect()
    };
    // vanilla reads neither: once, at the presets.
    assert_eq!(of("vanilla"), vec![(0.5, 0.03, 0.001, 0), (0.5, 0.03, 0.001, 1)]);
    // adaptive-threshold reads both: every combination, seeds innermost.
    let adaptive = of("adaptive-threshold");
    assert_eq!(adaptive.len(), 8);
    assert_eq!(&adaptive[..3], &[(0.2, 0.01, 0.001, 0), (0.2, 0.01, 0.001, 1), (0.2, 0.1, 0.001, 0)]);
    // homeostatic-scaling reads the target rate only.
    assert_eq!(of("homeostatic-scaling").iter().map(|r| r.0).collect::<Vec<_>>(), vec![0.2, 0.2, 0.5, 0.5]);
    // A sweep trains each method's rule settings and seeds as one model, each run in its own folder.
    let out = tempfile::tempdir().unwrap();
    let planned = sweep::plan(&e, &options(out.path(), Shard::default()));
    let batches = sweep::seed_batches(planned.iter().collect(), &options(out.path(), Shard::default()));
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 8, 4]);
    let dirs: BTreeSet<_> = planned.iter().map(|r| r.dir.clone()).collect();
    assert_eq!(dirs.len(), planned.len(), "one folder per run");
    let root = out.path().join("r/cifar10/adaptive-threshold/lr0.003");
    assert!(dirs.contains(&root.join("target_rate0.2-threshold_rate0.01/seed1")), "{dirs:?}");
    assert!(dirs.contains(&root.join("threshold_rate0.01/seed0")), "{dirs:?}");
}

#[test]
fn shards_are_disjoint_and_cover_the_grid() {
    let e = parse("name = \"s\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\", \"batch-norm\", \"mean-only\"]\nlearning_rates = [0.1, 0.2]\nseeds = 5\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    for n in 1..=7 {
        let mut seen = BTreeSet::new();
        for i in 0..n {
            for run in sweep::plan(&e, &options(out.path(), Shard::one(i, n))) {
                assert!(seen.insert(run.index), "run {} in two shards of {n}", run.index);
            }
        }
        assert_eq!(seen.len(), e.runs.len(), "shards of {n} cover the grid");
    }
    assert!("3/3".parse::<Shard>().is_err() && "1/0".parse::<Shard>().is_err() && "x".parse::<Shard>().is_err());
    assert!("2-1/4".parse::<Shard>().is_err() && "2-4/4".parse::<Shard>().is_err());
    assert_eq!("2/4".parse::<Shard>().unwrap(), Shard::one(2, 4));
    // Several shards per task: shards 3-5 of 12 hold exactly the runs those three shards hold.
    let range: Shard = "3-5/12".parse().unwrap();
    assert_eq!((range.to_string(), Shard::one(2, 4).to_string()), ("3-5/12".to_string(), "2/4".to_string()));
    let together: Vec<usize> = sweep::plan(&e, &options(out.path(), range)).iter().map(|r| r.index).collect();
    let mut apart: Vec<usize> =
        (3..=5).flat_map(|i| sweep::plan(&e, &options(out.path(), Shard::one(i, 12)))).map(|r| r.index).collect();
    apart.sort();
    assert_eq!(together, apart);
    assert_eq!(together, [3, 4, 5, 15, 16, 17, 27, 28, 29]);
}

#[test]
fn bad_experiment_files_name_the_file_line_and_key() {
    let base = |extra: &str, methods: &str| {
        format!("name = \"b\"\ndatasets = [\"cifar10\"]\nmethods = {methods}\nseeds = 2\n{extra}")
    };
    let cases = [
        (base("colour = 3\n", "[\"vanilla\"]"), ":5:", "colour"),
        (base("", "[\"vanilla\",\n  \"batch-renorm\"]"), ":4:", "valid methods are"),
        (base("learning_rates = [0.1, 0.0]\n", "[\"vanilla\"]"), ":5:", "learning_rates"),
        (base("learning_rates = [-1e-3]\n", "[\"vanilla\"]"), ":5:", "not a positive learning rate"),
        (base("", "[]"), ":3:", "is empty"),
        (base("[settings]\nbatch_size = 0\n", "[\"vanilla\"]"), ":6:", "settings.batch_size"),
        (base("[settings.cifar10]\niterations = -5\n", "[\"vanilla\"]"), ":6:", "settings.cifar10.iterations"),
        (base("[settings]\nbatch_sise = 3\n", "[\"vanilla\"]"), ":6:", "batch_sise"),
        (
            base(
                "[settings.cifar10]\nnormalization = { mean = [0.5, 0.5, 0.5], std = [0.5, 0.0, 0.5] }\n",
                "[\"vanilla\"]",
            ),
            ":6:",
            "settings.cifar10.normalization",
        ),
        (base("[settings]\n\nlr = -0.5\n", "[\"vanilla\"]"), ":7:", "settings.lr"),
        (base("[settings]\ngroups = 4\n", "[\"group-norm\"]"), ":6:", "settings.groups"),
        (base("[settings]\ntarget_rate = 1.0\n", "[\"adaptive-threshold\"]"), ":6:", "settings.target_rate"),
        (base("[settings.cifar10]\nthreshold_rate = 0.0\n", "[\"vanilla\"]"), ":6:", "settings.cifar10.threshold_rate"),
        (base("[settings]\nscaling_rate = -0.1\n", "[\"homeostatic-scaling\"]"), ":6:", "settings.scaling_rate"),
        (base("[settings]\neval_stats = \"mean\"\n", "[\"vanilla\"]"), ":6:", "settings.eval_stats"),
        (base("target_rates = [0.2,\n 1.5]\n", "[\"adaptive-threshold\"]"), ":6:", "target_rates: target_rate"),
        (base("scaling_rates = [0.01, 0.01]\n", "[\"homeostatic-scaling\"]"), ":5:", "listed twice"),
        (base("threshold_rates = []\n", "[\"adaptive-threshold\"]"), ":5:", "threshold_rates: is empty"),
        (
            base("threshold_rates = [0.1]\n", "[\"vanilla\", \"homeostatic-scaling\"]"),
            ":5:",
            "no method listed reads threshold_rate (adaptive-threshold do)",
        ),
        (base("models = [\"lenet5\",\n \"resnet50\"]\n", "[\"vanilla\"]"), ":6:", "unknown network `resnet50`"),
        (base("models = [\"mlp\"]\n", "[\"vanilla\", \"instance-norm\"]"), ":5:", "mlp with instance-norm"),
        (base("models = [\"mlp\", \"mlp\"]\n", "[\"vanilla\"]"), ":5:", "listed twice"),
        (base("models = []\n", "[\"vanilla\"]"), ":5:", "models"),
        (
            "name = \"b\"\ndatasets = [\"mnist\"]\nmethods = [\"vanilla\"]\nseeds = 1\n".to_string(),
            ":2:",
            "unknown dataset `mnist`",
        ),
        ("name = \"b\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\"]\nseeds = 0\n".to_string(), ":4:", "seeds"),
        ("name = \"b\"\ndatasets = [\"cifar10\"]\nseeds = 1\n".to_string(), "test.toml", "methods"),
        (
            "name = \"report\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\"]\nseeds = 1\n".to_string(),
            ":1:",
            "the report's own folder",
        ),
    ];
    let cases = cases.into_iter().chain([(
        "name = \"b\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\"]\nseeds = = 2\n".to_string(),
        ":4:",
        ": seeds: ",
    )]);
    for (text, line, key) in cases {
        let err = parse(&text).err().unwrap_or_else(|| panic!("accepted:\n{text}"));
        assert!(
            err.starts_with("experiments/test.toml") && err.contains(line) && err.contains(key),
            "expected {line} and «{key}» in: {err}"
        );
        assert!(!err.contains(": -:"), "an error names its key: {err}");
    }
    let missing = Experiment::load(Path::new("experiments/no-such.toml")).unwrap_err().to_string();
    assert!(missing.starts_with("experiments/no-such.toml: cannot read"), "{missing}");
}

fn tiny_experiment(name: &str, seeds: &str) -> Experiment {
    parse(&format!(
        "name = \"{name}\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\", \"batch-norm\"]\nseeds = {seeds}\n[settings]\niterations = 30\neval_every = 15\nrecord_every = 10\n"
    ))
    .unwrap()
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn a_sweep_resumes_redoing_only_the_half_written_run() {
    let root = tempfile::tempdir().unwrap();
    let data = common::small_cifar(root.path());
    let out = root.path().join("out");
    let e = tiny_experiment("resume", "2");
    let opts = options(&out, Shard::default());
    let first = sweep::run(&e, &opts, |_| Ok(data.shallow_clone())).unwrap();
    assert_eq!(first.trained.len(), 4);
    let runs = sweep::plan(&e, &opts);
    assert!(runs.iter().all(|r| r.state == RunState::Done(Outcome::Complete)));
    // Interrupt one run "halfway": its folder has config.json and a curve, but no summary.
    let half = &runs[2].dir;
    std::fs::remove_file(half.join(rundir::SUMMARY)).unwrap();
    std::fs::remove_file(half.join(rundir::UNIT_STATS)).unwrap();
    // The half run's config.json, every other run's summary.json.
    let watched = |r: &sweep::PlannedRun| r.dir.join(if r.dir == *half { rundir::CONFIG } else { rundir::SUMMARY });
    let before: Vec<_> = runs.iter().map(|r| mtime(&watched(r))).collect();
    std::thread::sleep(Duration::from_millis(1100));
    let second = sweep::run(&e, &opts, |_| Ok(data.shallow_clone())).unwrap();
    assert_eq!(second.trained, vec![half.clone()]);
    assert_eq!(second.already_done, 3);
    for (r, t) in runs.iter().zip(before) {
        if r.dir == *half {
            assert_eq!(rundir::state(half), RunState::Done(Outcome::Complete));
            assert!(mtime(&half.join(rundir::CONFIG)) > t, "the half run was redone");
        } else {
            assert_eq!(mtime(&r.dir.join(rundir::SUMMARY)), t, "{} was touched", r.dir.display());
        }
    }
    assert!(!half.join(rundir::CLAIM).exists(), "claims are released");
}

#[test]
fn a_run_completed_with_other_settings_after_the_plan_is_not_retrained() {
    // Two sweeps of one experiment name into one folder, 30 and 60 iterations: the second
    // planned while the first still trained, so its plan saw no complete run.
    let root = tempfile::tempdir().unwrap();
    let data = common::small_cifar(root.path());
    let out = root.path().join("out");
    let (first, second) = (tiny_experiment("same", "1"), tiny_experiment("same", "1"));
    let mut second = second;
    second.runs.iter_mut().for_each(|r| r.settings.iterations = 60);
    let opts = options(&out, Shard::default());
    let planned = sweep::plan(&second, &opts);
    assert!(planned.iter().all(|r| r.state == RunState::Missing && r.changed.is_empty()));
    sweep::run(&first, &opts, |_| Ok(data.shallow_clone())).unwrap();
    let summaries: Vec<_> = planned.iter().map(|r| mtime(&r.dir.join(rundir::SUMMARY))).collect();

    let err = sweep::run_planned(&second, &opts, &planned, |_| Ok(data.shallow_clone())).unwrap_err().to_string();
    assert!(
        err.contains("iterations: recorded 30, now 60") && err.contains(&planned[0].dir.display().to_string()),
        "{err}"
    );
    for (r, t) in planned.iter().zip(summaries) {
        assert_eq!(mtime(&r.dir.join(rundir::SUMMARY)), t, "{} was retrained", r.dir.display());
        assert!(!r.dir.join(rundir::CLAIM).exists(), "claims are released");
    }
    // The same race with the same settings: the run is simply done.
    let planned = sweep::plan(&first, &opts);
    let again = sweep::run_planned(&first, &opts, &planned, |_| Ok(data.shallow_clone())).unwrap();
    assert_eq!((again.trained.len(), again.already_done), (0, 2));
    // Asked to retrain changed runs, the second sweep does.
    let retrain = SweepOptions { retrain_changed: true, ..options(&out, Shard::default()) };
    let planned = sweep::plan(&second, &opts)
        .into_iter()
        .map(|r| sweep::PlannedRun { changed: Vec::new(), state: RunState::Missing, ..r })
        .collect::<Vec<_>>();
    let done = sweep::run_planned(&second, &retrain, &planned, |_| Ok(data.shallow_clone())).unwrap();
    assert_eq!(done.trained.len(), 2);
}

#[test]
fn a_stale_claim_is_taken_over_and_a_live_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let first = claim::try_claim(&run, Duration::from_secs(600)).unwrap().expect("claimed");
    assert!(first.is_ours());
    assert!(claim::try_claim(&run, Duration::from_secs(600)).unwrap().is_none(), "a live claim is respected");
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::OpenOptions::new().write(true).open(run.join(rundir::CLAIM)).unwrap().set_modified(old).unwrap();
    let second = claim::try_claim(&run, Duration::from_secs(600)).unwrap().expect("a claim an hour old is taken over");
    assert!(!first.is_ours() && second.is_ours());
    first.release();
    assert!(run.join(rundir::CLAIM).exists(), "a worker releases only its own claim");
    second.release();
    assert!(!run.join(rundir::CLAIM).exists());
}

#[test]
fn a_claim_whose_process_is_gone_from_this_host_is_taken_over_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let record = serde_json::json!({"host": host.trim(), "pid": gone.id(), "pid_start": 1, "token": "gone"});
    std::fs::write(run.join(rundir::CLAIM), record.to_string()).unwrap();
    assert!(claim::try_claim(&run, Duration::from_secs(600)).unwrap().is_some(), "a dead worker's claim stays");
    // This process is alive: its claim is respected even with a day's timeout left.
    let me = std::fs::read_to_string(run.join(rundir::CLAIM)).unwrap();
    assert!(me.contains(&format!("\"pid\":{}", std::process::id())), "{me}");
    assert!(claim::try_claim(&run, Duration::from_secs(86_400)).unwrap().is_none());
}

#[test]
fn an_empty_claim_left_by_a_crash_is_taken_over_after_seconds_not_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join(rundir::CLAIM), "").unwrap();
    let day = Duration::from_secs(86_400);
    assert!(claim::try_claim(&run, day).unwrap().is_none(), "a claim being written is respected");
    let old = std::time::SystemTime::now() - Duration::from_secs(10);
    std::fs::OpenOptions::new().write(true).open(run.join(rundir::CLAIM)).unwrap().set_modified(old).unwrap();
    let claim = claim::try_claim(&run, day).unwrap().expect("an empty claim 10 s old is a crashed worker's");
    assert!(claim.is_ours());
}

#[test]
fn a_grid_whose_size_overflows_is_refused_not_wrapped_to_zero() {
    // Four axes of 65,536 values, two methods: 2^65 runs, which a wrapping product counts as 0.
    let axis = |scale: f64| (1..=65_536).map(|i| format!("{}", i as f64 * scale)).collect::<Vec<_>>().join(", ");
    let text = format!(
        "name = \"huge\"\ndatasets = [\"cifar10\"]\nmethods = [\"adaptive-threshold\", \"homeostatic-scaling\"]\n\
         seeds = 1\nlearning_rates = [{}]\ntarget_rates = [{}]\nthreshold_rates = [{}]\nscaling_rates = [{}]\n",
        axis(1e-7),
        axis(1.0 / 65_537.0),
        axis(1e-6),
        axis(1e-8)
    );
    let started = std::time::Instant::now();
    let error = Experiment::parse(Path::new("huge.toml"), &text).unwrap_err().to_string();
    assert!(error.contains("more than 2^64 runs"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "refused before anything is built");
}

#[test]
fn a_changed_setting_a_method_does_not_read_leaves_its_complete_runs_done() {
    let root = tempfile::tempdir().unwrap();
    let data = common::small_cifar(root.path());
    let out = root.path().join("out");
    let grid = |target: &str| {
        parse(&format!(
            "name = \"rates\"\ndatasets = [\"cifar10\"]\nmethods = [\"vanilla\", \"adaptive-threshold\"]\nseeds = 1\n\
             [settings]\niterations = 20\neval_every = 10\n{target}"
        ))
        .unwrap()
    };
    let opts = options(&out, Shard::default());
    assert_eq!(sweep::run(&grid(""), &opts, |_| Ok(data.shallow_clone())).unwrap().trained.len(), 2);
    // Another target rate: adaptive-threshold reads it (a new run), vanilla does not (done).
    let planned = sweep::plan(&grid("target_rate = 0.3\n"), &opts);
    sweep::check_changed(&planned, &opts).unwrap();
    let state = |method: &str| {
        let run = planned.iter().find(|r| r.spec.settings.method == method).unwrap();
        (run.state.clone(), run.changed.clone())
    };
    assert_eq!(state("vanilla"), (RunState::Done(Outcome::Complete), Vec::<String>::new()));
    assert_eq!(state("adaptive-threshold").0, RunState::Missing, "its own folder level for the new rate");
}

#[test]
fn a_rule_value_whose_folder_no_filesystem_takes_is_refused_when_the_file_is_read() {
    for (axis, value) in [("target_rates", "5e-324"), ("threshold_rates", "1e300")] {
        let error = parse(&format!(
            "name = \"rules\"\ndatasets = [\"cifar10\"]\nmethods = [\"adaptive-threshold\"]\nseeds = 1\n{axis} = [{value}]\n"
        ))
        .unwrap_err();
        assert!(error.contains("longer than a folder name may be"), "{axis} {value}: {error}");
    }
}

#[test]
fn a_run_in_the_older_layout_is_never_retrained_as_another_settings_run() {
    let root = tempfile::tempdir().unwrap();
    let data = common::small_cifar(root.path());
    let out = root.path().join("out");
    let grid = |rates: &str| {
        parse(&format!(
            "name = \"older\"\ndatasets = [\"cifar10\"]\nmethods = [\"adaptive-threshold\"]\nseeds = 1\n\
             target_rates = [{rates}]\n[settings]\niterations = 20\neval_every = 10\n"
        ))
        .unwrap()
    };
    let opts = options(&out, Shard::default());
    sweep::run(&grid("0.2"), &opts, |_| Ok(data.shallow_clone())).unwrap();
    // Where homeonorm put it before the rule level existed: lr0.003/seed0.
    let lr = out.join("older/cifar10/adaptive-threshold/lr0.003");
    std::fs::rename(lr.join("target_rate0.2/seed0"), lr.join("seed0")).unwrap();
    let curve = std::fs::read(lr.join("seed0/curve.csv")).unwrap();
    let retrain = SweepOptions { retrain_changed: true, ..opts };
    // With the preset (0.5) asked for too, and --retrain-changed: the older run is the 0.2 run, done.
    let result = sweep::run(&grid("0.2, 0.5"), &retrain, |_| Ok(data.shallow_clone())).unwrap();
    assert_eq!(result.trained, vec![lr.join("target_rate0.5-threshold_rate0.03/seed0")]);
    assert_eq!(std::fs::read(lr.join("seed0/curve.csv")).unwrap(), curve, "the 0.2 run written over");
    assert_eq!(result.already_done, 1);
}
