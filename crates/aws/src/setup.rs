//! `lifehook setup`: create or update, idempotently, the plumbing the handlers of a
//! configuration need — from its `[setup]` section:
//!
//! - the SQS queue of `source.queue_url`, with a dead-letter queue (`<queue>-dlq`, 14 days
//!   of retention) as its `RedrivePolicy`, and an access policy letting EventBridge (the
//!   rule) or SNS (the topic) send to it, scoped with `aws:SourceArn`;
//! - `delivery = "eventbridge"`: a rule `lifehook-<queue>` matching the hooks' lifecycle
//!   actions of the groups (spec §3.4), targeting the queue;
//! - `delivery = "sns"`: the topic (`source.topic_arn`, or `<queue>-lifecycle`) and the
//!   queue's subscription to it (agents with `topic_arn` subscribe themselves);
//! - the lifecycle hooks on every group (spec §2.1), notifying the queue or the topic
//!   (with `setup.role_arn`) or nothing (EventBridge).
//!
//! [`plan`] only reads (Get/Describe/List) and compares; [`apply`] makes the changes of a
//! plan in dependency order (queues, topic, rule, then the hooks, so that the path exists
//! before the first action). A second run on unchanged configuration plans nothing.
//! Groups are never created: a missing group is an error naming it.

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_autoscaling::error::ProvideErrorMetadata;
use lifehook_core::config::{Config, Delivery, HookSpec, Setup};
use lifehook_model::LifecycleTransition;
use serde_json::{Value, json};

use crate::Clients;
use crate::lifecycle::describe_sdk;

/// Retention of the dead-letter queue: 14 days, the SQS maximum, to leave time to look.
const DLQ_RETENTION_SECS: u32 = 1_209_600;
/// The `Sid` of lifehook's statement in the queue's access policy.
const POLICY_SID: &str = "lifehook-delivery";
/// The id of lifehook's target on its EventBridge rule.
const TARGET_ID: &str = "lifehook";

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the configuration has no [setup] section: nothing to provision")]
    NoSetup,
    #[error("{0}")]
    Config(String),
    #[error("{what}: {detail}")]
    Api { what: String, detail: String },
    #[error(
        "Auto Scaling group(s) not found: {}; setup puts hooks on existing groups only",
        .0.join(", ")
    )]
    MissingGroups(Vec<String>),
}

fn api<E, R>(what: impl Into<String>, e: &aws_sdk_autoscaling::error::SdkError<E, R>) -> SetupError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    SetupError::Api {
        what: what.into(),
        detail: describe_sdk(e),
    }
}

/// What one resource needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Create,
    Update,
    Unchanged,
}

/// One resource of the plan.
#[derive(Debug, Clone)]
pub struct Change {
    pub status: Status,
    /// `sqs queue lifehook`, `lifecycle hook drain on web-1`, ...
    pub resource: String,
    /// What changes (empty when unchanged).
    pub detail: String,
    op: Option<Op>,
}

#[derive(Debug, Clone)]
enum Op {
    CreateQueue {
        name: String,
        attributes: BTreeMap<String, String>,
    },
    SetQueueAttributes {
        /// The queue's URL, as the plan found it.
        url: String,
        attributes: BTreeMap<String, String>,
    },
    CreateTopic {
        name: String,
    },
    Subscribe {
        topic_arn: String,
        queue_arn: String,
    },
    PutRule {
        name: String,
        pattern: String,
    },
    PutTarget {
        rule: String,
        queue_arn: String,
    },
    PutHook {
        group: String,
        spec: HookSpec,
    },
}

/// Everything `setup` would do, in the order it does it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub region: String,
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn count(&self, status: Status) -> usize {
        self.changes.iter().filter(|c| c.status == status).count()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.iter().all(|c| c.status == Status::Unchanged)
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mark, word) = match self.status {
            Status::Create => ("+", "create"),
            Status::Update => ("~", "update"),
            Status::Unchanged => ("=", "ok"),
        };
        write!(f, "{mark} {word:<7}{}", self.resource)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Names and ARNs everything is derived from.
#[derive(Debug, Clone)]
struct Names {
    partition: String,
    region: String,
    account: String,
    /// The queue, when the configuration has one.
    queue: Option<String>,
    topic: Option<(String, String)>,
    rule: Option<String>,
}

impl Names {
    fn sqs_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:sqs:{}:{}:{name}",
            self.partition, self.region, self.account
        )
    }

    fn rule_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:events:{}:{}:rule/{name}",
            self.partition, self.region, self.account
        )
    }
}

/// `(account, name)` of a queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`),
/// read by the policy generator's parser; the account must be 12 digits.
pub fn queue_url_parts(url: &str) -> Option<(String, String)> {
    let q = lifehook_core::policy::parse_queue_url(url).ok()?;
    (q.account.len() == 12).then_some((q.account, q.name))
}

fn names(config: &Config, setup: &Setup, region: &str) -> Result<Names, SetupError> {
    let partition = lifehook_core::policy::region_partition(region).to_owned();
    let queue = match &config.source.queue_url {
        Some(url) => Some(queue_url_parts(url).ok_or_else(|| {
            SetupError::Config(format!(
                "source.queue_url {url:?} does not end in /ACCOUNT/NAME (a 12-digit account id and the queue name)"
            ))
        })?),
        None => None,
    };
    // (account, name, region); the configuration checked the ARN has six parts.
    let from_topic = config.source.topic_arn.as_ref().and_then(|arn| {
        let p: Vec<&str> = arn.split(':').collect();
        Some((
            (*p.get(4)?).to_owned(),
            (*p.get(5)?).to_owned(),
            (*p.get(3)?).to_owned(),
        ))
    });
    let account = match (&queue, &from_topic) {
        (Some((a, _)), _) => a.clone(),
        (None, Some((a, _, _))) => a.clone(),
        (None, None) => {
            return Err(SetupError::Config(
                "[setup] needs source.queue_url or source.topic_arn".into(),
            ));
        }
    };
    if let Some((_, _, r)) = &from_topic
        && r != region
    {
        return Err(SetupError::Config(format!(
            "source.topic_arn is in {r}, but the AWS region is {region}: set AWS_REGION to the topic's region"
        )));
    }
    let queue_name = queue.map(|(_, n)| n);
    let topic = match (setup.delivery, &config.source.topic_arn, &queue_name) {
        (Delivery::Sns, Some(arn), _) => {
            let name = arn.rsplit(':').next().unwrap_or_default().to_owned();
            Some((name, arn.clone()))
        }
        (Delivery::Sns, None, Some(q)) => {
            let name = format!("{q}-lifecycle");
            let arn = format!("arn:{partition}:sns:{region}:{account}:{name}");
            Some((name, arn))
        }
        _ => None,
    };
    let rule = match (setup.delivery, &queue_name) {
        (Delivery::EventBridge, Some(q)) => {
            let mut n = format!("lifehook-{q}");
            n.truncate(64);
            Some(n)
        }
        _ => None,
    };
    Ok(Names {
        partition,
        region: region.to_owned(),
        account,
        queue: queue_name,
        topic,
        rule,
    })
}

/// The EventBridge pattern of the hooks' lifecycle actions of the groups (spec §3.4).
fn rule_pattern(setup: &Setup) -> Value {
    let mut types: Vec<&str> = setup
        .hooks
        .iter()
        .map(|h| match h.transition {
            LifecycleTransition::Launching => "EC2 Instance-launch Lifecycle Action",
            LifecycleTransition::Terminating => "EC2 Instance-terminate Lifecycle Action",
        })
        .collect();
    types.sort_unstable();
    types.dedup();
    let mut groups = setup.groups.clone();
    groups.sort();
    json!({
        "source": ["aws.autoscaling"],
        "detail-type": types,
        "detail": {"AutoScalingGroupName": groups},
    })
}

/// The queue's access policy: whatever it has, with lifehook's statement (by `Sid`)
/// replaced or added.
fn queue_policy(existing: Option<&str>, queue_arn: &str, service: &str, source: &str) -> Value {
    let ours = json!({
        "Sid": POLICY_SID,
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": source}},
    });
    let mut doc = existing
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .filter(|v| v["Statement"].is_array())
        .unwrap_or_else(|| json!({"Version": "2012-10-17", "Statement": []}));
    if let Some(list) = doc["Statement"].as_array_mut() {
        list.retain(|s| s["Sid"] != POLICY_SID);
        list.push(ours);
    }
    doc
}

/// Whether two JSON documents (attribute values) say the same thing.
fn same_json(a: Option<&str>, b: &Value) -> bool {
    a.and_then(|s| serde_json::from_str::<Value>(s).ok())
        .is_some_and(|v| normalize(&v) == normalize(b))
}

/// Numbers written as strings (`"maxReceiveCount": "5"`) compare equal to numbers.
fn normalize(v: &Value) -> Value {
    match v {
        Value::String(s) if s.parse::<i64>().is_ok() => json!(s.parse::<i64>().unwrap_or(0)),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

/// Reads what exists and works out what `setup` must do. Makes no change.
pub async fn plan(clients: &Clients, config: &Config) -> Result<Plan, SetupError> {
    let setup = config.setup.as_ref().ok_or(SetupError::NoSetup)?;
    let n = names(config, setup, clients.region())?;
    let mut changes = Vec::new();

    // Every group must exist.
    let groups = clients
        .autoscaling()
        .describe_auto_scaling_groups()
        .set_auto_scaling_group_names(Some(setup.groups.clone()))
        .send()
        .await
        .map_err(|e| api("DescribeAutoScalingGroups", &e))?;
    let found: Vec<&str> = groups
        .auto_scaling_groups()
        .iter()
        .filter_map(|g| g.auto_scaling_group_name())
        .collect();
    let missing: Vec<String> = setup
        .groups
        .iter()
        .filter(|g| !found.contains(&g.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(SetupError::MissingGroups(missing));
    }

    // Queues.
    if let Some(queue) = &n.queue {
        let queue_arn = n.sqs_arn(queue);
        let mut attributes = BTreeMap::new();
        if setup.dead_letter_queue {
            let dlq = format!("{queue}-dlq");
            let exists = queue_attributes(clients, &dlq).await?.is_some();
            changes.push(Change {
                status: if exists {
                    Status::Unchanged
                } else {
                    Status::Create
                },
                resource: format!("sqs queue {dlq}"),
                detail: if exists {
                    String::new()
                } else {
                    "dead-letter queue, 14 days retention".into()
                },
                op: (!exists).then(|| Op::CreateQueue {
                    name: dlq.clone(),
                    attributes: BTreeMap::from([(
                        "MessageRetentionPeriod".to_owned(),
                        DLQ_RETENTION_SECS.to_string(),
                    )]),
                }),
            });
            let redrive = json!({
                "deadLetterTargetArn": n.sqs_arn(&dlq),
                "maxReceiveCount": setup.max_receive_count,
            });
            attributes.insert("RedrivePolicy".to_owned(), redrive);
        }
        let existing = queue_attributes(clients, queue).await?;
        let policy_source = match (setup.delivery, &n.rule, &n.topic) {
            (Delivery::EventBridge, Some(rule), _) => {
                Some(("events.amazonaws.com", n.rule_arn(rule)))
            }
            (Delivery::Sns, _, Some((_, topic_arn))) => {
                Some(("sns.amazonaws.com", topic_arn.clone()))
            }
            _ => None,
        };
        if let Some((service, source)) = policy_source {
            let current = existing
                .as_ref()
                .and_then(|q| q.attributes.get("Policy").cloned());
            attributes.insert(
                "Policy".to_owned(),
                queue_policy(current.as_deref(), &queue_arn, service, &source),
            );
        }
        match existing {
            None => changes.push(Change {
                status: Status::Create,
                resource: format!("sqs queue {queue}"),
                detail: describe_attributes(&attributes),
                op: Some(Op::CreateQueue {
                    name: queue.clone(),
                    attributes: attributes
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect(),
                }),
            }),
            Some(current) => {
                let differ: BTreeMap<String, Value> = attributes
                    .into_iter()
                    .filter(|(k, v)| !same_json(current.attributes.get(k).map(String::as_str), v))
                    .collect();
                changes.push(Change {
                    status: if differ.is_empty() {
                        Status::Unchanged
                    } else {
                        Status::Update
                    },
                    resource: format!("sqs queue {queue}"),
                    detail: describe_attributes(&differ),
                    op: (!differ.is_empty()).then(|| Op::SetQueueAttributes {
                        url: current.url.clone(),
                        attributes: differ
                            .iter()
                            .map(|(k, v)| (k.clone(), v.to_string()))
                            .collect(),
                    }),
                });
            }
        }
    }

    // SNS topic and the queue's subscription.
    if let Some((topic, topic_arn)) = &n.topic {
        let exists = match clients
            .sns()
            .get_topic_attributes()
            .topic_arn(topic_arn)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e) if e.code() == Some("NotFound") => false,
            Err(e) => return Err(api(format!("GetTopicAttributes {topic_arn}"), &e)),
        };
        changes.push(Change {
            status: if exists {
                Status::Unchanged
            } else {
                Status::Create
            },
            resource: format!("sns topic {topic}"),
            detail: String::new(),
            op: (!exists).then(|| Op::CreateTopic {
                name: topic.clone(),
            }),
        });
        if let Some(queue) = &n.queue {
            let queue_arn = n.sqs_arn(queue);
            let subscribed = exists && subscribed(clients, topic_arn, &queue_arn).await?;
            changes.push(Change {
                status: if subscribed {
                    Status::Unchanged
                } else {
                    Status::Create
                },
                resource: format!("sns subscription {topic} → sqs {queue}"),
                detail: String::new(),
                op: (!subscribed).then(|| Op::Subscribe {
                    topic_arn: topic_arn.clone(),
                    queue_arn,
                }),
            });
        }
    }

    // EventBridge rule and its target.
    if let (Some(rule), Some(queue)) = (&n.rule, &n.queue) {
        let queue_arn = n.sqs_arn(queue);
        let pattern = rule_pattern(setup);
        let current = match clients
            .eventbridge()
            .describe_rule()
            .name(rule)
            .send()
            .await
        {
            Ok(r) => Some(r),
            Err(e) if e.code() == Some("ResourceNotFoundException") => None,
            Err(e) => return Err(api(format!("DescribeRule {rule}"), &e)),
        };
        let (status, detail) = match &current {
            None => (Status::Create, format!("pattern {pattern}")),
            Some(r) => {
                let same = same_json(r.event_pattern(), &pattern);
                let enabled = r.state().is_none_or(|s| s.as_str() == "ENABLED");
                match (same, enabled) {
                    (true, true) => (Status::Unchanged, String::new()),
                    (false, _) => (Status::Update, format!("pattern {pattern}")),
                    (true, false) => (Status::Update, "enable".into()),
                }
            }
        };
        changes.push(Change {
            status,
            resource: format!("eventbridge rule {rule}"),
            detail,
            op: (status != Status::Unchanged).then(|| Op::PutRule {
                name: rule.clone(),
                pattern: pattern.to_string(),
            }),
        });
        let targeted = match &current {
            None => false,
            Some(_) => clients
                .eventbridge()
                .list_targets_by_rule()
                .rule(rule)
                .send()
                .await
                .map_err(|e| api(format!("ListTargetsByRule {rule}"), &e))?
                .targets()
                .iter()
                .any(|t| t.arn() == queue_arn),
        };
        changes.push(Change {
            status: if targeted {
                Status::Unchanged
            } else {
                Status::Create
            },
            resource: format!("eventbridge target {rule} → sqs {queue}"),
            detail: String::new(),
            op: (!targeted).then(|| Op::PutTarget {
                rule: rule.clone(),
                queue_arn,
            }),
        });
    }

    // Lifecycle hooks.
    let (target, role) = match setup.delivery {
        Delivery::EventBridge => (None, None),
        Delivery::Direct => (
            n.queue.as_ref().map(|q| n.sqs_arn(q)),
            setup.role_arn.clone(),
        ),
        Delivery::Sns => (
            n.topic.as_ref().map(|t| t.1.clone()),
            setup.role_arn.clone(),
        ),
    };
    for group in &setup.groups {
        let existing = clients
            .autoscaling()
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(|e| api(format!("DescribeLifecycleHooks {group}"), &e))?;
        for spec in &setup.hooks {
            let want = HookSpec {
                notification_target_arn: target.clone(),
                role_arn: role.clone(),
                ..spec.clone()
            };
            let current = existing
                .lifecycle_hooks()
                .iter()
                .find(|h| h.lifecycle_hook_name() == Some(spec.name.as_str()));
            let (status, detail) = match current {
                None => (
                    Status::Create,
                    format!(
                        "{}, heartbeat {}s, default {}{}",
                        want.transition.as_str(),
                        want.heartbeat_timeout.as_secs(),
                        want.default_result.as_str(),
                        want.notification_target_arn
                            .as_ref()
                            .map(|t| format!(", notifies {t}"))
                            .unwrap_or_default()
                    ),
                ),
                Some(h) => {
                    let mut diffs = Vec::new();
                    let mut diff = |what: &str, have: Option<String>, want: Option<String>| {
                        if have.as_deref().filter(|s| !s.is_empty())
                            != want.as_deref().filter(|s| !s.is_empty())
                        {
                            diffs.push(format!(
                                "{what} {} → {}",
                                have.unwrap_or_else(|| "none".into()),
                                want.unwrap_or_else(|| "none".into())
                            ));
                        }
                    };
                    diff(
                        "transition",
                        h.lifecycle_transition().map(str::to_owned),
                        Some(want.transition.as_str().to_owned()),
                    );
                    diff(
                        "heartbeat",
                        h.heartbeat_timeout().map(|s| format!("{s}s")),
                        Some(format!("{}s", want.heartbeat_timeout.as_secs())),
                    );
                    diff(
                        "default",
                        h.default_result().map(str::to_owned),
                        Some(want.default_result.as_str().to_owned()),
                    );
                    diff(
                        "target",
                        h.notification_target_arn().map(str::to_owned),
                        want.notification_target_arn.clone(),
                    );
                    diff(
                        "role",
                        h.role_arn().map(str::to_owned),
                        want.role_arn.clone(),
                    );
                    diff(
                        "metadata",
                        h.notification_metadata().map(str::to_owned),
                        want.notification_metadata.clone(),
                    );
                    if diffs.is_empty() {
                        (Status::Unchanged, String::new())
                    } else {
                        (Status::Update, diffs.join(", "))
                    }
                }
            };
            changes.push(Change {
                status,
                resource: format!("lifecycle hook {} on {group}", spec.name),
                detail,
                op: (status != Status::Unchanged).then(|| Op::PutHook {
                    group: group.clone(),
                    spec: want,
                }),
            });
        }
    }
    Ok(Plan {
        region: n.region,
        changes,
    })
}

fn describe_attributes(a: &BTreeMap<String, Value>) -> String {
    a.iter()
        .map(|(k, v)| match k.as_str() {
            "RedrivePolicy" => format!(
                "RedrivePolicy (dead-letter {}, after {} receives)",
                v["deadLetterTargetArn"]
                    .as_str()
                    .and_then(|s| s.rsplit(':').next())
                    .unwrap_or("?"),
                v["maxReceiveCount"]
            ),
            "Policy" => {
                let s = v["Statement"]
                    .as_array()
                    .and_then(|l| l.iter().find(|s| s["Sid"] == POLICY_SID));
                match s {
                    Some(s) => format!(
                        "Policy ({} may send, from {})",
                        s["Principal"]["Service"].as_str().unwrap_or("?"),
                        s["Condition"]["ArnEquals"]["aws:SourceArn"]
                            .as_str()
                            .unwrap_or("?")
                    ),
                    None => "Policy".into(),
                }
            }
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// An existing queue: its URL and attributes.
struct ExistingQueue {
    url: String,
    attributes: BTreeMap<String, String>,
}

/// The queue, or `None` when it does not exist.
async fn queue_attributes(
    clients: &Clients,
    name: &str,
) -> Result<Option<ExistingQueue>, SetupError> {
    let url = match clients.sqs().get_queue_url().queue_name(name).send().await {
        Ok(o) => o.queue_url().unwrap_or_default().to_owned(),
        Err(e)
            if matches!(
                e.code(),
                Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist")
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(api(format!("GetQueueUrl {name}"), &e)),
    };
    let out = clients
        .sqs()
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .map_err(|e| api(format!("GetQueueAttributes {name}"), &e))?;
    let attributes = out
        .attributes()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(ExistingQueue { url, attributes }))
}

async fn subscribed(
    clients: &Clients,
    topic_arn: &str,
    queue_arn: &str,
) -> Result<bool, SetupError> {
    let mut next = None;
    loop {
        let page = clients
            .sns()
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| api(format!("ListSubscriptionsByTopic {topic_arn}"), &e))?;
        if page
            .subscriptions()
            .iter()
            .any(|s| s.protocol() == Some("sqs") && s.endpoint() == Some(queue_arn))
        {
            return Ok(true);
        }
        next = page.next_token().map(str::to_owned);
        if next.is_none() {
            return Ok(false);
        }
    }
}

/// Makes the changes of `plan`, in its order, calling `done` after each. Stops at the
/// first failure (what was done stays done; running setup again carries on).
pub async fn apply(
    clients: &Clients,
    plan: &Plan,
    mut done: impl FnMut(&Change),
) -> Result<(), SetupError> {
    for change in &plan.changes {
        let Some(op) = &change.op else { continue };
        run(clients, op).await.map_err(|e| match e {
            SetupError::Api { what, detail } => SetupError::Api {
                what: format!("{} ({what})", change.resource),
                detail,
            },
            other => other,
        })?;
        done(change);
    }
    Ok(())
}

async fn run(clients: &Clients, op: &Op) -> Result<(), SetupError> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attrs = |a: &BTreeMap<String, String>| {
        a.iter()
            .map(|(k, v)| (QueueAttributeName::from(k.as_str()), v.clone()))
            .collect::<std::collections::HashMap<_, _>>()
    };
    match op {
        Op::CreateQueue { name, attributes } => {
            clients
                .sqs()
                .create_queue()
                .queue_name(name)
                .set_attributes(Some(attrs(attributes)))
                .send()
                .await
                .map_err(|e| api("CreateQueue", &e))?;
        }
        Op::SetQueueAttributes { url, attributes } => {
            clients
                .sqs()
                .set_queue_attributes()
                .queue_url(url)
                .set_attributes(Some(attrs(attributes)))
                .send()
                .await
                .map_err(|e| api("SetQueueAttributes", &e))?;
        }
        Op::CreateTopic { name } => {
            clients
                .sns()
                .create_topic()
                .name(name)
                .send()
                .await
                .map_err(|e| api("CreateTopic", &e))?;
        }
        Op::Subscribe {
            topic_arn,
            queue_arn,
        } => {
            clients
                .sns()
                .subscribe()
                .topic_arn(topic_arn)
                .protocol("sqs")
                .endpoint(queue_arn)
                .send()
                .await
                .map_err(|e| api("Subscribe", &e))?;
        }
        Op::PutRule { name, pattern } => {
            clients
                .eventbridge()
                .put_rule()
                .name(name)
                .event_pattern(pattern)
                .state(aws_sdk_eventbridge::types::RuleState::Enabled)
                .description(
                    "lifehook: lifecycle actions of the configured groups to the handlers' queue",
                )
                .send()
                .await
                .map_err(|e| api("PutRule", &e))?;
        }
        Op::PutTarget { rule, queue_arn } => {
            let target = aws_sdk_eventbridge::types::Target::builder()
                .id(TARGET_ID)
                .arn(queue_arn)
                .build()
                .map_err(|e| SetupError::Config(format!("EventBridge target: {e}")))?;
            let out = clients
                .eventbridge()
                .put_targets()
                .rule(rule)
                .targets(target)
                .send()
                .await
                .map_err(|e| api("PutTargets", &e))?;
            if out.failed_entry_count() > 0 {
                let why: Vec<String> = out
                    .failed_entries()
                    .iter()
                    .map(|f| {
                        format!(
                            "{}: {}",
                            f.error_code().unwrap_or("?"),
                            f.error_message().unwrap_or("?")
                        )
                    })
                    .collect();
                return Err(SetupError::Api {
                    what: "PutTargets".into(),
                    detail: why.join("; "),
                });
            }
        }
        Op::PutHook { group, spec } => {
            crate::lifecycle::put_hook(clients.autoscaling(), group, spec)
                .send()
                .await
                .map_err(|e| api("PutLifecycleHook", &e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_split_into_account_and_name() {
        assert_eq!(
            queue_url_parts("https://sqs.us-east-1.amazonaws.com/123456789012/hooks"),
            Some(("123456789012".into(), "hooks".into()))
        );
        assert_eq!(
            queue_url_parts("http://127.0.0.1:4566/000000000000/hooks/"),
            Some(("000000000000".into(), "hooks".into()))
        );
        assert_eq!(
            queue_url_parts("https://sqs.us-east-1.amazonaws.com/hooks"),
            None
        );
        assert_eq!(queue_url_parts("https://example.com/12345/hooks"), None);
    }

    #[test]
    fn partitions() {
        assert_eq!(lifehook_core::policy::region_partition("us-east-1"), "aws");
        assert_eq!(
            lifehook_core::policy::region_partition("cn-north-1"),
            "aws-cn"
        );
        assert_eq!(
            lifehook_core::policy::region_partition("us-gov-west-1"),
            "aws-us-gov"
        );
    }

    #[test]
    fn the_queue_policy_keeps_other_statements_and_replaces_ours() {
        let other = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "ops", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "sqs:*", "Resource": "*"},
            {"Sid": POLICY_SID, "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": "q", "Condition": {}}
        ]});
        let p = queue_policy(
            Some(&other.to_string()),
            "arn:aws:sqs:us-east-1:1:q",
            "events.amazonaws.com",
            "arn:aws:events:us-east-1:1:rule/r",
        );
        let list = p["Statement"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["Sid"], "ops");
        assert_eq!(list[1]["Principal"]["Service"], "events.amazonaws.com");
        // Same document again: nothing to change.
        assert!(same_json(
            Some(&p.to_string()),
            &queue_policy(
                Some(&p.to_string()),
                "arn:aws:sqs:us-east-1:1:q",
                "events.amazonaws.com",
                "arn:aws:events:us-east-1:1:rule/r",
            )
        ));
    }

    #[test]
    fn numbers_as_strings_compare_equal() {
        assert!(same_json(
            Some(r#"{"deadLetterTargetArn":"a","maxReceiveCount":"5"}"#),
            &json!({"deadLetterTargetArn": "a", "maxReceiveCount": 5})
        ));
        assert!(!same_json(
            Some(r#"{"deadLetterTargetArn":"a","maxReceiveCount":"4"}"#),
            &json!({"deadLetterTargetArn": "a", "maxReceiveCount": 5})
        ));
        assert!(!same_json(None, &json!({})));
    }
}
