//! `lifehook lambda`: the controller's pipelines as an AWS Lambda function, on the official
//! Rust runtime (`lambda_runtime`, which long-polls the Lambda Runtime API named by
//! `AWS_LAMBDA_RUNTIME_API`).
//!
//! **Events** (spec §3.4–§3.6, parsed as §3.8 says):
//! - an EventBridge event (`detail-type` "EC2 Instance-launch/terminate Lifecycle Action"),
//!   the event itself being the payload (§3.4);
//! - SNS records, `{"Records":[{"EventSource":"aws:sns","Sns":{…,"Message":"…"}}]}` (§3.5);
//! - SQS records from an event source mapping, `{"Records":[{"eventSource":"aws:sqs",
//!   "messageId":…,"body":…}]}` (§3.5), each body any envelope of §3.8 (the lifecycle
//!   message, an SNS envelope, an EventBridge event). The answer is a **partial batch
//!   response**, `{"batchItemFailures":[{"itemIdentifier":"<messageId>"}]}`, listing the
//!   records to be delivered again (the mapping needs `ReportBatchItemFailures`);
//! - the bare lifecycle message, when a hook names the function as its target (§3.6).
//!
//! Test notifications, foreign events and payloads that cannot be understood are logged
//! and acknowledged: never an error, so never a retry loop.
//!
//! **The function's deadline bounds the work.** Each invocation's budget is its deadline
//! (`Lambda-Runtime-Deadline-Ms`) less a safety margin. The steps run with keepalive
//! (heartbeats) as in the controller; if they have not finished when the budget runs out,
//! they are cancelled, a heartbeat is recorded so the action stays alive, and the action
//! is **handed back** instead of dropped: an SQS record is reported as a batch item
//! failure (and its visibility shortened so it comes back soon), an asynchronous
//! invocation (EventBridge, SNS, hook) fails with a retryable error so that Lambda invokes
//! it again. Either way the steps run again from the start; they are safe to run twice.
//! Lambda retries an asynchronous invocation at most twice (about 1 and 3 minutes later):
//! work that may need more than a few function timeouts belongs behind an SQS queue, whose
//! redeliveries are bounded only by its redrive policy.
//!
//! The budget is measured on the handler's clock: real time in AWS; a lifehook sandbox's
//! virtual clock when `LIFEHOOK_CLOCK_URL` is set, matching the sandbox, which times
//! invocations out on that clock.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsMessage};
use lambda_runtime::{Diagnostic, LambdaEvent};
use lifehook_core::clock::Clock;
use lifehook_core::config::Config;
use lifehook_model::delivery::{Delivery, DeliveryError, parse_delivery, parse_delivery_value};
use lifehook_model::{LifecycleEvent, LifecycleResult};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use crate::Clients;
use crate::action::{ActionHandler, Resolution};
use crate::controller::transition_label;
use crate::lifecycle::{ActionTarget, describe_sdk};
use crate::metrics::Metrics;

/// Stop the steps this long before the function's deadline, to record a heartbeat and
/// answer in time.
pub const DEFAULT_SAFETY_MARGIN: Duration = Duration::from_secs(2);
/// The visibility a handed-back SQS record is given, so that it comes back soon rather
/// than after the queue's whole visibility timeout.
pub const DEFAULT_RETRY_VISIBILITY: Duration = Duration::from_secs(10);
/// The longest a heartbeat before a hand-back may take (it must fit in the margin).
const HEARTBEAT_LIMIT: Duration = Duration::from_secs(2);
/// The environment variables `lambda_runtime` needs (it panics without them).
pub const RUNTIME_ENV: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// How the handler treats the function's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LambdaSettings {
    /// Stop the steps this long before the deadline.
    pub safety_margin: Duration,
    /// Visibility of a handed-back SQS record; `None` leaves the queue's own.
    pub retry_visibility: Option<Duration>,
}

impl Default for LambdaSettings {
    fn default() -> Self {
        LambdaSettings {
            safety_margin: DEFAULT_SAFETY_MARGIN,
            retry_visibility: Some(DEFAULT_RETRY_VISIBILITY),
        }
    }
}

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LambdaSetupError {
    #[error(
        "{0} is not set: `lifehook lambda` runs inside AWS Lambda (or against a Lambda Runtime API such as the sandbox's), which sets it"
    )]
    MissingEnv(&'static str),
    #[error("AWS_LAMBDA_FUNCTION_MEMORY_SIZE={0:?} is not a number")]
    BadMemorySize(String),
    #[error("the Lambda runtime stopped: {0}")]
    Runtime(String),
}

/// Checks the variables `lambda_runtime` reads, so that a missing one is an error message
/// rather than a panic.
pub fn check_runtime_env(env: impl Fn(&str) -> Option<String>) -> Result<(), LambdaSetupError> {
    for k in RUNTIME_ENV {
        if env(k).is_none_or(|v| v.trim().is_empty()) {
            return Err(LambdaSetupError::MissingEnv(k));
        }
    }
    let mem = env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_default();
    if mem.trim().parse::<i32>().is_err() {
        return Err(LambdaSetupError::BadMemorySize(mem));
    }
    Ok(())
}

/// The invocation failed on purpose: Lambda should run it again. The only error the
/// handler returns; everything that a retry cannot fix is acknowledged instead.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("{count} lifecycle action(s) handed back to be retried: {why}")]
    HandedBack { count: usize, why: String },
}

/// The `errorType` of a handed-back invocation (what a Lambda destination or alarm sees).
pub const HANDED_BACK_ERROR_TYPE: &str = "Lifehook.HandedBack";

impl From<LambdaError> for Diagnostic {
    fn from(e: LambdaError) -> Diagnostic {
        Diagnostic {
            error_type: HANDED_BACK_ERROR_TYPE.into(),
            error_message: e.to_string(),
        }
    }
}

/// What became of one item (an action, a record) of an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Finished with it; the label says how (`continue`, `abandon`, `already-resolved`,
    /// `held`, `set-aside`, `test`, `foreign`, `malformed`, `duplicate`).
    Done(&'static str),
    /// Give it back to be delivered again.
    HandBack(String),
}

impl ItemOutcome {
    fn label(&self) -> &'static str {
        match *self {
            ItemOutcome::Done(l) => l,
            ItemOutcome::HandBack(_) => "handed-back",
        }
    }
}

/// The Lambda handler. Share one per process (`Arc`); invocations may overlap.
pub struct LambdaHandler {
    actions: ActionHandler,
    sqs: aws_sdk_sqs::Client,
    settings: LambdaSettings,
    /// Queue URLs by queue ARN (for ChangeMessageVisibility on handed-back records).
    queue_urls: Mutex<HashMap<String, String>>,
}

impl LambdaHandler {
    pub fn new(
        config: Config,
        clients: &Clients,
        clock: Arc<dyn Clock>,
        settings: LambdaSettings,
    ) -> LambdaHandler {
        LambdaHandler {
            // Nothing serves the metrics in a function; the counters only cost a few atomics.
            actions: ActionHandler::new(config, clients, Metrics::new(), clock),
            sqs: clients.sqs().clone(),
            settings,
            queue_urls: Mutex::new(HashMap::new()),
        }
    }

    fn clock(&self) -> &Arc<dyn Clock> {
        &self.actions.clock
    }

    /// Handles one invocation whose deadline is `deadline` (real time, as the Runtime API
    /// gives it). Answers a partial batch response for SQS records and a short summary
    /// otherwise; fails only to have the invocation retried.
    pub async fn handle(
        self: &Arc<Self>,
        event: Value,
        deadline: SystemTime,
    ) -> Result<Value, LambdaError> {
        let budget = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(self.settings.safety_margin);
        let until = self.clock().now() + budget;
        debug!(budget_ms = budget.as_millis() as u64, "invocation");
        match records(&event) {
            Some(recs) if recs.iter().any(is_sqs_record) => Ok(self.sqs_batch(recs, until).await),
            Some(recs) => {
                let mut outcomes = Vec::new();
                for r in recs {
                    let delivery = match r.get("Sns") {
                        // The record's `Sns` is the notification envelope of §3.3 with the
                        // Lambda spellings, which the §3.8 parser takes as is.
                        Some(sns) => parse_delivery_value(sns),
                        None => Ok(Delivery::Foreign {
                            reason: "a record that is neither SQS nor SNS".into(),
                        }),
                    };
                    outcomes.push(self.item(delivery, "sns", until).await);
                }
                async_answer(outcomes)
            }
            None => {
                let source = if event.get("detail-type").is_some() {
                    "eventbridge"
                } else {
                    "direct"
                };
                let outcome = self.item(parse_delivery_value(&event), source, until).await;
                async_answer(vec![outcome])
            }
        }
    }

    /// An SQS batch: records in parallel (up to `[source] concurrency`), and the records
    /// to redeliver in `batchItemFailures`.
    async fn sqs_batch(self: &Arc<Self>, recs: &[Value], until: SystemTime) -> Value {
        let permits = Arc::new(Semaphore::new(
            self.actions.config.source.concurrency.max(1) as usize,
        ));
        let mut tasks = JoinSet::new();
        let mut tokens = HashSet::new();
        for (i, r) in recs.iter().enumerate() {
            // Every field of the typed record is optional: a record missing some is still
            // handled (or acknowledged) on its own.
            let msg: SqsMessage = serde_json::from_value(r.clone()).unwrap_or_default();
            let id = msg.message_id.clone().unwrap_or_default();
            let delivery = match msg.body.as_deref() {
                Some(body) => parse_delivery(body),
                None => Err(DeliveryError::Malformed {
                    what: "SQS record",
                    reason: "it has no `body`".into(),
                }),
            };
            // A second copy of an action in the same batch (SQS is at-least-once): the
            // first copy's fate covers it, as the controller does with a token in flight.
            if let Ok(Delivery::Action(ev)) = &delivery
                && !tokens.insert(ev.token.clone())
            {
                info!(message_id = %id, token = %ev.token, "a second copy of an action in this batch; acknowledged");
                tasks.spawn(async move { (i, id, ItemOutcome::Done("duplicate")) });
                continue;
            }
            let me = self.clone();
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let outcome = me
                    .item(delivery, "sqs", until)
                    .instrument(tracing::info_span!("record", message_id = %id))
                    .await;
                if let ItemOutcome::HandBack(_) = outcome {
                    me.shorten_visibility(&msg).await;
                }
                (i, id, outcome)
            });
        }
        let mut results = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(r) => results.push(r),
                // A panicking step is a bug; its record is not lost: it is redelivered.
                Err(e) => warn!(error = %e, "a record's task failed; it will be redelivered"),
            }
        }
        let finished: Vec<usize> = results.iter().map(|r| r.0).collect();
        let mut response = SqsBatchResponse::default();
        for (i, r) in recs.iter().enumerate() {
            if !finished.contains(&i) {
                let id = r.get("messageId").and_then(Value::as_str).unwrap_or("");
                response.add_failure(id.to_owned());
            }
        }
        results.sort_by_key(|r| r.0);
        for (_, id, outcome) in results {
            if let ItemOutcome::HandBack(_) = outcome {
                response.add_failure(id);
            }
        }
        info!(
            records = recs.len(),
            handed_back = response.batch_item_failures.len(),
            "SQS batch done"
        );
        serde_json::to_value(&response).unwrap_or_else(|_| json!({"batchItemFailures": []}))
    }

    /// One delivered payload, whatever carried it.
    async fn item(
        &self,
        delivery: Result<Delivery, DeliveryError>,
        source: &'static str,
        until: SystemTime,
    ) -> ItemOutcome {
        match delivery {
            Ok(Delivery::Action(ev)) => self.action(ev, until).await,
            Ok(Delivery::Test { group }) => {
                info!(source, group, "test notification acknowledged");
                ItemOutcome::Done("test")
            }
            Ok(Delivery::Foreign { reason }) => {
                warn!(
                    source,
                    reason, "not a lifecycle action; acknowledged and ignored"
                );
                ItemOutcome::Done("foreign")
            }
            Err(e) => {
                warn!(source, error = %e, "cannot understand the payload; acknowledged and ignored");
                ItemOutcome::Done("malformed")
            }
        }
    }

    async fn action(&self, ev: LifecycleEvent, until: SystemTime) -> ItemOutcome {
        let span = crate::action::span(&ev);
        let started = Instant::now();
        let mut steps = Duration::ZERO;
        let outcome = self
            .action_inner(&ev, until, &mut steps)
            .instrument(span.clone())
            .await;
        let m = &self.actions.metrics;
        m.actions
            .get_or_create(&crate::metrics::ActionLabels {
                transition: transition_label(ev.transition),
                outcome: outcome.label(),
            })
            .inc();
        span.in_scope(|| match &outcome {
            ItemOutcome::Done(label) => {
                crate::action::log_done(label, started.elapsed(), Some(steps));
            }
            ItemOutcome::HandBack(why) => info!(
                outcome = "handed-back",
                why,
                elapsed_ms = started.elapsed().as_millis() as u64,
                steps_ms = steps.as_millis() as u64,
                "action handed back"
            ),
        });
        outcome
    }

    async fn action_inner(
        &self,
        ev: &LifecycleEvent,
        until: SystemTime,
        steps: &mut Duration,
    ) -> ItemOutcome {
        if self.clock().now() >= until {
            return self
                .keep_for_retry(ev, "the invocation has no time left for the steps")
                .await;
        }
        // Cancel the steps when the budget runs out (on the handler's clock).
        let cancel = CancellationToken::new();
        let watch = {
            let cancel = cancel.clone();
            let at = self.clock().sleep_until(until);
            tokio::spawn(async move {
                at.await;
                cancel.cancel();
            })
        };
        let resolution = self.actions.handle(ev, &cancel, steps).await;
        watch.abort();
        match resolution {
            Resolution::Completed(LifecycleResult::Continue) => ItemOutcome::Done("continue"),
            Resolution::Completed(LifecycleResult::Abandon) => ItemOutcome::Done("abandon"),
            Resolution::AlreadyResolved => ItemOutcome::Done("already-resolved"),
            Resolution::Hold { hook, .. } => {
                // A function cannot wait out the global timeout; the last heartbeat
                // already covers the time left, and then the DefaultResult applies.
                info!(default_result = %hook.default_result, "holding: the hook's DefaultResult will apply");
                ItemOutcome::Done("held")
            }
            Resolution::Interrupted { .. } => {
                self.keep_for_retry(
                    ev,
                    "the function's deadline is near and the steps have not finished",
                )
                .await
            }
            Resolution::Retry { why } => ItemOutcome::HandBack(why),
            Resolution::SetAside { reason, why } => {
                warn!(
                    reason,
                    why, "the action cannot be handled here; acknowledged"
                );
                ItemOutcome::Done("set-aside")
            }
        }
    }

    /// Records a heartbeat (so the action outlives the wait for the retry), then hands the
    /// action back. An action found resolved meanwhile needs nothing more.
    async fn keep_for_retry(&self, ev: &LifecycleEvent, why: &str) -> ItemOutcome {
        let target = ActionTarget::from_event(ev);
        match tokio::time::timeout(HEARTBEAT_LIMIT, self.actions.api.heartbeat(&target)).await {
            Ok(Ok(())) => {
                self.actions.metrics.heartbeats.inc();
                info!("heartbeat recorded before handing the action back");
                ItemOutcome::HandBack(format!("{why}; heartbeat recorded"))
            }
            Ok(Err(e)) if e.is_already_resolved() => {
                info!("the action was resolved meanwhile; nothing to hand back");
                ItemOutcome::Done("already-resolved")
            }
            Ok(Err(e)) => {
                warn!(error = %e, "the heartbeat before the hand-back failed");
                ItemOutcome::HandBack(format!("{why}; heartbeat failed: {e}"))
            }
            Err(_) => {
                warn!("the heartbeat before the hand-back took too long");
                ItemOutcome::HandBack(format!("{why}; heartbeat timed out"))
            }
        }
    }

    /// Makes a handed-back record visible again soon (`ChangeMessageVisibility`). Best
    /// effort: without it (or without the permission) the record comes back after the
    /// queue's visibility timeout.
    async fn shorten_visibility(&self, msg: &SqsMessage) {
        let Some(visibility) = self.settings.retry_visibility else {
            return;
        };
        let (Some(arn), Some(receipt)) = (&msg.event_source_arn, &msg.receipt_handle) else {
            return;
        };
        let url = match self.queue_url(arn).await {
            Ok(u) => u,
            Err(e) => {
                warn!(queue = %arn, error = %e, "cannot find the queue to shorten the record's visibility");
                return;
            }
        };
        let secs = i32::try_from(visibility.as_secs()).unwrap_or(i32::MAX);
        match self
            .sqs
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(receipt)
            .visibility_timeout(secs)
            .send()
            .await
        {
            Ok(_) => debug!(queue = %url, visibility_s = secs, "record visible again soon"),
            Err(e) => {
                warn!(queue = %url, error = %describe_sdk(&e), "cannot shorten the record's visibility; it comes back after the queue's visibility timeout")
            }
        }
    }

    async fn queue_url(&self, arn: &str) -> Result<String, String> {
        if let Some(u) = lock(&self.queue_urls).get(arn) {
            return Ok(u.clone());
        }
        let (account, name) =
            queue_of_arn(arn).ok_or_else(|| format!("{arn} is not an SQS queue ARN"))?;
        let out = self
            .sqs
            .get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .send()
            .await
            .map_err(|e| describe_sdk(&e))?;
        let url = out
            .queue_url()
            .ok_or_else(|| "GetQueueUrl answered no URL".to_owned())?
            .to_owned();
        lock(&self.queue_urls).insert(arn.to_owned(), url.clone());
        Ok(url)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `Records`, when the event is a batch of records (§3.5).
fn records(event: &Value) -> Option<&[Value]> {
    event.get("Records")?.as_array().map(Vec::as_slice)
}

fn is_sqs_record(r: &Value) -> bool {
    r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs")
        || (r.get("messageId").is_some() && r.get("body").is_some())
}

/// The answer to an asynchronous invocation: a summary, or an error to have it retried.
fn async_answer(outcomes: Vec<ItemOutcome>) -> Result<Value, LambdaError> {
    let back: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match o {
            ItemOutcome::HandBack(why) => Some(why),
            ItemOutcome::Done(_) => None,
        })
        .collect();
    if let Some(first) = back.first() {
        return Err(LambdaError::HandedBack {
            count: back.len(),
            why: (*first).clone(),
        });
    }
    let labels: Vec<&str> = outcomes.iter().map(ItemOutcome::label).collect();
    Ok(json!({ "outcomes": labels }))
}

/// `(account, name)` of `arn:aws:sqs:REGION:ACCOUNT:NAME`.
pub fn queue_of_arn(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, _partition, service, _region) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let (account, name) = (parts.next()?, parts.next()?);
    (arn_ == "arn" && service == "sqs" && !account.is_empty() && !name.is_empty())
        .then_some((account, name))
}

/// Serves invocations from the Lambda Runtime API until it goes away. Call
/// [`check_runtime_env`] first: `lambda_runtime` panics when its variables are missing.
pub async fn run(handler: Arc<LambdaHandler>) -> Result<(), LambdaSetupError> {
    let service = lambda_runtime::service_fn(move |ev: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            let deadline = ev.context.deadline();
            let request_id = ev.context.request_id.clone();
            handler
                .handle(ev.payload, deadline)
                .instrument(tracing::info_span!("invocation", request_id = %request_id))
                .await
        }
    });
    lambda_runtime::run(service)
        .await
        .map_err(|e| LambdaSetupError::Runtime(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_arns() {
        assert_eq!(
            queue_of_arn("arn:aws:sqs:us-east-2:123456789012:my-queue"),
            Some(("123456789012", "my-queue"))
        );
        assert_eq!(queue_of_arn("arn:aws:sns:us-east-2:1:t"), None);
        assert_eq!(queue_of_arn("arn:aws:sqs:us-east-2:1"), None);
        assert_eq!(queue_of_arn("garbage"), None);
    }

    #[test]
    fn runtime_env_is_checked_without_panicking() {
        let full = |k: &str| {
            Some(match k {
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => "128".to_owned(),
                _ => "x".to_owned(),
            })
        };
        assert!(check_runtime_env(full).is_ok());
        let e = check_runtime_env(|k| (k != "AWS_LAMBDA_RUNTIME_API").then(|| "1".to_owned()))
            .expect_err("missing");
        assert!(e.to_string().contains("AWS_LAMBDA_RUNTIME_API"), "{e}");
        let e = check_runtime_env(|k| {
            Some(
                if k == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" {
                    "lots"
                } else {
                    "1"
                }
                .to_owned(),
            )
        })
        .expect_err("bad memory");
        assert!(e.to_string().contains("lots"), "{e}");
    }

    #[test]
    fn shapes() {
        let sqs = json!({"Records":[{"messageId":"m","body":"x","eventSource":"aws:sqs"}]});
        assert!(records(&sqs).is_some_and(|r| r.iter().any(is_sqs_record)));
        let sns = json!({"Records":[{"EventSource":"aws:sns","Sns":{"Message":"{}"}}]});
        assert!(records(&sns).is_some_and(|r| !r.iter().any(is_sqs_record)));
        assert!(records(&json!({"detail-type":"x"})).is_none());
        assert!(records(&json!({"Records": 3})).is_none());
    }

    #[test]
    fn async_answers() {
        assert_eq!(
            async_answer(vec![ItemOutcome::Done("continue")]).expect("ok"),
            json!({"outcomes": ["continue"]})
        );
        let e = async_answer(vec![
            ItemOutcome::Done("test"),
            ItemOutcome::HandBack("late".into()),
        ])
        .expect_err("retry");
        let d = Diagnostic::from(e);
        assert_eq!(d.error_type, HANDED_BACK_ERROR_TYPE);
        assert!(d.error_message.contains("late"), "{}", d.error_message);
    }

    /// The lifecycle message of spec §3.1 (REAL-SQS-SAMPLE).
    const MESSAGE: &str = r#"{"Origin":"EC2","LifecycleHookName":"h","Destination":"AutoScalingGroup","AccountId":"266608227104","RequestId":"5a062a09-2965-8413-43f9-83bd8649c9eb","LifecycleTransition":"autoscaling:EC2_INSTANCE_LAUNCHING","AutoScalingGroupName":"g","Service":"AWS Auto Scaling","Time":"2023-09-11T03:30:33.136Z","EC2InstanceId":"i-0853dfa8ce1627af9","LifecycleActionToken":"917070d0-a303-474b-a36c-a5e38a19de5e"}"#;

    fn action(d: Result<Delivery, DeliveryError>) -> LifecycleEvent {
        match d {
            Ok(Delivery::Action(ev)) => ev,
            other => panic!("not an action: {other:?}"),
        }
    }

    #[test]
    fn spec_3_5_sns_record_is_read_through_its_envelope() {
        // §3.5: the Lambda form of the SNS record (PascalCase, `SigningCertUrl`).
        let event = json!({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0",
            "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:topic:f4fdba36",
            "Sns": {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:123456789012:topic",
                    "Subject": null, "Message": MESSAGE, "Timestamp": "2024-03-23T03:58:50.084Z",
                    "SignatureVersion": "1", "Signature": "c2ln",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/x.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {}}}]});
        // The shape aws_lambda_events knows as an SNS event.
        let typed: aws_lambda_events::event::sns::SnsEvent =
            serde_json::from_value(event.clone()).expect("an SnsEvent");
        assert_eq!(typed.records[0].sns.message, MESSAGE);
        let recs = records(&event).expect("records");
        assert!(!recs.iter().any(is_sqs_record));
        let ev = action(parse_delivery_value(&recs[0]["Sns"]));
        assert_eq!(ev.instance_id, "i-0853dfa8ce1627af9");
        assert_eq!(ev.path, lifehook_model::delivery::DeliveryPath::Sns);
    }

    #[test]
    fn spec_3_5_sqs_record_bodies_in_every_envelope() {
        let eventbridge = json!({"version": "0", "id": "1", "detail-type": "EC2 Instance-terminate Lifecycle Action",
            "source": "aws.autoscaling", "account": "123456789012", "time": "2021-02-01T17:18:06Z",
            "region": "us-west-2", "resources": [],
            "detail": {"LifecycleActionToken": "t", "AutoScalingGroupName": "g", "LifecycleHookName": "h",
                       "EC2InstanceId": "i-1234567890abcdef0", "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}});
        let envelope =
            json!({"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": MESSAGE});
        for (body, path) in [
            (MESSAGE.to_owned(), "direct"),
            (envelope.to_string(), "sns"),
            (eventbridge.to_string(), "event-bridge"),
        ] {
            let record = json!({"messageId": "059f36b4", "receiptHandle": "AQEB", "body": body,
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "md5OfBody": "e4e6", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:my-queue", "awsRegion": "us-east-2"});
            assert!(is_sqs_record(&record));
            let msg: SqsMessage = serde_json::from_value(record).expect("an SqsMessage");
            let ev = action(parse_delivery(msg.body.as_deref().expect("body")));
            assert_eq!(serde_json::to_value(ev.path).expect("path"), json!(path));
        }
    }

    #[test]
    fn batch_response_shape() {
        let mut r = SqsBatchResponse::default();
        r.add_failure("id-1".to_owned());
        assert_eq!(
            serde_json::to_value(&r).expect("json"),
            json!({"batchItemFailures": [{"itemIdentifier": "id-1"}]})
        );
    }
}
