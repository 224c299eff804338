//! Requests → IAM actions and resources: what each operation of each service needs.

use super::*;

// ---------------------------------------------------------------------------------------
// Requests → actions and resources
// ---------------------------------------------------------------------------------------

pub(crate) fn param(input: &Input, k: &str) -> Option<String> {
    match input {
        Input::Query(p) => p.get_nonempty(k).map(str::to_owned),
        Input::Json(j) => j.get(k).and_then(Value::as_str).map(str::to_owned),
    }
}

pub(crate) fn param_list(input: &Input, k: &str) -> Vec<String> {
    match input {
        Input::Query(p) => p.list(k),
        Input::Json(j) => match j.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        },
    }
}

pub(crate) fn arn(service: &str, region: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}")
}

/// `aws:TagKeys` and `aws:RequestTag/KEY` of the `Tag.N` structures of a request.
pub(crate) fn request_tags(mut r: Resource, tags: &[crate::protocol::Params]) -> Resource {
    for t in tags {
        if let Some(k) = t.get("Key") {
            r = r.key("aws:TagKeys", k).key(
                &format!("aws:RequestTag/{k}"),
                t.get("Value").unwrap_or_default(),
            );
        }
    }
    r
}

/// The stack id of stacks the sandbox does not model.
pub(crate) const STACK_ID: &str = "00000000-0000-0000-0000-000000000000";
/// The id in a group ARN the sandbox does not know.
pub(crate) const UNKNOWN_GROUP_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The IAM action of an API operation.
pub(crate) fn action_of(service: Service, op: &str) -> String {
    let op = match (service, op) {
        (Service::Sqs, "DeleteMessageBatch") => "DeleteMessage",
        (Service::Sqs, "ChangeMessageVisibilityBatch") => "ChangeMessageVisibility",
        (Service::Sqs, "SendMessageBatch") => "SendMessage",
        (_, op) => op,
    };
    format!("{}:{op}", service.signing_name())
}

/// What a (non-S3) request needs.
pub(crate) fn checks(w: &World, ctx: &RequestCtx, input: &Input) -> Vec<Check> {
    let region = ctx.region.as_str();
    let op = ctx.op.as_str();
    let action = action_of(ctx.service, op);
    let reg = w.regions.get(region);
    let any = || vec![Resource::any()];
    let instance = |id: &str, prefixes: &[&str]| {
        let mut r = Resource::new(arn("ec2", region, &format!("instance/{id}")));
        if let Some((rg, rec)) = reg.and_then(|rg| rg.ec2.instances.get(id).map(|rec| (rg, rec))) {
            let view = crate::ec2::view(rg, rec);
            let tags = view.tags();
            r = r.tags(prefixes, tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        r
    };
    let mut out = Vec::new();
    let resources = match ctx.service {
        Service::Sts => return Vec::new(),
        Service::AutoScaling => {
            let group = param(input, "AutoScalingGroupName").or_else(|| {
                let id = param(input, "InstanceId")?;
                reg?.autoscaling.instances.get(&id).map(|i| i.group.clone())
            });
            match group {
                Some(g) if !op.starts_with("Describe") => {
                    let known = reg.and_then(|r| r.autoscaling.groups.get(&g));
                    let mut r = Resource::new(known.map(|k| k.arn.clone()).unwrap_or_else(|| {
                        crate::autoscaling::engine::group_arn(region, UNKNOWN_GROUP_ID, &g)
                    }));
                    if let Some(k) = known {
                        r = r.tags(
                            &["aws:ResourceTag", "autoscaling:ResourceTag"],
                            k.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())),
                        );
                    }
                    if op == "PutLifecycleHook"
                        && let Some(role) = param(input, "RoleARN")
                    {
                        out.push(Check {
                            action: "iam:PassRole".into(),
                            resources: vec![
                                Resource::new(role)
                                    .key("iam:PassedToService", "autoscaling.amazonaws.com"),
                            ],
                        });
                    }
                    vec![r]
                }
                _ => any(),
            }
        }
        Service::Sqs => {
            let queue = |name: &str, account: Option<&str>| {
                Resource::new(format!(
                    "arn:aws:sqs:{region}:{}:{name}",
                    account.unwrap_or(ACCOUNT_ID)
                ))
            };
            match op {
                "ListQueues" => any(),
                "CreateQueue" | "GetQueueUrl" => match param(input, "QueueName") {
                    Some(n) => vec![queue(&n, param(input, "QueueOwnerAWSAccountId").as_deref())],
                    None => any(),
                },
                _ => {
                    let url = param(input, "QueueUrl").unwrap_or_else(|| ctx.path.clone());
                    let segs: Vec<&str> = url
                        .split('?')
                        .next()
                        .unwrap_or_default()
                        .rsplit('/')
                        .filter(|s| !s.is_empty())
                        .take(2)
                        .collect();
                    match segs.as_slice() {
                        [name, account] if account.chars().all(|c| c.is_ascii_digit()) => {
                            vec![queue(name, Some(account))]
                        }
                        [name, ..] => vec![queue(name, None)],
                        [] => any(),
                    }
                }
            }
        }
        Service::Sns => match op {
            "CreateTopic" => match param(input, "Name") {
                Some(n) => vec![Resource::new(arn("sns", region, &n))],
                None => any(),
            },
            _ => match param(input, "TopicArn").or_else(|| param(input, "TargetArn")) {
                Some(t) => vec![Resource::new(t)],
                None => any(),
            },
        },
        Service::Ec2 => {
            if op == "CreateImage"
                && let Input::Query(p) = input
            {
                // The new image and its snapshots, and their tags: `ec2:CreateTags` with
                // `ec2:CreateAction` (tag-on-create).
                for spec in p.struct_list("TagSpecification") {
                    let kind = spec.get("ResourceType").unwrap_or_default();
                    if kind == "image" || kind == "snapshot" {
                        out.push(Check {
                            action: "ec2:CreateTags".into(),
                            resources: vec![request_tags(
                                Resource::new(format!("arn:aws:ec2:{region}::{kind}/*"))
                                    .key("ec2:CreateAction", "CreateImage"),
                                &spec.struct_list("Tag"),
                            )],
                        });
                    }
                }
            }
            let tags = match (op, input) {
                ("CreateTags" | "DeleteTags", Input::Query(p)) => p.struct_list("Tag"),
                _ => Vec::new(),
            };
            let ids = match op {
                "CreateTags" | "DeleteTags" => param_list(input, "ResourceId"),
                "TerminateInstances" | "StopInstances" | "StartInstances" | "RebootInstances" => {
                    param_list(input, "InstanceId")
                }
                "CreateImage" => param(input, "InstanceId").into_iter().collect(),
                _ => Vec::new(),
            };
            let mut rs: Vec<Resource> = ids
                .iter()
                .map(|id| match id.split_once('-').map(|(p, _)| p) {
                    Some("i") => instance(id, &["aws:ResourceTag", "ec2:ResourceTag"]),
                    Some("ami") => Resource::new(format!("arn:aws:ec2:{region}::image/{id}")),
                    Some("snap") => Resource::new(format!("arn:aws:ec2:{region}::snapshot/{id}")),
                    _ => Resource::new(arn("ec2", region, &format!("resource/{id}"))),
                })
                .map(|r| request_tags(r, &tags))
                .collect();
            if op == "CreateImage" {
                for kind in ["image", "snapshot"] {
                    rs.push(Resource::new(format!("arn:aws:ec2:{region}::{kind}/*")));
                }
            }
            if rs.is_empty() { any() } else { rs }
        }
        Service::Ecs => {
            let cluster_name = param(input, "cluster")
                .map(|c| c.rsplit_once('/').map_or(c.clone(), |(_, n)| n.to_owned()))
                .unwrap_or_else(|| "default".into());
            let cluster_arn = arn("ecs", region, &format!("cluster/{cluster_name}"));
            let scoped = |kind: &str, ids: Vec<String>| -> Vec<Resource> {
                ids.iter()
                    .map(|id| {
                        let a = if id.starts_with("arn:") {
                            id.clone()
                        } else {
                            arn("ecs", region, &format!("{kind}/{cluster_name}/{id}"))
                        };
                        Resource::new(a).key("ecs:cluster", cluster_arn.clone())
                    })
                    .collect()
            };
            let rs = match op {
                "ListClusters" | "CreateCluster" => Vec::new(),
                "ListContainerInstances" | "ListServices" | "DeleteCluster" => {
                    vec![Resource::new(cluster_arn.clone())]
                }
                "UpdateContainerInstancesState" | "DescribeContainerInstances" => scoped(
                    "container-instance",
                    param_list(input, "containerInstances"),
                ),
                "ListTasks" | "DeregisterContainerInstance" => scoped(
                    "container-instance",
                    param(input, "containerInstance").into_iter().collect(),
                ),
                "DescribeTasks" => scoped("task", param_list(input, "tasks")),
                "StopTask" => scoped("task", param(input, "task").into_iter().collect()),
                "DescribeServices" => scoped("service", param_list(input, "services")),
                _ => Vec::new(),
            };
            if rs.is_empty() { any() } else { rs }
        }
        Service::Ssm => match op {
            "SendCommand" => {
                let mut rs = Vec::new();
                if let Some(doc) = param(input, "DocumentName") {
                    let owner = if doc.starts_with("AWS-") {
                        ""
                    } else {
                        ACCOUNT_ID
                    };
                    rs.push(Resource::new(if doc.starts_with("arn:") {
                        doc
                    } else {
                        format!("arn:aws:ssm:{region}:{owner}:document/{doc}")
                    }));
                }
                for id in param_list(input, "InstanceIds") {
                    rs.push(instance(&id, &["ssm:resourceTag", "aws:ResourceTag"]));
                }
                if rs.is_empty() { any() } else { rs }
            }
            _ => any(),
        },
        Service::CloudFormation => match param(input, "StackName") {
            Some(s) if s.starts_with("arn:") => vec![Resource::new(s)],
            Some(s) => vec![Resource::new(arn(
                "cloudformation",
                region,
                &format!("stack/{s}/{STACK_ID}"),
            ))],
            None => any(),
        },
        Service::Elbv2 => {
            let rs: Vec<Resource> = param(input, "TargetGroupArn")
                .or_else(|| param(input, "LoadBalancerArn"))
                .filter(|_| !op.starts_with("Describe"))
                .map(Resource::new)
                .into_iter()
                .collect();
            if rs.is_empty() { any() } else { rs }
        }
        Service::Events => match param(input, "Rule").or_else(|| param(input, "Name")) {
            Some(r) if op != "PutEvents" => {
                vec![Resource::new(arn("events", region, &format!("rule/{r}")))]
            }
            _ => any(),
        },
        Service::S3 => any(),
    };
    out.insert(0, Check { action, resources });
    out
}

/// What an S3 request needs.
pub(crate) fn s3_check(op: &str, bucket: Option<&str>, key: &str) -> Check {
    let object = || {
        vec![Resource::new(format!(
            "arn:aws:s3:::{}/{key}",
            bucket.unwrap_or_default()
        ))]
    };
    let bucket_arn = || {
        vec![Resource::new(format!(
            "arn:aws:s3:::{}",
            bucket.unwrap_or_default()
        ))]
    };
    let (action, resources) = match op {
        "GetObject" | "HeadObject" => ("s3:GetObject", object()),
        "PutObject" | "CopyObject" => ("s3:PutObject", object()),
        "DeleteObject" => ("s3:DeleteObject", object()),
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => ("s3:ListBucket", bucket_arn()),
        "CreateBucket" => ("s3:CreateBucket", bucket_arn()),
        "DeleteBucket" => ("s3:DeleteBucket", bucket_arn()),
        "GetBucketLocation" => ("s3:GetBucketLocation", bucket_arn()),
        "ListBuckets" => ("s3:ListAllMyBuckets", vec![Resource::any()]),
        other => {
            return Check {
                action: format!("s3:{other}"),
                resources: vec![Resource::any()],
            };
        }
    };
    Check {
        action: action.into(),
        resources,
    }
}
