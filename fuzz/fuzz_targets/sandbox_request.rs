//! Fuzzes the sandbox's request recognition and parsers: the first bytes choose the
//! headers, the rest is the body. Nothing may panic.
#![no_main]

use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use lifehook_sandbox::protocol::Params;
use lifehook_sandbox::protocol::json::JsonBody;
use lifehook_sandbox::server::recognise;

fuzz_target!(|data: &[u8]| {
    let (selector, body) = data.split_first().unwrap_or((&0, &[]));
    let mut headers = HeaderMap::new();
    match selector % 4 {
        0 => {
            headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
        }
        1 => {
            headers.insert("x-amz-target", HeaderValue::from_static("AmazonSQS.ReceiveMessage"));
        }
        2 => {
            headers.insert("x-amz-target", HeaderValue::from_static("AWSEvents.PutEvents"));
        }
        _ => {
            headers.insert(
                "authorization",
                HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=a/b/us-east-1/autoscaling/aws4_request"),
            );
            headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
        }
    }
    let _ = recognise(&Method::POST, &"/".parse().unwrap(), &headers, body, "r".into(), "h".into());
    if let Ok(p) = Params::parse(body) {
        let _ = p.list("Names");
        let _ = p.struct_list("LifecycleHookSpecificationList");
        let _ = p.int("MaxRecords");
        let _ = p.bool("ForceDelete");
    }
    let _ = JsonBody::parse(body);
});
