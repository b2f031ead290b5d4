//! The dataset readers on small files written in the official formats.

mod common;

use common::formats::*;
use homeonorm::engine::data::{self, batches::BatchSampler, DataError, DatasetKind, Limit, PixelStandardization};
use homeonorm::runs::download::{download_files, DownloadError, MinimumRate, Remote};
use std::io::{Read, Write};
use std::path::Path;
use tch::Kind;

const SUBSET: Limit = Limit { train: Some(usize::MAX), test: Some(usize::MAX) };

#[test]
fn cifar10_pixels_and_labels_come_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar_dir(dir.path(), 120);
    let ds = data::load(DatasetKind::Cifar10, dir.path(), SUBSET).unwrap();
    assert_eq!(ds.train.len(), 600);
    assert_eq!(ds.test.len(), 120);
    assert_eq!(ds.train.images.size(), [600, 3, 32, 32]);
    assert_eq!(ds.train.images.kind(), Kind::Uint8);
    for (split, file, record) in
        [(&ds.train, 0usize, 0usize), (&ds.train, 2, 17), (&ds.train, 4, 119), (&ds.test, 5, 33)]
    {
        let n = if file == 5 { record } else { file * 120 + record } as i64;
        assert_eq!(split.labels.int64_value(&[n]), ((file + record) % 10) as i64);
        for (ch, row, col) in [(0, 0, 0), (1, 5, 31), (2, 31, 2), (0, 13, 7)] {
            let got = split.images.int64_value(&[n, ch, row, col]);
            assert_eq!(
                got,
                cifar_pixel(file, record, ch as usize, row as usize, col as usize) as i64,
                "file {file} record {record} ({ch},{row},{col})"
            );
        }
    }
    assert_eq!(ds.train.class_counts(), [60; 10]);
}

#[test]
fn cifar10_reads_the_published_archive() {
    let dir = tempfile::tempdir().unwrap();
    let bins = dir.path().join("src/cifar-10-batches-bin");
    write_cifar_dir(&bins, 20);
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&archive).unwrap(),
        flate2::Compression::fast(),
    ));
    tar.append_dir_all("cifar-10-batches-bin", &bins).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    // The loader is pointed at data/cifar-10-batches-bin and finds the archive beside it.
    let ds = data::load(DatasetKind::Cifar10, &dir.path().join("cifar-10-batches-bin"), SUBSET).unwrap();
    assert_eq!((ds.train.len(), ds.test.len()), (100, 20));
    assert_eq!(ds.test.images.int64_value(&[3, 2, 9, 4]), cifar_pixel(5, 3, 2, 9, 4) as i64);
    assert_eq!(ds.files.len(), 1);
    assert_eq!(ds.files[0], data::DataFile::of_file(&archive).unwrap(), "the archive itself is what is hashed");
}

#[test]
fn every_data_file_is_recorded_with_its_sha256_and_the_content_hash_is_sha256sums() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar_dir(dir.path(), 20);
    let ds = data::load(DatasetKind::Cifar10, dir.path(), SUBSET).unwrap();
    let sha256sum = |args: &str| {
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cd '{}' && {args}", dir.path().display()))
            .output()
            .expect("sh and coreutils' sha256sum");
        assert!(o.status.success());
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(ds.files.len(), 6);
    for file in &ds.files {
        let name = file.path.file_name().unwrap().to_str().unwrap();
        let line = sha256sum(&format!("sha256sum {name}"));
        assert_eq!(file.sha256.as_deref(), line.split_whitespace().next(), "{name}");
        assert_eq!(file.bytes, 20 * 3073);
    }
    let content = data::content_sha256(&ds.files).unwrap();
    assert_eq!(Some(content.as_str()), sha256sum("sha256sum *.bin | sha256sum").split_whitespace().next());
    assert_eq!(data::identify(DatasetKind::Cifar10, dir.path()).unwrap(), ds.files, "identify hashes what load reads");

    // One pixel changed: another content hash, and the difference is named; a side
    // that recorded no hash (an older folder) differs from nothing.
    let mut test = std::fs::read(dir.path().join("test_batch.bin")).unwrap();
    test[1] ^= 1;
    std::fs::write(dir.path().join("test_batch.bin"), test).unwrap();
    let now = data::identify(DatasetKind::Cifar10, dir.path()).unwrap();
    assert_ne!(data::content_sha256(&now).unwrap(), content);
    let said = data::data_difference(&ds.files, &now).expect("the bytes differ");
    assert!(said.contains(&content) && said.contains("recorded"), "{said}");
    let older: Vec<data::DataFile> = ds.files.iter().map(|f| data::DataFile { sha256: None, ..f.clone() }).collect();
    assert_eq!(data::content_sha256(&older), None);
    assert_eq!(data::data_difference(&older, &now), None);
    // A writer that recorded no data file (an import, a script) recorded no content either.
    assert_eq!(data::content_sha256(&[]), None);
    assert_eq!(data::data_difference(&[], &now), None);
}

#[test]
fn an_archive_member_larger_than_any_cifar10_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&archive).unwrap(),
        flate2::Compression::fast(),
    ));
    // One byte more than a batch of 10,000 records.
    let size = 10_000 * 3073 + 1;
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "cifar-10-batches-bin/data_batch_1.bin", std::io::repeat(0).take(size)).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let msg = message_of(&dir.path().join("cifar-10-batches-bin"), DatasetKind::Cifar10);
    assert!(
        msg.contains("cifar-10-binary.tar.gz") && msg.contains("data_batch_1.bin is larger than a CIFAR-10 batch file"),
        "{msg}"
    );
}

#[test]
fn cifar10_official_counts_are_checked_unless_a_limit_is_given() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar_dir(dir.path(), 10);
    let err = data::load(DatasetKind::Cifar10, dir.path(), Limit::default()).err().unwrap();
    assert!(matches!(err, DataError::WrongCount { found: 50, official: 50_000, .. }), "{err}");
    assert!(err.to_string().contains("--limit"), "{err}");
    let ds = data::load(DatasetKind::Cifar10, dir.path(), Limit { train: Some(7), test: Some(3) }).unwrap();
    assert_eq!((ds.train.len(), ds.test.len()), (7, 3));
}

fn message_of(dir: &Path, kind: DatasetKind) -> String {
    data::load(kind, dir, SUBSET).err().expect("loading must fail").to_string()
}

#[test]
fn cifar10_bad_files_are_named_in_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar_dir(dir.path(), 10);
    // truncated
    let path = dir.path().join("data_batch_3.bin");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let msg = message_of(dir.path(), DatasetKind::Cifar10);
    assert!(msg.contains("data_batch_3.bin") && msg.contains("whole number of 3073-byte records"), "{msg}");
    // wrong label byte
    let mut bytes = bytes.clone();
    bytes[3073 * 4] = 10;
    std::fs::write(&path, &bytes).unwrap();
    let msg = message_of(dir.path(), DatasetKind::Cifar10);
    assert!(msg.contains("data_batch_3.bin") && msg.contains("record 4") && msg.contains("label 10"), "{msg}");
    // missing file
    std::fs::remove_file(dir.path().join("test_batch.bin")).unwrap();
    let msg = message_of(dir.path(), DatasetKind::Cifar10);
    assert!(msg.contains("test_batch.bin") && msg.contains("homeonorm download cifar10"), "{msg}");
    // nothing there at all
    let empty = tempfile::tempdir().unwrap();
    let msg = message_of(&empty.path().join("cifar-10-batches-bin"), DatasetKind::Cifar10);
    assert!(
        msg.contains("not found")
            && msg.contains("cifar-10-binary.tar.gz")
            && msg.contains("https://www.cs.toronto.edu"),
        "{msg}"
    );
}

fn write_svhn(dir: &Path, n_train: usize, n_test: usize, compressed: bool) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("train_32x32.mat"), svhn_mat(n_train, compressed)).unwrap();
    std::fs::write(dir.join("test_32x32.mat"), svhn_mat(n_test, compressed)).unwrap();
}

#[test]
fn svhn_column_major_pixels_and_ten_means_zero() {
    for compressed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_svhn(dir.path(), 200, 30, compressed);
        let ds = data::load(DatasetKind::Svhn, dir.path(), SUBSET).unwrap();
        assert_eq!((ds.train.len(), ds.test.len()), (200, 30));
        for k in [0usize, 9, 10, 199] {
            let digit = svhn_digit(k) as i64;
            assert_eq!(ds.train.labels.int64_value(&[k as i64]), digit % 10, "record {k} stored digit {digit}");
            for (row, col, ch) in [(0usize, 0usize, 0usize), (3, 29, 1), (31, 0, 2), (17, 5, 1)] {
                let got = ds.train.images.int64_value(&[k as i64, ch as i64, row as i64, col as i64]);
                assert_eq!(got, svhn_pixel(row, col, ch, k) as i64, "compressed {compressed}: X({row},{col},{ch},{k})");
            }
        }
        assert_eq!(ds.train.class_counts(), [20; 10]);
    }
}

#[test]
fn svhn_bad_mat_files_are_named_in_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_svhn(dir.path(), 20, 10, false);
    let test = dir.path().join("test_32x32.mat");
    let x = vec![0u8; 32 * 32 * 3 * 4];
    let y = [1.0f64, 2.0, 3.0, 4.0];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            mat_file(
                &[MatArray { name: "y", class: MX_DOUBLE_CLASS, dims: vec![4, 1], data_type: MatData::Double(&y) }],
                false,
            ),
            "no variable `X`",
        ),
        (
            mat_file(
                &[MatArray {
                    name: "X",
                    class: MX_UINT8_CLASS,
                    dims: vec![32, 32, 3, 4],
                    data_type: MatData::UInt8(&x),
                }],
                true,
            ),
            "no variable `y`",
        ),
        (
            mat_file(
                &[
                    MatArray {
                        name: "X",
                        class: MX_UINT8_CLASS,
                        dims: vec![32, 96, 1, 4],
                        data_type: MatData::UInt8(&x),
                    },
                    MatArray { name: "y", class: MX_DOUBLE_CLASS, dims: vec![4, 1], data_type: MatData::Double(&y) },
                ],
                false,
            ),
            "expected [32, 32, 3, N]",
        ),
        (
            mat_file(
                &[
                    MatArray {
                        name: "X",
                        class: MX_DOUBLE_CLASS,
                        dims: vec![32, 32, 3, 4],
                        data_type: MatData::Double(&vec![0.0; 32 * 32 * 3 * 4]),
                    },
                    MatArray { name: "y", class: MX_DOUBLE_CLASS, dims: vec![4, 1], data_type: MatData::Double(&y) },
                ],
                false,
            ),
            "expected uint8",
        ),
        (
            mat_file(
                &[
                    MatArray {
                        name: "X",
                        class: MX_UINT8_CLASS,
                        dims: vec![32, 32, 3, 4],
                        data_type: MatData::UInt8(&x),
                    },
                    MatArray {
                        name: "y",
                        class: MX_DOUBLE_CLASS,
                        dims: vec![4, 1],
                        data_type: MatData::Double(&[1.0, 11.0, 3.0, 4.0]),
                    },
                ],
                false,
            ),
            "record 1 has label 11, outside 1–10",
        ),
        (
            mat_file(
                &[
                    MatArray {
                        name: "X",
                        class: MX_UINT8_CLASS,
                        dims: vec![32, 32, 3, 4],
                        data_type: MatData::UInt8(&x),
                    },
                    MatArray {
                        name: "y",
                        class: MX_DOUBLE_CLASS,
                        dims: vec![4, 1],
                        data_type: MatData::Double(&[1.0, 2.0, 2.5, 4.0]),
                    },
                ],
                false,
            ),
            "record 2 has label 2.5",
        ),
        (
            {
                // What MATLAB's save -v7.3 writes: a text header, then HDF5.
                let mut v73 =
                    b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
                        .to_vec();
                v73.resize(512, b' ');
                v73.extend(b"\x89HDF\r\n\x1a\n");
                v73.resize(4096, 0);
                v73
            },
            "MATLAB v7.3 file, which is HDF5",
        ),
        (svhn_mat(10, true)[..1000].to_vec(), "truncated"),
        (svhn_mat(10, false)[..20_000].to_vec(), "truncated"),
    ];
    for (bytes, expected) in cases {
        std::fs::write(&test, bytes).unwrap();
        let msg = message_of(dir.path(), DatasetKind::Svhn);
        assert!(msg.contains("test_32x32.mat") && msg.contains(expected), "expected «{expected}» in: {msg}");
    }
    std::fs::remove_file(&test).unwrap();
    let msg = message_of(dir.path(), DatasetKind::Svhn);
    assert!(msg.contains("test_32x32.mat") && msg.contains("homeonorm download svhn"), "{msg}");
}

#[test]
fn normalization_matches_to_tensor_then_normalize() {
    let images = tch::Tensor::from_slice(&[0u8, 255, 128, 64]).view([1, 1, 2, 2]).repeat([1, 3, 1, 1]);
    let out = PixelStandardization::default().apply(&images);
    let expected = [-1.0, 1.0, 128.0 / 255.0 * 2.0 - 1.0, 64.0 / 255.0 * 2.0 - 1.0];
    for (i, e) in expected.iter().enumerate() {
        let got = out.double_value(&[0, 2, (i / 2) as i64, (i % 2) as i64]);
        assert!((got - e).abs() < 1e-6, "{got} vs {e}");
    }
}

#[test]
fn batches_reshuffle_each_epoch_and_repeat_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar_dir(dir.path(), 10); // 50 training images
    let ds = data::load(DatasetKind::Cifar10, dir.path(), SUBSET).unwrap();
    let epoch = |sampler: &mut BatchSampler| -> Vec<Vec<i64>> {
        (0..4).map(|_| Vec::<i64>::try_from(sampler.next_indices().get(0)).unwrap()).collect()
    };
    let mut a = BatchSampler::chacha8(&ds.train, &[5], 16);
    let mut b = BatchSampler::chacha8(&ds.train, &[5], 16);
    let (a1, a2) = (epoch(&mut a), epoch(&mut a));
    assert_eq!(a1, epoch(&mut b), "same seed, same batches");
    let sizes: Vec<usize> = a1.iter().map(|b| b.len()).collect();
    assert_eq!(sizes, [16, 16, 16, 2], "the last batch of an epoch is partial, as drop_last=False");
    let mut seen: Vec<i64> = a1.concat();
    seen.sort();
    assert_eq!(seen, (0..50).collect::<Vec<_>>(), "an epoch is a permutation");
    assert_ne!(a1, a2, "each epoch is reshuffled");
    let mut other = BatchSampler::chacha8(&ds.train, &[6, 5], 16);
    let both = other.next_indices();
    assert_eq!(
        Vec::<i64>::try_from(both.get(1)).unwrap(),
        a1[0],
        "model 1 of a seed batch draws as a single run of its seed"
    );
    assert_ne!(Vec::<i64>::try_from(both.get(0)).unwrap(), a1[0]);
    let (images, labels) = other.next_batch(&ds.train);
    assert_eq!(images.size(), [2, 16, 3, 32, 32]);
    assert_eq!(labels.size(), [2, 16]);
}

/// A one-request-at-a-time HTTP server on 127.0.0.1 serving `files`; counts requests.
fn serve(files: Vec<(&'static str, Vec<u8>)>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 2048];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = request.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match files.iter().find(|(name, _)| *name == path) {
                // A "trickle" file comes 100 bytes at a time, 10 times a second, for at most 30 s.
                Some((name, _)) if name.contains("trickle") => {
                    let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n");
                    for _ in 0..300 {
                        if stream.write_all(&[7u8; 100]).is_err() {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
                Some((name, body)) => {
                    // A "broken" file breaks off halfway: it promises twice the bytes it sends.
                    let promised = if name.contains("broken") { 2 * body.len() } else { body.len() };
                    let _ =
                        write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {promised}\r\nConnection: close\r\n\r\n");
                    let _ = stream.write_all(body);
                }
                None => {
                    let _ = write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                }
            }
        }
    });
    (format!("http://{addr}/mirror"), hits)
}

#[test]
fn download_verifies_md5_and_renames_only_complete_files() {
    let good = svhn_mat(12, true);
    let md5_good = format!("{:x}", <md5::Md5 as md5::Digest>::digest(&good));
    let mut corrupted = good.clone();
    corrupted[500] ^= 0xff;
    let (base, hits) = serve(vec![
        ("mirror/train_32x32.mat", good.clone()),
        ("mirror/test_32x32.mat", corrupted),
        ("mirror/broken_32x32.mat", good.clone()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let remotes = [Remote { name: "train_32x32.mat", md5: Box::leak(md5_good.clone().into_boxed_str()) }];
    let paths = download_files(&base, &remotes, dir.path(), MinimumRate::default()).unwrap();
    assert_eq!(std::fs::read(&paths[0]).unwrap(), good);
    // Already there with the right sum: no request.
    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    download_files(&base, &remotes, dir.path(), MinimumRate::default()).unwrap();
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), before);
    // A corrupted file is rejected and leaves nothing behind.
    let bad = [Remote { name: "test_32x32.mat", md5: Box::leak(md5_good.into_boxed_str()) }];
    let err = download_files(&base, &bad, dir.path(), MinimumRate::default()).err().unwrap();
    assert!(matches!(err, DownloadError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("test_32x32.mat") && err.to_string().contains("does not match"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("train_32x32.mat")]);
    // A file the server does not have is an HTTP error naming the URL.
    let missing = [Remote { name: "extra_32x32.mat", md5: "0" }];
    let err = download_files(&base, &missing, dir.path(), MinimumRate::default()).err().unwrap().to_string();
    assert!(err.contains("/mirror/extra_32x32.mat") && err.contains("404"), "{err}");
    // A connection that breaks off leaves no partial file.
    let broken = [Remote { name: "broken_32x32.mat", md5: "0" }];
    let err = download_files(&base, &broken, dir.path(), MinimumRate::default()).err().unwrap().to_string();
    assert!(err.contains("broken_32x32.mat"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("train_32x32.mat")], "a .part file was left");
}

#[test]
fn a_server_that_trickles_is_given_up_and_leaves_no_partial_file() {
    let (base, _) = serve(vec![("mirror/trickle_32x32.mat", Vec::new())]);
    let dir = tempfile::tempdir().unwrap();
    let rate = MinimumRate { min_bytes: 10_000, window: std::time::Duration::from_millis(700) };
    let started = std::time::Instant::now();
    let err = download_files(&base, &[Remote { name: "trickle_32x32.mat", md5: "0" }], dir.path(), rate).err().unwrap();
    assert!(matches!(err, DownloadError::Stalled { .. }), "{err}");
    assert!(
        err.to_string().contains("trickle_32x32.mat") && err.to_string().contains("fewer than 10000 bytes"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a .part file was left");
}

#[test]
fn files_larger_than_the_dataset_are_refused_without_being_read_whole() {
    // A sparse 12 GB data_batch_1.bin: refused by its size.
    let dir = tempfile::tempdir().unwrap();
    write_cifar_dir(dir.path(), 10);
    std::fs::File::options().write(true).open(dir.path().join("data_batch_1.bin")).unwrap().set_len(12 << 30).unwrap();
    let err = data::load(DatasetKind::Cifar10, dir.path(), SUBSET).err().unwrap().to_string();
    assert!(err.contains("data_batch_1.bin") && err.contains("larger than a CIFAR-10 batch file"), "{err}");

    // An archive with a seventh (or a repeated) batch file: refused at that member.
    let src = tempfile::tempdir().unwrap();
    write_cifar_dir(src.path(), 10);
    let archive_dir = tempfile::tempdir().unwrap();
    let archive = archive_dir.path().join("cifar-10-binary.tar.gz");
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        std::fs::File::create(&archive).unwrap(),
        flate2::Compression::fast(),
    ));
    tar.append_dir_all("cifar-10-batches-bin", src.path()).unwrap();
    tar.append_path_with_name(src.path().join("data_batch_1.bin"), "again/data_batch_1.bin").unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let err = data::load(DatasetKind::Cifar10, &archive_dir.path().join("cifar-10-batches-bin"), SUBSET)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("one .bin file too many"), "{err}");

    // A small .mat whose compressed element inflates to 300 MB: refused while inflating.
    let mut zeros = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..300 {
        zeros.write_all(&[0u8; 1 << 20]).unwrap();
    }
    let payload = zeros.finish().unwrap();
    let mut mat = svhn_mat(2, false)[..128].to_vec(); // the header of a real one
    mat.extend(15u32.to_le_bytes());
    mat.extend((payload.len() as u32).to_le_bytes());
    mat.extend(&payload);
    let svhn = tempfile::tempdir().unwrap();
    std::fs::write(svhn.path().join("train_32x32.mat"), &mat).unwrap();
    std::fs::write(svhn.path().join("test_32x32.mat"), svhn_mat(2, true)).unwrap();
    let err = data::load(DatasetKind::Svhn, svhn.path(), SUBSET).err().unwrap().to_string();
    assert!(err.contains("train_32x32.mat") && err.contains("inflate to more than"), "{err}");
}

/// Every dataset (the enum's variants) is complete: it reads and writes as its name on
/// the command line, in files and in experiment files; it has its folder, official counts,
/// ten class names, a preset protocol and a place in the README's Data section.
#[test]
fn every_dataset_is_complete() {
    use homeonorm::engine::data::DatasetKind;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let data_section = &readme[readme.find("## Data").unwrap()..readme.find("## Commands").unwrap()];
    let mut count = 0;
    for kind in DatasetKind::all() {
        count += 1;
        let name = kind.name();
        assert_eq!(name.parse::<DatasetKind>().unwrap(), kind);
        assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(name));
        assert_eq!(<DatasetKind as clap::ValueEnum>::to_possible_value(&kind).unwrap().get_name(), name);
        let (train, test) = kind.official_counts();
        assert!(train > 0 && test > 0, "{name}: official counts");
        assert!(kind.class_names().iter().all(|c| !c.is_empty()), "{name}: class names");
        assert!(kind.default_dir(std::path::Path::new("data")).starts_with("data"), "{name}: its folder");
        let preset = homeonorm::engine::settings::TrainSettings::preset(kind, "vanilla".parse().unwrap());
        assert!(preset.iterations > 0 && preset.batch_size > 0 && preset.lr > 0.0, "{name}: a preset protocol");
        assert!(data_section.to_lowercase().contains(name), "{name}: not in the README's Data section");
    }
    assert!(count >= 2);
}
