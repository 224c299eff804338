//! Elastic Load Balancing v2 target groups in the sandbox (AWS Query, `Version=2015-12-01`,
//! signing name `elasticloadbalancing`), to the depth lifecycle steps that register
//! instances and wait on their health need. There are no load balancers: every target
//! group behaves as if a load balancer sent it traffic.
//!
//! Target health moves on virtual time:
//! - `RegisterTargets` → `initial` (`Elb.RegistrationInProgress`) → `healthy` after
//!   `HealthyThresholdCount × HealthCheckIntervalSeconds` (defaults 5 × 30 s = 150 s);
//!   with `HealthCheckEnabled=false` a target is `unavailable` (`Target.HealthCheckDisabled`).
//! - `DeregisterTargets` → `draining` (`Target.DeregistrationInProgress`) → gone (then
//!   `unused`, `Target.NotRegistered`) after the `deregistration_delay.timeout_seconds`
//!   attribute (default 300 s).
//! - The control API (`POST /_sandbox/elbv2/target-health`) holds a target `unhealthy`
//!   (`Target.FailedHealthChecks`) until it is set `healthy` again.
//!
//! [`asg`] is the Auto Scaling side (spec §2.7): groups' target groups, and the calls the
//! Auto Scaling engine makes as instances enter `InService` and start terminating.

pub mod asg;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::Millis;
use crate::protocol::query::check_len;
use crate::protocol::{AwsError, Params, Service, XmlWriter};
use crate::server::{Input, Reply, RequestCtx};
use crate::world::{Timer as WorldTimer, World};
use crate::{ACCOUNT_ID, Sandbox};

/// Default `HealthCheckIntervalSeconds`.
pub const DEFAULT_INTERVAL_SECS: i64 = 30;
/// Default `HealthyThresholdCount`: a new target is healthy after 5 × 30 s = 150 s.
pub const DEFAULT_HEALTHY_THRESHOLD: i64 = 5;
/// Default `UnhealthyThresholdCount`.
pub const DEFAULT_UNHEALTHY_THRESHOLD: i64 = 2;
/// Default `deregistration_delay.timeout_seconds`.
pub const DEFAULT_DEREGISTRATION_DELAY_SECS: i64 = 300;
/// The most targets one target group holds in the sandbox (AWS: 1000 per ALB).
pub const MAX_TARGETS: usize = 1000;
/// The largest `PageSize` of DescribeTargetGroups.
const MAX_PAGE_SIZE: i64 = 400;

const PROTOCOLS: &[&str] = &["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE"];
const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// ELBv2 state of one region.
#[derive(Debug, Default)]
pub struct State {
    /// By ARN.
    pub target_groups: BTreeMap<String, TargetGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub enabled: bool,
    pub protocol: String,
    /// A port number or `traffic-port`.
    pub port: String,
    pub path: Option<String>,
    pub interval_secs: i64,
    pub timeout_secs: i64,
    pub healthy_threshold: i64,
    pub unhealthy_threshold: i64,
    pub matcher: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub protocol: String,
    pub protocol_version: Option<String>,
    pub port: i64,
    pub vpc_id: String,
    pub target_type: String,
    pub health_check: HealthCheck,
    pub attributes: BTreeMap<String, String>,
    /// Registered (and draining) targets by (instance id, port).
    pub targets: BTreeMap<(String, i64), Target>,
    /// Instances the control API holds unhealthy: (Reason, Description).
    pub forced_unhealthy: BTreeMap<String, (String, String)>,
}

impl TargetGroup {
    /// The deregistration delay in ms.
    pub fn deregistration_delay_ms(&self) -> Millis {
        self.attributes
            .get(DEREGISTRATION_DELAY)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(DEFAULT_DEREGISTRATION_DELAY_SECS as u64)
            .saturating_mul(1000)
    }

    /// How long a new target stays `initial`, in ms.
    pub fn time_to_healthy_ms(&self) -> Millis {
        (self.health_check.healthy_threshold * self.health_check.interval_secs).max(0) as u64 * 1000
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Initial,
    Healthy,
    Unhealthy,
    Unavailable,
    Draining,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Initial => "initial",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Unavailable => "unavailable",
            Health::Draining => "draining",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub health: Health,
    pub reason: Option<String>,
    pub description: Option<String>,
    /// Bumped on every registration and deregistration, so stale timers do nothing.
    pub generation: u64,
}

/// ELBv2 timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    /// A registered target passed `HealthyThresholdCount` checks.
    Healthy {
        target_group: String,
        id: String,
        port: i64,
        generation: u64,
    },
    /// A draining target's deregistration delay is over.
    Drained {
        target_group: String,
        id: String,
        port: i64,
        generation: u64,
    },
}

fn st<'a>(w: &'a mut World, region: &str) -> &'a mut State {
    &mut w.region(region).elbv2
}

pub fn on_timer(w: &mut World, region: &str, t: Timer) {
    let s = st(w, region);
    match t {
        Timer::Healthy {
            target_group,
            id,
            port,
            generation,
        } => {
            let Some(tg) = s.target_groups.get_mut(&target_group) else {
                return;
            };
            let forced = tg.forced_unhealthy.contains_key(&id);
            if let Some(t) = tg.targets.get_mut(&(id, port))
                && t.generation == generation
                && t.health == Health::Initial
                && !forced
            {
                set_health(t, Health::Healthy, None, None);
            }
        }
        Timer::Drained {
            target_group,
            id,
            port,
            generation,
        } => {
            let Some(tg) = s.target_groups.get_mut(&target_group) else {
                return;
            };
            let key = (id, port);
            if tg
                .targets
                .get(&key)
                .is_some_and(|t| t.generation == generation && t.health == Health::Draining)
            {
                tg.targets.remove(&key);
            }
        }
    }
}

fn set_health(t: &mut Target, h: Health, reason: Option<&str>, description: Option<&str>) {
    t.health = h;
    t.reason = reason.map(str::to_owned);
    t.description = description.map(str::to_owned);
}

/// Registers `(id, port)` with the target group `arn`: a new target (or a draining one)
/// starts `initial` and turns `healthy` after the healthy threshold; one already
/// registered keeps its state, as in AWS. Returns false when the group does not exist.
pub fn register(w: &mut World, region: &str, arn: &str, id: &str, port: Option<i64>) -> bool {
    let now = w.now;
    let s = st(w, region);
    let Some(tg) = s.target_groups.get_mut(arn) else {
        return false;
    };
    let port = port.unwrap_or(tg.port);
    let key = (id.to_owned(), port);
    if tg
        .targets
        .get(&key)
        .is_some_and(|t| t.health != Health::Draining)
    {
        return true;
    }
    let generation = tg.targets.get(&key).map_or(0, |t| t.generation) + 1;
    let mut t = Target {
        health: Health::Initial,
        reason: None,
        description: None,
        generation,
    };
    let mut due = None;
    if !tg.health_check.enabled {
        set_health(
            &mut t,
            Health::Unavailable,
            Some("Target.HealthCheckDisabled"),
            Some("Health checks are disabled for the target group"),
        );
    } else if let Some((r, d)) = tg.forced_unhealthy.get(id) {
        let (r, d) = (r.clone(), d.clone());
        set_health(&mut t, Health::Unhealthy, Some(&r), Some(&d));
    } else {
        set_health(
            &mut t,
            Health::Initial,
            Some("Elb.RegistrationInProgress"),
            Some("Target registration is in progress"),
        );
        due = Some(now.saturating_add(tg.time_to_healthy_ms()));
    }
    tg.targets.insert(key, t);
    if let Some(at) = due {
        w.schedule(
            at,
            region,
            WorldTimer::Elbv2(Timer::Healthy {
                target_group: arn.to_owned(),
                id: id.to_owned(),
                port,
                generation,
            }),
        );
    }
    true
}

/// Deregisters `(id, port)` from `arn`: a registered target goes `draining` and is gone
/// after the deregistration delay. Returns the delay in ms when the target was registered
/// (and not already draining), else `None`.
pub fn deregister(
    w: &mut World,
    region: &str,
    arn: &str,
    id: &str,
    port: Option<i64>,
) -> Option<Millis> {
    let now = w.now;
    let s = st(w, region);
    let tg = s.target_groups.get_mut(arn)?;
    let port = port.unwrap_or(tg.port);
    let key = (id.to_owned(), port);
    let delay = tg.deregistration_delay_ms();
    let t = tg.targets.get_mut(&key)?;
    if t.health == Health::Draining {
        return None;
    }
    if delay == 0 {
        tg.targets.remove(&key);
        return Some(0);
    }
    t.generation += 1;
    let generation = t.generation;
    set_health(
        t,
        Health::Draining,
        Some("Target.DeregistrationInProgress"),
        Some("Target deregistration is in progress"),
    );
    w.schedule(
        now.saturating_add(delay),
        region,
        WorldTimer::Elbv2(Timer::Drained {
            target_group: arn.to_owned(),
            id: id.to_owned(),
            port,
            generation,
        }),
    );
    Some(delay)
}

// ---------------------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------------------

/// `POST /_sandbox/elbv2/target-health`: hold a target `unhealthy`, or release it
/// (`healthy`, at once). Returns the JSON answer or (status, message).
pub fn control(
    sb: &Sandbox,
    method: &http::Method,
    route: &str,
    body: &[u8],
) -> Result<Value, (u16, String)> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SetHealth {
        target_group_arn: String,
        instance_id: String,
        state: String,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        description: Option<String>,
    }
    match (method.as_str(), route) {
        ("POST", "/elbv2/target-health") => {
            let b: SetHealth = serde_json::from_slice(body)
                .map_err(|e| (400, format!("invalid target-health body: {e}")))?;
            let region = arn_region(&b.target_group_arn)
                .ok_or_else(|| {
                    (
                        400,
                        format!("not a target group ARN: {}", b.target_group_arn),
                    )
                })?
                .to_owned();
            let mut w = sb.lock();
            let s = st(&mut w, &region);
            let tg = s
                .target_groups
                .get_mut(&b.target_group_arn)
                .ok_or_else(|| (404, format!("no target group {}", b.target_group_arn)))?;
            match b.state.as_str() {
                "unhealthy" => {
                    let reason = b
                        .reason
                        .unwrap_or_else(|| "Target.FailedHealthChecks".into());
                    let desc = b
                        .description
                        .unwrap_or_else(|| "Health checks failed".into());
                    for ((id, _), t) in tg.targets.iter_mut() {
                        if *id == b.instance_id
                            && matches!(t.health, Health::Initial | Health::Healthy)
                        {
                            set_health(t, Health::Unhealthy, Some(&reason), Some(&desc));
                        }
                    }
                    tg.forced_unhealthy
                        .insert(b.instance_id.clone(), (reason, desc));
                }
                "healthy" => {
                    tg.forced_unhealthy.remove(&b.instance_id);
                    for ((id, _), t) in tg.targets.iter_mut() {
                        if *id == b.instance_id
                            && matches!(t.health, Health::Initial | Health::Unhealthy)
                        {
                            set_health(t, Health::Healthy, None, None);
                        }
                    }
                }
                other => {
                    return Err((
                        400,
                        format!("state must be \"unhealthy\" or \"healthy\", got {other:?}"),
                    ));
                }
            }
            let tg = tg.clone();
            Ok(json!({
                "target_group_arn": tg.arn,
                "instance_id": b.instance_id,
                "targets": targets_json(&tg),
            }))
        }
        _ => Err((
            404,
            format!("no control endpoint {method} /_sandbox{route}; see docs/sandbox.md"),
        )),
    }
}

fn targets_json(tg: &TargetGroup) -> Vec<Value> {
    tg.targets
        .iter()
        .map(|((id, port), t)| {
            json!({
                "id": id,
                "port": port,
                "state": t.health.as_str(),
                "reason": t.reason,
            })
        })
        .collect()
}

/// Target groups and their targets, for `GET /_sandbox/state`.
pub fn state_json(state: &State) -> Value {
    json!({
        "target_groups": state.target_groups.values().map(|tg| json!({
            "arn": tg.arn,
            "name": tg.name,
            "deregistration_delay_secs": tg.deregistration_delay_ms() / 1000,
            "seconds_to_healthy": tg.time_to_healthy_ms() / 1000,
            "targets": targets_json(tg),
            "forced_unhealthy": tg.forced_unhealthy.keys().collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The region of a target group ARN.
pub fn arn_region(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:elasticloadbalancing:")?;
    let (region, rest) = rest.split_once(':')?;
    rest.split_once(":targetgroup/")?;
    Some(region)
}

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

type R = Result<String, AwsError>;

pub async fn handle(sb: &Sandbox, ctx: &RequestCtx, input: Input) -> Result<Reply, AwsError> {
    let Input::Query(p) = input else {
        return Err(AwsError::unknown_operation(Service::Elbv2, &ctx.op));
    };
    let mut w = sb.lock();
    dispatch(&mut w, ctx, &p).map(Reply::Xml)
}

fn ns() -> &'static str {
    Service::Elbv2.xml_namespace()
}

fn writer(ctx: &RequestCtx) -> XmlWriter {
    XmlWriter::response(&ctx.op, ns(), true)
}

/// Runs one ELBv2 operation on the world.
pub fn dispatch(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    match ctx.op.as_str() {
        "CreateTargetGroup" => create_target_group(w, ctx, p),
        "DescribeTargetGroups" => describe_target_groups(w, ctx, p),
        "DeleteTargetGroup" => {
            let arn = p.required("TargetGroupArn")?;
            // Deleting a missing target group succeeds, as in AWS (idempotent delete).
            st(w, &ctx.region).target_groups.remove(arn);
            Ok(XmlWriter::empty_result(&ctx.op, ns(), &ctx.request_id))
        }
        "DescribeTargetGroupAttributes" => {
            let tg = existing(w, &ctx.region, p.required("TargetGroupArn")?)?;
            let mut x = writer(ctx);
            write_attributes(&mut x, &tg.attributes);
            Ok(x.finish(&ctx.request_id))
        }
        "ModifyTargetGroupAttributes" => modify_attributes(w, ctx, p),
        "RegisterTargets" => register_targets(w, ctx, p),
        "DeregisterTargets" => deregister_targets(w, ctx, p),
        "DescribeTargetHealth" => describe_target_health(w, ctx, p),
        op => Err(AwsError::unknown_operation(Service::Elbv2, op)),
    }
}

pub fn target_group_not_found() -> AwsError {
    AwsError::new(
        400,
        "TargetGroupNotFound",
        "One or more target groups not found",
    )
}

fn existing<'a>(w: &'a mut World, region: &str, arn: &str) -> Result<&'a TargetGroup, AwsError> {
    st(w, region)
        .target_groups
        .get(arn)
        .ok_or_else(target_group_not_found)
}

fn int_in(p: &Params, name: &str, lo: i64, hi: i64) -> Result<Option<i64>, AwsError> {
    match p.int(name)? {
        Some(v) if !(lo..=hi).contains(&v) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must have value between {lo} and {hi}",
            lower_first(name)
        ))),
        v => Ok(v),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn enum_value(p: &Params, name: &str, allowed: &[&str]) -> Result<Option<String>, AwsError> {
    match p.get(name) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
        Some(v) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            lower_first(name),
            allowed.join(", ")
        ))),
    }
}

fn check_name(name: &str) -> Result<(), AwsError> {
    if name.chars().count() > 32 {
        return Err(AwsError::validation(
            "Target group name cannot be longer than '32' characters",
        ));
    }
    check_len("Name", name, 1, 32)?;
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(AwsError::validation(format!(
            "Target group name '{name}' can only contain characters that are alphanumeric characters or hyphens(-)"
        )));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(AwsError::validation(format!(
            "Target group name '{name}' cannot begin or end with '-'"
        )));
    }
    Ok(())
}

fn default_attributes(protocol: &str) -> BTreeMap<String, String> {
    let http = matches!(protocol, "HTTP" | "HTTPS");
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        m.insert(k.to_owned(), v.to_owned());
    };
    put(
        DEREGISTRATION_DELAY,
        &DEFAULT_DEREGISTRATION_DELAY_SECS.to_string(),
    );
    put("stickiness.enabled", "false");
    if http {
        put("stickiness.type", "lb_cookie");
        put("stickiness.lb_cookie.duration_seconds", "86400");
        put("stickiness.app_cookie.cookie_name", "");
        put("stickiness.app_cookie.duration_seconds", "86400");
        put("slow_start.duration_seconds", "0");
        put("load_balancing.algorithm.type", "round_robin");
        put(
            "load_balancing.cross_zone.enabled",
            "use_load_balancer_configuration",
        );
    } else {
        put("stickiness.type", "source_ip");
        put(
            "deregistration_delay.connection_termination.enabled",
            "false",
        );
        put("preserve_client_ip.enabled", "true");
        put("proxy_protocol_v2.enabled", "false");
        put(
            "load_balancing.cross_zone.enabled",
            "use_load_balancer_configuration",
        );
    }
    m
}

fn create_target_group(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let name = p.required("Name")?.to_owned();
    check_name(&name)?;
    let target_type = enum_value(p, "TargetType", &["instance", "ip", "lambda", "alb"])?
        .unwrap_or_else(|| "instance".into());
    if target_type != "instance" {
        return Err(AwsError::validation(format!(
            "The lifehook sandbox supports only TargetType 'instance', not '{target_type}'"
        )));
    }
    let protocol = enum_value(p, "Protocol", PROTOCOLS)?
        .ok_or_else(|| AwsError::validation("A protocol must be specified"))?;
    let port = int_in(p, "Port", 1, 65535)?
        .ok_or_else(|| AwsError::validation("A port must be specified"))?;
    let vpc_id = p
        .get_nonempty("VpcId")
        .ok_or_else(|| AwsError::validation("A VPC ID must be specified"))?
        .to_owned();
    check_len("VpcId", &vpc_id, 1, 255)?;
    let http = matches!(protocol.as_str(), "HTTP" | "HTTPS");
    let hc_protocol = enum_value(p, "HealthCheckProtocol", PROTOCOLS)?
        .unwrap_or_else(|| if http { protocol.clone() } else { "TCP".into() });
    let hc_http = matches!(hc_protocol.as_str(), "HTTP" | "HTTPS");
    let hc_port = match p.get("HealthCheckPort") {
        None => "traffic-port".to_owned(),
        Some("traffic-port") => "traffic-port".to_owned(),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=65535).contains(&n) => n.to_string(),
            _ => {
                return Err(AwsError::validation(format!(
                    "Health check port '{v}' must be 'traffic-port' or a port number between 1 and 65535"
                )));
            }
        },
    };
    let interval =
        int_in(p, "HealthCheckIntervalSeconds", 5, 300)?.unwrap_or(DEFAULT_INTERVAL_SECS);
    let timeout =
        int_in(p, "HealthCheckTimeoutSeconds", 2, 120)?.unwrap_or(if hc_http { 5 } else { 10 });
    if timeout >= interval {
        return Err(AwsError::validation(format!(
            "Health check timeout '{timeout}' must be smaller than the interval '{interval}'"
        )));
    }
    let healthy = int_in(p, "HealthyThresholdCount", 2, 10)?.unwrap_or(DEFAULT_HEALTHY_THRESHOLD);
    let unhealthy =
        int_in(p, "UnhealthyThresholdCount", 2, 10)?.unwrap_or(DEFAULT_UNHEALTHY_THRESHOLD);
    let path = match p.get("HealthCheckPath") {
        Some(v) => {
            check_len("HealthCheckPath", v, 1, 1024)?;
            if !hc_http {
                return Err(AwsError::validation(
                    "Health check path is only supported for HTTP and HTTPS health checks",
                ));
            }
            Some(v.to_owned())
        }
        None => hc_http.then(|| "/".to_owned()),
    };
    let matcher = match p.get("Matcher.HttpCode") {
        Some(v) => Some(v.to_owned()),
        None => hc_http.then(|| "200".to_owned()),
    };
    let health_check = HealthCheck {
        enabled: p.bool("HealthCheckEnabled")?.unwrap_or(true),
        protocol: hc_protocol,
        port: hc_port,
        path,
        interval_secs: interval,
        timeout_secs: timeout,
        healthy_threshold: healthy,
        unhealthy_threshold: unhealthy,
        matcher,
    };
    let protocol_version = if http {
        Some(
            enum_value(p, "ProtocolVersion", &["HTTP1", "HTTP2", "GRPC"])?
                .unwrap_or_else(|| "HTTP1".into()),
        )
    } else {
        None
    };
    let s = st(w, &ctx.region);
    let tg = if let Some(old) = s.target_groups.values().find(|t| t.name == name) {
        // AWS: creating an identical target group again returns the existing one.
        if old.protocol != protocol
            || old.port != port
            || old.vpc_id != vpc_id
            || old.target_type != target_type
            || old.health_check != health_check
        {
            return Err(AwsError::new(
                400,
                "DuplicateTargetGroupName",
                format!(
                    "A target group with the same name '{name}' exists, but with different settings"
                ),
            ));
        }
        old.clone()
    } else {
        let arn = format!(
            "arn:aws:elasticloadbalancing:{}:{ACCOUNT_ID}:targetgroup/{name}/{}",
            ctx.region,
            &crate::ids::hex32()[..16]
        );
        let tg = TargetGroup {
            arn: arn.clone(),
            name,
            attributes: default_attributes(&protocol),
            protocol,
            protocol_version,
            port,
            vpc_id,
            target_type,
            health_check,
            targets: BTreeMap::new(),
            forced_unhealthy: BTreeMap::new(),
        };
        s.target_groups.insert(arn, tg.clone());
        tg
    };
    let mut x = writer(ctx);
    x.start("TargetGroups");
    write_target_group(&mut x, &tg);
    x.end();
    Ok(x.finish(&ctx.request_id))
}

fn write_target_group(x: &mut XmlWriter, tg: &TargetGroup) {
    let hc = &tg.health_check;
    x.start("member");
    x.elem("TargetGroupArn", &tg.arn);
    x.elem("TargetGroupName", &tg.name);
    x.elem("Protocol", &tg.protocol);
    x.elem("Port", tg.port);
    x.elem("VpcId", &tg.vpc_id);
    x.elem("HealthCheckProtocol", &hc.protocol);
    x.elem("HealthCheckPort", &hc.port);
    x.elem("HealthCheckEnabled", hc.enabled);
    x.elem("HealthCheckIntervalSeconds", hc.interval_secs);
    x.elem("HealthCheckTimeoutSeconds", hc.timeout_secs);
    x.elem("HealthyThresholdCount", hc.healthy_threshold);
    x.elem("UnhealthyThresholdCount", hc.unhealthy_threshold);
    x.opt("HealthCheckPath", hc.path.as_deref());
    if let Some(m) = &hc.matcher {
        x.start("Matcher").elem("HttpCode", m).end();
    }
    x.empty("LoadBalancerArns");
    x.elem("TargetType", &tg.target_type);
    x.opt("ProtocolVersion", tg.protocol_version.as_deref());
    x.elem("IpAddressType", "ipv4");
    x.end();
}

fn describe_target_groups(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arns = p.list("TargetGroupArns");
    let names = p.list("Names");
    if p.get_nonempty("LoadBalancerArn").is_some() {
        return Err(AwsError::new(
            400,
            "LoadBalancerNotFound",
            "One or more load balancers not found",
        ));
    }
    if !arns.is_empty() && !names.is_empty() {
        return Err(AwsError::validation(
            "Target group names and target group ARNs cannot be specified at the same time",
        ));
    }
    let page_size = int_in(p, "PageSize", 1, MAX_PAGE_SIZE)?.unwrap_or(MAX_PAGE_SIZE) as usize;
    let s = st(w, &ctx.region);
    let mut found: Vec<TargetGroup> = if !arns.is_empty() {
        let mut v = Vec::new();
        for a in &arns {
            v.push(
                s.target_groups
                    .get(a)
                    .cloned()
                    .ok_or_else(target_group_not_found)?,
            );
        }
        v
    } else if !names.is_empty() {
        let mut v = Vec::new();
        for n in &names {
            v.push(
                s.target_groups
                    .values()
                    .find(|t| &t.name == n)
                    .cloned()
                    .ok_or_else(target_group_not_found)?,
            );
        }
        v
    } else {
        s.target_groups.values().cloned().collect()
    };
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.dedup_by(|a, b| a.arn == b.arn);
    let start = match p.get_nonempty("Marker") {
        None => 0,
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= found.len())
            .ok_or_else(|| AwsError::validation("The marker is not valid"))?,
    };
    let end = start.saturating_add(page_size).min(found.len());
    let mut x = writer(ctx);
    if start == end {
        x.empty("TargetGroups");
    } else {
        x.start("TargetGroups");
        for tg in found.get(start..end).unwrap_or_default() {
            write_target_group(&mut x, tg);
        }
        x.end();
    }
    if end < found.len() {
        x.elem("NextMarker", end);
    }
    Ok(x.finish(&ctx.request_id))
}

fn write_attributes(x: &mut XmlWriter, attrs: &BTreeMap<String, String>) {
    x.start("Attributes");
    for (k, v) in attrs {
        x.start("member").elem("Key", k).elem("Value", v).end();
    }
    x.end();
}

fn modify_attributes(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TargetGroupArn")?.to_owned();
    let changes = p.struct_list("Attributes");
    if changes.is_empty() {
        return Err(AwsError::missing("Attributes"));
    }
    let tg = existing(w, &ctx.region, &arn)?;
    let mut attrs = tg.attributes.clone();
    for c in &changes {
        let key = c.get("Key").unwrap_or_default();
        let value = c.get("Value").unwrap_or_default();
        if !attrs.contains_key(key) {
            return Err(AwsError::validation(format!(
                "Target group attribute key '{key}' is not recognized"
            )));
        }
        let bad = || {
            AwsError::validation(format!(
                "Target group attribute '{key}' has an invalid value '{value}'"
            ))
        };
        match key {
            DEREGISTRATION_DELAY => {
                let n = value.parse::<i64>().map_err(|_| bad())?;
                if !(0..=3600).contains(&n) {
                    return Err(AwsError::validation(format!(
                        "'{DEREGISTRATION_DELAY}' must be between 0 and 3600 seconds, got '{value}'"
                    )));
                }
            }
            k if k.ends_with(".enabled")
                && !k.starts_with("load_balancing.cross_zone")
                && value != "true"
                && value != "false" =>
            {
                return Err(bad());
            }
            k if k.ends_with("_seconds") => {
                value.parse::<u64>().map_err(|_| bad())?;
            }
            _ => {}
        }
        attrs.insert(key.to_owned(), value.to_owned());
    }
    if let Some(tg) = st(w, &ctx.region).target_groups.get_mut(&arn) {
        tg.attributes = attrs.clone();
    }
    let mut x = writer(ctx);
    write_attributes(&mut x, &attrs);
    Ok(x.finish(&ctx.request_id))
}

/// `Targets.member.N.{Id, Port}`, validated.
fn parse_targets(p: &Params, required: bool) -> Result<Vec<(String, Option<i64>)>, AwsError> {
    let items = p.struct_list("Targets");
    if items.is_empty() && required {
        return Err(AwsError::missing("Targets"));
    }
    let mut out = Vec::new();
    for t in items {
        let id = t
            .get_nonempty("Id")
            .ok_or_else(|| AwsError::missing("Targets.member.N.Id"))?
            .to_owned();
        let port = int_in(&t, "Port", 1, 65535)?;
        let valid = id.strip_prefix("i-").is_some_and(|h| {
            (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if !valid {
            return Err(AwsError::validation(format!(
                "Instance ID '{id}' is not valid"
            )));
        }
        out.push((id, port));
    }
    Ok(out)
}

fn register_targets(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TargetGroupArn")?.to_owned();
    let targets = parse_targets(p, true)?;
    let tg = existing(w, &ctx.region, &arn)?;
    let new = targets
        .iter()
        .filter(|(id, port)| {
            !tg.targets
                .contains_key(&(id.clone(), port.unwrap_or(tg.port)))
        })
        .count();
    if tg.targets.len() + new > MAX_TARGETS {
        return Err(AwsError::new(
            400,
            "TooManyTargets",
            format!(
                "You've reached the limit on the number of targets per target group ({MAX_TARGETS})"
            ),
        ));
    }
    // Instances the sandbox knows to be gone cannot be registered, as in AWS.
    let asg = &w.region(&ctx.region).autoscaling;
    let gone: Vec<String> = targets
        .iter()
        .filter(|(id, _)| {
            asg.instances
                .get(id)
                .is_some_and(|i| i.state == lifehook_model::LifecycleState::Terminated)
        })
        .map(|(id, _)| format!("'{id}'"))
        .collect();
    if !gone.is_empty() {
        return Err(AwsError::new(
            400,
            "InvalidTarget",
            format!(
                "The following targets are not in a running state and cannot be registered: {}",
                gone.join(", ")
            ),
        ));
    }
    for (id, port) in targets {
        register(w, &ctx.region, &arn, &id, port);
    }
    Ok(XmlWriter::empty_result(&ctx.op, ns(), &ctx.request_id))
}

fn deregister_targets(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TargetGroupArn")?.to_owned();
    let targets = parse_targets(p, true)?;
    existing(w, &ctx.region, &arn)?;
    for (id, port) in targets {
        deregister(w, &ctx.region, &arn, &id, port);
    }
    Ok(XmlWriter::empty_result(&ctx.op, ns(), &ctx.request_id))
}

fn describe_target_health(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TargetGroupArn")?.to_owned();
    let wanted = parse_targets(p, false)?;
    let tg = existing(w, &ctx.region, &arn)?;
    let mut rows: Vec<(String, i64, Option<&Target>)> = Vec::new();
    if wanted.is_empty() {
        for ((id, port), t) in &tg.targets {
            rows.push((id.clone(), *port, Some(t)));
        }
    } else {
        for (id, port) in &wanted {
            match port {
                Some(port) => rows.push((id.clone(), *port, tg.targets.get(&(id.clone(), *port)))),
                None => {
                    let registered: Vec<_> = tg
                        .targets
                        .iter()
                        .filter(|((i, _), _)| i == id)
                        .map(|((i, p), t)| (i.clone(), *p, Some(t)))
                        .collect();
                    if registered.is_empty() {
                        rows.push((id.clone(), tg.port, None));
                    } else {
                        rows.extend(registered);
                    }
                }
            }
        }
    }
    let mut x = writer(ctx);
    if rows.is_empty() {
        x.empty("TargetHealthDescriptions");
    } else {
        x.start("TargetHealthDescriptions");
        for (id, port, t) in rows {
            x.start("member");
            x.start("Target").elem("Id", &id).elem("Port", port).end();
            let hc_port = if tg.health_check.port == "traffic-port" {
                port.to_string()
            } else {
                tg.health_check.port.clone()
            };
            x.elem("HealthCheckPort", hc_port);
            x.start("TargetHealth");
            match t {
                Some(t) => {
                    x.elem("State", t.health.as_str());
                    x.opt("Reason", t.reason.as_deref());
                    x.opt("Description", t.description.as_deref());
                }
                None => {
                    x.elem("State", "unused");
                    x.elem("Reason", "Target.NotRegistered");
                    x.elem(
                        "Description",
                        "Target is not registered to the target group",
                    );
                }
            }
            x.end();
            x.end();
        }
        x.end();
    }
    Ok(x.finish(&ctx.request_id))
}
