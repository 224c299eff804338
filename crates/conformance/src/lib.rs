//! Test harness: a sandbox on an ephemeral loopback port and real aws-sdk-rust clients
//! configured for it in code (fake credentials, a region, the endpoint), so that no client
//! ever probes the real instance metadata address.

#![forbid(unsafe_code)]

use std::future::Future;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_types::SdkConfig;
use aws_types::region::Region;
use lifehook_sandbox::{ClockMode, RunningSandbox, SandboxConfig};

/// A running sandbox with clients for it.
pub struct Harness {
    pub sandbox: RunningSandbox,
    pub sdk: SdkConfig,
    pub asg: aws_sdk_autoscaling::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub events: aws_sdk_eventbridge::Client,
    /// S3 with path-style addressing (the sandbox is reached by host:port).
    pub s3: aws_sdk_s3::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub cloudformation: aws_sdk_cloudformation::Client,
    http: reqwest::Client,
}

pub const REGION: &str = "us-east-1";

impl Harness {
    /// A sandbox with a manual clock: time moves only when the test advances it.
    pub async fn manual() -> Harness {
        Harness::with_clock(ClockMode::Manual).await
    }

    pub async fn with_clock(clock: ClockMode) -> Harness {
        let sandbox = lifehook_sandbox::start(SandboxConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            clock,
            ..Default::default()
        })
        .await
        .expect("start sandbox");
        let sdk = sdk_config(&sandbox.endpoint()).await;
        Harness {
            asg: aws_sdk_autoscaling::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            events: aws_sdk_eventbridge::Client::new(&sdk),
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(true)
                    .build(),
            ),
            ssm: aws_sdk_ssm::Client::new(&sdk),
            ecs: aws_sdk_ecs::Client::new(&sdk),
            ec2: aws_sdk_ec2::Client::new(&sdk),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            cloudformation: aws_sdk_cloudformation::Client::new(&sdk),
            sdk,
            sandbox,
            http: reqwest::Client::new(),
        }
    }

    pub fn endpoint(&self) -> String {
        self.sandbox.endpoint()
    }

    /// Advances the virtual clock through the control API.
    pub async fn advance(&self, seconds: f64) {
        let r = self
            .http
            .post(format!("{}/_sandbox/clock/advance", self.endpoint()))
            .json(&serde_json::json!({ "seconds": seconds }))
            .send()
            .await
            .expect("advance");
        assert!(
            r.status().is_success(),
            "advance failed: {}",
            r.text().await.unwrap_or_default()
        );
    }

    /// `GET /_sandbox/state`.
    pub async fn state(&self) -> serde_json::Value {
        self.control_get("state").await
    }

    pub async fn control_get(&self, path: &str) -> serde_json::Value {
        self.http
            .get(format!("{}/_sandbox/{path}", self.endpoint()))
            .send()
            .await
            .expect("control get")
            .json()
            .await
            .expect("control json")
    }

    pub async fn control_post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}/_sandbox/{path}", self.endpoint()))
            .json(&body)
            .send()
            .await
            .expect("control post")
    }

    /// A raw HTTP client, for malformed-request tests.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// SDK configuration for a sandbox endpoint: fake static credentials, a fixed region.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "lifehook-tests",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// Waits until `check` returns `Some`, polling a bounded number of times. Each poll yields
/// to the runtime for a moment; the bound is in attempts, not wall-clock sleeps, and the
/// behaviour under test is driven by the virtual clock, never by waiting.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..500 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Creates group `name` (launch template `lt-web`, zone us-east-1a, 0–10 instances) with
/// `desired` instances and `hooks`.
pub async fn create_group(
    h: &Harness,
    name: &str,
    desired: i32,
    hooks: Vec<aws_sdk_autoscaling::types::LifecycleHookSpecification>,
) {
    use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
    h.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(0)
        .max_size(10)
        .desired_capacity(desired)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name("lt-web")
                .version("$Latest")
                .build(),
        )
        .availability_zones("us-east-1a")
        .set_lifecycle_hook_specification_list(Some(hooks))
        .send()
        .await
        .expect("CreateAutoScalingGroup");
}

/// Instance ids of a group with their lifecycle states.
pub async fn instances(h: &Harness, group: &str) -> Vec<(String, String)> {
    let out = h
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .expect("describe");
    out.auto_scaling_groups()
        .first()
        .map(|g| {
            g.instances()
                .iter()
                .map(|i| {
                    (
                        i.instance_id().unwrap_or_default().to_owned(),
                        i.lifecycle_state()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The id of an instance of `group` waiting in `Pending:Wait`.
pub async fn waiting_instance(h: &Harness, group: &str) -> String {
    eventually("an instance in Pending:Wait", || async {
        instances(h, group)
            .await
            .into_iter()
            .find(|(_, s)| s == "Pending:Wait")
            .map(|(i, _)| i)
    })
    .await
}

/// Creates queue `name`, with a redrive policy (5 receives) to `dlq_arn` when given, and
/// returns its URL.
pub async fn create_queue(h: &Harness, name: &str, dlq_arn: Option<&str>) -> String {
    let mut req = h.sqs.create_queue().queue_name(name);
    if let Some(arn) = dlq_arn {
        req = req.attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": "5"}).to_string(),
        );
    }
    req.send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("url")
}

/// A queue's visible and in-flight message counts (approximate, as SQS reports them).
pub async fn queue_len(h: &Harness, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = h
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let a = out.attributes.unwrap_or_default();
    let n = |k: &A| a.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
    (
        n(&A::ApproximateNumberOfMessages),
        n(&A::ApproximateNumberOfMessagesNotVisible),
    )
}
