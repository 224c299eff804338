//! Fault injection: throttling errors, server errors and added latency, by service and
//! operation, at a given rate (`POST /_sandbox/faults`).

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::protocol::{AwsError, Fault, Service};

/// What a fault rule does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum FaultKind {
    /// The service's throttling error (`Throttling`, or `ThrottlingException` for JSON
    /// services; SQS `RequestThrottled`).
    Throttle,
    /// An HTTP 500 `InternalFailure` (503 `ServiceUnavailable` with `status: 503`).
    ServerError,
    /// Adds `latency_ms` of real time before the request is handled.
    Latency,
}

/// One rule. `service` and `operation` default to every service and operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultRule {
    #[serde(default)]
    pub(crate) service: Option<Service>,
    #[serde(default)]
    pub(crate) operation: Option<String>,
    pub(crate) kind: FaultKind,
    /// Probability in 0..=1 that a matching request is affected (default 1).
    #[serde(default = "one")]
    pub(crate) rate: f64,
    /// For `latency`: how long to delay, in real milliseconds.
    #[serde(default)]
    pub(crate) latency_ms: u64,
    /// For `server-error`: the HTTP status (500 or 503; default 500).
    #[serde(default)]
    pub(crate) status: Option<u16>,
    /// Stop after affecting this many requests (default: no limit).
    #[serde(default)]
    pub(crate) count: Option<u64>,
    /// How many requests this rule has affected so far.
    #[serde(default, skip_deserializing)]
    pub(crate) hits: u64,
}

fn one() -> f64 {
    1.0
}

impl FaultRule {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.rate) || !self.rate.is_finite() {
            return Err(format!(
                "rate {} is out of range: it must be between 0 and 1",
                self.rate
            ));
        }
        if let Some(s) = self.status
            && !(500..=599).contains(&s)
        {
            return Err(format!("status {s} is not a server error (500..599)"));
        }
        if self.kind == FaultKind::Latency && self.latency_ms > 60_000 {
            return Err("latency_ms may be at most 60000".into());
        }
        Ok(())
    }

    fn matches(&self, service: Service, op: &str) -> bool {
        self.service.is_none_or(|s| s == service)
            && self.operation.as_deref().is_none_or(|o| o == op)
            && self.count.is_none_or(|c| self.hits < c)
    }
}

/// What the faults say about one request.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    pub(crate) delay: Option<Duration>,
    pub(crate) error: Option<AwsError>,
}

/// Applies the rules to a request, counting hits.
pub(crate) fn judge(rules: &mut [FaultRule], service: Service, op: &str, json: bool) -> Verdict {
    let mut v = Verdict::default();
    let mut rng = rand::rng();
    for r in rules.iter_mut() {
        if !r.matches(service, op) || !rng.random_bool(r.rate) {
            continue;
        }
        r.hits += 1;
        match r.kind {
            FaultKind::Latency => v.delay = Some(Duration::from_millis(r.latency_ms)),
            FaultKind::Throttle if v.error.is_none() => {
                v.error = Some(match (service, json) {
                    (Service::Sqs, true) => {
                        AwsError::new(400, "ThrottlingException", "Rate exceeded")
                            .with_query_code("RequestThrottled")
                    }
                    (_, true) => AwsError::new(400, "ThrottlingException", "Rate exceeded"),
                    (Service::S3, _) => {
                        AwsError::new(503, "SlowDown", "Please reduce your request rate.")
                    }
                    _ => AwsError::throttling(),
                })
            }
            FaultKind::ServerError if v.error.is_none() => {
                let status = r.status.unwrap_or(500);
                let code = if status == 503 {
                    "ServiceUnavailable"
                } else {
                    "InternalFailure"
                };
                v.error = Some(
                    AwsError::new(status, code, "injected by the lifehook sandbox")
                        .with_fault(Fault::Receiver),
                );
            }
            _ => {}
        }
    }
    v
}
