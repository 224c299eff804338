//! The ELBv2 operations: `handle`, its dispatch, and one function per operation.

use super::*;

type R = Result<String, AwsError>;

fn ns() -> &'static str {
    Service::Elbv2.xml_namespace()
}

fn writer(ctx: &RequestCtx) -> XmlWriter {
    XmlWriter::response(&ctx.op, ns(), true)
}

/// Runs one ELBv2 operation on the world.
pub(crate) fn dispatch(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    match ctx.op.as_str() {
        "CreateTargetGroup" => create_target_group(w, ctx, p),
        "DescribeTargetGroups" => describe_target_groups(w, ctx, p),
        "DeleteTargetGroup" => delete_target_group(w, ctx, p),
        "DescribeTargetGroupAttributes" => describe_target_group_attributes(w, ctx, p),
        "ModifyTargetGroupAttributes" => modify_attributes(w, ctx, p),
        "RegisterTargets" => register_targets(w, ctx, p),
        "DeregisterTargets" => deregister_targets(w, ctx, p),
        "DescribeTargetHealth" => describe_target_health(w, ctx, p),
        op => Err(AwsError::unknown_operation(Service::Elbv2, op)),
    }
}

fn delete_target_group(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TargetGroupArn")?;
    // Deleting a missing target group succeeds, as in AWS (idempotent delete).
    st(w, &ctx.region).target_groups.remove(arn);
    Ok(XmlWriter::empty_result(&ctx.op, ns(), &ctx.request_id))
}

fn describe_target_group_attributes(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let tg = existing(w, &ctx.region, p.required("TargetGroupArn")?)?;
    let mut x = writer(ctx);
    write_attributes(&mut x, &tg.attributes);
    Ok(x.finish(&ctx.request_id))
}

pub(crate) fn target_group_not_found() -> AwsError {
    AwsError::new(
        400,
        "TargetGroupNotFound",
        "One or more target groups not found",
    )
}

fn existing<'a>(w: &'a mut World, region: &str, arn: &str) -> Result<&'a TargetGroup, AwsError> {
    st(w, region)
        .target_groups
        .get(arn)
        .ok_or_else(target_group_not_found)
}

fn int_in(p: &Params, name: &str, lo: i64, hi: i64) -> Result<Option<i64>, AwsError> {
    match p.int(name)? {
        Some(v) if !(lo..=hi).contains(&v) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must have value between {lo} and {hi}",
            lower_first(name)
        ))),
        v => Ok(v),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn enum_value(p: &Params, name: &str, allowed: &[&str]) -> Result<Option<String>, AwsError> {
    match p.get(name) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
        Some(v) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            lower_first(name),
            allowed.join(", ")
        ))),
    }
}

fn check_name(name: &str) -> Result<(), AwsError> {
    if name.chars().count() > 32 {
        return Err(AwsError::validation(
            "Target group name cannot be longer than '32' characters",
        ));
    }
    check_len("Name", name, 1, 32)?;
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(AwsError::validation(format!(
            "Target group name '{name}' can only contain characters that are alphanumeric characters or hyphens(-)"
        )));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(AwsError::validation(format!(
            "Target group name '{name}' cannot begin or end with '-'"
        )));
    }
    Ok(())
}

fn default_attributes(protocol: &str) -> BTreeMap<String, String> {
    let http = matches!(protocol, "HTTP" | "HTTPS");
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        m.insert(k.to_owned(), v.to_owned());
    };
    put(
        DEREGISTRATION_DELAY,
        &DEFAULT_DEREGISTRATION_DELAY_SECS.to_string(),
    );
    put("stickiness.enabled", "false");
    if http {
        put("stickiness.type", "lb_cookie");
        put("stickiness.lb_cookie.duration_seconds", "86400");
        put("stickiness.app_cookie.cookie_name", "");
        put("stickiness.app_cookie.duration_seconds", "86400");
        put("slow_start.duration_seconds", "0");
        put("load_balancing.algorithm.type", "round_robin");
        put(
            "load_balancing.cross_zone.enabled",
            "use_load_balancer_configuration",
        );
    } else {
        put("stickiness.type", "source_ip");
        put(
            "deregistration_delay.connection_termination.enabled",
            "false",
        );
        put("preserve_client_ip.enabled", "true");
        put("proxy_protocol_v2.enabled", "false");
        put(
            "load_balancing.cross_zone.enabled",
            "use_load_balancer_configuration",
        );
    }
    m
}

fn create_target_group(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let name = p.required("Name")?.to_owned();
    check_name(&name)?;
    let target_type = enum_value(p, "TargetType", &["instance", "ip", "lambda", "alb"])?
        .unwrap_or_else(|| "instance".into());
    if target_type != "instance" {
        return Err(AwsError::validation(format!(
            "The lifehook sandbox supports only TargetType 'instance', not '{target_type}'"
        )));
    }
    let protocol = enum_value(p, "Protocol", PROTOCOLS)?
        .ok_or_else(|| AwsError::validation("A protocol must be specified"))?;
    let port = int_in(p, "Port", 1, 65535)?
        .ok_or_else(|| AwsError::validation("A port must be specified"))?;
    let vpc_id = p
        .get_nonempty("VpcId")
        .ok_or_else(|| AwsError::validation("A VPC ID must be specified"))?
        .to_owned();
    check_len("VpcId", &vpc_id, 1, 255)?;
    let http = matches!(protocol.as_str(), "HTTP" | "HTTPS");
    let hc_protocol = enum_value(p, "HealthCheckProtocol", PROTOCOLS)?
        .unwrap_or_else(|| if http { protocol.clone() } else { "TCP".into() });
    let hc_http = matches!(hc_protocol.as_str(), "HTTP" | "HTTPS");
    let hc_port = match p.get("HealthCheckPort") {
        None => "traffic-port".to_owned(),
        Some("traffic-port") => "traffic-port".to_owned(),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=65535).contains(&n) => n.to_string(),
            _ => {
                return Err(AwsError::validation(format!(
                    "Health check port '{v}' must be 'traffic-port' or a port number between 1 and 65535"
                )));
            }
        },
    };
    let interval =
        int_in(p, "HealthCheckIntervalSeconds", 5, 300)?.unwrap_or(DEFAULT_INTERVAL_SECS);
    let timeout =
        int_in(p, "HealthCheckTimeoutSeconds", 2, 120)?.unwrap_or(if hc_http { 5 } else { 10 });
    if timeout >= interval {
        return Err(AwsError::validation(format!(
            "Health check timeout '{timeout}' must be smaller than the interval '{interval}'"
        )));
    }
    let healthy = int_in(p, "HealthyThresholdCount", 2, 10)?.unwrap_or(DEFAULT_HEALTHY_THRESHOLD);
    let unhealthy =
        int_in(p, "UnhealthyThresholdCount", 2, 10)?.unwrap_or(DEFAULT_UNHEALTHY_THRESHOLD);
    let path = match p.get("HealthCheckPath") {
        Some(v) => {
            check_len("HealthCheckPath", v, 1, 1024)?;
            if !hc_http {
                return Err(AwsError::validation(
                    "Health check path is only supported for HTTP and HTTPS health checks",
                ));
            }
            Some(v.to_owned())
        }
        None => hc_http.then(|| "/".to_owned()),
    };
    let matcher = match p.get("Matcher.HttpCode") {
        Some(v) => Some(v.to_owned()),
        None => hc_http.then(|| "200".to_owned()),
    };
    let health_check = HealthCheck {
        enabled: p.bool("HealthCheckEnabled")?.unwrap_or(true),
        protocol: hc_protocol,
        port: hc_port,
        path,
        interval_secs: interval,
        timeout_secs: timeout,
        healthy_threshold: healthy,
        unhealthy_threshold: unhealthy,
        matcher,
    };
    let protocol_version = if http {
        Some(
            enum_value(p, "ProtocolVersion", &["HTTP1", "HTTP2", "GRPC"])?
                .unwrap_or_else(|| "HTTP1".into()),
        )
    } else {
        None
    };
    let s = st(w, &ctx.region);
    let tg = if let Some(old) = s.target_groups.values().find(|t| t.name == name) {
        // AWS: creating an identical target group again returns the existing one.
        if old.protocol != protocol
            || old.port != port
            || old.vpc_id != vpc_id
            || old.target_type != target_type
            || old.health_check != health_check
        {
            return Err(AwsError::new(
                400,
                "DuplicateTargetGroupName",
                format!(
                    "A target group with the same name '{name}' exists, but with different settings"
                ),
            ));
        }
        old.clone()
    } else {
        let arn = format!(
            "arn:aws:elasticloadbalancing:{}:{ACCOUNT_ID}:targetgroup/{name}/{}",
            ctx.region,
            &crate::ids::hex32()[..16]
        );
        let tg = TargetGroup {
            arn: arn.clone(),
            name,
            attributes: default_attributes(&protocol),
            protocol,
            protocol_version,
            port,
            vpc_id,
            target_type,
            health_check,
            targets: BTreeMap::new(),
            forced_unhealthy: BTreeMap::new(),
        };
        s.target_groups.insert(arn, tg.clone());
        tg
    };
    let mut x = writer(ctx);
    x.start("TargetGroups");
    write_target_group(&mut x, &tg);
    x.end();
    Ok(x.finish(&ctx.request_id))
}

fn write_target_group(x: &mut XmlWriter, tg: &TargetGroup) {
    let hc = &tg.health_check;
    x.start("member");
    x.elem("TargetGroupArn", &tg.arn);
    x.elem("TargetGroupName", &tg.name);
    x.elem("Protocol", &tg.protocol);
    x.elem("Port", tg.port);
    x.elem("VpcId", &tg.vpc_id);
    x.elem("HealthCheckProtocol", &hc.protocol);
    x.elem("HealthCheckPort", &hc.port);
    x.elem("HealthCheckEnabled", hc.enabled);
    x.elem("HealthCheckIntervalSeconds", hc.interval_secs);
    x.elem("HealthCheckTimeoutSeconds", hc.timeout_secs);
    x.elem("HealthyThresholdCount", hc.healthy_threshold);
    x.elem("UnhealthyThresholdCount", hc.unhealthy_threshold);
    x.opt("HealthCheckPath", hc.path.as_deref());
    if let Some(m) = &hc.matcher {
        x.start("Matcher").elem("HttpCode", m).end();
    }
    x.empty("LoadBalancerArns");
    x.elem("TargetType", &tg.target_type);
    x.opt("ProtocolVersion", tg.protocol_version.as_deref());
    x.elem("IpAddressType", "ipv4");
    x.end();
}

fn describe_target_groups(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arns = p.list("TargetGroupArns");
    let names = p.list("Names");
    if p.get_nonempty("LoadBalancerArn").is_some() {
        return Err(AwsError::new(
            400,
            "LoadBalancerNotFound",
            "One or more load balancers not found",
        ));
    }
    if !arns.is_empty() && !names.is_empty() {
        return Err(AwsError::validation(
            "Target group names and target group ARNs cannot be specified at the same time",
        ));
    }
    let page_size = int_in(p, "PageSize", 1, MAX_PAGE_SIZE)?.unwrap_or(MAX_PAGE_SIZE) as usize;
    let s = st(w, &ctx.region);
    let mut found: Vec<TargetGroup> = if !arns.is_empty() {
        let mut v = Vec::new();
        for a in &arns {
            v.push(
                s.target_groups
                    .get(a)
                    .cloned()
                    .ok_or_else(target_group_not_found)?,
            );
        }
        v
    } else if !names.is_empty() {
        let mut v = Vec::new();
        for n in &names {
            v.push(
                s.target_groups
                    .values()
                    .find(|t| &t.name == n)
                    .cloned()
                    .ok_or_else(target_group_not_found)?,
            );
        }
        v
    } else {
        s.target_groups.values().cloned().collect()
    };
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.dedup_by(|a, b| a.arn == b.arn);
    let start = match p.get_nonempty("Marker") {
        None => 0,
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= found.len())
            .ok_or_else(|| AwsError::validation("The marker is not valid"))?,
    };
    let end = start.saturating_add(page_size).min(found.len());
    let mut x = writer(ctx);
    if start == end {
        x.empty("TargetGroups");
    } else {
        x.start("TargetGroups");
        for tg in found.get(start..end).unwrap_or_default() {
            write_target_group(&mut x, tg);
        }
        x.end();
    }
    if end < found.len() {
        x.elem("NextMarker", end);
    }
    Ok(x.finish(&ctx.request_id))
}

fn write_attributes(x: &mut XmlWriter, attrs: &BTreeMap<String, String>) {
    x.start("Attributes");
    for (k, v) in attrs {
        x.start("member").elem("Key", k).elem("Value", v).end();
    }
    x.end();
}

fn modify_attributes(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TargetGroupArn")?.to_owned();
    let changes = p.struct_list("Attributes");
    if changes.is_empty() {
        return Err(AwsError::missing("Attributes"));
    }
    let tg = existing(w, &ctx.region, &arn)?;
    let mut attrs = tg.attributes.clone();
    for c in &changes {
        let key = c.get("Key").unwrap_or_default();
        let value = c.get("Value").unwrap_or_default();
        if !attrs.contains_key(key) {
            return Err(AwsError::validation(format!(
                "Target group attribute key '{key}' is not recognized"
            )));
        }
        let bad = || {
            AwsError::validation(format!(
                "Target group attribute '{key}' has an invalid value '{value}'"
            ))
        };
        match key {
            DEREGISTRATION_DELAY => {
                let n = value.parse::<i64>().map_err(|_| bad())?;
                if !(0..=3600).contains(&n) {
                    return Err(AwsError::validation(format!(
                        "'{DEREGISTRATION_DELAY}' must be between 0 and 3600 seconds, got '{value}'"
                    )));
                }
            }
            k if k.ends_with(".enabled")
                && !k.starts_with("load_balancing.cross_zone")
                && value != "true"
                && value != "false" =>
            {
                return Err(bad());
            }
            k if k.ends_with("_seconds") => {
                value.parse::<u64>().map_err(|_| bad())?;
            }
            _ => {}
        }
        attrs.insert(key.to_owned(), value.to_owned());
    }
    if let Some(tg) = st(w, &ctx.region).target_groups.get_mut(&arn) {
        tg.attributes = attrs.clone();
    }
    let mut x = writer(ctx);
    write_attributes(&mut x, &attrs);
    Ok(x.finish(&ctx.request_id))
}

/// `Targets.member.N.{Id, Port}`, validated.
fn parse_targets(p: &Params, required: bool) -> Result<Vec<(String, Option<i64>)>, AwsError> {
    let items = p.struct_list("Targets");
    if items.is_empty() && required {
        return Err(AwsError::missing("Targets"));
    }
    let mut out = Vec::new();
    for t in items {
        let id = t
            .get_nonempty("Id")
            .ok_or_else(|| AwsError::missing("Targets.member.N.Id"))?
            .to_owned();
        let port = int_in(&t, "Port", 1, 65535)?;
        let valid = id.strip_prefix("i-").is_some_and(|h| {
            (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if !valid {
            return Err(AwsError::validation(format!(
                "Instance ID '{id}' is not valid"
            )));
        }
        out.push((id, port));
    }
    Ok(out)
}

fn register_targets(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TargetGroupArn")?.to_owned();
    let targets = parse_targets(p, true)?;
    let tg = existing(w, &ctx.region, &arn)?;
    let new = targets
        .iter()
        .filter(|(id, port)| {
            !tg.targets
                .contains_key(&(id.clone(), port.unwrap_or(tg.port)))
        })
        .count();
    if tg.targets.len() + new > MAX_TARGETS {
        return Err(AwsError::new(
            400,
            "TooManyTargets",
            format!(
                "You've reached the limit on the number of targets per target group ({MAX_TARGETS})"
            ),
        ));
    }
    // Instances the sandbox knows to be gone cannot be registered, as in AWS.
    let asg = &w.region(&ctx.region).autoscaling;
    let gone: Vec<String> = targets
        .iter()
        .filter(|(id, _)| {
            asg.instances
                .get(id)
                .is_some_and(|i| i.state == lifehook_model::LifecycleState::Terminated)
        })
        .map(|(id, _)| format!("'{id}'"))
        .collect();
    if !gone.is_empty() {
        return Err(AwsError::new(
            400,
            "InvalidTarget",
            format!(
                "The following targets are not in a running state and cannot be registered: {}",
                gone.join(", ")
            ),
        ));
    }
    for (id, port) in targets {
        register(w, &ctx.region, &arn, &id, port);
    }
    Ok(XmlWriter::empty_result(&ctx.op, ns(), &ctx.request_id))
}

fn deregister_targets(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TargetGroupArn")?.to_owned();
    let targets = parse_targets(p, true)?;
    existing(w, &ctx.region, &arn)?;
    for (id, port) in targets {
        deregister(w, &ctx.region, &arn, &id, port);
    }
    Ok(XmlWriter::empty_result(&ctx.op, ns(), &ctx.request_id))
}

fn describe_target_health(w: &mut World, ctx: &RequestCtx, p: &Params) -> R {
    let arn = p.required("TargetGroupArn")?.to_owned();
    let wanted = parse_targets(p, false)?;
    let tg = existing(w, &ctx.region, &arn)?;
    let mut rows: Vec<(String, i64, Option<&Target>)> = Vec::new();
    if wanted.is_empty() {
        for ((id, port), t) in &tg.targets {
            rows.push((id.clone(), *port, Some(t)));
        }
    } else {
        for (id, port) in &wanted {
            match port {
                Some(port) => rows.push((id.clone(), *port, tg.targets.get(&(id.clone(), *port)))),
                None => {
                    let registered: Vec<_> = tg
                        .targets
                        .iter()
                        .filter(|((i, _), _)| i == id)
                        .map(|((i, p), t)| (i.clone(), *p, Some(t)))
                        .collect();
                    if registered.is_empty() {
                        rows.push((id.clone(), tg.port, None));
                    } else {
                        rows.extend(registered);
                    }
                }
            }
        }
    }
    let mut x = writer(ctx);
    if rows.is_empty() {
        x.empty("TargetHealthDescriptions");
    } else {
        x.start("TargetHealthDescriptions");
        for (id, port, t) in rows {
            x.start("member");
            x.start("Target").elem("Id", &id).elem("Port", port).end();
            let hc_port = if tg.health_check.port == "traffic-port" {
                port.to_string()
            } else {
                tg.health_check.port.clone()
            };
            x.elem("HealthCheckPort", hc_port);
            x.start("TargetHealth");
            match t {
                Some(t) => {
                    x.elem("State", t.health.as_str());
                    x.opt("Reason", t.reason.as_deref());
                    x.opt("Description", t.description.as_deref());
                }
                None => {
                    x.elem("State", "unused");
                    x.elem("Reason", "Target.NotRegistered");
                    x.elem(
                        "Description",
                        "Target is not registered to the target group",
                    );
                }
            }
            x.end();
            x.end();
        }
        x.end();
    }
    Ok(x.finish(&ctx.request_id))
}
