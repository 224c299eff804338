//! STS on the wire, as boto3, the AWS CLI and aws-sdk-rust send it: a form `POST` signed
//! for `sts` (or unsigned, recognised by `Version=2011-06-15`).

use serde_json::json;

use crate::{ClockMode, SandboxConfig};

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

fn auth(akid: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={akid}/20261203/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=0"
    )
}

async fn sandbox() -> crate::RunningSandbox {
    crate::start(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        clock: ClockMode::Manual,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn post(sb: &crate::RunningSandbox, auth: Option<&str>, body: &str) -> (u16, String) {
    let mut r = reqwest::Client::new()
        .post(sb.endpoint())
        .header("content-type", FORM)
        .body(body.to_owned());
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn get_caller_identity_names_the_account_and_the_caller() {
    let sb = sandbox().await;
    let (status, xml) = post(
        &sb,
        Some(&auth("AKIDEXAMPLE")),
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    assert!(
        xml.starts_with(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>"
        ),
        "{xml}"
    );
    assert!(
        xml.contains("<UserId>AROASANDBOXLIFEHOOK01:AKIDEXAMPLE</UserId><Account>000000000000</Account><Arn>arn:aws:sts::000000000000:assumed-role/lifehook-sandbox/AKIDEXAMPLE</Arn></GetCallerIdentityResult><ResponseMetadata><RequestId>"),
        "{xml}"
    );
    // Unsigned: recognised by its Version, answered for `anonymous`.
    let (status, xml) = post(&sb, None, "Action=GetCallerIdentity&Version=2011-06-15").await;
    assert_eq!(status, 200, "{xml}");
    assert!(
        xml.contains(
            "<Arn>arn:aws:sts::000000000000:assumed-role/lifehook-sandbox/anonymous</Arn>"
        ),
        "{xml}"
    );
    // Other STS actions are refused in STS's Query error shape.
    let (status, xml) = post(
        &sb,
        Some(&auth("AKIDEXAMPLE")),
        "Action=AssumeRole&Version=2011-06-15",
    )
    .await;
    assert_eq!(status, 400, "{xml}");
    assert!(xml.contains("<Code>InvalidAction</Code>"), "{xml}");
    sb.stop().await;
}

#[tokio::test]
async fn get_caller_identity_is_never_denied() {
    let sb = sandbox().await;
    sb.sandbox
        .enforce_policy(
            None,
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Deny", "Action": "*", "Resource": "*"}]}),
        )
        .unwrap();
    let (status, xml) = post(
        &sb,
        Some(&auth("handler")),
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    assert_eq!(status, 200, "{xml}");
    assert!(xml.contains("<Account>000000000000</Account>"), "{xml}");
    sb.stop().await;
}
