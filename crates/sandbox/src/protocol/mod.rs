//! The AWS wire protocols the sandbox speaks: AWS Query and EC2 Query (form bodies, XML
//! responses), JSON 1.0/1.1 (`X-Amz-Target`), and how errors are shaped for each
//! (spec §4.2–§4.4, §4.6), and what each service's operations take and answer
//! ([`RequestCtx`], [`Input`], [`Reply`]).

pub(crate) mod error;
pub(crate) mod json;
pub(crate) mod query;
pub(crate) mod xml;

pub(crate) use error::{AwsError, Fault};
pub(crate) use query::Params;
pub(crate) use xml::XmlWriter;

/// Answers a request to a service that speaks AWS Query (or EC2 Query) only: `op` runs it on
/// the locked world; any other protocol is an unknown operation.
pub(crate) fn answer_query(
    sb: &crate::Sandbox,
    ctx: &RequestCtx,
    input: Input,
    op: fn(&mut crate::world::World, &RequestCtx, &Params) -> Result<String, AwsError>,
) -> Result<Reply, AwsError> {
    let Input::Query(p) = input else {
        return Err(AwsError::unknown_operation(ctx.service, &ctx.op));
    };
    let mut w = sb.lock();
    op(&mut w, ctx, &p).map(Reply::Xml)
}

/// Answers a request to a service that speaks JSON only: `op` runs it on the locked world;
/// any other protocol is an unknown operation.
pub(crate) fn answer_json(
    sb: &crate::Sandbox,
    ctx: &RequestCtx,
    input: Input,
    op: fn(
        &mut crate::world::World,
        &RequestCtx,
        &json::JsonBody,
    ) -> Result<serde_json::Value, AwsError>,
) -> Result<Reply, AwsError> {
    let Input::Json(b) = input else {
        return Err(AwsError::unknown_operation(ctx.service, &ctx.op));
    };
    let mut w = sb.lock();
    op(&mut w, ctx, &b).map(Reply::Json)
}

/// The services the sandbox answers, and how each is addressed on the wire.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Service {
    #[serde(rename = "autoscaling")]
    AutoScaling,
    Sqs,
    Sns,
    Events,
    Ec2,
    Ecs,
    #[serde(rename = "elasticloadbalancing")]
    Elbv2,
    S3,
    Ssm,
    Sts,
    CloudFormation,
}

impl Service {
    /// The SigV4 signing name (the service in the credential scope).
    pub(crate) fn signing_name(self) -> &'static str {
        match self {
            Service::AutoScaling => "autoscaling",
            Service::Sqs => "sqs",
            Service::Sns => "sns",
            Service::Events => "events",
            Service::Ec2 => "ec2",
            Service::Ecs => "ecs",
            Service::Elbv2 => "elasticloadbalancing",
            Service::S3 => "s3",
            Service::Ssm => "ssm",
            Service::Sts => "sts",
            Service::CloudFormation => "cloudformation",
        }
    }

    pub(crate) fn from_signing_name(s: &str) -> Option<Service> {
        Some(match s {
            "autoscaling" => Service::AutoScaling,
            "sqs" => Service::Sqs,
            "sns" => Service::Sns,
            "events" => Service::Events,
            "ec2" => Service::Ec2,
            "ecs" => Service::Ecs,
            "elasticloadbalancing" => Service::Elbv2,
            "s3" => Service::S3,
            "ssm" => Service::Ssm,
            "sts" => Service::Sts,
            "cloudformation" => Service::CloudFormation,
            _ => return None,
        })
    }

    /// The service a Query `Version=` belongs to.
    pub(crate) fn from_query_version(v: &str) -> Option<Service> {
        Some(match v {
            "2011-01-01" => Service::AutoScaling,
            "2012-11-05" => Service::Sqs,
            "2010-03-31" => Service::Sns,
            "2016-11-15" => Service::Ec2,
            "2015-12-01" => Service::Elbv2,
            "2011-06-15" => Service::Sts,
            "2010-05-15" => Service::CloudFormation,
            _ => return None,
        })
    }

    /// The service an `X-Amz-Target` prefix belongs to.
    pub(crate) fn from_target_prefix(p: &str) -> Option<Service> {
        Some(match p {
            "AmazonSQS" => Service::Sqs,
            "AWSEvents" => Service::Events,
            "AmazonEC2ContainerServiceV20141113" => Service::Ecs,
            "AmazonSSM" => Service::Ssm,
            _ => return None,
        })
    }

    /// The XML namespace of a Query service's responses.
    pub(crate) fn xml_namespace(self) -> &'static str {
        match self {
            Service::AutoScaling => "http://autoscaling.amazonaws.com/doc/2011-01-01/",
            Service::Sqs => "http://queue.amazonaws.com/doc/2012-11-05/",
            Service::Sns => "http://sns.amazonaws.com/doc/2010-03-31/",
            Service::Ec2 => "http://ec2.amazonaws.com/doc/2016-11-15/",
            Service::Elbv2 => "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
            Service::Sts => "https://sts.amazonaws.com/doc/2011-06-15/",
            Service::S3 => "http://s3.amazonaws.com/doc/2006-03-01/",
            Service::CloudFormation => "http://cloudformation.amazonaws.com/doc/2010-05-15/",
            Service::Events | Service::Ecs | Service::Ssm => "",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.signing_name())
    }
}

/// How a request arrived, which decides how its answer and its errors are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// AWS Query: form body, XML answer, `<ErrorResponse>` errors.
    Query,
    /// EC2 Query: like Query, but `<Response><Errors>` errors.
    Ec2Query,
    /// JSON 1.0 (SQS) or 1.1: `X-Amz-Target`, JSON answer, `__type` errors.
    Json { version: &'static str },
    /// REST-XML (S3).
    RestXml,
}

/// What a request is, once recognised.
#[derive(Debug, Clone)]
pub(crate) struct RequestCtx {
    pub(crate) request_id: String,
    pub(crate) region: String,
    /// `host:port` the client used, for URLs the sandbox hands out (queue URLs).
    pub(crate) host: String,
    /// The request path (SQS Query clients may post to the queue URL itself).
    pub(crate) path: String,
    pub(crate) service: Service,
    pub(crate) wire: Wire,
    pub(crate) op: String,
}

/// The page of `items` from offset `start`, at most `size` long, and the next page's token
/// (its offset) if more follow.
pub(crate) fn page_at<T>(items: Vec<T>, start: usize, size: usize) -> (Vec<T>, Option<String>) {
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = (start + page.len() < total).then(|| (start + page.len()).to_string());
    (page, next)
}

/// What a Query operation reads of its request: its name, request id and region.
pub(crate) struct OpCx<'a> {
    pub(crate) op: &'a str,
    pub(crate) rid: &'a str,
    pub(crate) region: &'a str,
}

impl RequestCtx {
    pub(crate) fn op_cx(&self) -> OpCx<'_> {
        OpCx {
            op: &self.op,
            rid: &self.request_id,
            region: &self.region,
        }
    }
}

/// A request's decoded input.
#[derive(Debug)]
pub(crate) enum Input {
    Query(Params),
    Json(json::JsonBody),
}

/// A successful answer.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A Query/EC2 XML document.
    Xml(String),
    /// A JSON-protocol answer.
    Json(serde_json::Value),
}
