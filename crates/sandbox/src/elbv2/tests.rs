//! ELBv2 unit tests: operations (ELBv2 and Auto Scaling) run directly on a [`World`], with
//! virtual time moved by `run_until`.

use lifehook_model::LifecycleState as S;
use proptest::prelude::*;

use crate::autoscaling::Options;
use crate::protocol::RequestCtx;
use crate::protocol::{AwsError, Params, Service, Wire};
use crate::world::{Behaviour, World};

const REGION: &str = "us-east-1";
const T0: u64 = 1_700_000_000_000;

struct Env {
    w: World,
}

fn params(pairs: &[(&str, &str)]) -> Params {
    Params::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn ctx(service: Service, op: &str) -> RequestCtx {
    RequestCtx {
        request_id: "rid".into(),
        region: REGION.into(),
        host: "h".into(),
        path: "/".into(),
        service,
        wire: Wire::Query,
        op: op.into(),
    }
}

/// The text of the first `<tag>` after `from` in `xml`.
fn text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(&xml[start..end])
}

impl Env {
    fn new() -> Env {
        Env::with(Options::default())
    }

    fn with(autoscaling: Options) -> Env {
        let behaviour = Behaviour {
            autoscaling,
            ..Behaviour::default()
        };
        Env {
            w: World::new(T0, behaviour),
        }
    }

    fn settle(&mut self) {
        let now = self.w.now;
        self.w.run_until(now);
    }

    fn elb(&mut self, op: &str, pairs: &[(&str, &str)]) -> Result<String, AwsError> {
        let r = super::ops::dispatch(&mut self.w, &ctx(Service::Elbv2, op), &params(pairs));
        self.settle();
        r
    }

    fn elb_ok(&mut self, op: &str, pairs: &[(&str, &str)]) -> String {
        self.elb(op, pairs)
            .unwrap_or_else(|e| panic!("{op} failed: {e}"))
    }

    fn asg(&mut self, op: &str, pairs: &[(&str, &str)]) -> Result<String, AwsError> {
        let r = crate::autoscaling::ops::dispatch(
            &mut self.w,
            &ctx(Service::AutoScaling, op),
            &params(pairs),
        );
        self.settle();
        r
    }

    fn asg_ok(&mut self, op: &str, pairs: &[(&str, &str)]) -> String {
        self.asg(op, pairs)
            .unwrap_or_else(|e| panic!("{op} failed: {e}"))
    }

    fn advance(&mut self, secs: u64) {
        let to = self.w.now + secs * 1000;
        self.w.run_until(to);
    }

    /// Creates an HTTP target group on port 80 and returns its ARN.
    fn target_group(&mut self, name: &str, extra: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("Name", name),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("VpcId", "vpc-1"),
        ];
        pairs.extend_from_slice(extra);
        let xml = self.elb_ok("CreateTargetGroup", &pairs);
        text(&xml, "TargetGroupArn").expect("arn").to_owned()
    }

    /// The (state, reason) of `id` in `tg`, as DescribeTargetHealth reports it.
    fn health(&mut self, tg: &str, id: &str) -> (String, Option<String>) {
        let xml = self.elb_ok(
            "DescribeTargetHealth",
            &[("TargetGroupArn", tg), ("Targets.member.1.Id", id)],
        );
        (
            text(&xml, "State").expect("state").to_owned(),
            text(&xml, "Reason").map(str::to_owned),
        )
    }

    fn members(&mut self, g: &str) -> Vec<(String, S)> {
        self.w
            .region(REGION)
            .autoscaling
            .members(g)
            .map(|i| (i.id.clone(), i.state))
            .collect()
    }

    fn tokens(&mut self, instance: &str) -> Vec<(String, String)> {
        self.w
            .region(REGION)
            .autoscaling
            .actions
            .values()
            .filter(|a| a.instance == instance)
            .map(|a| (a.hook.clone(), a.token.clone()))
            .collect()
    }

    fn group(&mut self, name: &str, desired: &str, tg: &str, hooks: &[(&str, &str)]) {
        let mut pairs: Vec<(String, String)> = vec![
            ("AutoScalingGroupName".into(), name.into()),
            ("MinSize".into(), "0".into()),
            ("MaxSize".into(), "5".into()),
            ("DesiredCapacity".into(), desired.into()),
            ("LaunchTemplate.LaunchTemplateName".into(), "lt-web".into()),
            ("VPCZoneIdentifier".into(), "subnet-a".into()),
            ("TargetGroupARNs.member.1".into(), tg.into()),
        ];
        for (k, (hn, tr)) in hooks.iter().enumerate() {
            let pre = format!("LifecycleHookSpecificationList.member.{}", k + 1);
            pairs.push((format!("{pre}.LifecycleHookName"), hn.to_string()));
            pairs.push((
                format!("{pre}.LifecycleTransition"),
                format!("autoscaling:EC2_INSTANCE_{tr}"),
            ));
            pairs.push((format!("{pre}.HeartbeatTimeout"), "3600".into()));
            pairs.push((format!("{pre}.DefaultResult"), "ABANDON".into()));
        }
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        self.asg_ok("CreateAutoScalingGroup", &refs);
    }
}

#[test]
fn create_describe_and_defaults() {
    let mut e = Env::new();
    let xml = e.elb_ok(
        "CreateTargetGroup",
        &[
            ("Name", "web"),
            ("Protocol", "HTTP"),
            ("Port", "8080"),
            ("VpcId", "vpc-1"),
        ],
    );
    assert!(xml.starts_with(
        "<CreateTargetGroupResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><CreateTargetGroupResult><TargetGroups><member>"
    ));
    let arn = text(&xml, "TargetGroupArn").unwrap().to_owned();
    let (prefix, id) = arn.rsplit_once('/').unwrap();
    assert_eq!(
        prefix,
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web"
    );
    assert_eq!(id.len(), 16);
    assert_eq!(text(&xml, "HealthCheckIntervalSeconds"), Some("30"));
    assert_eq!(text(&xml, "HealthyThresholdCount"), Some("5"));
    assert_eq!(text(&xml, "HealthCheckPort"), Some("traffic-port"));
    assert_eq!(text(&xml, "HttpCode"), Some("200"));
    assert_eq!(text(&xml, "TargetType"), Some("instance"));

    // Creating the same group again answers the existing one; different settings refuse.
    let again = e.elb_ok(
        "CreateTargetGroup",
        &[
            ("Name", "web"),
            ("Protocol", "HTTP"),
            ("Port", "8080"),
            ("VpcId", "vpc-1"),
        ],
    );
    assert_eq!(text(&again, "TargetGroupArn"), Some(arn.as_str()));
    let err = e
        .elb(
            "CreateTargetGroup",
            &[
                ("Name", "web"),
                ("Protocol", "HTTP"),
                ("Port", "81"),
                ("VpcId", "vpc-1"),
            ],
        )
        .unwrap_err();
    assert_eq!(err.code, "DuplicateTargetGroupName");

    let by_name = e.elb_ok("DescribeTargetGroups", &[("Names.member.1", "web")]);
    assert_eq!(text(&by_name, "TargetGroupArn"), Some(arn.as_str()));
    let by_arn = e.elb_ok(
        "DescribeTargetGroups",
        &[("TargetGroupArns.member.1", arn.as_str())],
    );
    assert_eq!(text(&by_arn, "TargetGroupName"), Some("web"));
    let err = e
        .elb("DescribeTargetGroups", &[("Names.member.1", "nope")])
        .unwrap_err();
    assert_eq!(err.code, "TargetGroupNotFound");

    e.elb_ok("DeleteTargetGroup", &[("TargetGroupArn", arn.as_str())]);
    let none = e.elb_ok("DescribeTargetGroups", &[]);
    assert!(none.contains("<TargetGroups/>"), "{none}");
}

#[test]
fn validation_errors_have_aws_codes() {
    let mut e = Env::new();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("Protocol", "HTTP"), ("Port", "80"), ("VpcId", "v")],
            "ValidationError",
        ),
        (
            &[
                ("Name", "-bad"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("VpcId", "v"),
            ],
            "ValidationError",
        ),
        (
            &[
                ("Name", "a_b"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("VpcId", "v"),
            ],
            "ValidationError",
        ),
        (
            &[("Name", "x"), ("Port", "80"), ("VpcId", "v")],
            "ValidationError",
        ),
        (
            &[
                ("Name", "x"),
                ("Protocol", "FTP"),
                ("Port", "80"),
                ("VpcId", "v"),
            ],
            "ValidationError",
        ),
        (
            &[
                ("Name", "x"),
                ("Protocol", "HTTP"),
                ("Port", "0"),
                ("VpcId", "v"),
            ],
            "ValidationError",
        ),
        (
            &[("Name", "x"), ("Protocol", "HTTP"), ("Port", "80")],
            "ValidationError",
        ),
        (
            &[
                ("Name", "x"),
                ("Protocol", "HTTP"),
                ("Port", "eighty"),
                ("VpcId", "v"),
            ],
            "ValidationError",
        ),
        (
            &[
                ("Name", "x"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("VpcId", "v"),
                ("HealthCheckIntervalSeconds", "10"),
                ("HealthCheckTimeoutSeconds", "10"),
            ],
            "ValidationError",
        ),
        (
            &[
                ("Name", "x"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("VpcId", "v"),
                ("HealthyThresholdCount", "11"),
            ],
            "ValidationError",
        ),
    ];
    for (pairs, code) in cases {
        let err = e.elb("CreateTargetGroup", pairs).unwrap_err();
        assert_eq!(&err.code, code, "{pairs:?}: {err}");
    }
    let tg = e.target_group("web", &[]);
    let missing =
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/x/0123456789abcdef";
    for op in ["DescribeTargetHealth", "DescribeTargetGroupAttributes"] {
        assert_eq!(
            e.elb(op, &[("TargetGroupArn", missing)]).unwrap_err().code,
            "TargetGroupNotFound"
        );
    }
    assert_eq!(
        e.elb(
            "RegisterTargets",
            &[
                ("TargetGroupArn", missing),
                ("Targets.member.1.Id", "i-0123456789abcdef0")
            ]
        )
        .unwrap_err()
        .code,
        "TargetGroupNotFound"
    );
    assert_eq!(
        e.elb("RegisterTargets", &[("TargetGroupArn", tg.as_str())])
            .unwrap_err()
            .code,
        "ValidationError"
    );
    assert_eq!(
        e.elb(
            "RegisterTargets",
            &[
                ("TargetGroupArn", tg.as_str()),
                ("Targets.member.1.Id", "web-1")
            ]
        )
        .unwrap_err()
        .code,
        "ValidationError"
    );
    assert_eq!(
        e.elb(
            "RegisterTargets",
            &[
                ("TargetGroupArn", tg.as_str()),
                ("Targets.member.1.Id", "i-0123456789abcdef0"),
                ("Targets.member.1.Port", "70000"),
            ]
        )
        .unwrap_err()
        .code,
        "ValidationError"
    );
    assert_eq!(
        e.elb("NoSuchOperation", &[]).unwrap_err().code,
        "InvalidAction"
    );
}

#[test]
fn registered_target_goes_initial_then_healthy_on_virtual_time() {
    let mut e = Env::new();
    let tg = e.target_group("web", &[]);
    let id = "i-0123456789abcdef0";
    assert_eq!(
        e.health(&tg, id),
        ("unused".into(), Some("Target.NotRegistered".into()))
    );
    e.elb_ok(
        "RegisterTargets",
        &[("TargetGroupArn", tg.as_str()), ("Targets.member.1.Id", id)],
    );
    assert_eq!(
        e.health(&tg, id),
        ("initial".into(), Some("Elb.RegistrationInProgress".into()))
    );
    // 5 checks × 30 s.
    e.advance(149);
    assert_eq!(e.health(&tg, id).0, "initial");
    e.advance(1);
    assert_eq!(e.health(&tg, id), ("healthy".into(), None));
    // Registering again keeps the state.
    e.elb_ok(
        "RegisterTargets",
        &[("TargetGroupArn", tg.as_str()), ("Targets.member.1.Id", id)],
    );
    assert_eq!(e.health(&tg, id).0, "healthy");
    let all = e.elb_ok("DescribeTargetHealth", &[("TargetGroupArn", tg.as_str())]);
    assert_eq!(text(&all, "Port"), Some("80"));
    assert_eq!(text(&all, "HealthCheckPort"), Some("80"));
}

#[test]
fn health_check_settings_choose_the_time_to_healthy() {
    let mut e = Env::new();
    let tg = e.target_group(
        "fast",
        &[
            ("HealthCheckIntervalSeconds", "10"),
            ("HealthyThresholdCount", "2"),
        ],
    );
    let id = "i-0123456789abcdef0";
    e.elb_ok(
        "RegisterTargets",
        &[
            ("TargetGroupArn", tg.as_str()),
            ("Targets.member.1.Id", id),
            ("Targets.member.1.Port", "8080"),
        ],
    );
    e.advance(19);
    let xml = e.elb_ok("DescribeTargetHealth", &[("TargetGroupArn", tg.as_str())]);
    assert_eq!(text(&xml, "State"), Some("initial"));
    assert_eq!(text(&xml, "Port"), Some("8080"));
    e.advance(1);
    let xml = e.elb_ok("DescribeTargetHealth", &[("TargetGroupArn", tg.as_str())]);
    assert_eq!(text(&xml, "State"), Some("healthy"));

    let off = e.target_group("off", &[("HealthCheckEnabled", "false")]);
    e.elb_ok(
        "RegisterTargets",
        &[
            ("TargetGroupArn", off.as_str()),
            ("Targets.member.1.Id", id),
        ],
    );
    assert_eq!(
        e.health(&off, id),
        (
            "unavailable".into(),
            Some("Target.HealthCheckDisabled".into())
        )
    );
}

#[test]
fn deregistered_target_drains_for_the_delay_then_is_gone() {
    let mut e = Env::new();
    let tg = e.target_group("web", &[]);
    let id = "i-0123456789abcdef0";
    let reg = [("TargetGroupArn", tg.as_str()), ("Targets.member.1.Id", id)];
    e.elb_ok("RegisterTargets", &reg);
    e.advance(150);
    e.elb_ok("DeregisterTargets", &reg);
    assert_eq!(
        e.health(&tg, id),
        (
            "draining".into(),
            Some("Target.DeregistrationInProgress".into())
        )
    );
    e.advance(299);
    assert_eq!(e.health(&tg, id).0, "draining");
    e.advance(1);
    assert_eq!(e.health(&tg, id).0, "unused");
    let all = e.elb_ok("DescribeTargetHealth", &[("TargetGroupArn", tg.as_str())]);
    assert!(all.contains("<TargetHealthDescriptions/>"), "{all}");

    // Registering a draining target starts it over; the old drain timer is stale.
    e.elb_ok("RegisterTargets", &reg);
    e.advance(150);
    e.elb_ok("DeregisterTargets", &reg);
    e.advance(100);
    e.elb_ok("RegisterTargets", &reg);
    assert_eq!(e.health(&tg, id).0, "initial");
    e.advance(200);
    assert_eq!(e.health(&tg, id).0, "healthy");
}

#[test]
fn attributes_set_the_deregistration_delay() {
    let mut e = Env::new();
    let tg = e.target_group("web", &[]);
    let xml = e.elb_ok(
        "DescribeTargetGroupAttributes",
        &[("TargetGroupArn", tg.as_str())],
    );
    assert!(
        xml.contains(
            "<member><Key>deregistration_delay.timeout_seconds</Key><Value>300</Value></member>"
        ),
        "{xml}"
    );
    let set = |v: &'static str| {
        vec![
            ("TargetGroupArn", tg.clone()),
            (
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds".to_owned(),
            ),
            ("Attributes.member.1.Value", v.to_owned()),
        ]
    };
    for bad in ["3601", "-1", "soon"] {
        let pairs = set(bad);
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            e.elb("ModifyTargetGroupAttributes", &refs)
                .unwrap_err()
                .code,
            "ValidationError"
        );
    }
    let unknown = e
        .elb(
            "ModifyTargetGroupAttributes",
            &[
                ("TargetGroupArn", tg.as_str()),
                ("Attributes.member.1.Key", "no.such.key"),
                ("Attributes.member.1.Value", "1"),
            ],
        )
        .unwrap_err();
    assert_eq!(unknown.code, "ValidationError");
    let pairs = set("30");
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = e.elb_ok("ModifyTargetGroupAttributes", &refs);
    assert!(out.contains("<Value>30</Value>"), "{out}");

    let id = "i-0123456789abcdef0";
    let reg = [("TargetGroupArn", tg.as_str()), ("Targets.member.1.Id", id)];
    e.elb_ok("RegisterTargets", &reg);
    e.elb_ok("DeregisterTargets", &reg);
    e.advance(29);
    assert_eq!(e.health(&tg, id).0, "draining");
    e.advance(1);
    assert_eq!(e.health(&tg, id).0, "unused");

    // A zero delay removes the target at once.
    let pairs = set("0");
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    e.elb_ok("ModifyTargetGroupAttributes", &refs);
    e.elb_ok("RegisterTargets", &reg);
    e.elb_ok("DeregisterTargets", &reg);
    assert_eq!(e.health(&tg, id).0, "unused");
}

#[test]
fn instances_register_on_in_service_after_the_launch_hook() {
    let mut e = Env::new();
    let tg = e.target_group("web", &[]);
    e.group("g", "1", &tg, &[("launch", "LAUNCHING")]);
    let members = e.members("g");
    let (id, state) = members[0].clone();
    assert_eq!(state, S::PendingWait);
    // §2.7: not registered while the launch hook holds it.
    assert_eq!(e.health(&tg, &id).0, "unused");
    let (_, token) = e.tokens(&id)[0].clone();
    e.asg_ok(
        "CompleteLifecycleAction",
        &[
            ("AutoScalingGroupName", "g"),
            ("LifecycleHookName", "launch"),
            ("LifecycleActionToken", &token),
            ("LifecycleActionResult", "CONTINUE"),
        ],
    );
    assert_eq!(e.members("g")[0].1, S::InService);
    assert_eq!(e.health(&tg, &id).0, "initial");
    e.advance(150);
    assert_eq!(e.health(&tg, &id).0, "healthy");
    let d = e.asg_ok("DescribeAutoScalingGroups", &[]);
    assert!(
        d.contains(&format!(
            "<TargetGroupARNs><member>{tg}</member></TargetGroupARNs>"
        )),
        "{d}"
    );
    let lb = e.asg_ok(
        "DescribeLoadBalancerTargetGroups",
        &[("AutoScalingGroupName", "g")],
    );
    assert_eq!(text(&lb, "LoadBalancerTargetGroupARN"), Some(tg.as_str()));
    assert_eq!(text(&lb, "State"), Some("InService"));
}

#[test]
fn scale_in_drains_before_the_terminate_hook() {
    let mut e = Env::new();
    let tg = e.target_group("web", &[]);
    e.group("g", "1", &tg, &[("drain", "TERMINATING")]);
    let id = e.members("g")[0].0.clone();
    e.advance(150);
    assert_eq!(e.health(&tg, &id).0, "healthy");
    e.asg_ok(
        "SetDesiredCapacity",
        &[("AutoScalingGroupName", "g"), ("DesiredCapacity", "0")],
    );
    // §1.11/§2.7: deregistered in Terminating; the hook waits for the drain.
    assert_eq!(e.members("g"), vec![(id.clone(), S::Terminating)]);
    assert_eq!(e.health(&tg, &id).0, "draining");
    assert!(e.tokens(&id).is_empty());
    let acts = e.asg_ok(
        "DescribeScalingActivities",
        &[("AutoScalingGroupName", "g")],
    );
    assert!(acts.contains("WaitingForELBConnectionDraining"), "{acts}");
    e.advance(299);
    assert_eq!(e.members("g")[0].1, S::Terminating);
    e.advance(1);
    assert_eq!(e.members("g")[0].1, S::TerminatingWait);
    assert_eq!(e.health(&tg, &id).0, "unused");
    let (_, token) = e.tokens(&id)[0].clone();
    e.asg_ok(
        "CompleteLifecycleAction",
        &[
            ("AutoScalingGroupName", "g"),
            ("LifecycleHookName", "drain"),
            ("LifecycleActionToken", &token),
            ("LifecycleActionResult", "CONTINUE"),
        ],
    );
    assert!(e.members("g").is_empty());
}

#[test]
fn the_drain_can_overlap_the_terminate_hook() {
    let mut e = Env::with(Options {
        wait_for_deregistration_delay: false,
        ..Options::default()
    });
    let tg = e.target_group("web", &[]);
    e.group("g", "1", &tg, &[("drain", "TERMINATING")]);
    let id = e.members("g")[0].0.clone();
    e.asg_ok(
        "SetDesiredCapacity",
        &[("AutoScalingGroupName", "g"), ("DesiredCapacity", "0")],
    );
    assert_eq!(e.members("g")[0].1, S::TerminatingWait);
    assert_eq!(e.health(&tg, &id).0, "draining");
}

#[test]
fn force_delete_while_draining_is_harmless() {
    let mut e = Env::new();
    let tg = e.target_group("web", &[]);
    e.group("g", "2", &tg, &[("drain", "TERMINATING")]);
    let ids: Vec<String> = e.members("g").into_iter().map(|(id, _)| id).collect();
    e.asg_ok(
        "SetDesiredCapacity",
        &[("AutoScalingGroupName", "g"), ("DesiredCapacity", "1")],
    );
    e.asg_ok(
        "DeleteAutoScalingGroup",
        &[("AutoScalingGroupName", "g"), ("ForceDelete", "true")],
    );
    // Both instances drain: the scaled-in one and the force-deleted one.
    for id in &ids {
        assert_eq!(e.health(&tg, id).0, "draining");
    }
    e.advance(600);
    assert!(e.w.region(REGION).autoscaling.actions.is_empty());
    for id in &ids {
        assert_eq!(e.health(&tg, id).0, "unused");
    }
}

#[test]
fn groups_refuse_unknown_target_groups_and_attach_registers() {
    let mut e = Env::new();
    let missing =
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/x/0123456789abcdef";
    let err = e
        .asg(
            "CreateAutoScalingGroup",
            &[
                ("AutoScalingGroupName", "g"),
                ("MinSize", "0"),
                ("MaxSize", "2"),
                ("LaunchTemplate.LaunchTemplateName", "lt-web"),
                ("TargetGroupARNs.member.1", missing),
            ],
        )
        .unwrap_err();
    assert_eq!(err.code, "ValidationError");
    e.asg_ok(
        "CreateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", "g"),
            ("MinSize", "0"),
            ("MaxSize", "2"),
            ("DesiredCapacity", "2"),
            ("LaunchTemplate.LaunchTemplateName", "lt-web"),
        ],
    );
    let tg = e.target_group("web", &[]);
    let attach = [
        ("AutoScalingGroupName", "g"),
        ("TargetGroupARNs.member.1", tg.as_str()),
    ];
    let out = e.asg_ok("AttachLoadBalancerTargetGroups", &attach);
    assert!(
        out.contains("<AttachLoadBalancerTargetGroupsResult/>"),
        "{out}"
    );
    for (id, _) in e.members("g") {
        assert_eq!(e.health(&tg, &id).0, "initial");
    }
    let lb = e.asg_ok(
        "DescribeLoadBalancerTargetGroups",
        &[("AutoScalingGroupName", "g")],
    );
    assert_eq!(text(&lb, "State"), Some("Added"));
    assert_eq!(
        e.asg(
            "AttachLoadBalancerTargetGroups",
            &[
                ("AutoScalingGroupName", "g"),
                ("TargetGroupARNs.member.1", missing)
            ]
        )
        .unwrap_err()
        .code,
        "ValidationError"
    );
    e.asg_ok("DetachLoadBalancerTargetGroups", &attach);
    for (id, _) in e.members("g") {
        assert_eq!(e.health(&tg, &id).0, "draining");
    }
    let lb = e.asg_ok(
        "DescribeLoadBalancerTargetGroups",
        &[("AutoScalingGroupName", "g")],
    );
    assert!(lb.contains("<LoadBalancerTargetGroups/>"), "{lb}");
}

#[test]
fn control_holds_a_target_unhealthy() {
    let sb = crate::Sandbox::new(crate::ClockMode::Manual, Behaviour::default());
    let id = "i-0123456789abcdef0";
    let tg = {
        let mut w = sb.lock();
        let xml = super::ops::dispatch(
            &mut w,
            &ctx(Service::Elbv2, "CreateTargetGroup"),
            &params(&[
                ("Name", "web"),
                ("Protocol", "HTTP"),
                ("Port", "80"),
                ("VpcId", "v"),
            ]),
        )
        .unwrap();
        let tg = text(&xml, "TargetGroupArn").unwrap().to_owned();
        assert!(super::register(&mut w, REGION, &tg, id, None));
        tg
    };
    let post = |state: &str| {
        super::control(
            &sb,
            &http::Method::POST,
            "/elbv2/target-health",
            serde_json::json!({"target_group_arn": tg, "instance_id": id, "state": state})
                .to_string()
                .as_bytes(),
        )
    };
    let v = post("unhealthy").unwrap();
    assert_eq!(v["targets"][0]["state"], "unhealthy");
    sb.advance(3_600_000);
    let health = |sb: &crate::Sandbox| {
        let w = sb.lock();
        let t = &w.regions[REGION].elbv2.target_groups[&tg].targets;
        t.values().next().map(|t| t.health)
    };
    assert_eq!(health(&sb), Some(super::Health::Unhealthy));
    post("healthy").unwrap();
    assert_eq!(health(&sb), Some(super::Health::Healthy));
    assert_eq!(post("sideways").unwrap_err().0, 400);
    let bad = super::control(&sb, &http::Method::POST, "/elbv2/target-health", b"{");
    assert_eq!(bad.unwrap_err().0, 400);
}

proptest! {
    #[test]
    fn arbitrary_parameters_never_panic(
        op in prop::sample::select(vec![
            "CreateTargetGroup", "DescribeTargetGroups", "DeleteTargetGroup",
            "ModifyTargetGroupAttributes", "DescribeTargetGroupAttributes",
            "RegisterTargets", "DeregisterTargets", "DescribeTargetHealth",
        ]),
        pairs in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "Name", "Protocol", "Port", "VpcId", "TargetGroupArn", "Targets.member.1.Id",
                    "Targets.member.1.Port", "Names.member.1", "TargetGroupArns.member.1",
                    "Attributes.member.1.Key", "Attributes.member.1.Value", "PageSize", "Marker",
                    "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds", "HealthCheckPort",
                ]),
                "[ -~]{0,20}",
            ),
            0..8,
        ),
    ) {
        let mut e = Env::new();
        let tg = e.target_group("web", &[]);
        let mut pairs: Vec<(&str, String)> = pairs;
        pairs.push(("TargetGroupArn", tg));
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let _ = e.elb(op, &refs);
    }
}
