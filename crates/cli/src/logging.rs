//! Logging: `LIFEHOOK_LOG` sets the filter (default `info`), `LIFEHOOK_LOG_FORMAT=json`
//! (or, in Lambda, a function log format of JSON: `AWS_LAMBDA_LOG_FORMAT=JSON`) switches to
//! JSON lines. Logs go to stderr. A value that cannot be used prints one `warning:` line on
//! stderr and falls back to the default (see `lifehook_core::config::logging`).

use lifehook_core::config::logging::{self, Format};
use tracing_subscriber::EnvFilter;

pub(crate) fn init() {
    let filter = match std::env::var(logging::ENV_LOG) {
        // `builder().parse` is what `try_from_env` did (no default directive).
        Ok(v) if !v.trim().is_empty() => EnvFilter::builder().parse(&v).unwrap_or_else(|e| {
            eprintln!("{}", logging::log_filter_warning(&v, &e.to_string()));
            EnvFilter::new(logging::DEFAULT_LOG_FILTER)
        }),
        _ => EnvFilter::new(logging::DEFAULT_LOG_FILTER),
    };
    let format = match std::env::var(logging::ENV_LOG_FORMAT) {
        Ok(v) => logging::check_log_format(&v).unwrap_or_else(|warning| {
            eprintln!("{warning}");
            Format::default()
        }),
        Err(_) => Format::default(),
    };
    // Lambda sets AWS_LAMBDA_LOG_FORMAT=JSON when the function's log format is JSON.
    let lambda_json =
        std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let json = format == Format::Json || lambda_json;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}
