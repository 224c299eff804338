//! The `/_sandbox/iam…` control routes: the policies in force and the denials so far.

use crate::control::ControlResult;
use http::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::Sandbox;

/// | method | route | |
/// |---|---|---|
/// | GET | `/iam` | enforced policies and every denied request |
/// | POST | `/iam/policies` | enforce `{"policy": {...}, "access_key_id": "..."}` (no key: every key but the admin key) |
/// | DELETE | `/iam/policies` | stop enforcing |
pub(crate) fn control(sb: &Sandbox, method: &Method, route: &str, body: &[u8]) -> ControlResult {
    match (method.clone(), route) {
        (http::Method::GET, "/iam") => Ok(sb.iam().to_json()),
        (http::Method::DELETE, "/iam/policies") => {
            sb.iam().clear();
            Ok(sb.iam().to_json())
        }
        (http::Method::POST, "/iam/policies") => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Bind {
                #[serde(default)]
                access_key_id: Option<String>,
                policy: Value,
            }
            let b: Bind = crate::control::json_body(body)?;
            match sb.enforce_policy(b.access_key_id.as_deref(), b.policy) {
                Ok(()) => Ok(sb.iam().to_json()),
                Err(e) => Err((400, format!("policy: {e}"))),
            }
        }
        _ => Err(crate::control::no_endpoint(method, route)),
    }
}
