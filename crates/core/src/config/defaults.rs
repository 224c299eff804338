//! The named defaults and limits of the configuration.

use std::time::Duration;

/// SQS long-poll wait (seconds); 20 is the SQS maximum and the cheapest.
pub const DEFAULT_WAIT_TIME_SECONDS: u32 = 20;
/// Messages per ReceiveMessage call (SQS maximum 10).
pub const DEFAULT_MAX_MESSAGES: u32 = 10;
/// Lifecycle actions handled at once by one process.
pub const DEFAULT_CONCURRENCY: u32 = 16;
/// How long a received message stays invisible before it is extended again.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(120);
/// Heartbeat after this fraction of the hook's HeartbeatTimeout.
pub const DEFAULT_HEARTBEAT_FRACTION: f64 = 0.5;
/// Never heartbeat more often than this.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Stop steps and apply `on_deadline` this long before the global deadline.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(60);
/// A step's timeout when none is given.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(300);
/// First retry delay; doubles each attempt (with jitter) up to [`MAX_BACKOFF`].
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
/// Longest delay between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Retries of `exec` and `probe` steps when none is given.
pub const DEFAULT_RETRIES_LOCAL: u32 = 0;
/// Retries of `http` and `notify` steps when none is given.
pub const DEFAULT_RETRIES_NETWORK: u32 = 3;
/// Captured bytes of each of stdout and stderr of an `exec` step.
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024;
/// How often a `probe` step checks.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// The longest a step may be given: the global timeout cap of a lifecycle action.
pub const MAX_STEP_TIMEOUT: Duration = Duration::from_secs(172_800);
/// SQS caps visibility at 12 hours.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(43_200);
/// The largest `max_concurrency` accepted.
pub const MAX_CONCURRENCY: u32 = 4096;

/// The most a configuration may hold (bytes): `load` reads no further, and refuses a larger
/// input (`lifehook check /dev/zero` must not fill the memory).
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// How problems name a configuration read from standard input (`lifehook check -`).
pub const STDIN_NAME: &str = "<stdin>";

/// The default state directory of the agent.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/lifehook";
/// The default interval of the queue-less mode (the AWS tutorial polls every 5 s).
pub const DEFAULT_IMDS_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Default `setup.max_receive_count`.
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;

/// The default AMI name of an `image` step.
pub const DEFAULT_IMAGE_NAME: &str = "{{ group }}-{{ instance_id }}-{{ date }}";
/// How often `image` polls DescribeImages.
pub const DEFAULT_IMAGE_INTERVAL: Duration = Duration::from_secs(15);
/// An `image` step's timeout when none is given: creating an AMI takes minutes.
pub const DEFAULT_IMAGE_TIMEOUT: Duration = Duration::from_secs(3600);
/// The tag that marks a termination as expected (`only_if = "unexpected-scale-in"`).
pub const DEFAULT_MARKER_TAG: &str = "lifehook:expected-termination";
/// Tags every image of an `image` step carries.
pub const IMAGE_TAG_INSTANCE: &str = "lifehook:instance-id";
pub const IMAGE_TAG_GROUP: &str = "lifehook:group";
/// The action's token: how a second attempt finds the image of the first.
pub const IMAGE_TAG_TOKEN: &str = "lifehook:lifecycle-action-token";
/// How often `target-groups` polls DescribeTargetHealth.
pub const DEFAULT_TARGET_GROUPS_INTERVAL: Duration = Duration::from_secs(5);
/// A `target-groups` step's timeout when none is given: the default health check takes
/// 150 s to call a target healthy, the default deregistration delay is 300 s.
pub const DEFAULT_TARGET_GROUPS_TIMEOUT: Duration = Duration::from_secs(900);

/// How often `ssm-command` polls GetCommandInvocation.
pub const DEFAULT_SSM_INTERVAL: Duration = Duration::from_secs(2);
/// How often `ecs-drain` looks at the instance's tasks.
pub const DEFAULT_ECS_INTERVAL: Duration = Duration::from_secs(10);
/// Permissions of a file written by `file` (and of a new file fetched by `s3-fetch`).
pub const DEFAULT_FILE_MODE: u32 = 0o644;
