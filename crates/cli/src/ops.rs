//! Operator commands: `status`, `complete`, `heartbeat`. Thin shells over `lifehook-aws`,
//! using only AWS APIs (so they work against AWS and the sandbox alike).
//!
//! Exit codes: 0 success; 1 the call failed, or the lifecycle action is already resolved
//! (completed, timed out, or never existed: Auto Scaling cannot tell these apart, and a
//! mistyped group, hook or instance looks the same); 2 usage or configuration error.

use std::time::Duration;

use lifehook_aws::Clients;
use lifehook_aws::clients::Overrides;
use lifehook_aws::lifecycle::{ActionKey, ActionTarget, LifecycleApi, LifecycleError, RetryPolicy};
use lifehook_model::LifecycleResult;

use crate::exit::{Code, Failure, Outcome};
use crate::out::outln;

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
pub(crate) async fn clients(aws: &AwsArgs) -> Result<Clients, Failure> {
    let overrides = Overrides {
        region: aws.region.clone(),
        endpoint_url: aws.endpoint_url.clone(),
        profile: aws.profile.clone(),
    };
    Clients::load_with(&overrides).await.map_err(Failure::usage)
}

/// The lifecycle API the operator commands use, with their retry policy.
pub(crate) fn lifecycle_api(clients: &Clients) -> LifecycleApi {
    LifecycleApi::new(clients.autoscaling().clone()).with_retry(OPERATOR_RETRY)
}

async fn api(aws: &AwsArgs) -> Result<LifecycleApi, Failure> {
    Ok(lifecycle_api(&clients(aws).await?))
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
