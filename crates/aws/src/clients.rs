//! Every AWS client lifehook uses, built from one shared configuration.
//!
//! The configuration is `aws_config::defaults(BehaviorVersion::latest()).load()` and nothing
//! else: credentials, region and endpoints come from the standard chain. In particular no
//! endpoint is ever set in code, because an endpoint set in code would override
//! `AWS_ENDPOINT_URL_<SERVICE>` for every client (see `sdk-build-and-wire.md`,
//! "Endpoint configuration"). Point lifehook at the sandbox with
//! `AWS_ENDPOINT_URL=http://127.0.0.1:4566`, or at one emulated service with, say,
//! `AWS_ENDPOINT_URL_SQS=...`.
//!
//! Clients are created on first use and shared; [`Clients`] is cheap to clone.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_types::SdkConfig;

/// The AWS configuration could not be loaded into something usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no AWS region configured: set AWS_REGION (or a profile region); on EC2 the region comes from instance metadata"
    )]
    NoRegion,
}

/// Lazily created clients over one [`SdkConfig`].
#[derive(Clone, Debug)]
pub struct Clients {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sdk: SdkConfig,
    autoscaling: OnceLock<aws_sdk_autoscaling::Client>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    sns: OnceLock<aws_sdk_sns::Client>,
    eventbridge: OnceLock<aws_sdk_eventbridge::Client>,
    ec2: OnceLock<aws_sdk_ec2::Client>,
    ecs: OnceLock<aws_sdk_ecs::Client>,
    elbv2: OnceLock<aws_sdk_elasticloadbalancingv2::Client>,
    s3: OnceLock<aws_sdk_s3::Client>,
    ssm: OnceLock<aws_sdk_ssm::Client>,
    cloudformation: OnceLock<aws_sdk_cloudformation::Client>,
}

/// Settings given on the command line that take the place of the AWS configuration's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
}

/// How long one attempt of an AWS call may wait for its answer: longer than SQS's longest
/// long poll (20 s), shorter than the shortest heartbeat timeout a hook can have (30 s).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(25);
/// How long opening a connection may take (the SDK's own default).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

impl Clients {
    /// Loads the standard AWS configuration (environment, profile, container or instance
    /// credentials; region from the environment, the profile or instance metadata).
    ///
    /// No call may hang: an attempt with no answer within [`ATTEMPT_TIMEOUT`] fails as a
    /// timeout and is retried like any transient failure (the SDK's retries, then
    /// lifehook's), so a connection that went quiet cannot stall a heartbeat for good.
    pub async fn load() -> Result<Clients, ConfigError> {
        Clients::load_with(&Overrides::default()).await
    }

    /// [`Clients::load`], with what the command line says in place of the configuration's
    /// region, endpoint and profile.
    pub async fn load_with(overrides: &Overrides) -> Result<Clients, ConfigError> {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
        if let Some(profile) = &overrides.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &overrides.region {
            loader = loader.region(aws_types::region::Region::new(region.clone()));
        }
        if let Some(endpoint) = &overrides.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        Clients::from_sdk_config(loader.load().await)
    }

    /// Wraps an already loaded configuration (tests, embedding). Fails without a region,
    /// because every lifehook call is regional and the SDK would fail later, less clearly.
    pub fn from_sdk_config(sdk: SdkConfig) -> Result<Clients, ConfigError> {
        if sdk.region().is_none() {
            return Err(ConfigError::NoRegion);
        }
        Ok(Clients {
            inner: Arc::new(Inner {
                sdk,
                autoscaling: OnceLock::new(),
                sqs: OnceLock::new(),
                sns: OnceLock::new(),
                eventbridge: OnceLock::new(),
                ec2: OnceLock::new(),
                ecs: OnceLock::new(),
                elbv2: OnceLock::new(),
                s3: OnceLock::new(),
                ssm: OnceLock::new(),
                cloudformation: OnceLock::new(),
            }),
        })
    }

    pub fn sdk_config(&self) -> &SdkConfig {
        &self.inner.sdk
    }

    /// The region every client uses.
    pub fn region(&self) -> &str {
        self.inner
            .sdk
            .region()
            .map(|r| r.as_ref())
            .unwrap_or_default()
    }

    pub fn autoscaling(&self) -> &aws_sdk_autoscaling::Client {
        let sdk = &self.inner.sdk;
        self.inner
            .autoscaling
            .get_or_init(|| aws_sdk_autoscaling::Client::new(sdk))
    }

    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        let sdk = &self.inner.sdk;
        self.inner.sqs.get_or_init(|| aws_sdk_sqs::Client::new(sdk))
    }

    pub fn sns(&self) -> &aws_sdk_sns::Client {
        let sdk = &self.inner.sdk;
        self.inner.sns.get_or_init(|| aws_sdk_sns::Client::new(sdk))
    }

    pub fn eventbridge(&self) -> &aws_sdk_eventbridge::Client {
        let sdk = &self.inner.sdk;
        self.inner
            .eventbridge
            .get_or_init(|| aws_sdk_eventbridge::Client::new(sdk))
    }

    pub fn ec2(&self) -> &aws_sdk_ec2::Client {
        let sdk = &self.inner.sdk;
        self.inner.ec2.get_or_init(|| aws_sdk_ec2::Client::new(sdk))
    }

    pub fn ecs(&self) -> &aws_sdk_ecs::Client {
        let sdk = &self.inner.sdk;
        self.inner.ecs.get_or_init(|| aws_sdk_ecs::Client::new(sdk))
    }

    pub fn elbv2(&self) -> &aws_sdk_elasticloadbalancingv2::Client {
        let sdk = &self.inner.sdk;
        self.inner
            .elbv2
            .get_or_init(|| aws_sdk_elasticloadbalancingv2::Client::new(sdk))
    }

    /// S3 uses path-style addressing whenever an endpoint override is configured, so that
    /// an emulator reachable only by host:port works (virtual-hosted style would put the
    /// bucket in the host name).
    pub fn s3(&self) -> &aws_sdk_s3::Client {
        let sdk = &self.inner.sdk;
        self.inner.s3.get_or_init(|| {
            let conf = aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(s3_endpoint_overridden(sdk))
                .build();
            aws_sdk_s3::Client::from_conf(conf)
        })
    }

    pub fn ssm(&self) -> &aws_sdk_ssm::Client {
        let sdk = &self.inner.sdk;
        self.inner.ssm.get_or_init(|| aws_sdk_ssm::Client::new(sdk))
    }

    pub fn cloudformation(&self) -> &aws_sdk_cloudformation::Client {
        let sdk = &self.inner.sdk;
        self.inner
            .cloudformation
            .get_or_init(|| aws_sdk_cloudformation::Client::new(sdk))
    }
}

/// True when S3 requests go to a configured endpoint rather than the AWS default: the
/// global endpoint (`AWS_ENDPOINT_URL` or the profile) or `AWS_ENDPOINT_URL_S3`.
fn s3_endpoint_overridden(sdk: &SdkConfig) -> bool {
    sdk.endpoint_url().is_some()
        || std::env::var("AWS_ENDPOINT_URL_S3").is_ok_and(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_types::region::Region;

    #[test]
    fn a_region_is_required() {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        assert!(matches!(
            Clients::from_sdk_config(sdk),
            Err(ConfigError::NoRegion)
        ));
    }

    #[test]
    fn clients_are_created_once_and_shared() {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .build();
        let c = Clients::from_sdk_config(sdk).unwrap();
        assert_eq!(c.region(), "eu-west-1");
        let a = c.autoscaling() as *const _;
        let c2 = c.clone();
        assert_eq!(a, c2.autoscaling() as *const _);
    }
}
