//! Text from input files (archive members, experiment names, file contents quoted in
//! errors) on its way to a terminal or a Markdown report.

/// `s` with control characters (escape sequences, carriage returns, NULs) written as
/// Rust escapes (`\u{1b}`), so input cannot move a terminal's cursor or recolour it.
pub fn escape(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// A path for a terminal or a Markdown report: as [`escape`] writes its text.
pub fn path(p: &std::path::Path) -> String {
    escape(&p.display().to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(super::escape("run\u{1b}[31m red\r\nα"), "run\\u{1b}[31m red\\r\\nα");
        assert_eq!(super::path(std::path::Path::new("out\u{1b}[2J/seed0")), "out\\u{1b}[2J/seed0");
    }
}
