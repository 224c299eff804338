//! Engine unit tests: the Query operations run directly on a [`World`] (no HTTP, no AWS
//! crates), with virtual time moved by `run_until`.

use lifehook_model::LifecycleState as S;
use proptest::prelude::*;

use super::engine::counts;
use super::{Options, ops};
use crate::protocol::RequestCtx;
use crate::protocol::{AwsError, Params, Service, Wire};
use crate::world::{Behaviour, World};

const REGION: &str = "us-east-1";
const T0: u64 = 1_700_000_000_000;

struct Env {
    w: World,
}

impl Env {
    fn new() -> Env {
        Env::with(Options::default())
    }

    fn with(o: Options) -> Env {
        Env {
            w: World::new(
                T0,
                Behaviour {
                    autoscaling: o,
                    ..Default::default()
                },
            ),
        }
    }

    fn call(&mut self, op: &str, pairs: &[(&str, &str)]) -> Result<String, AwsError> {
        let ctx = RequestCtx {
            request_id: "rid".into(),
            region: REGION.into(),
            host: "h".into(),
            path: "/".into(),
            service: Service::AutoScaling,
            wire: Wire::Query,
            op: op.into(),
        };
        let p = Params::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let r = ops::dispatch(&mut self.w, &ctx, &p);
        // Fire what fell due at "now" (a request would do this on the next lock).
        let now = self.w.now;
        self.w.run_until(now);
        r
    }

    fn ok(&mut self, op: &str, pairs: &[(&str, &str)]) -> String {
        match self.call(op, pairs) {
            Ok(s) => s,
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    fn advance(&mut self, secs: u64) {
        let to = self.w.now + secs * 1000;
        self.w.run_until(to);
    }

    fn state(&mut self) -> &super::State {
        &self.w.region(REGION).autoscaling
    }

    fn members(&mut self, g: &str) -> Vec<(String, S)> {
        self.state()
            .members(g)
            .map(|i| (i.id.clone(), i.state))
            .collect()
    }

    fn in_state(&mut self, g: &str, s: S) -> Vec<String> {
        self.members(g)
            .into_iter()
            .filter(|(_, st)| *st == s)
            .map(|(id, _)| id)
            .collect()
    }

    fn actions(&mut self) -> Vec<super::engine::Action> {
        self.state().actions.values().cloned().collect()
    }

    fn group(
        &mut self,
        name: &str,
        min: &str,
        max: &str,
        desired: &str,
        hooks: &[(&str, &str, &str, &str)],
    ) {
        let mut pairs: Vec<(String, String)> = vec![
            ("AutoScalingGroupName".into(), name.into()),
            ("MinSize".into(), min.into()),
            ("MaxSize".into(), max.into()),
            ("DesiredCapacity".into(), desired.into()),
            ("LaunchTemplate.LaunchTemplateName".into(), "lt-web".into()),
            ("VPCZoneIdentifier".into(), "subnet-a,subnet-b".into()),
        ];
        for (k, (hn, tr, hb, dr)) in hooks.iter().enumerate() {
            let pre = format!("LifecycleHookSpecificationList.member.{}", k + 1);
            pairs.push((format!("{pre}.LifecycleHookName"), hn.to_string()));
            pairs.push((
                format!("{pre}.LifecycleTransition"),
                format!("autoscaling:EC2_INSTANCE_{tr}"),
            ));
            pairs.push((format!("{pre}.HeartbeatTimeout"), hb.to_string()));
            pairs.push((format!("{pre}.DefaultResult"), dr.to_string()));
        }
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        self.ok("CreateAutoScalingGroup", &refs);
    }

    fn complete(
        &mut self,
        g: &str,
        hook: &str,
        token: &str,
        result: &str,
    ) -> Result<String, AwsError> {
        self.call(
            "CompleteLifecycleAction",
            &[
                ("AutoScalingGroupName", g),
                ("LifecycleHookName", hook),
                ("LifecycleActionToken", token),
                ("LifecycleActionResult", result),
            ],
        )
    }

    /// The invariants of the engine (see the proptest).
    fn check_invariants(&mut self) {
        let s = &self.w.region(REGION).autoscaling;
        for a in s.actions.values() {
            let i = s
                .instances
                .get(&a.instance)
                .expect("action for a known instance");
            assert!(i.in_group, "action for an instance outside its group");
            let want = match a.transition {
                lifehook_model::LifecycleTransition::Launching => S::PendingWait,
                lifehook_model::LifecycleTransition::Terminating => S::TerminatingWait,
            };
            assert_eq!(
                i.state, want,
                "action {a:?} for an instance in {:?}",
                i.state
            );
            assert!(a.heartbeat_deadline <= a.global_deadline);
        }
        for i in s.instances.values().filter(|i| i.in_group) {
            if i.state.is_wait() {
                assert!(
                    s.actions.values().any(|a| a.instance == i.id),
                    "{} waits without an action",
                    i.id
                );
            }
            assert!(s.groups.contains_key(&i.group), "member of a deleted group");
        }
        for g in s.groups.values() {
            assert!(
                g.min <= g.desired && g.desired <= g.max,
                "bounds of {}",
                g.name
            );
        }
    }
}

fn token_of(e: &mut Env, instance: &str, hook: &str) -> String {
    e.actions()
        .into_iter()
        .find(|a| a.instance == instance && a.hook == hook)
        .map(|a| a.token)
        .expect("an open action")
}

#[test]
fn launch_waits_on_hooks_then_continue_puts_in_service() {
    let mut e = Env::new();
    e.group(
        "g",
        "0",
        "4",
        "2",
        &[("launch", "LAUNCHING", "300", "ABANDON")],
    );
    let waiting = e.in_state("g", S::PendingWait);
    assert_eq!(waiting.len(), 2);
    assert_eq!(e.actions().len(), 2);
    // AZ balance: one per subnet.
    let azs: std::collections::BTreeSet<String> =
        e.state().members("g").map(|i| i.az.clone()).collect();
    assert_eq!(azs.len(), 2);
    let t = token_of(&mut e, &waiting[0], "launch");
    e.complete("g", "launch", &t, "CONTINUE").unwrap();
    assert_eq!(e.in_state("g", S::InService), vec![waiting[0].clone()]);
    // Completing again: the action is gone (§2.3).
    let err = e.complete("g", "launch", &t, "CONTINUE").unwrap_err();
    assert_eq!(err.code, "ValidationError");
    assert_eq!(
        err.message,
        format!("No active Lifecycle Action found with token {t}")
    );
    e.check_invariants();
}

#[test]
fn timeout_applies_default_result_and_abandon_replaces_through_terminate_hooks() {
    let mut e = Env::new();
    e.group(
        "g",
        "1",
        "2",
        "1",
        &[
            ("launch", "LAUNCHING", "60", "ABANDON"),
            ("drain", "TERMINATING", "120", "CONTINUE"),
        ],
    );
    let first = e.in_state("g", S::PendingWait);
    assert_eq!(first.len(), 1);
    e.advance(59);
    assert_eq!(e.in_state("g", S::PendingWait), first);
    e.advance(1);
    // Timed out with ABANDON: the instance goes through the terminate hook; a replacement
    // waits on the launch hook.
    assert_eq!(e.in_state("g", S::TerminatingWait), first);
    let waiting = e.in_state("g", S::PendingWait);
    assert_eq!(waiting.len(), 1);
    assert_ne!(waiting, first);
    let acts = e.state().activities.clone();
    let launch = acts
        .iter()
        .find(|a| a.description == format!("Launching a new EC2 instance: {}", first[0]))
        .unwrap();
    assert_eq!(launch.status, "Cancelled");
    assert!(
        launch
            .message
            .as_deref()
            .unwrap()
            .starts_with("Instance failed to complete user's Lifecycle Action")
    );
    // The terminate hook times out with CONTINUE: terminated and gone from the group.
    e.advance(120);
    assert!(e.members("g").iter().all(|(id, _)| *id != first[0]));
    assert_eq!(e.state().instances[&first[0]].state, S::Terminated);
    e.check_invariants();
}

#[test]
fn launch_abandon_can_skip_terminate_hooks() {
    let mut e = Env::with(Options {
        launch_abandon_runs_terminate_hooks: false,
        ..Options::default()
    });
    e.group(
        "g",
        "1",
        "1",
        "1",
        &[
            ("launch", "LAUNCHING", "60", "CONTINUE"),
            ("drain", "TERMINATING", "60", "CONTINUE"),
        ],
    );
    let first = e.in_state("g", S::PendingWait)[0].clone();
    let t = token_of(&mut e, &first, "launch");
    e.complete("g", "launch", &t, "ABANDON").unwrap();
    assert_eq!(e.state().instances[&first].state, S::Terminated);
    assert_eq!(e.in_state("g", S::PendingWait).len(), 1);
}

#[test]
fn heartbeat_restarts_the_timer_but_never_past_the_global_timeout() {
    let mut e = Env::new();
    // HB 30 s → global timeout 3000 s (§2.1).
    e.group(
        "g",
        "1",
        "1",
        "1",
        &[("launch", "LAUNCHING", "30", "CONTINUE")],
    );
    let id = e.in_state("g", S::PendingWait)[0].clone();
    let hb = |e: &mut Env| {
        e.ok(
            "RecordLifecycleActionHeartbeat",
            &[
                ("AutoScalingGroupName", "g"),
                ("LifecycleHookName", "launch"),
                ("InstanceId", &id),
            ],
        )
    };
    for _ in 0..119 {
        e.advance(25);
        hb(&mut e);
    }
    // 2975 s in: still waiting; the heartbeat deadline is capped at 3000 s.
    assert_eq!(e.in_state("g", S::PendingWait), vec![id.clone()]);
    let a = e.actions()[0].clone();
    assert_eq!(a.global_deadline, T0 + 3_000_000);
    assert_eq!(a.heartbeat_deadline, T0 + 3_000_000);
    e.advance(24);
    assert_eq!(e.in_state("g", S::PendingWait), vec![id.clone()]);
    e.advance(1);
    // Global timeout → DefaultResult CONTINUE (§7.3).
    assert_eq!(e.in_state("g", S::InService), vec![id]);
}

#[test]
fn first_abandon_cancels_the_other_hooks() {
    let mut e = Env::new();
    e.group(
        "g",
        "1",
        "1",
        "1",
        &[
            ("a", "LAUNCHING", "300", "CONTINUE"),
            ("b", "LAUNCHING", "300", "CONTINUE"),
        ],
    );
    let id = e.in_state("g", S::PendingWait)[0].clone();
    assert_eq!(e.actions().len(), 2);
    let ta = token_of(&mut e, &id, "a");
    let tb = token_of(&mut e, &id, "b");
    e.complete("g", "a", &ta, "CONTINUE").unwrap();
    // One CONTINUE is not enough: still waiting on b.
    assert_eq!(e.state().instances[&id].state, S::PendingWait);
    e.complete("g", "b", &tb, "ABANDON").unwrap();
    assert_eq!(e.state().instances[&id].state, S::Terminated);
    // And with two open: ABANDON of one cancels the other.
    let id2 = e.in_state("g", S::PendingWait)[0].clone();
    let ta2 = token_of(&mut e, &id2, "a");
    let tb2 = token_of(&mut e, &id2, "b");
    e.complete("g", "a", &ta2, "ABANDON").unwrap();
    assert!(e.complete("g", "b", &tb2, "CONTINUE").is_err());
    // The timeline shows b as cancelled: no result of its own.
    let lane = lane_of(&mut e, &id2);
    let b = lane.actions.iter().find(|x| x.hook == "b").unwrap();
    let end = b.end.clone().unwrap();
    assert_eq!(
        (end.result, end.by, end.how),
        (None, super::timeline::By::Cancelled, "cancelled")
    );
    e.check_invariants();
}

#[test]
fn retention_keeps_instances_whose_terminate_hook_is_abandoned() {
    let mut e = Env::new();
    e.group(
        "g",
        "0",
        "2",
        "1",
        &[("drain", "TERMINATING", "60", "ABANDON")],
    );
    e.ok(
        "UpdateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", "g"),
            (
                "InstanceLifecyclePolicy.RetentionTriggers.TerminateHookAbandon",
                "retain",
            ),
        ],
    );
    let id = e.in_state("g", S::InService)[0].clone();
    e.ok(
        "SetDesiredCapacity",
        &[("AutoScalingGroupName", "g"), ("DesiredCapacity", "0")],
    );
    assert_eq!(e.in_state("g", S::TerminatingWait), vec![id.clone()]);
    e.advance(60);
    assert_eq!(e.in_state("g", S::TerminatingRetained), vec![id.clone()]);
    // Retained instances do not count; the user terminates them explicitly.
    e.ok(
        "TerminateInstanceInAutoScalingGroup",
        &[
            ("InstanceId", &id),
            ("ShouldDecrementDesiredCapacity", "false"),
        ],
    );
    assert_eq!(e.state().instances[&id].state, S::Terminated);
    e.check_invariants();
}

#[test]
fn consecutive_abandons_back_off() {
    let mut e = Env::new();
    e.group(
        "g",
        "1",
        "1",
        "1",
        &[("launch", "LAUNCHING", "30", "ABANDON")],
    );
    e.advance(30); // 1st abandon → immediate replacement
    assert_eq!(e.in_state("g", S::PendingWait).len(), 1);
    e.advance(30); // 2nd abandon → 10 s back-off
    assert_eq!(e.in_state("g", S::PendingWait).len(), 0);
    e.advance(9);
    assert_eq!(e.in_state("g", S::PendingWait).len(), 0);
    e.advance(1);
    assert_eq!(e.in_state("g", S::PendingWait).len(), 1);
    e.advance(30); // 3rd → 20 s
    e.advance(19);
    assert_eq!(e.in_state("g", S::PendingWait).len(), 0);
    e.advance(1);
    assert_eq!(e.in_state("g", S::PendingWait).len(), 1);
}

#[test]
fn deleting_a_hook_completes_its_actions() {
    let mut e = Env::new();
    e.group(
        "g",
        "0",
        "2",
        "1",
        &[
            ("launch", "LAUNCHING", "300", "CONTINUE"),
            ("drain", "TERMINATING", "300", "ABANDON"),
        ],
    );
    let id = e.in_state("g", S::PendingWait)[0].clone();
    e.ok(
        "DeleteLifecycleHook",
        &[
            ("AutoScalingGroupName", "g"),
            ("LifecycleHookName", "launch"),
        ],
    );
    // ABANDON for launching: terminated through the terminate hook.
    assert_eq!(e.state().instances[&id].state, S::TerminatingWait);
    e.ok(
        "DeleteLifecycleHook",
        &[
            ("AutoScalingGroupName", "g"),
            ("LifecycleHookName", "drain"),
        ],
    );
    // CONTINUE for terminating.
    assert_eq!(e.state().instances[&id].state, S::Terminated);
    // Unknown hook: silent success.
    e.ok(
        "DeleteLifecycleHook",
        &[("AutoScalingGroupName", "g"), ("LifecycleHookName", "nope")],
    );
    // The replacement has no hooks left.
    assert_eq!(e.in_state("g", S::InService).len(), 1);
}

#[test]
fn delete_group_needs_force_and_force_fires_no_hooks() {
    let mut e = Env::new();
    e.group(
        "g",
        "0",
        "2",
        "2",
        &[("drain", "TERMINATING", "300", "CONTINUE")],
    );
    let err = e
        .call("DeleteAutoScalingGroup", &[("AutoScalingGroupName", "g")])
        .unwrap_err();
    assert_eq!(err.code, "ResourceInUse");
    e.ok(
        "DeleteAutoScalingGroup",
        &[("AutoScalingGroupName", "g"), ("ForceDelete", "true")],
    );
    assert!(e.actions().is_empty());
    assert!(e.state().groups.is_empty());
    assert!(
        e.state()
            .instances
            .values()
            .all(|i| i.state == S::Terminated)
    );
}

#[test]
fn scale_in_takes_the_fullest_az_then_the_oldest_and_skips_protected() {
    let mut e = Env::new();
    e.group("g", "0", "6", "2", &[]);
    let first: Vec<String> = e.in_state("g", S::InService);
    e.advance(10);
    e.ok(
        "SetDesiredCapacity",
        &[("AutoScalingGroupName", "g"), ("DesiredCapacity", "4")],
    );
    let all = e.in_state("g", S::InService);
    assert_eq!(all.len(), 4);
    // Protect one of the oldest; scale in by one: the other old one goes.
    e.ok(
        "SetInstanceProtection",
        &[
            ("AutoScalingGroupName", "g"),
            ("InstanceIds.member.1", &first[0]),
            ("ProtectedFromScaleIn", "true"),
        ],
    );
    e.ok(
        "SetDesiredCapacity",
        &[("AutoScalingGroupName", "g"), ("DesiredCapacity", "3")],
    );
    let left = e.in_state("g", S::InService);
    assert!(left.contains(&first[0]));
    assert!(!left.contains(&first[1]));
    e.check_invariants();
}

#[test]
fn validation_messages() {
    let mut e = Env::new();
    let err = e
        .call(
            "CreateAutoScalingGroup",
            &[
                ("AutoScalingGroupName", "g"),
                ("MinSize", "4"),
                ("MaxSize", "10"),
                ("DesiredCapacity", "2"),
                ("LaunchConfigurationName", "lc"),
            ],
        )
        .unwrap_err();
    assert_eq!(
        err.message,
        "Desired capacity:2 must be between the specified min size:4 and max size:10"
    );
    e.group("g", "1", "1", "1", &[]);
    let err = e
        .call(
            "SetDesiredCapacity",
            &[("AutoScalingGroupName", "g"), ("DesiredCapacity", "2")],
        )
        .unwrap_err();
    assert_eq!(
        err.message,
        "New SetDesiredCapacity value 2 is above max value 1 for the AutoScalingGroup."
    );
    let err = e
        .call(
            "CreateAutoScalingGroup",
            &[
                ("AutoScalingGroupName", "g"),
                ("MinSize", "1"),
                ("MaxSize", "1"),
                ("LaunchConfigurationName", "lc"),
            ],
        )
        .unwrap_err();
    assert_eq!(err.code, "AlreadyExists");
    let id = e.in_state("g", S::InService)[0].clone();
    let err = e
        .call(
            "TerminateInstanceInAutoScalingGroup",
            &[
                ("InstanceId", &id),
                ("ShouldDecrementDesiredCapacity", "true"),
            ],
        )
        .unwrap_err();
    assert!(
        err.message
            .starts_with("Currently, desiredSize equals minSize (1).")
    );
    let err = e
        .call(
            "CompleteLifecycleAction",
            &[
                ("AutoScalingGroupName", "g"),
                ("LifecycleHookName", "h"),
                ("LifecycleActionResult", "CONTINUE"),
            ],
        )
        .unwrap_err();
    assert_eq!(err.code, "ValidationError");
    let err = e
        .call(
            "CompleteLifecycleAction",
            &[
                ("AutoScalingGroupName", "g"),
                ("LifecycleHookName", "h"),
                ("InstanceId", &id),
                ("LifecycleActionResult", "CONTINUE"),
            ],
        )
        .unwrap_err();
    assert_eq!(
        err.message,
        format!("No active Lifecycle Action found with instance ID {id}")
    );
    // The test notification fails when the target does not exist.
    let err = e
        .call(
            "PutLifecycleHook",
            &[
                ("AutoScalingGroupName", "g"),
                ("LifecycleHookName", "h"),
                ("LifecycleTransition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
                (
                    "NotificationTargetARN",
                    "arn:aws:sqs:us-east-1:000000000000:nope",
                ),
                ("RoleARN", "arn:aws:iam::000000000000:role/r"),
            ],
        )
        .unwrap_err();
    assert!(err.message.starts_with(
        "Unable to publish test message to notification target arn:aws:sqs:us-east-1:000000000000:nope using IAM role arn:aws:iam::000000000000:role/r"
    ));
    // A target without a role.
    let err = e
        .call(
            "PutLifecycleHook",
            &[
                ("AutoScalingGroupName", "g"),
                ("LifecycleHookName", "h"),
                ("LifecycleTransition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
                (
                    "NotificationTargetARN",
                    "arn:aws:sqs:us-east-1:000000000000:nope",
                ),
            ],
        )
        .unwrap_err();
    assert!(err.message.contains("RoleARN"));
    let err = e
        .call(
            "PutLifecycleHook",
            &[
                ("AutoScalingGroupName", "g"),
                ("LifecycleHookName", "h"),
                ("LifecycleTransition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
                ("HeartbeatTimeout", "29"),
            ],
        )
        .unwrap_err();
    assert!(err.message.contains("HeartbeatTimeout"));
    let err = e
        .call(
            "PutLifecycleHook",
            &[
                ("AutoScalingGroupName", "g"),
                ("LifecycleHookName", "has space"),
                ("LifecycleTransition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
            ],
        )
        .unwrap_err();
    assert!(err.message.contains("lifecycleHookName"));
    for k in 0..50 {
        e.ok(
            "PutLifecycleHook",
            &[
                ("AutoScalingGroupName", "g"),
                ("LifecycleHookName", &format!("h{k}")),
                ("LifecycleTransition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
            ],
        );
    }
    let err = e
        .call(
            "PutLifecycleHook",
            &[
                ("AutoScalingGroupName", "g"),
                ("LifecycleHookName", "h50"),
                ("LifecycleTransition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
            ],
        )
        .unwrap_err();
    assert_eq!(err.code, "LimitExceeded");
    let xml = e.ok(
        "DescribeLifecycleHooks",
        &[
            ("AutoScalingGroupName", "g"),
            ("LifecycleHookNames.member.1", "h0"),
        ],
    );
    assert!(xml.contains("<HeartbeatTimeout>3600</HeartbeatTimeout><GlobalTimeout>172800</GlobalTimeout><DefaultResult>ABANDON</DefaultResult>"), "{xml}");
}

#[test]
fn standby_detach_attach_fire_no_hooks() {
    let mut e = Env::new();
    e.group("g", "0", "5", "2", &[]);
    let ids = e.in_state("g", S::InService);
    e.ok(
        "PutLifecycleHook",
        &[
            ("AutoScalingGroupName", "g"),
            ("LifecycleHookName", "l"),
            ("LifecycleTransition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
        ],
    );
    e.ok(
        "PutLifecycleHook",
        &[
            ("AutoScalingGroupName", "g"),
            ("LifecycleHookName", "t"),
            (
                "LifecycleTransition",
                "autoscaling:EC2_INSTANCE_TERMINATING",
            ),
        ],
    );
    let xml = e.ok(
        "EnterStandby",
        &[
            ("AutoScalingGroupName", "g"),
            ("InstanceIds.member.1", &ids[0]),
            ("ShouldDecrementDesiredCapacity", "true"),
        ],
    );
    assert!(xml.contains("<StatusCode>InProgress</StatusCode>"));
    assert_eq!(e.in_state("g", S::Standby), vec![ids[0].clone()]);
    e.ok(
        "ExitStandby",
        &[
            ("AutoScalingGroupName", "g"),
            ("InstanceIds.member.1", &ids[0]),
        ],
    );
    e.ok(
        "DetachInstances",
        &[
            ("AutoScalingGroupName", "g"),
            ("InstanceIds.member.1", &ids[1]),
            ("ShouldDecrementDesiredCapacity", "true"),
        ],
    );
    e.ok(
        "AttachInstances",
        &[
            ("AutoScalingGroupName", "g"),
            ("InstanceIds.member.1", "i-0123456789abcdef0"),
        ],
    );
    assert!(e.actions().is_empty());
    assert_eq!(e.in_state("g", S::InService).len(), 2);
    assert_eq!(e.state().groups["g"].desired, 2);
}

#[test]
fn instance_refresh_replaces_through_hooks() {
    let mut e = Env::new();
    e.group("g", "2", "4", "2", &[]);
    let old = e.in_state("g", S::InService);
    e.ok(
        "PutLifecycleHook",
        &[
            ("AutoScalingGroupName", "g"),
            ("LifecycleHookName", "l"),
            ("LifecycleTransition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
            ("HeartbeatTimeout", "60"),
            ("DefaultResult", "CONTINUE"),
        ],
    );
    e.ok(
        "PutLifecycleHook",
        &[
            ("AutoScalingGroupName", "g"),
            ("LifecycleHookName", "t"),
            (
                "LifecycleTransition",
                "autoscaling:EC2_INSTANCE_TERMINATING",
            ),
            ("HeartbeatTimeout", "60"),
            ("DefaultResult", "CONTINUE"),
        ],
    );
    e.ok(
        "StartInstanceRefresh",
        &[
            ("AutoScalingGroupName", "g"),
            ("Preferences.MinHealthyPercentage", "50"),
        ],
    );
    let err = e
        .call("StartInstanceRefresh", &[("AutoScalingGroupName", "g")])
        .unwrap_err();
    assert_eq!(err.code, "InstanceRefreshInProgress");
    // One at a time (50 % of 2 must stay healthy).
    assert_eq!(e.in_state("g", S::TerminatingWait).len(), 1);
    for _ in 0..10 {
        e.advance(60);
        e.check_invariants();
    }
    let now: Vec<String> = e.in_state("g", S::InService);
    assert_eq!(now.len(), 2);
    assert!(now.iter().all(|i| !old.contains(i)));
    assert_eq!(e.state().refreshes[0].status, "Successful");
}

/// What a handler reads to tell a refresh's termination from a scale-in (the `image`
/// step's `only_if = "unexpected-scale-in"`): DescribeInstanceRefreshes says `InProgress`
/// while the refresh's victim waits in the terminate hook, and `Cancelling` after a
/// cancel until that victim is gone.
#[test]
fn a_refresh_is_in_progress_while_its_victim_waits_in_the_terminate_hook() {
    let mut e = Env::new();
    e.group("g", "0", "2", "1", &[]);
    e.ok(
        "PutLifecycleHook",
        &[
            ("AutoScalingGroupName", "g"),
            ("LifecycleHookName", "t"),
            (
                "LifecycleTransition",
                "autoscaling:EC2_INSTANCE_TERMINATING",
            ),
            ("HeartbeatTimeout", "60"),
            ("DefaultResult", "CONTINUE"),
        ],
    );
    e.ok(
        "StartInstanceRefresh",
        &[
            ("AutoScalingGroupName", "g"),
            ("Preferences.MinHealthyPercentage", "0"),
        ],
    );
    assert_eq!(e.in_state("g", S::TerminatingWait).len(), 1);
    let status = |e: &mut Env| {
        let xml = e.ok(
            "DescribeInstanceRefreshes",
            &[("AutoScalingGroupName", "g")],
        );
        let start = xml.find("<Status>").expect("a status") + "<Status>".len();
        let end = xml[start..].find("</Status>").expect("end") + start;
        xml[start..end].to_owned()
    };
    assert_eq!(status(&mut e), "InProgress");
    e.ok("CancelInstanceRefresh", &[("AutoScalingGroupName", "g")]);
    assert_eq!(
        status(&mut e),
        "Cancelling",
        "the victim is still in Terminating:Wait"
    );
    // The hook times out (CONTINUE): the victim goes, the refresh is over.
    e.advance(61);
    assert!(e.in_state("g", S::TerminatingWait).is_empty());
    assert_eq!(status(&mut e), "Cancelled");
}

#[derive(Debug, Clone)]
enum Op {
    SetDesired(u8),
    Complete(usize, bool),
    Heartbeat(usize),
    Advance(u16),
    Terminate(usize, bool),
    Standby(usize, bool),
    ExitStandby(usize),
    Detach(usize, bool),
    Attach,
    Protect(usize, bool),
    Unhealthy(usize),
    DeleteHook(bool),
    PutHook(bool, u16, bool),
    Refresh,
    CancelRefresh,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6).prop_map(Op::SetDesired),
        (any::<usize>(), any::<bool>()).prop_map(|(a, b)| Op::Complete(a, b)),
        any::<usize>().prop_map(Op::Heartbeat),
        (0u16..400).prop_map(Op::Advance),
        (any::<usize>(), any::<bool>()).prop_map(|(a, b)| Op::Terminate(a, b)),
        (any::<usize>(), any::<bool>()).prop_map(|(a, b)| Op::Standby(a, b)),
        any::<usize>().prop_map(Op::ExitStandby),
        (any::<usize>(), any::<bool>()).prop_map(|(a, b)| Op::Detach(a, b)),
        Just(Op::Attach),
        (any::<usize>(), any::<bool>()).prop_map(|(a, b)| Op::Protect(a, b)),
        any::<usize>().prop_map(Op::Unhealthy),
        any::<bool>().prop_map(Op::DeleteHook),
        (any::<bool>(), 0u16..200, any::<bool>()).prop_map(|(a, b, c)| Op::PutHook(a, b, c)),
        Just(Op::Refresh),
        Just(Op::CancelRefresh),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random operation sequences never panic and keep the invariants: actions exist only
    /// for instances in the matching wait state, every waiting instance has an action,
    /// min ≤ desired ≤ max, and after reconcile the counted instances never fall short of
    /// desired (the back-off is off here).
    #[test]
    fn random_ops_keep_invariants(ops in proptest::collection::vec(op(), 1..40)) {
        let mut e = Env::with(Options { abandon_backoff_base_secs: 0, ..Options::default() });
        e.group("g", "0", "5", "2", &[
            ("l", "LAUNCHING", "30", "CONTINUE"),
            ("t", "TERMINATING", "60", "ABANDON"),
        ]);
        for o in ops {
            let members: Vec<String> = e.members("g").into_iter().map(|(i, _)| i).collect();
            let pick = |k: usize| members.get(k % members.len().max(1)).cloned().unwrap_or_else(|| "i-0000".into());
            let _ = match o {
                Op::SetDesired(d) => e.call("SetDesiredCapacity", &[("AutoScalingGroupName", "g"), ("DesiredCapacity", &d.to_string())]),
                Op::Complete(k, c) => {
                    let acts = e.actions();
                    match acts.get(k % acts.len().max(1)) {
                        Some(a) => {
                            let (h, t) = (a.hook.clone(), a.token.clone());
                            e.complete("g", &h, &t, if c { "CONTINUE" } else { "ABANDON" })
                        }
                        None => e.complete("g", "l", "00000000-0000-0000-0000-000000000000", "CONTINUE"),
                    }
                }
                Op::Heartbeat(k) => {
                    let acts = e.actions();
                    match acts.get(k % acts.len().max(1)) {
                        Some(a) => {
                            let (h, i) = (a.hook.clone(), a.instance.clone());
                            e.call("RecordLifecycleActionHeartbeat", &[("AutoScalingGroupName", "g"), ("LifecycleHookName", &h), ("InstanceId", &i)])
                        }
                        None => Ok(String::new()),
                    }
                }
                Op::Advance(s) => { e.advance(u64::from(s)); Ok(String::new()) }
                Op::Terminate(k, d) => e.call("TerminateInstanceInAutoScalingGroup", &[("InstanceId", &pick(k)), ("ShouldDecrementDesiredCapacity", if d { "true" } else { "false" })]),
                Op::Standby(k, d) => e.call("EnterStandby", &[("AutoScalingGroupName", "g"), ("InstanceIds.member.1", &pick(k)), ("ShouldDecrementDesiredCapacity", if d { "true" } else { "false" })]),
                Op::ExitStandby(k) => e.call("ExitStandby", &[("AutoScalingGroupName", "g"), ("InstanceIds.member.1", &pick(k))]),
                Op::Detach(k, d) => e.call("DetachInstances", &[("AutoScalingGroupName", "g"), ("InstanceIds.member.1", &pick(k)), ("ShouldDecrementDesiredCapacity", if d { "true" } else { "false" })]),
                Op::Attach => e.call("AttachInstances", &[("AutoScalingGroupName", "g"), ("InstanceIds.member.1", &crate::ids::hex_id("i"))]),
                Op::Protect(k, p) => e.call("SetInstanceProtection", &[("AutoScalingGroupName", "g"), ("InstanceIds.member.1", &pick(k)), ("ProtectedFromScaleIn", if p { "true" } else { "false" })]),
                Op::Unhealthy(k) => e.call("SetInstanceHealth", &[("InstanceId", &pick(k)), ("HealthStatus", "Unhealthy")]),
                Op::DeleteHook(l) => e.call("DeleteLifecycleHook", &[("AutoScalingGroupName", "g"), ("LifecycleHookName", if l { "l" } else { "t" })]),
                Op::PutHook(l, hb, c) => e.call("PutLifecycleHook", &[
                    ("AutoScalingGroupName", "g"),
                    ("LifecycleHookName", if l { "l" } else { "t" }),
                    ("LifecycleTransition", if l { "autoscaling:EC2_INSTANCE_LAUNCHING" } else { "autoscaling:EC2_INSTANCE_TERMINATING" }),
                    ("HeartbeatTimeout", &(u32::from(hb) + 20).to_string()),
                    ("DefaultResult", if c { "CONTINUE" } else { "ABANDON" }),
                ]),
                Op::Refresh => e.call("StartInstanceRefresh", &[("AutoScalingGroupName", "g"), ("Preferences.MinHealthyPercentage", "50")]),
                Op::CancelRefresh => e.call("CancelInstanceRefresh", &[("AutoScalingGroupName", "g")]),
            };
            e.check_invariants();
            let s = e.state();
            let desired = s.groups["g"].desired;
            let counted = s.members("g").filter(|i| counts(i.state)).count() as i64;
            prop_assert!(counted >= desired, "counted {counted} < desired {desired}");
            // Above desired only by instances that may not be scaled in (protected or
            // still pending).
            let stuck = s.members("g").filter(|i| i.state.is_pending() || i.protected).count() as i64;
            prop_assert!(counted <= desired + stuck, "counted {counted} > desired {desired} + {stuck}");
        }
    }
}

#[test]
fn notifications_follow_the_message_formats() {
    let mut e = Env::new();
    e.group("web", "1", "1", "1", &[]);
    // A Lambda target needs no role and no test notification; it still gets a §3.1 body.
    e.ok(
        "PutLifecycleHook",
        &[
            ("AutoScalingGroupName", "web"),
            ("LifecycleHookName", "drain"),
            (
                "LifecycleTransition",
                "autoscaling:EC2_INSTANCE_TERMINATING",
            ),
            (
                "NotificationTargetARN",
                "arn:aws:lambda:us-east-1:000000000000:function:f",
            ),
            ("NotificationMetadata", "{\"k\":1}"),
        ],
    );
    let id = e.in_state("web", S::InService)[0].clone();
    e.ok(
        "TerminateInstanceInAutoScalingGroup",
        &[
            ("InstanceId", &id),
            ("ShouldDecrementDesiredCapacity", "false"),
        ],
    );
    let a = e.actions().into_iter().find(|a| a.instance == id).unwrap();
    let n = super::notify::build_action_notifications(&mut e.w, REGION, &a.token).unwrap();
    let (target, subject, body) = n.target.unwrap();
    assert_eq!(target, "arn:aws:lambda:us-east-1:000000000000:function:f");
    assert_eq!(
        subject,
        format!("Auto Scaling:  Lifecycle action 'TERMINATING' for instance {id} in progress.")
    );
    let keys: Vec<&str> = body
        .trim_matches(['{', '}'])
        .split(",\"")
        .map(|kv| kv.trim_start_matches('"').split('"').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "Origin",
            "LifecycleHookName",
            "Destination",
            "AccountId",
            "RequestId",
            "LifecycleTransition",
            "AutoScalingGroupName",
            "Service",
            "Time",
            "EC2InstanceId",
            "LifecycleActionToken",
            "NotificationMetadata"
        ]
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Origin"], "AutoScalingGroup");
    assert_eq!(v["Destination"], "EC2");
    assert_eq!(v["AccountId"], "000000000000");
    assert_eq!(v["RequestId"], a.activity.as_str());
    assert_eq!(v["NotificationMetadata"], "{\"k\":1}");
    assert_eq!(
        v["Time"].as_str().unwrap().len(),
        "2023-09-11T03:30:33.136Z".len()
    );
    let ev = n.event;
    assert_eq!(ev["detail-type"], "EC2 Instance-terminate Lifecycle Action");
    assert_eq!(ev["source"], "aws.autoscaling");
    assert_eq!(
        ev["time"].as_str().unwrap().len(),
        "2021-02-01T17:18:06Z".len()
    );
    let arn = ev["resources"][0].as_str().unwrap();
    assert!(arn.starts_with("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:"));
    assert!(arn.ends_with(":autoScalingGroupName/web"));
    assert_eq!(ev["detail"]["LifecycleActionToken"], a.token.as_str());
    assert!(ev["detail"].get("AccountId").is_none());
    // Origin/Destination can be switched off (§1.7).
    e.w.behaviour.autoscaling.include_origin_destination = false;
    let n = super::notify::build_action_notifications(&mut e.w, REGION, &a.token).unwrap();
    assert!(!n.target.unwrap().2.contains("Origin"));
    assert!(n.event["detail"].get("Origin").is_none());
}

#[test]
fn options_parse_with_defaults_and_refuse_unknown_fields() {
    let o: Options = serde_json::from_str("{}").unwrap();
    assert_eq!(o, Options::default());
    assert!(o.launch_abandon_runs_terminate_hooks && o.include_origin_destination);
    let o: Options = serde_json::from_str(r#"{"abandon_backoff_base_secs":0}"#).unwrap();
    assert_eq!(o.abandon_backoff_base_secs, 0);
    assert!(serde_json::from_str::<Options>(r#"{"nope":1}"#).is_err());
}

const OPS: &[&str] = &[
    "CreateAutoScalingGroup",
    "UpdateAutoScalingGroup",
    "DeleteAutoScalingGroup",
    "DescribeAutoScalingGroups",
    "DescribeAutoScalingInstances",
    "SetDesiredCapacity",
    "TerminateInstanceInAutoScalingGroup",
    "PutLifecycleHook",
    "DescribeLifecycleHooks",
    "DeleteLifecycleHook",
    "CompleteLifecycleAction",
    "RecordLifecycleActionHeartbeat",
    "DescribeScalingActivities",
    "EnterStandby",
    "ExitStandby",
    "DetachInstances",
    "AttachInstances",
    "SetInstanceProtection",
    "SetInstanceHealth",
    "CreateOrUpdateTags",
    "DeleteTags",
    "DescribeTags",
    "StartInstanceRefresh",
    "DescribeInstanceRefreshes",
    "CancelInstanceRefresh",
    "NoSuchOp",
];

const KEYS: &[&str] = &[
    "AutoScalingGroupName",
    "MinSize",
    "MaxSize",
    "DesiredCapacity",
    "LaunchConfigurationName",
    "LaunchTemplate.LaunchTemplateName",
    "InstanceId",
    "InstanceIds.member.1",
    "ShouldDecrementDesiredCapacity",
    "LifecycleHookName",
    "LifecycleTransition",
    "HeartbeatTimeout",
    "DefaultResult",
    "LifecycleActionToken",
    "LifecycleActionResult",
    "MaxRecords",
    "NextToken",
    "Tags.member.1.Key",
    "Tags.member.1.ResourceId",
    "Filters.member.1.Name",
    "Filters.member.1.Values.member.1",
    "ProtectedFromScaleIn",
    "HealthStatus",
    "ForceDelete",
    "Preferences.MinHealthyPercentage",
    "Strategy",
    "NotificationTargetARN",
    "RoleARN",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any parameters to any operation: an answer or an AWS error, never a panic.
    #[test]
    fn arbitrary_params_never_panic(
        calls in proptest::collection::vec(
            (0..OPS.len(), proptest::collection::vec((0..KEYS.len(), prop_oneof![
                Just("g".to_owned()),
                Just("-1".to_owned()),
                Just("3".to_owned()),
                Just("99999999999999999999".to_owned()),
                Just("true".to_owned()),
                Just("".to_owned()),
                Just("autoscaling:EC2_INSTANCE_LAUNCHING".to_owned()),
                Just("CONTINUE".to_owned()),
                Just("ReplaceRootVolume".to_owned()),
                Just("tag:x".to_owned()),
                ".{0,40}",
            ]), 0..8)),
            1..12,
        )
    ) {
        let mut e = Env::new();
        e.group("g", "0", "3", "1", &[("l", "LAUNCHING", "30", "CONTINUE")]);
        for (op, params) in calls {
            let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (KEYS[*k], v.as_str())).collect();
            let _ = e.call(OPS[op], &pairs);
            e.advance(17);
            e.check_invariants();
        }
    }
}

/// The original O(n²) victim selection, kept as the reference for [`choose_victims`].
fn reference_victims(s: &super::State, group: &str, n: usize) -> Vec<String> {
    use super::engine::Instance;
    let mut az_count: std::collections::BTreeMap<String, i64> = Default::default();
    for i in s.members(group).filter(|i| counts(i.state)) {
        *az_count.entry(i.az.clone()).or_default() += 1;
    }
    let mut candidates: Vec<&Instance> = s
        .members(group)
        .filter(|i| i.state == S::InService && !i.protected)
        .collect();
    let mut out = Vec::new();
    while out.len() < n && !candidates.is_empty() {
        let best = candidates
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| {
                let ca = az_count.get(&a.az).copied().unwrap_or(0);
                let cb = az_count.get(&b.az).copied().unwrap_or(0);
                ca.cmp(&cb)
                    .then(b.launched_at.cmp(&a.launched_at))
                    .then(b.seq.cmp(&a.seq))
                    .then(b.id.cmp(&a.id))
            })
            .map(|(k, _)| k);
        let Some(k) = best else { break };
        let v = candidates.remove(k);
        if let Some(c) = az_count.get_mut(&v.az) {
            *c -= 1;
        }
        out.push(v.id.clone());
    }
    out
}

proptest! {
    /// The indexed victim selection picks exactly what the original scan picked, and the
    /// incremental counts agree with a full scan.
    #[test]
    fn victims_and_counts_match_the_reference(
        insts in proptest::collection::vec((0u8..4, 0u8..5, 0u64..4, any::<bool>(), 0u8..3), 0..40),
        n in 0usize..45,
    ) {
        use super::engine::{Instance, choose_victims};
        let states = [S::InService, S::PendingWait, S::Standby, S::TerminatingWait, S::InService];
        let mut s = super::State::default();
        for (k, (az, st, launched, protected, group)) in insts.into_iter().enumerate() {
            let group = if group == 0 { "other" } else { "g" };
            s.insert_instance(Instance {
                id: format!("i-{:017x}", (k * 7919) % 1000),
                group: group.into(),
                in_group: st != 4 || k % 2 == 0,
                az: format!("us-east-1{}", (b'a' + az) as char),
                subnet: None,
                state: states[st as usize],
                healthy: true,
                protected,
                launch_template: None,
                launch_config: None,
                instance_type: "t3.micro".into(),
                launched_at: launched,
                seq: (k as u64 * 31) % 17,
                ended_at: None,
                activity: None,
            });
        }
        prop_assert_eq!(choose_victims(&s, "g", n), reference_victims(&s, "g", n));
        let scan = s.members("g").filter(|i| counts(i.state)).count() as i64;
        prop_assert_eq!(s.counted("g"), scan);
    }
}

/// The lane of `instance` in the region's timeline.
fn lane_of(e: &mut Env, instance: &str) -> super::timeline::Lane {
    e.state()
        .timeline
        .lanes()
        .into_iter()
        .find(|l| l.instance == instance)
        .expect("a lane for the instance")
}

#[test]
fn timeline_records_every_state_heartbeat_and_who_resolved_each_action() {
    use super::timeline::By;
    use lifehook_model::LifecycleResult;
    let mut e = Env::new();
    e.group(
        "g",
        "0",
        "4",
        "2",
        &[
            ("launch", "LAUNCHING", "60", "ABANDON"),
            ("drain", "TERMINATING", "120", "CONTINUE"),
        ],
    );
    let waiting = e.in_state("g", S::PendingWait);
    let (a, b) = (waiting[0].clone(), waiting[1].clone());
    // a: a heartbeat at +10 s, then a handler's CONTINUE at +20 s.
    e.advance(10);
    e.ok(
        "RecordLifecycleActionHeartbeat",
        &[
            ("AutoScalingGroupName", "g"),
            ("LifecycleHookName", "launch"),
            ("InstanceId", &a),
        ],
    );
    e.advance(10);
    let t = token_of(&mut e, &a, "launch");
    e.complete("g", "launch", &t, "CONTINUE").unwrap();
    let lane = lane_of(&mut e, &a);
    let states: Vec<(S, u64, Option<u64>)> = lane
        .states
        .iter()
        .map(|s| (s.state, s.from - T0, s.to.map(|t| t - T0)))
        .collect();
    assert_eq!(
        states,
        [
            (S::Pending, 0, Some(0)),
            (S::PendingWait, 0, Some(20_000)),
            (S::PendingProceed, 20_000, Some(20_000)),
            (S::InService, 20_000, None),
        ]
    );
    assert_eq!(lane.group, "g");
    let action = &lane.actions[0];
    assert_eq!(
        (action.hook.as_str(), action.token.as_str()),
        ("launch", t.as_str())
    );
    assert_eq!(action.heartbeats, [T0 + 10_000]);
    assert_eq!(action.heartbeat_deadline, T0 + 70_000);
    let end = action.end.clone().unwrap();
    assert_eq!(
        (end.at, end.result, end.by, end.how),
        (
            T0 + 20_000,
            Some(LifecycleResult::Continue),
            By::Handler,
            "completed"
        )
    );
    // b: nobody answers; at +60 s the DefaultResult ABANDON applies, then the terminate
    // hook's DefaultResult CONTINUE at +180 s.
    e.advance(160);
    let lane = lane_of(&mut e, &b);
    let ends: Vec<(String, u64, Option<LifecycleResult>, By, &str)> = lane
        .actions
        .iter()
        .map(|a| {
            let end = a.end.clone().unwrap();
            (a.hook.clone(), end.at - T0, end.result, end.by, end.how)
        })
        .collect();
    assert_eq!(
        ends,
        [
            (
                "launch".into(),
                60_000,
                Some(LifecycleResult::Abandon),
                By::DefaultResult,
                "heartbeat-timeout"
            ),
            (
                "drain".into(),
                180_000,
                Some(LifecycleResult::Continue),
                By::DefaultResult,
                "heartbeat-timeout"
            ),
        ]
    );
    let states: Vec<S> = lane.states.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            S::Pending,
            S::PendingWait,
            S::Terminating,
            S::TerminatingWait,
            S::TerminatingProceed,
            S::Terminated,
        ]
    );
    assert_eq!(lane.states[3].from, T0 + 60_000);
    e.check_invariants();
}

#[test]
fn timeline_keeps_the_last_events_and_counts_the_dropped() {
    use super::timeline::{MAX_TIMELINE_EVENTS, Timeline, What};
    let mut t = Timeline::default();
    for k in 0..MAX_TIMELINE_EVENTS + 5 {
        t.push(k as u64, "g", &format!("i-{k}"), What::State(S::Pending));
    }
    assert_eq!(t.events().count(), MAX_TIMELINE_EVENTS);
    assert_eq!(t.dropped(), 5);
    assert_eq!(t.events().next().unwrap().instance, "i-5");
}
