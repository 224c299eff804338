//! Who this instance is: instance id, region, Auto Scaling group and target lifecycle
//! state, from IMDSv2 (spec §6).
//!
//! The IMDS client is `aws_config::imds::Client`, so `AWS_EC2_METADATA_SERVICE_ENDPOINT`
//! (and `_MODE`) point it elsewhere, e.g. at an emulator. `AWS_EC2_METADATA_DISABLED=true`
//! makes every lookup fail at once with [`IdentityError::Disabled`], without any request:
//! tests set it so nothing ever probes the real metadata address.

use aws_config::imds::client::error::ImdsError;

/// The metadata paths used here (spec §6.2).
pub mod paths {
    pub const INSTANCE_ID: &str = "/latest/meta-data/instance-id";
    pub const REGION: &str = "/latest/meta-data/placement/region";
    pub const GROUP_TAG: &str = "/latest/meta-data/tags/instance/aws:autoscaling:groupName";
    pub const TARGET_LIFECYCLE_STATE: &str = "/latest/meta-data/autoscaling/target-lifecycle-state";
}

/// Where the group name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSource {
    /// The `aws:autoscaling:groupName` instance tag in metadata.
    MetadataTag,
    /// `DescribeAutoScalingInstances`.
    AutoScaling,
}

/// This instance, as far as it could be discovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub instance_id: String,
    pub region: String,
    /// `None` when the instance belongs to no group (never attached, or detached).
    pub group: Option<(String, GroupSource)>,
    /// `autoscaling/target-lifecycle-state`, `None` where metadata does not have it yet.
    pub target_lifecycle_state: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("instance metadata is disabled (AWS_EC2_METADATA_DISABLED=true)")]
    Disabled,
    #[error("instance metadata lookup of {path} failed: {detail}")]
    Imds { path: &'static str, detail: String },
    #[error("DescribeAutoScalingInstances for {instance_id} failed: {detail}")]
    AutoScaling { instance_id: String, detail: String },
}

/// IMDSv2 lookups.
#[derive(Debug, Clone)]
pub struct Imds {
    client: Option<aws_config::imds::Client>,
}

impl Default for Imds {
    fn default() -> Self {
        Imds::from_env()
    }
}

impl Imds {
    /// A client configured from the standard environment variables and profile. An
    /// explicit `AWS_EC2_METADATA_SERVICE_ENDPOINT` (an emulator's address) is used even
    /// when `AWS_EC2_METADATA_DISABLED=true`, which then keeps only the SDK's credential
    /// chain off the metadata service: that is how tests point an agent at the sandbox's
    /// IMDS of one instance without anything probing the real metadata address.
    pub fn from_env() -> Self {
        if let Ok(ep) = std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            && !ep.trim().is_empty()
            && let Ok(i) = Imds::with_endpoint(ep.trim())
        {
            return i;
        }
        let disabled = std::env::var("AWS_EC2_METADATA_DISABLED")
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
        Imds {
            client: (!disabled).then(|| aws_config::imds::Client::builder().build()),
        }
    }

    /// A client for a given endpoint (an emulator), regardless of the environment.
    pub fn with_endpoint(endpoint: &str) -> Result<Self, IdentityError> {
        let builder = aws_config::imds::Client::builder()
            .endpoint(endpoint)
            .map_err(|e| IdentityError::Imds {
                path: "(endpoint)",
                detail: e.to_string(),
            })?;
        Ok(Imds {
            client: Some(builder.build()),
        })
    }

    /// A required item.
    pub async fn get(&self, path: &'static str) -> Result<String, IdentityError> {
        self.get_optional(path)
            .await?
            .ok_or_else(|| IdentityError::Imds {
                path,
                detail: "not found (404)".into(),
            })
    }

    /// An item that may be absent: 404 is `None`.
    pub async fn get_optional(&self, path: &'static str) -> Result<Option<String>, IdentityError> {
        let client = self.client.as_ref().ok_or(IdentityError::Disabled)?;
        match client.get(path).await {
            Ok(v) => Ok(Some(v.as_ref().trim().to_owned())),
            Err(ImdsError::ErrorResponse(r)) if r.response().status().as_u16() == 404 => Ok(None),
            Err(e) => Err(IdentityError::Imds {
                path,
                detail: e.to_string(),
            }),
        }
    }

    pub async fn instance_id(&self) -> Result<String, IdentityError> {
        self.get(paths::INSTANCE_ID).await
    }

    pub async fn region(&self) -> Result<String, IdentityError> {
        self.get(paths::REGION).await
    }

    /// The group tag; `None` when instance metadata tags are not enabled (404).
    pub async fn group_tag(&self) -> Result<Option<String>, IdentityError> {
        self.get_optional(paths::GROUP_TAG).await
    }

    pub async fn target_lifecycle_state(&self) -> Result<Option<String>, IdentityError> {
        self.get_optional(paths::TARGET_LIFECYCLE_STATE).await
    }
}

/// Discovers this instance: metadata first, then `DescribeAutoScalingInstances` for the
/// group when the metadata tag is not available (spec §6.3).
pub async fn discover(
    imds: &Imds,
    autoscaling: &aws_sdk_autoscaling::Client,
) -> Result<Identity, IdentityError> {
    let instance_id = imds.instance_id().await?;
    let region = imds.region().await?;
    let group = match imds.group_tag().await? {
        Some(g) if !g.is_empty() => Some((g, GroupSource::MetadataTag)),
        _ => group_of(autoscaling, &instance_id)
            .await?
            .map(|g| (g, GroupSource::AutoScaling)),
    };
    let target_lifecycle_state = imds.target_lifecycle_state().await?;
    Ok(Identity {
        instance_id,
        region,
        group,
        target_lifecycle_state,
    })
}

/// The group of an instance, by `DescribeAutoScalingInstances` (`None`: in no group).
pub async fn group_of(
    autoscaling: &aws_sdk_autoscaling::Client,
    instance_id: &str,
) -> Result<Option<String>, IdentityError> {
    let out = autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(instance_id)
        .send()
        .await
        .map_err(|e| IdentityError::AutoScaling {
            instance_id: instance_id.to_owned(),
            detail: crate::lifecycle::describe_sdk(&e),
        })?;
    Ok(out
        .auto_scaling_instances()
        .iter()
        .find(|i| i.instance_id() == Some(instance_id))
        .and_then(|i| i.auto_scaling_group_name())
        .map(str::to_owned))
}
