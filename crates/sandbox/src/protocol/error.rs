//! AWS-shaped errors, rendered per protocol (spec §4.4, §4.6).

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode};

use super::xml::escape;
use super::{Service, Wire};

/// Who is at fault: the `<Type>` of a Query error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Sender,
    Receiver,
}

/// An error as an AWS service returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AwsError {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) fault: Fault,
    /// For query-compatible JSON services (SQS): the legacy Query code sent in
    /// `x-amzn-query-error`, when it differs from `code`.
    pub(crate) query_code: Option<String>,
}

impl AwsError {
    pub(crate) fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        let fault = if status >= 500 {
            Fault::Receiver
        } else {
            Fault::Sender
        };
        AwsError {
            status,
            code: code.into(),
            message: message.into(),
            fault,
            query_code: None,
        }
    }

    /// `ValidationError`, 400: the catch-all of Query services.
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        AwsError::new(400, "ValidationError", message)
    }

    /// A required parameter is missing, worded as AWS words it.
    pub(crate) fn missing(param: &str) -> Self {
        AwsError::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(param)
        ))
    }

    pub(crate) fn unknown_operation(service: Service, op: &str) -> Self {
        AwsError::new(
            400,
            "InvalidAction",
            format!(
                "The action {op} is not valid for this web service ({service}) in the lifehook sandbox."
            ),
        )
    }

    pub(crate) fn throttling() -> Self {
        AwsError::new(400, "Throttling", "Rate exceeded")
    }

    pub(crate) fn with_query_code(mut self, code: impl Into<String>) -> Self {
        self.query_code = Some(code.into());
        self
    }

    pub(crate) fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }

    /// Renders the error for a request that arrived by `wire` for `service`.
    pub(crate) fn render(&self, service: Service, wire: Wire, request_id: &str) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let fault = match self.fault {
            Fault::Sender => "Sender",
            Fault::Receiver => "Receiver",
        };
        let (content_type, body) = match wire {
            Wire::Query => (
                "text/xml",
                format!(
                    "<ErrorResponse xmlns=\"{}\"><Error><Type>{fault}</Type><Code>{}</Code><Message>{}</Message>{}</Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                    service.xml_namespace(),
                    escape(self.query_code.as_deref().unwrap_or(&self.code)),
                    escape(&self.message),
                    // SQS's Query errors carry an empty <Detail/> (recorded AWS answers:
                    // `"Detail": null`).
                    if service == Service::Sqs {
                        "<Detail/>"
                    } else {
                        ""
                    },
                ),
            ),
            Wire::Ec2Query => (
                "text/xml",
                format!(
                    "<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>",
                    escape(&self.code),
                    escape(&self.message)
                ),
            ),
            Wire::RestXml => (
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{request_id}</RequestId></Error>",
                    escape(&self.code),
                    escape(&self.message)
                ),
            ),
            Wire::Json { version } => {
                let namespace = match service {
                    Service::Sqs => "com.amazonaws.sqs#",
                    _ => "",
                };
                let body = serde_json::json!({
                    "__type": format!("{namespace}{}", self.code),
                    "message": self.message,
                });
                let ct = if version == "1.0" {
                    "application/x-amz-json-1.0"
                } else {
                    "application/x-amz-json-1.1"
                };
                (ct, body.to_string())
            }
        };
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert("x-amzn-requestid", v);
        }
        if let Wire::Json { .. } = wire {
            if let Ok(v) = HeaderValue::from_str(&self.code) {
                h.insert("x-amzn-errortype", v);
            }
            if service == Service::Sqs {
                let q = format!(
                    "{};{fault}",
                    self.query_code.as_deref().unwrap_or(&self.code)
                );
                if let Ok(v) = HeaderValue::from_str(&q) {
                    h.insert("x-amzn-query-error", v);
                }
            }
        }
        resp
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AwsError {}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}
