//! Parameters, errors and XML shapes shared by the Auto Scaling operations.

use base64::Engine as _;
use lifehook_model::{LifecycleResult, LifecycleTransition as T};

use super::engine::{
    self, Activity, Group, Hook, Instance, LtSpec, MAX_GROUP_SIZE, MixedPolicy, State, Tag,
};
use super::notify::{TargetKind, target_kind};
use crate::clock::iso_millis;
use crate::protocol::query::check_len;
use crate::protocol::{AwsError, Params, XmlWriter};
use crate::world::World;

// ---------------------------------------------------------------- helpers

pub(super) fn st<'a>(w: &'a mut World, region: &str) -> &'a mut State {
    &mut w.region(region).autoscaling
}

pub(super) fn group_not_found(name: &str) -> AwsError {
    // §2.3/§4.4: observed prefix "AutoScalingGroup name not found - ".
    AwsError::validation(format!(
        "AutoScalingGroup name not found - AutoScalingGroup {name} not found"
    ))
}

pub(super) fn instance_not_found(id: &str) -> AwsError {
    AwsError::validation(format!(
        "Instance Id not found - No managed instance found for instance ID: {id}"
    ))
}

pub(super) fn limit_exceeded(what: &str) -> AwsError {
    AwsError::new(
        400,
        "LimitExceeded",
        format!(
            "You have already reached a limit for your Amazon EC2 Auto Scaling resources: {what}"
        ),
    )
}

pub(super) fn group_name<'a>(p: &'a Params, param: &str) -> Result<&'a str, AwsError> {
    p.required_len(param, 1, 255)
}

pub(super) fn existing_group<'a>(
    w: &'a mut World,
    region: &str,
    name: &str,
) -> Result<&'a mut Group, AwsError> {
    st(w, region)
        .groups
        .get_mut(name)
        .ok_or_else(|| group_not_found(name))
}

pub(super) fn check_hook_name(param: &str, v: &str) -> Result<(), AwsError> {
    check_len(param, v, 1, 255)?;
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'/')
    {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9\\-_\\/]+",
            lower_first(param)
        )));
    }
    Ok(())
}

pub(super) fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// An optional integer within `lo..=hi`.
pub(super) fn int_in(p: &Params, name: &str, lo: i64, hi: i64) -> Result<Option<i64>, AwsError> {
    match p.int(name)? {
        Some(v) if v < lo || v > hi => Err(AwsError::validation(format!(
            "Invalid value for parameter {name}: {v} (must be between {lo} and {hi})"
        ))),
        v => Ok(v),
    }
}

pub(super) fn one_of<'a>(
    p: &'a Params,
    name: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, AwsError> {
    match p.get(name) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v)),
        Some(v) => Err(AwsError::validation(format!(
            "Invalid value for parameter {name}: {v:?} (valid values: {})",
            allowed.join(", ")
        ))),
    }
}

/// `Min ≤ Desired ≤ Max` with the §4.4 message.
pub(super) fn check_bounds(min: i64, max: i64, desired: i64) -> Result<(), AwsError> {
    if min < 0 || max < 0 || desired < 0 {
        return Err(AwsError::validation(
            "MinSize, MaxSize and DesiredCapacity must not be negative",
        ));
    }
    if max > MAX_GROUP_SIZE {
        return Err(AwsError::validation(format!(
            "Invalid value for parameter MaxSize: {max} (the sandbox allows at most {MAX_GROUP_SIZE} instances per group)"
        )));
    }
    if min > max {
        return Err(AwsError::validation(format!(
            "Max bound, {max}, must be greater than or equal to min bound, {min}"
        )));
    }
    if desired < min || desired > max {
        return Err(AwsError::validation(format!(
            "Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"
        )));
    }
    Ok(())
}

/// Opaque pagination (§4.5): the token is the base64 of an offset.
pub(super) fn paginate<T: Clone>(
    items: &[T],
    p: &Params,
    default: i64,
    max: i64,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let n = int_in(p, "MaxRecords", 1, max)?.unwrap_or(default) as usize;
    let start = match p.get_nonempty("NextToken") {
        None => 0,
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("lifehook:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .filter(|&o| o <= items.len())
            .ok_or_else(|| {
                AwsError::new(400, "InvalidNextToken", "The NextToken value is not valid.")
            })?,
    };
    let end = start.saturating_add(n).min(items.len());
    let page = items.get(start..end).unwrap_or_default().to_vec();
    let next = (end < items.len()).then(|| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("lifehook:{end}"))
    });
    Ok((page, next))
}

pub(super) fn parse_lt(p: &Params, prefix: &str) -> Result<Option<LtSpec>, AwsError> {
    let sub = p.sub(prefix);
    if sub.is_empty() {
        return Ok(None);
    }
    let id = sub.get_nonempty("LaunchTemplateId").map(str::to_owned);
    let name = sub.get_nonempty("LaunchTemplateName").map(str::to_owned);
    if let Some(n) = &name {
        check_len(&format!("{prefix}.LaunchTemplateName"), n, 3, 128)?;
    }
    if id.is_none() && name.is_none() {
        return Err(AwsError::validation(format!(
            "Valid requests must contain either {prefix}.LaunchTemplateId or {prefix}.LaunchTemplateName"
        )));
    }
    Ok(Some(LtSpec {
        id,
        name,
        version: sub.get_nonempty("Version").map(str::to_owned),
    }))
}

pub(super) fn parse_mixed(p: &Params) -> Result<Option<MixedPolicy>, AwsError> {
    if p.sub("MixedInstancesPolicy").is_empty() {
        return Ok(None);
    }
    let lt = parse_lt(
        p,
        "MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification",
    )?
    .ok_or_else(|| {
        AwsError::missing("MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification")
    })?;
    let types = p
        .struct_list("MixedInstancesPolicy.LaunchTemplate.Overrides")
        .iter()
        .filter_map(|o| o.get_nonempty("InstanceType").map(str::to_owned))
        .collect();
    Ok(Some(MixedPolicy {
        launch_template: lt,
        instance_types: types,
    }))
}

pub(super) fn parse_subnets(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn parse_retention(p: &Params) -> Result<Option<bool>, AwsError> {
    Ok(one_of(
        p,
        "InstanceLifecyclePolicy.RetentionTriggers.TerminateHookAbandon",
        &["retain", "terminate"],
    )?
    .map(|v| v == "retain"))
}

/// Parses the fields of a hook (PutLifecycleHook or a LifecycleHookSpecification) over
/// `existing` (upsert, §2.1).
pub(super) fn parse_hook(
    p: &Params,
    name: &str,
    existing: Option<&Hook>,
) -> Result<Hook, AwsError> {
    let transition = match p.get("LifecycleTransition") {
        Some(v) => v.parse::<T>().map_err(|_| {
            AwsError::validation(format!(
                "Invalid value for parameter LifecycleTransition: {v:?} (valid values: {}, {})",
                T::LAUNCHING,
                T::TERMINATING
            ))
        })?,
        None => match existing {
            Some(h) => h.transition,
            None => return Err(AwsError::missing("LifecycleTransition")),
        },
    };
    let heartbeat_secs = match p.int("HeartbeatTimeout")? {
        Some(v) => lifehook_model::HeartbeatTimeout::new(v)
            .map_err(|_| {
                AwsError::validation(format!(
                    "Invalid value for parameter HeartbeatTimeout: {v} (must be between 30 and 7200 seconds)"
                ))
            })?
            .secs(),
        None => existing
            .map(|h| h.heartbeat_secs)
            .unwrap_or(lifehook_model::timeout::DEFAULT_HEARTBEAT_TIMEOUT_SECS),
    };
    let default_result = match p.get("DefaultResult") {
        Some(v) => v.parse::<LifecycleResult>().map_err(|_| {
            AwsError::validation(format!(
                "Invalid value for parameter DefaultResult: {v:?} (valid values: CONTINUE, ABANDON)"
            ))
        })?,
        None => existing
            .map(|h| h.default_result)
            .unwrap_or(LifecycleResult::Abandon),
    };
    let target = match p.get("NotificationTargetARN") {
        Some(v) => {
            check_len("NotificationTargetARN", v, 0, 255)?;
            if v.is_empty() {
                None
            } else if target_kind(v).is_none() {
                return Err(AwsError::validation(format!(
                    "Invalid value for parameter NotificationTargetARN: {v:?} is not an SQS queue, SNS topic or Lambda function ARN"
                )));
            } else {
                Some(v.to_owned())
            }
        }
        None => existing.and_then(|h| h.target.clone()),
    };
    let role = match p.get("RoleARN") {
        Some(v) => {
            check_len("RoleARN", v, 1, 255)?;
            Some(v.to_owned())
        }
        None => existing.and_then(|h| h.role.clone()),
    };
    // §2.1: RoleARN is required iff the target is an SNS topic or SQS queue.
    if matches!(
        target.as_deref().and_then(target_kind),
        Some(TargetKind::Sqs | TargetKind::Sns)
    ) && role.is_none()
    {
        return Err(AwsError::validation(
            "RoleARN is required when NotificationTargetARN is an Amazon SQS queue or Amazon SNS topic",
        ));
    }
    let metadata = match p.get("NotificationMetadata") {
        Some(v) => {
            check_len("NotificationMetadata", v, 1, 4000)?;
            if !v
                .chars()
                .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}'))
            {
                return Err(AwsError::validation(
                    "1 validation error detected: Value at 'notificationMetadata' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u007e]+",
                ));
            }
            Some(v.to_owned())
        }
        None => existing.and_then(|h| h.metadata.clone()),
    };
    Ok(Hook {
        name: name.to_owned(),
        transition,
        target,
        role,
        metadata,
        heartbeat_secs,
        default_result,
    })
}

/// Parses and validates `Tags.member.N` (for Create: ResourceId optional).
pub(super) fn parse_tags(p: &Params, group: Option<&str>) -> Result<Vec<(String, Tag)>, AwsError> {
    let mut out = Vec::new();
    for (k, t) in p.struct_list("Tags").iter().enumerate() {
        let n = k + 1;
        let key = t
            .get("Key")
            .ok_or_else(|| AwsError::missing(&format!("Tags.member.{n}.Key")))?;
        check_len(&format!("Tags.member.{n}.Key"), key, 1, 128)?;
        if key.starts_with("aws:") {
            return Err(AwsError::validation(format!(
                "Tag keys starting with 'aws:' are reserved for AWS use: {key}"
            )));
        }
        let value = t.get("Value").unwrap_or("");
        check_len(&format!("Tags.member.{n}.Value"), value, 0, 256)?;
        if let Some(rt) = t.get("ResourceType")
            && rt != "auto-scaling-group"
        {
            return Err(AwsError::validation(format!(
                "Invalid value for parameter Tags.member.{n}.ResourceType: {rt:?} (must be auto-scaling-group)"
            )));
        }
        let resource = match (t.get_nonempty("ResourceId"), group) {
            (Some(r), _) => r.to_owned(),
            (None, Some(g)) => g.to_owned(),
            (None, None) => return Err(AwsError::missing(&format!("Tags.member.{n}.ResourceId"))),
        };
        let propagate = t.bool("PropagateAtLaunch")?.unwrap_or(false);
        out.push((
            resource,
            Tag {
                key: key.to_owned(),
                value: value.to_owned(),
                propagate,
            },
        ));
    }
    Ok(out)
}

pub(super) fn upsert_tag(tags: &mut Vec<Tag>, t: Tag) {
    match tags.iter_mut().find(|x| x.key == t.key) {
        Some(x) => *x = t,
        None => tags.push(t),
    }
}

pub(super) fn instance_ids(p: &Params, max: usize) -> Result<Vec<String>, AwsError> {
    let ids = p.list("InstanceIds");
    if ids.len() > max {
        return Err(AwsError::validation(format!(
            "Invalid value for parameter InstanceIds: at most {max} instance IDs may be given, got {}",
            ids.len()
        )));
    }
    for (k, id) in ids.iter().enumerate() {
        check_len(&format!("InstanceIds.member.{}", k + 1), id, 1, 19)?;
    }
    Ok(ids)
}

pub(super) fn write_lt(x: &mut XmlWriter, name: &str, lt: &LtSpec) {
    x.start(name);
    x.opt("LaunchTemplateId", lt.id.as_deref());
    x.opt("LaunchTemplateName", lt.name.as_deref());
    x.opt("Version", lt.version.as_deref());
    x.end();
}

pub(super) fn write_activity(x: &mut XmlWriter, a: &Activity) {
    x.elem("ActivityId", &a.id);
    x.elem("AutoScalingGroupName", &a.group);
    x.elem("Description", &a.description);
    x.elem("Cause", &a.cause);
    x.elem("StartTime", iso_millis(a.start));
    x.opt("EndTime", a.end.map(iso_millis));
    x.elem("StatusCode", a.status);
    x.opt("StatusMessage", a.message.as_deref());
    x.elem("Progress", a.progress);
    x.elem("Details", &a.details);
    if a.group_deleted {
        x.elem("AutoScalingGroupState", "Deleted");
    }
    if !a.group_arn.is_empty() {
        x.elem("AutoScalingGroupARN", &a.group_arn);
    }
}

pub(super) fn write_activities(x: &mut XmlWriter, name: &str, acts: &[Activity]) {
    if acts.is_empty() {
        x.empty(name);
        return;
    }
    x.start(name);
    for a in acts {
        x.start("member");
        write_activity(x, a);
        x.end();
    }
    x.end();
}

pub(super) fn find_activity(w: &mut World, region: &str, id: &str) -> Option<Activity> {
    st(w, region).activity(id).cloned()
}

/// Creates an activity that completes at once; returns its snapshot as it was in progress
/// (`status`, `progress`), which is what the API response shows.
#[allow(clippy::too_many_arguments)]
pub(super) fn instant_activity(
    w: &mut World,
    region: &str,
    group: &str,
    description: String,
    cause: String,
    status: &'static str,
    progress: i64,
    inst: &Instance,
) -> Activity {
    let details = serde_json::json!({"Availability Zone": inst.az}).to_string();
    let id = engine::new_activity(
        w,
        region,
        group,
        description,
        cause,
        status,
        progress,
        details,
    );
    let snapshot = find_activity(w, region, &id);
    let now = w.now;
    if let Some(a) = st(w, region).activity_mut(&id) {
        a.status = "Successful";
        a.progress = 100;
        a.end = Some(now);
    }
    snapshot.unwrap_or_else(|| Activity {
        id,
        group: group.to_owned(),
        group_arn: String::new(),
        description: String::new(),
        cause: String::new(),
        start: now,
        end: None,
        status,
        message: None,
        progress,
        details: String::new(),
        group_deleted: false,
        seq: 0,
    })
}

pub(super) fn write_group(
    x: &mut XmlWriter,
    g: &Group,
    s: &State,
    include_instances: bool,
    region: &str,
) {
    x.start("member");
    x.elem("AutoScalingGroupName", &g.name);
    x.elem("AutoScalingGroupARN", &g.arn);
    x.opt("LaunchConfigurationName", g.launch_config.as_deref());
    if let Some(lt) = &g.launch_template {
        write_lt(x, "LaunchTemplate", lt);
    }
    if let Some(m) = &g.mixed {
        x.start("MixedInstancesPolicy").start("LaunchTemplate");
        write_lt(x, "LaunchTemplateSpecification", &m.launch_template);
        if m.instance_types.is_empty() {
            x.empty("Overrides");
        } else {
            x.start("Overrides");
            for t in &m.instance_types {
                x.start("member").elem("InstanceType", t).end();
            }
            x.end();
        }
        x.end().end();
    }
    x.elem("MinSize", g.min);
    x.elem("MaxSize", g.max);
    x.elem("DesiredCapacity", g.desired);
    x.elem("DefaultCooldown", g.default_cooldown);
    let azs: Vec<String> = if !g.subnets.is_empty() {
        let mut v: Vec<String> = (0..g.subnets.len())
            .map(|k| engine::subnet_az(region, k))
            .collect();
        v.dedup();
        v
    } else if g.azs.is_empty() {
        vec![format!("{region}a")]
    } else {
        g.azs.clone()
    };
    x.string_list("AvailabilityZones", &azs);
    x.string_list("LoadBalancerNames", &g.load_balancers);
    x.string_list("TargetGroupARNs", &g.target_groups);
    x.elem("HealthCheckType", &g.health_check_type);
    x.elem("HealthCheckGracePeriod", g.grace);
    if include_instances {
        let members: Vec<&Instance> = s.members(&g.name).collect();
        if members.is_empty() {
            x.empty("Instances");
        } else {
            x.start("Instances");
            for i in members {
                x.start("member");
                x.elem("InstanceId", &i.id);
                x.elem("InstanceType", &i.instance_type);
                x.elem("AvailabilityZone", &i.az);
                x.elem("LifecycleState", i.state.as_str());
                x.elem(
                    "HealthStatus",
                    if i.healthy { "Healthy" } else { "Unhealthy" },
                );
                x.opt("LaunchConfigurationName", i.launch_config.as_deref());
                if let Some(lt) = &i.launch_template {
                    write_lt(x, "LaunchTemplate", lt);
                }
                x.elem("ProtectedFromScaleIn", i.protected);
                x.end();
            }
            x.end();
        }
    }
    x.elem("CreatedTime", iso_millis(g.created));
    x.empty("SuspendedProcesses");
    x.opt("VPCZoneIdentifier", g.vpc_zone_identifier.as_deref());
    x.empty("EnabledMetrics");
    if g.tags.is_empty() {
        x.empty("Tags");
    } else {
        x.start("Tags");
        for t in &g.tags {
            write_tag(x, &g.name, t);
        }
        x.end();
    }
    if g.termination_policies.is_empty() {
        x.string_list("TerminationPolicies", ["Default"]);
    } else {
        x.string_list("TerminationPolicies", &g.termination_policies);
    }
    x.elem("NewInstancesProtectedFromScaleIn", g.new_protected);
    x.opt("MaxInstanceLifetime", g.max_instance_lifetime);
    x.elem("CapacityRebalance", g.capacity_rebalance);
    if g.retain_on_abandon {
        x.start("InstanceLifecyclePolicy")
            .start("RetentionTriggers")
            .elem("TerminateHookAbandon", "retain")
            .end()
            .end();
    }
    x.opt("DeletionProtection", g.deletion_protection.as_deref());
    x.end();
}

pub(super) fn write_tag(x: &mut XmlWriter, group: &str, t: &Tag) {
    x.start("member");
    x.elem("ResourceId", group);
    x.elem("ResourceType", "auto-scaling-group");
    x.elem("Key", &t.key);
    x.elem("Value", &t.value);
    x.elem("PropagateAtLaunch", t.propagate);
    x.end();
}

pub(super) fn member(s: &State, group: &str, id: &str) -> Result<Instance, AwsError> {
    s.instances
        .get(id)
        .filter(|i| i.in_group && i.group == group)
        .cloned()
        .ok_or_else(|| {
            AwsError::validation(format!(
                "The instance {id} is not part of Auto Scaling group {group}."
            ))
        })
}

pub(super) fn tags_group_not_found(name: &str) -> AwsError {
    AwsError::validation(format!(
        "AutoScalingGroup not found - AutoScaling Group {name} not found"
    ))
}
