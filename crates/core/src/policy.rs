//! Least-privilege IAM policies for a configuration (`lifehook policy`).
//!
//! [`policy`] turns a parsed [`Config`] into one identity-based policy document per
//! [`Mode`]: every action the handler of that mode calls for the configured source, hooks
//! and steps, and nothing else, with resources scoped to the configured groups, queues,
//! topics, buckets, stacks and clusters. The list of calls mirrors `lifehook-aws` (the
//! controller, the agent, the queue consumer, the lifecycle API and each AWS step); when
//! a call is added there, add its action here. Step kinds map to their actions in one
//! place: `step_permissions`.
//!
//! Partition, region and account (see `docs/iam.md`):
//! - a queue or topic named in the configuration keeps the partition, region and account
//!   of its URL or ARN (it may live in another account);
//! - every other resource (groups, stacks, instances, the agent's inbox queues) is in the
//!   caller's own account and region: IAM resolves `${aws:PrincipalAccount}` and
//!   `${aws:RequestedRegion}` (global condition keys, usable as policy variables), unless
//!   `--account`/`--region` give literal values;
//! - IAM has no partition variable: the partition is `--partition`, else the one of an ARN
//!   or queue URL of the configuration, else `aws`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::config::{Config, IMAGE_TAG_GROUP, IMAGE_TAG_INSTANCE, IMAGE_TAG_TOKEN, StepKind};
use crate::template::Template;

/// Which handler the policy is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// `lifehook agent`: the instance role of each instance.
    Agent,
    /// `lifehook controller`: the fleet handler reading an SQS queue.
    Controller,
    /// The Lambda handler: its execution role.
    Lambda,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Agent, Mode::Controller, Mode::Lambda];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Agent => "agent",
            Mode::Controller => "controller",
            Mode::Lambda => "lambda",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Mode::Agent),
            "controller" => Ok(Mode::Controller),
            "lambda" => Ok(Mode::Lambda),
            other => Err(format!(
                "unknown mode {other:?}: expected agent, controller or lambda"
            )),
        }
    }
}

/// Values that the configuration cannot give.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyOptions {
    /// `aws`, `aws-cn`, `aws-us-gov`; default: from the configuration's ARNs, else `aws`.
    pub partition: Option<String>,
    /// Default: `${aws:RequestedRegion}`.
    pub region: Option<String>,
    /// Default: `${aws:PrincipalAccount}`.
    pub account: Option<String>,
    /// The dead-letter queue (name or ARN) of the source queue: messages set aside are sent
    /// there (`sqs:GetQueueUrl`, `sqs:SendMessage`). Without it those two are left out, and
    /// a message that cannot be handled stays in the queue until SQS's own redrive moves
    /// it.
    pub dead_letter_queue: Option<String>,
    /// The Lambda function's name, for its log group; default `*`.
    pub function_name: Option<String>,
}

/// An IAM policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: &'static str,
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

/// Condition operator → key → values.
pub type Condition = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// One `Allow` statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    #[serde(rename = "Sid")]
    pub sid: String,
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    #[serde(rename = "Action")]
    pub actions: Vec<String>,
    #[serde(rename = "Resource")]
    pub resources: Vec<String>,
    #[serde(rename = "Condition", skip_serializing_if = "BTreeMap::is_empty")]
    pub condition: Condition,
}

impl PolicyDocument {
    /// Every action the document allows (for tests and summaries).
    pub fn actions(&self) -> BTreeSet<&str> {
        self.statements
            .iter()
            .flat_map(|s| s.actions.iter().map(String::as_str))
            .collect()
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// One permission before statements are merged: `actions` on `resources` when
/// `condition` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub sid: &'static str,
    pub actions: Vec<&'static str>,
    pub resources: Vec<String>,
    pub condition: Condition,
}

impl Grant {
    fn new(sid: &'static str, actions: &[&'static str], resources: Vec<String>) -> Grant {
        Grant {
            sid,
            actions: actions.to_vec(),
            resources,
            condition: Condition::new(),
        }
    }

    fn any(sid: &'static str, actions: &[&'static str]) -> Grant {
        Grant::new(sid, actions, vec!["*".into()])
    }

    fn when(mut self, op: &str, key: &str, values: Vec<String>) -> Grant {
        self.condition
            .entry(op.to_owned())
            .or_default()
            .insert(key.to_owned(), values);
        self
    }
}

/// Partition, region and account of the caller's own resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub partition: String,
    pub region: String,
    pub account: String,
    /// Group name patterns the handler acts on; `None`: any group.
    pub groups: Option<Vec<String>>,
}

pub(crate) const REGION_VARIABLE: &str = "${aws:RequestedRegion}";
pub(crate) const ACCOUNT_VARIABLE: &str = "${aws:PrincipalAccount}";
/// The tag Auto Scaling puts on its instances.
pub const GROUP_TAG: &str = "aws:autoscaling:groupName";

impl Scope {
    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition, self.region, self.account
        )
    }

    /// ARNs of the groups (`autoScalingGroupName/*` for any group).
    pub(crate) fn group_arns(&self) -> Vec<String> {
        let names = self.groups.clone().unwrap_or_else(|| vec!["*".into()]);
        names
            .iter()
            .map(|g| {
                self.arn(
                    "autoscaling",
                    &format!("autoScalingGroup:*:autoScalingGroupName/{g}"),
                )
            })
            .collect()
    }

    /// Instance ARNs, with a condition on the group tag when the groups are known.
    fn instances(&self, sid: &'static str, actions: &[&'static str], tag_key: &str) -> Grant {
        let g = Grant::new(sid, actions, vec![self.arn("ec2", "instance/*")]);
        match &self.groups {
            Some(groups) => g.when("StringLike", tag_key, groups.clone()),
            None => g,
        }
    }
}

/// What can go wrong building a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the {0} mode needs a source: set `queue_url` in [source]")]
    NoQueue(Mode),
    #[error("`{what}` = {value:?} is not {expected}")]
    Bad {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// The policy document of `mode` for `cfg`.
pub fn policy(
    cfg: &Config,
    mode: Mode,
    opts: &PolicyOptions,
) -> Result<PolicyDocument, PolicyError> {
    let scope = scope(cfg, mode, opts)?;
    let mut grants: Vec<Grant> = Vec::new();
    let src = &cfg.source;
    let groups = scope.group_arns();

    // The lifecycle calls every mode makes: complete, heartbeat, the hook's timeouts.
    grants.push(Grant::new(
        "AutoScalingGroups",
        &[
            "autoscaling:CompleteLifecycleAction",
            "autoscaling:RecordLifecycleActionHeartbeat",
        ],
        groups.clone(),
    ));
    let mut describe = vec!["autoscaling:DescribeLifecycleHooks"];

    match mode {
        Mode::Controller | Mode::Lambda => {
            if cfg.needs_tags() {
                // Routing and templates on tags read the group's tags.
                describe.push("autoscaling:DescribeAutoScalingGroups");
            }
            if let Some(url) = &src.queue_url {
                let q = queue_arn(url, &scope)?;
                // ReceiveMessage; DeleteMessageBatch is authorized as DeleteMessage and
                // ChangeMessageVisibilityBatch as ChangeMessageVisibility; GetQueueAttributes
                // reads the RedrivePolicy. A Lambda's SQS event source mapping polls with
                // the function's role (Receive, Delete, GetQueueAttributes) and the handler
                // extends visibility: the same four.
                let actions: &[&'static str] = &[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ];
                grants.push(Grant::new("ReadLifecycleQueue", actions, vec![q.clone()]));
                if let Some(dlq) = &opts.dead_letter_queue {
                    grants.push(Grant::new(
                        "SetAsideToDeadLetterQueue",
                        &["sqs:GetQueueUrl", "sqs:SendMessage"],
                        vec![dlq_arn(dlq, &q)?],
                    ));
                }
            } else if mode == Mode::Controller {
                return Err(PolicyError::NoQueue(mode));
            }
            if mode == Mode::Lambda {
                let function = opts.function_name.as_deref().unwrap_or("*");
                grants.push(Grant::new(
                    "LambdaLogGroup",
                    &["logs:CreateLogGroup"],
                    vec![scope.arn("logs", &format!("log-group:/aws/lambda/{function}"))],
                ));
                grants.push(Grant::new(
                    "LambdaLogs",
                    &["logs:CreateLogStream", "logs:PutLogEvents"],
                    vec![scope.arn("logs", &format!("log-group:/aws/lambda/{function}:*"))],
                ));
            }
        }
        Mode::Agent => {
            // Its group (when the metadata tag is off) and its own lifecycle state.
            describe.push("autoscaling:DescribeAutoScalingInstances");
            if !cfg.agent.hooks.is_empty() {
                grants.push(Grant::new(
                    "AutoScalingGroups",
                    &["autoscaling:PutLifecycleHook"],
                    groups.clone(),
                ));
                let roles: BTreeSet<String> = cfg
                    .agent
                    .hooks
                    .iter()
                    .filter_map(|h| h.role_arn.clone())
                    .collect();
                if !roles.is_empty() {
                    // PutLifecycleHook with a RoleARN hands the role to Auto Scaling.
                    grants.push(
                        Grant::new(
                            "PassHookRole",
                            &["iam:PassRole"],
                            roles.into_iter().collect(),
                        )
                        .when(
                            "StringEquals",
                            "iam:PassedToService",
                            vec!["autoscaling.amazonaws.com".into()],
                        ),
                    );
                }
            }
            if let Some(topic) = &src.topic_arn {
                check_arn(topic, "sns", "topic_arn")?;
                // The inbox: lifehook-agent-<instance id>, created, read and removed by the
                // agent (agent/inbox.rs).
                grants.push(Grant::new(
                    "AgentInbox",
                    &[
                        "sqs:CreateQueue",
                        "sqs:GetQueueAttributes",
                        "sqs:SetQueueAttributes",
                        "sqs:DeleteQueue",
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                    ],
                    vec![scope.arn("sqs", "lifehook-agent-*")],
                ));
                grants.push(Grant::new(
                    "SubscribeInbox",
                    &["sns:Subscribe"],
                    vec![topic.clone()],
                ));
                // IAM has no resource type for Unsubscribe.
                grants.push(Grant::any("UnsubscribeInbox", &["sns:Unsubscribe"]));
            } else if let Some(url) = &src.queue_url {
                let q = queue_arn(url, &scope)?;
                grants.push(Grant::new(
                    "ReadLifecycleQueue",
                    &[
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueAttributes",
                    ],
                    vec![q.clone()],
                ));
                if let Some(dlq) = &opts.dead_letter_queue {
                    grants.push(Grant::new(
                        "SetAsideToDeadLetterQueue",
                        &["sqs:GetQueueUrl", "sqs:SendMessage"],
                        vec![dlq_arn(dlq, &q)?],
                    ));
                }
            }
        }
    }
    // Describe* calls have no resource type: IAM requires `*`.
    grants.push(Grant::any("DescribeAutoScaling", &describe));

    for p in &cfg.pipelines {
        for s in &p.steps {
            grants.extend(step_permissions(&s.kind, &scope));
        }
    }
    Ok(merge(grants))
}

/// The permissions of one step kind: the single place that maps step kinds to IAM.
///
/// Step kinds that call no AWS API need nothing. A new step kind that calls AWS gets one
/// arm here.
pub(crate) fn step_permissions(kind: &StepKind, scope: &Scope) -> Vec<Grant> {
    match kind {
        StepKind::Exec(_)
        | StepKind::Http(_)
        | StepKind::Probe(_)
        | StepKind::Notify(_)
        | StepKind::File(_)
        | StepKind::Wait(_) => Vec::new(),
        StepKind::S3Fetch(f) => vec![Grant::new(
            "S3Fetch",
            &["s3:GetObject"],
            vec![s3_object_arn(scope, &f.bucket, &f.key)],
        )],
        StepKind::S3Upload(u) => vec![Grant::new(
            "S3Upload",
            &["s3:PutObject"],
            vec![s3_object_arn(scope, &u.bucket, &u.key)],
        )],
        StepKind::SsmCommand(_) => vec![
            Grant::new(
                "SsmRunShellScript",
                &["ssm:SendCommand"],
                vec![format!(
                    "arn:{}:ssm:{}::document/AWS-RunShellScript",
                    scope.partition, scope.region
                )],
            ),
            scope.instances(
                "SsmCommandOnGroupInstances",
                &["ssm:SendCommand"],
                &format!("ssm:resourceTag/{GROUP_TAG}"),
            ),
            Grant::any(
                "SsmCommandStatus",
                &["ssm:GetCommandInvocation", "ssm:ListCommands"],
            ),
        ],
        StepKind::EcsDrain(d) => {
            let cluster = d.cluster.as_ref().map(|c| {
                let s = static_prefix(c);
                let name = s.rsplit_once("cluster/").map_or(s.as_str(), |(_, n)| n);
                if c.is_literal() {
                    name.to_owned()
                } else {
                    format!("{name}*")
                }
            });
            let mut out = Vec::new();
            if d.cluster.is_none() {
                // The cluster is discovered.
                out.push(Grant::any("EcsFindCluster", &["ecs:ListClusters"]));
            }
            let name = cluster.unwrap_or_else(|| "*".into());
            let cluster_arn = scope.arn("ecs", &format!("cluster/{name}"));
            out.push(Grant::new(
                "EcsFindContainerInstance",
                &["ecs:ListContainerInstances"],
                vec![cluster_arn.clone()],
            ));
            let mut actions = vec![
                "ecs:UpdateContainerInstancesState",
                "ecs:ListTasks",
                "ecs:DescribeTasks",
            ];
            if d.stop_tasks {
                actions.push("ecs:StopTask");
            }
            out.push(
                Grant::new(
                    "EcsDrain",
                    &actions,
                    vec![
                        scope.arn("ecs", &format!("container-instance/{name}/*")),
                        scope.arn("ecs", &format!("task/{name}/*")),
                    ],
                )
                .when("ArnLike", "ecs:cluster", vec![cluster_arn]),
            );
            out.push(Grant::new(
                "EcsServiceStrategies",
                &["ecs:DescribeServices"],
                vec![scope.arn("ecs", &format!("service/{name}/*"))],
            ));
            out
        }
        StepKind::Signal(g) => {
            let stack = if g.stack.source().starts_with("arn:") && g.stack.is_literal() {
                g.stack.source().to_owned()
            } else {
                let s = static_prefix(&g.stack);
                if g.stack.is_literal() {
                    scope.arn("cloudformation", &format!("stack/{s}/*"))
                } else {
                    scope.arn("cloudformation", &format!("stack/{s}*"))
                }
            };
            vec![Grant::new(
                "SignalStack",
                &["cloudformation:SignalResource"],
                vec![stack],
            )]
        }
        // Only the step's own tag keys (`aws:TagKeys`, every key of the request).
        StepKind::Tag(t) => vec![
            scope
                .instances(
                    "TagGroupInstances",
                    &["ec2:CreateTags"],
                    &format!("aws:ResourceTag/{GROUP_TAG}"),
                )
                .when(
                    "ForAllValues:StringEquals",
                    "aws:TagKeys",
                    t.tags.keys().cloned().collect(),
                ),
        ],
        StepKind::Image(i) => {
            // CreateImage authorizes the instance, the new image and its snapshots; the
            // tags are applied at creation (TagSpecification), which IAM checks as
            // ec2:CreateTags with ec2:CreateAction = CreateImage.
            let new = vec![
                format!("arn:{}:ec2:{}::image/*", scope.partition, scope.region),
                format!("arn:{}:ec2:{}::snapshot/*", scope.partition, scope.region),
            ];
            let mut out = vec![
                scope.instances(
                    "ImageOfGroupInstances",
                    &["ec2:CreateImage"],
                    &format!("aws:ResourceTag/{GROUP_TAG}"),
                ),
                Grant::new("NewImagesAndSnapshots", &["ec2:CreateImage"], new.clone()),
                Grant::new("TagNewImages", &["ec2:CreateTags"], new)
                    .when(
                        "StringEquals",
                        "ec2:CreateAction",
                        vec!["CreateImage".into()],
                    )
                    .when(
                        "ForAllValues:StringEquals",
                        "aws:TagKeys",
                        [IMAGE_TAG_INSTANCE, IMAGE_TAG_GROUP, IMAGE_TAG_TOKEN]
                            .into_iter()
                            .map(str::to_owned)
                            .chain(i.tags.keys().cloned())
                            .collect(),
                    ),
                Grant::any("FindImages", &["ec2:DescribeImages"]),
            ];
            if i.only_if.is_some() {
                // Telling an unexpected scale-in from a deployment.
                out.push(Grant::any(
                    "TerminationCause",
                    &[
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeInstanceRefreshes",
                        "autoscaling:DescribeScalingActivities",
                        "ec2:DescribeTags",
                    ],
                ));
            }
            out
        }
        StepKind::TargetGroups(t) => {
            let mut out = vec![Grant::any(
                "TargetHealth",
                &["elasticloadbalancing:DescribeTargetHealth"],
            )];
            let groups = if t.target_group_arns.is_empty() {
                // The group's own target groups, read from Auto Scaling.
                out.push(Grant::any(
                    "GroupTargetGroups",
                    &["autoscaling:DescribeAutoScalingGroups"],
                ));
                vec![scope.arn("elasticloadbalancing", "targetgroup/*")]
            } else {
                t.target_group_arns.clone()
            };
            out.push(Grant::new(
                "RegisterWithTargetGroups",
                &[
                    "elasticloadbalancing:RegisterTargets",
                    "elasticloadbalancing:DeregisterTargets",
                ],
                groups,
            ));
            out
        }
    }
}

/// Merges grants with the same resources and condition (never across: that would allow
/// one grant's actions on the other's resources), in first-seen order, with unique Sids.
fn merge(grants: Vec<Grant>) -> PolicyDocument {
    let mut statements: Vec<Statement> = Vec::new();
    let mut sids: BTreeMap<String, u32> = BTreeMap::new();
    for g in grants {
        let mut resources = g.resources.clone();
        resources.sort();
        resources.dedup();
        if let Some(s) = statements
            .iter_mut()
            .find(|s| s.resources == resources && s.condition == g.condition)
        {
            for a in g.actions {
                if !s.actions.iter().any(|x| x == a) {
                    s.actions.push(a.to_owned());
                }
            }
            continue;
        }
        // Actions without resource-level permissions share one statement on `*`.
        let base = if resources == ["*"] && g.condition.is_empty() {
            "ActionsWithoutResourceTypes"
        } else {
            g.sid
        };
        let n = sids.entry(base.to_owned()).or_default();
        *n += 1;
        let sid = if *n == 1 {
            base.to_owned()
        } else {
            format!("{base}{n}")
        };
        statements.push(Statement {
            sid,
            effect: "Allow",
            actions: g.actions.iter().map(|a| (*a).to_owned()).collect(),
            resources,
            condition: g.condition,
        });
    }
    // A statement whose actions and condition another one has, on other resources: one
    // statement with both resources lists the same access.
    let mut out: Vec<Statement> = Vec::new();
    for mut s in statements {
        s.actions.sort();
        if let Some(o) = out
            .iter_mut()
            .find(|o| o.actions == s.actions && o.condition == s.condition)
        {
            o.resources.extend(s.resources);
            o.resources.sort();
            o.resources.dedup();
        } else {
            out.push(s);
        }
    }
    PolicyDocument {
        version: "2012-10-17",
        statements: out,
    }
}

fn scope(cfg: &Config, mode: Mode, opts: &PolicyOptions) -> Result<Scope, PolicyError> {
    let from_config = || {
        let arns = cfg
            .source
            .topic_arn
            .iter()
            .chain(
                cfg.agent
                    .hooks
                    .iter()
                    .filter_map(|h| h.notification_target_arn.as_ref()),
            )
            .chain(cfg.agent.hooks.iter().filter_map(|h| h.role_arn.as_ref()));
        for a in arns {
            if let Some(p) = a.strip_prefix("arn:").and_then(|r| r.split(':').next())
                && !p.is_empty()
            {
                return Some(p.to_owned());
            }
        }
        cfg.source
            .queue_url
            .as_deref()
            .and_then(|u| parse_queue_url(u).ok())
            .and_then(|q| q.partition)
    };
    let partition = match &opts.partition {
        Some(p) => p.clone(),
        None => from_config().unwrap_or_else(|| "aws".into()),
    };
    for (what, v) in [
        ("--partition", Some(&partition)),
        ("--region", opts.region.as_ref()),
        ("--account", opts.account.as_ref()),
    ] {
        if let Some(v) = v
            && (v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(PolicyError::Bad {
                what,
                value: v.clone(),
                expected: "a name of letters, digits and dashes",
            });
        }
    }
    Ok(Scope {
        partition,
        region: opts
            .region
            .clone()
            .unwrap_or_else(|| REGION_VARIABLE.into()),
        account: opts
            .account
            .clone()
            .unwrap_or_else(|| ACCOUNT_VARIABLE.into()),
        groups: group_patterns(cfg, mode),
    })
}

/// The groups whose actions the handler completes: `[agent] group` for the agent when
/// set, else the group patterns of every pipeline; `None` when a pipeline matches any
/// group.
pub(crate) fn group_patterns(cfg: &Config, mode: Mode) -> Option<Vec<String>> {
    if mode == Mode::Agent
        && let Some(g) = &cfg.agent.group
    {
        return Some(vec![iam_literal(g)]);
    }
    let mut out = BTreeSet::new();
    if cfg.pipelines.is_empty() {
        return None;
    }
    for p in &cfg.pipelines {
        if p.matcher.groups.is_empty() {
            return None;
        }
        out.extend(p.matcher.groups.iter().map(|g| glob_to_iam(g.as_str())));
    }
    Some(out.into_iter().collect())
}

/// A glob as an IAM pattern: `*` and `?` mean the same; a `[...]` class becomes `?`
/// (one character, any); `$` is escaped.
pub(crate) fn glob_to_iam(glob: &str) -> String {
    let mut out = String::new();
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' => {
                // Up to the closing bracket (a `]` right after `[` or `[!` is literal).
                let mut first = true;
                for d in chars.by_ref() {
                    if d == ']' && !first {
                        break;
                    }
                    first = d == '!' && first;
                    if d != '!' {
                        first = false;
                    }
                }
                out.push('?');
            }
            '$' => out.push_str("${$}"),
            c => out.push(c),
        }
    }
    out
}

/// Text as an IAM literal (only `$` needs escaping; `*` and `?` stay wildcards).
fn iam_literal(s: &str) -> String {
    s.replace('$', "${$}")
}

/// The literal text of a template up to its first variable.
fn static_prefix(t: &Template) -> String {
    let s = t.source();
    iam_literal(&s[..s.find("{{").unwrap_or(s.len())])
}

fn s3_object_arn(scope: &Scope, bucket: &Template, key: &Template) -> String {
    let b = static_prefix(bucket);
    if !bucket.is_literal() {
        return format!("arn:{}:s3:::{b}*", scope.partition);
    }
    let k = static_prefix(key);
    if key.is_literal() {
        format!("arn:{}:s3:::{b}/{k}", scope.partition)
    } else {
        format!("arn:{}:s3:::{b}/{k}*", scope.partition)
    }
}

/// What a queue URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrl {
    pub partition: Option<String>,
    pub region: Option<String>,
    pub account: String,
    pub name: String,
}

/// `https://sqs.REGION.amazonaws.com[.cn]/ACCOUNT/NAME` (also the legacy
/// `REGION.queue.amazonaws.com` and any other host, such as a local endpoint, whose path
/// is `/ACCOUNT/NAME`).
pub fn parse_queue_url(url: &str) -> Result<QueueUrl, PolicyError> {
    let bad = || PolicyError::Bad {
        what: "queue_url",
        value: url.to_owned(),
        expected: "an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)",
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let mut segs = parsed
        .path_segments()
        .ok_or_else(bad)?
        .filter(|s| !s.is_empty());
    let account = segs.next().ok_or_else(bad)?.to_owned();
    let name = segs.next().ok_or_else(bad)?.to_owned();
    if segs.next().is_some() || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let (region, partition) = if let Some(rest) = host.strip_prefix("sqs.") {
        let (region, suffix) = rest.split_once('.').unwrap_or((rest, ""));
        (Some(region.to_owned()), partition_of(suffix, region))
    } else if let Some((region, suffix)) = host.split_once(".queue.") {
        (Some(region.to_owned()), partition_of(suffix, region))
    } else {
        (None, None)
    };
    Ok(QueueUrl {
        partition,
        region,
        account,
        name,
    })
}

fn partition_of(suffix: &str, region: &str) -> Option<String> {
    suffix
        .starts_with("amazonaws.com")
        .then(|| region_partition(region).to_owned())
}

/// The partition of a region: `aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`, else `aws`.
pub fn region_partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

fn queue_arn(url: &str, scope: &Scope) -> Result<String, PolicyError> {
    let q = parse_queue_url(url)?;
    Ok(format!(
        "arn:{}:sqs:{}:{}:{}",
        q.partition.as_deref().unwrap_or(&scope.partition),
        q.region.as_deref().unwrap_or(&scope.region),
        q.account,
        iam_literal(&q.name)
    ))
}

/// The dead-letter queue as an ARN: an ARN as is, a name next to the source queue.
fn dlq_arn(dlq: &str, queue_arn: &str) -> Result<String, PolicyError> {
    if dlq.starts_with("arn:") {
        check_arn(dlq, "sqs", "--dead-letter-queue")?;
        return Ok(dlq.to_owned());
    }
    if dlq.is_empty() || dlq.contains([':', '/']) {
        return Err(PolicyError::Bad {
            what: "--dead-letter-queue",
            value: dlq.to_owned(),
            expected: "a queue name or an SQS queue ARN",
        });
    }
    let base = queue_arn.rsplit_once(':').map_or(queue_arn, |(b, _)| b);
    Ok(format!("{base}:{}", iam_literal(dlq)))
}

fn check_arn(arn: &str, service: &str, what: &'static str) -> Result<(), PolicyError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == service && !parts[5].is_empty() {
        Ok(())
    } else {
        Err(PolicyError::Bad {
            what,
            value: arn.to_owned(),
            expected: match service {
                "sns" => "an SNS topic ARN",
                _ => "an SQS queue ARN",
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(text: &str) -> Config {
        Config::from_toml(text, Path::new("t.toml")).expect("valid")
    }

    fn statement<'a>(doc: &'a PolicyDocument, action: &str) -> Vec<&'a Statement> {
        doc.statements
            .iter()
            .filter(|s| s.actions.iter().any(|a| a == action))
            .collect()
    }

    const CONTROLLER: &str = r#"
[source]
queue_url = "https://sqs.eu-west-1.amazonaws.com/111122223333/lifecycle"

[[pipeline]]
name = "web"
match = { groups = ["web-*", "api"] }

[[pipeline.step]]
type = "tag"
tags = { "x" = "{{ date }}" }

[[pipeline.step]]
type = "s3-upload"
bucket = "logs"
key = "{{ group }}/{{ instance_id }}/{{ file_name }}"
files = ["/var/log/*.log"]

[[pipeline.step]]
type = "s3-fetch"
bucket = "ops"
key = "scripts/run.sh"
path = "/tmp/run.sh"
"#;

    #[test]
    fn controller_policy_is_scoped_to_its_queue_groups_and_buckets() {
        let doc = policy(
            &cfg(CONTROLLER),
            Mode::Controller,
            &PolicyOptions::default(),
        )
        .unwrap();
        let complete = statement(&doc, "autoscaling:CompleteLifecycleAction");
        assert_eq!(complete.len(), 1);
        assert_eq!(
            complete[0].resources,
            vec![
                "arn:aws:autoscaling:${aws:RequestedRegion}:${aws:PrincipalAccount}:autoScalingGroup:*:autoScalingGroupName/api",
                "arn:aws:autoscaling:${aws:RequestedRegion}:${aws:PrincipalAccount}:autoScalingGroup:*:autoScalingGroupName/web-*",
            ]
        );
        assert!(
            complete[0]
                .actions
                .contains(&"autoscaling:RecordLifecycleActionHeartbeat".to_owned())
        );
        let recv = statement(&doc, "sqs:ReceiveMessage");
        assert_eq!(
            recv[0].resources,
            vec!["arn:aws:sqs:eu-west-1:111122223333:lifecycle"]
        );
        for a in [
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
        ] {
            assert!(recv[0].actions.contains(&a.to_owned()), "{a}");
        }
        assert_eq!(
            statement(&doc, "s3:PutObject")[0].resources,
            vec!["arn:aws:s3:::logs/*"]
        );
        assert_eq!(
            statement(&doc, "s3:GetObject")[0].resources,
            vec!["arn:aws:s3:::ops/scripts/run.sh"]
        );
        let tag = statement(&doc, "ec2:CreateTags");
        assert_eq!(
            tag[0].condition["StringLike"]["aws:ResourceTag/aws:autoscaling:groupName"],
            vec!["api", "web-*"]
        );
        assert_eq!(
            tag[0].condition["ForAllValues:StringEquals"]["aws:TagKeys"],
            vec!["x"],
            "only the step's own tag keys"
        );
        let describe = statement(&doc, "autoscaling:DescribeLifecycleHooks");
        assert_eq!(describe[0].resources, vec!["*"]);
        // Nothing the controller does not call.
        let actions = doc.actions();
        assert!(!actions.contains("autoscaling:PutLifecycleHook"));
        assert!(!actions.contains("autoscaling:DescribeAutoScalingGroups"));
        assert!(!actions.contains("sqs:SendMessage"));
        assert!(!actions.iter().any(|a| a.starts_with("logs:")));
        // Sids are unique.
        let sids: BTreeSet<&str> = doc.statements.iter().map(|s| s.sid.as_str()).collect();
        assert_eq!(sids.len(), doc.statements.len());
    }

    #[test]
    fn flags_replace_variables_and_a_dead_letter_queue_adds_set_aside() {
        let opts = PolicyOptions {
            partition: Some("aws-cn".into()),
            region: Some("cn-north-1".into()),
            account: Some("123456789012".into()),
            dead_letter_queue: Some("lifecycle-dlq".into()),
            function_name: Some("lifehook".into()),
        };
        let doc = policy(&cfg(CONTROLLER), Mode::Lambda, &opts).unwrap();
        let complete = statement(&doc, "autoscaling:CompleteLifecycleAction");
        assert!(
            complete[0].resources[0].starts_with("arn:aws-cn:autoscaling:cn-north-1:123456789012:")
        );
        // The queue keeps what its URL says.
        assert_eq!(
            statement(&doc, "sqs:SendMessage")[0].resources,
            vec!["arn:aws:sqs:eu-west-1:111122223333:lifecycle-dlq"]
        );
        assert_eq!(
            statement(&doc, "logs:PutLogEvents")[0].resources,
            vec!["arn:aws-cn:logs:cn-north-1:123456789012:log-group:/aws/lambda/lifehook:*"]
        );
        let bad = PolicyOptions {
            region: Some("eu west".into()),
            ..Default::default()
        };
        assert!(policy(&cfg(CONTROLLER), Mode::Controller, &bad).is_err());
    }

    #[test]
    fn agent_policy_covers_its_inbox_hooks_and_steps() {
        let doc = policy(
            &cfg(r#"
[source]
topic_arn = "arn:aws:sns:us-east-1:123456789012:asg-lifecycle"

[[agent.hook]]
name = "ship"
transition = "terminating"
notification_target_arn = "arn:aws:sns:us-east-1:123456789012:asg-lifecycle"
role_arn = "arn:aws:iam::123456789012:role/notify"

[[pipeline]]
name = "p"
match = { transitions = ["terminating"] }

[[pipeline.step]]
type = "signal"
stack = "app-{{ group }}"
resource = "AppGroup"

[[pipeline.step]]
type = "ecs-drain"
cluster = "prod"

[[pipeline.step]]
type = "ssm-command"
commands = ["true"]
"#),
            Mode::Agent,
            &PolicyOptions::default(),
        )
        .unwrap();
        let actions = doc.actions();
        for a in [
            "autoscaling:PutLifecycleHook",
            "autoscaling:DescribeAutoScalingInstances",
            "iam:PassRole",
            "sqs:CreateQueue",
            "sqs:DeleteQueue",
            "sns:Subscribe",
            "sns:Unsubscribe",
            "cloudformation:SignalResource",
            "ecs:UpdateContainerInstancesState",
            "ecs:StopTask",
            "ssm:SendCommand",
        ] {
            assert!(actions.contains(a), "{a} missing");
        }
        assert!(
            !actions.contains("ecs:ListClusters"),
            "the cluster is named"
        );
        // No groups named: any group.
        assert!(
            statement(&doc, "autoscaling:CompleteLifecycleAction")[0].resources[0]
                .ends_with("autoScalingGroupName/*")
        );
        assert_eq!(
            statement(&doc, "sqs:CreateQueue")[0].resources,
            vec!["arn:aws:sqs:${aws:RequestedRegion}:${aws:PrincipalAccount}:lifehook-agent-*"]
        );
        assert!(
            statement(&doc, "cloudformation:SignalResource")[0].resources[0]
                .ends_with(":stack/app-*")
        );
        let pass = statement(&doc, "iam:PassRole");
        assert_eq!(
            pass[0].resources,
            vec!["arn:aws:iam::123456789012:role/notify"]
        );
        assert_eq!(
            pass[0].condition["StringEquals"]["iam:PassedToService"],
            vec!["autoscaling.amazonaws.com"]
        );
        let drain = statement(&doc, "ecs:StopTask");
        assert_eq!(
            drain[0].condition["ArnLike"]["ecs:cluster"],
            vec!["arn:aws:ecs:${aws:RequestedRegion}:${aws:PrincipalAccount}:cluster/prod"]
        );
        // SendCommand: the document without a condition, instances without one either
        // (any group).
        assert_eq!(statement(&doc, "ssm:SendCommand").len(), 1);
    }

    #[test]
    fn local_steps_need_nothing_and_the_controller_needs_a_queue() {
        let c = cfg(r#"
[[pipeline]]
name = "p"

[[pipeline.step]]
type = "exec"
command = ["true"]
"#);
        assert_eq!(
            policy(&c, Mode::Controller, &PolicyOptions::default()),
            Err(PolicyError::NoQueue(Mode::Controller))
        );
        let doc = policy(&c, Mode::Lambda, &PolicyOptions::default()).unwrap();
        assert!(!doc.actions().iter().any(|a| a.starts_with("sqs:")));
    }

    #[test]
    fn globs_and_queue_urls() {
        assert_eq!(glob_to_iam("web-[abc]?-*"), "web-??-*");
        assert_eq!(glob_to_iam("a$b"), "a${$}b");
        let q = parse_queue_url("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q").unwrap();
        assert_eq!(q.partition.as_deref(), Some("aws-cn"));
        assert_eq!(q.region.as_deref(), Some("cn-north-1"));
        let q = parse_queue_url("http://127.0.0.1:4566/000000000000/lifehook").unwrap();
        assert_eq!(
            (q.region, q.account.as_str(), q.name.as_str()),
            (None, "000000000000", "lifehook")
        );
        assert!(parse_queue_url("http://127.0.0.1:4566/lifehook").is_err());
        assert!(parse_queue_url("not a url").is_err());
    }
}
