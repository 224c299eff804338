use super::*;
use proptest::prelude::*;
use serde_json::json;

fn compile(p: &Value) -> Result<Pattern, PatternError> {
    parse(&p.to_string())
}

fn event() -> Value {
    json!({
        "version": "0",
        "id": "e1",
        "detail-type": "EC2 Instance-terminate Lifecycle Action",
        "source": "aws.autoscaling",
        "account": "000000000000",
        "region": "us-east-1",
        "resources": ["arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x:autoScalingGroupName/web"],
        "detail": {
            "AutoScalingGroupName": "web-asg",
            "EC2InstanceId": "i-0123",
            "count": 7,
            "ratio": 301.8,
            "flag": true,
            "gone": null,
            "nested": {"deep": "yes"},
            "tags": ["a", "b"],
            "items": [{"id": "x", "n": 1}, {"id": "y", "n": 2}],
            "empty": [],
            "ip": "10.0.0.255",
            "ip6": "2001:0db8:1234:1a00:0000:0000:0000:0000",
            "path": "dir/init/file",
            "star": "a*b"
        }
    })
}

fn m(p: Value) -> bool {
    m_on(p, &event())
}

fn m_on(p: Value, e: &Value) -> bool {
    compile(&p)
        .unwrap_or_else(|e| panic!("invalid pattern {p}: {e}"))
        .matches(e)
}

fn err(p: Value) -> String {
    match compile(&p) {
        Ok(_) => panic!("{p} should be invalid"),
        Err(e) => e.reason,
    }
}

#[test]
fn exact_values_and_or_arrays() {
    assert!(m(json!({"source": ["aws.autoscaling"]})));
    assert!(m(json!({"source": ["aws.ec2", "aws.autoscaling"]})));
    assert!(!m(json!({"source": ["aws.ec2"]})));
    assert!(m(
        json!({"detail-type": ["EC2 Instance-terminate Lifecycle Action"], "detail": {"AutoScalingGroupName": ["web-asg"]}})
    ));
    assert!(!m(json!({"detail": {"AutoScalingGroupName": ["other"]}})));
    assert!(m(json!({"detail": {"count": [7]}})));
    assert!(m(json!({"detail": {"count": [7.0]}})));
    assert!(m(json!({"detail": {"flag": [true]}})));
    assert!(m(json!({"detail": {"gone": [null]}})));
    assert!(m(json!({"detail": {"nested": {"deep": ["yes"]}}})));
    assert!(!m(json!({"detail": {"nested": {"deep": ["no"]}}})));
    assert!(m(json!({"detail": {"tags": ["b"]}})));
    assert!(m(json!({"resources": [{"suffix": "/web"}]})));
    assert!(!m(json!({"detail": {"missing": ["x"]}})));
    // An object is not a value.
    assert!(!m(json!({"detail": {"nested": ["yes"]}})));
}

#[test]
fn dotted_keys_are_nested_fields_in_pattern_and_event() {
    assert!(m(json!({"detail": {"nested.deep": ["yes"]}})));
    assert!(m(json!({"detail.nested.deep": ["yes"]})));
    let e = json!({"detail": {"state.status": "running"}});
    assert!(m_on(
        json!({"detail": {"state": {"status": ["running"]}}}),
        &e
    ));
    assert!(!m_on(
        json!({"detail": {"state": {"status": ["stopped"]}}}),
        &e
    ));
}

#[test]
fn sub_patterns_below_arrays_hold_within_one_element() {
    assert!(m(json!({"detail": {"items": {"id": ["x"], "n": [1]}}})));
    assert!(!m(json!({"detail": {"items": {"id": ["x"], "n": [2]}}})));
    assert!(m(json!({"detail": {"items": {"id": [{"exists": true}]}}})));
}

#[test]
fn or_groups() {
    let p = json!({"detail": {"$or": [{"count": [{"numeric": [">", 10]}]}, {"ratio": [{"numeric": ["=", 301.8]}]}]}});
    assert!(m(p));
    let p = json!({"detail": {"$or": [{"count": [1]}, {"flag": [false]}]}});
    assert!(!m(p));
    let p =
        json!({"$or": [{"source": ["x"]}, {"detail": {"$or": [{"count": [7]}, {"count": [8]}]}}]});
    assert!(m(p));
    assert_eq!(
        err(json!({"$or": [{"source": ["x"]}]})),
        "There must have at least 2 Objects in $or relationship."
    );
    assert_eq!(
        err(json!({"$or": {"source": ["x"]}})),
        "It must be an Array followed with $or."
    );
}

#[test]
fn string_operators() {
    assert!(m(json!({"source": [{"prefix": "aws."}]})));
    assert!(!m(json!({"source": [{"prefix": "custom."}]})));
    assert!(m(
        json!({"detail": {"AutoScalingGroupName": [{"suffix": "-asg"}]}})
    ));
    assert!(m(
        json!({"detail": {"AutoScalingGroupName": [{"equals-ignore-case": "WEB-ASG"}]}})
    ));
    assert!(m(
        json!({"source": [{"prefix": {"equals-ignore-case": "AWS."}}]})
    ));
    assert!(m(
        json!({"detail": {"AutoScalingGroupName": [{"suffix": {"equals-ignore-case": "-ASG"}}]}})
    ));
    assert!(!m(json!({"detail": {"count": [{"prefix": "7"}]}})));
}

#[test]
fn wildcards_with_escapes() {
    assert!(m(
        json!({"detail": {"AutoScalingGroupName": [{"wildcard": "web*"}]}})
    ));
    assert!(!m(
        json!({"detail": {"AutoScalingGroupName": [{"wildcard": "*x*"}]}})
    ));
    assert!(m(json!({"detail": {"star": [{"wildcard": "a\\*b"}]}})));
    assert!(!m(json!({"detail": {"path": [{"wildcard": "dir\\*"}]}})));
    assert!(m(json!({"detail": {"path": [{"wildcard": "dir/*/file"}]}})));
    assert_eq!(
        err(json!({"a": [{"wildcard": "arn:aws:events:us-east-1:**:event-bus/*"}]})),
        "Consecutive wildcard characters at pos 26"
    );
    assert_eq!(
        err(json!({"a": [{"wildcard": "a\\b"}]})),
        "Invalid escape character at pos 2"
    );
    assert!(
        err(json!({"a": [{"wildcard": "*:*:*:*:*:event-bus/*"}]}))
            .starts_with("Rule is too complex")
    );
}

#[test]
fn anything_but_in_all_its_forms() {
    assert!(m(json!({"source": [{"anything-but": "aws.ec2"}]})));
    assert!(!m(json!({"source": [{"anything-but": "aws.autoscaling"}]})));
    assert!(!m(
        json!({"source": [{"anything-but": ["aws.ec2", "aws.autoscaling"]}]})
    ));
    assert!(m(json!({"detail": {"count": [{"anything-but": [1, 2]}]}})));
    assert!(!m(json!({"detail": {"count": [{"anything-but": 7}]}})));
    assert!(!m(
        json!({"source": [{"anything-but": {"prefix": "aws."}}]})
    ));
    assert!(m(json!({"source": [{"anything-but": {"suffix": ".ec2"}}]})));
    assert!(!m(
        json!({"detail": {"path": [{"anything-but": {"prefix": ["x", "dir"]}}]}})
    ));
    assert!(!m(
        json!({"detail": {"path": [{"anything-but": {"suffix": ["/file"]}}]}})
    ));
    assert!(!m(
        json!({"source": [{"anything-but": {"equals-ignore-case": ["AWS.AUTOSCALING"]}}]})
    ));
    assert!(!m(
        json!({"detail": {"path": [{"anything-but": {"wildcard": "*/init/*"}}]}})
    ));
    assert!(m(
        json!({"detail": {"path": [{"anything-but": {"wildcard": ["*/x/*", "*/y/*"]}}]}})
    ));
    // Values of another type, null included, are "anything but" strings...
    assert!(m(
        json!({"detail": {"count": [{"anything-but": {"prefix": "7"}}]}})
    ));
    assert!(m(
        json!({"detail": {"gone": [{"anything-but": {"suffix": "x"}}]}})
    ));
    assert!(m(json!({"detail": {"gone": [{"anything-but": ["x"]}]}})));
    // ...but a missing field is nothing at all.
    assert!(!m(json!({"detail": {"missing": [{"anything-but": "x"}]}})));
}

#[test]
fn exists() {
    assert!(m(json!({"detail": {"EC2InstanceId": [{"exists": true}]}})));
    assert!(!m(
        json!({"detail": {"EC2InstanceId": [{"exists": false}]}})
    ));
    assert!(m(json!({"detail": {"nope": [{"exists": false}]}})));
    assert!(!m(json!({"detail": {"nope": [{"exists": true}]}})));
    assert!(m(json!({"detail": {"gone": [{"exists": true}]}})));
    // An empty array and an object hold no value.
    assert!(!m(json!({"detail": {"empty": [{"exists": true}]}})));
    assert!(!m(json!({"detail": {"nested": [{"exists": true}]}})));
}

#[test]
fn numeric() {
    assert!(m(json!({"detail": {"count": [{"numeric": [">", 5]}]}})));
    assert!(m(
        json!({"detail": {"count": [{"numeric": [">=", 7, "<", 8]}]}})
    ));
    assert!(!m(json!({"detail": {"count": [{"numeric": [">", 7]}]}})));
    assert!(m(json!({"detail": {"count": [{"numeric": ["=", 7]}]}})));
    assert!(m(json!({"detail": {"count": [{"numeric": ["<=", 7]}]}})));
    assert!(m(json!({"detail": {"ratio": [{"numeric": ["=", 301.8]}]}})));
    assert!(!m(
        json!({"detail": {"AutoScalingGroupName": [{"numeric": [">", 0]}]}})
    ));
}

#[test]
fn cidr() {
    assert!(m(json!({"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}})));
    assert!(!m(json!({"detail": {"ip": [{"cidr": "10.0.1.0/24"}]}})));
    assert!(m(
        json!({"detail": {"ip6": [{"cidr": "2001:db8:1234:1a00::/64"}]}})
    ));
    assert!(!m(
        json!({"detail": {"ip6": [{"cidr": "2001:db8:123f:1a00::/64"}]}})
    ));
    assert!(!m(json!({"detail": {"count": [{"cidr": "10.0.0.0/24"}]}})));
    // A literal address is that address, however the event writes it.
    assert!(m(json!({"detail": {"ip6": ["2001:db8:1234:1a00::"]}})));
    assert!(m(json!({"detail": {"ip": ["10.0.0.255"]}})));
    assert!(!m(json!({"detail": {"ip": ["10.0.0.254"]}})));
    assert!(m(json!({"detail": {"ip": [{"exact": "10.0.0.255"}]}})));
    let e = json!({"ip": "10.0.0.256"});
    assert!(!m_on(json!({"ip": [{"cidr": "10.0.0.0/24"}]}), &e));
}

/// The reasons AWS gives, as recorded by LocalStack's AWS-validated pattern tests.
#[test]
fn errors_are_worded_as_aws_words_them() {
    for (p, want) in [
        (json!([]), "Filter is not an object"),
        (json!({"resources": []}), "Empty arrays are not allowed"),
        (json!({"a": {}}), "Empty objects are not allowed"),
        (json!({"int": 42}), "\"int\" must be an object or an array"),
        (
            json!({"a": [{"EXISTS": true}]}),
            "Unrecognized match type EXISTS",
        ),
        (
            json!({"a": [{"exists": "yes"}]}),
            "exists match pattern must be either true or false.",
        ),
        (
            json!({"a": [{"prefix": 1}]}),
            "prefix match pattern must be a string",
        ),
        (
            json!({"a": [{"suffix": [".png"]}]}),
            "suffix match pattern must be a string",
        ),
        (
            json!({"a": [{"equals-ignore-case": {"prefix": "x"}}]}),
            "equals-ignore-case match pattern must be a string",
        ),
        (
            json!({"a": [{"wildcard": 1}]}),
            "wildcard match pattern must be a string",
        ),
        (
            json!({"a": [{"numeric": 10}]}),
            "Value of numeric must be an array.",
        ),
        (
            json!({"a": [{"numeric": [">", 0, ">", 0]}]}),
            "Bad numeric range operator: >",
        ),
        (
            json!({"a": [{"numeric": [">", 0, "<"]}]}),
            "Value of < must be numeric",
        ),
        (
            json!({"a": [{"numeric": []}]}),
            "Invalid member in numeric match: ]",
        ),
        (
            json!({"a": [{"numeric": ["!", 1]}]}),
            "Unrecognized numeric range operator: !",
        ),
        (
            json!({"a": [{"numeric": ["=", 1, "<", 2]}]}),
            "Too many elements in numeric expression",
        ),
        (
            json!({"a": [{"anything-but": null}]}),
            "Value of anything-but must be an array or single string/number value.",
        ),
        (
            json!({"a": [{"anything-but": ["x", null]}]}),
            "Inside anything but list, start|null|boolean is not supported.",
        ),
        (
            json!({"a": [{"anything-but": ["x", 1]}]}),
            "Inside anything but list, either all values are number or string, mixed type is not supported",
        ),
        (
            json!({"a": [{"anything-but": {"prefix": ""}}]}),
            "Null prefix/suffix not allowed",
        ),
        (
            json!({"a": [{"anything-but": {"prefix": 1}}]}),
            "prefix/suffix match pattern must be a string",
        ),
        (
            json!({"a": [{"anything-but": {"suffix": [null]}}]}),
            "prefix/suffix match pattern must be a string",
        ),
        (
            json!({"a": [{"anything-but": {"wildcard": [1]}}]}),
            "wildcard match pattern must be a string",
        ),
        (
            json!({"a": [{"anything-but": {"equals-ignore-case": 1}}]}),
            "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
        ),
        (
            json!({"a": [{"anything-but": {"prefix": {"equals-ignore-case": "x"}}}]}),
            "Value of anything-but must be an array or single string/number value.",
        ),
        (
            json!({"a": [{"cidr": "bad"}]}),
            "Malformed CIDR, one '/' required",
        ),
        (
            json!({"a": [{"cidr": "bad-/64x"}]}),
            "Malformed CIDR, mask bits must be an integer",
        ),
        (
            json!({"a": [{"cidr": "xx.11.xx/8"}]}),
            "Nonstandard IP address: xx.11.xx",
        ),
        (
            json!({"a": [{"cidr": ["x"]}]}),
            "prefix match pattern must be a string",
        ),
        (
            json!({"a": [["nested"]]}),
            "Match value must be String, number, true, false, or null",
        ),
    ] {
        assert_eq!(err(p.clone()), want, "{p}");
    }
}

/// As AWS words them (recorded by LocalStack's AWS-validated SNS filter-policy tests).
#[test]
fn numeric_errors_are_worded_as_aws_words_them() {
    for (n, want) in [
        (json!([]), "Invalid member in numeric match: ]"),
        (
            json!(["operator"]),
            "Unrecognized numeric range operator: operator",
        ),
        (json!([1, "<="]), "Invalid member in numeric match: 1"),
        (json!(["=", "000"]), "Value of equals must be numeric"),
        (json!([">="]), "Value of >= must be numeric"),
        (
            json!(["<", 100, ">", 10]),
            "Too many elements in numeric expression",
        ),
        (json!([">=", 1, ">", 2]), "Bad numeric range operator: >"),
        (json!([">", 3, "<", 1]), "Bottom must be less than top"),
        (json!([">", 20, "<="]), "Value of <= must be numeric"),
        (json!([">", 20, 30]), "Bad value in numeric range: 30"),
        (json!([">", 20, "test"]), "Bad numeric range operator: test"),
        (json!([">", "20", "<", "30"]), "Value of > must be numeric"),
        (json!([">", 20, "<", "30"]), "Value of < must be numeric"),
        (
            json!([">", 20, "<", 30, "<", 50]),
            "Too many terms in numeric range expression",
        ),
    ] {
        assert_eq!(err(json!({"key": [{"numeric": n.clone()}]})), want, "{n}");
    }
    assert_eq!(
        err(json!({"key": [{"suffix": "value", "prefix": "value2"}]})),
        "Only one key allowed in match expression"
    );
}

#[test]
fn sns_filter_policy_limits() {
    let nested = json!({"object": {"key": [{"prefix": "auto-"}]}});
    assert_eq!(
        check_filter_policy(&nested.to_string(), false).unwrap_err(),
        "Filter policy scope MessageAttributes does not support nested filter policy"
    );
    assert!(check_filter_policy(&nested.to_string(), true).is_ok());
    // 3 x 4 x 2 x 3 x 1 x 3 = 216, the SNS guide's own example.
    let complex = json!({
        "key_a": {"key_b": {"key_c": ["1", "2", "3", "4"]}},
        "key_d": {"key_e": ["1", "2", "3"]},
        "key_f": ["1", "2", "3"]
    });
    assert_eq!(
        check_filter_policy(&complex.to_string(), true).unwrap_err(),
        "FilterPolicy: Filter policy is too complex"
    );
    let six: Map<String, Value> = (0..6).map(|i| (format!("k{i}"), json!(["v"]))).collect();
    assert_eq!(
        check_filter_policy(&Value::Object(six).to_string(), false).unwrap_err(),
        "FilterPolicy: Filter policy can not have more than 5 keys"
    );
    assert_eq!(
        check_filter_policy(r#"{"key_a":"value_one"}"#, true).unwrap_err(),
        // As AWS answers, with its parser's position.
        "FilterPolicy: \"key_a\" must be an object or an array\n at [Source: (String)\"{\"key_a\":\"value_one\"}\"; line: 1, column: 11]"
    );
    let or = json!({"$or": [{"a": ["1"]}, {"b": [{"numeric": [">", 1]}]}]});
    assert!(check_filter_policy(&or.to_string(), false).is_ok());
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z<>=*.\\\\/0-9:-]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    "[a-z.]{1,3}",
                    Just("prefix".to_string()),
                    Just("numeric".to_string()),
                    Just("anything-but".to_string()),
                    Just("exists".to_string()),
                    Just("suffix".to_string()),
                    Just("wildcard".to_string()),
                    Just("cidr".to_string()),
                    Just("$or".to_string()),
                    Just("equals-ignore-case".to_string()),
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn matching_never_panics(p in arb_json(), e in arb_json()) {
        if let Ok(p) = compile(&p) {
            let _ = p.matches(&e);
        }
    }
}

proptest! {
    #[test]
    fn parsing_any_text_never_panics(s in "[{}\\[\\]\":, a-z0-9.\\\\-]{0,40}") {
        let _ = parse(&s);
    }
}
