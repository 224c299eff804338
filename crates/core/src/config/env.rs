//! Environment variables that override the file.

use std::time::Duration;

use super::{Config, MAX_CONCURRENCY, MAX_VISIBILITY_TIMEOUT, Problem, parse_duration};

/// Environment variables that override the file (applied by [`load`](super::load)).
pub const ENV_QUEUE_URL: &str = "LIFEHOOK_QUEUE_URL";
pub const ENV_CONCURRENCY: &str = "LIFEHOOK_CONCURRENCY";
pub const ENV_VISIBILITY_TIMEOUT: &str = "LIFEHOOK_VISIBILITY_TIMEOUT";
pub const ENV_IMDS: &str = "LIFEHOOK_IMDS";

pub(super) fn apply_env(
    cfg: &mut Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    let mut bad = |var: &str, message: String| {
        problems.push(Problem {
            file: format!("environment variable {var}"),
            line: None,
            col: None,
            message,
        })
    };
    if let Some(v) = env(ENV_QUEUE_URL).filter(|v| !v.is_empty()) {
        match reqwest::Url::parse(&v) {
            Ok(_) => cfg.source.queue_url = Some(v),
            Err(e) => bad(ENV_QUEUE_URL, format!("`{v}` is not a URL: {e}")),
        }
    }
    if let Some(v) = env(ENV_CONCURRENCY).filter(|v| !v.is_empty()) {
        match v.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => cfg.source.concurrency = n,
            _ => bad(
                ENV_CONCURRENCY,
                format!("`{v}` is not a number between 1 and {MAX_CONCURRENCY}"),
            ),
        }
    }
    if let Some(v) = env(ENV_VISIBILITY_TIMEOUT).filter(|v| !v.is_empty()) {
        match parse_duration(&v) {
            Ok(d) if d >= Duration::from_secs(1) && d <= MAX_VISIBILITY_TIMEOUT => {
                cfg.source.visibility_timeout = d
            }
            Ok(_) => bad(
                ENV_VISIBILITY_TIMEOUT,
                "must be between 1s and 12h (the SQS maximum)".into(),
            ),
            Err(e) => bad(ENV_VISIBILITY_TIMEOUT, e),
        }
    }
    if let Some(v) = env(ENV_IMDS).filter(|v| !v.is_empty()) {
        match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => cfg.source.imds = true,
            "0" | "false" | "no" => cfg.source.imds = false,
            _ => bad(ENV_IMDS, format!("`{v}` is not true or false")),
        }
    }
    if cfg.source.imds && cfg.source.queue_url.is_some() {
        bad(
            ENV_IMDS,
            "`imds` and `queue_url` exclude each other: choose the queue or IMDS".into(),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
