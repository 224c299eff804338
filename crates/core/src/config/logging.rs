//! The logging settings of the environment: `LIFEHOOK_LOG` (a `tracing` filter, default
//! `info`) and `LIFEHOOK_LOG_FORMAT` (`text` or `json`, default `text`).
//!
//! Contract: the binary reads both at start, before the configuration. A value it cannot
//! use is never fatal and never silent: it prints one line on stderr,
//! `warning: VAR="value" ...; accepted: ...; using DEFAULT`, then runs with the default.
//! An unset or empty variable means the default, without a warning. Filters are parsed by
//! `tracing_subscriber` in the binary (core has no such dependency): it formats its warning
//! with [`log_filter_warning`]; formats are checked here by [`check_log_format`].

use std::fmt;

/// The log filter variable.
pub const ENV_LOG: &str = "LIFEHOOK_LOG";
/// The log format variable.
pub const ENV_LOG_FORMAT: &str = "LIFEHOOK_LOG_FORMAT";
/// The filter when `LIFEHOOK_LOG` is unset, empty or invalid.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Format {
    /// Every format, as written in `LIFEHOOK_LOG_FORMAT`.
    pub const ALL: [Format; 2] = [Format::Text, Format::Json];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format a `LIFEHOOK_LOG_FORMAT` value names: `text` or `json`, in any case and with
/// surrounding blanks ignored; empty means the default ([`Format::Text`]). `Err` is the
/// warning line to print on stderr (it starts with `warning:` and names the variable, the
/// value, the accepted values and the default used instead).
pub fn check_log_format(value: &str) -> Result<Format, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(Format::default());
    }
    Format::ALL
        .into_iter()
        .find(|f| f.as_str().eq_ignore_ascii_case(v))
        .ok_or_else(|| {
            format!(
                "warning: {ENV_LOG_FORMAT}={value:?} is not a log format; accepted: text, json; using {}",
                Format::default()
            )
        })
}

/// The warning line for a `LIFEHOOK_LOG` value the filter parser refused with `error`.
pub fn log_filter_warning(value: &str, error: &str) -> String {
    format!(
        "warning: {ENV_LOG}={value:?} is not a log filter ({error}); accepted: a level (error, warn, info, debug, trace, off) or directives such as `lifehook=debug,info`; using {DEFAULT_LOG_FILTER}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_formats() {
        assert_eq!(check_log_format("json"), Ok(Format::Json));
        assert_eq!(check_log_format(" JSON "), Ok(Format::Json));
        assert_eq!(check_log_format("Text"), Ok(Format::Text));
        assert_eq!(check_log_format(""), Ok(Format::Text));
        assert_eq!(
            check_log_format("xml"),
            Err(
                "warning: LIFEHOOK_LOG_FORMAT=\"xml\" is not a log format; accepted: text, json; using text"
                    .to_owned()
            )
        );
    }

    #[test]
    fn filter_warning_names_variable_value_and_accepted_values() {
        assert_eq!(
            log_filter_warning("lifehook=loud", "invalid filter directive"),
            "warning: LIFEHOOK_LOG=\"lifehook=loud\" is not a log filter (invalid filter directive); accepted: a level (error, warn, info, debug, trace, off) or directives such as `lifehook=debug,info`; using info"
        );
    }
}
