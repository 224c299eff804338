use super::ops::run;
use super::*;
use crate::Sandbox;
use crate::clock::ClockMode;
use crate::protocol::Wire;

fn call(w: &mut World, op: &str, body: Value) -> Result<Value, AwsError> {
    let ctx = RequestCtx {
        request_id: "r".into(),
        region: "us-east-1".into(),
        host: "h".into(),
        path: "/".into(),
        service: Service::Events,
        wire: Wire::Json { version: "1.1" },
        op: op.into(),
    };
    let Value::Object(m) = body else { panic!() };
    run(w, &ctx, &JsonBody(m))
}

#[test]
fn rules_route_matching_events_only() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    sqs::create_test_queue(&mut w, "us-east-1", "q");
    let pat = r#"{"source":["aws.autoscaling"],"detail":{"AutoScalingGroupName":["web"]}}"#;
    call(
        &mut w,
        "PutRule",
        json!({"Name": "r1", "EventPattern": pat}),
    )
    .unwrap();
    assert_eq!(
        call(
            &mut w,
            "PutRule",
            json!({"Name": "bad", "EventPattern": "{\"source\":\"x\"}"})
        )
        .unwrap_err()
        .code,
        "InvalidEventPatternException"
    );
    assert!(
        call(
            &mut w,
            "PutRule",
            json!({"Name": "s", "ScheduleExpression": "rate(1 minute)"})
        )
        .is_err()
    );
    let r = call(&mut w, "PutTargets", json!({"Rule": "r1", "Targets": [{"Id": "t", "Arn": "arn:aws:sqs:us-east-1:000000000000:q"}]})).unwrap();
    assert_eq!(r["FailedEntryCount"], 0);
    let ev = |g: &str| json!({"Source": "aws.autoscaling", "DetailType": "x", "Detail": json!({"AutoScalingGroupName": g}).to_string()});
    let r = call(
        &mut w,
        "PutEvents",
        json!({"Entries": [ev("web"), ev("other")]}),
    )
    .unwrap();
    assert_eq!(r["FailedEntryCount"], 0);
    assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "q"), Some(1));
    call(&mut w, "DisableRule", json!({"Name": "r1"})).unwrap();
    call(&mut w, "PutEvents", json!({"Entries": [ev("web")]})).unwrap();
    assert_eq!(sqs::queue_depth(&mut w, "us-east-1", "q"), Some(1));
    assert!(call(&mut w, "DeleteRule", json!({"Name": "r1"})).is_err());
    call(&mut w, "RemoveTargets", json!({"Rule": "r1", "Ids": ["t"]})).unwrap();
    call(&mut w, "DeleteRule", json!({"Name": "r1"})).unwrap();
    assert_eq!(
        call(&mut w, "DescribeRule", json!({"Name": "r1"}))
            .unwrap_err()
            .code,
        "ResourceNotFoundException"
    );
}

fn bodies(w: &mut World, queue: &str) -> Vec<String> {
    sqs::receive_for_lambda(w, "us-east-1", queue, 10)
        .unwrap()
        .iter()
        .map(|r| r["body"].as_str().unwrap().to_owned())
        .collect()
}

const Q: &str = "arn:aws:sqs:us-east-1:000000000000:q";

/// The queue `q` and the rule `r` (default bus) for events of source `app`.
fn queue_and_app_rule(w: &mut World) {
    sqs::create_test_queue(w, "us-east-1", "q");
    call(
        w,
        "PutRule",
        json!({"Name": "r", "EventPattern": r#"{"source":["app"]}"#}),
    )
    .unwrap();
}

fn entry(bus: Option<&str>, detail: Value) -> Value {
    let mut e = json!({"Source": "app", "DetailType": "t", "Detail": detail.to_string()});
    if let Some(b) = bus {
        e["EventBusName"] = json!(b);
    }
    e
}

#[test]
fn custom_buses_are_created_described_listed_and_deleted() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    let r = call(
        &mut w,
        "CreateEventBus",
        json!({"Name": "orders", "Description": "d"}),
    )
    .unwrap();
    assert_eq!(
        r,
        json!({"EventBusArn": "arn:aws:events:us-east-1:000000000000:event-bus/orders", "Description": "d"})
    );
    let e = call(&mut w, "CreateEventBus", json!({"Name": "orders"})).unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        (
            "ResourceAlreadyExistsException",
            "Event bus orders already exists."
        )
    );
    let d = call(
        &mut w,
        "DescribeEventBus",
        json!({"Name": "arn:aws:events:us-east-1:000000000000:event-bus/orders"}),
    )
    .unwrap();
    assert_eq!(d["Name"], "orders");
    assert_eq!(d["Description"], "d");
    assert!(d["CreationTime"].is_number() && d["LastModifiedTime"].is_number());
    assert_eq!(
        call(&mut w, "DescribeEventBus", json!({})).unwrap()["Name"],
        "default"
    );
    let l = call(&mut w, "ListEventBuses", json!({})).unwrap();
    let names: Vec<&str> = l["EventBuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "orders"]);
    let l = call(&mut w, "ListEventBuses", json!({"NamePrefix": "ord"})).unwrap();
    assert_eq!(l["EventBuses"].as_array().unwrap().len(), 1);
    let e = call(&mut w, "DeleteEventBus", json!({"Name": "default"})).unwrap_err();
    assert_eq!(e.message, "Cannot delete event bus default.");
    call(&mut w, "DeleteEventBus", json!({"Name": "orders"})).unwrap();
    // Deleting a bus that does not exist succeeds; describing it does not.
    call(&mut w, "DeleteEventBus", json!({"Name": "orders"})).unwrap();
    let e = call(&mut w, "DescribeEventBus", json!({"Name": "orders"})).unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        (
            "ResourceNotFoundException",
            "Event bus orders does not exist."
        )
    );
}

#[test]
fn rules_on_a_custom_bus_see_only_that_bus() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    sqs::create_test_queue(&mut w, "us-east-1", "q");
    call(&mut w, "CreateEventBus", json!({"Name": "orders"})).unwrap();
    let r = call(
        &mut w,
        "PutRule",
        json!({"Name": "r", "EventBusName": "orders", "EventPattern": r#"{"source":["app"]}"#}),
    )
    .unwrap();
    assert_eq!(
        r["RuleArn"],
        "arn:aws:events:us-east-1:000000000000:rule/orders/r"
    );
    let e = call(&mut w, "DescribeRule", json!({"Name": "r"})).unwrap_err();
    assert_eq!(e.message, "Rule r does not exist on EventBus default.");
    let d = call(
        &mut w,
        "DescribeRule",
        json!({"Name": "r", "EventBusName": "arn:aws:events:us-east-1:000000000000:event-bus/orders"}),
    )
    .unwrap();
    assert_eq!(d["EventBusName"], "orders");
    call(
        &mut w,
        "PutTargets",
        json!({"Rule": "r", "EventBusName": "orders", "Targets": [{"Id": "t", "Arn": Q}]}),
    )
    .unwrap();
    let r = call(
        &mut w,
        "PutEvents",
        json!({"Entries": [entry(None, json!({"n": 1})), entry(Some("orders"), json!({"n": 2})), entry(Some("nope"), json!({"n": 3}))]}),
    )
    .unwrap();
    // An entry for a bus that does not exist is accepted (and dropped), as on AWS.
    assert_eq!(r["FailedEntryCount"], 0);
    let got = bodies(&mut w, "q");
    assert_eq!(got.len(), 1);
    let ev: Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(ev["detail"], json!({"n": 2}));
    let names = call(
        &mut w,
        "ListRuleNamesByTarget",
        json!({"TargetArn": Q, "EventBusName": "orders"}),
    )
    .unwrap();
    assert_eq!(names["RuleNames"], json!(["r"]));
    let names = call(&mut w, "ListRuleNamesByTarget", json!({"TargetArn": Q})).unwrap();
    assert_eq!(names["RuleNames"], json!([]));
}

#[test]
fn lists_page_with_opaque_tokens() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    for i in 0..5 {
        call(
            &mut w,
            "PutRule",
            json!({"Name": format!("r-{i}"), "EventPattern": r#"{"source":["app"]}"#}),
        )
        .unwrap();
        call(
            &mut w,
            "PutTargets",
            json!({"Rule": format!("r-{i}"), "Targets": [{"Id": "t", "Arn": Q}]}),
        )
        .unwrap();
    }
    let p1 = call(&mut w, "ListRules", json!({"Limit": 3})).unwrap();
    assert_eq!(p1["Rules"].as_array().unwrap().len(), 3);
    let token = p1["NextToken"].as_str().unwrap().to_owned();
    // Clients (and snapshot tools) may look for the token's text in names: a bare "3"
    // would be found in "r-3".
    assert!(
        !p1.to_string()
            .replace(&format!("\"{token}\""), "")
            .contains(&token)
    );
    assert!(token.parse::<usize>().is_err(), "{token}");
    let p2 = call(&mut w, "ListRules", json!({"Limit": 3, "NextToken": token})).unwrap();
    assert_eq!(p2["Rules"][0]["Name"], "r-3");
    assert!(p2.get("NextToken").is_none());
    let n1 = call(
        &mut w,
        "ListRuleNamesByTarget",
        json!({"TargetArn": Q, "Limit": 2}),
    )
    .unwrap();
    assert_eq!(n1["RuleNames"], json!(["r-0", "r-1"]));
    let n2 = call(
        &mut w,
        "ListRuleNamesByTarget",
        json!({"TargetArn": Q, "Limit": 2, "NextToken": n1["NextToken"]}),
    )
    .unwrap();
    assert_eq!(n2["RuleNames"], json!(["r-2", "r-3"]));
    let e = call(&mut w, "ListRules", json!({"NextToken": "3"})).unwrap_err();
    assert_eq!(e.code, "ValidationException");
}

#[test]
fn targets_keep_their_order_limit_and_id_rules() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    call(
        &mut w,
        "PutRule",
        json!({"Name": "r", "EventPattern": r#"{"source":["app"]}"#}),
    )
    .unwrap();
    let targets: Vec<Value> = ["z", "a", "m", "b", "c"]
        .iter()
        .map(|id| json!({"Id": id, "Arn": Q}))
        .collect();
    call(
        &mut w,
        "PutTargets",
        json!({"Rule": "r", "Targets": targets}),
    )
    .unwrap();
    let l = call(
        &mut w,
        "ListTargetsByRule",
        json!({"Rule": "r", "Limit": 3}),
    )
    .unwrap();
    let ids: Vec<&str> = l["Targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["Id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["z", "a", "m"]);
    assert!(l["NextToken"].is_string());
    let e = call(
        &mut w,
        "PutTargets",
        json!({"Rule": "r", "Targets": [{"Id": "six", "Arn": Q}]}),
    )
    .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        (
            "LimitExceededException",
            "The requested resource exceeds the maximum number allowed."
        )
    );
    let e = call(
        &mut w,
        "PutTargets",
        json!({"Rule": "r", "Targets": [{"Id": "!@#", "Arn": Q}]}),
    )
    .unwrap_err();
    assert!(
        e.message.contains("at 'targets.1.member.id'"),
        "{}",
        e.message
    );
    let long = "x".repeat(65);
    let e = call(
        &mut w,
        "PutTargets",
        json!({"Rule": "r", "Targets": [{"Id": long, "Arn": Q}]}),
    )
    .unwrap_err();
    assert!(
        e.message
            .ends_with("Member must have length less than or equal to 64"),
        "{}",
        e.message
    );
}

#[test]
fn input_path_and_input_transformer_shape_what_a_target_receives() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    queue_and_app_rule(&mut w);
    let transformer = json!({
        "InputPathsMap": {"id": "$.detail.id", "tags": "$.detail.tags", "first": "$.detail.tags[0]", "none": "$.detail.nope"},
        "InputTemplate": r#"{"text": "order <id> (<first>) on <aws.events.rule-name>", "tags": <tags>, "id": <id>, "none": <none>}"#
    });
    call(
        &mut w,
        "PutTargets",
        json!({"Rule": "r", "Targets": [
            {"Id": "json", "Arn": Q, "InputTransformer": transformer},
            {"Id": "text", "Arn": Q, "InputTransformer": {"InputPathsMap": {"id": "$.detail.id"}, "InputTemplate": "order <id> is ready"}},
            {"Id": "path", "Arn": Q, "InputPath": "$.detail.tags"},
            {"Id": "const", "Arn": Q, "Input": "{\"fixed\":true}"}
        ]}),
    )
    .unwrap();
    let l = call(&mut w, "ListTargetsByRule", json!({"Rule": "r"})).unwrap();
    assert_eq!(l["Targets"][0]["InputTransformer"], transformer);
    call(
        &mut w,
        "PutEvents",
        json!({"Entries": [entry(None, json!({"id": "o-1", "tags": ["x", "y"]}))]}),
    )
    .unwrap();
    let got = bodies(&mut w, "q");
    assert_eq!(got.len(), 4);
    let first: Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(
        first,
        json!({"text": "order o-1 (x) on r", "tags": ["x", "y"], "id": "o-1", "none": ""})
    );
    assert_eq!(got[1], "order o-1 is ready");
    assert_eq!(got[2], r#"["x","y"]"#);
    assert_eq!(got[3], r#"{"fixed":true}"#);
    let e = call(
        &mut w,
        "PutTargets",
        json!({"Rule": "r", "Targets": [{"Id": "t", "Arn": Q, "InputTransformer": {"InputTemplate": "\"<nope> here\""}}]}),
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "InputTemplate for target t contains invalid placeholder nope."
    );
    let e = call(
        &mut w,
        "PutTargets",
        json!({"Rule": "r", "Targets": [{"Id": "two", "Arn": Q, "Input": "{}", "InputTransformer": {"InputTemplate": "x"}}]}),
    )
    .unwrap_err();
    assert!(
        e.message
            .contains("Only one of Input, InputPath, or InputTransformer")
    );
}

#[test]
fn patterns_aws_accepts_are_accepted_and_errors_carry_the_reason() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    let pat = r#"{"detail":{"$or":[{"n":[{"numeric":[">",1]}]},{"ip":[{"cidr":"10.0.0.0/8"}]}],"f":[{"anything-but":{"prefix":["a","b"]}}]}}"#;
    call(&mut w, "PutRule", json!({"Name": "r", "EventPattern": pat})).unwrap();
    let e = call(
        &mut w,
        "PutRule",
        json!({"Name": "bad", "EventPattern": r#"{"a":[{"numeric":[">",0,">",0]}]}"#}),
    )
    .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        (
            "InvalidEventPatternException",
            "Event pattern is not valid. Reason: Bad numeric range operator: >\n at [Source: (String)\"{\"a\":[{\"numeric\":[\">\",0,\">\",0]}]}\"; line: 1, column: 28]"
        )
    );
    let ev = json!({"id": "1", "account": "1", "source": "s", "time": "t", "region": "r", "detail-type": "d", "detail": {"ip": "10.1.2.3", "f": "c"}}).to_string();
    let r = call(
        &mut w,
        "TestEventPattern",
        json!({"EventPattern": pat, "Event": ev}),
    )
    .unwrap();
    assert_eq!(r["Result"], true);
    let e = call(
        &mut w,
        "TestEventPattern",
        json!({"EventPattern": pat, "Event": r#"{"testEvent":"value"}"#}),
    )
    .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        ("ValidationException", "Parameter Event is not valid.")
    );
    let e = call(
        &mut w,
        "TestEventPattern",
        json!({"EventPattern": pat, "Event": "[\"x\"]"}),
    )
    .unwrap_err();
    assert_eq!(e.message, "Parameter Event is not valid.");
}

#[test]
fn put_events_refuses_a_request_over_256_kib() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    let big = json!({"payload": ["p".repeat(256 * 1024 - 17)]});
    let e = call(&mut w, "PutEvents", json!({"Entries": [entry(None, big)]})).unwrap_err();
    assert_eq!(
        e.message,
        "Total size of the entries in the request is over the limit."
    );
}

#[test]
fn permissions_are_stored_on_the_bus_policy() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    call(
        &mut w,
        "PutPermission",
        json!({"Action": "events:PutEvents", "Principal": "111122223333", "StatementId": "s1"}),
    )
    .unwrap();
    let d = call(&mut w, "DescribeEventBus", json!({})).unwrap();
    let policy: Value = serde_json::from_str(d["Policy"].as_str().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Sid"], "s1");
    assert_eq!(
        policy["Statement"][0]["Principal"],
        json!({"AWS": "arn:aws:iam::111122223333:root"})
    );
    let e = call(&mut w, "RemovePermission", json!({"StatementId": "nope"})).unwrap_err();
    assert_eq!(e.message, "Statement with the provided id does not exist.");
    call(&mut w, "RemovePermission", json!({"StatementId": "s1"})).unwrap();
    assert!(
        call(&mut w, "DescribeEventBus", json!({}))
            .unwrap()
            .get("Policy")
            .is_none()
    );
}

#[test]
fn put_events_over_ten_entries_lists_them_as_aws_does() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    let entries: Vec<Value> = (0..11)
        .map(|_| entry(Some("b"), json!({"k": "v"})))
        .collect();
    let e = call(&mut w, "PutEvents", json!({"Entries": entries})).unwrap_err();
    let one = r#"PutEventsRequestEntry(time=null, source=app, resources=null, detailType=t, detail={"k":"v"}, eventBusName=b, traceHeader=null, kmsKeyIdentifier=null, internalMetadata=null)"#;
    assert_eq!(
        e.message,
        format!(
            "1 validation error detected: Value '[{}]' at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10",
            [one; 11].join(", ")
        )
    );
}

/// What AWS answers for values inside quotes: a string template gets objects and arrays
/// without their quotes; an object template with one inside quotes delivers nothing.
#[test]
fn input_transformer_values_inside_quotes() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    queue_and_app_rule(&mut w);
    let paths = json!({"p": "$.detail.p", "l": "$.detail.l"});
    call(
        &mut w,
        "PutTargets",
        json!({"Rule": "r", "Targets": [
            {"Id": "str", "Arn": Q, "InputTransformer": {"InputPathsMap": paths, "InputTemplate": "\"Payload <p> in <l>\""}},
            {"Id": "obj", "Arn": Q, "InputTransformer": {"InputPathsMap": paths, "InputTemplate": "{\"p\": \"<p>\"}"}},
            {"Id": "ev", "Arn": Q, "InputTransformer": {"InputTemplate": "{\"e\": <aws.events.event>}"}}
        ]}),
    )
    .unwrap();
    call(
        &mut w,
        "PutEvents",
        json!({"Entries": [entry(None, json!({"p": {"a": "b"}, "l": ["HIGH"]}))]}),
    )
    .unwrap();
    let got = bodies(&mut w, "q");
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], r#""Payload {a:b} in [HIGH]""#);
    let ev: Value = serde_json::from_str(&got[1]).unwrap();
    assert_eq!(ev["e"]["detailType"], "t");
    assert!(ev["e"].get("detail").is_none());
}

#[test]
fn buses_and_rules_carry_tags_until_deleted() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    let tags = json!([{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}]);
    let bus =
        call(&mut w, "CreateEventBus", json!({"Name": "o", "Tags": tags})).unwrap()["EventBusArn"]
            .clone();
    let list =
        |w: &mut World, arn: &Value| call(w, "ListTagsForResource", json!({"ResourceARN": arn}));
    assert_eq!(
        list(&mut w, &bus).unwrap()["Tags"],
        json!([{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    );
    let rule = call(
        &mut w,
        "PutRule",
        json!({"Name": "r", "EventBusName": "o", "EventPattern": r#"{"source":["app"]}"#}),
    )
    .unwrap()["RuleArn"]
        .clone();
    call(
        &mut w,
        "TagResource",
        json!({"ResourceARN": rule, "Tags": [{"Key": "k", "Value": "v"}]}),
    )
    .unwrap();
    assert_eq!(
        list(&mut w, &rule).unwrap()["Tags"],
        json!([{"Key": "k", "Value": "v"}])
    );
    call(
        &mut w,
        "UntagResource",
        json!({"ResourceARN": rule, "TagKeys": ["k", "nope"]}),
    )
    .unwrap();
    assert_eq!(list(&mut w, &rule).unwrap()["Tags"], json!([]));
    call(
        &mut w,
        "DeleteRule",
        json!({"Name": "r", "EventBusName": "o"}),
    )
    .unwrap();
    assert_eq!(
        list(&mut w, &rule).unwrap_err().message,
        "Rule r does not exist on EventBus o."
    );
    call(&mut w, "DeleteEventBus", json!({"Name": "o"})).unwrap();
    assert_eq!(
        list(&mut w, &bus).unwrap_err().message,
        "Event bus o does not exist."
    );
    let default = json!("arn:aws:events:us-east-1:000000000000:event-bus/default");
    call(
        &mut w,
        "TagResource",
        json!({"ResourceARN": default, "Tags": [{"Key": "k", "Value": "v"}]}),
    )
    .unwrap();
    assert_eq!(
        list(&mut w, &default).unwrap()["Tags"],
        json!([{"Key": "k", "Value": "v"}])
    );
}

/// The whole message, parser position included, as AWS answered these patterns (recorded
/// by LocalStack's AWS-validated tests, `MessageRaw`).
#[test]
fn invalid_pattern_messages_carry_aws_parser_position() {
    let sb = Sandbox::new(ClockMode::Manual, Default::default());
    let mut w = sb.lock();
    let ev = json!({"id": "1", "account": "1", "source": "s", "time": "t", "region": "r", "detail-type": "d"}).to_string();
    for (pattern, want) in [
        (
            "{\"int\": 42}",
            "Event pattern is not valid. Reason: \"int\" must be an object or an array\n at [Source: (String)\"{\"int\": 42}\"; line: 1, column: 11]",
        ),
        (
            "{\"string\": \"my-value\"}",
            "Event pattern is not valid. Reason: \"string\" must be an object or an array\n at [Source: (String)\"{\"string\": \"my-value\"}\"; line: 1, column: 13]",
        ),
        (
            "{\"my_key\": [{\"EXISTS\": true}]}",
            "Event pattern is not valid. Reason: Unrecognized match type EXISTS\n at [Source: (String)\"{\"my_key\": [{\"EXISTS\": true}]}\"; line: 1, column: 28]",
        ),
        (
            "{\"detail\": {\"c-count\": [{\"numeric\": [\">\", 0, \">\", 0]}]}}",
            "Event pattern is not valid. Reason: Bad numeric range operator: >\n at [Source: (String)\"{\"detail\": {\"c-count\": [{\"numeric\": [\">\", 0, \">\", 0]}]}}\"; line: 1, column: 49]",
        ),
        (
            "{\"detail\": {\"c-count\": [{\"numeric\": [\">\", 0, \"<\"]}]}}",
            "Event pattern is not valid. Reason: Value of < must be numeric\n at [Source: (String)\"{\"detail\": {\"c-count\": [{\"numeric\": [\">\", 0, \"<\"]}]}}\"; line: 1, column: 50]",
        ),
        (
            "{\"time\": [{\"prefix\": [\"2022-07-13\"]}]}",
            "Event pattern is not valid. Reason: prefix match pattern must be a string\n at [Source: (String)\"{\"time\": [{\"prefix\": [\"2022-07-13\"]}]}\"; line: 1, column: 23]",
        ),
        (
            "{\"detail\": {\"state\": [{\"anything-but\": [\"stopped\", null]}]}}",
            "Event pattern is not valid. Reason: Inside anything but list, start|null|boolean is not supported.\n at [Source: (String)\"{\"detail\": {\"state\": [{\"anything-but\": [\"stopped\", null]}]}}\"; line: 1, column: 56]\n at [Source: (String)\"{\"detail\": {\"state\": [{\"anything-but\": [\"stopped\", null]}]}}\"; line: 1, column: 56]",
        ),
        (
            "{\"detail\": {\"FileName\": [{\"anything-but\": {\"prefix\": \"\"}}]}}",
            "Event pattern is not valid. Reason: Null prefix/suffix not allowed\n at [Source: (String)\"{\"detail\": {\"FileName\": [{\"anything-but\": {\"prefix\": \"\"}}]}}\"; line: 1, column: 56]",
        ),
        (
            "{\"detail\": {\"FileName\": [{\"anything-but\": {\"suffix\": [123, \".txt\"]}}]}}",
            "Event pattern is not valid. Reason: prefix/suffix match pattern must be a string\n at [Source: (String)\"{\"detail\": {\"FileName\": [{\"anything-but\": {\"suffix\": [123, \".txt\"]}}]}}\"; line: 1, column: 58]\n at [Source: (String)\"{\"detail\": {\"FileName\": [{\"anything-but\": {\"suffix\": [123, \".txt\"]}}]}}\"; line: 1, column: 58]",
        ),
        (
            "{\"detail\": {\"sourceIPAddress\": [{\"cidr\": \"xx.11.xx/8\"}]}}",
            "Event pattern is not valid. Reason: Nonstandard IP address: xx.11.xx",
        ),
        (
            "{\"resources\": []}",
            "Event pattern is not valid. Reason: Empty arrays are not allowed\n at [Source: (String)\"{\"resources\": []}\"; line: 1, column: 17]",
        ),
    ] {
        let e = call(
            &mut w,
            "TestEventPattern",
            json!({"EventPattern": pattern, "Event": ev}),
        )
        .unwrap_err();
        assert_eq!(e.message, want, "{pattern}");
    }
}
