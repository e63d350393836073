//! Splits a file into statement chunks at lines that start with a statement keyword, so
//! that each statement is parsed on its own and a syntax error does not hide the errors
//! of the statements after it.

/// The words that start a statement (the grammar's `keyword` rule adds `true`, `false`,
/// `none`).
pub const KEYWORDS: [&str; 6] = ["use", "seed", "let", "def", "report", "profile"];

/// Byte ranges of the chunks; comments and blank lines stay inside the chunk before them.
pub fn split(text: &str) -> Vec<(usize, usize)> {
    let mut starts = Vec::new();
    let mut offset = 0;
    let mut depth: i32 = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let meaningful = !trimmed.is_empty() && !trimmed.starts_with('#');
        // A keyword inside an open bracket is not a new statement: `profile` blocks and
        // long calls span lines.
        // Outside brackets, a keyword starts a statement; so does a word at column 0, which
        // then fails as an unknown statement instead of garbling the statement before it.
        let word_at_column0 = indent == 0 && trimmed.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        if meaningful && depth <= 0 && (starts_keyword(trimmed) || word_at_column0 || starts.is_empty()) {
            starts.push(offset + indent);
            depth = 0;
        }
        depth += bracket_balance(line);
        offset += line.len();
    }
    let mut chunks = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(text.len());
        chunks.push((s, e));
    }
    chunks
}

fn starts_keyword(line: &str) -> bool {
    KEYWORDS
        .iter()
        .any(|k| line.starts_with(k) && !line[k.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

/// Net count of opening brackets on a line, ignoring strings and comments.
fn bracket_balance(line: &str) -> i32 {
    let mut balance = 0;
    let mut in_string = false;
    let mut escaped = false;
    for c in line.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '#' => break,
            '(' | '[' | '{' => balance += 1,
            ')' | ']' | '}' => balance -= 1,
            _ => {}
        }
    }
    balance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_keywords_outside_brackets() {
        let src = "seed 1\nlet a = f(x,\n  let_me: 2)\n# c\nreport a\n";
        let chunks = split(src);
        let texts: Vec<&str> = chunks.iter().map(|&(s, e)| &src[s..e]).collect();
        assert_eq!(texts, vec!["seed 1\n", "let a = f(x,\n  let_me: 2)\n# c\n", "report a\n"]);
    }

    /// Brackets inside strings (also with an escaped quote) and comments do not hold the
    /// next statement inside the current one.
    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let src = "let a = f(title: \"a ( [\")  # note (\nlet b = g(\"x \\\" (\")\n# ( {\nlet c = h()\n";
        let chunks = split(src);
        assert_eq!(chunks.len(), 3, "{:?}", chunks.iter().map(|&(s, e)| &src[s..e]).collect::<Vec<_>>());
    }

    #[test]
    fn leading_garbage_is_its_own_chunk() {
        let src = "oops\nseed 1\n";
        assert_eq!(split(src).len(), 2);
    }
}
