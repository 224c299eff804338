//! Logging: `LIFEHOOK_LOG` sets the filter (default `info`), `LIFEHOOK_LOG_FORMAT=json`
//! (or, in Lambda, a function log format of JSON: `AWS_LAMBDA_LOG_FORMAT=JSON`) switches to
//! JSON lines. Logs go to stderr.

use tracing_subscriber::EnvFilter;

pub(crate) fn init() {
    let filter = EnvFilter::try_from_env("LIFEHOOK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Lambda sets AWS_LAMBDA_LOG_FORMAT=JSON when the function's log format is JSON.
    let is_json = |k: &str| std::env::var(k).is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let json = is_json("LIFEHOOK_LOG_FORMAT") || is_json("AWS_LAMBDA_LOG_FORMAT");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}
