//! CIFAR-10, binary version: `data_batch_1.bin … data_batch_5.bin` and
//! `test_batch.bin`, each record one label byte (0–9) and 3,072 bytes of red,
//! green and blue planes (row-major 32×32). Also reads the
//! `cifar-10-binary.tar.gz` archive as published.

use super::{io_error, DataError, DataFile, Dataset, DatasetKind, Split, RECORD_PIXELS};
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::Tensor;

pub const TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
pub const TEST_FILE: &str = "test_batch.bin";
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";
pub const URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
const RECORD: usize = 1 + RECORD_PIXELS;
/// Records in each official batch file.
const MAX_RECORDS_PER_FILE: usize = 10_000;
/// The size of the largest CIFAR-10 file: a batch of 10,000 records.
const MAX_FILE_BYTES: u64 = (MAX_RECORDS_PER_FILE * RECORD) as u64;

/// Reads from `dir` the six `.bin` files, or, where they are not there,
/// `dir/cifar-10-binary.tar.gz` (or the archive in `dir`'s parent).
pub fn load(dir: &Path) -> Result<Dataset, DataError> {
    match source_files(dir)?.as_slice() {
        [archive] => load_archive(archive),
        _ => load_files(dir),
    }
}

/// The files [`load`] reads from `dir`: the six `.bin` files, or the one archive.
pub fn source_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    if dir.join(TEST_FILE).exists() || dir.join(TRAIN_FILES[0]).exists() {
        return Ok(TRAIN_FILES.iter().chain([&TEST_FILE]).map(|n| dir.join(n)).collect());
    }
    let archives = [dir.join(ARCHIVE), dir.parent().map(|p| p.join(ARCHIVE)).unwrap_or_default()];
    if let Some(archive) = archives.iter().find(|a| a.is_file()) {
        return Ok(vec![archive.clone()]);
    }
    let looked_for = format!("{} and {}", dir.join("data_batch_1.bin").display(), archives[0].display());
    Err(DataError::missing(DatasetKind::Cifar10, looked_for, dir, URL))
}

fn load_files(dir: &Path) -> Result<Dataset, DataError> {
    let mut files = Vec::new();
    let mut read = |name: &str| -> Result<Vec<u8>, DataError> {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(DataError::missing(DatasetKind::Cifar10, path.display().to_string(), dir, URL));
        }
        // Never read whole a file larger than any CIFAR-10 batch file (a sparse 12 GB one, say).
        let size = std::fs::metadata(&path).map_err(io_error(&path))?.len();
        if size > MAX_FILE_BYTES {
            return Err(DataError::BadFormat {
                path,
                message: format!("{size} bytes, larger than a CIFAR-10 batch file ({MAX_FILE_BYTES} bytes)"),
            });
        }
        let bytes = std::fs::read(&path).map_err(io_error(&path))?;
        files.push(DataFile::of_content(&path, &bytes));
        Ok(bytes)
    };
    let mut train = Vec::new();
    for name in TRAIN_FILES {
        train.push((dir.join(name), read(name)?));
    }
    let test = vec![(dir.join(TEST_FILE), read(TEST_FILE)?)];
    Ok(Dataset { kind: DatasetKind::Cifar10, train: parse_records(&train)?, test: parse_records(&test)?, files })
}

fn load_archive(archive: &Path) -> Result<Dataset, DataError> {
    let record = DataFile::of_file(archive)?;
    let file = std::fs::File::open(archive).map_err(io_error(archive))?;
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let bad = |e: std::io::Error| DataError::BadFormat {
        path: archive.to_path_buf(),
        message: format!("not a readable .tar.gz ({e})"),
    };
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with(".bin") {
            // No CIFAR-10 file is larger than a batch of 10,000 records: a member that is
            // larger is not one, and is not read whole into memory.
            let bound = MAX_FILE_BYTES;
            // Six batch files at most, each once: the archive's total is bounded too.
            if members.len() == TRAIN_FILES.len() + 1 || members.iter().any(|(n, _)| *n == name) {
                return Err(DataError::BadFormat {
                    path: archive.to_path_buf(),
                    message: format!(
                        "member {} is one .bin file too many: CIFAR-10 has six batch files, each once",
                        crate::text::escape(&name)
                    ),
                });
            }
            let mut bytes = Vec::new();
            (&mut entry).take(bound + 1).read_to_end(&mut bytes).map_err(bad)?;
            if bytes.len() as u64 > bound {
                return Err(DataError::BadFormat {
                    path: archive.to_path_buf(),
                    message: format!(
                        "member {} is larger than a CIFAR-10 batch file ({bound} bytes)",
                        crate::text::escape(&name)
                    ),
                });
            }
            members.push((name, bytes));
        }
    }
    let mut take = |name: &str| -> Result<(PathBuf, Vec<u8>), DataError> {
        let i = members.iter().position(|(n, _)| n == name).ok_or_else(|| DataError::BadFormat {
            path: archive.to_path_buf(),
            message: format!("the archive has no {name}"),
        })?;
        let (n, bytes) = members.swap_remove(i);
        Ok((archive.join(n), bytes))
    };
    let train = TRAIN_FILES.iter().map(|n| take(n)).collect::<Result<Vec<_>, _>>()?;
    let test = vec![take(TEST_FILE)?];
    Ok(Dataset {
        kind: DatasetKind::Cifar10,
        train: parse_records(&train)?,
        test: parse_records(&test)?,
        files: vec![record],
    })
}

/// Checks and concatenates the records of several files (path, bytes).
fn parse_records(files: &[(PathBuf, Vec<u8>)]) -> Result<Split, DataError> {
    let total: usize = files.iter().map(|(_, b)| b.len() / RECORD).sum();
    let mut labels = Vec::with_capacity(total);
    let mut pixels = Vec::with_capacity(total * RECORD_PIXELS);
    for (path, bytes) in files {
        if bytes.len() % RECORD != 0 || bytes.is_empty() {
            return Err(DataError::PartialRecord { path: path.clone(), size: bytes.len() as u64, record: RECORD });
        }
        for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
            let label = record[0] as i64;
            if label >= 10 {
                return Err(DataError::BadLabel {
                    path: path.clone(),
                    record: i,
                    label: label.to_string(),
                    valid: "0–9",
                });
            }
            labels.push(label);
            pixels.extend_from_slice(&record[1..]);
        }
    }
    let n = labels.len() as i64;
    Ok(Split { images: Tensor::from_slice(&pixels).view([n, 3, 32, 32]), labels: Tensor::from_slice(&labels) })
}
