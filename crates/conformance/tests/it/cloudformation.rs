//! CloudFormation `SignalResource` through aws-sdk-cloudformation.

use aws_sdk_cloudformation::types::ResourceSignalStatus;
use lifehook_conformance::Harness;

#[tokio::test]
async fn signal_resource_is_recorded() {
    let h = Harness::manual().await;
    h.cloudformation
        .signal_resource()
        .stack_name("web")
        .logical_resource_id("WebAsg")
        .unique_id("i-0123456789abcdef0")
        .status(ResourceSignalStatus::Success)
        .send()
        .await
        .expect("SignalResource");
    h.cloudformation
        .signal_resource()
        .stack_name("arn:aws:cloudformation:us-east-1:000000000000:stack/web/1f2e3d4c")
        .logical_resource_id("WebAsg")
        .unique_id("i-0fedcba9876543210")
        .status(ResourceSignalStatus::Failure)
        .send()
        .await
        .expect("SignalResource by stack ARN");

    let v = h.control_get("cloudformation/signals").await;
    let signals = v["signals"].as_array().expect("signals");
    assert_eq!(signals.len(), 2, "{v}");
    assert_eq!(signals[0]["StackName"], "web");
    assert_eq!(signals[0]["LogicalResourceId"], "WebAsg");
    assert_eq!(signals[0]["UniqueId"], "i-0123456789abcdef0");
    assert_eq!(signals[0]["Status"], "SUCCESS");
    assert_eq!(signals[0]["region"], "us-east-1");
    assert_eq!(signals[1]["Status"], "FAILURE");
}

#[tokio::test]
async fn signal_resource_validates_parameters() {
    let h = Harness::manual().await;
    let err = h
        .cloudformation
        .signal_resource()
        .stack_name("web")
        .logical_resource_id("WebAsg")
        .status(ResourceSignalStatus::Success)
        .send()
        .await
        .expect_err("no UniqueId");
    let svc = err.into_service_error();
    let meta = aws_sdk_cloudformation::error::ProvideErrorMetadata::meta(&svc);
    assert_eq!(meta.code(), Some("ValidationError"));
    assert!(
        meta.message().unwrap_or_default().contains("'uniqueId'"),
        "{meta:?}"
    );

    let err = h
        .cloudformation
        .signal_resource()
        .stack_name("web")
        .logical_resource_id("WebAsg")
        .unique_id("i-1")
        .status(ResourceSignalStatus::from("MAYBE"))
        .send()
        .await
        .expect_err("bad status");
    let svc = err.into_service_error();
    let meta = aws_sdk_cloudformation::error::ProvideErrorMetadata::meta(&svc);
    assert_eq!(meta.code(), Some("ValidationError"));
    assert!(
        meta.message()
            .unwrap_or_default()
            .contains("[SUCCESS, FAILURE]"),
        "{meta:?}"
    );

    let v = h.control_get("cloudformation/signals").await;
    assert_eq!(v["signals"].as_array().map(Vec::len), Some(0), "{v}");
}
