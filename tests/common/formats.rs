//! Writers for the official dataset formats, byte by byte, for the tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

/// One CIFAR-10 record: label byte then R, G, B planes.
pub fn cifar_record(label: u8, pixel: impl Fn(usize, usize, usize) -> u8) -> Vec<u8> {
    let mut r = vec![label];
    for ch in 0..3 {
        for row in 0..32 {
            for col in 0..32 {
                r.push(pixel(ch, row, col));
            }
        }
    }
    r
}

/// Writes the six CIFAR-10 binary files, `per_file` records each, labels cycling 0..9,
/// pixel (ch, row, col) of record i of file f = (f·7 + i·3 + ch·11 + row·5 + col) mod 256.
pub fn write_cifar_dir(dir: &Path, per_file: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for (f, name) in names.iter().enumerate() {
        let mut bytes = Vec::new();
        for i in 0..per_file {
            bytes.extend(cifar_record(((f + i) % 10) as u8, |ch, row, col| cifar_pixel(f, i, ch, row, col)));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

pub fn cifar_pixel(file: usize, record: usize, ch: usize, row: usize, col: usize) -> u8 {
    ((file * 7 + record * 3 + ch * 11 + row * 5 + col) % 256) as u8
}

// ---- MATLAB v5 ----

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_DOUBLE: u32 = 9;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
pub const MX_DOUBLE_CLASS: u8 = 6;
pub const MX_UINT8_CLASS: u8 = 9;

fn element(data_type: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(data_type.to_le_bytes());
    out.extend((payload.len() as u32).to_le_bytes());
    out.extend(payload);
    while out.len() % 8 != 0 {
        out.push(0);
    }
    out
}

/// A MATLAB array: its class, dimensions and real data (already in the element type).
pub struct MatArray<'a> {
    pub name: &'a str,
    pub class: u8,
    pub dims: Vec<i32>,
    pub data_type: MatData<'a>,
}

pub enum MatData<'a> {
    UInt8(&'a [u8]),
    Double(&'a [f64]),
}

fn matrix(array: &MatArray) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(element(MI_UINT32, &[[array.class, 0, 0, 0], [0, 0, 0, 0]].concat()));
    body.extend(element(MI_INT32, &array.dims.iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<_>>()));
    body.extend(element(MI_INT8, array.name.as_bytes()));
    match array.data_type {
        MatData::UInt8(v) => body.extend(element(MI_UINT8, v)),
        MatData::Double(v) => {
            body.extend(element(MI_DOUBLE, &v.iter().flat_map(|d| d.to_le_bytes()).collect::<Vec<_>>()))
        }
    }
    element(MI_MATRIX, &body)
}

/// A MATLAB v5 file holding `arrays`, each element zlib-compressed or not.
pub fn mat_file(arrays: &[MatArray], compressed: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut text = b"MATLAB 5.0 MAT-file, Platform: homeonorm tests".to_vec();
    text.resize(116, b' ');
    out.extend(text);
    out.extend([0u8; 8]); // subsystem data offset
    out.extend(0x0100u16.to_le_bytes());
    out.extend(b"IM");
    for a in arrays {
        let m = matrix(a);
        if compressed {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(&m).unwrap();
            let packed = z.finish().unwrap();
            out.extend(MI_COMPRESSED.to_le_bytes());
            out.extend((packed.len() as u32).to_le_bytes());
            out.extend(packed);
        } else {
            out.extend(m);
        }
    }
    out
}

/// SVHN-like `X` (32×32×3×n, column-major) with pixel (row, col, ch, k) = svhn_pixel(..),
/// and `y` = digits 1..=10 cycling.
pub fn svhn_mat(n: usize, compressed: bool) -> Vec<u8> {
    let mut x = vec![0u8; 32 * 32 * 3 * n];
    for k in 0..n {
        for ch in 0..3 {
            for col in 0..32 {
                for row in 0..32 {
                    x[row + 32 * col + 1024 * ch + 3072 * k] = svhn_pixel(row, col, ch, k);
                }
            }
        }
    }
    let y: Vec<f64> = (0..n).map(|k| svhn_digit(k) as f64).collect();
    mat_file(
        &[
            MatArray {
                name: "X",
                class: MX_UINT8_CLASS,
                dims: vec![32, 32, 3, n as i32],
                data_type: MatData::UInt8(&x),
            },
            MatArray { name: "y", class: MX_DOUBLE_CLASS, dims: vec![n as i32, 1], data_type: MatData::Double(&y) },
        ],
        compressed,
    )
}

pub fn svhn_pixel(row: usize, col: usize, ch: usize, k: usize) -> u8 {
    ((row * 3 + col * 7 + ch * 50 + k * 13) % 256) as u8
}

/// The stored digit 1..=10 (10 stands for 0).
pub fn svhn_digit(k: usize) -> u8 {
    (k % 10) as u8 + 1
}

/// Writes CIFAR-10 binary files whose classes are easy to learn: class k has a bright
/// 8×8 square at a class-specific place in channel k mod 3, on uniform noise.
pub fn write_learnable_cifar_dir(dir: &Path, per_file: usize, test_records: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut state = 12345u64;
    let mut noise = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 57) as u8 // 0..127
    };
    let mut file = |name: &str, n: usize, offset: usize| {
        let mut bytes = Vec::new();
        for i in 0..n {
            let label = (i + offset) % 10;
            let (r0, c0) = ((label / 4) * 10 + 2, (label % 4) * 7 + 1);
            let mut rec = vec![label as u8];
            for ch in 0..3 {
                for row in 0..32 {
                    for col in 0..32 {
                        let inside = ch == label % 3 && (r0..r0 + 8).contains(&row) && (c0..c0 + 8).contains(&col);
                        rec.push(if inside { 255 } else { noise() });
                    }
                }
            }
            bytes.extend(rec);
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    for (f, name) in
        ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"]
            .iter()
            .enumerate()
    {
        file(name, per_file, f);
    }
    file("test_batch.bin", test_records, 7);
}
