//! What the other crates of the workspace use of the sandbox (cli, bench, conformance),
//! exercised from outside the crate so that it stays public.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use lifehook_sandbox::{ClockMode, RunningSandbox, Sandbox, SandboxConfig};

#[test]
fn constants_and_policy_enforcement() {
    assert_eq!(lifehook_sandbox::ACCOUNT_ID, "000000000000");
    assert!(
        lifehook_sandbox::DEFAULT_LISTEN
            .parse::<std::net::SocketAddr>()
            .is_ok()
    );
    assert!(!lifehook_sandbox::iam::ADMIN_ACCESS_KEY_ID.is_empty());
    let sb: Arc<Sandbox> = Sandbox::new(ClockMode::Manual, Default::default());
    let doc = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]
    });
    assert!(sb.enforce_policy(Some("k"), doc).is_ok());
}

#[tokio::test]
async fn a_running_sandbox_and_its_world() {
    let running: RunningSandbox = lifehook_sandbox::start(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        clock: ClockMode::Manual,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(
        running
            .endpoint()
            .ends_with(&running.addr().port().to_string())
    );
    let sb: Arc<Sandbox> = running.sandbox.clone();
    sb.advance(1000);
    {
        let w = sb.lock();
        let _timers: usize = w.pending_timers();
        let resolved = w.regions.get("us-east-1").map_or(0, |r| {
            r.autoscaling
                .resolved
                .iter()
                .filter(|a| a.group == "g")
                .count()
        });
        assert_eq!(resolved, 0);
        let in_group = w.regions.get("us-east-1").and_then(|r| {
            r.autoscaling
                .instances
                .values()
                .find(|i| i.group == "g" && i.in_group)
                .map(|i| i.id.clone())
        });
        assert_eq!(in_group, None);
    }
    running.stop().await;
}
