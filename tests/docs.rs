//! The committed Markdown: every picture it shows is in the repository.

use std::path::{Path, PathBuf};

/// Every `.md` file below `dir`, but in build output and hidden folders.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                files.extend(markdown_files(&path));
            }
        } else if name.ends_with(".md") {
            files.push(path);
        }
    }
    files
}

/// The targets of the `![alt](target)` images in `text`.
fn image_targets(text: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("![") {
        rest = &rest[at + 2..];
        let Some(close) = rest.find("](") else { break };
        let after = &rest[close + 2..];
        if let Some(end) = after.find(')') {
            targets.push(after[..end].split_whitespace().next().unwrap_or(""));
        }
        rest = after;
    }
    targets
}

#[test]
fn every_picture_committed_markdown_shows_is_there() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut shown, mut missing) = (0, Vec::new());
    for file in markdown_files(root) {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in image_targets(&text) {
            if target.contains("://") {
                continue;
            }
            shown += 1;
            if !file.parent().unwrap().join(target).is_file() {
                missing.push(format!("{}: {target}", file.strip_prefix(root).unwrap().display()));
            }
        }
    }
    assert!(shown > 10, "only {shown} pictures found in the repository's Markdown");
    assert!(missing.is_empty(), "{} pictures are not there:\n{}", missing.len(), missing.join("\n"));
}

#[test]
fn image_targets_are_read_as_markdown_writes_them() {
    let text = "a ![one](figures/a.png) b ![two](b.svg \"title\") ![x](https://e.org/c.png) [link](d.md)";
    assert_eq!(image_targets(text), ["figures/a.png", "b.svg", "https://e.org/c.png"]);
}
