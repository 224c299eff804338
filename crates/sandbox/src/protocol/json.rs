//! JSON-protocol helpers (awsJson1_0 / awsJson1_1): typed access to request members with
//! AWS-shaped validation errors.

use serde_json::{Map, Value};

use super::AwsError;

/// A decoded JSON request body (an object).
#[derive(Debug, Clone, Default)]
pub(crate) struct JsonBody(pub Map<String, Value>);

impl JsonBody {
    /// Decodes a body; an empty body is an empty object.
    pub(crate) fn parse(bytes: &[u8]) -> Result<JsonBody, AwsError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Map::new()));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => Ok(JsonBody(m)),
            Ok(_) => Err(serialization("the request body must be a JSON object")),
            Err(e) => Err(serialization(format!(
                "the request body is not valid JSON: {e}"
            ))),
        }
    }

    pub(crate) fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    pub(crate) fn str(&self, k: &str) -> Result<Option<&str>, AwsError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid_type(k, "a string")),
        }
    }

    pub(crate) fn required_str(&self, k: &str) -> Result<&str, AwsError> {
        self.str(k)?.ok_or_else(|| missing(k))
    }

    pub(crate) fn int(&self, k: &str) -> Result<Option<i64>, AwsError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| invalid_type(k, "an integer")),
            // Query-compatible clients sometimes send numbers as strings.
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| invalid_type(k, "an integer")),
            Some(_) => Err(invalid_type(k, "an integer")),
        }
    }

    pub(crate) fn bool(&self, k: &str) -> Result<Option<bool>, AwsError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid_type(k, "a boolean")),
        }
    }

    pub(crate) fn str_list(&self, k: &str) -> Result<Vec<String>, AwsError> {
        match self.get(k) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| invalid_type(k, "a list of strings"))
                })
                .collect(),
            Some(_) => Err(invalid_type(k, "a list of strings")),
        }
    }

    pub(crate) fn object(&self, k: &str) -> Result<Option<&Map<String, Value>>, AwsError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(invalid_type(k, "an object")),
        }
    }

    pub(crate) fn array(&self, k: &str) -> Result<&[Value], AwsError> {
        match self.get(k) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(invalid_type(k, "a list")),
        }
    }
}

/// A body that cannot be decoded: `SerializationException`.
pub(crate) fn serialization(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "SerializationException", message)
}

fn invalid_type(k: &str, want: &str) -> AwsError {
    serialization(format!("member {k} must be {want}"))
}

fn missing(k: &str) -> AwsError {
    AwsError::new(
        400,
        "ValidationException",
        format!(
            "1 validation error detected: Value null at '{k}' failed to satisfy constraint: Member must not be null"
        ),
    )
}
