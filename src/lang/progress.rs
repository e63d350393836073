//! Progress bars for long stages; silent with `--quiet` or when output is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub visible: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress { visible: !quiet && std::io::stdout().is_terminal() && std::io::stderr().is_terminal() }
    }

    pub fn bar(&self, len: u64, label: &str) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        bar
    }
}
