//! `homeonorm export tensorboard RESULTS`: every finished run of a results folder as
//! TensorBoard event files, so that `tensorboard --logdir` (and W&B, Aim or SwanLab,
//! which import them) shows each run's curves, measures and unit histograms, and the
//! HParams tab lists every run with its settings beside its final numbers.
//!
//! One run folder → one TensorBoard run (`OUT/<its path under RESULTS>/`), with scalars
//! at the iterations the run recorded them: `test_accuracy` and `train_loss` (curve.csv),
//! each layer's `activation_prob_mean/<layer>` and `activation_prob_cv/<layer>` across
//! units (activation_prob.csv), and at the last iteration `alpha_mean/<layer>`, the
//! `final/…` numbers the HParams tab shows, and a histogram of each unit measure per
//! layer (`units/<measure>/<layer>`, unit_stats.csv). The HParams plugin's experiment
//! (every setting that differs between runs, with the values it takes, and the
//! metrics) is the run at OUT's root; each run holds its session's start (its settings)
//! and end (complete: success; diverged: failure).
//!
//! The record format is TensorFlow's (`tensorflow/core/lib/io/record_writer.cc`): the
//! payload's length as u64, its masked CRC-32C, the payload, its masked CRC-32C; the
//! payloads are `Event` protocol buffers, declared below with prost under TensorBoard's
//! field numbers (`tensorboard/compat/proto/event.proto`, `summary.proto`,
//! `plugins/hparams/api.proto`, `plugin_data.proto`). Each file is written whole under a
//! fixed name, with the run's own start time as every event's wall time: exporting
//! twice gives the same bytes.

use crate::engine::settings::{differing_columns, GroupKey};
use crate::results::report::{collect, RunRecord};
use crate::results::rundir::{self, read_csv, ActivationRow, CurveRow, Outcome, UnitRow};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The event files' name: fixed, so that an export written again replaces its files.
pub const EVENT_FILE: &str = "events.out.tfevents.0.homeonorm";
/// Bins of each unit histogram (equal widths between the layer's least and greatest value).
const HISTOGRAM_BINS: usize = 30;

/// The protocol buffers TensorBoard reads, under its field numbers.
mod proto {
    use std::collections::BTreeMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        #[prost(double, tag = "1")]
        pub wall_time: f64,
        #[prost(int64, tag = "2")]
        pub step: i64,
        #[prost(oneof = "What", tags = "3, 5")]
        pub what: Option<What>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        #[prost(string, tag = "3")]
        FileVersion(String),
        #[prost(message, tag = "5")]
        Summary(Summary),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Summary {
        #[prost(message, repeated, tag = "1")]
        pub value: Vec<Value>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(string, tag = "1")]
        pub tag: String,
        #[prost(message, optional, tag = "9")]
        pub metadata: Option<SummaryMetadata>,
        #[prost(oneof = "Data", tags = "2, 5")]
        pub data: Option<Data>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        #[prost(float, tag = "2")]
        SimpleValue(f32),
        #[prost(message, tag = "5")]
        Histo(HistogramProto),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SummaryMetadata {
        #[prost(message, optional, tag = "1")]
        pub plugin_data: Option<PluginData>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PluginData {
        #[prost(string, tag = "1")]
        pub plugin_name: String,
        #[prost(bytes = "vec", tag = "2")]
        pub content: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HistogramProto {
        #[prost(double, tag = "1")]
        pub min: f64,
        #[prost(double, tag = "2")]
        pub max: f64,
        #[prost(double, tag = "3")]
        pub num: f64,
        #[prost(double, tag = "4")]
        pub sum: f64,
        #[prost(double, tag = "5")]
        pub sum_squares: f64,
        #[prost(double, repeated, tag = "6")]
        pub bucket_limit: Vec<f64>,
        #[prost(double, repeated, tag = "7")]
        pub bucket: Vec<f64>,
    }

    /// `tensorboard.hparams.HParamsPluginData`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HParamsPluginData {
        #[prost(int32, tag = "1")]
        pub version: i32,
        #[prost(oneof = "HParamsData", tags = "2, 3, 4")]
        pub data: Option<HParamsData>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum HParamsData {
        #[prost(message, tag = "2")]
        Experiment(Experiment),
        #[prost(message, tag = "3")]
        SessionStartInfo(SessionStartInfo),
        #[prost(message, tag = "4")]
        SessionEndInfo(SessionEndInfo),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Experiment {
        #[prost(string, tag = "1")]
        pub description: String,
        #[prost(message, repeated, tag = "4")]
        pub hparam_infos: Vec<HParamInfo>,
        #[prost(message, repeated, tag = "5")]
        pub metric_infos: Vec<MetricInfo>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HParamInfo {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "3")]
        pub description: String,
        /// `DataType`: 1 string, 2 bool, 3 float64.
        #[prost(int32, tag = "4")]
        pub r#type: i32,
        #[prost(message, optional, tag = "5")]
        pub domain_discrete: Option<ListValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricInfo {
        #[prost(message, optional, tag = "1")]
        pub name: Option<MetricName>,
        #[prost(string, tag = "4")]
        pub description: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricName {
        #[prost(string, tag = "1")]
        pub group: String,
        #[prost(string, tag = "2")]
        pub tag: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SessionStartInfo {
        #[prost(btree_map = "string, message", tag = "1")]
        pub hparams: BTreeMap<String, ProtoValue>,
        #[prost(double, tag = "5")]
        pub start_time_secs: f64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SessionEndInfo {
        /// `Status`: 1 success, 2 failure.
        #[prost(int32, tag = "1")]
        pub status: i32,
        #[prost(double, tag = "2")]
        pub end_time_secs: f64,
    }

    /// `google.protobuf.ListValue`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListValue {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<ProtoValue>,
    }

    /// `google.protobuf.Value` (the kinds a setting takes).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ProtoValue {
        #[prost(oneof = "Kind", tags = "2, 3, 4")]
        pub kind: Option<Kind>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(double, tag = "2")]
        Number(f64),
        #[prost(string, tag = "3")]
        Text(String),
        #[prost(bool, tag = "4")]
        Bool(bool),
    }
}

use proto::{Data, HParamsData, Kind, ProtoValue};

/// An event file's bytes: TensorFlow records of `Event`s, the file version first.
struct EventFile {
    bytes: Vec<u8>,
    wall_time: f64,
}

impl EventFile {
    fn new(wall_time: f64) -> EventFile {
        let mut file = EventFile { bytes: Vec::new(), wall_time };
        file.event(0, proto::What::FileVersion("brain.Event:2".into()));
        file
    }

    fn event(&mut self, step: usize, what: proto::What) {
        let event = proto::Event { wall_time: self.wall_time, step: step as i64, what: Some(what) };
        let payload = prost::Message::encode_to_vec(&event);
        let length = (payload.len() as u64).to_le_bytes();
        self.bytes.extend_from_slice(&length);
        self.bytes.extend_from_slice(&masked_crc32c(&length).to_le_bytes());
        self.bytes.extend_from_slice(&payload);
        self.bytes.extend_from_slice(&masked_crc32c(&payload).to_le_bytes());
    }

    fn summary(&mut self, step: usize, tag: &str, data: Data) {
        let value = proto::Value { tag: tag.to_string(), metadata: None, data: Some(data) };
        self.event(step, proto::What::Summary(proto::Summary { value: vec![value] }));
    }

    fn scalar(&mut self, step: usize, tag: &str, value: f64) {
        if value.is_finite() {
            self.summary(step, tag, Data::SimpleValue(value as f32));
        }
    }

    /// One of the HParams plugin's records, under its tag (`_hparams_/experiment`, …).
    fn hparams(&mut self, tag: &str, data: HParamsData) {
        let content = prost::Message::encode_to_vec(&proto::HParamsPluginData { version: 0, data: Some(data) });
        let plugin_data = proto::PluginData { plugin_name: "hparams".into(), content };
        let metadata = proto::SummaryMetadata { plugin_data: Some(plugin_data) };
        let value = proto::Value { tag: tag.to_string(), metadata: Some(metadata), data: None };
        self.event(0, proto::What::Summary(proto::Summary { value: vec![value] }));
    }
}

/// TensorFlow's masked CRC-32C (Castagnoli) of a record's length and of its payload.
fn masked_crc32c(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// A histogram of `values` as TensorBoard's `HistogramProto`: [`HISTOGRAM_BINS`] equal
/// bins between the least and the greatest value, each bucket's right edge as its
/// limit, and an empty bucket first whose limit is the left edge (as PyTorch's
/// `SummaryWriter.add_histogram` writes them).
fn histogram(values: &[f64]) -> proto::HistogramProto {
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let bins = if max > min { HISTOGRAM_BINS } else { 1 };
    let width = (max - min) / bins as f64;
    let mut bucket = vec![0.0; bins + 1];
    for v in values {
        let k = if width > 0.0 { (((v - min) / width) as usize).min(bins - 1) } else { 0 };
        bucket[k + 1] += 1.0;
    }
    let bucket_limit = (0..=bins).map(|k| if k == bins { max } else { min + width * k as f64 }).collect();
    proto::HistogramProto {
        min,
        max,
        num: values.len() as f64,
        sum: values.iter().sum(),
        sum_squares: values.iter().map(|v| v * v).sum(),
        bucket_limit,
        bucket,
    }
}

/// A setting's value as an HParams value: numbers, booleans and text as such, anything
/// else (a list, an object) as its JSON text; none for null.
fn hparam_value(value: &serde_json::Value) -> Option<ProtoValue> {
    let kind = match value {
        serde_json::Value::Null => return None,
        serde_json::Value::Bool(b) => Kind::Bool(*b),
        serde_json::Value::Number(n) => Kind::Number(n.as_f64()?),
        serde_json::Value::String(s) => Kind::Text(s.clone()),
        other => Kind::Text(other.to_string()),
    };
    Some(ProtoValue { kind: Some(kind) })
}

/// The settings every session records, before those on which the runs differ.
const ALWAYS: [&str; 5] = ["dataset", "model", "method", "lr", "seed"];

/// The settings a run's session records: dataset, network, method, learning rate and
/// seed, and every setting on which the exported runs differ.
fn session_hparams(r: &RunRecord, differing: &[String]) -> BTreeMap<String, ProtoValue> {
    let s = &r.key.settings;
    let mut hparams = BTreeMap::new();
    let mut put = |name: &str, value: Option<&serde_json::Value>| {
        if let Some(value) = value.and_then(hparam_value) {
            hparams.insert(name.to_string(), value);
        }
    };
    let always: [serde_json::Value; 5] =
        [s.dataset.name().into(), s.model.name().into(), s.method.name().into(), s.lr.into(), r.seed.into()];
    for (name, value) in ALWAYS.iter().zip(&always) {
        put(name, Some(value));
    }
    // (as report's columns name them: nested values flattened, `normalization_mean`)
    let columns = r.key.columns();
    for name in differing {
        let Some((_, text)) = columns.iter().find(|(n, t)| n == name && !t.is_empty()) else { continue };
        let value = match (text.parse::<f64>(), text.as_str()) {
            (Ok(number), _) => number.into(),
            (_, "true") => true.into(),
            (_, "false") => false.into(),
            _ => text.clone().into(),
        };
        put(name, Some(&value));
    }
    hparams
}

/// A run's final numbers as `final/…` scalars (name → value), the HParams tab's
/// metrics, from its summary and its unit measures (`units`: when it recorded them).
fn final_numbers(r: &RunRecord, units: Option<&[UnitRow]>) -> Vec<(String, f64)> {
    let Some(summary) = &r.summary else { return Vec::new() };
    let mut numbers: Vec<(String, f64)> = [
        ("final/test_accuracy", summary.final_accuracy),
        ("final/best_accuracy", summary.best_accuracy),
        ("final/test_accuracy_batch1", summary.test_accuracy_batch1),
        ("final/train_loss", summary.final_train_loss),
    ]
    .into_iter()
    .filter_map(|(name, v)| v.map(|v| (name.to_string(), v)))
    .collect();
    for layer in &summary.layers {
        for key in ["activation_prob_mean", "activation_prob_cv", "entropy_mean", "mean_active_value_cv", "alpha_mean"]
        {
            if let Some(v) = layer.get(key) {
                numbers.push((format!("final/{key}/{}", layer.layer), v));
            }
        }
    }
    if let Some(units) = units {
        let (prob_cv, _) = crate::results::report::pooled_cvs(units, &r.key.settings.model.pooled_layers());
        numbers.push(("final/fc_prob_cv".into(), prob_cv));
    }
    numbers.retain(|(_, v)| v.is_finite());
    numbers
}

/// Seconds since 1970 of an RFC 3339 time (a run's start); 0 when it is not known.
fn epoch_seconds(time: Option<&str>) -> f64 {
    time.and_then(|t| t.parse::<jiff::Timestamp>().ok()).map_or(0.0, |t| t.as_second() as f64)
}

/// One run's event file, and the names of the final numbers it holds (the experiment's metrics).
fn run_events(r: &RunRecord, differing: &[String]) -> Result<(EventFile, Vec<String>)> {
    let summary = r.summary.as_ref().expect("finished runs only");
    let stretches = r.provenance.as_ref().map_or(&[][..], |p| &p.stretches[..]);
    let started = epoch_seconds(stretches.first().and_then(|s| s.started.as_deref()));
    let ended = epoch_seconds(stretches.last().and_then(|s| s.ended.as_deref()));
    let mut file = EventFile::new(started);
    let start = proto::SessionStartInfo { hparams: session_hparams(r, differing), start_time_secs: started };
    file.hparams("_hparams_/session_start_info", HParamsData::SessionStartInfo(start));

    for row in read_csv::<CurveRow>(&r.dir)? {
        file.scalar(row.iteration, "test_accuracy", row.test_accuracy);
        if let Some(loss) = row.train_loss {
            file.scalar(row.iteration, "train_loss", loss);
        }
    }
    if let Some(rows) = rundir::read_optional_csv::<ActivationRow>(&r.dir)? {
        // (rows come by iteration, then layer)
        let mut by_step: BTreeMap<(usize, String), Vec<f64>> = BTreeMap::new();
        for row in rows {
            by_step.entry((row.iteration, row.layer)).or_default().push(row.activation_prob);
        }
        for ((iteration, layer), probs) in by_step {
            let (mean, _) = crate::engine::metrics::mean_sample_std(&probs);
            file.scalar(iteration, &format!("activation_prob_mean/{layer}"), mean);
            let cv = crate::engine::metrics::coefficient_of_variation(&probs);
            file.scalar(iteration, &format!("activation_prob_cv/{layer}"), cv);
        }
    }
    let last = summary.iterations;
    for layer in &summary.layers {
        if let Some(alpha) = layer.get("alpha_mean") {
            file.scalar(last, &format!("alpha_mean/{}", layer.layer), alpha);
        }
    }
    let units = rundir::read_optional_csv::<UnitRow>(&r.dir)?;
    if let Some(units) = &units {
        let layers = crate::results::report::layer_names(units.iter().map(|u| u.layer.as_str()));
        for layer in &layers {
            let of_layer: Vec<&UnitRow> = units.iter().filter(|u| &u.layer == layer).collect();
            let measures: [(&str, Vec<f64>); 4] = [
                ("activation_prob", of_layer.iter().map(|u| u.activation_prob).collect()),
                ("entropy", of_layer.iter().map(|u| u.entropy).collect()),
                ("mean_active_value", of_layer.iter().filter_map(|u| u.mean_active_value).collect()),
                ("alpha", of_layer.iter().filter_map(|u| u.alpha).collect()),
            ];
            for (measure, values) in measures {
                let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
                if !values.is_empty() {
                    file.summary(last, &format!("units/{measure}/{layer}"), Data::Histo(histogram(&values)));
                }
            }
        }
    }
    let finals = final_numbers(r, units.as_deref());
    for (name, value) in &finals {
        file.scalar(last, name, *value);
    }
    let status = if summary.outcome == Outcome::Complete { 1 } else { 2 };
    let end = proto::SessionEndInfo { status, end_time_secs: ended };
    file.hparams("_hparams_/session_end_info", HParamsData::SessionEndInfo(end));
    Ok((file, finals.into_iter().map(|(name, _)| name).collect()))
}

/// The experiment: every setting a session records, with the values the runs take (so
/// TensorBoard sorts and filters the columns), and the runs' final numbers (`metrics`).
fn experiment(runs: &[&RunRecord], differing: &[String], metrics: Vec<String>) -> proto::Experiment {
    let mut domains: BTreeMap<String, Vec<ProtoValue>> = BTreeMap::new();
    for r in runs {
        for (name, value) in session_hparams(r, differing) {
            let domain = domains.entry(name).or_default();
            if !domain.contains(&value) {
                domain.push(value);
            }
        }
    }
    // In the sessions' order (TensorBoard shows the columns so): the settings every
    // session records, then those the runs differ in.
    let order = |name: &String| ALWAYS.iter().position(|a| a == name).or(differing.iter().position(|d| d == name));
    let mut domains: Vec<(String, Vec<ProtoValue>)> = domains.into_iter().collect();
    domains.sort_by_key(|(name, _)| (!ALWAYS.contains(&name.as_str()), order(name)));
    let hparam_infos = domains
        .into_iter()
        .map(|(name, mut values)| {
            let r#type = match values[0].kind {
                Some(Kind::Number(_)) => 3,
                Some(Kind::Bool(_)) => 2,
                _ => 1,
            };
            values.sort_by(|a, b| match (&a.kind, &b.kind) {
                (Some(Kind::Number(x)), Some(Kind::Number(y))) => x.total_cmp(y),
                (Some(Kind::Text(x)), Some(Kind::Text(y))) => x.cmp(y),
                (Some(Kind::Bool(x)), Some(Kind::Bool(y))) => x.cmp(y),
                _ => std::cmp::Ordering::Equal,
            });
            proto::HParamInfo {
                name,
                description: String::new(),
                r#type,
                domain_discrete: Some(proto::ListValue { values }),
            }
        })
        .collect();
    let metric_infos = metrics
        .into_iter()
        .map(|tag| proto::MetricInfo {
            name: Some(proto::MetricName { group: String::new(), tag }),
            description: String::new(),
        })
        .collect();
    proto::Experiment { description: "homeonorm: one session per run folder".into(), hparam_infos, metric_infos }
}

/// Writes the event files of every finished run under `results` into `out` (its run
/// folders' paths kept); returns how many runs it wrote and the folders it left out.
pub fn export(results: &Path, out: &Path) -> Result<(usize, Vec<(PathBuf, String)>)> {
    let found = collect(results)?;
    let mut left_out: Vec<(PathBuf, String)> = found.unreadable;
    left_out.extend(found.duplicates);
    let (finished, unfinished): (Vec<&RunRecord>, Vec<&RunRecord>) =
        found.runs.iter().partition(|r| r.summary.is_some());
    left_out.extend(unfinished.iter().map(|r| (r.dir.clone(), r.problem.clone().unwrap_or_default())));
    if finished.is_empty() {
        bail!("{}: no finished run to export{}", results.display(), crate::results::report::reasons(&left_out));
    }
    let keys: Vec<&GroupKey> = finished.iter().map(|r| &r.key).collect();
    let differing = differing_columns(&keys);
    let mut metrics: Vec<String> = Vec::new();
    for r in &finished {
        let dir = out.join(r.dir.strip_prefix(results).unwrap_or(&r.dir));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let (file, finals) = run_events(r, &differing).with_context(|| format!("exporting {}", r.dir.display()))?;
        rundir::write_atomic(&dir, EVENT_FILE, &file.bytes)?;
        for name in finals {
            if !metrics.contains(&name) {
                metrics.push(name);
            }
        }
    }
    // (`out` is there: every run's folder is below it)
    let mut root = EventFile::new(0.0);
    root.hparams("_hparams_/experiment", HParamsData::Experiment(experiment(&finished, &differing, metrics)));
    rundir::write_atomic(out, EVENT_FILE, &root.bytes)?;
    Ok((finished.len(), left_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_checksum_is_tensorflows_masked_crc32c() {
        // CRC-32C("123456789") = 0xE3069283 (RFC 3720's check value); masked as TensorFlow
        // masks it: rotated right by 15, plus 0xa282ead8.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(masked_crc32c(b"123456789"), 0xE306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8));
    }

    #[test]
    fn a_histogram_counts_every_value_once_between_its_edges() {
        let values: Vec<f64> = (0..=30).map(|k| k as f64 / 30.0).collect();
        let h = histogram(&values);
        assert_eq!((h.min, h.max, h.num), (0.0, 1.0, 31.0));
        assert_eq!(h.bucket.iter().sum::<f64>(), 31.0);
        assert_eq!((h.bucket_limit.len(), h.bucket.len(), h.bucket[0]), (31, 31, 0.0), "an empty first bucket");
        assert_eq!(h.bucket[30], 2.0, "the greatest value falls in the last bin");
        let one = histogram(&[0.5, 0.5]);
        assert_eq!((one.bucket_limit, one.bucket), (vec![0.5, 0.5], vec![0.0, 2.0]));
    }
}
