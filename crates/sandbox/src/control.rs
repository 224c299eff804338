//! The control API under `/_sandbox/` (documented in `docs/sandbox.md`).
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/_sandbox/health` | `{"status":"ok"}` |
//! | GET | `/_sandbox/clock` | the virtual time and clock mode |
//! | POST | `/_sandbox/clock/advance` | `{"seconds": N}`: move time, firing every due timeout in order |
//! | GET | `/_sandbox/state` | groups, instances and their states, open lifecycle actions and deadlines |
//! | POST | `/_sandbox/reset` | forget every resource |
//! | GET/POST/DELETE | `/_sandbox/faults` | list, add (`{"rules":[...]}`) or clear fault rules |
//! | GET/PUT | `/_sandbox/behaviour` | the options for unconfirmed behaviour (spec §7) |
//! | GET | `/_sandbox/stats` | requests served by service and operation; resolved lifecycle actions with start and end times |
//! | GET/POST/DELETE | `/_sandbox/ssm/outcomes` | scripted SSM command outcomes ([`crate::ssm`]) |
//! | GET | `/_sandbox/ssm/commands` | every SSM command sent, with its invocations |
//! | POST | `/_sandbox/ecs/container-instances` | register a container instance without an agent ([`crate::ecs`]) |
//! | POST | `/_sandbox/elbv2/target-health` | hold a target unhealthy or release it ([`crate::elbv2`]) |
//! | GET | `/_sandbox/iam` | enforced policies and every denied request ([`crate::iam`]) |
//! | GET | `/_sandbox/ui/`, `/_sandbox/timeline`, `/_sandbox/timeline.svg`, `/_sandbox/report` | the web view and the timeline ([`crate::ui`]) |
//! | POST/DELETE | `/_sandbox/iam/policies` | enforce `{"policy": {...}, "access_key_id": "..."}` (no key: every key but the admin key), or stop enforcing |

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::iso_millis;
use crate::faults::FaultRule;
use crate::world::Behaviour;
use crate::world::Region;
use crate::{Sandbox, autoscaling, ecs, events, s3, sns, sqs, ssm};

/// What a service's control routes answer: the JSON answer, or (status, message).
pub(crate) type ControlResult = Result<Value, (u16, String)>;

/// 404 for a route under `/_sandbox` that no control endpoint serves.
pub(crate) fn no_endpoint(method: &Method, route: &str) -> (u16, String) {
    (
        404,
        format!("no control endpoint {method} /_sandbox{route}; see docs/sandbox.md"),
    )
}

/// A control route's JSON body, or 400 `invalid JSON body: …`.
pub(crate) fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, (u16, String)> {
    serde_json::from_slice(body).map_err(|e| (400, format!("invalid JSON body: {e}")))
}

/// A region a control route was given: 1–64 ASCII letters, digits and dashes, else 400.
pub(crate) fn check_region(region: &str) -> Result<(), (u16, String)> {
    if crate::world::is_region_name(region) {
        Ok(())
    } else {
        Err((400, format!("invalid region {region:?}")))
    }
}

/// The longest single advance: 30 days of virtual time.
pub(crate) const MAX_ADVANCE_SECS: f64 = 30.0 * 86_400.0;

pub(crate) async fn handle(
    sb: &std::sync::Arc<Sandbox>,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Response {
    let route = path.trim_start_matches("/_sandbox").trim_end_matches('/');
    if let Some(r) = crate::ui::handle(sb, method, route) {
        return r;
    }
    match (method.clone(), route) {
        (Method::GET, "/health") => {
            ok(json!({"status": "ok", "mode": sb.clock.mode().to_string()}))
        }
        (Method::GET, "/clock") => ok(clock_json(sb)),
        (Method::POST, "/clock/advance") => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Advance {
                seconds: f64,
            }
            let a: Advance = match parse(body) {
                Ok(a) => a,
                Err(e) => return *e,
            };
            if !a.seconds.is_finite() || a.seconds < 0.0 || a.seconds > MAX_ADVANCE_SECS {
                return err(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "seconds must be between 0 and {MAX_ADVANCE_SECS} (30 days), got {}",
                        a.seconds
                    ),
                );
            }
            sb.advance((a.seconds * 1000.0).round() as u64);
            ok(clock_json(sb))
        }
        (Method::GET, "/state") => {
            let w = sb.lock();
            let regions: serde_json::Map<String, Value> = w
                .regions
                .iter()
                .map(|(name, r)| (name.clone(), region_json(r, w.now)))
                .collect();
            ok(json!({"now": iso_millis(w.now), "now_ms": w.now, "regions": regions}))
        }
        (Method::POST, "/reset") => {
            sb.lock().reset();
            sb.faults().clear();
            ok(json!({"status": "reset"}))
        }
        (Method::GET, "/faults") => ok(json!({"rules": *sb.faults()})),
        (Method::DELETE, "/faults") => {
            sb.faults().clear();
            ok(json!({"rules": []}))
        }
        (Method::POST, "/faults") => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Rules {
                rules: Vec<FaultRule>,
            }
            let r: Rules = match parse(body) {
                Ok(r) => r,
                Err(e) => return *e,
            };
            for (i, rule) in r.rules.iter().enumerate() {
                if let Err(e) = rule.validate() {
                    return err(StatusCode::BAD_REQUEST, format!("rules[{i}]: {e}"));
                }
            }
            let mut f = sb.faults();
            f.extend(r.rules);
            ok(json!({"rules": *f}))
        }
        (Method::GET, "/stats") => ok(stats_json(sb)),
        // Only the routes IAM serves go there, so that any other path under `/iam` gets
        // the generic answer below.
        (Method::GET, "/iam") | (Method::POST | Method::DELETE, "/iam/policies") => {
            service_control(crate::iam::control(sb, method, route, body))
        }
        (Method::GET, "/behaviour") => {
            ok(serde_json::to_value(&sb.lock().behaviour).unwrap_or(Value::Null))
        }
        (Method::PUT, "/behaviour") => {
            let b: Behaviour = match parse(body) {
                Ok(b) => b,
                Err(e) => return *e,
            };
            let mut w = sb.lock();
            w.behaviour = b;
            ok(serde_json::to_value(&w.behaviour).unwrap_or(Value::Null))
        }
        (_, r) if r.starts_with("/ssm/") => service_control(ssm::control(sb, method, r, body)),
        (_, r) if r.starts_with("/ecs/") => service_control(ecs::control(sb, method, r, body)),
        (_, r) if r.starts_with("/ec2/") => {
            service_control(crate::ec2::control(sb, method, r, body))
        }
        (_, r) if r.starts_with("/elbv2/") => {
            service_control(crate::elbv2::control(sb, method, r, body))
        }
        (_, r) if r.starts_with("/lambda/") => {
            service_control(crate::lambda::control(sb, method, r, body))
        }
        (_, r) if r.starts_with("/cloudformation/") => {
            service_control(crate::cloudformation::control(sb, method, r, body))
        }
        _ => err(
            StatusCode::NOT_FOUND,
            format!("no control endpoint {method} {path}; see docs/sandbox.md"),
        ),
    }
}

/// One region in `GET /_sandbox/state`: Auto Scaling's view (groups, instances, open
/// lifecycle actions) plus the queues, topics and rules.
fn region_json(r: &Region, now: crate::clock::Millis) -> Value {
    let mut v = autoscaling::state_json(r, now);
    if let Value::Object(m) = &mut v {
        m.insert("sqs".into(), sqs::state_json(&r.sqs, now));
        m.insert("sns".into(), sns::state_json(&r.sns));
        m.insert("events".into(), events::state_json(&r.events));
        m.insert("s3".into(), s3::state_json(&r.s3));
        m.insert("ssm".into(), ssm::state_json(&r.ssm));
        m.insert("ecs".into(), ecs::state_json(&r.ecs));
        m.insert("ec2".into(), crate::ec2::state_json(r));
        m.insert("elbv2".into(), crate::elbv2::state_json(&r.elbv2));
        m.insert(
            "cloudformation".into(),
            crate::cloudformation::state_json(&r.name, &r.cloudformation),
        );
        m.insert(
            "lambda".into(),
            crate::lambda::state_json(&r.name, &r.lambda, now),
        );
    }
    v
}

/// `GET /_sandbox/stats`: requests served by service and operation, and every resolved
/// lifecycle action (at most [`autoscaling::engine::MAX_RESOLVED_LOG`] per region) with its
/// start and end in virtual milliseconds.
fn stats_json(sb: &Sandbox) -> Value {
    let requests = sb.request_counts();
    let w = sb.lock();
    let now = w.now;
    let resolved: Vec<Value> = w
        .regions
        .iter()
        .flat_map(|(name, r)| {
            r.autoscaling.resolved.iter().map(move |a| {
                let how = autoscaling::timeline::how_str(a.how);
                json!({
                    "region": name,
                    "group": a.group,
                    "hook": a.hook,
                    "instance": a.instance,
                    "transition": a.transition.as_str(),
                    "started_ms": a.started,
                    "resolved_ms": a.resolved,
                    "result": a.result.as_str(),
                    "how": how,
                })
            })
        })
        .collect();
    drop(w);
    let denied = sb.iam().denials().to_vec();
    json!({"now_ms": now, "requests": requests, "resolved_actions": resolved, "denied": denied})
}

/// The answer of a service's own control endpoint (`/_sandbox/ssm/…`, `/_sandbox/ecs/…`).
fn service_control(r: Result<Value, (u16, String)>) -> Response {
    match r {
        Ok(v) => ok(v),
        Err((status, m)) => err(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            m,
        ),
    }
}

fn clock_json(sb: &Sandbox) -> Value {
    let now = sb.lock().now;
    json!({"now": iso_millis(now), "now_ms": now, "mode": sb.clock.mode().to_string()})
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(err(
            StatusCode::BAD_REQUEST,
            format!("invalid JSON body: {e}"),
        ))
    })
}

fn ok(v: Value) -> Response {
    respond(StatusCode::OK, v)
}

fn err(status: StatusCode, message: String) -> Response {
    respond(status, json!({"error": message}))
}

/// A JSON response (also the Lambda Runtime API's).
pub(crate) fn respond(status: StatusCode, v: Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A kind of scripted outcome rule (SSM command outcomes, EC2 image outcomes): kept per
/// region, served by [`outcome_rules`].
pub(crate) trait OutcomeRule: serde::Serialize + serde::de::DeserializeOwned {
    /// What a body that is not a rule is called in the error (`invalid {WHAT}: …`).
    const WHAT: &'static str;
    /// The region the rule applies to (the default region when `None`).
    fn region(&self) -> Option<&str>;
    fn validate(&self) -> Result<(), String>;
    /// A region's rules of this kind, in the order they were added.
    fn rules(region: &Region) -> &[Self];
    fn rules_mut(region: &mut Region) -> &mut Vec<Self>;
}

/// Implements [`OutcomeRule`] for a rule type with an optional `region` field and its own
/// `validate`, kept in the [`Region`] field at `$($rules).+`.
macro_rules! impl_outcome_rule {
    ($ty:ident, $what:literal, $($rules:ident).+) => {
        impl crate::control::OutcomeRule for $ty {
            const WHAT: &'static str = $what;
            fn region(&self) -> Option<&str> {
                self.region.as_deref()
            }
            fn validate(&self) -> Result<(), String> {
                $ty::validate(self)
            }
            fn rules(region: &crate::world::Region) -> &[Self] {
                &region.$($rules).+
            }
            fn rules_mut(region: &mut crate::world::Region) -> &mut Vec<Self> {
                &mut region.$($rules).+
            }
        }
    };
}
pub(crate) use impl_outcome_rule;

/// `GET|POST|DELETE /_sandbox/<service>/…outcomes` for one kind of rule: list every rule
/// (with its region), add rules (one, a list, or `{"rules": [...]}`, all validated before
/// any is added), or forget them all. Returns the JSON answer or (status, message).
pub(crate) fn outcome_rules<R: OutcomeRule>(
    sb: &Sandbox,
    method: &Method,
    route: &str,
    body: &[u8],
) -> ControlResult {
    // The name `Rules` shows in serde's error for a body that matches no variant.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Rules<R> {
        Many { rules: Vec<R> },
        List(Vec<R>),
        One(R),
    }
    match method.as_str() {
        "POST" => {
            let rules = match serde_json::from_slice::<Rules<R>>(body) {
                Ok(Rules::One(r)) => vec![r],
                Ok(Rules::List(r) | Rules::Many { rules: r }) => r,
                Err(e) => return Err((400, format!("invalid {}: {e}", R::WHAT))),
            };
            for (i, r) in rules.iter().enumerate() {
                r.validate().map_err(|e| (400, format!("rule {i}: {e}")))?;
            }
            let mut w = sb.lock();
            for r in rules {
                let region = r.region().unwrap_or(crate::DEFAULT_REGION).to_owned();
                R::rules_mut(w.region(&region)).push(r);
            }
            Ok(json!({"rules": all_outcome_rules::<R>(&w)}))
        }
        "GET" => Ok(json!({"rules": all_outcome_rules::<R>(&sb.lock())})),
        "DELETE" => {
            let mut w = sb.lock();
            for r in w.regions.values_mut() {
                R::rules_mut(r).clear();
            }
            Ok(json!({"rules": []}))
        }
        _ => Err(no_endpoint(method, route)),
    }
}

/// Every rule of one kind, region by region, each with its `region`.
fn all_outcome_rules<R: OutcomeRule>(w: &crate::World) -> Vec<Value> {
    w.regions
        .iter()
        .flat_map(|(name, r)| {
            R::rules(r).iter().map(move |o| {
                let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
                v["region"] = json!(name);
                v
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClockMode;

    fn sandbox() -> std::sync::Arc<Sandbox> {
        Sandbox::new(ClockMode::Manual, Behaviour::default())
    }

    #[test]
    fn outcome_rules_are_added_listed_with_their_region_and_cleared() {
        let sb = sandbox();
        let route = "/ssm/outcomes";
        let added = outcome_rules::<crate::ssm::OutcomeRule>(
            &sb,
            &Method::POST,
            route,
            br#"{"rules": [{"status": "Failed"}, {"region": "eu-west-1"}]}"#,
        )
        .unwrap();
        assert_eq!(added["rules"].as_array().unwrap().len(), 2);
        let listed =
            outcome_rules::<crate::ssm::OutcomeRule>(&sb, &Method::GET, route, b"").unwrap();
        let regions: Vec<&str> = listed["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["region"].as_str().unwrap())
            .collect();
        assert_eq!(regions, ["eu-west-1", "us-east-1"]);
        let cleared =
            outcome_rules::<crate::ssm::OutcomeRule>(&sb, &Method::DELETE, route, b"").unwrap();
        assert_eq!(cleared, json!({"rules": []}));
    }

    #[test]
    fn outcome_rule_errors_name_the_kind_and_the_rule() {
        let sb = sandbox();
        let (status, m) =
            outcome_rules::<crate::ssm::OutcomeRule>(&sb, &Method::POST, "/ssm/outcomes", b"42")
                .unwrap_err();
        assert_eq!(status, 400);
        assert_eq!(
            m,
            "invalid outcome rule: data did not match any variant of untagged enum Rules"
        );
        let (_, m) = outcome_rules::<crate::ec2::ImageOutcome>(
            &sb,
            &Method::POST,
            "/ec2/image-outcomes",
            br#"[{"state": "available"}, {"state": "gone"}]"#,
        )
        .unwrap_err();
        assert!(
            m.starts_with("rule 1: state must be available or failed"),
            "{m}"
        );
    }
}
