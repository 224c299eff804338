//! The `/_sandbox/ssm/…` control routes and the SSM part of `GET /_sandbox/state`.

use super::ops::{command_json, invocation_json};
use super::*;
use crate::control::ControlResult;
use http::Method;

/// `/_sandbox/ssm/...`: `GET|POST|DELETE outcomes`, `GET commands`. Returns the JSON
/// answer or (status, message).
pub(crate) fn control(sb: &Sandbox, method: &Method, route: &str, body: &[u8]) -> ControlResult {
    match (method.as_str(), route) {
        ("POST" | "GET" | "DELETE", "/ssm/outcomes") => {
            crate::control::outcome_rules::<OutcomeRule>(sb, method, route, body)
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
        _ => Err(crate::control::no_endpoint(method, route)),
    }
}

/// Commands and invocations, for `GET /_sandbox/state`.
pub(crate) fn state_json(state: &State) -> Value {
    json!({
        "commands": state.commands.iter().map(|c| {
            let mut v = command_json(c);
            v["Script"] = json!(c.script);
            v
        }).collect::<Vec<_>>(),
        "outcome_rules": state.outcomes.len(),
    })
}

crate::control::impl_outcome_rule!(OutcomeRule, "outcome rule", ssm.outcomes);
