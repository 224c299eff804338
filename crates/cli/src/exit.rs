//! The one way out of `lifehook`. Every subcommand returns `Result<(), Failure>`, and
//! `main` alone turns it into the documented exit code:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | runtime failure: an AWS call failed, an action is already resolved, a demo scenario failed |
//! | 2 | usage or configuration error: bad arguments, an invalid configuration file |
//!
//! Nothing else in the binary exits, so the contract cannot drift between subcommands.

use std::fmt;
use std::process::ExitCode;

use lifehook_core::config::Problem;

/// The exit codes of the contract (0 is `Ok`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// 1: the command ran and failed.
    Runtime = 1,
    /// 2: the command could not run as asked (arguments, configuration).
    Usage = 2,
}

impl From<Code> for ExitCode {
    fn from(c: Code) -> ExitCode {
        ExitCode::from(c as u8)
    }
}

/// Why a subcommand did not succeed: the exit code and what to print on stderr (nothing,
/// when the command already said it).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: Code,
    pub(crate) lines: Vec<String>,
}

impl Failure {
    /// A usage or configuration error, printed as `error: {message}`.
    pub(crate) fn usage(message: impl fmt::Display) -> Failure {
        Failure {
            code: Code::Usage,
            lines: vec![format!("error: {message}")],
        }
    }

    /// A runtime failure, printed as `error: {message}`.
    pub(crate) fn runtime(message: impl fmt::Display) -> Failure {
        Failure {
            code: Code::Runtime,
            lines: vec![format!("error: {message}")],
        }
    }

    /// A runtime failure from an error value, printed with its chain of causes.
    pub(crate) fn error<E>(e: E) -> Failure
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Failure::from(anyhow::Error::new(e))
    }

    /// Exit with `code`, printing nothing more: the command already reported why.
    pub(crate) fn reported(code: Code) -> Failure {
        Failure {
            code,
            lines: Vec::new(),
        }
    }

    /// Every problem of a configuration, located, then `summary` (exit 2).
    pub(crate) fn problems(problems: &[Problem], summary: String) -> Failure {
        let mut lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        lines.push(summary);
        Failure {
            code: Code::Usage,
            lines,
        }
    }

    /// Prints the lines on stderr and gives the exit code.
    pub(crate) fn report(self) -> ExitCode {
        for l in &self.lines {
            eprintln!("{l}");
        }
        self.code.into()
    }
}

/// Any other error is a runtime failure; `{:#}` prints its chain of causes.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::runtime(format!("{e:#}"))
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Failure {
        Failure::runtime(e)
    }
}

/// What every subcommand returns.
pub(crate) type Outcome = Result<(), Failure>;
