//! `lifehook status`: the instances waiting on lifecycle hooks, with the deadline each
//! action is held to and the result that applies if nobody answers.
//!
//! Auto Scaling's API says which instances wait and on which hooks, but not when their
//! last heartbeat was: against AWS the heartbeat deadline is shown as a lower bound
//! (`≥`), counted from the start of the wait (spec §2.3: a heartbeat restarts the
//! heartbeat timeout, so the deadline is never earlier than that). Pointed at a lifehook
//! sandbox (an endpoint URL whose `/_sandbox/state` answers), the times are the sandbox's:
//! its virtual clock and each open action's exact deadlines.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lifehook_aws::{HookInfo, WaitingInstance};
use serde_json::{Value, json};

use crate::exit::{Failure, Outcome};
use crate::ops::{AwsArgs, clients, lifecycle_api};
use crate::out::{out, outln};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Columns: WAITED since the instance entered the wait state; HEARTBEAT DUE, when the hook's \
DEFAULT result applies unless a heartbeat or completion comes first (`≥`: at least that \
long, counted from the start of the wait, as Auto Scaling's API does not say when the last \
heartbeat was; exact against a lifehook sandbox); GLOBAL DEADLINE, the hook's global \
timeout (100 × the heartbeat timeout, at most 48 h), which no heartbeat extends.

Exit status: 0 listed (also when nothing waits); 1 the AWS calls failed, or a --group does \
not exist; 2 usage or configuration error.")]
pub(crate) struct StatusArgs {
    /// Only this group (repeatable). Default: every group in the region.
    #[arg(long = "group", short = 'g', value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

pub(crate) async fn status(args: StatusArgs) -> Outcome {
    let clients = clients(&args.aws).await?;
    let api = lifecycle_api(&clients);
    if !args.groups.is_empty() {
        // A group that does not exist has no waiting instances either: say so rather than
        // "no instances are waiting".
        let missing = api
            .missing_groups(&args.groups)
            .await
            .map_err(Failure::runtime)?;
        if !missing.is_empty() {
            return Err(Failure::runtime(format!(
                "no Auto Scaling group named {} (in this region)",
                missing.join(", ")
            )));
        }
    }
    let waiting = api
        .waiting_instances(&args.groups)
        .await
        .map_err(Failure::runtime)?;
    let sandbox = match endpoint(&args.aws) {
        Some(url) => SandboxView::read(&url, clients.region()).await,
        None => None,
    };
    let clock = match &sandbox {
        Some(s) => Clock::Sandbox(s.now),
        None => Clock::System(SystemTime::now()),
    };
    let rows = rows(&waiting, sandbox.as_ref(), clock.now());
    if args.json {
        outln!("{}", status_json(&rows, &clock));
    } else {
        out!("{}", status_table(&rows, &clock));
    }
    Ok(())
}

/// Where Auto Scaling calls go when not to AWS: the flag, else the variables the SDK reads.
fn endpoint(aws: &AwsArgs) -> Option<String> {
    aws.endpoint_url
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_AUTO_SCALING").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty())
}

#[derive(Debug, Clone, Copy)]
enum Clock {
    /// The sandbox's virtual clock.
    Sandbox(SystemTime),
    System(SystemTime),
}

impl Clock {
    fn now(&self) -> SystemTime {
        match *self {
            Clock::Sandbox(t) | Clock::System(t) => t,
        }
    }
}

/// What a lifehook sandbox knows that Auto Scaling's API does not say.
#[derive(Debug)]
struct SandboxView {
    now: SystemTime,
    actions: Vec<OpenAction>,
}

/// One open lifecycle action, as `GET /_sandbox/state` lists it.
#[derive(Debug, Clone, PartialEq)]
struct OpenAction {
    group: String,
    hook: String,
    instance: String,
    started: SystemTime,
    heartbeat_deadline: SystemTime,
    global_deadline: SystemTime,
}

impl SandboxView {
    /// Reads `GET {endpoint}/_sandbox/state`; `None` when the endpoint is not a lifehook
    /// sandbox (or does not answer quickly): then the times are the system clock's.
    async fn read(endpoint: &str, region: &str) -> Option<SandboxView> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(3))
            .build()
            .ok()?;
        let url = format!("{endpoint}/_sandbox/state");
        let resp = match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::debug!(%url, status = %r.status(), "not a lifehook sandbox");
                return None;
            }
            Err(e) => {
                tracing::debug!(%url, error = %e, "not a lifehook sandbox");
                return None;
            }
        };
        let v: Value = resp.json().await.ok()?;
        SandboxView::from_state(&v, region)
    }

    fn from_state(v: &Value, region: &str) -> Option<SandboxView> {
        let now = millis(v.get("now_ms")?)?;
        let actions = v
            .pointer(&format!("/regions/{region}/actions"))
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|a| {
                        Some(OpenAction {
                            group: a.get("group")?.as_str()?.to_owned(),
                            hook: a.get("hook")?.as_str()?.to_owned(),
                            instance: a.get("instance")?.as_str()?.to_owned(),
                            started: millis(a.get("started_ms")?)?,
                            heartbeat_deadline: millis(a.get("heartbeat_deadline_ms")?)?,
                            global_deadline: millis(a.get("global_deadline_ms")?)?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(SandboxView { now, actions })
    }
}

fn millis(v: &Value) -> Option<SystemTime> {
    Some(UNIX_EPOCH + Duration::from_millis(v.as_u64()?))
}

/// How sure the heartbeat deadline is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Due {
    /// Known (the sandbox says): this long from now.
    Exact(Duration),
    /// At least this long from now (counted from the start of the wait).
    AtLeast(Duration),
    /// Heartbeats have pushed it past what can be counted from the start of the wait.
    Unknown,
}

/// One hook an instance waits on.
#[derive(Debug)]
struct Row<'a> {
    instance: &'a WaitingInstance,
    hook: Option<&'a HookInfo>,
    waited: Option<Duration>,
    heartbeat_due: Due,
    global_left: Option<Duration>,
}

/// A row per hook each instance waits on. Against a sandbox, only the hooks whose action
/// is still open (Auto Scaling's API lists every hook of the transition, completed or not).
fn rows<'a>(
    waiting: &'a [WaitingInstance],
    sandbox: Option<&SandboxView>,
    now: SystemTime,
) -> Vec<Row<'a>> {
    let left = |t: SystemTime| t.duration_since(now).unwrap_or(Duration::ZERO);
    let mut rows = Vec::new();
    for w in waiting {
        let open: Vec<&OpenAction> = sandbox
            .map(|s| {
                s.actions
                    .iter()
                    .filter(|a| a.group == w.group && a.instance == w.instance_id)
                    .collect()
            })
            .unwrap_or_default();
        if !open.is_empty() {
            for a in open {
                rows.push(Row {
                    instance: w,
                    hook: w.hooks.iter().find(|h| h.name == a.hook),
                    waited: Some(now.duration_since(a.started).unwrap_or(Duration::ZERO)),
                    heartbeat_due: Due::Exact(left(a.heartbeat_deadline.min(a.global_deadline))),
                    global_left: Some(left(a.global_deadline)),
                });
            }
            continue;
        }
        let waited = w.waited(now);
        if w.hooks.is_empty() {
            rows.push(Row {
                instance: w,
                hook: None,
                waited,
                heartbeat_due: Due::Unknown,
                global_left: None,
            });
        }
        for h in &w.hooks {
            let (heartbeat_due, global_left) = match waited {
                Some(waited) => {
                    let global = h.global_timeout.saturating_sub(waited);
                    let due = match h.heartbeat_timeout.checked_sub(waited) {
                        Some(d) if !d.is_zero() => Due::AtLeast(d),
                        _ => Due::Unknown,
                    };
                    (due, Some(global))
                }
                None => (Due::Unknown, None),
            };
            rows.push(Row {
                instance: w,
                hook: Some(h),
                waited,
                heartbeat_due,
                global_left,
            });
        }
    }
    rows
}

fn status_json(rows: &[Row<'_>], clock: &Clock) -> Value {
    let mut instances: Vec<Value> = Vec::new();
    for r in rows {
        let w = r.instance;
        let hook = r.hook.map(|h| {
            let (due_secs, due_kind) = match r.heartbeat_due {
                Due::Exact(d) => (Some(d.as_secs()), "exact"),
                Due::AtLeast(d) => (Some(d.as_secs()), "at-least"),
                Due::Unknown => (None, "unknown"),
            };
            json!({
                "name": h.name,
                "transition": h.transition.map(|t| t.as_str()),
                "heartbeat_timeout_secs": h.heartbeat_timeout.as_secs(),
                "global_timeout_secs": h.global_timeout.as_secs(),
                "default_result": h.default_result.as_str(),
                "heartbeat_due_secs": due_secs,
                "heartbeat_due": due_kind,
                "global_deadline_secs": r.global_left.map(|d| d.as_secs()),
            })
        });
        let same = instances.last_mut().filter(|v| {
            v["group"] == w.group.as_str() && v["instance_id"] == w.instance_id.as_str()
        });
        match (same, hook) {
            (Some(v), Some(hook)) => {
                if let Some(list) = v["hooks"].as_array_mut() {
                    list.push(hook);
                }
                let left = r.global_left.map(|d| d.as_secs());
                if let (Some(l), Some(prev)) = (left, v["time_left_secs"].as_u64()) {
                    v["time_left_secs"] = json!(l.min(prev));
                }
            }
            (Some(_), None) => {}
            (None, hook) => instances.push(json!({
                "group": w.group,
                "instance_id": w.instance_id,
                "state": w.state.as_str(),
                "hooks": hook.into_iter().collect::<Vec<_>>(),
                "waiting_secs": r.waited.map(|d| d.as_secs()),
                // The soonest global deadline of its hooks.
                "time_left_secs": r.global_left.map(|d| d.as_secs()),
            })),
        }
    }
    let (clock_name, now) = match *clock {
        Clock::Sandbox(t) => ("sandbox", t),
        Clock::System(t) => ("system", t),
    };
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    json!({ "clock": clock_name, "now_ms": now_ms, "instances": instances })
}

const HEADER: [&str; 8] = [
    "GROUP",
    "INSTANCE",
    "STATE",
    "HOOK",
    "WAITED",
    "HEARTBEAT DUE",
    "DEFAULT",
    "GLOBAL DEADLINE",
];

fn status_table(rows: &[Row<'_>], clock: &Clock) -> String {
    if rows.is_empty() {
        return "no instances are waiting on lifecycle hooks\n".to_owned();
    }
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let w = r.instance;
            [
                w.group.clone(),
                w.instance_id.clone(),
                w.state.as_str().to_owned(),
                r.hook.map_or("-".to_owned(), |h| h.name.clone()),
                r.waited.map_or("-".into(), human),
                match r.heartbeat_due {
                    Due::Exact(d) => human(d),
                    Due::AtLeast(d) => format!("≥{}", human(d)),
                    Due::Unknown => "?".to_owned(),
                },
                r.hook
                    .map_or("-".to_owned(), |h| h.default_result.as_str().to_owned()),
                r.global_left.map_or("-".into(), human),
            ]
        })
        .collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            l.push_str(c);
            if i + 1 < cells.len() {
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, &HEADER);
    for r in &cells {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    let _ = match clock {
        Clock::Sandbox(_) => writeln!(
            out,
            "Times on the sandbox's virtual clock. HEARTBEAT DUE: when the DEFAULT result\n\
             applies unless a heartbeat or completion comes first."
        ),
        Clock::System(_) => writeln!(
            out,
            "HEARTBEAT DUE: when the DEFAULT result applies unless a heartbeat or completion\n\
             comes first; ≥: at least, counted from the start of the wait (Auto Scaling's API\n\
             does not say when the last heartbeat was); ?: heartbeats have pushed it later."
        ),
    };
    out
}

/// `1h02m`, `5m07s`, `42s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifehook_model::{LifecycleResult, LifecycleState, LifecycleTransition};

    fn waiting(now: SystemTime) -> WaitingInstance {
        WaitingInstance {
            group: "web".into(),
            instance_id: "i-1".into(),
            state: LifecycleState::PendingWait,
            hooks: vec![HookInfo {
                group: "web".into(),
                name: "launch".into(),
                transition: Some(LifecycleTransition::Launching),
                heartbeat_timeout: Duration::from_secs(300),
                global_timeout: Duration::from_secs(30_000),
                default_result: LifecycleResult::Abandon,
            }],
            since: Some(now - Duration::from_secs(120)),
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(307)), "5m07s");
        assert_eq!(human(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn against_aws_the_heartbeat_deadline_is_a_lower_bound_and_the_global_one_is_labelled() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        let w = [waiting(now)];
        let clock = Clock::System(now);
        let t = status_table(&rows(&w, None, now), &clock);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("GROUP") && lines[0].contains("GLOBAL DEADLINE"));
        let row = lines[1];
        assert!(row.contains("i-1") && row.contains("Pending:Wait"), "{t}");
        // Waited 2m, heartbeat timeout 5m: at least 3m left; ABANDON then; the global
        // deadline 30,000 s − 120 s away.
        assert!(
            row.contains("2m00s") && row.contains("≥3m00s") && row.contains("ABANDON"),
            "{t}"
        );
        assert!(row.ends_with("8h18m"), "{t}");
        assert!(t.contains("≥: at least"), "{t}");
        let j = status_json(&rows(&w, None, now), &clock);
        assert_eq!(j["clock"], "system");
        let hook = &j["instances"][0]["hooks"][0];
        assert_eq!(hook["heartbeat_due"], "at-least");
        assert_eq!(hook["heartbeat_due_secs"], 180);
        assert_eq!(hook["default_result"], "ABANDON");
        assert_eq!(j["instances"][0]["time_left_secs"], 29_880);

        // Past the heartbeat timeout and still waiting: heartbeats came; unknown when.
        let later = now + Duration::from_secs(600);
        let t = status_table(&rows(&w, None, later), &Clock::System(later));
        assert!(t.lines().nth(1).is_some_and(|l| l.contains(" ? ")), "{t}");
        assert_eq!(
            status_table(&[], &clock),
            "no instances are waiting on lifecycle hooks\n"
        );
    }

    #[test]
    fn against_a_sandbox_the_times_are_its_clock_and_its_exact_deadlines() {
        let wall = UNIX_EPOCH + Duration::from_secs(2_000_000);
        let w = [waiting(wall)];
        // The sandbox's clock is far behind the wall clock (a manual clock), and a
        // heartbeat 10 s ago pushed the heartbeat deadline to 290 s from now.
        let state = json!({
            "now_ms": 1_000_000u64,
            "regions": {"us-east-1": {"actions": [{
                "group": "web", "hook": "launch", "instance": "i-1",
                "started_ms": 940_000u64,
                "heartbeat_deadline_ms": 1_290_000u64,
                "global_deadline_ms": 30_940_000u64,
            }, {
                "group": "other", "hook": "launch", "instance": "i-9",
                "started_ms": 0u64, "heartbeat_deadline_ms": 1u64, "global_deadline_ms": 1u64,
            }]}}
        });
        let view = SandboxView::from_state(&state, "us-east-1").expect("a sandbox state");
        assert_eq!(view.actions.len(), 2);
        let clock = Clock::Sandbox(view.now);
        let r = rows(&w, Some(&view), view.now);
        let t = status_table(&r, &clock);
        let row = t.lines().nth(1).expect("a row");
        assert!(row.contains(" 1m00s ") && row.contains(" 4m50s "), "{t}");
        assert!(!row.contains('≥'), "{t}");
        assert!(t.contains("sandbox's virtual clock"), "{t}");
        let j = status_json(&r, &clock);
        assert_eq!(j["clock"], "sandbox");
        assert_eq!(j["now_ms"], 1_000_000);
        assert_eq!(j["instances"][0]["waiting_secs"], 60);
        assert_eq!(j["instances"][0]["hooks"][0]["heartbeat_due"], "exact");
        assert_eq!(j["instances"][0]["hooks"][0]["heartbeat_due_secs"], 290);
        // Another region's state, or not a sandbox's answer at all.
        assert!(SandboxView::from_state(&state, "eu-west-1").is_some_and(|v| v.actions.is_empty()));
        assert!(SandboxView::from_state(&json!({"status": "ok"}), "us-east-1").is_none());
    }
}
