//! The `/_sandbox/ssm/…` control routes and the SSM part of `GET /_sandbox/state`.

use super::ops::{command_json, invocation_json};
use super::*;

// ---------------------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------------------

/// `/_sandbox/ssm/...`: `GET|POST|DELETE outcomes`, `GET commands`. Returns the JSON
/// answer or (status, message).
pub fn control(
    sb: &Sandbox,
    method: &http::Method,
    route: &str,
    body: &[u8],
) -> Result<Value, (u16, String)> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Rules {
        Many { rules: Vec<OutcomeRule> },
        List(Vec<OutcomeRule>),
        One(OutcomeRule),
    }
    match (method.as_str(), route) {
        ("POST", "/ssm/outcomes") => {
            let rules = match serde_json::from_slice::<Rules>(body) {
                Ok(Rules::One(r)) => vec![r],
                Ok(Rules::List(r) | Rules::Many { rules: r }) => r,
                Err(e) => return Err((400, format!("invalid outcome rule: {e}"))),
            };
            for (i, r) in rules.iter().enumerate() {
                r.validate().map_err(|e| (400, format!("rule {i}: {e}")))?;
            }
            let mut w = sb.lock();
            for r in rules {
                let region = r.region.clone().unwrap_or_else(|| DEFAULT_REGION.into());
                w.region(&region).ssm.outcomes.push(r);
            }
            Ok(json!({"rules": all_rules(&w)}))
        }
        ("GET", "/ssm/outcomes") => Ok(json!({"rules": all_rules(&sb.lock())})),
        ("DELETE", "/ssm/outcomes") => {
            let mut w = sb.lock();
            for r in w.regions.values_mut() {
                r.ssm.outcomes.clear();
            }
            Ok(json!({"rules": []}))
        }
        ("GET", "/ssm/commands") => {
            let w = sb.lock();
            let cmds: Vec<Value> = w
                .regions
                .iter()
                .flat_map(|(name, r)| r.ssm.commands.iter().map(move |c| (name, c)))
                .map(|(region, c)| {
                    let mut v = command_json(c);
                    v["Region"] = json!(region);
                    v["Script"] = json!(c.script);
                    v["Invocations"] = c
                        .invocations
                        .iter()
                        .map(|(i, inv)| invocation_json(c, i, inv, true))
                        .collect();
                    v
                })
                .collect();
            Ok(json!({"commands": cmds}))
        }
        _ => Err((
            404,
            format!("no control endpoint {method} /_sandbox{route}; see docs/sandbox.md"),
        )),
    }
}

fn all_rules(w: &World) -> Vec<Value> {
    w.regions
        .iter()
        .flat_map(|(name, r)| {
            r.ssm.outcomes.iter().map(move |o| {
                let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
                v["region"] = json!(name);
                v
            })
        })
        .collect()
}

/// Commands and invocations, for `GET /_sandbox/state`.
pub fn state_json(state: &State) -> Value {
    json!({
        "commands": state.commands.iter().map(|c| {
            let mut v = command_json(c);
            v["Script"] = json!(c.script);
            v
        }).collect::<Vec<_>>(),
        "outcome_rules": state.outcomes.len(),
    })
}
