//! A table of text cells, written as Markdown (report.md) or as LaTeX with booktabs
//! rules (`report --latex`): one table, two renderings, the same cells.

use std::fmt::Write as _;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: impl IntoIterator<Item = impl Into<String>>) -> Table {
        Table { header: header.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len(), "a row of another table");
        self.rows.push(row);
    }

    /// A GitHub-flavoured Markdown table (`|` in a cell escaped).
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut md = line(&self.header);
        let _ = writeln!(md, "|{}", "---|".repeat(self.header.len()));
        for row in &self.rows {
            md += &line(row);
        }
        md
    }

    /// A LaTeX `table` of a `tabular` with booktabs' rules (`\usepackage{booktabs}`),
    /// its caption and label; text columns left-aligned, numeric ones right-aligned.
    pub fn latex(&self, caption: &str, label: &str) -> String {
        let numeric = |k: usize| {
            self.rows.iter().all(|r| {
                let c = r[k].trim_start_matches(['−', '-', '[']);
                c.is_empty() || c.starts_with(|ch: char| ch.is_ascii_digit()) || c == "–"
            })
        };
        let align: String = (0..self.header.len()).map(|k| if numeric(k) { 'r' } else { 'l' }).collect();
        let row = |cells: &[String]| {
            format!("{} \\\\\n", cells.iter().map(|c| latex_text(c)).collect::<Vec<_>>().join(" & "))
        };
        let mut tex = String::new();
        let _ = writeln!(tex, "\\begin{{table}}[ht]\n\\centering\n\\small");
        let _ = writeln!(tex, "\\caption{{{}}}\n\\label{{{label}}}", latex_text(caption));
        let _ = writeln!(tex, "\\begin{{tabular}}{{{align}}}\n\\toprule");
        tex += &row(&self.header);
        tex += "\\midrule\n";
        for r in &self.rows {
            tex += &row(r);
        }
        tex += "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
        tex
    }
}

/// Text as LaTeX sets it: its special characters escaped, and the symbols the reports
/// use (±, −, –, α, θ, η, …) in math mode.
pub fn latex_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out += "\\textbackslash{}",
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '~' => out += "\\textasciitilde{}",
            '^' => out += "\\textasciicircum{}",
            '±' => out += "$\\pm$",
            '−' => out += "$-$",
            '–' => out += "--",
            '×' => out += "$\\times$",
            '≥' => out += "$\\geq$",
            '≤' => out += "$\\leq$",
            'α' => out += "$\\alpha$",
            'θ' => out += "$\\theta$",
            'η' => out += "$\\eta$",
            'σ' => out += "$\\sigma$",
            'μ' => out += "$\\mu$",
            _ => out.push(ch),
        }
    }
    out
}

/// Rows of (column, value) pairs as one CSV. Rows of different methods or networks hold
/// different settings, so the header is every column any row has, a column first met in
/// a later row placed after the column before it there; a row without a column leaves
/// it empty. A name a row repeats is one column, the row's first value.
pub fn named_rows_csv(rows: &[Vec<(String, String)>]) -> anyhow::Result<Vec<u8>> {
    let mut header: Vec<&str> = Vec::new();
    for row in rows {
        let mut at = 0;
        for (name, _) in row {
            match header.iter().position(|h| h == name) {
                Some(i) => at = i + 1,
                None => {
                    header.insert(at, name);
                    at += 1;
                }
            }
        }
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&header)?;
    for row in rows {
        let cell = |name: &&str| row.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str());
        out.write_record(header.iter().map(cell))?;
    }
    Ok(out.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::new(["method", "lr", "accuracy (%)", "p"]);
        t.push(vec!["batch-norm".into(), "0.003".into(), "65.83 ± 0.61".into(), "0.88".into()]);
        t.push(vec!["weight_norm | x".into(), "1e-5".into(), "–".into(), "−0.2".into()]);
        t
    }

    #[test]
    fn markdown_has_a_header_rule_and_escaped_bars() {
        assert_eq!(
            table().markdown(),
            "| method | lr | accuracy (%) | p |\n|---|---|---|---|\n| batch-norm | 0.003 | 65.83 ± 0.61 | 0.88 |\n\
             | weight_norm \\| x | 1e-5 | – | −0.2 |\n"
        );
    }

    #[test]
    fn latex_escapes_text_and_sets_symbols_in_math() {
        let tex = table().latex("Final accuracy, 95 % CI", "tab:acc");
        assert!(tex.contains("\\caption{Final accuracy, 95 \\% CI}\n\\label{tab:acc}"), "{tex}");
        assert!(
            tex.contains("\\begin{tabular}{lrrr}\n\\toprule\nmethod & lr & accuracy (\\%) & p \\\\\n\\midrule\n"),
            "{tex}"
        );
        assert!(tex.contains("batch-norm & 0.003 & 65.83 $\\pm$ 0.61 & 0.88 \\\\"), "{tex}");
        assert!(tex.contains("weight\\_norm | x & 1e-5 & -- & $-$0.2 \\\\\n\\bottomrule\n\\end{tabular}"), "{tex}");
    }

    #[test]
    fn named_rows_share_one_header_with_each_column_beside_its_neighbour() {
        let row = |cells: &[(&str, &str)]| cells.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let rows: Vec<Vec<(String, String)>> = vec![
            row(&[("method", "vanilla"), ("lr", "0.003"), ("accuracy", "0.58")]),
            row(&[("method", "group-norm"), ("groups", "2"), ("lr", "0.003"), ("accuracy", "0.54"), ("lr", "9")]),
        ];
        let csv = String::from_utf8(named_rows_csv(&rows).unwrap()).unwrap();
        assert_eq!(csv, "method,groups,lr,accuracy\nvanilla,,0.003,0.58\ngroup-norm,2,0.003,0.54\n");
    }
}
