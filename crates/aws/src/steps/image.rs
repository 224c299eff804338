//! `image`: an AMI of the action's instance (reference scenario 3: keep an image of an
//! instance lost to an unexpected scale-in).
//!
//! 1. **An earlier attempt's image is reused.** Every image carries the action's token in
//!    the tag [`IMAGE_TAG_TOKEN`]; an attempt first looks for it (DescribeImages, owner
//!    `self`, filter `tag:lifehook:lifecycle-action-token`) and waits for that image
//!    instead of creating a second one. A retry, a redelivered message or a restarted
//!    controller therefore never makes two images of one termination.
//! 2. **`only_if = "unexpected-scale-in"`** skips the image when the termination is part
//!    of a deployment (see [`expected_reason`]); the step then succeeds and says why.
//! 3. **CreateImage** with the rendered `image_name` (characters EC2 refuses in a name
//!    become `-`), `description`, `NoReboot` and the tags on the image and its snapshots:
//!    [`IMAGE_TAG_INSTANCE`], [`IMAGE_TAG_GROUP`], [`IMAGE_TAG_TOKEN`] and the user's.
//! 4. **DescribeImages every `interval`** until the image is `available`. `failed` (or
//!    `error`, `invalid`, `deregistered`, `disabled`) is a fatal failure carrying EC2's
//!    `StateReason`; an image not visible yet (`InvalidAMIID.NotFound`, EC2 is eventually
//!    consistent) and throttling or 5xx answers are polled again. The pipeline's keepalive
//!    heartbeats the action meanwhile; when the attempt's time runs out the failure is a
//!    timeout, and the next attempt waits for the same image.
//!
//! Calls: `ec2:DescribeImages`, `ec2:CreateImage`, `ec2:CreateTags` (tags on create),
//! and with `only_if`: `autoscaling:DescribeAutoScalingGroups`,
//! `autoscaling:DescribeInstanceRefreshes`, `autoscaling:DescribeScalingActivities`,
//! `ec2:DescribeTags`.

use aws_sdk_autoscaling::Client as AsgClient;
use aws_sdk_ec2::Client as Ec2Client;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use lifehook_core::config::{
    IMAGE_TAG_GROUP, IMAGE_TAG_INSTANCE, IMAGE_TAG_TOKEN, ImageCondition, ImageStep,
    format_duration,
};
use lifehook_core::step::{Failure, Success};
use lifehook_model::{Endpoint, LifecycleTransition};

use super::{Cx, done, error_code};

/// The group tag CloudFormation puts on every group of a stack.
pub const STACK_NAME_TAG: &str = "aws:cloudformation:stack-name";
/// Instance refresh statuses during which the refresh replaces instances (spec Appendix A,
/// DescribeInstanceRefreshes). `Baking` comes after the last replacement.
pub const ACTIVE_REFRESH: &[&str] = &["Pending", "InProgress", "Cancelling", "RollbackInProgress"];

pub(crate) async fn run(
    ec2: &Ec2Client,
    asg: &AsgClient,
    cx: &Cx<'_>,
    s: &ImageStep,
) -> Result<Success, Failure> {
    let event = cx.env.template.event;
    let instance = event.instance_id.clone();
    let started = tokio::time::Instant::now();
    let (image_id, reused) = match earlier(ec2, cx, &event.token).await? {
        Some(id) => (id, true),
        None => {
            if let Some(ImageCondition::UnexpectedScaleIn) = s.only_if {
                let facts = facts(ec2, asg, cx, &s.marker_tag).await?;
                if let Some(reason) = expected_reason(&facts, &s.marker_tag) {
                    tracing::info!(
                        step = %cx.step.name,
                        instance = %instance,
                        group = %event.group,
                        reason = %reason,
                        "no image: the termination is expected"
                    );
                    return Ok(done(format!("no image of {instance}: {reason}")));
                }
            }
            (create(ec2, cx, s).await?, false)
        }
    };
    if reused {
        tracing::info!(step = %cx.step.name, instance = %instance, image = %image_id, "an earlier attempt created the image; waiting for it");
    }
    let mut state = String::from("pending");
    loop {
        match ec2.describe_images().image_ids(&image_id).send().await {
            Ok(out) => {
                if let Some(img) = out.images().first() {
                    state = img
                        .state()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_else(|| "pending".into());
                    match state.as_str() {
                        "available" => {
                            return Ok(done(format!(
                                "image {image_id} ({}) of {instance} is available after {}{}",
                                img.name().unwrap_or_default(),
                                format_duration(started.elapsed()),
                                if reused {
                                    " (created by an earlier attempt)"
                                } else {
                                    ""
                                }
                            )));
                        }
                        "pending" => {}
                        other => {
                            let why = img
                                .state_reason()
                                .map(|r| {
                                    format!(
                                        ": {} {}",
                                        r.code().unwrap_or_default(),
                                        r.message().unwrap_or_default()
                                    )
                                })
                                .unwrap_or_default();
                            return Err(Failure::fatal(format!(
                                "{}: image {image_id} of {instance} ended {other}{}",
                                cx.who(),
                                why.trim_end()
                            )));
                        }
                    }
                }
            }
            // Not visible yet right after CreateImage (EC2 is eventually consistent).
            Err(e) if error_code(&e) == Some("InvalidAMIID.NotFound") => {}
            Err(e) => {
                let f = cx.api(&format!("DescribeImages {image_id}"), &e);
                if !f.retryable {
                    return Err(f);
                }
                cx.setback("polling the image", &f.message);
            }
        }
        if !cx.pause(s.interval).await {
            return Err(cx.timeout(format!(
                "image {image_id} of {instance} is still {state} after {}; the next attempt waits for the same image",
                format_duration(started.elapsed())
            )));
        }
    }
}

/// The image an earlier attempt for this action created (by the token tag), preferring
/// one that is not failed.
async fn earlier(ec2: &Ec2Client, cx: &Cx<'_>, token: &str) -> Result<Option<String>, Failure> {
    let out = ec2
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{IMAGE_TAG_TOKEN}"))
                .values(token)
                .build(),
        )
        .send()
        .await
        .map_err(|e| cx.api("DescribeImages (an earlier attempt's image)", &e))?;
    let mut images: Vec<(bool, String)> = out
        .images()
        .iter()
        .filter_map(|i| {
            let ok = matches!(i.state().map(|s| s.as_str()), Some("available" | "pending"));
            i.image_id().map(|id| (ok, id.to_owned()))
        })
        .collect();
    images.sort_by_key(|(ok, _)| !*ok);
    Ok(images.into_iter().next().map(|(_, id)| id))
}

async fn create(ec2: &Ec2Client, cx: &Cx<'_>, s: &ImageStep) -> Result<String, Failure> {
    let event = cx.env.template.event;
    let instance = event.instance_id.as_str();
    let name = ami_name(&cx.render(&s.image_name)?);
    if name.chars().count() < 3 {
        return Err(Failure::fatal(format!(
            "{}: `image_name` renders to {name:?}; an AMI name has 3 to 128 characters",
            cx.who()
        )));
    }
    let description = match &s.description {
        Some(d) => Some(cx.render(d)?.chars().take(255).collect::<String>()),
        None => None,
    };
    let mut tags = vec![
        tag(IMAGE_TAG_INSTANCE, instance),
        tag(IMAGE_TAG_GROUP, &event.group),
        tag(IMAGE_TAG_TOKEN, &event.token),
    ];
    for (k, v) in &s.tags {
        let value = cx.render_tag_value(k, v)?;
        tags.push(tag(k, &value));
    }
    let spec = |rt: ResourceType| {
        TagSpecification::builder()
            .resource_type(rt)
            .set_tags(Some(tags.clone()))
            .build()
    };
    match ec2
        .create_image()
        .instance_id(instance)
        .name(&name)
        .set_description(description)
        .no_reboot(s.no_reboot)
        .tag_specifications(spec(ResourceType::Image))
        .tag_specifications(spec(ResourceType::Snapshot))
        .send()
        .await
    {
        Ok(out) => {
            let id = out.image_id().unwrap_or_default().to_owned();
            if id.is_empty() {
                return Err(Failure::retry(format!(
                    "{}: CreateImage of {instance} answered no image id",
                    cx.who()
                )));
            }
            tracing::info!(step = %cx.step.name, instance = %instance, image = %id, name = %name, "creating an image");
            Ok(id)
        }
        Err(e) if error_code(&e) == Some("InvalidAMIName.Duplicate") => {
            // Our own image, created by an attempt whose answer was lost, shows up once
            // DescribeImages sees it; anything else is a name clash to fix.
            if let Some(id) = earlier(ec2, cx, &event.token).await? {
                return Ok(id);
            }
            Err(Failure::fatal(format!(
                "{}: CreateImage of {instance}: the AMI name {name:?} is taken by another image ({}); make `image_name` unique, e.g. with {{{{ instance_id }}}} and {{{{ now }}}}",
                cx.who(),
                super::error_message(&e).unwrap_or("duplicate name")
            )))
        }
        Err(e) => Err(cx.api(&format!("CreateImage of {instance}"), &e)),
    }
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

/// An AMI name EC2 accepts: letters, digits, `( ) [ ] space . / - ' @ _`; anything else
/// becomes `-` (so `{{ now }}`'s colons do not fail the call); at most 128 characters.
pub fn ami_name(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// What is known about a termination when deciding whether it is expected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub transition: Option<LifecycleTransition>,
    pub origin: Option<Endpoint>,
    /// `None`: the group is gone (DescribeAutoScalingGroups does not list it).
    pub group: Option<GroupFacts>,
    /// `(id, status)` of the group's instance refreshes, newest first.
    pub refreshes: Vec<(String, String)>,
    /// The marker tag's value on the instance, when it has the tag.
    pub instance_marker: Option<String>,
    /// The instance's launch activity ended `Cancelled` or `Failed` (its launch was
    /// abandoned): status and message.
    pub launch_failed: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFacts {
    pub name: String,
    /// `Status` ("Delete in progress" while the group is deleted).
    pub status: Option<String>,
    pub desired: i32,
    /// The `aws:cloudformation:stack-name` tag.
    pub stack: Option<String>,
    /// The marker tag's value on the group, when it has the tag.
    pub marker: Option<String>,
}

/// Why the termination is expected (part of a deployment or marked so), or `None` for an
/// unexpected scale-in. Documented in `docs/configuration.md` (`image`, `only_if`).
pub fn expected_reason(f: &Facts, marker_tag: &str) -> Option<String> {
    let marked = |v: &Option<String>| v.as_ref().is_some_and(|v| !v.eq_ignore_ascii_case("false"));
    if f.transition != Some(LifecycleTransition::Terminating) {
        return Some("the action is not a termination".into());
    }
    if f.origin == Some(Endpoint::WarmPool) {
        return Some("the instance leaves the warm pool: it never served".into());
    }
    if let Some(how) = &f.launch_failed {
        return Some(format!(
            "the instance never entered service: its launch ended {how}"
        ));
    }
    if marked(&f.instance_marker) {
        return Some(format!("the instance has the tag {marker_tag}"));
    }
    let Some(g) = &f.group else {
        return Some("the group no longer exists: it was deleted".into());
    };
    if marked(&g.marker) {
        return Some(format!("the group {} has the tag {marker_tag}", g.name));
    }
    if let Some(st) = g.status.as_deref().filter(|s| s.contains("Delete")) {
        return Some(format!("the group {} is being deleted ({st})", g.name));
    }
    if let Some(stack) = &g.stack
        && g.desired == 0
    {
        return Some(format!(
            "CloudFormation stack {stack} is emptying the group {} (desired capacity 0): a stack update or deletion",
            g.name
        ));
    }
    if let Some((id, status)) = f
        .refreshes
        .iter()
        .find(|(_, s)| ACTIVE_REFRESH.contains(&s.as_str()))
    {
        return Some(format!(
            "instance refresh {id} of the group {} is {status}",
            g.name
        ));
    }
    None
}

async fn facts(
    ec2: &Ec2Client,
    asg: &AsgClient,
    cx: &Cx<'_>,
    marker_tag: &str,
) -> Result<Facts, Failure> {
    let event = cx.env.template.event;
    let mut f = Facts {
        transition: Some(event.transition),
        origin: event.origin,
        ..Facts::default()
    };
    if event.transition != LifecycleTransition::Terminating {
        return Ok(f);
    }
    let tags = ec2
        .describe_tags()
        .filters(
            Filter::builder()
                .name("resource-id")
                .values(&event.instance_id)
                .build(),
        )
        .filters(Filter::builder().name("key").values(marker_tag).build())
        .send()
        .await
        .map_err(|e| cx.api(&format!("DescribeTags of {}", event.instance_id), &e))?;
    f.instance_marker = tags
        .tags()
        .iter()
        .find(|t| t.key() == Some(marker_tag))
        .map(|t| t.value().unwrap_or_default().to_owned());
    let groups = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&event.group)
        .include_instances(false)
        .send()
        .await
        .map_err(|e| cx.api(&format!("DescribeAutoScalingGroups {}", event.group), &e))?;
    let Some(g) = groups
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(event.group.as_str()))
    else {
        return Ok(f);
    };
    let tag = |k: &str| {
        g.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .map(|t| t.value().unwrap_or_default().to_owned())
    };
    f.group = Some(GroupFacts {
        name: event.group.clone(),
        status: g.status().map(str::to_owned),
        desired: g.desired_capacity().unwrap_or_default(),
        stack: tag(STACK_NAME_TAG),
        marker: tag(marker_tag),
    });
    let refreshes = asg
        .describe_instance_refreshes()
        .auto_scaling_group_name(&event.group)
        .max_records(10)
        .send()
        .await
        .map_err(|e| cx.api(&format!("DescribeInstanceRefreshes {}", event.group), &e))?;
    let activities = asg
        .describe_scaling_activities()
        .auto_scaling_group_name(&event.group)
        .max_records(100)
        .send()
        .await
        .map_err(|e| cx.api(&format!("DescribeScalingActivities {}", event.group), &e))?;
    let launch = format!("Launching a new EC2 instance: {}", event.instance_id);
    f.launch_failed = activities
        .activities()
        .iter()
        .find(|a| a.description() == Some(launch.as_str()))
        .and_then(|a| {
            let code = a.status_code()?.as_str();
            matches!(code, "Cancelled" | "Failed").then(|| match a.status_message() {
                Some(m) if !m.is_empty() => format!("{code} ({m})"),
                _ => code.to_owned(),
            })
        });
    f.refreshes = refreshes
        .instance_refreshes()
        .iter()
        .map(|r| {
            (
                r.instance_refresh_id().unwrap_or_default().to_owned(),
                r.status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect();
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scale_in() -> Facts {
        Facts {
            transition: Some(LifecycleTransition::Terminating),
            origin: Some(Endpoint::AutoScalingGroup),
            group: Some(GroupFacts {
                name: "web".into(),
                desired: 2,
                ..GroupFacts::default()
            }),
            refreshes: vec![("r-old".into(), "Successful".into())],
            instance_marker: None,
            launch_failed: None,
        }
    }

    const M: &str = "lifehook:expected-termination";

    #[test]
    fn a_plain_scale_in_is_unexpected() {
        assert_eq!(expected_reason(&scale_in(), M), None);
    }

    #[test]
    fn deployments_and_markers_are_expected() {
        type Change = Box<dyn Fn(&mut Facts)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|f| f.transition = Some(LifecycleTransition::Launching)),
                "not a termination",
            ),
            (
                Box::new(|f| f.origin = Some(Endpoint::WarmPool)),
                "warm pool",
            ),
            (
                Box::new(|f| f.launch_failed = Some("Cancelled (abandoned)".into())),
                "never entered service: its launch ended Cancelled (abandoned)",
            ),
            (
                Box::new(|f| f.instance_marker = Some("yes".into())),
                "the instance has the tag lifehook:expected-termination",
            ),
            (Box::new(|f| f.group = None), "no longer exists"),
            (
                Box::new(|f| f.group.as_mut().unwrap().marker = Some(String::new())),
                "the group web has the tag",
            ),
            (
                Box::new(|f| f.group.as_mut().unwrap().status = Some("Delete in progress".into())),
                "being deleted (Delete in progress)",
            ),
            (
                Box::new(|f| {
                    let g = f.group.as_mut().unwrap();
                    g.stack = Some("web-stack".into());
                    g.desired = 0;
                }),
                "CloudFormation stack web-stack",
            ),
            (
                Box::new(|f| f.refreshes.insert(0, ("r-1".into(), "InProgress".into()))),
                "instance refresh r-1 of the group web is InProgress",
            ),
            (
                Box::new(|f| {
                    f.refreshes
                        .push(("r-2".into(), "RollbackInProgress".into()))
                }),
                "RollbackInProgress",
            ),
        ];
        for (change, want) in cases {
            let mut f = scale_in();
            change(&mut f);
            let got = expected_reason(&f, M);
            assert!(
                got.as_deref().is_some_and(|g| g.contains(want)),
                "{want:?}: {got:?}"
            );
        }
    }

    #[test]
    fn not_quite_deployments_are_unexpected() {
        let mut f = scale_in();
        // A marker set to "false" is no marker.
        f.instance_marker = Some("False".into());
        // A stack's group scaled in, not emptied.
        f.group.as_mut().unwrap().stack = Some("web-stack".into());
        // A refresh that is over (or baking) replaces nothing.
        f.refreshes = vec![
            ("r".into(), "Baking".into()),
            ("q".into(), "Cancelled".into()),
        ];
        assert_eq!(expected_reason(&f, M), None);
        // Desired 0 without CloudFormation is a scale-in to zero.
        let mut f = scale_in();
        f.group.as_mut().unwrap().desired = 0;
        assert_eq!(expected_reason(&f, M), None);
    }

    #[test]
    fn ami_names_are_made_valid() {
        assert_eq!(
            ami_name("web:1-i-0abc-2026-11-22T10:00:00Z"),
            "web-1-i-0abc-2026-11-22T10-00-00Z"
        );
        assert_eq!(ami_name(&"x".repeat(200)).len(), 128);
        assert_eq!(ami_name("a (b) [c] ./-'@_"), "a (b) [c] ./-'@_");
    }
}
