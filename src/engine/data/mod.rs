//! The datasets, read from the files their publishers distribute: CIFAR-10's
//! binary version and SVHN's cropped digits (format 2, MATLAB v5). Everything is
//! loaded once into memory as uint8 images `[N, 3, 32, 32]` and int64 labels; the
//! float conversion and per-channel normalization happen per batch, on the device.

pub mod batches;
pub mod cifar10;
pub mod svhn;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

pub const CLASSES: usize = 10;
pub const RECORD_PIXELS: usize = 3 * 32 * 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    Cifar10,
    Svhn,
}

impl DatasetKind {
    /// Every dataset (the enum's variants: none can be left out), for lists and for the
    /// per-dataset tables of experiment files.
    pub fn all() -> impl Iterator<Item = DatasetKind> {
        <DatasetKind as clap::ValueEnum>::value_variants().iter().copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Svhn => "svhn",
        }
    }

    /// The official (train, test) image counts.
    pub fn official_counts(self) -> (usize, usize) {
        match self {
            DatasetKind::Cifar10 => (50_000, 10_000),
            DatasetKind::Svhn => (73_257, 26_032),
        }
    }

    /// The folder under a data root where this dataset is looked for.
    pub fn default_dir(self, data_root: &Path) -> PathBuf {
        match self {
            DatasetKind::Cifar10 => data_root.join("cifar-10-batches-bin"),
            DatasetKind::Svhn => data_root.join("svhn"),
        }
    }

    pub fn class_names(self) -> [&'static str; CLASSES] {
        match self {
            DatasetKind::Cifar10 => {
                ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
            }
            DatasetKind::Svhn => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        }
    }
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DatasetKind::all().find(|d| d.name() == s).ok_or_else(|| {
            let names: Vec<&str> = DatasetKind::all().map(|d| d.name()).collect();
            format!("unknown dataset `{s}`; valid datasets are: {}", names.join(", "))
        })
    }
}

/// What went wrong with a data file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{dataset} data not found: looked for {looked_for}. Get it with `homeonorm download {dataset} --dir {dir}` or from {url}")]
    Missing { dataset: DatasetKind, looked_for: String, dir: String, url: &'static str },
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{path}: {size} bytes is not a whole number of {record}-byte records (truncated or not a CIFAR-10 binary file)"
    )]
    PartialRecord { path: PathBuf, size: u64, record: usize },
    #[error("{path}: record {record} has label {label}, outside {valid}")]
    BadLabel { path: PathBuf, record: usize, label: String, valid: &'static str },
    #[error("{path}: {message}")]
    BadFormat { path: PathBuf, message: String },
    #[error("{what}: {found} images where the official set has {official}; pass a limit (--limit) to use a subset on purpose")]
    WrongCount { what: String, found: usize, official: usize },
}

impl DataError {
    /// A missing file or folder: where it was looked for and how to get it.
    pub(crate) fn missing(
        dataset: DatasetKind,
        looked_for: String,
        dataset_dir: &Path,
        url: &'static str,
    ) -> DataError {
        // `homeonorm download --dir` takes the data root, the parent of the dataset's folder.
        let root = dataset_dir.parent().unwrap_or(dataset_dir).display().to_string();
        DataError::Missing { dataset, looked_for, dir: root, url }
    }
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.to_path_buf(), source }
}

/// One split in memory.
pub struct Split {
    /// `[N, 3, 32, 32]` uint8, RGB planes.
    pub images: Tensor,
    /// `[N]` int64 in 0..10.
    pub labels: Tensor,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Images per class.
    pub fn class_counts(&self) -> [usize; CLASSES] {
        let counts = self.labels.bincount::<Tensor>(None, CLASSES as i64);
        let mut out = [0usize; CLASSES];
        for (k, o) in out.iter_mut().enumerate() {
            *o = counts.int64_value(&[k as i64]) as usize;
        }
        out
    }

    pub fn to_device(&self, device: Device) -> Split {
        Split { images: self.images.to_device(device), labels: self.labels.to_device(device) }
    }

    /// Keeps the first `n` records.
    fn truncate(self, n: usize) -> Split {
        let n = n.min(self.len()) as i64;
        Split { images: self.images.narrow(0, 0, n), labels: self.labels.narrow(0, 0, n) }
    }
}

/// A dataset's two splits and where they came from.
pub struct Dataset {
    pub kind: DatasetKind,
    pub train: Split,
    pub test: Split,
    /// The files read (recorded in each run's config).
    pub files: Vec<DataFile>,
}

/// A file a dataset was read from: what each run's `config.json` records of its data,
/// so that runs on different bytes are never taken for the same experiment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    pub path: PathBuf,
    pub bytes: u64,
    /// SHA-256 of the content, hex (absent in folders written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl DataFile {
    /// The record of a file whose whole content is in memory.
    pub fn of_content(path: &Path, content: &[u8]) -> DataFile {
        DataFile { path: path.to_path_buf(), bytes: content.len() as u64, sha256: Some(hex(&Sha256::digest(content))) }
    }

    /// The record of a file on disk, read in pieces.
    pub fn of_file(path: &Path) -> Result<DataFile, DataError> {
        let mut file = std::fs::File::open(path).map_err(io_error(path))?;
        let mut hasher = Sha256::new();
        let bytes = std::io::copy(&mut file, &mut hasher).map_err(io_error(path))?;
        Ok(DataFile { path: path.to_path_buf(), bytes, sha256: Some(hex(&hasher.finalize())) })
    }

    fn name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// One hash for a dataset's content: the SHA-256 of `sha256sum`'s lines for its files
/// in name order, so `cd DIR && sha256sum *.bin | sha256sum` gives it for CIFAR-10's
/// binary files. `None` when no file, or not every file's hash, was recorded.
pub fn content_sha256(files: &[DataFile]) -> Option<String> {
    if files.is_empty() {
        return None;
    }
    let mut lines: Vec<(String, &str)> =
        files.iter().map(|f| f.sha256.as_deref().map(|h| (f.name(), h))).collect::<Option<_>>()?;
    lines.sort();
    let text: String = lines.iter().map(|(name, hash)| format!("{hash}  {name}\n")).collect();
    Some(hex(&Sha256::digest(text.as_bytes())))
}

/// How the data recorded for a run differs from `now` (by file name and content), or
/// `None` where they agree or either side recorded no hash (older folders).
pub fn data_difference(recorded: &[DataFile], now: &[DataFile]) -> Option<String> {
    let (a, b) = (content_sha256(recorded)?, content_sha256(now)?);
    (a != b).then(|| format!("data content sha256 {a} recorded, {b} now"))
}

/// The files `load` would read for `kind` in `dir`, with their hashes, without parsing them.
pub fn identify(kind: DatasetKind, dir: &Path) -> Result<Vec<DataFile>, DataError> {
    let paths = match kind {
        DatasetKind::Cifar10 => cifar10::source_files(dir)?,
        DatasetKind::Svhn => svhn::source_files(dir)?,
    };
    paths.iter().map(|p| DataFile::of_file(p)).collect()
}

/// How many records to keep of each split; `None` means the official set, whose
/// counts are then checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Limit {
    pub train: Option<usize>,
    pub test: Option<usize>,
}

/// Loads a dataset from `dir` (the folder holding its files; see each reader).
pub fn load(kind: DatasetKind, dir: &Path, limit: Limit) -> Result<Dataset, DataError> {
    let mut dataset = match kind {
        DatasetKind::Cifar10 => cifar10::load(dir)?,
        DatasetKind::Svhn => svhn::load(dir)?,
    };
    let (official_train, official_test) = kind.official_counts();
    dataset.train =
        check_count(dataset.train, limit.train, official_train, &format!("{kind} train split in {}", dir.display()))?;
    dataset.test =
        check_count(dataset.test, limit.test, official_test, &format!("{kind} test split in {}", dir.display()))?;
    Ok(dataset)
}

fn check_count(split: Split, limit: Option<usize>, official: usize, what: &str) -> Result<Split, DataError> {
    match limit {
        Some(n) => {
            if split.len() != official {
                log::warn!("{what}: {} images, not the official {official} (a subset, as --limit asks)", split.len());
            }
            if n < split.len() {
                log::warn!("{what}: using the first {n} of {} images (--limit)", split.len());
            }
            Ok(split.truncate(n))
        }
        None if split.len() != official => {
            Err(DataError::WrongCount { what: what.to_string(), found: split.len(), official })
        }
        None => Ok(split),
    }
}

/// Pixel standardization: per-channel (x − mean)/std after scaling pixels to [0, 1]
/// (torchvision's `Normalize`; not a normalization *method*, which is `norm`'s).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PixelStandardization {
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

impl Default for PixelStandardization {
    /// The PyTorch CIFAR-10 tutorial's: mean 0.5, std 0.5 per channel.
    fn default() -> Self {
        PixelStandardization { mean: [0.5; 3], std: [0.5; 3] }
    }
}

impl PixelStandardization {
    /// Its check as a setting: a finite mean, a positive finite std.
    pub fn check(&self) -> Result<(), String> {
        let (mean, std) = (self.mean, self.std);
        if std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(format!("pixel standardization std must be positive and finite, got {std:?}"));
        }
        if mean.iter().any(|m| !m.is_finite()) {
            return Err(format!("pixel standardization mean must be finite, got {mean:?}"));
        }
        Ok(())
    }

    /// uint8 images `[…, 3, 32, 32]` → normalized float32, as
    /// `ToTensor()` then `Normalize(mean, std)` would give.
    pub fn apply(&self, images: &Tensor) -> Tensor {
        // Each channel's constants made on the images' device (filled there: a copy from
        // host memory would make the host wait for the device's queue at every batch).
        let on_device = |values: &[f64; 3]| {
            let opts = (Kind::Float, images.device());
            Tensor::cat(&values.map(|v| Tensor::full([1], v, opts)), 0).view([3, 1, 1])
        };
        (images.to_kind(Kind::Float) / 255.0 - on_device(&self.mean)) / on_device(&self.std)
    }
}

/// What `homeonorm data check` prints of a dataset folder: each file's size and
/// SHA-256, the content hash, and the images per class and split.
pub fn describe(kind: DatasetKind, dir: &Path, limit: Limit) -> Result<String, DataError> {
    use std::fmt::Write as _;
    let ds = load(kind, dir, limit)?;
    let mut out = String::new();
    let _ = writeln!(out, "{kind} in {}", crate::text::path(dir));
    for file in &ds.files {
        let sha = file.sha256.as_deref().unwrap_or("-");
        let _ = writeln!(out, "  file {} ({} bytes, sha256 {sha})", file.path.display(), file.bytes);
    }
    if let Some(hash) = content_sha256(&ds.files) {
        let _ = writeln!(out, "  content sha256 {hash}");
    }
    let _ = writeln!(out, "  {:<12} {:>8} {:>8}", "class", "train", "test");
    let (train, test) = (ds.train.class_counts(), ds.test.class_counts());
    for (k, name) in kind.class_names().iter().enumerate() {
        let _ = writeln!(out, "  {:<12} {:>8} {:>8}", format!("{k} {name}"), train[k], test[k]);
    }
    let _ = writeln!(out, "  {:<12} {:>8} {:>8}", "total", ds.train.len(), ds.test.len());
    Ok(out)
}
