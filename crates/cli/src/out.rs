//! Standard output for the subcommands. A reader that goes away — a closed pipe, as in
//! `lifehook policy --config c.toml | head -1` — is a normal end of the output, not an
//! error: the rest is dropped and the command ends as it would have (`println!` panics
//! there instead, with exit code 101).

use std::fmt;
use std::io::{self, Write as _};

/// Writes `args` to standard output; a closed pipe ends the output silently.
pub(crate) fn print(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush())
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write to standard output: {e}");
    }
}

/// `println!` that survives a closed pipe ([`print()`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that survives a closed pipe ([`print()`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::print(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};
