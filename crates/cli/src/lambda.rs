//! `lifehook lambda [--config FILE]`: the pipelines as an AWS Lambda function (the binary is
//! the function's `bootstrap` on the `provided.al2023` runtime; see docs/deploy-lambda.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lifehook_aws::lambda::{
    DEFAULT_RETRY_VISIBILITY, DEFAULT_SAFETY_MARGIN, LambdaHandler, LambdaSettings,
    check_runtime_env,
};

use crate::controller::handler_clock;
use crate::exit::{Code, Failure, Outcome};

/// The configuration's file name next to the bootstrap.
pub(crate) const DEFAULT_CONFIG_NAME: &str = "lifehook.toml";

#[derive(Debug, clap::Args)]
pub(crate) struct LambdaArgs {
    /// The configuration file (TOML). Default: `lifehook.toml` in `LAMBDA_TASK_ROOT` (where
    /// Lambda unpacks the zip), else next to this executable.
    #[arg(long, short, env = "LIFEHOOK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Milliseconds before the function's deadline at which unfinished steps are stopped
    /// and the action handed back (after a heartbeat).
    #[arg(long, env = "LIFEHOOK_LAMBDA_SAFETY_MARGIN_MS", default_value_t = DEFAULT_SAFETY_MARGIN.as_millis() as u64)]
    pub safety_margin_ms: u64,
    /// Seconds of visibility given to a handed-back SQS record so that it comes back soon,
    /// or `off` to leave the queue's visibility timeout.
    #[arg(long, env = "LIFEHOOK_LAMBDA_RETRY_VISIBILITY", default_value_t = RetryVisibility(Some(DEFAULT_RETRY_VISIBILITY.as_secs())))]
    pub retry_visibility: RetryVisibility,
}

/// `off` or seconds (at most 43200, the SQS limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryVisibility(pub Option<u64>);

impl std::fmt::Display for RetryVisibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(s) => write!(f, "{s}"),
            None => f.write_str("off"),
        }
    }
}

impl std::str::FromStr for RetryVisibility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(RetryVisibility(None));
        }
        match s.parse::<u64>() {
            Ok(n) if n <= 43_200 => Ok(RetryVisibility(Some(n))),
            _ => Err(format!(
                "{s:?} is neither `off` nor a number of seconds between 0 and 43200"
            )),
        }
    }
}

/// Lambda starts `bootstrap` without arguments: under that name, the binary is
/// `lifehook lambda` (so the zip needs no wrapper script).
pub(crate) fn bootstrap_args(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let as_bootstrap = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|n| n == "bootstrap");
    if as_bootstrap && args.len() == 1 {
        args.push("lambda".into());
    }
    args
}

/// Where the configuration is when `--config` is not given.
fn default_config_path() -> PathBuf {
    let dir = std::env::var_os("LAMBDA_TASK_ROOT")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
        })
        .unwrap_or_else(|| PathBuf::from("."));
    dir.join(DEFAULT_CONFIG_NAME)
}

/// Reports a start-up failure to the Runtime API (`/runtime/init/error`), so that Lambda
/// shows it for the invocation instead of a bare exit. Best effort.
async fn report_init_error(error_type: &str, message: &str) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let url = format!("http://{api}/2018-06-01/runtime/init/error");
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
    {
        Ok(c) => c,
        Err(_) => return,
    };
    let _ = client
        .post(url)
        .header("Lambda-Runtime-Function-Error-Type", error_type)
        .json(&body)
        .send()
        .await;
}

/// A start-up failure: reported to the Runtime API, then a configuration error (exit 2).
async fn fail(error_type: &str, lines: Vec<String>) -> Failure {
    report_init_error(error_type, &lines.join("\n")).await;
    Failure {
        code: Code::Usage,
        lines,
    }
}

pub(crate) async fn run(args: LambdaArgs) -> Outcome {
    let path = args.config.unwrap_or_else(default_config_path);
    let config = match lifehook_core::config::load(&path) {
        Ok(c) => c,
        Err(problems) => {
            let mut lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            lines.push(format!(
                "error: {} problem(s) in {}",
                problems.len(),
                path.display()
            ));
            return Err(fail("Runtime.ConfigError", lines).await);
        }
    };
    if let Err(e) = check_runtime_env(|k| std::env::var(k).ok()) {
        return Err(fail("Runtime.EnvError", vec![format!("error: {e}")]).await);
    }
    if config.source.queue_url.is_some() {
        tracing::info!(
            "[source] queue_url is not read in Lambda mode: an event source mapping delivers the queue's records"
        );
    }
    let clients = lifehook_aws::Clients::load()
        .await
        .map_err(Failure::error)?;
    let clock = handler_clock().await?;
    let settings = LambdaSettings {
        safety_margin: Duration::from_millis(args.safety_margin_ms),
        retry_visibility: args.retry_visibility.0.map(Duration::from_secs),
    };
    tracing::info!(
        config = %path.display(),
        pipelines = config.pipelines.len(),
        safety_margin_ms = args.safety_margin_ms,
        retry_visibility = %args.retry_visibility,
        "lambda runtime starting"
    );
    let handler = Arc::new(LambdaHandler::new(config, &clients, clock, settings));
    lifehook_aws::lambda::run(handler)
        .await
        .map_err(Failure::error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_is_lambda() {
        let v = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            bootstrap_args(v(&["/var/task/bootstrap"])),
            v(&["/var/task/bootstrap", "lambda"])
        );
        assert_eq!(
            bootstrap_args(v(&["/var/task/bootstrap", "check", "f"])),
            v(&["/var/task/bootstrap", "check", "f"])
        );
        assert_eq!(bootstrap_args(v(&["lifehook"])), v(&["lifehook"]));
    }

    #[test]
    fn retry_visibility_parses() {
        assert_eq!("off".parse(), Ok(RetryVisibility(None)));
        assert_eq!(" 0 ".parse(), Ok(RetryVisibility(Some(0))));
        assert_eq!("30".parse(), Ok(RetryVisibility(Some(30))));
        assert!("43201".parse::<RetryVisibility>().is_err());
        assert!("soon".parse::<RetryVisibility>().is_err());
    }
}
