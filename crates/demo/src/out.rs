//! Demo output: one line per event, prefixed with the time since the demo started. Colours
//! only when stdout is a terminal that can show them (`TERM` is not `dumb`) and `NO_COLOR`
//! is unset; never any cursor movement.

use std::io::{IsTerminal, Write};
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    start: Instant,
    color: bool,
    /// Lines are wrapped to this many columns.
    width: usize,
}

/// The width to fit: `COLUMNS` when the shell exports it (and it is sensible), else 80.
fn width_from(columns: Option<&str>) -> usize {
    columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| (60..=500).contains(w))
        .unwrap_or(80)
}

/// Breaks `text` into lines of at most `width` visible characters: the first after
/// `first` (already on the line, `first_len` visible characters), the others after
/// `indent` spaces. Breaks at spaces; a word longer than a line keeps a line of its own.
fn wrap(first: &str, first_len: usize, indent: usize, text: &str, width: usize) -> String {
    let mut out = String::from(first);
    let mut col = first_len;
    // After a prefix, the first word may go to the next line too.
    let mut line_start = first_len <= indent;
    let mut first_word = true;
    for word in text.split(' ') {
        let len = word.chars().count();
        let sep = usize::from(!first_word);
        if !line_start && col + sep + len > width {
            out.truncate(out.trim_end_matches(' ').len());
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
            line_start = true;
        }
        if !line_start && !first_word {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += len;
        line_start = false;
        first_word = false;
    }
    out
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
            width: width_from(std::env::var("COLUMNS").ok().as_deref()),
        }
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

    /// A plain line, wrapped to the width under its own indentation. (Lines with colour
    /// codes — the summary's — are laid out by their caller.)
    pub(crate) fn say(&self, s: &str) {
        let text = if s.contains('\x1b') || s.chars().count() <= self.width {
            s.to_owned()
        } else {
            let indent = s.len() - s.trim_start().len();
            let body = s.trim_start();
            wrap(&s[..indent], indent, indent, body, self.width)
        };
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{text}");
        let _ = o.flush();
    }

    /// A section heading.
    pub(crate) fn heading(&self, s: &str) {
        self.say("");
        self.say(&self.bold(&format!("== {s}")));
    }

    /// A timestamped event from `who` (instance, registry, chat, ...), wrapped under the
    /// text.
    pub(crate) fn event(&self, who: &str, what: &str) {
        let t = self.paint(DIM, &format!("[{:>5.1}s]", self.elapsed_s()));
        let who_cell = self.paint(CYAN, &format!("{who:<9}"));
        self.line(
            &format!("  {t} {who_cell} "),
            2 + 8 + 1 + who.len().max(9) + 1,
            what,
        );
    }

    /// A step the demo itself takes (scaling a group, stopping the controller, ...).
    pub(crate) fn action(&self, what: &str) {
        let t = self.paint(DIM, &format!("[{:>5.1}s]", self.elapsed_s()));
        let who = self.paint(YELLOW, "demo     ");
        self.line(&format!("  {t} {who} "), 2 + 8 + 1 + 9 + 1, what);
    }

    /// `prefix` (of `prefix_len` visible characters), then `what` wrapped under the
    /// timestamp column.
    fn line(&self, prefix: &str, prefix_len: usize, what: &str) {
        let text = wrap(prefix, prefix_len, EVENT_INDENT, what, self.width);
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{text}");
        let _ = o.flush();
    }

    /// `prefix` (of `indent` visible characters), then `text` wrapped under itself.
    pub(crate) fn say_wrapped(&self, prefix: &str, indent: usize, text: &str) {
        let text = wrap(prefix, indent, indent, text, self.width);
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{text}");
        let _ = o.flush();
    }

    /// The columns to fit.
    pub(crate) fn width(&self) -> usize {
        self.width
    }
}

/// Where an event's continuation lines start: under the text after the timestamp.
const EVENT_INDENT: usize = 13;

#[cfg(test)]
mod color_tests {
    use super::{wants_color, width_from, wrap};

    #[test]
    fn lines_wrap_to_the_width_under_their_text() {
        let w = wrap(
            "  [  1.0s] demo      ",
            21,
            13,
            "one two three four five six",
            32,
        );
        assert_eq!(
            w,
            "  [  1.0s] demo      one two\n             three four five six"
        );
        for line in w.lines() {
            assert!(line.chars().count() <= 32, "{line:?}");
        }
        // A word longer than the line keeps a line of its own; nothing is lost.
        let w = wrap("", 0, 2, "a http://127.0.0.1:1234/a/very/long/path b", 20);
        assert_eq!(w, "a\n  http://127.0.0.1:1234/a/very/long/path\n  b");
        assert_eq!(width_from(None), 80);
        assert_eq!(width_from(Some("120")), 120);
        assert_eq!(width_from(Some("12")), 80);
        assert_eq!(width_from(Some("wide")), 80);
    }

    #[test]
    fn colour_only_on_a_terminal_that_can_show_it() {
        assert!(wants_color(true, false, Some("xterm-256color")));
        assert!(wants_color(true, false, None));
        assert!(!wants_color(true, false, Some("dumb")), "TERM=dumb");
        assert!(!wants_color(true, true, Some("xterm")), "NO_COLOR");
        assert!(!wants_color(false, false, Some("xterm")), "not a terminal");
    }
}
