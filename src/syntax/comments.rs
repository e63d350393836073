//! Comments are not in the syntax tree; the formatter puts them back from this list.

#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    /// Byte offset of the `#`.
    pub offset: usize,
    /// The text including `#`, without the newline.
    pub text: String,
    /// Whether code precedes the comment on its line.
    pub trailing: bool,
}

pub fn comments(text: &str) -> Vec<Comment> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let mut in_string = false;
        let mut escaped = false;
        for (i, c) in line.char_indices() {
            if in_string {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            if c == '"' {
                in_string = true;
            } else if c == '#' {
                let body = line[i..].trim_end_matches(['\n', '\r']).trim_end();
                let trailing = !line[..i].trim().is_empty();
                out.push(Comment { offset: offset + i, text: body.to_string(), trailing });
                break;
            }
        }
        offset += line.len();
    }
    out
}
