//! Text from input files (archive members, experiment names, file contents quoted in
//! errors) on its way to a terminal or a Markdown report.

/// `s` with control characters (escape sequences, carriage returns, NULs) written as
/// Rust escapes (`\u{1b}`), so input cannot move a terminal's cursor or recolour it.
pub fn escape(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(super::escape("run\u{1b}[31m red\r\nα"), "run\\u{1b}[31m red\\r\\nα");
    }
}
