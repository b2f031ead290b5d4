//! The floor plan holds (src/lib.rs draws it): the engine imports nothing of the runs or
//! the results, and the results never import the runs.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Every line of the wing's files that names one of `forbidden` (`crate::runs`, …).
fn imports_of(wing: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(wing);
    let files = rust_files(&root);
    assert!(files.len() > 3, "no wing at {}", root.display());
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if forbidden.iter().any(|f| code.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_engine_imports_nothing_of_the_runs_or_the_results() {
    let found = imports_of("engine", &["crate::runs", "crate::results", "super::super::super"]);
    assert!(found.is_empty(), "the engine reaches out of its wing:\n{}", found.join("\n"));
}

#[test]
fn the_results_never_import_the_runs() {
    let found = imports_of("results", &["crate::runs", "super::super::super"]);
    assert!(found.is_empty(), "the results reach into the runs:\n{}", found.join("\n"));
}

#[test]
fn the_crate_root_holds_the_three_wings_and_the_shared_text_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut top: Vec<String> =
        std::fs::read_dir(&src).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    top.sort();
    assert_eq!(top, ["engine", "lib.rs", "main.rs", "results", "runs", "text.rs"]);
}
