//! The agent's own inbox: a queue that receives only this instance's lifecycle actions.
//!
//! SQS cannot filter on receive: agents that read one shared queue keep receiving each
//! other's messages and must bounce them back, which delays every action and burns
//! receives (`../shared/prior-art.md` §4). So with `[source] topic_arn`, the agent creates
//! a queue of its own, `lifehook-agent-<instance-id>`, and subscribes it to the topic the
//! hooks notify, with raw message delivery and a filter policy on the **message body**
//! (`{"EC2InstanceId": ["<own id>"]}`, `FilterPolicyScope = MessageBody`): SNS delivers
//! to it only the lifecycle messages of this instance. Test notifications have no
//! `EC2InstanceId` and never reach agents.
//!
//! Both calls are idempotent (CreateQueue with the same attributes returns the existing
//! queue; Subscribe with the same endpoint returns the existing subscription), so a
//! restarted agent finds its inbox again. [`Inbox::remove`] deletes both; the agent calls
//! it when it stops with nothing left in progress.

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;

use crate::lifecycle::describe_sdk;

/// The inbox of one agent.
#[derive(Debug, Clone)]
pub struct Inbox {
    pub queue_url: String,
    pub queue_arn: String,
    pub subscription_arn: String,
    pub topic_arn: String,
}

/// Why the inbox could not be set up or removed.
#[derive(Debug, thiserror::Error)]
#[error("{op} ({what}) failed: {detail}")]
pub struct InboxError {
    pub op: &'static str,
    pub what: String,
    pub detail: String,
}

/// The name of the inbox queue of `instance_id`.
pub fn queue_name(instance_id: &str) -> String {
    let safe: String = instance_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(60)
        .collect();
    format!("lifehook-agent-{safe}")
}

/// The filter policy that selects the lifecycle messages of `instance_id` (message body).
pub fn filter_policy(instance_id: &str) -> String {
    json!({ "EC2InstanceId": [instance_id] }).to_string()
}

impl Inbox {
    /// Creates (or finds) the queue and the filtered subscription.
    pub async fn ensure(
        sqs: &aws_sdk_sqs::Client,
        sns: &aws_sdk_sns::Client,
        topic_arn: &str,
        instance_id: &str,
    ) -> Result<Inbox, InboxError> {
        let name = queue_name(instance_id);
        let created = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| InboxError {
                op: "CreateQueue",
                what: name.clone(),
                detail: describe_sdk(&e),
            })?;
        let queue_url = created.queue_url().unwrap_or_default().to_owned();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| InboxError {
                op: "GetQueueAttributes",
                what: queue_url.clone(),
                detail: describe_sdk(&e),
            })?;
        let queue_arn = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| InboxError {
                op: "GetQueueAttributes",
                what: queue_url.clone(),
                detail: "the answer has no QueueArn".into(),
            })?;
        // Let the topic send to the queue (needed on AWS; the sandbox does not check).
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "lifehook-agent-topic",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }],
        });
        sqs.set_queue_attributes()
            .queue_url(&queue_url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .map_err(|e| InboxError {
                op: "SetQueueAttributes",
                what: queue_url.clone(),
                detail: describe_sdk(&e),
            })?;
        let sub = sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .attributes("RawMessageDelivery", "true")
            .attributes("FilterPolicyScope", "MessageBody")
            .attributes("FilterPolicy", filter_policy(instance_id))
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|e| InboxError {
                op: "Subscribe",
                what: topic_arn.to_owned(),
                detail: describe_sdk(&e),
            })?;
        Ok(Inbox {
            queue_url,
            queue_arn,
            subscription_arn: sub.subscription_arn().unwrap_or_default().to_owned(),
            topic_arn: topic_arn.to_owned(),
        })
    }

    /// Unsubscribes and deletes the queue.
    pub async fn remove(
        &self,
        sqs: &aws_sdk_sqs::Client,
        sns: &aws_sdk_sns::Client,
    ) -> Result<(), InboxError> {
        if !self.subscription_arn.is_empty() {
            sns.unsubscribe()
                .subscription_arn(&self.subscription_arn)
                .send()
                .await
                .map_err(|e| InboxError {
                    op: "Unsubscribe",
                    what: self.subscription_arn.clone(),
                    detail: describe_sdk(&e),
                })?;
        }
        sqs.delete_queue()
            .queue_url(&self.queue_url)
            .send()
            .await
            .map_err(|e| InboxError {
                op: "DeleteQueue",
                what: self.queue_url.clone(),
                detail: describe_sdk(&e),
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_filters() {
        assert_eq!(
            queue_name("i-0123456789abcdef0"),
            "lifehook-agent-i-0123456789abcdef0"
        );
        assert_eq!(queue_name("i-1/../x"), "lifehook-agent-i-1x");
        assert_eq!(filter_policy("i-1"), r#"{"EC2InstanceId":["i-1"]}"#);
    }
}
