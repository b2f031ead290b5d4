//! The committed Markdown: every file it links to or shows is in the repository, and the
//! tables it prints from committed files are what their scripts print from them; every
//! committed result set's summary recomputes from its per-run table.

use std::path::{Path, PathBuf};

/// Every file below `dir` whose name `keep` takes, but in build output and hidden folders.
fn files_below(dir: &Path, keep: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                files.extend(files_below(&path, keep));
            }
        } else if keep(&name) {
            files.push(path);
        }
    }
    files
}

/// Every `.md` file below `dir`.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    files_below(dir, &|name| name.ends_with(".md"))
}

/// `text` with its code (fenced blocks and `inline spans`) blanked out: a `](` there is
/// code, not a link.
fn without_code(text: &str) -> String {
    let mut prose = String::with_capacity(text.len());
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            let mut in_span = false;
            for c in line.chars() {
                if c == '`' {
                    in_span = !in_span;
                }
                prose.push(if in_span || c == '`' { ' ' } else { c });
            }
        }
        prose.push('\n');
    }
    prose
}

/// The targets of the `[text](target)` links and `![alt](target)` images in `text`'s
/// prose, without a title or `#anchor`.
fn link_targets(text: &str) -> Vec<String> {
    let prose = without_code(text);
    let mut targets = Vec::new();
    let mut rest = prose.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split_whitespace().next().unwrap_or("");
        targets.push(target.split('#').next().unwrap_or("").to_string());
        rest = &rest[end..];
    }
    targets
}

#[test]
fn every_file_committed_markdown_links_or_shows_is_there() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut linked, mut pictures, mut missing) = (0, 0, Vec::new());
    for file in markdown_files(root) {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in link_targets(&text) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            linked += 1;
            pictures += usize::from(target.ends_with(".png") || target.ends_with(".svg"));
            if !file.parent().unwrap().join(&target).exists() {
                missing.push(format!("{}: {target}", file.strip_prefix(root).unwrap().display()));
            }
        }
    }
    assert!(pictures > 10, "only {pictures} pictures found in the repository's Markdown");
    assert!(linked > pictures, "no links but pictures found in the repository's Markdown");
    assert!(missing.is_empty(), "{} linked files are not there:\n{}", missing.len(), missing.join("\n"));
}

#[test]
fn link_targets_are_read_as_markdown_writes_them_and_code_is_not_a_link() {
    let text = "a ![one](figures/a.png) b ![two](b.svg \"title\") ![x](https://e.org/c.png) \
                [link](d.md#part) [here](#top) `f[i](j)`\n```\nx[k](l)\n```\n[last](e/)";
    assert_eq!(link_targets(text), ["figures/a.png", "b.svg", "https://e.org/c.png", "d.md", "", "e/"]);
}

/// Each (script, document, table rows it prints at least): the script reads committed files
/// only and prints Markdown tables the document quotes.
const SCRIPTED_TABLES: [(&str, &str, usize); 3] = [
    ("scripts/architectures-table.py", "docs/architectures/README.md", 8),
    ("scripts/gap-tables.py", "docs/reproduction/README.md", 14),
    ("scripts/lr-sweep-table.py", "docs/reproduction/lr-sweep/README.md", 22),
];

/// A table a document quotes is the one its script prints today, row for row: a number
/// edited by hand, or a committed file changed under the table, fails here.
#[test]
fn tables_the_docs_quote_are_what_their_scripts_print_from_committed_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (script, document, at_least) in SCRIPTED_TABLES {
        let out = std::process::Command::new("python3").arg(root.join(script)).output().unwrap();
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        let printed = String::from_utf8(out.stdout).unwrap();
        let rows: Vec<&str> = printed.lines().filter(|l| l.starts_with('|')).collect();
        assert!(rows.len() >= at_least, "{script} printed {} table rows:\n{printed}", rows.len());
        let quoted = std::fs::read_to_string(root.join(document)).unwrap();
        let quoted: std::collections::HashSet<&str> = quoted.lines().collect();
        let missing: Vec<&str> = rows.into_iter().filter(|row| !quoted.contains(row)).collect();
        assert!(missing.is_empty(), "{document} does not quote these rows {script} prints:\n{}", missing.join("\n"));
    }
}

/// Every folder below `dir` that holds a `summary.csv`: a committed result set.
fn result_sets(dir: &Path) -> Vec<PathBuf> {
    files_below(dir, &|name| name == "summary.csv").iter().map(|f| f.parent().unwrap().to_path_buf()).collect()
}

fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| header.iter().map(String::from).zip(r.unwrap().iter().map(String::from)).collect())
        .collect()
}

/// A reviewer re-checks a committed result run by run: every set's `runs.csv` holds each
/// run its `summary.csv` pools, and each summary row's counts, mean and sample std of
/// final accuracy recompute from those rows.
#[test]
fn every_committed_result_set_has_the_runs_its_summary_pools() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sets = result_sets(&root.join("docs"));
    assert!(sets.len() >= 8, "only {} result sets under docs/", sets.len());
    for set in sets {
        let runs_csv = set.join("runs.csv");
        assert!(runs_csv.is_file(), "{}: a summary.csv without its runs.csv", set.display());
        let runs = csv_rows(&runs_csv);
        let summary = csv_rows(&set.join("summary.csv"));
        for run in &runs {
            let setting: usize = run["setting"].parse().unwrap();
            assert!(setting < summary.len(), "{}: run {} pooled into no summary row", runs_csv.display(), run["run"]);
        }
        for (i, row) in summary.iter().enumerate() {
            let of = |outcome: &str| -> Vec<&std::collections::HashMap<String, String>> {
                runs.iter().filter(|r| r["setting"] == i.to_string() && r["outcome"] == outcome).collect()
            };
            let at = format!("{} row {}", set.join("summary.csv").display(), i + 2);
            for (column, outcome) in [("runs", "complete"), ("diverged", "diverged"), ("unfinished", "unfinished")] {
                assert_eq!(row[column], of(outcome).len().to_string(), "{at}: `{column}` against runs.csv");
            }
            let accuracies: Vec<f64> = of("complete").iter().map(|r| r["final_accuracy"].parse().unwrap()).collect();
            if accuracies.is_empty() {
                continue;
            }
            let n = accuracies.len() as f64;
            let mean = accuracies.iter().sum::<f64>() / n;
            let close = |a: f64, b: &str| (a - b.parse::<f64>().unwrap()).abs() < 1e-9;
            assert!(close(mean, &row["final_accuracy_mean"]), "{at}: mean final accuracy {mean} against runs.csv");
            if accuracies.len() > 1 {
                let std = (accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
                assert!(close(std, &row["final_accuracy_std"]), "{at}: final accuracy's std {std} against runs.csv");
            }
        }
    }
}
