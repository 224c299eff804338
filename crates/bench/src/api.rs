//! The few sandbox calls the benchmark makes itself, over plain HTTP (no AWS SDK: this crate
//! builds in seconds). Every call is tallied, so the benchmark can subtract its own calls
//! from the sandbox's request counts and report only the controller's.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The sandbox's account.
pub(crate) const ACCOUNT: &str = "000000000000";
/// The region every resource of the benchmark lives in.
pub(crate) const REGION: &str = "us-east-1";
/// A role ARN for hooks with a notification target (the sandbox does not check it).
const ROLE: &str = "arn:aws:iam::000000000000:role/lifehook-bench";

/// Request counts by service, then operation (the shape of `GET /_sandbox/stats`).
pub(crate) type Counts = BTreeMap<String, BTreeMap<String, u64>>;

pub(crate) struct Api {
    http: reqwest::Client,
    endpoint: String,
    /// The benchmark's own calls.
    pub own: Counts,
}

impl Api {
    pub(crate) fn new(endpoint: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            endpoint: endpoint.to_owned(),
            own: Counts::new(),
        }
    }

    fn tally(&mut self, service: &str, op: &str) {
        *self
            .own
            .entry(service.to_owned())
            .or_default()
            .entry(op.to_owned())
            .or_default() += 1;
    }

    /// An Auto Scaling Query call (unsigned: the sandbox takes the service from `Version`).
    async fn autoscaling(&mut self, op: &str, params: &[(&str, String)]) -> anyhow::Result<()> {
        self.query("autoscaling", "2011-01-01", op, params).await?;
        Ok(())
    }

    /// An SNS Query call; returns the answer's XML.
    async fn sns(&mut self, op: &str, params: &[(&str, String)]) -> anyhow::Result<String> {
        self.query("sns", "2010-03-31", op, params).await
    }

    /// An unsigned AWS Query call (the sandbox takes the service from `Version`); returns
    /// the answer's XML.
    async fn query(
        &mut self,
        service: &str,
        version: &str,
        op: &str,
        params: &[(&str, String)],
    ) -> anyhow::Result<String> {
        self.tally(service, op);
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", op)
            .append_pair("Version", version)
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let resp = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .with_context(|| op.to_owned())?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{op}: {status}: {text}");
        }
        Ok(text)
    }

    pub(crate) async fn create_topic(&mut self, name: &str) -> anyhow::Result<String> {
        self.sns("CreateTopic", &[("Name", name.to_owned())])
            .await?;
        Ok(format!("arn:aws:sns:{REGION}:{ACCOUNT}:{name}"))
    }

    /// Creates an empty group (desired 0) without lifecycle hooks.
    pub(crate) async fn create_plain_group(
        &mut self,
        name: &str,
        max_size: usize,
    ) -> anyhow::Result<()> {
        self.autoscaling(
            "CreateAutoScalingGroup",
            &[
                ("AutoScalingGroupName", name.to_owned()),
                ("MinSize", "0".into()),
                ("MaxSize", max_size.to_string()),
                ("DesiredCapacity", "0".into()),
                ("LaunchTemplate.LaunchTemplateName", "lt-bench".into()),
                ("LaunchTemplate.Version", "$Latest".into()),
                ("AvailabilityZones.member.1", format!("{REGION}a")),
            ],
        )
        .await
    }

    /// An SQS JSON-protocol call.
    async fn sqs(&mut self, op: &str, body: Value) -> anyhow::Result<Value> {
        self.tally("sqs", op);
        let resp = self
            .http
            .post(&self.endpoint)
            .header("x-amz-target", format!("AmazonSQS.{op}"))
            .header("content-type", "application/x-amz-json-1.0")
            .body(body.to_string())
            .send()
            .await
            .with_context(|| op.to_owned())?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{op}: {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("{op}: answer {text:?}"))
    }

    /// Creates a queue and returns (url, arn).
    pub(crate) async fn create_queue(&mut self, name: &str) -> anyhow::Result<(String, String)> {
        let out = self.sqs("CreateQueue", json!({"QueueName": name})).await?;
        let url = out["QueueUrl"]
            .as_str()
            .context("CreateQueue: no QueueUrl")?
            .to_owned();
        Ok((url, format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")))
    }

    /// Messages in the queue: (visible, in flight).
    pub(crate) async fn queue_depth(&mut self, url: &str) -> anyhow::Result<(u64, u64)> {
        let out = self
            .sqs(
                "GetQueueAttributes",
                json!({"QueueUrl": url, "AttributeNames": [
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]}),
            )
            .await?;
        let get = |k: &str| {
            out["Attributes"][k]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            get("ApproximateNumberOfMessages"),
            get("ApproximateNumberOfMessagesNotVisible"),
        ))
    }

    /// Creates an empty group (desired 0) with one launch hook whose target is `queue_arn`.
    pub(crate) async fn create_group(
        &mut self,
        name: &str,
        max_size: usize,
        queue_arn: &str,
    ) -> anyhow::Result<()> {
        let hook = "LifecycleHookSpecificationList.member.1";
        self.autoscaling(
            "CreateAutoScalingGroup",
            &[
                ("AutoScalingGroupName", name.to_owned()),
                ("MinSize", "0".into()),
                ("MaxSize", max_size.to_string()),
                ("DesiredCapacity", "0".into()),
                ("LaunchTemplate.LaunchTemplateName", "lt-bench".into()),
                ("LaunchTemplate.Version", "$Latest".into()),
                ("AvailabilityZones.member.1", format!("{REGION}a")),
                (&format!("{hook}.LifecycleHookName"), "launch".into()),
                (
                    &format!("{hook}.LifecycleTransition"),
                    "autoscaling:EC2_INSTANCE_LAUNCHING".into(),
                ),
                (&format!("{hook}.NotificationTargetARN"), queue_arn.into()),
                (&format!("{hook}.RoleARN"), ROLE.into()),
                (&format!("{hook}.HeartbeatTimeout"), "300".into()),
                (&format!("{hook}.DefaultResult"), "ABANDON".into()),
            ],
        )
        .await
    }

    pub(crate) async fn set_desired(&mut self, group: &str, n: usize) -> anyhow::Result<()> {
        self.autoscaling(
            "SetDesiredCapacity",
            &[
                ("AutoScalingGroupName", group.to_owned()),
                ("DesiredCapacity", n.to_string()),
            ],
        )
        .await
    }

    /// `GET /_sandbox/stats`.
    pub(crate) async fn stats(&self) -> anyhow::Result<Value> {
        let resp = self
            .http
            .get(format!("{}/_sandbox/stats", self.endpoint))
            .send()
            .await
            .context("GET /_sandbox/stats")?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("GET /_sandbox/stats: {status}: {text}");
        }
        serde_json::from_str(&text).context("GET /_sandbox/stats: not JSON")
    }
}

/// Request counts of a `GET /_sandbox/stats` answer.
pub(crate) fn counts(stats: &Value) -> Counts {
    let mut out = Counts::new();
    if let Some(services) = stats["requests"].as_object() {
        for (service, ops) in services {
            if let Some(ops) = ops.as_object() {
                for (op, n) in ops {
                    out.entry(service.clone())
                        .or_default()
                        .insert(op.clone(), n.as_u64().unwrap_or(0));
                }
            }
        }
    }
    out
}

/// `after − before − own`, per operation, dropping zeros: the calls someone else made.
pub(crate) fn delta(
    after: &Counts,
    before: &Counts,
    own_after: &Counts,
    own_before: &Counts,
) -> Counts {
    let get = |c: &Counts, s: &str, o: &str| c.get(s).and_then(|m| m.get(o)).copied().unwrap_or(0);
    let mut out = Counts::new();
    for (s, ops) in after {
        for (o, &n) in ops {
            let own = get(own_after, s, o).saturating_sub(get(own_before, s, o));
            let d = n.saturating_sub(get(before, s, o)).saturating_sub(own);
            if d > 0 {
                out.entry(s.clone()).or_default().insert(o.clone(), d);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pairs: &[(&str, &str, u64)]) -> Counts {
        let mut out = Counts::new();
        for (s, o, n) in pairs {
            out.entry((*s).into()).or_default().insert((*o).into(), *n);
        }
        out
    }

    #[test]
    fn delta_subtracts_the_benchmarks_own_calls() {
        let before = c(&[
            ("sqs", "ReceiveMessage", 3),
            ("sqs", "GetQueueAttributes", 2),
        ]);
        let after = c(&[
            ("sqs", "ReceiveMessage", 13),
            ("sqs", "GetQueueAttributes", 5),
            ("autoscaling", "SetDesiredCapacity", 1),
        ]);
        let own_before = c(&[("sqs", "GetQueueAttributes", 2)]);
        let own_after = c(&[
            ("sqs", "GetQueueAttributes", 5),
            ("autoscaling", "SetDesiredCapacity", 1),
        ]);
        assert_eq!(
            delta(&after, &before, &own_after, &own_before),
            c(&[("sqs", "ReceiveMessage", 10)])
        );
    }

    #[test]
    fn counts_reads_the_stats_shape() {
        let v = json!({"requests": {"sqs": {"ReceiveMessage": 4}}, "resolved_actions": []});
        assert_eq!(counts(&v), c(&[("sqs", "ReceiveMessage", 4)]));
    }
}
