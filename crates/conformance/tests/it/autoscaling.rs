//! Auto Scaling lifecycle hooks with the real `aws_sdk_autoscaling` client: the state
//! machine of spec §1.11 driven by the virtual clock (never by sleeping).

use aws_sdk_autoscaling::error::ProvideErrorMetadata;
use aws_sdk_autoscaling::types::{
    LaunchTemplateSpecification, LifecycleHookSpecification, LifecycleState, RefreshPreferences,
};
use lifehook_conformance::{Harness, instances};

const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";

fn hook(name: &str, transition: &str, hb: i32, default: &str) -> LifecycleHookSpecification {
    LifecycleHookSpecification::builder()
        .lifecycle_hook_name(name)
        .lifecycle_transition(transition)
        .heartbeat_timeout(hb)
        .default_result(default)
        .build()
}

async fn create_group(
    h: &Harness,
    name: &str,
    (min, max, desired): (i32, i32, i32),
    hooks: Vec<LifecycleHookSpecification>,
) {
    h.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(min)
        .max_size(max)
        .desired_capacity(desired)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name("lt-web")
                .version("$Latest")
                .build(),
        )
        .vpc_zone_identifier("subnet-1,subnet-2")
        .set_lifecycle_hook_specification_list(Some(hooks))
        .send()
        .await
        .expect("CreateAutoScalingGroup");
}

async fn in_state(h: &Harness, name: &str, state: &str) -> Vec<String> {
    instances(h, name)
        .await
        .into_iter()
        .filter(|(_, s)| s == state)
        .map(|(i, _)| i)
        .collect()
}

/// The open actions of the state API: (instance, hook, token).
async fn actions(h: &Harness) -> Vec<(String, String, String)> {
    let st = h.state().await;
    st["regions"]["us-east-1"]["actions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            (
                a["instance"].as_str().unwrap_or_default().to_owned(),
                a["hook"].as_str().unwrap_or_default().to_owned(),
                a["token"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn token_for(h: &Harness, instance: &str, hook: &str) -> String {
    actions(h)
        .await
        .into_iter()
        .find(|(i, hk, _)| i == instance && hk == hook)
        .map(|(_, _, t)| t)
        .unwrap_or_else(|| panic!("no open {hook} action for {instance}"))
}

async fn complete(h: &Harness, group: &str, hook: &str, token: &str, result: &str) {
    h.asg
        .complete_lifecycle_action()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name(hook)
        .lifecycle_action_token(token)
        .lifecycle_action_result(result)
        .send()
        .await
        .expect("CompleteLifecycleAction");
}

#[tokio::test]
async fn scale_out_waits_in_pending_wait_until_continue() {
    let h = Harness::manual().await;
    create_group(
        &h,
        "web",
        (0, 4, 1),
        vec![
            hook("launch", LAUNCHING, 300, "ABANDON"),
            hook("drain", TERMINATING, 300, "CONTINUE"),
        ],
    )
    .await;
    // Hooks exist before the first launch: the very first instance waits.
    let first = in_state(&h, "web", "Pending:Wait").await;
    assert_eq!(first.len(), 1);
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web")
        .desired_capacity(2)
        .send()
        .await
        .unwrap();
    let waiting = in_state(&h, "web", "Pending:Wait").await;
    assert_eq!(waiting.len(), 2);
    h.advance(120.0).await;
    assert_eq!(in_state(&h, "web", "Pending:Wait").await.len(), 2);
    for id in &waiting {
        let t = token_for(&h, id, "launch").await;
        assert_eq!(t.len(), 36);
        complete(&h, "web", "launch", &t, "CONTINUE").await;
    }
    let mut in_service = in_state(&h, "web", "InService").await;
    in_service.sort();
    let mut want = waiting.clone();
    want.sort();
    assert_eq!(in_service, want);
    // DescribeAutoScalingInstances reports health in uppercase (§4.3).
    let out = h
        .asg
        .describe_auto_scaling_instances()
        .instance_ids(&waiting[0])
        .send()
        .await
        .unwrap();
    let i = &out.auto_scaling_instances()[0];
    assert_eq!(i.health_status(), Some("HEALTHY"));
    assert_eq!(i.lifecycle_state(), Some("InService"));
    assert_eq!(i.auto_scaling_group_name(), Some("web"));
    // Activities: newest first, launch activities successful.
    let acts = h
        .asg
        .describe_scaling_activities()
        .auto_scaling_group_name("web")
        .send()
        .await
        .unwrap();
    assert_eq!(acts.activities().len(), 2);
    for a in acts.activities() {
        assert!(
            a.description()
                .unwrap_or_default()
                .starts_with("Launching a new EC2 instance: i-")
        );
        assert_eq!(a.status_code().map(|s| s.as_str()), Some("Successful"));
        assert_eq!(a.progress(), Some(100));
    }
}

#[tokio::test]
async fn launch_abandon_terminates_and_replaces() {
    let h = Harness::manual().await;
    create_group(
        &h,
        "web",
        (1, 2, 1),
        vec![hook("launch", LAUNCHING, 300, "CONTINUE")],
    )
    .await;
    let first = in_state(&h, "web", "Pending:Wait").await;
    let t = token_for(&h, &first[0], "launch").await;
    complete(&h, "web", "launch", &t, "ABANDON").await;
    let now = instances(&h, "web").await;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0].0, first[0]);
    assert_eq!(now[0].1, "Pending:Wait");
    // The abandoned launch activity is Cancelled with the documented message (§1.10).
    let acts = h
        .asg
        .describe_scaling_activities()
        .auto_scaling_group_name("web")
        .send()
        .await
        .unwrap();
    let launch = acts
        .activities()
        .iter()
        .find(|a| a.description() == Some(&format!("Launching a new EC2 instance: {}", first[0])))
        .expect("launch activity");
    assert_eq!(launch.status_code().map(|s| s.as_str()), Some("Cancelled"));
    assert!(
        launch
            .status_message()
            .unwrap_or_default()
            .contains(&format!("Lifecycle Action with token {t} was abandoned"))
    );
}

#[tokio::test]
async fn heartbeat_restarts_the_timer_then_default_result_applies() {
    let h = Harness::manual().await;
    create_group(
        &h,
        "web",
        (1, 1, 1),
        vec![hook("launch", LAUNCHING, 300, "ABANDON")],
    )
    .await;
    let id = in_state(&h, "web", "Pending:Wait").await.remove(0);
    h.advance(290.0).await;
    h.asg
        .record_lifecycle_action_heartbeat()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("launch")
        .instance_id(&id)
        .send()
        .await
        .expect("heartbeat");
    h.advance(290.0).await;
    assert_eq!(in_state(&h, "web", "Pending:Wait").await, vec![id.clone()]);
    h.advance(10.0).await;
    // Timed out: DefaultResult ABANDON terminated it; a replacement waits.
    let now = instances(&h, "web").await;
    assert!(now.iter().all(|(i, _)| *i != id), "{now:?}");
    assert_eq!(in_state(&h, "web", "Pending:Wait").await.len(), 1);
}

#[tokio::test]
async fn timeout_applies_continue_default_result() {
    let h = Harness::manual().await;
    create_group(
        &h,
        "web",
        (1, 1, 1),
        vec![hook("launch", LAUNCHING, 60, "CONTINUE")],
    )
    .await;
    let id = in_state(&h, "web", "Pending:Wait").await.remove(0);
    h.advance(59.0).await;
    assert_eq!(in_state(&h, "web", "Pending:Wait").await, vec![id.clone()]);
    h.advance(1.0).await;
    assert_eq!(in_state(&h, "web", "InService").await, vec![id]);
}

#[tokio::test]
async fn global_timeout_caps_heartbeats() {
    let h = Harness::manual().await;
    // HB 30 s → GlobalTimeout 3000 s.
    create_group(
        &h,
        "web",
        (1, 1, 1),
        vec![hook("launch", LAUNCHING, 30, "CONTINUE")],
    )
    .await;
    let hooks = h
        .asg
        .describe_lifecycle_hooks()
        .auto_scaling_group_name("web")
        .send()
        .await
        .unwrap();
    assert_eq!(hooks.lifecycle_hooks()[0].global_timeout(), Some(3000));
    let id = in_state(&h, "web", "Pending:Wait").await.remove(0);
    for _ in 0..(2990 / 20) {
        h.advance(20.0).await;
        h.asg
            .record_lifecycle_action_heartbeat()
            .auto_scaling_group_name("web")
            .lifecycle_hook_name("launch")
            .instance_id(&id)
            .send()
            .await
            .expect("heartbeat");
    }
    // 2980 s: still waiting, although heartbeats keep coming.
    assert_eq!(in_state(&h, "web", "Pending:Wait").await, vec![id.clone()]);
    h.advance(20.0).await;
    assert_eq!(in_state(&h, "web", "InService").await, vec![id.clone()]);
    let e = h
        .asg
        .record_lifecycle_action_heartbeat()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("launch")
        .instance_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
    assert_eq!(
        e.message(),
        Some(format!("No active Lifecycle Action found with instance ID {id}").as_str())
    );
}

#[tokio::test]
async fn completion_by_instance_id_and_unknown_token() {
    let h = Harness::manual().await;
    create_group(
        &h,
        "web",
        (1, 1, 1),
        vec![hook("launch", LAUNCHING, 300, "ABANDON")],
    )
    .await;
    let id = in_state(&h, "web", "Pending:Wait").await.remove(0);
    let bogus = "bcd2f1b8-9a78-44d3-8a7a-4dd07d7cf635";
    let e = h
        .asg
        .complete_lifecycle_action()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("launch")
        .lifecycle_action_token(bogus)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
    assert_eq!(
        e.message(),
        Some(format!("No active Lifecycle Action found with token {bogus}").as_str())
    );
    h.asg
        .complete_lifecycle_action()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("launch")
        .instance_id(&id)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .expect("complete by instance id");
    assert_eq!(in_state(&h, "web", "InService").await, vec![id]);
    // Neither token nor instance.
    let e = h
        .asg
        .complete_lifecycle_action()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("launch")
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
}

#[tokio::test]
async fn scale_in_runs_the_terminate_hook() {
    let h = Harness::manual().await;
    create_group(
        &h,
        "web",
        (0, 2, 2),
        vec![hook("drain", TERMINATING, 600, "ABANDON")],
    )
    .await;
    assert_eq!(in_state(&h, "web", "InService").await.len(), 2);
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web")
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    let victim = in_state(&h, "web", "Terminating:Wait").await;
    assert_eq!(victim.len(), 1);
    let t = token_for(&h, &victim[0], "drain").await;
    complete(&h, "web", "drain", &t, "CONTINUE").await;
    let left = instances(&h, "web").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].1, "InService");
    assert_ne!(left[0].0, victim[0]);
    // Below min: the exact message (§4.4).
    let e = h
        .asg
        .set_desired_capacity()
        .auto_scaling_group_name("web")
        .desired_capacity(3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        e.message(),
        Some("New SetDesiredCapacity value 3 is above max value 2 for the AutoScalingGroup.")
    );
    // TerminateInstanceInAutoScalingGroup returns the activity and runs the hook.
    let out = h
        .asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&left[0].0)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .unwrap();
    let a = out.activity().expect("activity");
    assert_eq!(
        a.description(),
        Some(format!("Terminating EC2 instance: {}", left[0].0).as_str())
    );
    assert_eq!(
        a.status_code().map(|s| s.as_str()),
        Some("MidLifecycleAction")
    );
    assert_eq!(
        in_state(&h, "web", "Terminating:Wait").await,
        vec![left[0].0.clone()]
    );
}

#[tokio::test]
async fn standby_and_detach_fire_no_hooks() {
    let h = Harness::manual().await;
    create_group(&h, "web", (0, 4, 2), vec![]).await;
    let ids = in_state(&h, "web", "InService").await;
    for (name, tr) in [("launch", LAUNCHING), ("drain", TERMINATING)] {
        h.asg
            .put_lifecycle_hook()
            .auto_scaling_group_name("web")
            .lifecycle_hook_name(name)
            .lifecycle_transition(tr)
            .send()
            .await
            .unwrap();
    }
    let out = h
        .asg
        .enter_standby()
        .auto_scaling_group_name("web")
        .instance_ids(&ids[0])
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.activities()[0].description(),
        Some(format!("Moving EC2 instance to Standby: {}", ids[0]).as_str())
    );
    assert_eq!(in_state(&h, "web", "Standby").await, vec![ids[0].clone()]);
    let out = h
        .asg
        .exit_standby()
        .auto_scaling_group_name("web")
        .instance_ids(&ids[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.activities()[0].status_code().map(|s| s.as_str()),
        Some("PreInService")
    );
    h.asg
        .detach_instances()
        .auto_scaling_group_name("web")
        .instance_ids(&ids[1])
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .unwrap();
    h.asg
        .attach_instances()
        .auto_scaling_group_name("web")
        .instance_ids("i-0abcdef1234567890")
        .send()
        .await
        .unwrap();
    assert!(actions(&h).await.is_empty());
    let mut now = in_state(&h, "web", "InService").await;
    now.sort();
    let mut want = vec![ids[0].clone(), "i-0abcdef1234567890".to_owned()];
    want.sort();
    assert_eq!(now, want);
    // Detached instances stay visible in the state API, outside the group.
    let st = h.state().await;
    let detached = st["regions"]["us-east-1"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == ids[1].as_str())
        .cloned()
        .unwrap();
    assert_eq!(detached["lifecycle_state"], "Detached");
}

#[tokio::test]
async fn describe_groups_paginates_and_filters() {
    let h = Harness::manual().await;
    for k in 0..5 {
        h.asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(format!("g{k}"))
            .min_size(0)
            .max_size(1)
            .launch_configuration_name("lc")
            .tags(
                aws_sdk_autoscaling::types::Tag::builder()
                    .key("team")
                    .value(if k % 2 == 0 { "even" } else { "odd" })
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let out = h
            .asg
            .describe_auto_scaling_groups()
            .max_records(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages += 1;
        names.extend(
            out.auto_scaling_groups()
                .iter()
                .map(|g| g.auto_scaling_group_name().unwrap_or_default().to_owned()),
        );
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["g0", "g1", "g2", "g3", "g4"]);
    let e = h
        .asg
        .describe_auto_scaling_groups()
        .next_token("garbage")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidNextToken"));
    // Unknown names: an empty list, no error.
    let out = h
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("nope")
        .send()
        .await
        .unwrap();
    assert!(out.auto_scaling_groups().is_empty());
    let out = h
        .asg
        .describe_auto_scaling_groups()
        .filters(
            aws_sdk_autoscaling::types::Filter::builder()
                .name("tag:team")
                .values("odd")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let odd: Vec<&str> = out
        .auto_scaling_groups()
        .iter()
        .map(|g| g.auto_scaling_group_name().unwrap_or_default())
        .collect();
    assert_eq!(odd, ["g1", "g3"]);
}

#[tokio::test]
async fn instance_refresh_replaces_instances_through_the_hooks() {
    let h = Harness::manual().await;
    create_group(&h, "web", (2, 4, 2), vec![]).await;
    let old = in_state(&h, "web", "InService").await;
    for (name, tr) in [("launch", LAUNCHING), ("drain", TERMINATING)] {
        h.asg
            .put_lifecycle_hook()
            .auto_scaling_group_name("web")
            .lifecycle_hook_name(name)
            .lifecycle_transition(tr)
            .heartbeat_timeout(300)
            .default_result("CONTINUE")
            .send()
            .await
            .unwrap();
    }
    let id = h
        .asg
        .start_instance_refresh()
        .auto_scaling_group_name("web")
        .preferences(
            RefreshPreferences::builder()
                .min_healthy_percentage(50)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .instance_refresh_id()
        .unwrap()
        .to_owned();
    let e = h
        .asg
        .start_instance_refresh()
        .auto_scaling_group_name("web")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InstanceRefreshInProgress"));
    let mut seen_launch_waits = 0;
    for _ in 0..2 {
        // One old instance at a time goes through the terminate hook...
        let victim = in_state(&h, "web", "Terminating:Wait").await;
        assert_eq!(victim.len(), 1);
        assert!(old.contains(&victim[0]));
        let t = token_for(&h, &victim[0], "drain").await;
        complete(&h, "web", "drain", &t, "CONTINUE").await;
        // ...and its replacement through the launch hook.
        let fresh = in_state(&h, "web", "Pending:Wait").await;
        assert_eq!(fresh.len(), 1);
        seen_launch_waits += 1;
        let t = token_for(&h, &fresh[0], "launch").await;
        complete(&h, "web", "launch", &t, "CONTINUE").await;
    }
    assert_eq!(seen_launch_waits, 2);
    let now = in_state(&h, "web", "InService").await;
    assert_eq!(now.len(), 2);
    assert!(now.iter().all(|i| !old.contains(i)));
    let out = h
        .asg
        .describe_instance_refreshes()
        .auto_scaling_group_name("web")
        .send()
        .await
        .unwrap();
    let r = &out.instance_refreshes()[0];
    assert_eq!(r.instance_refresh_id(), Some(id.as_str()));
    assert_eq!(r.status().map(|s| s.as_str()), Some("Successful"));
    assert_eq!(r.percentage_complete(), Some(100));
    let _ = LifecycleState::InService;
}

#[tokio::test]
async fn behaviour_options_and_state_api() {
    let h = Harness::manual().await;
    let b = h.control_get("behaviour").await;
    assert_eq!(
        b["autoscaling"]["launch_abandon_runs_terminate_hooks"],
        true
    );
    assert_eq!(b["autoscaling"]["include_origin_destination"], true);
    // Switch off terminate hooks for launch ABANDONs (§7.2).
    let r = h
        .http()
        .put(format!("{}/_sandbox/behaviour", h.endpoint()))
        .json(&serde_json::json!({"autoscaling": {"launch_abandon_runs_terminate_hooks": false}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = h
        .http()
        .put(format!("{}/_sandbox/behaviour", h.endpoint()))
        .json(&serde_json::json!({"autoscaling": {"no_such_option": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    create_group(
        &h,
        "web",
        (1, 1, 1),
        vec![
            hook("launch", LAUNCHING, 300, "ABANDON"),
            hook("drain", TERMINATING, 300, "CONTINUE"),
        ],
    )
    .await;
    h.advance(100.0).await;
    let st = h.state().await;
    let region = &st["regions"]["us-east-1"];
    assert_eq!(region["groups"][0]["name"], "web");
    assert_eq!(region["groups"][0]["desired"], 1);
    assert_eq!(region["groups"][0]["hooks"].as_array().unwrap().len(), 2);
    let a = &region["actions"][0];
    assert_eq!(a["hook"], "launch");
    assert_eq!(a["transition"], LAUNCHING);
    assert_eq!(a["seconds_left"], 200.0);
    let id = a["instance"].as_str().unwrap().to_owned();
    assert_eq!(region["instances"][0]["lifecycle_state"], "Pending:Wait");
    h.advance(200.0).await;
    // ABANDON by timeout, no terminate hook: terminated at once, still visible in the state.
    let st = h.state().await;
    let gone = st["regions"]["us-east-1"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(gone["lifecycle_state"], "Terminated");
    assert_eq!(gone["in_group"], false);
    assert!(in_state(&h, "web", "Terminating:Wait").await.is_empty());
    assert_eq!(in_state(&h, "web", "Pending:Wait").await.len(), 1);
}

#[tokio::test]
async fn put_hook_with_an_unreachable_target_fails_with_the_test_message_error() {
    let h = Harness::manual().await;
    create_group(&h, "web", (0, 1, 0), vec![]).await;
    let queue = "arn:aws:sqs:us-east-1:000000000000:no-such-queue";
    let role = "arn:aws:iam::000000000000:role/asg-notify";
    let e = h
        .asg
        .put_lifecycle_hook()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("launch")
        .lifecycle_transition(LAUNCHING)
        .notification_target_arn(queue)
        .role_arn(role)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
    assert!(
        e.message().unwrap_or_default().starts_with(&format!(
            "Unable to publish test message to notification target {queue} using IAM role {role}"
        )),
        "{:?}",
        e.message()
    );
    // The hook was not created.
    let hooks = h
        .asg
        .describe_lifecycle_hooks()
        .auto_scaling_group_name("web")
        .send()
        .await
        .unwrap();
    assert!(hooks.lifecycle_hooks().is_empty());
}

#[tokio::test]
async fn force_delete_drops_outstanding_actions_without_terminate_hooks() {
    let h = Harness::manual().await;
    create_group(
        &h,
        "web",
        (0, 2, 2),
        vec![
            hook("launch", LAUNCHING, 300, "CONTINUE"),
            hook("drain", TERMINATING, 300, "CONTINUE"),
        ],
    )
    .await;
    let e = h
        .asg
        .delete_auto_scaling_group()
        .auto_scaling_group_name("web")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ResourceInUse"));
    h.asg
        .delete_auto_scaling_group()
        .auto_scaling_group_name("web")
        .force_delete(true)
        .send()
        .await
        .unwrap();
    assert!(actions(&h).await.is_empty());
    let out = h
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("web")
        .send()
        .await
        .unwrap();
    assert!(out.auto_scaling_groups().is_empty());
}

/// Receives every message now in the queue (no waiting: virtual time drives delivery).
async fn drain_queue(h: &Harness, url: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    loop {
        let r = h
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("ReceiveMessage");
        let msgs = r.messages();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            out.push(serde_json::from_str(m.body().unwrap_or_default()).expect("JSON body"));
            h.sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
        }
    }
}

#[tokio::test]
async fn sqs_target_gets_the_test_notification_and_lifecycle_messages() {
    let h = Harness::manual().await;
    let url = h
        .sqs
        .create_queue()
        .queue_name("hooks")
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .unwrap()
        .to_owned();
    let arn = h
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("QueueArn");
    create_group(&h, "web", (0, 2, 0), vec![]).await;
    h.asg
        .put_lifecycle_hook()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("launch")
        .lifecycle_transition(LAUNCHING)
        .notification_target_arn(&arn)
        .role_arn("arn:aws:iam::000000000000:role/asg-notify")
        .notification_metadata("{\"team\":\"web\"}")
        .heartbeat_timeout(60)
        .send()
        .await
        .expect("PutLifecycleHook with an existing queue");
    let msgs = drain_queue(&h, &url).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let t = &msgs[0];
    assert_eq!(t["Event"], "autoscaling:TEST_NOTIFICATION");
    assert_eq!(t["AutoScalingGroupName"], "web");
    assert_eq!(t["AccountId"], "000000000000");
    assert!(t.get("LifecycleActionToken").is_none());
    assert!(
        t["AutoScalingGroupARN"]
            .as_str()
            .unwrap()
            .ends_with(":autoScalingGroupName/web")
    );

    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web")
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    let id = in_state(&h, "web", "Pending:Wait").await.remove(0);
    let msgs = drain_queue(&h, &url).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let m = &msgs[0];
    assert_eq!(m["LifecycleTransition"], LAUNCHING);
    assert_eq!(m["LifecycleHookName"], "launch");
    assert_eq!(m["AutoScalingGroupName"], "web");
    assert_eq!(m["EC2InstanceId"], id.as_str());
    assert_eq!(m["Service"], "AWS Auto Scaling");
    assert_eq!(m["Origin"], "EC2");
    assert_eq!(m["Destination"], "AutoScalingGroup");
    assert_eq!(m["NotificationMetadata"], "{\"team\":\"web\"}");
    let token = m["LifecycleActionToken"].as_str().unwrap().to_owned();
    assert_eq!(token, token_for(&h, &id, "launch").await);
    // RequestId is the launch activity's id (§7.7).
    let acts = h
        .asg
        .describe_scaling_activities()
        .auto_scaling_group_name("web")
        .send()
        .await
        .unwrap();
    assert_eq!(acts.activities()[0].activity_id(), m["RequestId"].as_str());
    assert_eq!(
        acts.activities()[0].status_code().map(|s| s.as_str()),
        Some("MidLifecycleAction")
    );
    // The handler completes with the token from the message.
    complete(&h, "web", "launch", &token, "CONTINUE").await;
    assert_eq!(in_state(&h, "web", "InService").await, vec![id]);
    assert!(drain_queue(&h, &url).await.is_empty());
}

#[tokio::test]
async fn eventbridge_rule_receives_lifecycle_and_successful_events() {
    let h = Harness::manual().await;
    let url = h
        .sqs
        .create_queue()
        .queue_name("events")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let arn = "arn:aws:sqs:us-east-1:000000000000:events";
    h.events
        .put_rule()
        .name("asg")
        .event_pattern(
            r#"{"source":["aws.autoscaling"],"detail":{"AutoScalingGroupName":["web"]}}"#,
        )
        .send()
        .await
        .expect("PutRule");
    h.events
        .put_targets()
        .rule("asg")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("PutTargets");
    // No NotificationTargetARN: EventBridge is the only path (§2.8).
    create_group(
        &h,
        "web",
        (1, 1, 1),
        vec![hook("launch", LAUNCHING, 60, "CONTINUE")],
    )
    .await;
    let id = in_state(&h, "web", "Pending:Wait").await.remove(0);
    let evs = drain_queue(&h, &url).await;
    assert_eq!(evs.len(), 1, "{evs:?}");
    let ev = &evs[0];
    assert_eq!(ev["detail-type"], "EC2 Instance-launch Lifecycle Action");
    assert_eq!(ev["source"], "aws.autoscaling");
    assert_eq!(ev["account"], "000000000000");
    assert_eq!(ev["region"], "us-east-1");
    assert!(
        ev["resources"][0]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:")
    );
    assert_eq!(ev["detail"]["EC2InstanceId"], id.as_str());
    assert_eq!(ev["detail"]["LifecycleHookName"], "launch");
    assert_eq!(
        ev["detail"]["LifecycleActionToken"],
        token_for(&h, &id, "launch").await.as_str()
    );
    assert!(ev["detail"].get("AccountId").is_none());
    // Timeout → CONTINUE → "EC2 Instance Launch Successful".
    h.advance(60.0).await;
    let evs = drain_queue(&h, &url).await;
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["detail-type"], "EC2 Instance Launch Successful");
    assert_eq!(evs[0]["detail"]["EC2InstanceId"], id.as_str());
    assert_eq!(
        evs[0]["resources"][1],
        format!("arn:aws:ec2:us-east-1:000000000000:instance/{id}").as_str()
    );
}

#[tokio::test]
async fn sns_target_publishes_with_the_lifecycle_subject() {
    let h = Harness::manual().await;
    let url = h
        .sqs
        .create_queue()
        .queue_name("via-sns")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let topic = h
        .sns
        .create_topic()
        .name("hooks")
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .unwrap()
        .to_owned();
    h.sns
        .subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint("arn:aws:sqs:us-east-1:000000000000:via-sns")
        .send()
        .await
        .expect("Subscribe");
    create_group(&h, "web", (0, 1, 0), vec![]).await;
    h.asg
        .put_lifecycle_hook()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("drain")
        .lifecycle_transition(TERMINATING)
        .notification_target_arn(&topic)
        .role_arn("arn:aws:iam::000000000000:role/asg-notify")
        .send()
        .await
        .expect("PutLifecycleHook with an SNS topic");
    let msgs = drain_queue(&h, &url).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(
        msgs[0]["Subject"],
        "Auto Scaling: test notification for group \"web\""
    );
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web")
        .desired_capacity(1)
        .send()
        .await
        .unwrap();
    let id = in_state(&h, "web", "InService").await.remove(0);
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web")
        .desired_capacity(0)
        .send()
        .await
        .unwrap();
    let msgs = drain_queue(&h, &url).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["Type"], "Notification");
    assert_eq!(
        msgs[0]["Subject"],
        format!("Auto Scaling:  Lifecycle action 'TERMINATING' for instance {id} in progress.")
            .as_str()
    );
    let inner: serde_json::Value =
        serde_json::from_str(msgs[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(inner["LifecycleTransition"], TERMINATING);
    assert_eq!(inner["Origin"], "AutoScalingGroup");
    assert_eq!(inner["Destination"], "EC2");
    assert_eq!(inner["EC2InstanceId"], id.as_str());
}
