//! Mid-run checkpoints: everything the rest of a run depends on, in its run folder
//! (`checkpoint.safetensors`), so that a run stopped part-way — a preemption's SIGTERM, a
//! kill -9, a lost node — goes on where it stopped and ends byte for byte as the same
//! run never stopped.
//!
//! One file per run (a seed batch's runs each have theirs, written together): the model's
//! parameters and buffers and its Adam moments (`Learner::model_checkpoint`) as tensors,
//! the heat-map rows and the training losses since the last evaluation as tensors, and in
//! the safetensors header's metadata (key `homeonorm`, JSON, [`CheckpointInfo`]) the
//! iteration, the settings and data it trains on, and the curve so far. Where a run is in
//! its batch order follows from the iteration (`BatchSampler::skip`).
//!
//! Written atomically (`rundir::write_durably`: a temporary file, fsync, rename, the
//! folder fsynced): the previous checkpoint stays until the new one is whole. A checkpoint is used only when its format,
//! seed, settings and data are the run's; any other is named in the log and the run
//! starts over (it is never used silently, and never stops a sweep).

use super::rundir::{CurveRow, Stretch, CHECKPOINT};
use crate::engine::data::DataFile;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The checkpoint format this homeonorm writes and reads.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// A checkpoint's metadata key in the safetensors header.
const METADATA_KEY: &str = "homeonorm";

/// What a checkpoint holds of its run besides the tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    pub checkpoint_format: u32,
    /// Training steps taken.
    pub iteration: usize,
    pub seed: u64,
    /// The run's settings and data subset, as `config.json` records them (`TrainSettings::identity`).
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// The content hash of the data it trains on (`None`: not known).
    pub data_sha256: Option<String>,
    /// The curve's rows so far.
    pub curve: Vec<CurveRow>,
    pub diverged_at: Option<usize>,
    /// The training losses' sum since the last evaluation, and how many steps it sums.
    pub loss_sum: f64,
    pub loss_steps: usize,
    /// The iterations of the heat-map rows recorded so far (tensor `log/activity`).
    pub activity_iterations: Vec<usize>,
    /// Seconds trained before this checkpoint, over every stretch of the run.
    pub wall_time_s: f64,
    /// Every stretch of the run up to this checkpoint, the last ending here: what its
    /// `provenance.json` goes on from (empty in checkpoints written before it was kept).
    #[serde(default)]
    pub stretches: Vec<Stretch>,
    /// SHA-256 of the tensors (name, dtype, shape, bytes, in name order), set when written
    /// and checked when read: a checkpoint damaged in its data is not read as another run's state.
    #[serde(default)]
    pub tensors_sha256: String,
}

/// A checkpoint read back: its metadata and tensors (on the CPU).
pub struct Checkpoint {
    pub info: CheckpointInfo,
    pub tensors: HashMap<String, Tensor>,
}

fn dtype(kind: Kind) -> Result<safetensors::Dtype> {
    Ok(match kind {
        Kind::Float => safetensors::Dtype::F32,
        Kind::Double => safetensors::Dtype::F64,
        Kind::Int64 => safetensors::Dtype::I64,
        Kind::Int => safetensors::Dtype::I32,
        Kind::Uint8 => safetensors::Dtype::U8,
        Kind::Bool => safetensors::Dtype::BOOL,
        other => bail!("a checkpoint holds no {other:?} tensors"),
    })
}

fn kind(dtype: safetensors::Dtype) -> Result<Kind> {
    Ok(match dtype {
        safetensors::Dtype::F32 => Kind::Float,
        safetensors::Dtype::F64 => Kind::Double,
        safetensors::Dtype::I64 => Kind::Int64,
        safetensors::Dtype::I32 => Kind::Int,
        safetensors::Dtype::U8 => Kind::Uint8,
        safetensors::Dtype::BOOL => Kind::Bool,
        other => bail!("a tensor of type {other:?}, which no checkpoint holds"),
    })
}

/// SHA-256 over tensors given as (name, dtype, shape, bytes), in name order.
fn tensors_sha256<'a>(tensors: impl Iterator<Item = (&'a str, safetensors::Dtype, &'a [usize], &'a [u8])>) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<_> = tensors.collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut hash = Sha256::new();
    for (name, dtype, shape, bytes) in sorted {
        hash.update(format!("{name} {dtype:?} {shape:?} {}\n", bytes.len()).as_bytes());
        hash.update(bytes);
    }
    format!("{:x}", hash.finalize())
}

/// Writes `dir`'s checkpoint atomically; returns its size in bytes.
pub fn write(dir: &Path, info: &CheckpointInfo, tensors: &[(String, Tensor)]) -> Result<u64> {
    let mut owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let t = tensor.to_device(Device::Cpu).contiguous();
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        if numel > 0 {
            t.copy_data_u8(&mut bytes, numel);
        }
        let shape = t.size().iter().map(|&d| d as usize).collect();
        owned.push((name.clone(), dtype(t.kind())?, shape, bytes));
    }
    let views = owned
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            Ok((name.as_str(), safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)?))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| anyhow!("{e:?}"))?;
    let sha = tensors_sha256(owned.iter().map(|(n, d, s, b)| (n.as_str(), *d, s.as_slice(), b.as_slice())));
    let info = CheckpointInfo { tensors_sha256: sha, ..info.clone() };
    let metadata = HashMap::from([(METADATA_KEY.to_string(), serde_json::to_string(&info)?)]);
    let bytes = safetensors::tensor::serialize(views, &Some(metadata)).map_err(|e| anyhow!("{e:?}"))?;
    // The checkpoint before stays as the previous one: a seed batch writes its runs' one
    // after another, and a kill between them leaves each run one it shares with the rest.
    let current = dir.join(CHECKPOINT);
    if current.is_file() {
        std::fs::rename(&current, dir.join(PREVIOUS))
            .with_context(|| format!("cannot keep {} as the previous checkpoint", current.display()))?;
    }
    super::rundir::write_durably(dir, CHECKPOINT, &bytes)
}

/// A run's checkpoint before its last (see [`write`]).
const PREVIOUS: &str = "checkpoint.previous.safetensors";

/// Reads `dir`'s checkpoints, the last and the one before it, where they are: each a
/// checkpoint, or an error where the file is there but is not a whole checkpoint of this
/// format (damaged, truncated, another program's, a newer homeonorm's).
pub fn read_all(dir: &Path) -> Vec<Result<Checkpoint>> {
    [CHECKPOINT, PREVIOUS].into_iter().filter_map(|name| read_file(&dir.join(name)).transpose()).collect()
}

/// Reads `dir`'s last checkpoint: `Ok(None)` where there is none (see [`read_all`]).
pub fn read(dir: &Path) -> Result<Option<Checkpoint>> {
    read_file(&dir.join(CHECKPOINT))
}

fn read_file(path: &Path) -> Result<Option<Checkpoint>> {
    let path = path.to_path_buf();
    let bytes = match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Ok(m) if !m.is_file() => bail!("{}: not a regular file (a FIFO, a device or a folder)", path.display()),
        _ => std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    };
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{}: not a whole safetensors file ({e:?})", path.display()))?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("{}: not a whole safetensors file ({e:?})", path.display()))?;
    let text = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| anyhow!("{}: not a homeonorm checkpoint (no `{METADATA_KEY}` metadata)", path.display()))?;
    let format: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("{}: metadata", path.display()))?;
    match format.get("checkpoint_format").and_then(|v| v.as_u64()) {
        Some(f) if f == u64::from(CHECKPOINT_FORMAT) => {}
        other => bail!(
            "{}: checkpoint format {} (this homeonorm reads {CHECKPOINT_FORMAT})",
            path.display(),
            other.map_or("missing".to_string(), |f| f.to_string())
        ),
    }
    let info: CheckpointInfo =
        serde_json::from_value(format).with_context(|| format!("{}: metadata", path.display()))?;
    let views = file.tensors();
    let shapes: Vec<Vec<usize>> = views.iter().map(|(_, v)| v.shape().to_vec()).collect();
    let sha =
        tensors_sha256(views.iter().zip(&shapes).map(|((n, v), s)| (n.as_str(), v.dtype(), s.as_slice(), v.data())));
    if sha != info.tensors_sha256 {
        bail!("{}: its tensors are not the ones written (their SHA-256 differs: damaged)", path.display());
    }
    let mut tensors = HashMap::new();
    for (name, view) in views {
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let kind = kind(view.dtype()).with_context(|| format!("{}: `{name}`", path.display()))?;
        tensors.insert(name, Tensor::from_data_size(view.data(), &shape, kind));
    }
    Ok(Some(Checkpoint { info, tensors }))
}

/// Removes `dir`'s checkpoints (a run that completed or starts over needs none), and the
/// temporary file of one whose writing a kill cut short.
pub fn remove(dir: &Path) -> Result<()> {
    remove_previous(dir)?;
    remove_file(&dir.join(format!(".{CHECKPOINT}.tmp")))?;
    remove_file(&dir.join(CHECKPOINT))
}

/// Removes `dir`'s checkpoint before its last (a completed run keeps only its last, if any).
pub fn remove_previous(dir: &Path) -> Result<()> {
    remove_file(&dir.join(PREVIOUS))
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

impl Checkpoint {
    /// Why this checkpoint is not one of the run of `seed`, `settings` (identity) on data
    /// `data_files`, to be taken up before `iterations` steps; `None` when it is.
    pub fn mismatch(
        &self,
        seed: u64,
        settings: &serde_json::Map<String, serde_json::Value>,
        data_files: &[DataFile],
        iterations: usize,
    ) -> Option<String> {
        let info = &self.info;
        if info.seed != seed {
            return Some(format!("it is seed {}'s, not seed {seed}'s", info.seed));
        }
        if &info.settings != settings {
            let differing: Vec<&String> = settings
                .iter()
                .filter(|(k, v)| info.settings.get(*k) != Some(*v))
                .map(|(k, _)| k)
                .chain(info.settings.keys().filter(|k| !settings.contains_key(*k)))
                .collect();
            return Some(format!("it was trained with other settings ({differing:?})"));
        }
        let data = crate::engine::data::content_sha256(data_files);
        if info.data_sha256.is_none() || info.data_sha256 != data {
            return Some("it was trained on other data (its content hash differs)".into());
        }
        if info.iteration == 0 || info.iteration >= iterations {
            return Some(format!("it is at iteration {}, outside this run's 1..{iterations}", info.iteration));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> CheckpointInfo {
        CheckpointInfo {
            checkpoint_format: CHECKPOINT_FORMAT,
            iteration: 71,
            seed: 1,
            settings: serde_json::json!({"lr": 0.003, "method": "vanilla"}).as_object().unwrap().clone(),
            data_sha256: Some("abc".into()),
            // Floats JSON's best-effort parsing reads one ULP off: they must come back as written.
            curve: (0..2000u64)
                .map(|i| {
                    // Awkward values (a hash's bits as a float in [0, 1)).
                    let x = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
                    CurveRow { iteration: i as usize, train_loss: Some(0.6047367267310619 * x), test_accuracy: x }
                })
                .collect(),
            diverged_at: None,
            loss_sum: 18.140101801931857,
            loss_steps: 31,
            activity_iterations: vec![10, 20],
            wall_time_s: 1.5,
            stretches: vec![Stretch {
                from_iteration: 0,
                to_iteration: 71,
                host: Some("node2".into()),
                command: vec!["homeonorm".into(), "sweep".into()],
                ..Default::default()
            }],
            tensors_sha256: String::new(),
        }
    }

    #[test]
    fn a_checkpoint_reads_back_as_written_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tensors = crate::engine::torch_rng::seeded(3, || {
            vec![
                ("var/fc1.weight".to_string(), Tensor::randn([3, 4], (Kind::Float, Device::Cpu))),
                ("adam/0/exp_avg".to_string(), Tensor::randn([5], (Kind::Double, Device::Cpu))),
            ]
        });
        write(dir.path(), &info(), &tensors).unwrap();
        let read_back = read(dir.path()).unwrap().unwrap();
        assert_eq!(CheckpointInfo { tensors_sha256: String::new(), ..read_back.info.clone() }, info());
        for (name, t) in &tensors {
            assert!(read_back.tensors[name].equal(t), "{name}");
        }
        assert!(!dir.path().join(format!(".{CHECKPOINT}.tmp")).exists(), "no temporary file left");

        let path = dir.path().join(CHECKPOINT);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(format!("{:#}", read(dir.path()).err().unwrap()).contains("SHA-256 differs"));
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(format!("{:#}", read(dir.path()).err().unwrap()).contains("not a whole safetensors file"));
        remove(dir.path()).unwrap();
        assert!(read(dir.path()).unwrap().is_none());
    }
}
