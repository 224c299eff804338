//! Event patterns: the matching language of EventBridge rules, also used by SNS filter
//! policies (which speak the same operators).
//!
//! A pattern is a JSON object. A key whose value is an object descends into the event;
//! a key whose value is an array lists conditions, any one of which must hold for the
//! event's value there (an event value that is an array matches when any element does).
//! Conditions: literal strings, numbers, booleans and null; `{"prefix": s}`,
//! `{"suffix": s}`, `{"equals-ignore-case": s}`, `{"anything-but": v | [v..] |
//! {"prefix": s} | {"suffix": s}}`, `{"exists": bool}`, `{"numeric": [op, n, (op, n)]}`
//! with `<`, `<=`, `=`, `>=`, `>`, and `{"wildcard": s}` with `*`.

use serde_json::{Map, Value};

use crate::wildcard::{self, Question};

/// Why a pattern is not valid (worded for `InvalidEventPatternException`).
pub(crate) type PatternError = String;

/// The deepest a pattern may nest.
const MAX_DEPTH: usize = 32;

/// Checks that `pattern` is a well-formed pattern.
pub(crate) fn validate(pattern: &Value) -> Result<(), PatternError> {
    match pattern {
        Value::Object(m) => validate_object(m, 0),
        _ => Err("Filter is not an object".into()),
    }
}

fn validate_object(m: &Map<String, Value>, depth: usize) -> Result<(), PatternError> {
    if depth > MAX_DEPTH {
        return Err("Filter nests too deeply".into());
    }
    for (k, v) in m {
        match v {
            Value::Object(inner) => validate_object(inner, depth + 1)?,
            Value::Array(conds) => {
                if conds.is_empty() {
                    return Err(format!("Empty arrays are not allowed (at {k:?})"));
                }
                for c in conds {
                    validate_condition(k, c)?;
                }
            }
            _ => {
                return Err(format!(
                    "Match value must be String, number, true, false, or null (at {k:?}: values must be in an array)"
                ));
            }
        }
    }
    Ok(())
}

fn validate_condition(k: &str, c: &Value) -> Result<(), PatternError> {
    let Value::Object(op) = c else {
        return match c {
            Value::Array(_) => Err(format!("Nested arrays are not allowed (at {k:?})")),
            _ => Ok(()),
        };
    };
    if op.len() != 1 {
        return Err(format!(
            "A condition object must have exactly one operator (at {k:?})"
        ));
    }
    let Some((name, arg)) = op.iter().next() else {
        return Err(format!("Empty condition object (at {k:?})"));
    };
    match (name.as_str(), arg) {
        ("prefix" | "suffix", Value::String(_)) => Ok(()),
        ("prefix" | "suffix", Value::Object(o))
            if o.len() == 1 && o.get("equals-ignore-case").is_some_and(Value::is_string) =>
        {
            Ok(())
        }
        ("equals-ignore-case" | "wildcard", Value::String(_)) => Ok(()),
        ("exists", Value::Bool(_)) => Ok(()),
        ("anything-but", Value::String(_) | Value::Number(_)) => Ok(()),
        ("anything-but", Value::Array(a))
            if !a.is_empty()
                && (a.iter().all(Value::is_string) || a.iter().all(Value::is_number)) =>
        {
            Ok(())
        }
        ("anything-but", Value::Object(o))
            if o.len() == 1
                && (o.get("prefix").is_some_and(Value::is_string)
                    || o.get("suffix").is_some_and(Value::is_string)
                    || o.get("equals-ignore-case").is_some_and(Value::is_string)) =>
        {
            Ok(())
        }
        ("numeric", Value::Array(a)) => validate_numeric(k, a),
        (op, _) => Err(format!(
            "Unrecognized match type or invalid argument for {op:?} (at {k:?})"
        )),
    }
}

fn validate_numeric(k: &str, a: &[Value]) -> Result<(), PatternError> {
    if a.is_empty() || a.len() > 4 || !a.len().is_multiple_of(2) {
        return Err(format!(
            "numeric takes one or two (operator, number) pairs (at {k:?})"
        ));
    }
    for pair in a.chunks(2) {
        let ok_op = matches!(pair[0].as_str(), Some("<" | "<=" | "=" | ">=" | ">"));
        if !ok_op || !pair[1].is_number() {
            return Err(format!(
                "Invalid numeric condition: expected an operator (<, <=, =, >=, >) then a number (at {k:?})"
            ));
        }
    }
    Ok(())
}

/// Whether `event` matches `pattern`. Never panics; a malformed pattern matches nothing it
/// cannot make sense of.
pub(crate) fn matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(p) => match_object(p, event, 0),
        _ => false,
    }
}

fn match_object(p: &Map<String, Value>, event: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let empty = Value::Object(Map::new());
    p.iter().all(|(k, pv)| {
        let ev = event.as_object().and_then(|o| o.get(k));
        match pv {
            Value::Object(inner) => {
                let ev = match ev {
                    Some(v @ Value::Object(_)) => v,
                    Some(_) => return false,
                    None => &empty,
                };
                match_object(inner, ev, depth + 1)
            }
            Value::Array(conds) => conds.iter().any(|c| match_condition(c, ev)),
            _ => false,
        }
    })
}

fn match_condition(c: &Value, ev: Option<&Value>) -> bool {
    if let Value::Object(op) = c
        && let Some(Value::Bool(want)) = op.get("exists")
    {
        let present = matches!(ev, Some(v) if !v.is_object());
        return present == *want;
    }
    let Some(ev) = ev else {
        return false;
    };
    match ev {
        Value::Array(items) => items.iter().any(|item| match_leaf(c, item)),
        leaf => match_leaf(c, leaf),
    }
}

fn match_leaf(c: &Value, v: &Value) -> bool {
    match c {
        Value::Object(op) => {
            let Some((name, arg)) = op.iter().next() else {
                return false;
            };
            match name.as_str() {
                "prefix" => str_op(
                    arg,
                    v,
                    |s, p| s.starts_with(p),
                    |s, p| s.to_lowercase().starts_with(&p.to_lowercase()),
                ),
                "suffix" => str_op(
                    arg,
                    v,
                    |s, p| s.ends_with(p),
                    |s, p| s.to_lowercase().ends_with(&p.to_lowercase()),
                ),
                "equals-ignore-case" => match (arg, v) {
                    (Value::String(a), Value::String(s)) => a.to_lowercase() == s.to_lowercase(),
                    _ => false,
                },
                "wildcard" => match (arg, v) {
                    (Value::String(a), Value::String(s)) => {
                        wildcard::matches(a, s, Question::Literal)
                    }
                    _ => false,
                },
                "anything-but" => match arg {
                    Value::Array(list) => !list.iter().any(|x| literal_eq(x, v)),
                    Value::Object(inner) => {
                        let Value::String(s) = v else {
                            return false;
                        };
                        if let Some(Value::String(p)) = inner.get("prefix") {
                            !s.starts_with(p.as_str())
                        } else if let Some(Value::String(p)) = inner.get("suffix") {
                            !s.ends_with(p.as_str())
                        } else if let Some(Value::String(p)) = inner.get("equals-ignore-case") {
                            p.to_lowercase() != s.to_lowercase()
                        } else {
                            false
                        }
                    }
                    x => !literal_eq(x, v),
                },
                "numeric" => {
                    let (Value::Array(a), Some(n)) = (arg, v.as_f64()) else {
                        return false;
                    };
                    if !v.is_number() || a.len() % 2 != 0 {
                        return false;
                    }
                    a.chunks(2).all(|pair| {
                        let Some(bound) = pair[1].as_f64() else {
                            return false;
                        };
                        match pair[0].as_str() {
                            Some("<") => n < bound,
                            Some("<=") => n <= bound,
                            Some("=") => n == bound,
                            Some(">=") => n >= bound,
                            Some(">") => n > bound,
                            _ => false,
                        }
                    })
                }
                _ => false,
            }
        }
        lit => literal_eq(lit, v),
    }
}

fn str_op(
    arg: &Value,
    v: &Value,
    exact: impl Fn(&str, &str) -> bool,
    ignore_case: impl Fn(&str, &str) -> bool,
) -> bool {
    let Value::String(s) = v else {
        return false;
    };
    match arg {
        Value::String(p) => exact(s, p),
        Value::Object(o) => match o.get("equals-ignore-case") {
            Some(Value::String(p)) => ignore_case(s, p),
            _ => false,
        },
        _ => false,
    }
}

/// Literal equality; numbers compare by value (`5` equals `5.0`).
fn literal_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(_) | Value::Object(_), _) => false,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

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
                "flag": true,
                "nested": {"deep": "yes"},
                "tags": ["a", "b"]
            }
        })
    }

    fn m(p: Value) -> bool {
        validate(&p).unwrap_or_else(|e| panic!("invalid pattern {p}: {e}"));
        matches(&p, &event())
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
        assert!(m(json!({"detail": {"nested": {"deep": ["yes"]}}})));
        assert!(!m(json!({"detail": {"nested": {"deep": ["no"]}}})));
        // event arrays: any element
        assert!(m(json!({"detail": {"tags": ["b"]}})));
        assert!(m(
            json!({"account": ["000000000000"], "region": ["us-east-1"]})
        ));
        assert!(m(json!({"resources": [{"suffix": "/web"}]})));
        // missing field
        assert!(!m(json!({"detail": {"missing": ["x"]}})));
        // empty pattern matches everything
        assert!(m(json!({})));
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
            json!({"detail": {"AutoScalingGroupName": [{"wildcard": "web*"}]}})
        ));
        assert!(!m(
            json!({"detail": {"AutoScalingGroupName": [{"wildcard": "*x*"}]}})
        ));
    }

    #[test]
    fn anything_but() {
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
    }

    #[test]
    fn exists() {
        assert!(m(json!({"detail": {"EC2InstanceId": [{"exists": true}]}})));
        assert!(!m(
            json!({"detail": {"EC2InstanceId": [{"exists": false}]}})
        ));
        assert!(m(json!({"detail": {"nope": [{"exists": false}]}})));
        assert!(!m(json!({"detail": {"nope": [{"exists": true}]}})));
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
        assert!(!m(
            json!({"detail": {"AutoScalingGroupName": [{"numeric": [">", 0]}]}})
        ));
    }

    #[test]
    fn invalid_patterns() {
        for p in [
            json!([]),
            json!("x"),
            json!({"source": "aws.autoscaling"}),
            json!({"source": []}),
            json!({"source": [{"bogus": 1}]}),
            json!({"source": [{"numeric": [">"]}]}),
            json!({"source": [{"numeric": ["!", 1]}]}),
            json!({"source": [{"prefix": 1}]}),
            json!({"source": [{"exists": "yes"}]}),
            json!({"source": [["nested"]]}),
        ] {
            assert!(validate(&p).is_err(), "{p} should be invalid");
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z<>=*.-]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        "[a-z]{1,3}",
                        Just("prefix".to_string()),
                        Just("numeric".to_string()),
                        Just("anything-but".to_string()),
                        Just("exists".to_string()),
                        Just("suffix".to_string()),
                        Just("wildcard".to_string()),
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
            let _ = validate(&p);
            let _ = matches(&p, &e);
        }
    }
}
