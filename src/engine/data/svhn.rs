//! SVHN cropped digits ("format 2"): `train_32x32.mat` and `test_32x32.mat`, MATLAB
//! v5 files holding `X` (32×32×3×N uint8, column-major) and `y` (N×1, the digits
//! 1–10, where 10 stands for the digit 0). Read with the `matfile` crate, which
//! handles the uncompressed and the zlib-compressed elements.

use super::{io_error, DataError, DataFile, Dataset, DatasetKind, Split};
use matfile::{MatFile, NumericData};
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::Tensor;

pub const TRAIN_FILE: &str = "train_32x32.mat";
pub const TEST_FILE: &str = "test_32x32.mat";
pub const URL: &str = "http://ufldl.stanford.edu/housenumbers/";

/// The files [`load`] reads from `dir`: the train and test `.mat` files.
pub fn source_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let paths = vec![dir.join(TRAIN_FILE), dir.join(TEST_FILE)];
    match paths.iter().find(|p| !p.is_file()) {
        Some(missing) => Err(DataError::missing(DatasetKind::Svhn, missing.display().to_string(), dir, URL)),
        None => Ok(paths),
    }
}

pub fn load(dir: &Path) -> Result<Dataset, DataError> {
    let mut files = Vec::new();
    let mut splits = Vec::new();
    for path in source_files(dir)? {
        let size = std::fs::metadata(&path).map_err(io_error(&path))?.len();
        if size > MAX_INFLATED_BYTES {
            let message = format!("{size} bytes, larger than any SVHN file ({MAX_INFLATED_BYTES} bytes at most)");
            return Err(DataError::BadFormat { path, message });
        }
        let bytes = std::fs::read(&path).map_err(io_error(&path))?;
        files.push(DataFile::of_content(&path, &bytes));
        splits.push(parse_mat(&path, &bytes)?);
    }
    let test = splits.pop().unwrap();
    let train = splits.pop().unwrap();
    Ok(Dataset { kind: DatasetKind::Svhn, train, test, files })
}

/// Parses one `.mat` file's bytes (`path` is for messages).
pub fn parse_mat(path: &Path, bytes: &[u8]) -> Result<Split, DataError> {
    let bad = |message: String| DataError::BadFormat { path: path.to_path_buf(), message };
    if bytes.starts_with(b"MATLAB 7.3 MAT-file") {
        return Err(bad(
            "is a MATLAB v7.3 file, which is HDF5, not the MATLAB v5 format SVHN publishes: save it with -v7, \
             or use the official train_32x32.mat/test_32x32.mat"
                .into(),
        ));
    }
    check_elements_complete(bytes).map_err(bad)?;
    let mat = MatFile::parse(bytes).map_err(|e| bad(format!("not a readable MATLAB v5 file, or truncated ({e})")))?;
    let x = mat.find_by_name("X").ok_or_else(|| bad("has no variable `X`".into()))?;
    let y = mat.find_by_name("y").ok_or_else(|| bad("has no variable `y`".into()))?;

    let dims = x.size();
    if dims.len() != 4 || dims[0] != 32 || dims[1] != 32 || dims[2] != 3 {
        return Err(bad(format!("`X` has shape {dims:?}, expected [32, 32, 3, N]")));
    }
    let n = dims[3];
    let pixels = match x.data() {
        NumericData::UInt8 { real, .. } => real,
        other => return Err(bad(format!("`X` holds {}, expected uint8", type_name(other)))),
    };
    if pixels.len() != 32 * 32 * 3 * n {
        return Err(bad(format!("`X` holds {} values, its shape needs {}", pixels.len(), 32 * 32 * 3 * n)));
    }
    let ydims = y.size();
    if ydims.iter().product::<usize>() != n || ydims.iter().filter(|&&d| d != 1).count() > 1 {
        return Err(bad(format!("`y` has shape {ydims:?}, expected [{n}, 1] to match `X`")));
    }
    let digits =
        numeric_values(y.data()).ok_or_else(|| bad(format!("`y` holds {}, expected numbers", type_name(y.data()))))?;
    let mut labels = Vec::with_capacity(n);
    for (i, d) in digits.into_iter().enumerate() {
        if !(d.fract() == 0.0 && (1.0..=10.0).contains(&d)) {
            return Err(DataError::BadLabel {
                path: path.to_path_buf(),
                record: i,
                label: d.to_string(),
                valid: "1–10 (SVHN's raw labels; 10 is the digit 0)",
            });
        }
        labels.push(d as i64 % 10); // 10 means the digit 0
    }
    // Column-major (row, col, channel, n) is row-major (n, channel, col, row): swap the last two.
    let images = Tensor::from_slice(pixels).view([n as i64, 3, 32, 32]).transpose(2, 3).contiguous();
    Ok(Split { images, labels: Tensor::from_slice(&labels) })
}

/// The most bytes one file's data elements may hold once inflated: SVHN's largest
/// (train_32x32.mat, 73,257 images) holds about 225 MB; a compressed element that
/// inflates past this is not SVHN, and is refused before `matfile` inflates it whole.
const MAX_INFLATED_BYTES: u64 = 256 << 20;

/// Walks the top-level data elements (after the 128-byte header) and checks that
/// each one's declared size fits in the file (`matfile` stops quietly at a cut-off
/// element, which would otherwise read as a missing variable) and that the file's
/// elements, inflated, stay under [`MAX_INFLATED_BYTES`].
fn check_elements_complete(bytes: &[u8]) -> Result<(), String> {
    const HEADER: usize = 128;
    if bytes.len() < HEADER || &bytes[126..128] != b"IM" {
        return Err(format!("not a little-endian MATLAB v5 file, or truncated ({} bytes)", bytes.len()));
    }
    let mut offset = HEADER;
    let mut inflated = 0u64;
    while offset < bytes.len() {
        let tag = bytes
            .get(offset..offset + 8)
            .ok_or_else(|| format!("truncated: a data element tag at byte {offset} is cut off"))?;
        let data_type = u32::from_le_bytes(tag[0..4].try_into().unwrap());
        let size = u32::from_le_bytes(tag[4..8].try_into().unwrap()) as usize;
        let mut end = offset + 8 + size;
        if data_type != 15 {
            end += (8 - size % 8) % 8; // uncompressed elements are padded to 8 bytes
        }
        if offset + 8 + size > bytes.len() {
            return Err(format!(
                "truncated: the data element at byte {offset} declares {size} bytes, the file ends after {}",
                bytes.len() - offset - 8
            ));
        }
        let payload = &bytes[offset + 8..offset + 8 + size];
        inflated += if data_type == 15 {
            // Counted while inflating, never past the bound.
            let mut zlib = flate2::read::ZlibDecoder::new(payload).take(MAX_INFLATED_BYTES + 1 - inflated);
            std::io::copy(&mut zlib, &mut std::io::sink())
                .map_err(|e| format!("the compressed element at byte {offset} does not inflate ({e})"))?
        } else {
            size as u64
        };
        if inflated > MAX_INFLATED_BYTES {
            return Err(format!(
                "its data elements inflate to more than {MAX_INFLATED_BYTES} bytes, more than any SVHN file holds"
            ));
        }
        offset = end;
    }
    Ok(())
}

fn numeric_values(data: &NumericData) -> Option<Vec<f64>> {
    Some(match data {
        NumericData::UInt8 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        NumericData::Int8 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        NumericData::UInt16 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        NumericData::Int16 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        NumericData::UInt32 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        NumericData::Int32 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        NumericData::UInt64 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        NumericData::Int64 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        NumericData::Single { real, .. } => real.iter().map(|&v| v as f64).collect(),
        NumericData::Double { real, .. } => real.clone(),
    })
}

fn type_name(data: &NumericData) -> &'static str {
    match data {
        NumericData::UInt8 { .. } => "uint8",
        NumericData::Int8 { .. } => "int8",
        NumericData::UInt16 { .. } => "uint16",
        NumericData::Int16 { .. } => "int16",
        NumericData::UInt32 { .. } => "uint32",
        NumericData::Int32 { .. } => "int32",
        NumericData::UInt64 { .. } => "uint64",
        NumericData::Int64 { .. } => "int64",
        NumericData::Single { .. } => "single",
        NumericData::Double { .. } => "double",
    }
}
