//! Lifecycle notifications (spec §2.8, §3): the hook target (SQS §3.1, SNS §3.3), the
//! always-emitted EventBridge event (§3.4), the test notification (§3.2) and the
//! "EC2 Instance Launch/Terminate Successful" events.

use lifehook_model::message::{
    EVENT_SOURCE, EventBridgeEvent, LifecycleEventDetail, SERVICE, TEST_NOTIFICATION_EVENT,
    sns_subject_for_action, sns_subject_for_test,
};
use lifehook_model::{LifecycleMessage, TestNotification};
use serde_json::json;

use super::engine::{self, instance_arn};
use crate::clock::{iso_millis, iso_secs};
use crate::world::{DeliveryError, World};
use crate::{ACCOUNT_ID, events, ids, sns, sqs};

/// What kind of target an ARN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetKind {
    Sqs,
    Sns,
    Lambda,
}

pub(crate) fn target_kind(arn: &str) -> Option<TargetKind> {
    if arn.starts_with("arn:aws:sqs:") {
        Some(TargetKind::Sqs)
    } else if arn.starts_with("arn:aws:sns:") {
        Some(TargetKind::Sns)
    } else if arn.starts_with("arn:aws:lambda:") {
        Some(TargetKind::Lambda)
    } else {
        None
    }
}

fn deliver(
    w: &mut World,
    region: &str,
    target: &str,
    subject: &str,
    body: &str,
) -> Result<(), DeliveryError> {
    match target_kind(target) {
        Some(TargetKind::Sqs) => sqs::send_by_arn(w, region, target, body),
        Some(TargetKind::Sns) => {
            sns::publish_by_arn(w, region, target, Some(subject), body).map(|_| ())
        }
        // A function target (§3.6, unconfirmed) is invoked asynchronously with the §3.1 message.
        Some(TargetKind::Lambda) => {
            crate::lambda::invoke_by_arn(w, region, target, body, "autoscaling").map(|_| ())
        }
        None => Err(DeliveryError::NoSuchTarget(target.to_owned())),
    }
}

/// The notifications of one action, built but not yet delivered.
#[derive(Debug, Clone)]
pub(crate) struct ActionNotifications {
    /// The hook target, its SNS subject and the §3.1 body, when the hook has a target.
    pub(crate) target: Option<(String, String, String)>,
    /// The §3.4 EventBridge event (always emitted).
    pub(crate) event: serde_json::Value,
}

/// Builds the notifications of the action `token` (§3.1, §3.3, §3.4): RequestId is the
/// activity id (§7.7), Time has milliseconds, the event time has seconds.
#[cfg(test)]
pub(crate) fn build_action_notifications(
    w: &mut World,
    region: &str,
    token: &str,
) -> Option<ActionNotifications> {
    build_notifications(w, region, token, true)
}

/// Builds the notifications; the EventBridge event only when `with_event` (else it is
/// `Null`).
fn build_notifications(
    w: &mut World,
    region: &str,
    token: &str,
    with_event: bool,
) -> Option<ActionNotifications> {
    let now = w.now;
    let launching = engine::endpoints(w, lifehook_model::LifecycleTransition::Launching);
    let terminating = engine::endpoints(w, lifehook_model::LifecycleTransition::Terminating);
    let s = &w.region(region).autoscaling;
    let a = s.actions.get(token)?;
    let g = s.groups.get(&a.group)?;
    let h = g.hook(&a.hook).cloned()?;
    let arn = g.arn.clone();
    let (origin, destination) = match a.transition {
        lifehook_model::LifecycleTransition::Launching => launching,
        lifehook_model::LifecycleTransition::Terminating => terminating,
    };
    let target = h.target.as_deref().filter(|t| !t.is_empty()).map(|target| {
        let msg = LifecycleMessage {
            origin,
            lifecycle_hook_name: a.hook.clone(),
            destination,
            account_id: ACCOUNT_ID.to_owned(),
            request_id: a.activity.clone(),
            lifecycle_transition: a.transition,
            auto_scaling_group_name: a.group.clone(),
            service: SERVICE.to_owned(),
            time: iso_millis(now),
            ec2_instance_id: a.instance.clone(),
            lifecycle_action_token: a.token.clone(),
            notification_metadata: h.metadata.clone(),
        };
        (
            target.to_owned(),
            sns_subject_for_action(a.transition, &a.instance),
            serde_json::to_string(&msg).unwrap_or_default(),
        )
    });
    if !with_event {
        return Some(ActionNotifications {
            target,
            event: serde_json::Value::Null,
        });
    }
    let event = EventBridgeEvent {
        version: "0".into(),
        id: ids::uuid(),
        detail_type: a.transition.detail_type().into(),
        source: EVENT_SOURCE.into(),
        account: ACCOUNT_ID.into(),
        time: iso_secs(now),
        region: region.into(),
        resources: vec![arn],
        detail: LifecycleEventDetail {
            lifecycle_action_token: a.token.clone(),
            auto_scaling_group_name: a.group.clone(),
            lifecycle_hook_name: a.hook.clone(),
            ec2_instance_id: a.instance.clone(),
            lifecycle_transition: a.transition,
            notification_metadata: h.metadata.clone(),
            origin,
            destination,
        },
    };
    Some(ActionNotifications {
        target,
        event: serde_json::to_value(&event).unwrap_or_default(),
    })
}

/// Delivers the notifications of one action: the hook target, if any, and always the
/// EventBridge event. Returns false when the hook target could not be reached (the action
/// keeps waiting, §7.6).
pub(crate) fn notify_action(w: &mut World, region: &str, token: &str) -> bool {
    // EventBridge events no rule can match are not built (put_event would drop them).
    let with_event = events::has_enabled_rules(w, region);
    let Some(n) = build_notifications(w, region, token, with_event) else {
        return true;
    };
    let mut ok = true;
    if let Some((target, subject, body)) = &n.target
        && let Err(e) = deliver(w, region, target, subject, body)
    {
        tracing::warn!(target, error = %e, token, "lifecycle notification not delivered");
        ok = false;
    }
    if with_event {
        events::put_event(w, region, &n.event);
    }
    ok
}

/// The synchronous test notification of `PutLifecycleHook` (§2.1, §3.2). Fails with the
/// exact ValidationError text when the target cannot be reached.
pub(crate) fn test_notification(
    w: &mut World,
    region: &str,
    group: &str,
    group_arn: &str,
    target: &str,
    role: &str,
) -> Result<(), crate::protocol::AwsError> {
    let msg = TestNotification {
        account_id: ACCOUNT_ID.to_owned(),
        request_id: ids::uuid(),
        auto_scaling_group_arn: group_arn.to_owned(),
        auto_scaling_group_name: group.to_owned(),
        service: SERVICE.to_owned(),
        event: TEST_NOTIFICATION_EVENT.to_owned(),
        time: iso_millis(w.now),
    };
    // Whether AWS sends the test notification to a function is unconfirmed (§3.6): the
    // sandbox does not, and accepts the hook whether or not the function exists yet.
    if target_kind(target) == Some(TargetKind::Lambda) {
        return Ok(());
    }
    let body = serde_json::to_string(&msg).unwrap_or_default();
    deliver(w, region, target, &sns_subject_for_test(group), &body).map_err(|_| {
        crate::protocol::AwsError::validation(format!(
            "Unable to publish test message to notification target {target} using IAM role {role}. Please check your target and role configuration and try to put lifecycle hook again."
        ))
    })
}

/// "EC2 Instance Launch Successful" / "EC2 Instance Terminate Successful" (§3.4).
pub(crate) fn instance_event(
    w: &mut World,
    region: &str,
    instance: &str,
    activity: &str,
    launch: bool,
) {
    // An event no rule can match is not built (put_event would drop it).
    if !events::has_enabled_rules(w, region) {
        return;
    }
    let now = w.now;
    let (origin, destination) = engine::endpoints(
        w,
        if launch {
            lifehook_model::LifecycleTransition::Launching
        } else {
            lifehook_model::LifecycleTransition::Terminating
        },
    );
    let s = &w.region(region).autoscaling;
    let Some(i) = s.instances.get(instance) else {
        return;
    };
    let Some(a) = s.activity(activity) else {
        return;
    };
    let mut details = serde_json::Map::new();
    details.insert("Availability Zone".into(), i.az.clone().into());
    if let Some(sn) = &i.subnet {
        details.insert("Subnet ID".into(), sn.clone().into());
    }
    let mut detail = json!({
        "StatusCode": "InProgress",
        "Description": a.description,
        "AutoScalingGroupName": a.group,
        "ActivityId": a.id,
        "Details": details,
        "RequestId": a.id,
        "StatusMessage": "",
        "EndTime": iso_millis(now),
        "EC2InstanceId": i.id,
        "StartTime": iso_millis(a.start),
        "Cause": a.cause,
    });
    if let (Some(o), Some(d)) = (origin, destination) {
        detail["Origin"] = o.as_str().into();
        detail["Destination"] = d.as_str().into();
    }
    let event = json!({
        "version": "0",
        "id": ids::uuid(),
        "detail-type": if launch { "EC2 Instance Launch Successful" } else { "EC2 Instance Terminate Successful" },
        "source": EVENT_SOURCE,
        "account": ACCOUNT_ID,
        "time": iso_secs(now),
        "region": region,
        "resources": [a.group_arn, instance_arn(region, &i.id)],
        "detail": detail,
    });
    events::put_event(w, region, &event);
}
