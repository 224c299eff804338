//! Demo output: one line per event, prefixed with the time since the demo started. Colours
//! only when stdout is a terminal that can show them (`TERM` is not `dumb`) and `NO_COLOR`
//! is unset; never any cursor movement.

use std::io::{IsTerminal, Write};
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    start: Instant,
    color: bool,
}

const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

/// Whether to colour: a terminal, no `NO_COLOR` (<https://no-color.org>), and a `TERM`
/// that is not `dumb` (which has no escape sequences).
fn wants_color(terminal: bool, no_color: bool, term: Option<&str>) -> bool {
    terminal && !no_color && term != Some("dumb")
}

impl Out {
    pub(crate) fn new() -> Out {
        let color = wants_color(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").is_some(),
            std::env::var("TERM").ok().as_deref(),
        );
        Out {
            start: Instant::now(),
            color,
        }
    }

    pub(crate) fn is_color(&self) -> bool {
        self.color
    }

    pub(crate) fn elapsed_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("{code}{s}{RESET}")
        } else {
            s.to_owned()
        }
    }

    pub(crate) fn green(&self, s: &str) -> String {
        self.paint(GREEN, s)
    }

    pub(crate) fn red(&self, s: &str) -> String {
        self.paint(RED, s)
    }

    pub(crate) fn yellow(&self, s: &str) -> String {
        self.paint(YELLOW, s)
    }

    pub(crate) fn bold(&self, s: &str) -> String {
        self.paint(BOLD, s)
    }

    /// A plain line.
    pub(crate) fn say(&self, s: &str) {
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{s}");
        let _ = o.flush();
    }

    /// A section heading.
    pub(crate) fn heading(&self, s: &str) {
        self.say("");
        self.say(&self.bold(&format!("== {s}")));
    }

    /// A timestamped event from `who` (instance, registry, chat, ...).
    pub(crate) fn event(&self, who: &str, what: &str) {
        let t = self.paint(DIM, &format!("[{:>5.1}s]", self.elapsed_s()));
        let who = self.paint(CYAN, &format!("{who:<9}"));
        self.say(&format!("  {t} {who} {what}"));
    }

    /// A step the demo itself takes (scaling a group, stopping the controller, ...).
    pub(crate) fn action(&self, what: &str) {
        let t = self.paint(DIM, &format!("[{:>5.1}s]", self.elapsed_s()));
        self.say(&format!("  {t} {} {what}", self.paint(YELLOW, "demo     ")));
    }
}

#[cfg(test)]
mod color_tests {
    use super::wants_color;

    #[test]
    fn colour_only_on_a_terminal_that_can_show_it() {
        assert!(wants_color(true, false, Some("xterm-256color")));
        assert!(wants_color(true, false, None));
        assert!(!wants_color(true, false, Some("dumb")), "TERM=dumb");
        assert!(!wants_color(true, true, Some("xterm")), "NO_COLOR");
        assert!(!wants_color(false, false, Some("xterm")), "not a terminal");
    }
}
