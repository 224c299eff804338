//! SSM Run Command through aws-sdk-ssm (JSON 1.1): invocations progress on virtual time;
//! outcomes are scripted through the control API.

use aws_sdk_ssm::types::{CommandInvocationStatus, CommandStatus, Target};
use lifehook_conformance::Harness;

async fn invocation(
    h: &Harness,
    id: &str,
    instance: &str,
) -> aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput {
    h.ssm
        .get_command_invocation()
        .command_id(id)
        .instance_id(instance)
        .send()
        .await
        .expect("GetCommandInvocation")
}

#[tokio::test]
async fn send_command_succeeds_after_virtual_delay() {
    let h = Harness::manual().await;
    let sent = h
        .ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids("i-0123456789abcdef0")
        .parameters("commands", vec!["systemctl stop app".into(), "sync".into()])
        .comment("drain before termination")
        .send()
        .await
        .expect("SendCommand");
    let cmd = sent.command().unwrap();
    let id = cmd.command_id().unwrap().to_owned();
    assert_eq!(cmd.status(), Some(&CommandStatus::Pending));
    assert_eq!(cmd.target_count(), 1);

    let inv = invocation(&h, &id, "i-0123456789abcdef0").await;
    assert_eq!(inv.status(), Some(&CommandInvocationStatus::Pending));
    assert_eq!(inv.response_code(), -1);

    h.advance(1.0).await;
    let inv = invocation(&h, &id, "i-0123456789abcdef0").await;
    assert_eq!(inv.status(), Some(&CommandInvocationStatus::InProgress));

    h.advance(1.0).await;
    let inv = invocation(&h, &id, "i-0123456789abcdef0").await;
    assert_eq!(inv.status(), Some(&CommandInvocationStatus::Success));
    assert_eq!(inv.response_code(), 0);
    assert_eq!(inv.standard_output_content(), Some(""));
    assert_eq!(inv.plugin_name(), Some("aws:runShellScript"));

    let cmds = h.ssm.list_commands().send().await.unwrap();
    assert_eq!(cmds.commands().len(), 1);
    assert_eq!(cmds.commands()[0].status(), Some(&CommandStatus::Success));
    assert_eq!(cmds.commands()[0].completed_count(), 1);

    // What ran is visible to the test through the control API.
    let sent = h.control_get("ssm/commands").await;
    assert_eq!(sent["commands"][0]["Script"], "systemctl stop app\nsync");
    assert_eq!(
        sent["commands"][0]["Parameters"]["commands"][0],
        "systemctl stop app"
    );

    let e = h
        .ssm
        .get_command_invocation()
        .command_id(&id)
        .instance_id("i-00000000000000000")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invocation_does_not_exist());
}

#[tokio::test]
async fn scripted_failure_by_instance_and_command() {
    let h = Harness::manual().await;
    let r = h
        .control_post(
            "ssm/outcomes",
            serde_json::json!({
                "instance_id": "i-bad",
                "command_contains": "drain",
                "status": "Failed",
                "exit_code": 7,
                "stdout": "could not drain",
                "delay_seconds": 10
            }),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let bad_rule = h
        .control_post("ssm/outcomes", serde_json::json!({"status": "Nope"}))
        .await;
    assert_eq!(bad_rule.status().as_u16(), 400);

    let sent = h
        .ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .targets(
            Target::builder()
                .key("InstanceIds")
                .values("i-good")
                .values("i-bad")
                .build(),
        )
        .parameters("commands", vec!["/opt/drain.sh".into()])
        .send()
        .await
        .unwrap();
    let id = sent.command().unwrap().command_id().unwrap().to_owned();

    h.advance(2.0).await;
    assert_eq!(
        invocation(&h, &id, "i-good").await.status(),
        Some(&CommandInvocationStatus::Success)
    );
    let bad = invocation(&h, &id, "i-bad").await;
    assert_eq!(bad.status(), Some(&CommandInvocationStatus::InProgress));
    h.advance(8.0).await;
    let bad = invocation(&h, &id, "i-bad").await;
    assert_eq!(bad.status(), Some(&CommandInvocationStatus::Failed));
    assert_eq!(bad.response_code(), 7);
    assert_eq!(bad.standard_output_content(), Some("could not drain"));

    // A command that does not match the rule succeeds on the same instance.
    let other = h
        .ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .instance_ids("i-bad")
        .parameters("commands", vec!["uptime".into()])
        .send()
        .await
        .unwrap();
    let other_id = other.command().unwrap().command_id().unwrap().to_owned();
    h.advance(2.0).await;
    assert_eq!(
        invocation(&h, &other_id, "i-bad").await.status(),
        Some(&CommandInvocationStatus::Success)
    );

    let invs = h
        .ssm
        .list_command_invocations()
        .command_id(&id)
        .details(true)
        .send()
        .await
        .unwrap();
    assert_eq!(invs.command_invocations().len(), 2);
    let bad = invs
        .command_invocations()
        .iter()
        .find(|i| i.instance_id() == Some("i-bad"))
        .unwrap();
    assert_eq!(bad.status(), Some(&CommandInvocationStatus::Failed));
    assert_eq!(bad.command_plugins()[0].response_code(), 7);
    assert_eq!(bad.command_plugins()[0].output(), Some("could not drain"));

    let cmd = h.ssm.list_commands().command_id(&id).send().await.unwrap();
    assert_eq!(cmd.commands()[0].status(), Some(&CommandStatus::Failed));
    assert_eq!(cmd.commands()[0].error_count(), 1);

    // Pagination of ListCommandInvocations.
    let page = h
        .ssm
        .list_command_invocations()
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.command_invocations().len(), 1);
    let next = page.next_token().unwrap().to_owned();
    let page2 = h
        .ssm
        .list_command_invocations()
        .max_results(50)
        .next_token(next)
        .send()
        .await
        .unwrap();
    assert_eq!(page2.command_invocations().len(), 2);
    assert!(page2.next_token().is_none());
}
