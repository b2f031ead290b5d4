//! `report/runs.csv`: one row per run folder — its setting and seed, how it ended, its
//! numbers, the data it trained on and who made it (`provenance.json`) — so that any
//! run a table pools can be checked by itself; and what a result set says of its code,
//! machines and jobs (the report's "Provenance", `compare`'s note when two sides differ).

use crate::results::report::{csv_cell, measure_columns, RunRecord, NOT_RECORDED};
use crate::results::rundir::{self, Outcome, Provenance, Stretch, UnitRow};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// A run's outcome as `runs.csv` names it.
fn outcome(r: &RunRecord) -> &'static str {
    match r.summary.as_ref().map(|s| s.outcome) {
        Some(Outcome::Complete) => "complete",
        Some(Outcome::Diverged) => "diverged",
        None => "unfinished",
    }
}

/// The distinct values of one field over a run's stretches, in order, joined with " + "
/// (a run resumed on another machine or version names both); empty when none says.
fn across(stretches: &[Stretch], field: impl Fn(&Stretch) -> Option<String>) -> String {
    let mut values: Vec<String> = Vec::new();
    for value in stretches.iter().filter_map(field) {
        if !values.contains(&value) {
            values.push(value);
        }
    }
    values.join(" + ")
}

/// Who made a run, as `runs.csv`'s columns: the code, device, threads, hosts and Slurm
/// jobs of its stretches, its first start and last end, and how many stretches.
pub fn provenance_columns(provenance: Option<&Provenance>) -> Vec<(&'static str, String)> {
    let stretches = provenance.map_or(&[][..], |p| &p.stretches[..]);
    let job = |s: &Stretch| {
        s.slurm.as_ref().map(|j| match j.restart_count {
            Some(n) if n > 0 => format!("{} (restart {n})", j.name()),
            _ => j.name(),
        })
    };
    vec![
        ("homeonorm", across(stretches, |s| s.homeonorm.clone())),
        ("commit", across(stretches, |s| s.commit.clone())),
        ("libtorch", across(stretches, |s| s.libtorch.clone())),
        ("device", across(stretches, |s| s.device.clone())),
        ("device_name", across(stretches, |s| s.device_name.clone())),
        ("threads", across(stretches, |s| s.threads.map(|t| t.to_string()))),
        ("hosts", across(stretches, |s| s.host.clone())),
        ("slurm_jobs", across(stretches, job)),
        ("started", stretches.first().and_then(|s| s.started.clone()).unwrap_or_default()),
        ("ended", stretches.last().and_then(|s| s.ended.clone()).unwrap_or_default()),
        ("stretches", if stretches.is_empty() { String::new() } else { stretches.len().to_string() }),
    ]
}

/// How far a run trained: its summary's count or, for a run stopped mid-way (a signal, a
/// lost node), its last checkpoint's; empty where neither says.
fn iterations_trained(r: &RunRecord) -> String {
    match &r.summary {
        Some(s) => s.iterations.to_string(),
        None => super::checkpoint::read(&r.dir).ok().flatten().map_or(String::new(), |c| c.info.iteration.to_string()),
    }
}

/// `runs.csv`'s rows: every run of `records` (complete, diverged or unfinished), its
/// `setting` (the row of `summary.csv` it is pooled into, from `setting_of`), and every
/// layer of `layers`' headline measures.
pub fn csv(
    root: &Path,
    records: &[RunRecord],
    setting_of: impl Fn(&RunRecord) -> usize,
    layers: &[String],
) -> Result<Vec<u8>> {
    let num = csv_cell;
    let mut rows: Vec<Vec<(String, String)>> = Vec::new();
    for r in records {
        let mut cols: Vec<(String, String)> = vec![
            ("run".into(), crate::text::path(r.dir.strip_prefix(root).unwrap_or(&r.dir))),
            ("setting".into(), setting_of(r).to_string()),
        ];
        cols.extend(r.key.columns());
        let summary = r.summary.as_ref();
        cols.extend([
            ("seed".into(), r.seed.to_string()),
            ("outcome".into(), outcome(r).to_string()),
            ("why_unfinished".into(), r.problem.clone().unwrap_or_default()),
            ("iterations_trained".into(), iterations_trained(r)),
            ("final_accuracy".into(), num(summary.and_then(|s| s.final_accuracy))),
            ("best_accuracy".into(), num(summary.and_then(|s| s.best_accuracy))),
            ("best_iteration".into(), summary.and_then(|s| s.best_iteration).map_or(String::new(), |i| i.to_string())),
            ("test_accuracy_batch1".into(), num(summary.and_then(|s| s.test_accuracy_batch1))),
            ("final_train_loss".into(), num(summary.and_then(|s| s.final_train_loss))),
        ]);
        let (prob_cv, value_cv) = match summary.filter(|s| s.outcome == Outcome::Complete) {
            Some(_) => match rundir::read_optional_csv::<UnitRow>(&r.dir)? {
                Some(units) => {
                    let (p, v) = crate::results::report::pooled_cvs(&units, &r.key.settings.model.pooled_layers());
                    (Some(p), Some(v))
                }
                None => (None, None),
            },
            None => (None, None),
        };
        cols.extend([("fc_prob_cv".into(), num(prob_cv)), ("fc_value_cv".into(), num(value_cv))]);
        let of_run = |layer: &str| summary.and_then(|s| s.layers.iter().find(|l| l.layer == layer));
        cols.extend(measure_columns(layers, |layer, key| of_run(layer).and_then(|l| l.get(key))));
        cols.push(("data_sha256".into(), r.data_sha256.clone().unwrap_or_default()));
        cols.push(("wall_time_s".into(), num(summary.and_then(|s| s.wall_time_s))));
        // (a provenance.json that does not read makes the run unfinished, named in `why_unfinished`)
        cols.extend(provenance_columns(r.provenance.as_ref()).into_iter().map(|(k, v)| (k.to_string(), v)));
        rows.push(cols);
    }
    crate::results::table::named_rows_csv(&rows)
}

/// What a result set's finished runs say of who made them: each distinct code, device
/// and thread count with its number of runs, then the hosts and Slurm jobs.
pub struct Makers {
    /// (homeonorm, commit, libtorch, device, device name, threads) → runs.
    pub setups: BTreeMap<[String; 6], usize>,
    pub hosts: BTreeMap<String, usize>,
    pub slurm_jobs: Vec<String>,
    /// Finished runs without a `provenance.json`.
    pub not_recorded: usize,
}

impl Makers {
    pub fn of(records: &[RunRecord]) -> Makers {
        let mut makers =
            Makers { setups: BTreeMap::new(), hosts: BTreeMap::new(), slurm_jobs: Vec::new(), not_recorded: 0 };
        for r in records.iter().filter(|r| r.summary.is_some()) {
            let Some(provenance) = &r.provenance else {
                makers.not_recorded += 1;
                continue;
            };
            let columns: BTreeMap<&str, String> = provenance_columns(Some(provenance)).into_iter().collect();
            let get = |k: &str| columns.get(k).cloned().unwrap_or_default();
            let setup = ["homeonorm", "commit", "libtorch", "device", "device_name", "threads"].map(get);
            *makers.setups.entry(setup).or_default() += 1;
            // A host counts a run once, however many of its stretches ran there.
            let hosts: std::collections::BTreeSet<String> =
                provenance.stretches.iter().filter_map(|s| s.host.clone()).collect();
            for host in hosts {
                *makers.hosts.entry(host).or_default() += 1;
            }
            for job in provenance.stretches.iter().filter_map(|s| s.slurm.as_ref().map(|j| j.name())) {
                if !makers.slurm_jobs.contains(&job) {
                    makers.slurm_jobs.push(job);
                }
            }
        }
        makers
    }

    /// The distinct code (homeonorm version and commit, libtorch) the runs ran on.
    pub fn code(&self) -> Vec<String> {
        let mut code: Vec<String> = self
            .setups
            .keys()
            .map(|s| format!("homeonorm {} ({}), libtorch {}", s[0], or_unknown(&s[1]), s[2]))
            .collect();
        code.dedup();
        code
    }

    /// The distinct devices (kind and name) the runs ran on.
    pub fn devices(&self) -> Vec<String> {
        let mut devices: Vec<String> =
            self.setups.keys().map(|s| format!("{} ({})", s[3], or_unknown(&s[4]))).collect();
        devices.sort();
        devices.dedup();
        devices
    }

    /// The report's "Provenance" section.
    pub fn markdown(&self) -> String {
        let mut md = String::from("\n## Provenance\n\n");
        md += "Who made the finished runs, from each run's `provenance.json` (a run resumed on another machine or \
               version names both, joined by +; `runs.csv` gives each run's).\n\n";
        let mut table = crate::results::table::Table::new([
            "homeonorm",
            "commit",
            "libtorch",
            "device",
            "device name",
            "threads",
            "runs",
        ]);
        for (setup, n) in &self.setups {
            let mut row: Vec<String> = setup.iter().map(|v| or_unknown(v).to_string()).collect();
            row.push(n.to_string());
            table.push(row);
        }
        if self.not_recorded > 0 {
            let mut row = vec![NOT_RECORDED.to_string(); 6];
            row.push(self.not_recorded.to_string());
            table.push(row);
        }
        md += &table.markdown();
        if !self.hosts.is_empty() {
            let hosts: Vec<String> = self.hosts.iter().take(12).map(|(h, n)| format!("{h} ({n})")).collect();
            let more = self.hosts.len().saturating_sub(12);
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            md += &format!("\nHosts (runs): {}{more}.\n", hosts.join(", "));
        }
        if !self.slurm_jobs.is_empty() {
            md += &format!("\nSlurm jobs: {}.\n", self.slurm_jobs.join(", "));
        }
        md
    }
}

fn or_unknown(value: &str) -> &str {
    if value.is_empty() {
        "unknown"
    } else {
        value
    }
}
