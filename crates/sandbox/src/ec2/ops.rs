//! The EC2 operations and `handle`, which dispatches them.

use super::*;
use crate::wildcard::{self, Question};

type R = Result<String, AwsError>;

/// Runs one EC2 operation on the world.
pub(crate) fn dispatch(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    sync(w, &ctx.region);
    let cx = ctx.op_cx();
    match ctx.op.as_str() {
        "DescribeInstances" => describe_instances(w, &cx, p),
        "RunInstances" => run_instances(w, &cx, p),
        "TerminateInstances" => terminate_instances(w, &cx, p),
        "RebootInstances" => reboot_instances(w, &cx, p),
        "DescribeInstanceStatus" => describe_instance_status(w, &cx, p),
        "CreateTags" => create_tags(w, &cx, p),
        "DeleteTags" => delete_tags(w, &cx, p),
        "DescribeTags" => describe_tags(w, &cx, p),
        "CreateImage" => create_image(w, &cx, p),
        "DescribeImages" => describe_images(w, &cx, p),
        "DeregisterImage" => deregister_image(w, &cx, p),
        op => Err(AwsError::unknown_operation(Service::Ec2, op)),
    }
}

type Cx<'a> = crate::protocol::OpCx<'a>;

/// EC2's response shapes.
trait Replies {
    fn writer(&self) -> XmlWriter;
    fn returned_true(&self) -> String;
}

impl Replies for Cx<'_> {
    /// `<OpResponse xmlns=…><requestId>…</requestId>`.
    fn writer(&self) -> XmlWriter {
        let mut x = XmlWriter::root(
            &format!("{}Response", self.op),
            Some(Service::Ec2.xml_namespace()),
        );
        x.elem("requestId", self.rid);
        x
    }

    fn returned_true(&self) -> String {
        let mut x = self.writer();
        x.elem("return", "true");
        x.finish_bare()
    }
}

fn missing_parameter(name: &str) -> AwsError {
    AwsError::new(
        400,
        "MissingParameter",
        format!("The request must contain the parameter {name}"),
    )
}

fn invalid_value(param: &str, v: &str, why: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidParameterValue",
        format!("Value ({v}) for parameter {param} is invalid. {why}"),
    )
}

fn looks_like(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        (rest.len() == 8 || rest.len() == 17) && rest.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

fn instance_not_found(missing: &[String]) -> AwsError {
    let msg = if missing.len() == 1 {
        format!("The instance ID '{}' does not exist", missing[0])
    } else {
        format!("The instance IDs '{}' do not exist", missing.join(", "))
    };
    AwsError::new(400, "InvalidInstanceID.NotFound", msg)
}

fn image_not_found(id: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidAMIID.NotFound",
        format!("The image id '[{id}]' does not exist"),
    )
}

/// Checks that every id names an instance of the region: malformed ids first, then every
/// unknown id in one `InvalidInstanceID.NotFound`.
fn check_instances(w: &mut World, region: &str, ids: &[String]) -> Result<(), AwsError> {
    let ec2 = &w.region(region).ec2;
    let mut missing = Vec::new();
    for id in ids {
        if ec2.instances.contains_key(id) {
            continue;
        }
        if !looks_like(id, "i-") {
            return Err(AwsError::new(
                400,
                "InvalidInstanceID.Malformed",
                format!("Invalid id: \"{id}\""),
            ));
        }
        if !missing.contains(id) {
            missing.push(id.clone());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(instance_not_found(&missing))
    }
}

fn instance_ids(p: &Params) -> Vec<String> {
    p.list("InstanceId")
}

/// A filter: `Filter.N.Name` with its `Value.M`s.
struct Filter {
    name: String,
    values: Vec<String>,
}

fn filters(p: &Params) -> Result<Vec<Filter>, AwsError> {
    p.struct_list("Filter")
        .into_iter()
        .map(|f| {
            let name = f
                .get_nonempty("Name")
                .ok_or_else(|| missing_parameter("Filter.Name"))?
                .to_owned();
            Ok(Filter {
                name,
                values: f.list("Value"),
            })
        })
        .collect()
}

fn bad_filter(name: &str) -> AwsError {
    AwsError::new(
        400,
        "InvalidParameterValue",
        format!("The filter '{name}' is invalid"),
    )
}

fn any_glob(values: &[String], s: &str) -> bool {
    values
        .iter()
        .any(|v| wildcard::matches(v, s, Question::AnyChar))
}

/// Whether tags match a `tag:KEY`, `tag-key` or `tag-value` filter (`None`: not a tag
/// filter).
fn tag_filter(f: &Filter, tags: &[(String, String)]) -> Option<bool> {
    if let Some(key) = f.name.strip_prefix("tag:") {
        return Some(tags.iter().any(|(k, v)| k == key && any_glob(&f.values, v)));
    }
    match f.name.as_str() {
        "tag-key" => Some(tags.iter().any(|(k, _)| any_glob(&f.values, k))),
        "tag-value" => Some(tags.iter().any(|(_, v)| any_glob(&f.values, v))),
        _ => None,
    }
}

fn instance_matches(v: &View, fs: &[Filter]) -> Result<bool, AwsError> {
    let tags = v.tags();
    for f in fs {
        if let Some(ok) = tag_filter(f, &tags) {
            if !ok {
                return Ok(false);
            }
            continue;
        }
        let field = match f.name.as_str() {
            "instance-id" => v.rec.id.clone(),
            "instance-state-name" => v.state.name().to_owned(),
            "instance-state-code" => v.state.code().to_string(),
            "availability-zone" | "placement.availability-zone" => v.rec.az.clone(),
            "instance-type" => v.rec.instance_type.clone(),
            "image-id" => v.rec.image_id.clone(),
            "reservation-id" => v.rec.reservation_id.clone(),
            "private-ip-address" => v.rec.private_ip.clone(),
            "owner-id" => ACCOUNT_ID.to_owned(),
            other => return Err(bad_filter(other)),
        };
        if !any_glob(&f.values, &field) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn page_args(p: &Params, min: i64, max: i64) -> Result<(usize, usize), AwsError> {
    let size = match p.int("MaxResults")? {
        None => usize::MAX,
        Some(n) if (min..=max).contains(&n) => n as usize,
        Some(n) => {
            return Err(AwsError::new(
                400,
                "InvalidParameterValue",
                format!(
                    "Value ( {n} ) for parameter maxResults is invalid. Expecting a value between {min} and {max}."
                ),
            ));
        }
    };
    let start = match p.get_nonempty("NextToken") {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            AwsError::new(
                400,
                "InvalidParameterValue",
                format!("Unable to parse pagination token: {t}"),
            )
        })?,
    };
    Ok((start, size))
}

fn write_state(x: &mut XmlWriter, name: &str, s: Ec2State) {
    x.start(name);
    x.elem("code", s.code());
    x.elem("name", s.name());
    x.end();
}

fn write_tag_set(x: &mut XmlWriter, tags: &[(String, String)]) {
    if tags.is_empty() {
        x.empty("tagSet");
        return;
    }
    x.start("tagSet");
    for (k, v) in tags {
        x.start("item");
        x.elem("key", k);
        x.elem("value", v);
        x.end();
    }
    x.end();
}

fn write_instance(x: &mut XmlWriter, v: &View, state: Ec2State, launch_index: usize) {
    let r = v.rec;
    let dns = format!("ip-{}.ec2.internal", r.private_ip.replace('.', "-"));
    x.start("item");
    x.elem("instanceId", &r.id);
    x.elem("imageId", &r.image_id);
    write_state(x, "instanceState", state);
    x.elem("privateDnsName", &dns);
    x.empty("dnsName");
    if state == Ec2State::Terminated {
        x.elem(
            "reason",
            format!(
                "User initiated ({} GMT)",
                crate::clock::to_datetime(r.ended_at.or(r.terminated_at).unwrap_or(r.launched_at))
                    .format("%Y-%m-%d %H:%M:%S")
            ),
        );
    } else {
        x.empty("reason");
    }
    x.elem("amiLaunchIndex", launch_index);
    x.empty("productCodes");
    x.elem("instanceType", &r.instance_type);
    x.elem("launchTime", iso_millis(r.launched_at));
    x.start("placement");
    x.elem("availabilityZone", &r.az);
    x.empty("groupName");
    x.elem("tenancy", "default");
    x.end();
    x.start("monitoring");
    x.elem("state", "disabled");
    x.end();
    if state != Ec2State::Terminated {
        x.elem("privateIpAddress", &r.private_ip);
    }
    x.elem("architecture", "x86_64");
    x.elem("rootDeviceType", "ebs");
    x.elem("rootDeviceName", "/dev/xvda");
    x.elem("virtualizationType", "hvm");
    x.elem("hypervisor", "xen");
    write_tag_set(x, &v.tags());
    if state == Ec2State::Terminated {
        x.start("stateReason");
        x.elem("code", "Client.UserInitiatedShutdown");
        x.elem(
            "message",
            "Client.UserInitiatedShutdown: User initiated shutdown",
        );
        x.end();
    }
    x.start("metadataOptions");
    x.elem("state", "applied");
    x.elem("httpTokens", "required");
    x.elem("httpPutResponseHopLimit", 2);
    x.elem("httpEndpoint", "enabled");
    x.elem("httpProtocolIpv6", "disabled");
    x.elem("instanceMetadataTags", "enabled");
    x.end();
    x.end();
}

fn describe_instances(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = instance_ids(p);
    let fs = filters(p)?;
    if !ids.is_empty() && p.get("MaxResults").is_some() {
        return Err(AwsError::new(
            400,
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ));
    }
    check_instances(w, cx.region, &ids)?;
    let (start, size) = page_args(p, 5, 1000)?;
    let r = w.region(cx.region);
    let mut views = Vec::new();
    for rec in r.ec2.instances.values() {
        if !ids.is_empty() && !ids.contains(&rec.id) {
            continue;
        }
        let v = view(r, rec);
        if instance_matches(&v, &fs)? {
            views.push(v);
        }
    }
    // One reservation per RunInstances call (and per group launch), in launch order.
    views.sort_by(|a, b| {
        (a.rec.launched_at, &a.rec.reservation_id, &a.rec.id).cmp(&(
            b.rec.launched_at,
            &b.rec.reservation_id,
            &b.rec.id,
        ))
    });
    let (page, next) = crate::protocol::page_at(views, start, size);
    let mut x = cx.writer();
    if page.is_empty() {
        x.empty("reservationSet");
    } else {
        x.start("reservationSet");
        let mut i = 0;
        while i < page.len() {
            let res = &page[i].rec.reservation_id;
            x.start("item");
            x.elem("reservationId", res);
            x.elem("ownerId", ACCOUNT_ID);
            x.empty("groupSet");
            x.start("instancesSet");
            let mut k = 0;
            while i < page.len() && &page[i].rec.reservation_id == res {
                write_instance(&mut x, &page[i], page[i].state, k);
                i += 1;
                k += 1;
            }
            x.end();
            x.end();
        }
        x.end();
    }
    x.opt("nextToken", next);
    Ok(x.finish_bare())
}

fn tag_specs(p: &Params, resource_type: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let mut out = BTreeMap::new();
    for spec in p.struct_list("TagSpecification") {
        let rt = spec.get("ResourceType").unwrap_or_default();
        if rt != resource_type {
            continue;
        }
        for t in spec.struct_list("Tag") {
            let (k, v) = check_tag(&t)?;
            out.insert(k, v.unwrap_or_default());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(tag_limit());
    }
    Ok(out)
}

fn tag_specs_types(p: &Params, allowed: &[&str]) -> Result<(), AwsError> {
    for spec in p.struct_list("TagSpecification") {
        let rt = spec.get("ResourceType").unwrap_or_default();
        if !allowed.contains(&rt) {
            return Err(AwsError::new(
                400,
                "InvalidParameterValue",
                format!("'{rt}' is not a valid taggable resource type for this operation."),
            ));
        }
    }
    Ok(())
}

fn tag_limit() -> AwsError {
    AwsError::new(
        400,
        "TagLimitExceeded",
        format!("The maximum number of tags per resource is {MAX_TAGS}."),
    )
}

/// A `Tag.N` structure: its key (checked) and value.
fn check_tag(t: &Params) -> Result<(String, Option<String>), AwsError> {
    let k = t.get("Key").ok_or_else(|| missing_parameter("Tag.Key"))?;
    if k.is_empty() || k.chars().count() > 128 {
        return Err(invalid_value(
            "key",
            k,
            "Tag keys must be between 1 and 128 characters long.",
        ));
    }
    if k.to_ascii_lowercase().starts_with("aws:") {
        return Err(invalid_value(
            "key",
            k,
            "Tag keys starting with 'aws:' are reserved for internal use",
        ));
    }
    let v = t.get("Value");
    if let Some(v) = v
        && v.chars().count() > 256
    {
        return Err(invalid_value(
            "value",
            v,
            "Tag values may be at most 256 characters long.",
        ));
    }
    Ok((k.to_owned(), v.map(str::to_owned)))
}

fn run_instances(w: &mut World, cx: &Cx, p: &Params) -> R {
    let image = p
        .get_nonempty("ImageId")
        .ok_or_else(|| missing_parameter("ImageId"))?
        .to_owned();
    if !image.starts_with("ami-") {
        return Err(AwsError::new(
            400,
            "InvalidAMIID.Malformed",
            format!("Invalid id: \"{image}\" (expecting \"ami-...\")"),
        ));
    }
    let min = p
        .int("MinCount")?
        .ok_or_else(|| missing_parameter("MinCount"))?;
    let max = p
        .int("MaxCount")?
        .ok_or_else(|| missing_parameter("MaxCount"))?;
    if min < 1 {
        return Err(AwsError::new(
            400,
            "InvalidParameterValue",
            format!("Value ({min}) for parameter minCount is invalid. Expected a positive value."),
        ));
    }
    if max < min {
        return Err(AwsError::new(
            400,
            "InvalidParameterValue",
            "Value for parameter maxCount is invalid. maxCount must be greater than or equal to minCount.",
        ));
    }
    if min > MAX_RUN_COUNT {
        return Err(AwsError::new(
            400,
            "InstanceLimitExceeded",
            format!(
                "You have requested more instances ({min}) than your current instance limit of {MAX_RUN_COUNT} allows for the specified instance type."
            ),
        ));
    }
    let count = max.min(MAX_RUN_COUNT) as usize;
    let itype = p
        .get_nonempty("InstanceType")
        .unwrap_or(DEFAULT_INSTANCE_TYPE)
        .to_owned();
    let az = match p.get_nonempty("Placement.AvailabilityZone") {
        Some(az) => {
            let ok = az
                .strip_prefix(cx.region)
                .is_some_and(|s| s.len() == 1 && s.bytes().all(|b| b.is_ascii_lowercase()));
            if !ok {
                return Err(AwsError::new(
                    400,
                    "InvalidParameterValue",
                    format!("Invalid availability zone: [{az}]"),
                ));
            }
            az.to_owned()
        }
        None => format!("{}a", cx.region),
    };
    tag_specs_types(p, &["instance", "volume", "network-interface"])?;
    let tags = tag_specs(p, "instance")?;
    let reservation = ids::hex_id("r");
    let ids: Vec<String> = (0..count)
        .map(|_| {
            run_instance(
                w,
                cx.region,
                &image,
                &itype,
                &az,
                &reservation,
                tags.clone(),
            )
        })
        .collect();
    let r = w.region(cx.region);
    let mut x = cx.writer();
    x.elem("reservationId", &reservation);
    x.elem("ownerId", ACCOUNT_ID);
    x.empty("groupSet");
    x.start("instancesSet");
    for (k, id) in ids.iter().enumerate() {
        if let Some(rec) = r.ec2.instances.get(id) {
            let v = view(r, rec);
            // The answer shows the instance as it starts; it is `running` at once.
            write_instance(&mut x, &v, Ec2State::Pending, k);
        }
    }
    x.end();
    Ok(x.finish_bare())
}

fn require_ids(p: &Params) -> Result<Vec<String>, AwsError> {
    let ids = instance_ids(p);
    if ids.is_empty() {
        return Err(missing_parameter("InstanceId"));
    }
    Ok(ids)
}

fn terminate_instances(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = require_ids(p)?;
    check_instances(w, cx.region, &ids)?;
    let now = w.now;
    let mut changes = Vec::new();
    for id in &ids {
        let before = {
            let r = w.region(cx.region);
            let Some(rec) = r.ec2.instances.get(id) else {
                continue;
            };
            view(r, rec).state
        };
        if before != Ec2State::Terminated {
            // A group instance leaves its group without hooks (§1.3); the group replaces
            // it as it would after a failed health check.
            let in_group = w
                .region(cx.region)
                .autoscaling
                .instances
                .get(id)
                .is_some_and(|i| i.in_group);
            if in_group {
                autoscaling::engine::begin_termination(
                    w,
                    cx.region,
                    id,
                    format!(
                        "At {} an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped.",
                        iso_secs(now)
                    ),
                    false,
                );
            }
            if let Some(rec) = w.region(cx.region).ec2.instances.get_mut(id) {
                rec.terminated_at = Some(now);
                rec.ended_at.get_or_insert(now);
            }
            sync_one(w.region(cx.region), id);
            crate::ecs::instance_terminated(w, cx.region, id);
        }
        let current = if before == Ec2State::Terminated {
            Ec2State::Terminated
        } else {
            Ec2State::ShuttingDown
        };
        changes.push((id.clone(), current, before));
    }
    let mut x = cx.writer();
    x.start("instancesSet");
    for (id, current, previous) in changes {
        x.start("item");
        x.elem("instanceId", id);
        write_state(&mut x, "currentState", current);
        write_state(&mut x, "previousState", previous);
        x.end();
    }
    x.end();
    Ok(x.finish_bare())
}

fn reboot_instances(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = require_ids(p)?;
    check_instances(w, cx.region, &ids)?;
    for id in &ids {
        let r = w.region(cx.region);
        let state = r.ec2.instances.get(id).map(|rec| view(r, rec).state);
        if state == Some(Ec2State::Terminated) {
            return Err(AwsError::new(
                400,
                "IncorrectState",
                format!("The instance '{id}' is not in a state from which it can be rebooted."),
            ));
        }
    }
    for id in &ids {
        record_reboot(w, cx.region, id);
    }
    Ok(cx.returned_true())
}

fn describe_instance_status(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = instance_ids(p);
    check_instances(w, cx.region, &ids)?;
    let all = p.bool("IncludeAllInstances")?.unwrap_or(false);
    let fs = filters(p)?;
    let r = w.region(cx.region);
    let mut x = cx.writer();
    x.start("instanceStatusSet");
    for rec in r.ec2.instances.values() {
        if !ids.is_empty() && !ids.contains(&rec.id) {
            continue;
        }
        let v = view(r, rec);
        if !all && v.state != Ec2State::Running {
            continue;
        }
        let mut keep = true;
        for f in &fs {
            let field = match f.name.as_str() {
                "instance-state-name" => v.state.name().to_owned(),
                "availability-zone" => rec.az.clone(),
                other => return Err(bad_filter(other)),
            };
            keep &= any_glob(&f.values, &field);
        }
        if !keep {
            continue;
        }
        let ok = if v.state == Ec2State::Running {
            "ok"
        } else {
            "not-applicable"
        };
        x.start("item");
        x.elem("instanceId", &rec.id);
        x.elem("availabilityZone", &rec.az);
        write_state(&mut x, "instanceState", v.state);
        for name in ["systemStatus", "instanceStatus"] {
            x.start(name);
            x.elem("status", ok);
            x.start("details");
            x.start("item");
            x.elem("name", "reachability");
            x.elem("status", if ok == "ok" { "passed" } else { ok });
            x.end();
            x.end();
            x.end();
        }
        x.end();
    }
    x.end();
    Ok(x.finish_bare())
}

/// A resource that can carry tags.
enum Resource {
    Instance(String),
    Image(String),
    Snapshot(String),
}

fn resources(w: &mut World, region: &str, p: &Params) -> Result<Vec<Resource>, AwsError> {
    let ids = p.list("ResourceId");
    if ids.is_empty() {
        return Err(missing_parameter("ResourceId"));
    }
    let mut out = Vec::new();
    let mut instances = Vec::new();
    for id in ids {
        if id.starts_with("i-") {
            instances.push(id.clone());
            out.push(Resource::Instance(id));
        } else if id.starts_with("ami-") {
            if !w.region(region).ec2.images.contains_key(&id) {
                return Err(image_not_found(&id));
            }
            out.push(Resource::Image(id));
        } else if id.starts_with("snap-") {
            let known = w
                .region(region)
                .ec2
                .images
                .values()
                .any(|i| i.snapshot_id == id);
            if !known {
                return Err(AwsError::new(
                    400,
                    "InvalidSnapshot.NotFound",
                    format!("The snapshot '{id}' does not exist."),
                ));
            }
            out.push(Resource::Snapshot(id));
        } else {
            return Err(AwsError::new(
                400,
                "InvalidID",
                format!("The ID '{id}' is not valid"),
            ));
        }
    }
    check_instances(w, region, &instances)?;
    Ok(out)
}

fn tags_of<'a>(ec2: &'a mut State, r: &Resource) -> Option<&'a mut BTreeMap<String, String>> {
    match r {
        Resource::Instance(id) => ec2.instances.get_mut(id).map(|i| &mut i.tags),
        Resource::Image(id) => ec2.images.get_mut(id).map(|i| &mut i.tags),
        Resource::Snapshot(id) => ec2
            .images
            .values_mut()
            .find(|i| &i.snapshot_id == id)
            .map(|i| &mut i.snapshot_tags),
    }
}

fn create_tags(w: &mut World, cx: &Cx, p: &Params) -> R {
    let res = resources(w, cx.region, p)?;
    let tags = p.struct_list("Tag");
    if tags.is_empty() {
        return Err(missing_parameter("Tag"));
    }
    let mut pairs = Vec::new();
    for t in &tags {
        let (k, v) = check_tag(t)?;
        pairs.push((k, v.unwrap_or_default()));
    }
    let ec2 = &mut w.region(cx.region).ec2;
    for r in &res {
        if let Some(map) = tags_of(ec2, r) {
            let mut next = map.clone();
            for (k, v) in &pairs {
                next.insert(k.clone(), v.clone());
            }
            if next.len() > MAX_TAGS {
                return Err(tag_limit());
            }
        }
    }
    for r in &res {
        if let Some(map) = tags_of(ec2, r) {
            for (k, v) in &pairs {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(cx.returned_true())
}

fn delete_tags(w: &mut World, cx: &Cx, p: &Params) -> R {
    let res = resources(w, cx.region, p)?;
    let tags = p.struct_list("Tag");
    let mut keys = Vec::new();
    for t in &tags {
        keys.push(check_tag(t)?);
    }
    let ec2 = &mut w.region(cx.region).ec2;
    for r in &res {
        if let Some(map) = tags_of(ec2, r) {
            if tags.is_empty() {
                // No Tag parameter: every (user) tag goes.
                map.clear();
                continue;
            }
            for (k, v) in &keys {
                // With a value, only a tag with that value goes.
                if v.as_ref().is_none_or(|v| map.get(k) == Some(v)) {
                    map.remove(k);
                }
            }
        }
    }
    Ok(cx.returned_true())
}

fn describe_tags(w: &mut World, cx: &Cx, p: &Params) -> R {
    let fs = filters(p)?;
    let (start, size) = page_args(p, 5, 1000)?;
    let r = w.region(cx.region);
    // (resource id, type, key, value)
    let mut all: Vec<(String, &'static str, String, String)> = Vec::new();
    for rec in r.ec2.instances.values() {
        for (k, v) in view(r, rec).tags() {
            all.push((rec.id.clone(), "instance", k, v));
        }
    }
    for img in r.ec2.images.values() {
        for (k, v) in &img.tags {
            all.push((img.id.clone(), "image", k.clone(), v.clone()));
        }
        for (k, v) in &img.snapshot_tags {
            all.push((img.snapshot_id.clone(), "snapshot", k.clone(), v.clone()));
        }
    }
    let mut out = Vec::new();
    for t in all {
        let mut keep = true;
        for f in &fs {
            let field = match f.name.as_str() {
                "resource-id" => &t.0,
                "resource-type" => t.1,
                "key" => &t.2,
                "value" => &t.3,
                other => return Err(bad_filter(other)),
            };
            if !any_glob(&f.values, field) {
                keep = false;
                break;
            }
        }
        if keep {
            out.push(t);
        }
    }
    out.sort_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)));
    let (page, next) = crate::protocol::page_at(out, start, size);
    let mut x = cx.writer();
    if page.is_empty() {
        x.empty("tagSet");
    } else {
        x.start("tagSet");
        for (id, ty, k, v) in &page {
            x.start("item");
            x.elem("resourceId", id);
            x.elem("resourceType", ty);
            x.elem("key", k);
            x.elem("value", v);
            x.end();
        }
        x.end();
    }
    x.opt("nextToken", next);
    Ok(x.finish_bare())
}

fn check_image_name(name: &str) -> Result<(), AwsError> {
    let n = name.chars().count();
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c));
    if !(3..=128).contains(&n) || !ok_chars {
        return Err(AwsError::new(
            400,
            "InvalidAMIName.Malformed",
            "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'",
        ));
    }
    Ok(())
}

fn create_image(w: &mut World, cx: &Cx, p: &Params) -> R {
    let instance = p
        .get_nonempty("InstanceId")
        .ok_or_else(|| missing_parameter("InstanceId"))?
        .to_owned();
    let name = p
        .get("Name")
        .ok_or_else(|| missing_parameter("Name"))?
        .to_owned();
    check_image_name(&name)?;
    let no_reboot = p.bool("NoReboot")?.unwrap_or(false);
    let description = p.get("Description").map(str::to_owned);
    tag_specs_types(p, &["image", "snapshot"])?;
    let tags = tag_specs(p, "image")?;
    let snapshot_tags = tag_specs(p, "snapshot")?;
    check_instances(w, cx.region, std::slice::from_ref(&instance))?;
    let now = w.now;
    let default_secs = w.behaviour.ec2.create_image_secs;
    let r = w.region(cx.region);
    if let Some(rec) = r.ec2.instances.get(&instance)
        && matches!(
            view(r, rec).state,
            Ec2State::Terminated | Ec2State::ShuttingDown | Ec2State::Pending
        )
    {
        return Err(AwsError::new(
            400,
            "IncorrectInstanceState",
            format!("The instance '{instance}' is not in a state from which it can be imaged."),
        ));
    }
    if let Some(other) = r.ec2.images.values().find(|i| i.name == name) {
        return Err(AwsError::new(
            400,
            "InvalidAMIName.Duplicate",
            format!("AMI name {name} is already in use by AMI {}", other.id),
        ));
    }
    let rule = r
        .ec2
        .image_outcomes
        .iter()
        .find(|o| {
            o.instance_id.as_deref().is_none_or(|i| i == instance)
                && o.name_contains.as_deref().is_none_or(|c| name.contains(c))
        })
        .cloned();
    let (outcome, delay_ms) = match rule {
        Some(o) => {
            let state = if o.state == "failed" {
                "failed"
            } else {
                "available"
            };
            let reason = (state == "failed").then(|| {
                "Client.ImageCreationFailed: the sandbox's image outcome rule failed this image"
                    .to_owned()
            });
            let delay = o
                .delay_seconds
                .map_or(default_secs.saturating_mul(1000), |d| {
                    (d * 1000.0).round() as u64
                });
            ((state, reason), delay)
        }
        None => (("available", None), default_secs.saturating_mul(1000)),
    };
    let id = ids::hex_id("ami");
    r.ec2.images.insert(
        id.clone(),
        Image {
            id: id.clone(),
            name,
            description,
            instance_id: instance.clone(),
            state: "pending",
            created: now,
            snapshot_id: ids::hex_id("snap"),
            tags,
            snapshot_tags,
            outcome,
            reason: None,
        },
    );
    if !no_reboot {
        // Without NoReboot, EC2 shuts the instance down for the snapshot and restarts it.
        record_reboot(w, cx.region, &instance);
    }
    w.schedule(
        now.saturating_add(delay_ms),
        cx.region,
        WorldTimer::Ec2(Timer::ImageDone { image: id.clone() }),
    );
    let mut x = cx.writer();
    x.elem("imageId", &id);
    Ok(x.finish_bare())
}

fn describe_images(w: &mut World, cx: &Cx, p: &Params) -> R {
    let ids = p.list("ImageId");
    let owners = p.list("Owner");
    let fs = filters(p)?;
    let ec2 = &w.region(cx.region).ec2;
    for id in &ids {
        if ec2.images.contains_key(id) || ec2.deregistered.contains(id) {
            continue;
        }
        if !looks_like(id, "ami-") {
            return Err(AwsError::new(
                400,
                "InvalidAMIID.Malformed",
                format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
            ));
        }
        return Err(image_not_found(id));
    }
    let mine = owners.is_empty() || owners.iter().any(|o| o == "self" || o == ACCOUNT_ID);
    let mut out = Vec::new();
    if mine {
        for img in ec2.images.values() {
            if !ids.is_empty() && !ids.contains(&img.id) {
                continue;
            }
            let tags: Vec<(String, String)> = img
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut keep = true;
            for f in &fs {
                if let Some(ok) = tag_filter(f, &tags) {
                    keep &= ok;
                    continue;
                }
                let field = match f.name.as_str() {
                    "name" => img.name.clone(),
                    "state" => img.state.to_owned(),
                    "image-id" => img.id.clone(),
                    "owner-id" => ACCOUNT_ID.to_owned(),
                    "description" => img.description.clone().unwrap_or_default(),
                    other => return Err(bad_filter(other)),
                };
                keep &= any_glob(&f.values, &field);
            }
            if keep {
                out.push(img);
            }
        }
    }
    let mut x = cx.writer();
    if out.is_empty() {
        x.empty("imagesSet");
    } else {
        x.start("imagesSet");
        for img in out {
            let tags: Vec<(String, String)> = img
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            x.start("item");
            x.elem("imageId", &img.id);
            x.elem("imageLocation", format!("{ACCOUNT_ID}/{}", img.name));
            x.elem("imageState", img.state);
            x.elem("imageOwnerId", ACCOUNT_ID);
            x.elem("creationDate", iso_millis(img.created));
            x.elem("isPublic", "false");
            x.elem("architecture", "x86_64");
            x.elem("imageType", "machine");
            x.elem("name", &img.name);
            x.opt("description", img.description.as_deref());
            x.elem("rootDeviceType", "ebs");
            x.elem("rootDeviceName", "/dev/xvda");
            x.start("blockDeviceMapping");
            x.start("item");
            x.elem("deviceName", "/dev/xvda");
            x.start("ebs");
            x.elem("snapshotId", &img.snapshot_id);
            x.elem("volumeSize", 8);
            x.elem("deleteOnTermination", "true");
            x.elem("volumeType", "gp3");
            x.elem("encrypted", "false");
            x.end();
            x.end();
            x.end();
            x.elem("virtualizationType", "hvm");
            x.elem("hypervisor", "xen");
            write_tag_set(&mut x, &tags);
            if let Some(reason) = &img.reason {
                x.start("stateReason");
                x.elem("code", "Client.ImageCreationFailed");
                x.elem("message", reason);
                x.end();
            }
            x.end();
        }
        x.end();
    }
    Ok(x.finish_bare())
}

fn deregister_image(w: &mut World, cx: &Cx, p: &Params) -> R {
    let id = p
        .get_nonempty("ImageId")
        .ok_or_else(|| missing_parameter("ImageId"))?
        .to_owned();
    let ec2 = &mut w.region(cx.region).ec2;
    if ec2.images.remove(&id).is_none() {
        if !looks_like(&id, "ami-") {
            return Err(AwsError::new(
                400,
                "InvalidAMIID.Malformed",
                format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
            ));
        }
        if ec2.deregistered.contains(&id) {
            return Err(AwsError::new(
                400,
                "InvalidAMIID.Unavailable",
                format!("AMI '{id}' is pending deregistration or deregistered"),
            ));
        }
        return Err(image_not_found(&id));
    }
    ec2.deregistered.push(id);
    Ok(cx.returned_true())
}
