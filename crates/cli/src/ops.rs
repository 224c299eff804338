//! Operator commands: `status`, `complete`, `heartbeat`. Thin shells over `lifehook-aws`,
//! using only AWS APIs (so they work against AWS and the sandbox alike).
//!
//! Exit codes: 0 success; 1 the call failed, or the lifecycle action is already resolved
//! (completed, timed out, or never existed: Auto Scaling cannot tell these apart, and a
//! mistyped group, hook or instance looks the same); 2 usage or configuration error.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use lifehook_aws::clients::Overrides;
use lifehook_aws::lifecycle::{ActionKey, ActionTarget, LifecycleApi, LifecycleError, RetryPolicy};
use lifehook_aws::{Clients, WaitingInstance};
use lifehook_model::LifecycleResult;

use crate::exit::{Code, Failure, Outcome};
use crate::out::{out, outln};

/// Operator commands retry a throttled call once more than the SDK does, briefly.
const OPERATOR_RETRY: RetryPolicy = RetryPolicy {
    extra_attempts: 1,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(2),
};

/// Where the AWS calls go. Each flag takes the place of the standard AWS configuration
/// (the one the AWS CLI reads), which is used for everything not given here.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AwsArgs {
    /// The AWS region [default: AWS_REGION, AWS_DEFAULT_REGION, or the profile's region]
    #[arg(long)]
    pub region: Option<String>,
    /// Send every AWS call to this endpoint, e.g. a sandbox: http://127.0.0.1:4566
    /// [default: AWS_ENDPOINT_URL, or AWS's own]
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The profile of ~/.aws/config and ~/.aws/credentials to use [default: AWS_PROFILE,
    /// else `default`]; credentials also come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
    /// or instance metadata
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Only this group (repeatable). Default: every group in the region.
    #[arg(long = "group", short = 'g', value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// Which lifecycle action: a group, a hook, and an instance id or a token (or both).
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("action").required(true).multiple(true).args(["instance_id", "token"]))]
pub(crate) struct ActionArgs {
    /// The Auto Scaling group.
    #[arg(long, short = 'g')]
    pub group: String,
    /// The lifecycle hook.
    #[arg(long)]
    pub hook: String,
    /// The instance waiting on the hook.
    #[arg(long)]
    pub instance_id: Option<String>,
    /// The lifecycle action token (from the notification).
    #[arg(long)]
    pub token: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 completed; 1 failed, or the action is already resolved (completed, timed out, or never existed: check the group, hook and instance); 2 usage or configuration error."
)]
pub(crate) struct CompleteArgs {
    #[command(flatten)]
    pub action: ActionArgs,
    /// CONTINUE lets the transition go on; ABANDON fails a launch (the instance is
    /// terminated) or ends the terminate wait early.
    #[arg(long, default_value = "CONTINUE", value_parser = parse_result)]
    pub result: LifecycleResult,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 recorded; 1 failed, or the action is already resolved (completed, timed out, or never existed); 2 usage or configuration error."
)]
pub(crate) struct HeartbeatArgs {
    #[command(flatten)]
    pub action: ActionArgs,
}

fn parse_result(s: &str) -> Result<LifecycleResult, String> {
    s.to_ascii_uppercase().parse()
}

impl ActionArgs {
    fn target(&self) -> ActionTarget {
        let key = match (&self.token, &self.instance_id) {
            (Some(t), Some(i)) => ActionKey::Both {
                token: t.clone(),
                instance_id: i.clone(),
            },
            (Some(t), None) => ActionKey::Token(t.clone()),
            (None, Some(i)) => ActionKey::InstanceId(i.clone()),
            // clap requires one of the two.
            (None, None) => ActionKey::InstanceId(String::new()),
        };
        ActionTarget::new(&self.group, &self.hook, key)
    }
}

/// Loads the AWS configuration, or explains what is missing (a usage error).
async fn api(aws: &AwsArgs) -> Result<LifecycleApi, Failure> {
    let overrides = Overrides {
        region: aws.region.clone(),
        endpoint_url: aws.endpoint_url.clone(),
        profile: aws.profile.clone(),
    };
    match Clients::load_with(&overrides).await {
        Ok(c) => Ok(LifecycleApi::new(c.autoscaling().clone()).with_retry(OPERATOR_RETRY)),
        Err(e) => Err(Failure::usage(e)),
    }
}

/// A failed action call (exit 1). Auto Scaling answers a wrong group or hook name as it
/// answers a resolved action, so before saying "already resolved" the group and its hooks
/// are looked up: a name that does not exist is named, with the hooks that do.
async fn action_failure(api: &LifecycleApi, e: &LifecycleError) -> Failure {
    let LifecycleError::AlreadyResolved {
        target, message, ..
    } = e
    else {
        return Failure::runtime(e);
    };
    let wrong_name = match api.hooks(&target.group).await {
        Err(LifecycleError::GroupNotFound { group }) => Some(format!(
            "there is no Auto Scaling group {group} (in this region); check --group and the region"
        )),
        Ok(hooks) if !hooks.iter().any(|h| h.name == target.hook) => {
            let names: Vec<&str> = hooks.iter().map(|h| h.name.as_str()).collect();
            Some(if names.is_empty() {
                format!(
                    "group {} has no lifecycle hooks, so none named {}",
                    target.group, target.hook
                )
            } else {
                format!(
                    "group {} has no hook {}; its hooks: {}",
                    target.group,
                    target.hook,
                    names.join(", ")
                )
            })
        }
        // The names exist (or cannot be checked): the action itself is over.
        _ => None,
    };
    let lines = match wrong_name {
        Some(why) => vec![format!("error: {why}")],
        None => vec![
            format!("lifecycle action already resolved ({target}): {message}"),
            "  It was completed, timed out, or never existed; check the instance or token."
                .to_owned(),
        ],
    };
    Failure {
        code: Code::Runtime,
        lines,
    }
}

pub(crate) async fn complete(args: CompleteArgs) -> Outcome {
    let api = api(&args.action.aws).await?;
    let target = args.action.target();
    match api.complete(&target, args.result).await {
        Ok(()) => {
            outln!("completed lifecycle action ({target}) with {}", args.result);
            Ok(())
        }
        Err(e) => Err(action_failure(&api, &e).await),
    }
}

pub(crate) async fn heartbeat(args: HeartbeatArgs) -> Outcome {
    let api = api(&args.action.aws).await?;
    let target = args.action.target();
    match api.heartbeat(&target).await {
        Ok(()) => {
            outln!("recorded heartbeat for lifecycle action ({target})");
            Ok(())
        }
        Err(e) => Err(action_failure(&api, &e).await),
    }
}

pub(crate) async fn status(args: StatusArgs) -> Outcome {
    let api = api(&args.aws).await?;
    if !args.groups.is_empty() {
        // A group that does not exist has no waiting instances either: say so rather than
        // "no instances are waiting".
        let missing = api
            .missing_groups(&args.groups)
            .await
            .map_err(Failure::runtime)?;
        if !missing.is_empty() {
            return Err(Failure::runtime(format!(
                "no Auto Scaling group named {} (in this region)",
                missing.join(", ")
            )));
        }
    }
    let waiting = api
        .waiting_instances(&args.groups)
        .await
        .map_err(Failure::runtime)?;
    let now = SystemTime::now();
    if args.json {
        outln!("{}", status_json(&waiting, now));
    } else {
        out!("{}", status_table(&waiting, now));
    }
    Ok(())
}

fn status_json(waiting: &[WaitingInstance], now: SystemTime) -> serde_json::Value {
    let instances: Vec<serde_json::Value> = waiting
        .iter()
        .map(|w| {
            serde_json::json!({
                "group": w.group,
                "instance_id": w.instance_id,
                "state": w.state.as_str(),
                "hooks": w.hooks.iter().map(|h| serde_json::json!({
                    "name": h.name,
                    "transition": h.transition.map(|t| t.as_str()),
                    "heartbeat_timeout_secs": h.heartbeat_timeout.as_secs(),
                    "global_timeout_secs": h.global_timeout.as_secs(),
                    "default_result": h.default_result.as_str(),
                })).collect::<Vec<_>>(),
                "waiting_secs": w.waited(now).map(|d| d.as_secs()),
                "time_left_secs": w.time_left(now).map(|d| d.as_secs()),
            })
        })
        .collect();
    serde_json::json!({ "instances": instances })
}

fn status_table(waiting: &[WaitingInstance], now: SystemTime) -> String {
    if waiting.is_empty() {
        return "no instances are waiting on lifecycle hooks\n".to_owned();
    }
    let header = [
        "GROUP",
        "INSTANCE",
        "STATE",
        "HOOKS",
        "WAITING",
        "TIME LEFT",
    ];
    let rows: Vec<[String; 6]> = waiting
        .iter()
        .map(|w| {
            let hooks = if w.hooks.is_empty() {
                "-".to_owned()
            } else {
                w.hooks
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            [
                w.group.clone(),
                w.instance_id.clone(),
                w.state.as_str().to_owned(),
                hooks,
                w.waited(now).map_or("-".into(), human),
                w.time_left(now).map_or("-".into(), human),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, &header);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    out
}

/// `1h02m`, `5m07s`, `42s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifehook_aws::HookInfo;
    use lifehook_model::{LifecycleState, LifecycleTransition};

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(307)), "5m07s");
        assert_eq!(human(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn table_has_a_row_per_instance() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let w = WaitingInstance {
            group: "web".into(),
            instance_id: "i-1".into(),
            state: LifecycleState::PendingWait,
            hooks: vec![HookInfo {
                group: "web".into(),
                name: "launch".into(),
                transition: Some(LifecycleTransition::Launching),
                heartbeat_timeout: Duration::from_secs(60),
                global_timeout: Duration::from_secs(6000),
                default_result: LifecycleResult::Abandon,
            }],
            since: Some(now - Duration::from_secs(120)),
        };
        let t = status_table(std::slice::from_ref(&w), now);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        assert!(lines[0].starts_with("GROUP"));
        assert!(lines[1].contains("i-1") && lines[1].contains("Pending:Wait"));
        assert!(
            lines[1].contains("2m00s") && lines[1].ends_with("1h38m"),
            "{t}"
        );
        let j = status_json(&[w], now);
        assert_eq!(j["instances"][0]["time_left_secs"], 5880);
        assert_eq!(
            status_table(&[], now),
            "no instances are waiting on lifecycle hooks\n"
        );
    }
}
