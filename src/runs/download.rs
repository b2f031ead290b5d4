//! `homeonorm download`: fetches the official files, checks their published MD5
//! sums, writes to a temporary name and renames only a complete, verified file.

use crate::engine::data::{cifar10, svhn, DatasetKind};
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A file to fetch: its name (also its name on the server) and published MD5.
pub struct Remote {
    pub name: &'static str,
    pub md5: &'static str,
}

/// Where a dataset's files come from, and where they go under a data root.
pub fn remotes(kind: DatasetKind) -> (&'static str, Vec<Remote>) {
    match kind {
        DatasetKind::Cifar10 => (
            "https://www.cs.toronto.edu/~kriz/",
            vec![Remote { name: cifar10::ARCHIVE, md5: "c32a1d4ab5d03f1284b67883e8d87530" }],
        ),
        DatasetKind::Svhn => (
            svhn::URL,
            vec![
                Remote { name: svhn::TRAIN_FILE, md5: "e26dedcc434d2e4c54c9b2d4a06d8373" },
                Remote { name: svhn::TEST_FILE, md5: "eb5a983be6a315427106f1b164d9cef3" },
            ],
        ),
    }
}

/// The folder a dataset's downloads go to under `data_root` (where `load` looks).
pub fn target_dir(kind: DatasetKind, data_root: &Path) -> PathBuf {
    match kind {
        // The loader reads the archive from beside cifar-10-batches-bin/.
        DatasetKind::Cifar10 => data_root.to_path_buf(),
        DatasetKind::Svhn => kind.default_dir(data_root),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{url}: MD5 {found} does not match the published {expected}; the download was discarded")]
    Checksum { url: String, found: String, expected: String },
    #[error("{url}: fewer than {min_bytes} bytes came in {window:?}; given up, the partial file removed")]
    Stalled { url: String, min_bytes: u64, window: std::time::Duration },
    #[error("{url}: interrupted; the partial file was removed")]
    Interrupted { url: String },
}

/// How slow a download may get before it is given up: fewer than `min_bytes` in any
/// `window` (a server that trickles never ends a download that only times out reads).
#[derive(Clone, Copy, Debug)]
pub struct MinimumRate {
    pub min_bytes: u64,
    pub window: std::time::Duration,
}

impl Default for MinimumRate {
    /// 64 KiB a minute: the published files take hours at that rate, not forever.
    fn default() -> Self {
        MinimumRate { min_bytes: 64 << 10, window: std::time::Duration::from_secs(60) }
    }
}

/// Downloads every file of `kind` that is not already in `dir` with the right sum.
/// `base_url` replaces the official location (a mirror). Returns the files' paths.
pub fn download(kind: DatasetKind, dir: &Path, base_url: Option<&str>) -> Result<Vec<PathBuf>, DownloadError> {
    let (official, files) = remotes(kind);
    download_files(base_url.unwrap_or(official), &files, dir, MinimumRate::default())
}

/// Downloads `files` from `base` into `dir`, skipping those already there with the right sum.
pub fn download_files(
    base: &str,
    files: &[Remote],
    dir: &Path,
    rate: MinimumRate,
) -> Result<Vec<PathBuf>, DownloadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DownloadError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut paths = Vec::new();
    for remote in files.iter() {
        let path = dir.join(remote.name);
        if path.is_file() && file_md5(&path).map_err(io(&path))? == remote.md5 {
            log::info!("{} is already there with the right MD5", path.display());
            paths.push(path);
            continue;
        }
        let url = format!("{}/{}", base.trim_end_matches('/'), remote.name);
        fetch_verified(&url, &path, remote.md5, rate)?;
        paths.push(path);
    }
    Ok(paths)
}

fn file_md5(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Md5::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

fn fetch_verified(url: &str, path: &Path, md5: &str, rate: MinimumRate) -> Result<(), DownloadError> {
    let http = |message: String| DownloadError::Http { url: url.to_string(), message };
    log::info!("downloading {url}");
    // Timeouts, so that a machine that reaches no dataset host fails instead of hanging.
    let agent =
        ureq::AgentBuilder::new().timeout_connect(std::time::Duration::from_secs(20)).timeout_read(rate.window).build();
    let response = agent.get(url).call().map_err(|e| http(e.to_string()))?;
    let partial = path.with_extension("part");
    let fetched = fetch_to(response, path, &partial, md5, url, rate);
    if fetched.is_err() {
        // Never leave a partial file behind: the next try starts clean.
        let _ = std::fs::remove_file(&partial);
    }
    fetched
}

/// Streams `response` into `partial`, checks its MD5 and renames it to `path`.
fn fetch_to(
    response: ureq::Response,
    path: &Path,
    partial: &Path,
    md5: &str,
    url: &str,
    rate: MinimumRate,
) -> Result<(), DownloadError> {
    let http = |message: String| DownloadError::Http { url: url.to_string(), message };
    let length = response.header("Content-Length").and_then(|v| v.parse::<u64>().ok());
    let bar = crate::runs::progress::bytes_bar(length, path);
    let mut logged_tenths = 0;
    let io = |source| DownloadError::Io { path: partial.to_path_buf(), source };
    let mut out = std::fs::File::create(partial).map_err(io)?;
    let mut reader = response.into_reader();
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let (mut window_start, mut window_bytes) = (std::time::Instant::now(), 0u64);
    loop {
        let n = reader.read(&mut buf).map_err(|e| http(format!("connection broke off: {e}")))?;
        if crate::runs::interrupt::requested() {
            return Err(DownloadError::Interrupted { url: url.to_string() });
        }
        if n == 0 {
            break;
        }
        window_bytes += n as u64;
        if window_start.elapsed() >= rate.window {
            if window_bytes < rate.min_bytes {
                return Err(DownloadError::Stalled {
                    url: url.to_string(),
                    min_bytes: rate.min_bytes,
                    window: rate.window,
                });
            }
            (window_start, window_bytes) = (std::time::Instant::now(), 0);
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io)?;
        bar.inc(n as u64);
        if let (false, Some(total)) = (crate::runs::progress::on_terminal(), length) {
            // Plain log lines off a terminal: one every 10 %.
            let tenths = bar.position() * 10 / total.max(1);
            if tenths > logged_tenths {
                logged_tenths = tenths;
                log::info!("{}: {} % of {} bytes", path.display(), tenths * 10, total);
            }
        }
    }
    out.sync_all().map_err(io)?;
    drop(out);
    bar.finish_and_clear();
    let found = format!("{:x}", hasher.finalize());
    if found != md5 {
        return Err(DownloadError::Checksum { url: url.to_string(), found, expected: md5.to_string() });
    }
    std::fs::rename(partial, path).map_err(|source| DownloadError::Io { path: path.to_path_buf(), source })?;
    log::info!("{} verified (MD5 {md5})", path.display());
    Ok(())
}
