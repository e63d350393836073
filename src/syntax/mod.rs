//! Text -> syntax tree, and syntax tree -> canonical text.

pub mod ast;
mod chunks;
mod comments;
mod format;
mod parser;

pub use comments::{Comment, comments};
pub use format::{expr as format_expr, format_program};
pub use parser::{out_of_range, parse_expr, parse_program};
