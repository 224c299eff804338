//! An SQS consumer of lifecycle notifications.
//!
//! - Long polling (`WaitTimeSeconds`, 20 s by default) in batches of up to 10, never
//!   receiving more messages than there are free slots under the concurrency limit, so a
//!   received message is always being worked on.
//! - Every body goes through [`lifehook_model::delivery::parse_delivery`]: lifecycle
//!   actions are handed out as [`InFlight`]; test notifications are deleted; foreign and
//!   malformed messages are set aside (to the queue's dead-letter queue, read from its
//!   `RedrivePolicy` once, or deleted with a log line when there is none). A message that
//!   cannot be understood is never received twice by this consumer's doing.
//! - While an [`InFlight`] is held, its visibility is extended (`ChangeMessageVisibility`
//!   by the configured timeout, every half of it) so no other consumer sees it.
//! - A second delivery of a token already in flight is deleted at once (the held copy will
//!   be completed or handed back); a redelivery of the very same message only refreshes
//!   the receipt handle the held copy uses.
//! - The caller decides the end of each message: [`QueueConsumer::ack`] (deletes, batched
//!   with `DeleteMessageBatch`), [`QueueConsumer::set_aside`], or
//!   [`QueueConsumer::hand_back`] (visibility 0, for shutdown). Dropping an `InFlight`
//!   without deciding lets the message reappear after its visibility timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};
use lifehook_core::clock::Clock;
use lifehook_model::delivery::{Delivery, LifecycleEvent, parse_delivery};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::lifecycle::{ErrorClass, classify_sdk, describe_sdk};

/// Messages per `ReceiveMessage` (the SQS maximum). The defaults of the long-poll wait,
/// the batch size, the concurrency and the visibility are those of a configuration's
/// `[source]` (`lifehook_core::config::Source::default()`).
pub const MAX_BATCH: i32 = 10;
/// How long a delete waits for companions to share a `DeleteMessageBatch`.
pub const DEFAULT_DELETE_LINGER: Duration = Duration::from_millis(50);
/// The message attribute that says why a message was set aside.
pub const SET_ASIDE_REASON_ATTRIBUTE: &str = "lifehook-set-aside-reason";

/// Where and how to consume.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    pub queue_url: String,
    pub wait_time: Duration,
    pub batch_size: i32,
    pub concurrency: usize,
    pub visibility_timeout: Duration,
    pub delete_linger: Duration,
}

impl QueueConfig {
    /// Consuming `queue_url` as a configuration's `[source]` says (long-poll wait, batch
    /// size, concurrency, visibility timeout).
    pub fn from_source(queue_url: impl Into<String>, src: &lifehook_core::config::Source) -> Self {
        QueueConfig {
            queue_url: queue_url.into(),
            wait_time: Duration::from_secs(u64::from(src.wait_time_seconds)),
            batch_size: src.max_messages.clamp(1, MAX_BATCH as u32) as i32,
            concurrency: src.concurrency.max(1) as usize,
            visibility_timeout: src.visibility_timeout,
            delete_linger: DEFAULT_DELETE_LINGER,
        }
    }

    /// Consuming `queue_url` with the defaults of a configuration's `[source]`
    /// (`lifehook_core::config::Source::default()`).
    pub fn new(queue_url: impl Into<String>) -> Self {
        QueueConfig::from_source(queue_url, &lifehook_core::config::Source::default())
    }
}

/// A failed queue call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    #[error("{op} on queue {queue} failed: {detail}")]
    Api {
        op: &'static str,
        queue: String,
        detail: String,
        retryable: bool,
    },
    #[error("the queue consumer for {0} has shut down")]
    Closed(String),
}

impl QueueError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            QueueError::Api {
                retryable: true,
                ..
            }
        )
    }
}

/// A lifecycle action received from the queue and being worked on.
#[derive(Debug)]
pub struct InFlight {
    pub event: LifecycleEvent,
    pub message_id: String,
    pub body: String,
    /// `ApproximateReceiveCount` (1 on first delivery).
    pub receive_count: u32,
    receipt: Arc<Mutex<String>>,
    extender: Option<JoinHandle<()>>,
    tokens: Tokens,
    /// A place in `concurrency`; given back as soon as the action's work is over (before
    /// the batched delete), so the next batch is not held up by the delete's linger.
    permit: Option<OwnedSemaphorePermit>,
}

impl InFlight {
    /// The current receipt handle (a redelivery may have replaced it).
    pub fn receipt_handle(&self) -> String {
        lock(&self.receipt).clone()
    }

    fn stop_extending(&mut self) {
        if let Some(t) = self.extender.take() {
            t.abort();
        }
    }

    /// Forgets that this consumer holds the action, if the registration is still this
    /// message's (a later delivery of the same message registers anew, with a receipt of
    /// its own).
    fn unregister(&self) {
        let mut t = lock(&self.tokens);
        if t.get(&self.event.token)
            .is_some_and(|e| Arc::ptr_eq(&e.receipt, &self.receipt))
        {
            t.remove(&self.event.token);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.stop_extending();
        self.unregister();
    }
}

#[derive(Debug)]
struct TokenEntry {
    message_id: String,
    receipt: Arc<Mutex<String>>,
}

type Tokens = Arc<Mutex<HashMap<String, TokenEntry>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A consumer of one queue. Cheap to clone; clones share the concurrency limit, the
/// in-flight set and the delete batcher. Must be created inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct QueueConsumer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sqs: aws_sdk_sqs::Client,
    cfg: QueueConfig,
    permits: Arc<Semaphore>,
    /// Places for actions waiting for their batched delete (as many as `permits`): an
    /// action trades its place in `concurrency` for one of these, so the delete's linger
    /// does not hold up the next action, while a slow delete still holds up receiving.
    delete_slots: Arc<Semaphore>,
    tokens: Tokens,
    dlq: OnceCell<Option<String>>,
    deletes: mpsc::UnboundedSender<DeleteRequest>,
    /// Visibility is extended on this clock (SQS visibility runs on the sandbox's virtual
    /// clock in tests).
    clock: Arc<dyn Clock>,
}

#[derive(Debug)]
struct DeleteRequest {
    receipt: String,
    done: oneshot::Sender<Result<(), QueueError>>,
}

impl QueueConsumer {
    pub fn new(sqs: aws_sdk_sqs::Client, cfg: QueueConfig) -> Self {
        QueueConsumer::with_clock(sqs, cfg, Arc::new(lifehook_core::SystemClock))
    }

    /// A consumer that extends visibility on `clock`'s time.
    pub fn with_clock(sqs: aws_sdk_sqs::Client, cfg: QueueConfig, clock: Arc<dyn Clock>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(delete_batcher(
            sqs.clone(),
            cfg.queue_url.clone(),
            cfg.delete_linger,
            rx,
        ));
        QueueConsumer {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
                delete_slots: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
                sqs,
                cfg,
                tokens: Arc::new(Mutex::new(HashMap::new())),
                dlq: OnceCell::new(),
                deletes: tx,
                clock,
            }),
        }
    }

    pub fn config(&self) -> &QueueConfig {
        &self.inner.cfg
    }

    /// Reads the queue once, so that a queue that does not exist or cannot be read fails
    /// at start, clearly; answers the dead-letter queue its `RedrivePolicy` names (an
    /// ARN), if any.
    pub async fn check(&self) -> Result<Option<String>, QueueError> {
        Ok(self
            .redrive_policy()
            .await?
            .and_then(|p| dead_letter_arn(&p)))
    }

    /// The queue's `RedrivePolicy` (`GetQueueAttributes`), if it has one.
    async fn redrive_policy(&self) -> Result<Option<String>, QueueError> {
        let queue = &self.inner.cfg.queue_url;
        let out = self
            .inner
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| QueueError::Api {
                op: "GetQueueAttributes",
                queue: queue.clone(),
                detail: describe_sdk(&e),
                retryable: classify_sdk(&e) == ErrorClass::Retryable,
            })?;
        Ok(out
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::RedrivePolicy)))
    }

    /// Lifecycle actions currently held.
    pub fn in_flight(&self) -> usize {
        lock(&self.inner.tokens).len()
    }

    /// Waits for a free slot, long-polls once, and returns the lifecycle actions received
    /// (possibly none). Everything else received is dealt with here.
    pub async fn next_batch(&self) -> Result<Vec<InFlight>, QueueError> {
        let inner = &self.inner;
        let queue = &inner.cfg.queue_url;
        let first = inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| QueueError::Closed(queue.clone()))?;
        let mut permits = vec![first];
        let batch = inner.cfg.batch_size.clamp(1, MAX_BATCH) as usize;
        while permits.len() < batch {
            match inner.permits.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let out = inner
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(permits.len() as i32)
            .wait_time_seconds(inner.cfg.wait_time.as_secs().min(20) as i32)
            .visibility_timeout(secs_i32(inner.cfg.visibility_timeout))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| QueueError::Api {
                op: "ReceiveMessage",
                queue: queue.clone(),
                detail: describe_sdk(&e),
                retryable: classify_sdk(&e) == ErrorClass::Retryable,
            })?;

        let mut actions = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let Some(receipt) = m.receipt_handle else {
                tracing::warn!(queue = %queue, "message without a receipt handle ignored");
                continue;
            };
            let message_id = m.message_id.unwrap_or_default();
            let body = m.body.unwrap_or_default();
            let receive_count = m
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            match parse_delivery(&body) {
                Ok(Delivery::Action(event)) => {
                    let duplicate = {
                        let mut tokens = lock(&inner.tokens);
                        match tokens.get(&event.token) {
                            Some(e) if e.message_id == message_id => {
                                *lock(&e.receipt) = receipt.clone();
                                Some(true)
                            }
                            Some(_) => Some(false),
                            None => {
                                let r = Arc::new(Mutex::new(receipt.clone()));
                                tokens.insert(
                                    event.token.clone(),
                                    TokenEntry {
                                        message_id: message_id.clone(),
                                        receipt: r,
                                    },
                                );
                                None
                            }
                        }
                    };
                    match duplicate {
                        Some(true) => {
                            tracing::debug!(queue = %queue, message_id = %message_id, token = %event.token, "redelivery of a held message; receipt handle refreshed");
                        }
                        Some(false) => {
                            tracing::info!(queue = %queue, message_id = %message_id, token = %event.token, instance = %event.instance_id, "duplicate delivery of an action in flight, deleted");
                            if let Err(e) = self.delete(receipt).await {
                                tracing::warn!(error = %e, "deleting a duplicate failed");
                            }
                        }
                        None => {
                            let receipt_cell = lock(&inner.tokens)
                                .get(&event.token)
                                .map(|e| e.receipt.clone())
                                .unwrap_or_else(|| Arc::new(Mutex::new(receipt.clone())));
                            let Some(permit) = permits.pop() else {
                                // Cannot happen: never more messages than permits.
                                lock(&inner.tokens).remove(&event.token);
                                continue;
                            };
                            let extender = tokio::spawn(extend_visibility(
                                inner.sqs.clone(),
                                queue.clone(),
                                receipt_cell.clone(),
                                inner.cfg.visibility_timeout,
                                inner.clock.clone(),
                            ));
                            actions.push(InFlight {
                                event,
                                message_id,
                                body,
                                receive_count,
                                receipt: receipt_cell,
                                extender: Some(extender),
                                tokens: inner.tokens.clone(),
                                permit: Some(permit),
                            });
                        }
                    }
                }
                Ok(Delivery::Test { group }) => {
                    tracing::info!(queue = %queue, group = %group, "test notification deleted");
                    if let Err(e) = self.delete(receipt).await {
                        tracing::warn!(error = %e, "deleting a test notification failed");
                    }
                }
                Ok(Delivery::Foreign { reason }) => {
                    if let Err(e) = self
                        .set_aside_raw(&message_id, &receipt, &body, &reason)
                        .await
                    {
                        tracing::warn!(error = %e, message_id = %message_id, "setting aside failed");
                    }
                }
                Err(err) => {
                    let reason = format!("malformed: {err}");
                    if let Err(e) = self
                        .set_aside_raw(&message_id, &receipt, &body, &reason)
                        .await
                    {
                        tracing::warn!(error = %e, message_id = %message_id, "setting aside failed");
                    }
                }
            }
        }
        Ok(actions)
    }

    /// The action is done (completed, or already resolved): delete the message.
    pub async fn ack(&self, mut msg: InFlight) -> Result<(), QueueError> {
        msg.stop_extending();
        // The token stays registered (a redelivery meanwhile is a duplicate), but the
        // place in `concurrency` is free for the next action once this one has a place
        // among those waiting for their delete.
        let _slot = self.inner.delete_slots.clone().acquire_owned().await;
        msg.permit = None;
        self.delete(msg.receipt_handle()).await
    }

    /// The message cannot be handled: move it to the dead-letter queue, or delete it with
    /// a log line when the queue has none.
    pub async fn set_aside(&self, mut msg: InFlight, reason: &str) -> Result<(), QueueError> {
        msg.stop_extending();
        let receipt = msg.receipt_handle();
        self.set_aside_raw(&msg.message_id, &receipt, &msg.body, reason)
            .await
    }

    /// Returns the message to the queue at once (visibility 0), for another consumer or a
    /// later run (shutdown, a retry). The action is forgotten first: this consumer's own
    /// pending receive may get the message back at once, and must take it as a new action
    /// to run, not as a redelivery of one it still holds (which nobody would then run).
    pub async fn hand_back(&self, mut msg: InFlight) -> Result<(), QueueError> {
        msg.stop_extending();
        msg.unregister();
        msg.permit = None;
        let inner = &self.inner;
        inner
            .sqs
            .change_message_visibility()
            .queue_url(&inner.cfg.queue_url)
            .receipt_handle(msg.receipt_handle())
            .visibility_timeout(0)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Api {
                op: "ChangeMessageVisibility",
                queue: inner.cfg.queue_url.clone(),
                detail: describe_sdk(&e),
                retryable: classify_sdk(&e) == ErrorClass::Retryable,
            })
    }

    /// The URL of the dead-letter queue named by the queue's `RedrivePolicy`, if any.
    /// Looked up once; a failed lookup is retried on the next call.
    pub async fn dead_letter_queue(&self) -> Result<Option<String>, QueueError> {
        let inner = &self.inner;
        inner
            .dlq
            .get_or_try_init(|| async {
                let queue = &inner.cfg.queue_url;
                let api = |op, e: String, retryable| QueueError::Api {
                    op,
                    queue: queue.clone(),
                    detail: e,
                    retryable,
                };
                let Some(policy) = self.redrive_policy().await? else {
                    return Ok(None);
                };
                let Some((name, owner)) = dead_letter_target(&policy) else {
                    tracing::warn!(queue = %queue, policy = %policy, "RedrivePolicy names no usable dead-letter queue");
                    return Ok(None);
                };
                let url = inner
                    .sqs
                    .get_queue_url()
                    .queue_name(&name)
                    .set_queue_owner_aws_account_id(owner)
                    .send()
                    .await
                    .map_err(|e| {
                        api(
                            "GetQueueUrl",
                            describe_sdk(&e),
                            classify_sdk(&e) == ErrorClass::Retryable,
                        )
                    })?;
                Ok(url.queue_url)
            })
            .await
            .cloned()
    }

    async fn set_aside_raw(
        &self,
        message_id: &str,
        receipt: &str,
        body: &str,
        reason: &str,
    ) -> Result<(), QueueError> {
        let inner = &self.inner;
        let queue = &inner.cfg.queue_url;
        match self.dead_letter_queue().await? {
            Some(dlq) => {
                let attr = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(truncate(reason, 1024))
                    .build()
                    .map_err(|e| QueueError::Api {
                        op: "SendMessage",
                        queue: dlq.clone(),
                        detail: e.to_string(),
                        retryable: false,
                    })?;
                inner
                    .sqs
                    .send_message()
                    .queue_url(&dlq)
                    .message_body(body)
                    .message_attributes(SET_ASIDE_REASON_ATTRIBUTE, attr)
                    .send()
                    .await
                    .map_err(|e| QueueError::Api {
                        op: "SendMessage",
                        queue: dlq.clone(),
                        detail: describe_sdk(&e),
                        retryable: classify_sdk(&e) == ErrorClass::Retryable,
                    })?;
                tracing::warn!(queue = %queue, dlq = %dlq, message_id = %message_id, reason = %reason, "message set aside to the dead-letter queue");
            }
            None => {
                tracing::warn!(queue = %queue, message_id = %message_id, reason = %reason, body = %truncate(body, 512), "message set aside: deleted (the queue has no dead-letter queue)");
            }
        }
        self.delete(receipt.to_owned()).await
    }

    async fn delete(&self, receipt: String) -> Result<(), QueueError> {
        let (tx, rx) = oneshot::channel();
        let closed = || QueueError::Closed(self.inner.cfg.queue_url.clone());
        self.inner
            .deletes
            .send(DeleteRequest { receipt, done: tx })
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

/// The `deadLetterTargetArn` of a `RedrivePolicy` (JSON text).
fn dead_letter_arn(policy: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(policy).ok()?;
    Some(v.get("deadLetterTargetArn")?.as_str()?.to_owned())
}

/// `(queue name, owner account)` of a `RedrivePolicy`'s `deadLetterTargetArn`.
pub fn dead_letter_target(policy: &str) -> Option<(String, Option<String>)> {
    let arn = dead_letter_arn(policy)?;
    // arn:aws:sqs:<region>:<account>:<name>
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sqs" || parts[5].is_empty() {
        return None;
    }
    let owner = (!parts[4].is_empty()).then(|| parts[4].to_owned());
    Some((parts[5].to_owned(), owner))
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn secs_i32(d: Duration) -> i32 {
    i32::try_from(d.as_secs())
        .unwrap_or(i32::MAX)
        .clamp(0, 43_200)
}

async fn extend_visibility(
    sqs: aws_sdk_sqs::Client,
    queue: String,
    receipt: Arc<Mutex<String>>,
    visibility: Duration,
    clock: Arc<dyn Clock>,
) {
    let every = (visibility / 2).max(Duration::from_secs(1));
    loop {
        let due = clock.now() + every;
        clock.sleep_until(due).await;
        let handle = lock(&receipt).clone();
        let r = sqs
            .change_message_visibility()
            .queue_url(&queue)
            .receipt_handle(handle)
            .visibility_timeout(secs_i32(visibility))
            .send()
            .await;
        if let Err(e) = r {
            let class = classify_sdk(&e);
            tracing::warn!(queue = %queue, error = %describe_sdk(&e), "extending message visibility failed");
            if class == ErrorClass::Fatal {
                // The receipt handle is no longer valid: the message is gone or was
                // received elsewhere. Extending again cannot help.
                return;
            }
        }
    }
}

async fn delete_batcher(
    sqs: aws_sdk_sqs::Client,
    queue: String,
    linger: Duration,
    mut rx: mpsc::UnboundedReceiver<DeleteRequest>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let until = tokio::time::Instant::now() + linger;
        while batch.len() < MAX_BATCH as usize {
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(r)) => batch.push(r),
                _ => break,
            }
        }
        // Sent concurrently: the next batch need not wait for this one's answer (the
        // delete slots bound how many are outstanding).
        let sqs = sqs.clone();
        let queue = queue.clone();
        tokio::spawn(async move {
            let entries: Vec<DeleteMessageBatchRequestEntry> = batch
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&r.receipt)
                        .build()
                        .ok()
                })
                .collect();
            let result = sqs
                .delete_message_batch()
                .queue_url(&queue)
                .set_entries(Some(entries))
                .send()
                .await;
            match result {
                Ok(out) => {
                    let failed: HashMap<String, String> = out
                        .failed
                        .into_iter()
                        .map(|f| {
                            let detail = match f.message {
                                Some(m) => format!("{}: {m}", f.code),
                                None => f.code,
                            };
                            (f.id, detail)
                        })
                        .collect();
                    for (i, r) in batch.into_iter().enumerate() {
                        let res = match failed.get(&i.to_string()) {
                            Some(detail) => Err(QueueError::Api {
                                op: "DeleteMessageBatch",
                                queue: queue.clone(),
                                detail: detail.clone(),
                                retryable: false,
                            }),
                            None => Ok(()),
                        };
                        let _ = r.done.send(res);
                    }
                }
                Err(e) => {
                    let err = QueueError::Api {
                        op: "DeleteMessageBatch",
                        queue: queue.clone(),
                        detail: describe_sdk(&e),
                        retryable: classify_sdk(&e) == ErrorClass::Retryable,
                    };
                    for r in batch {
                        let _ = r.done.send(Err(err.clone()));
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policy_names_the_dead_letter_queue() {
        let p = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:lifecycle-dlq","maxReceiveCount":"5"}"#;
        assert_eq!(
            dead_letter_target(p),
            Some(("lifecycle-dlq".into(), Some("000000000000".into())))
        );
        assert_eq!(dead_letter_target("{}"), None);
        assert_eq!(dead_letter_target("not json"), None);
        assert_eq!(
            dead_letter_target(r#"{"deadLetterTargetArn":"arn:aws:sns:us-east-1:1:t"}"#),
            None
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("ééé", 3), "é");
    }

    #[test]
    fn visibility_is_clamped_to_the_sqs_range() {
        assert_eq!(secs_i32(Duration::from_secs(60)), 60);
        assert_eq!(secs_i32(Duration::from_secs(100_000)), 43_200);
    }
}
