use super::*;
use crate::test_support::event;

fn parse(text: &str) -> Result<Config, Vec<Problem>> {
    Config::from_toml(text, Path::new("c.toml"))
}

fn problems(text: &str) -> Vec<String> {
    parse(text)
        .unwrap_err()
        .iter()
        .map(|p| p.to_string())
        .collect()
}

const MIN: &str = r#"
[[pipeline]]
name = "p"
[[pipeline.step]]
type = "exec"
command = ["true"]
"#;

#[test]
fn eureka_preset_expands_to_two_http_steps() {
    let c = parse(
        r#"
[[pipeline]]
name = "p"
[[pipeline.step]]
type = "http"
preset = "eureka"
name = "registry"
registry_url = "http://eureka.internal:8761/eureka/"
app = "{{ metadata.app }}"
retries = 5
timeout = "7s"
headers = { Authorization = "Bearer x" }
"#,
    )
    .unwrap();
    let steps = &c.pipelines[0].steps;
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].name, "registry-out-of-service");
    assert_eq!(steps[1].name, "registry-delete");
    let ev = event(Some(r#"{"app": "WEB APP"}"#));
    let tags = BTreeMap::new();
    let cx = crate::template::TemplateContext {
        event: &ev,
        tags: &tags,
        region: None,
        pipeline: "p",
        now: chrono::Utc::now(),
    };
    let (StepKind::Http(a), StepKind::Http(b)) = (&steps[0].kind, &steps[1].kind) else {
        panic!("not http steps: {steps:?}");
    };
    assert_eq!(a.method, reqwest::Method::PUT);
    assert_eq!(
        a.url.render(&cx).unwrap(),
        "http://eureka.internal:8761/eureka/apps/WEB%20APP/i-0123456789abcdef0/status?value=OUT_OF_SERVICE"
    );
    assert!(a.expect_status.contains(200) && !a.expect_status.contains(404));
    assert_eq!(b.method, reqwest::Method::DELETE);
    assert_eq!(
        b.url.render(&cx).unwrap(),
        "http://eureka.internal:8761/eureka/apps/WEB%20APP/i-0123456789abcdef0"
    );
    assert!(b.expect_status.contains(404) && !b.expect_status.contains(204));
    assert_eq!(steps[1].retries, 5);
    assert_eq!(steps[1].timeout, Duration::from_secs(7));
    assert_eq!(b.headers.len(), 1);
}

#[test]
fn preset_problems_are_located() {
    let bad = |step: &str| {
        problems(&format!(
            "[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\n{step}\n"
        ))
        .join("\n")
    };
    let p =
        bad("type = \"http\"\npreset = \"zookeeper\"\nregistry_url = \"http://x\"\napp = \"a\"");
    assert!(
        p.contains("c.toml:5:10: unknown preset \"zookeeper\" (presets: eureka)"),
        "{p}"
    );
    let p = bad("type = \"exec\"\npreset = \"eureka\"");
    assert!(
        p.contains("`preset` is for `http` steps, not \"exec\""),
        "{p}"
    );
    let p = bad("type = \"http\"\npreset = \"eureka\"\nregistry_url = \"http://x\"");
    assert!(p.contains("preset \"eureka\" needs `app`"), "{p}");
    let p = bad(
        "type = \"http\"\npreset = \"eureka\"\nregistry_url = \"http://x\"\napp = \"a\"\nurl = \"http://y\"",
    );
    assert!(p.contains("`url` is set by preset \"eureka\""), "{p}");
    let p = bad("type = \"http\"\nurl = \"http://y\"\napp = \"a\"");
    assert!(p.contains("`app` goes with `preset`"), "{p}");
    let p = bad(
        "type = \"http\"\npreset = \"eureka\"\nregistry_url = \"http://x\"\napp = \"a\"\ncommand = [\"true\"]",
    );
    assert!(
        p.contains("a step of type \"http\" has no field `command`"),
        "{p}"
    );
}

#[test]
fn wait_step() {
    let c = parse(
        "[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"wait\"\n\
             [[pipeline.step]]\ntype = \"wait\"\nduration = \"30s\"\n\
             [[pipeline.step]]\ntype = \"wait\"\nduration = \"1h\"\n",
    )
    .unwrap();
    let steps = &c.pipelines[0].steps;
    let durations: Vec<_> = steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::Wait(w) => (w.duration, s.timeout),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        durations,
        [
            (Duration::ZERO, DEFAULT_STEP_TIMEOUT),
            (Duration::from_secs(30), DEFAULT_STEP_TIMEOUT),
            // A wait longer than the default timeout gets a timeout to match.
            (Duration::from_secs(3600), Duration::from_secs(3600)),
        ]
    );
    assert!(steps[0].kind.templates().is_empty());

    let p = problems(
        "[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"wait\"\n\
             duration = \"2m\"\ntimeout = \"1m\"\n\
             [[pipeline.step]]\ntype = \"wait\"\nduration = \"3d\"\n\
             [[pipeline.step]]\ntype = \"wait\"\nurl = \"http://x\"\n",
    );
    let want = [
        "c.toml:5:12: `duration` = 2m is longer than the step's `timeout` (1m)",
        "c.toml:9:12: `duration` = 3d is out of range",
        "c.toml:10:1: a step of type \"wait\" has no field `url` (its fields: duration)",
    ];
    for w in want {
        assert!(p.iter().any(|x| x.contains(w)), "missing {w:?} in {p:#?}");
    }
}

#[test]
fn minimal_defaults() {
    let c = parse(MIN).unwrap();
    assert_eq!(c.source, Source::default());
    assert_eq!(c.keepalive, Keepalive::default());
    let p = &c.pipelines[0];
    assert_eq!(p.policy, CompletionPolicy::default());
    assert_eq!(p.steps[0].name, "exec-1");
    assert_eq!(p.steps[0].timeout, DEFAULT_STEP_TIMEOUT);
    assert_eq!(p.steps[0].retries, DEFAULT_RETRIES_LOCAL);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
    assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
    assert!(parse_duration("10 minutes").is_err());
    assert!(parse_duration("m").is_err());
    assert!(parse_duration("5").is_ok());
    assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
    assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    assert_eq!(format_duration(Duration::ZERO), "0s");
}

#[test]
fn syntax_error_has_line_and_column() {
    let p = problems("[source]\nqueue_url = \n");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("c.toml:2:"), "{p:?}");
}

#[test]
fn unknown_field_is_located() {
    let p = problems("[source]\nqueue_urll = \"x\"\n");
    assert!(
        p.iter()
            .any(|p| p.starts_with("c.toml:2:1: ") && p.contains("queue_urll")),
        "{p:?}"
    );
}

#[test]
fn type_errors_in_several_steps_are_all_reported() {
    let p = problems(
        r#"[oops]
[[pipeline]]
name = "a"
[[pipeline.step]]
type = "exec"
command = "rm -rf /"
[[pipeline.step]]
type = "exec"
command = ["true"]
timeout = "5 parsecs"
[[pipeline.step]]
type = "exec"
command = ["true"]
retries = "many"

[[pipeline]]
name = "b"
mtach = {}
[[pipeline.step]]
type = "exec"
command = ["true"]
"#,
    );
    let want = [
        "c.toml:1:2: unknown key `oops` at the top level (keys: source, keepalive, agent, setup, pipeline)",
        "c.toml:6:11: `command` is an argv array",
        "c.toml:10:11: `timeout`: invalid duration",
        "c.toml:14:11: `retries`: expected a whole number, found text \"many\"",
        "c.toml:18:1: unknown key `mtach` in `[[pipeline]]`; did you mean `match`? (keys: name, match, policy, step)",
    ];
    for w in want {
        assert!(
            p.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), want.len(), "{p:#?}");
}

#[test]
fn semantic_errors_are_all_reported_with_positions() {
    let text = r#"[keepalive]
heartbeat_fraction = 1.5

[[pipeline]]
name = "a"
match = { groups = ["web-[*"], transitions = ["rebooting"] }
[[pipeline.step]]
type = "shell"
[[pipeline.step]]
type = "exec"
command = ["x"]
timeout = "49h"
[[pipeline.step]]
type = "http"
url = "not a url {{ instance_id }}"
[[pipeline.step]]
type = "notify"
url = "https://hooks.example/{{ instanceid }}"
message = "hi"

[[pipeline]]
name = "a"
"#;
    let p = problems(text);
    let want = [
        "c.toml:2:22: `heartbeat_fraction` = 1.5",
        "c.toml:6:21: `match.groups`: bad glob",
        "c.toml:6:47: `match.transitions`: unknown transition \"rebooting\"",
        "c.toml:8:8: unknown step type \"shell\"",
        "c.toml:12:11: `timeout` = 2d1h is longer than 48h",
        "c.toml:15:7: `url` = \"not a url {{ instance_id }}\" is not a valid URL",
        "c.toml:18:30: `url`: unknown template variable `instanceid`",
        "c.toml:22:8: duplicate pipeline name \"a\"",
        "has no steps",
    ];
    for w in want {
        assert!(p.iter().any(|x| x.contains(w)), "missing {w:?} in {p:#?}");
    }
}

#[test]
fn fields_of_other_step_types_are_refused() {
    let p = problems(
        r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "exec"
command = ["true"]
url = "http://x"
"#,
    );
    assert!(
        p[0].contains("c.toml:3:1: a step of type \"exec\" has no field `url`"),
        "{p:?}"
    );
}

#[test]
fn shell_string_command_is_refused() {
    let p = problems(
        r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "exec"
command = "rm -rf /tmp/x"
"#,
    );
    assert!(p[0].starts_with("c.toml:5:11: "), "{p:?}");
    assert!(p[0].contains("argv array"), "{p:?}");
}

#[test]
fn template_errors_point_into_the_string() {
    let p = problems(
        "[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"http\"\nurl = \"http://h/\"\nbody = '{\"a\": {{ tags.x | upper }}}'\n",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("c.toml:6:15: `body`: unknown template filter `upper`"),
        "{p:?}"
    );
}

#[test]
fn empty_config_needs_a_pipeline() {
    let p = problems("");
    assert!(p[0].contains("at least one pipeline"), "{p:?}");
}

#[test]
fn policy_and_status_parse() {
    let c = parse(
            r#"[[pipeline]]
name = "p"
policy = { on_success = "continue", on_failure = "continue", on_deadline = "abandon", deadline_margin = "2m" }
[[pipeline.step]]
type = "http"
method = "put"
url = "http://127.0.0.1/x"
expect_status = [204, "3xx", "400-404"]
"#,
        )
        .unwrap();
    let p = &c.pipelines[0];
    assert_eq!(p.policy.on_failure, LifecycleResult::Continue);
    assert_eq!(
        p.policy.on_deadline,
        DeadlinePolicy::Complete(LifecycleResult::Abandon)
    );
    assert_eq!(p.policy.deadline_margin, Some(Duration::from_secs(120)));
    let StepKind::Http(h) = &p.steps[0].kind else {
        panic!()
    };
    assert_eq!(h.method, reqwest::Method::PUT);
    assert!(
        h.expect_status.contains(204)
            && h.expect_status.contains(302)
            && h.expect_status.contains(404)
    );
    assert!(!h.expect_status.contains(200) && !h.expect_status.contains(405));
    assert_eq!(p.steps[0].retries, DEFAULT_RETRIES_NETWORK);
}

#[test]
fn routing_first_match_wins() {
    let c = parse(
        r#"[[pipeline]]
name = "tagged"
match = { groups = ["web-*"], tags = { role = "api*" } }
[[pipeline.step]]
type = "exec"
command = ["true"]

[[pipeline]]
name = "web-terminate"
match = { groups = ["web-*"], hooks = ["drain"], transitions = ["terminating"] }
[[pipeline.step]]
type = "exec"
command = ["true"]

[[pipeline]]
name = "catch-all"
[[pipeline.step]]
type = "exec"
command = ["true"]
"#,
    )
    .unwrap();
    let ev = event(None);
    let mut tags = BTreeMap::new();
    assert!(c.needs_tags());
    assert_eq!(c.route(&ev, &tags).unwrap().name, "web-terminate");
    tags.insert("role".to_owned(), "api-v2".to_owned());
    assert_eq!(c.route(&ev, &tags).unwrap().name, "tagged");
    let mut other = ev.clone();
    other.group = "batch".into();
    assert_eq!(c.route(&other, &tags).unwrap().name, "catch-all");
    let mut launch = ev.clone();
    launch.transition = LifecycleTransition::Launching;
    tags.clear();
    assert_eq!(c.route(&launch, &tags).unwrap().name, "catch-all");
}

#[test]
fn no_route() {
    let c = parse(
        r#"[[pipeline]]
name = "x"
match = { groups = ["other"] }
[[pipeline.step]]
type = "exec"
command = ["true"]
"#,
    )
    .unwrap();
    assert!(c.route(&event(None), &BTreeMap::new()).is_none());
}

#[test]
fn env_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    std::fs::write(&f, MIN).unwrap();
    let c = load_with_env(&f, |k| match k {
        ENV_QUEUE_URL => Some("https://sqs.eu-west-1.amazonaws.com/1/q".into()),
        ENV_CONCURRENCY => Some("3".into()),
        ENV_VISIBILITY_TIMEOUT => Some("5m".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        c.source.queue_url.as_deref(),
        Some("https://sqs.eu-west-1.amazonaws.com/1/q")
    );
    assert_eq!(c.source.concurrency, 3);
    assert_eq!(c.source.visibility_timeout, Duration::from_secs(300));
    let e = load_with_env(&f, |k| (k == ENV_CONCURRENCY).then(|| "0".into())).unwrap_err();
    assert!(e[0].to_string().contains("LIFEHOOK_CONCURRENCY"), "{e:?}");
    let e = load_with_env(&dir.path().join("missing.toml"), |_| None).unwrap_err();
    assert!(e[0].to_string().contains("cannot read"), "{e:?}");
}

#[test]
fn line_col_counts_chars() {
    assert_eq!(line_col("ab\ncé\nx", 0), (1, 1));
    assert_eq!(line_col("ab\ncé\nx", 3), (2, 1));
    assert_eq!(line_col("ab\ncé\nx", 7), (3, 1));
    assert_eq!(line_col("ab\ncé\nx", 6), (2, 3));
}

#[test]
fn tags_are_needed_when_a_template_names_one() {
    let base = "[source]\nqueue_url = \"http://q\"\n[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"http\"\nname = \"s\"\n";
    let with = parse(&format!(
        "{base}url = \"http://r/{{{{ tags.app | urlencode }}}}\"\n"
    ))
    .unwrap();
    assert!(with.needs_tags(), "a step template uses tags.app");
    let without = parse(&format!("{base}url = \"http://r/{{{{ instance_id }}}}\"\n")).unwrap();
    assert!(!without.needs_tags());
}

#[test]
fn examples_are_valid() {
    for name in [
        "controller-minimal.toml",
        "controller-local.toml",
        "agent-collect-logs.toml",
        "demo-deregister.toml",
        "demo-launch-gate.toml",
        "scenario3-ami-and-target-groups.toml",
    ] {
        example_is_valid(name);
    }
}

fn example_is_valid(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let c = Config::from_toml(&text, &path).unwrap_or_else(|p| {
        panic!(
            "{}",
            p.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    assert!(!c.pipelines.is_empty());
}

#[test]
fn aws_and_file_steps_parse() {
    let c = parse(
        r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "s3-fetch"
bucket = "{{ metadata.bucket }}"
key = "scripts/drain.sh"
path = "/usr/local/bin/drain-{{ instance_id }}.sh"
mode = "0755"
sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
[[pipeline.step]]
type = "s3-upload"
bucket = "logs"
key = "logs/{{ group }}/{{ instance_id }}/{{ file_name }}"
files = ["/var/log/app/*.log", "/var/log/messages"]
if_missing = "fail"
[[pipeline.step]]
type = "ssm-command"
commands = ["systemctl stop app", "echo {{ instance_id }}"]
env = { APP = "{{ tags.app }}" }
interval = "500ms"
[[pipeline.step]]
type = "ecs-drain"
cluster = "prod"
interval = "2s"
stop_tasks = false
[[pipeline.step]]
type = "file"
path = "/etc/profile.d/lifehook.sh"
content = "export PATCHED={{ date }}\n"
mode = 0o600
[[pipeline.step]]
type = "signal"
stack = "web"
resource = "Group"
status = "failure"
[[pipeline.step]]
type = "tag"
tags = { patched = "{{ now | date }}" }
"#,
    )
    .unwrap_or_else(|p| panic!("{p:#?}"));
    let steps = &c.pipelines[0].steps;
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "s3-fetch-1",
            "s3-upload-2",
            "ssm-command-3",
            "ecs-drain-4",
            "file-5",
            "signal-6",
            "tag-7"
        ]
    );
    let StepKind::S3Fetch(f) = &steps[0].kind else {
        panic!()
    };
    assert_eq!(f.mode, Some(0o755));
    assert_eq!(
        f.sha256.as_deref(),
        Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(steps[0].retries, DEFAULT_RETRIES_NETWORK);
    let StepKind::S3Upload(u) = &steps[1].kind else {
        panic!()
    };
    assert_eq!(u.files.len(), 2);
    assert_eq!(u.if_missing, IfMissing::Fail);
    let StepKind::SsmCommand(s) = &steps[2].kind else {
        panic!()
    };
    assert_eq!(s.interval, Duration::from_millis(500));
    assert_eq!(steps[2].retries, DEFAULT_RETRIES_LOCAL);
    let StepKind::EcsDrain(d) = &steps[3].kind else {
        panic!()
    };
    assert!(!d.stop_tasks && d.cluster.is_some());
    let StepKind::File(fl) = &steps[4].kind else {
        panic!()
    };
    assert_eq!(fl.mode, 0o600);
    assert!(!steps[4].kind.is_aws() && steps[5].kind.is_aws());
    let StepKind::Signal(g) = &steps[5].kind else {
        panic!()
    };
    assert_eq!(g.status, SignalStatus::Failure);
    assert_eq!(g.unique_id.source(), "{{ instance_id }}");
    assert!(c.needs_tags(), "the ssm-command env names tags.app");
}

#[test]
fn aws_and_file_step_problems_are_located() {
    let p = problems(
        r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "s3-fetch"
bucket = "b"
path = "/tmp/x"
sha256 = "abc"
mode = 755
[[pipeline.step]]
type = "s3-upload"
bucket = "b"
key = "logs/{{ instance_id }}"
files = ["/var/log/*.log"]
if_missing = "maybe"
[[pipeline.step]]
type = "file"
path = "/tmp/{{ file_name }}"
content = "x"
[[pipeline.step]]
type = "signal"
stack = "s"
status = "DONE"
[[pipeline.step]]
type = "tag"
tags = { "aws:x" = "y" }
command = ["true"]
[[pipeline.step]]
type = "ssm-command"
commands = []
env = { "1BAD" = "x" }
[[pipeline.step]]
type = "ecs-drain"
url = "http://x"
"#,
    );
    let want = [
        "c.toml:3:1: a step of type \"s3-fetch\" needs `key`",
        "c.toml:7:10: `sha256` = \"abc\" is not a SHA-256 digest",
        "c.toml:8:8: `mode` must be octal permissions",
        "c.toml:12:7: `key` must contain `{{ file_name }}`",
        "c.toml:14:14: `if_missing` = \"maybe\": expected \"ok\" or \"fail\"",
        "c.toml:17:8: `path`: `{{ file_name }}` is only available in the `key` of an `s3-upload` step",
        "c.toml:19:1: a step of type \"signal\" needs `resource`",
        "c.toml:22:10: `status` = \"DONE\": expected \"SUCCESS\" or \"FAILURE\"",
        "c.toml:23:1: a step of type \"tag\" has no field `command`",
        "c.toml:23:1: `tags`: \"aws:x\": keys starting with `aws:` are reserved",
        "c.toml:29:12: `commands` is empty",
        "c.toml:27:1: `env`: \"1BAD\" is not a shell variable name",
        "c.toml:31:1: a step of type \"ecs-drain\" has no field `url`",
    ];
    for w in want {
        assert!(
            p.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), want.len(), "{p:#?}");
    // Unknown step types list the new ones.
    let p = problems("[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"s3\"\n");
    assert!(
        p[0].contains("s3-fetch, s3-upload, ssm-command, ecs-drain, signal, tag"),
        "{p:?}"
    );
}

#[test]
fn image_and_target_groups_steps_parse() {
    let c = parse(
            r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "target-groups"
[[pipeline.step]]
type = "image"
name = "keep-ami"
only_if = "unexpected-scale-in"
image_name = "postmortem-{{ group }}-{{ instance_id }}"
description = "{{ instance_id }} of {{ group }}"
tags = { team = "{{ tags.team }}" }
interval = "50ms"
[[pipeline.step]]
type = "image"
no_reboot = false
[[pipeline.step]]
type = "target-groups"
target_group_arns = ["arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"]
port = 8080
timeout = "20m"
"#,
        )
        .unwrap_or_else(|p| panic!("{p:#?}"));
    let steps = &c.pipelines[0].steps;
    let StepKind::TargetGroups(t) = &steps[0].kind else {
        panic!()
    };
    assert!(t.target_group_arns.is_empty() && t.port.is_none());
    assert_eq!(t.interval, DEFAULT_TARGET_GROUPS_INTERVAL);
    assert_eq!(steps[0].timeout, DEFAULT_TARGET_GROUPS_TIMEOUT);
    assert_eq!(steps[0].retries, DEFAULT_RETRIES_NETWORK);
    assert_eq!(steps[0].name, "target-groups-1");
    let StepKind::Image(i) = &steps[1].kind else {
        panic!()
    };
    assert_eq!(steps[1].name, "keep-ami");
    assert_eq!(i.only_if, Some(ImageCondition::UnexpectedScaleIn));
    assert_eq!(i.marker_tag, DEFAULT_MARKER_TAG);
    assert!(i.no_reboot);
    assert_eq!(
        i.image_name.source(),
        "postmortem-{{ group }}-{{ instance_id }}"
    );
    assert_eq!(i.interval, Duration::from_millis(50));
    assert_eq!(steps[1].timeout, DEFAULT_IMAGE_TIMEOUT);
    let StepKind::Image(d) = &steps[2].kind else {
        panic!()
    };
    assert!(!d.no_reboot && d.only_if.is_none());
    assert_eq!(d.image_name.source(), DEFAULT_IMAGE_NAME);
    let StepKind::TargetGroups(t) = &steps[3].kind else {
        panic!()
    };
    assert_eq!(t.target_group_arns.len(), 1);
    assert_eq!(t.port, Some(8080));
    assert_eq!(steps[3].timeout, Duration::from_secs(1200));
    assert!(steps[1].kind.is_aws() && steps[3].kind.is_aws());
    assert!(c.needs_tags(), "the image tags name tags.team");
}

#[test]
fn image_and_target_groups_problems_are_located() {
    let p = problems(
        r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "image"
only_if = "always"
image_name = "ab"
tags = { "aws:x" = "y", "lifehook:group" = "z" }
url = "http://x"
[[pipeline.step]]
type = "image"
marker_tag = "deploying"
image_name = "{{ instanceid }}"
[[pipeline.step]]
type = "target-groups"
target_group_arns = ["web", "arn:aws:elasticloadbalancing:us-east-1:0:loadbalancer/app/x/1"]
port = 70000
[[pipeline.step]]
type = "target-groups"
target_group_arns = []
tags = { a = "b" }
"#,
    );
    let want = [
        "c.toml:3:1: a step of type \"image\" has no field `url`",
        "c.toml:3:1: `tags`: \"aws:x\": keys starting with `aws:` are reserved",
        "c.toml:3:1: `tags`: \"lifehook:group\" is set by lifehook on every image",
        "c.toml:5:11: `only_if` = \"always\": expected \"unexpected-scale-in\"",
        "c.toml:6:14: `image_name` = \"ab\": an AMI name has 3 to 128 characters",
        "c.toml:11:14: `marker_tag` applies only with `only_if = \"unexpected-scale-in\"`",
        "c.toml:12:15: `image_name`: unknown template variable `instanceid`",
        "c.toml:15:22: `target_group_arns`: \"web\" is not a target group ARN",
        "c.toml:15:29: `target_group_arns`: \"arn:aws:elasticloadbalancing:us-east-1:0:loadbalancer/app/x/1\" is not a target group ARN",
        "c.toml:16:8: `port` = 70000 is not a port",
        "c.toml:17:1: a step of type \"target-groups\" has no field `tags`",
        "c.toml:19:21: `target_group_arns` is empty",
    ];
    for w in want {
        assert!(
            p.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), want.len(), "{p:#?}");
}

proptest::proptest! {
    #[test]
    fn parse_duration_never_panics(s in "\\PC{0,20}") {
        let _ = parse_duration(&s);
    }

    #[test]
    fn duration_round_trips(secs in 0u64..10_000_000) {
        let d = Duration::from_secs(secs);
        proptest::prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
    }

    #[test]
    fn config_parser_never_panics(s in "\\PC{0,200}") {
        let _ = Config::from_toml(&s, Path::new("f.toml"));
    }
}

#[test]
fn step_types_round_trip() {
    for t in StepType::ALL {
        assert_eq!(t.as_str().parse::<StepType>(), Ok(t));
        assert_eq!(t.to_string(), t.as_str());
    }
    let e = "shell".parse::<StepType>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown step type \"shell\" (step types: exec, http, probe, notify, file, wait, s3-fetch, s3-upload, ssm-command, ecs-drain, signal, tag, image, target-groups)"
    );
}

#[test]
fn a_type_error_in_one_table_hides_nothing_else() {
    let p = problems(
        r#"[source]
concurrency = "many"
wait_time_seconds = 99
[keepalive]
heartbeat_fraction = 1.5
[[pipeline]]
name = "p"
match = { groups = 5, transitions = ["rebooting"] }
policy = { on_success = "maybe", on_failure = 3 }
[[pipeline.step]]
type = "exec"
command = ["true"]
timeout = "49h"
"#,
    );
    let want = [
        "c.toml:2:15: `concurrency`: expected a whole number, found text \"many\"",
        "c.toml:3:21: `wait_time_seconds` = 99 is out of range: it must be between 0 and 20",
        "c.toml:5:22: `heartbeat_fraction` = 1.5 must be strictly between 0 and 1",
        "c.toml:8:20: `groups`: expected a list, found the whole number 5",
        "c.toml:8:38: `match.transitions`: unknown transition \"rebooting\"",
        "c.toml:9:25: `on_success` = \"maybe\": expected \"continue\" or \"abandon\"",
        "c.toml:9:47: `on_failure`: expected text, found the whole number 3",
        "c.toml:13:11: `timeout` = 2d1h is longer than 48h",
    ];
    for w in want {
        assert!(
            p.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), want.len(), "{p:#?}");
}

#[test]
fn hooks_and_nested_tables_are_read_one_by_one() {
    let p = problems(
        r#"[agent]
state_dir = 5
group = ""
[[agent.hook]]
nmae = "a"
transition = "launching"
[[agent.hook]]
name = 7
transition = "launching"
[[pipeline]]
name = 3
[[pipeline.step]]
type = "exec"
command = ["true"]
"#,
    );
    let want = [
        "c.toml:2:13: `state_dir`: expected text, found the whole number 5",
        "c.toml:3:9: `agent.group` is empty",
        "c.toml:4:1: missing key `name`",
        "c.toml:5:1: unknown key `nmae` in `[[agent.hook]]`; did you mean `name`? (keys: name, transition, heartbeat_timeout, default_result, notification_target_arn, role_arn, notification_metadata)",
        "c.toml:8:8: `name`: expected text, found the whole number 7",
        "c.toml:11:8: `name`: expected text, found the whole number 3",
    ];
    for w in want {
        assert!(
            p.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), want.len(), "{p:#?}");
}

#[test]
fn unknown_step_keys_name_the_keys_of_the_step_type() {
    let p = problems(
        r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "wait"
Duration = "5s"
[[pipeline.step]]
type = "s3_fetch"
bucket = "b"
[[pipeline.step]]
type = "exec"
command = ["true"]
workdir = "/"
"#,
    );
    assert_eq!(
        p,
        [
            "c.toml:5:1: unknown key `Duration` in a step of type \"wait\"; did you mean `duration`? (keys: type, name, timeout, retries, backoff, duration)",
            "c.toml:7:8: unknown step type \"s3_fetch\"; did you mean \"s3-fetch\"? (step types: exec, http, probe, notify, file, wait, s3-fetch, s3-upload, ssm-command, ecs-drain, signal, tag, image, target-groups)",
            "c.toml:12:1: unknown key `workdir` in a step of type \"exec\" (keys: type, name, timeout, retries, backoff, command, env, working_dir, output_limit, reboot_exit_code)",
        ],
        "{p:#?}"
    );
}

#[test]
fn unknown_table_keys_get_a_suggestion() {
    let p = problems(&format!("[sorce]\n[source]\nqueue-url = \"x\"\n{MIN}"));
    assert_eq!(
        p,
        [
            "c.toml:1:2: unknown key `sorce` at the top level; did you mean `source`? (keys: source, keepalive, agent, setup, pipeline)",
            "c.toml:3:1: unknown key `queue-url` in `[source]`; did you mean `queue_url`? (keys: queue_url, topic_arn, imds, wait_time_seconds, max_messages, concurrency, visibility_timeout)",
        ],
        "{p:#?}"
    );
}

#[test]
fn a_refused_value_is_not_reported_missing_as_well() {
    let p = problems(&format!(
        r#"[source]
queue_url = 5
[setup]
groups = "web"
delivery = "eventbridge"
[[setup.hook]]
name = "h"
transition = "launching"
{MIN}"#
    ));
    assert_eq!(
        p,
        [
            "c.toml:2:13: `queue_url`: expected text, found the whole number 5",
            "c.toml:4:10: `groups`: expected a list, found text \"web\"",
        ],
        "{p:#?}"
    );
}

#[test]
fn input_is_bounded_and_must_be_text() {
    let name = Path::new("c.toml");
    let env = |_: &str| None;
    let p = load_from_reader_with_env(std::io::repeat(0).take(10 << 30), name, env).unwrap_err();
    assert_eq!(
        p[0].to_string(),
        "c.toml: configuration larger than 1 MiB: not read (is it the right file?)"
    );
    let big = MIN.repeat(MAX_CONFIG_BYTES / MIN.len() + 1);
    assert!(load_from_reader_with_env(big.as_bytes(), name, env).is_err());

    let p = load_from_reader_with_env(&b"[source]\nqu\xffeue = 1\n"[..], name, env).unwrap_err();
    assert_eq!(
        p[0].to_string(),
        "c.toml:2:3: not a text file: byte 0xff, not UTF-8 at byte offset 11"
    );
    let p = load_from_reader_with_env(&b"# \xc3\xa9\n\0\xff"[..], name, env).unwrap_err();
    assert_eq!(
        p[0].to_string(),
        "c.toml:2:1: not a text file: a NUL byte at byte offset 5"
    );

    // As crates/cli/tests/it/check.rs feeds `lifehook check -`.
    let text = b"[sorce]\n[[pipeline]]\nname = \"p\"\n[[pipeline.step]]\ntype = \"wait\"\n";
    let p = load_from_reader_with_env(&text[..], Path::new(STDIN_NAME), env).unwrap_err();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].to_string().starts_with(
            "<stdin>:1:2: unknown key `sorce` at the top level; did you mean `source`?"
        ),
        "{p:?}"
    );
    let cfg = load_from_reader_with_env(MIN.as_bytes(), Path::new(STDIN_NAME), env).unwrap();
    assert_eq!(cfg.pipelines.len(), 1);
    let p = load_from_reader_with_env(&b"[oops]\n"[..], Path::new(STDIN_NAME), env).unwrap_err();
    assert!(
        p.iter()
            .any(|p| p.to_string().starts_with("<stdin>:1:2: unknown key `oops`")),
        "{p:?}"
    );
}

#[test]
fn empty_patterns_are_refused() {
    let p = problems(
        r#"[setup]
groups = ["web", ""]
delivery = "eventbridge"
[[setup.hook]]
name = ""
transition = "launching"
[[pipeline]]
name = "p"
match = { groups = [""], hooks = ["h", ""], tags = { "" = "x", env = "" } }
[[pipeline.step]]
type = "exec"
command = ["true"]
"#,
    );
    let want = [
        "c.toml:2:18: `setup.groups`: a group name has 1 to 255 characters",
        "c.toml:5:8: `setup.hook.name` must have 1 to 255 characters",
        "c.toml:9:21: `match.groups`: an empty pattern matches no group",
        "c.toml:9:40: `match.hooks`: an empty pattern matches no hook",
        "c.toml:9:59: `match.tags`: an empty tag key matches no tag",
    ];
    for w in want {
        assert!(
            p.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {p:#?}"
        );
    }
    // and `[setup]` needs a queue
    assert_eq!(p.len(), want.len() + 1, "{p:#?}");
}

#[test]
fn a_key_of_another_step_type_gets_a_suggestion() {
    let p = problems(
        r#"[[pipeline]]
name = "p"
[[pipeline.step]]
type = "exec"
commands = ["true"]
"#,
    );
    assert!(
        p[0].starts_with(
            "c.toml:3:1: a step of type \"exec\" has no field `commands`; did you mean `command`? (its fields: command, env,"
        ),
        "{p:?}"
    );
}
