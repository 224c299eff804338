//! STS GetCallerIdentity through aws-sdk-sts, as SDK-based tools ask it first.

use lifehook_conformance::Harness;

#[tokio::test]
async fn get_caller_identity_names_the_sandbox_account_and_the_caller() {
    let h = Harness::manual().await;
    let sts = aws_sdk_sts::Client::new(&h.sdk);
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("000000000000"));
    // The harness signs with access key id `test`.
    assert_eq!(
        me.arn(),
        Some("arn:aws:sts::000000000000:assumed-role/lifehook-sandbox/test")
    );
    assert_eq!(me.user_id(), Some("AROASANDBOXLIFEHOOK01:test"));
}
