//! Event patterns: the matching language of EventBridge rules, also used by SNS filter
//! policies (which speak a subset of it).
//!
//! The grammar is the one of "Content filtering in Amazon EventBridge event patterns"
//! (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html>):
//! a pattern is a JSON object; a key whose value is an object descends into the event, a
//! key whose value is an array lists conditions of which any one must hold for a value the
//! event has there. `"$or": [{..}, {..}]` holds when any of its objects does. A key with
//! dots (`"a.b"`) is the same field as `{"a": {"b": ..}}`, in the pattern and in the
//! event. Conditions: literal strings, numbers, booleans and null; `prefix` and `suffix`
//! (a string or `{"equals-ignore-case": s}`), `equals-ignore-case`, `wildcard` (`*`,
//! with `\*` and `\\` as escapes), `anything-but` (a value, a list of strings or of
//! numbers, or `{"prefix" | "suffix" | "equals-ignore-case" | "wildcard": s or [s..]}`),
//! `exists`, `numeric` (`=`, or a lower bound `>`/`>=` optionally followed by an upper
//! bound `<`/`<=`, or an upper bound alone) and `cidr` (IPv4 or IPv6).
//!
//! Error texts are worded as EventBridge words them (the `Reason:` part of
//! `InvalidEventPatternException`), which are those of AWS's open-source matcher,
//! event-ruler.
//!
//! Values match per leaf: an event array is as many values as it has elements (nested
//! arrays flattened), and a sub-pattern below an array must hold within one element.
//! Objects are not values: `exists` is false for a field whose value is an object or an
//! empty array.

use std::net::IpAddr;

use serde_json::{Map, Value};

/// Why a pattern is not valid (worded as AWS words the reason).
pub(crate) type PatternError = String;

/// The deepest a pattern may nest.
const MAX_DEPTH: usize = 32;
/// The most `*` one wildcard expression may hold. AWS refuses expressions it deems too
/// complex with a measure it does not publish; `*:*:*:*:*:event-bus/*` (6) is refused.
const MAX_WILDCARDS: usize = 5;
/// The key of an or-group.
const OR_KEY: &str = "$or";

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pattern {
    root: Obj,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Obj {
    /// Field (one path segment) → what must hold there.
    fields: Vec<(String, Item)>,
    /// Each group holds when one of its objects does.
    ors: Vec<Vec<Obj>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Obj(Obj),
    Conds(Vec<Cond>),
}

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    /// A string, number, boolean or null.
    Exact(Value),
    Prefix(String),
    PrefixIgnoreCase(String),
    Suffix(String),
    SuffixIgnoreCase(String),
    EqualsIgnoreCase(String),
    Wildcard(Vec<Wc>),
    Exists(bool),
    /// Lower bound (value, inclusive) and upper bound (value, inclusive).
    Numeric(Option<(f64, bool)>, Option<(f64, bool)>),
    Cidr(IpNet),
    AnythingBut(AnythingBut),
}

#[derive(Debug, Clone, PartialEq)]
enum AnythingBut {
    Strings(Vec<String>),
    Numbers(Vec<f64>),
    IgnoreCase(Vec<String>),
    Prefix(Vec<String>),
    Suffix(Vec<String>),
    Wildcard(Vec<Vec<Wc>>),
}

/// One element of a wildcard expression.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wc {
    Star,
    Char(char),
}

/// An IP network: the address bytes (4 or 16) and the mask length.
#[derive(Debug, Clone, PartialEq)]
struct IpNet {
    addr: IpAddr,
    bits: u32,
}

/// Parses the text of a pattern (JSON) and compiles it.
pub(crate) fn parse(text: &str) -> Result<Pattern, PatternError> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    compile(&v)
}

/// Compiles a pattern given as JSON.
pub(crate) fn compile(pattern: &Value) -> Result<Pattern, PatternError> {
    match pattern {
        Value::Object(m) => Ok(Pattern {
            root: compile_object(m, 0)?,
        }),
        _ => Err("Filter is not an object".into()),
    }
}

/// Whether `event` matches `pattern` (given as JSON). A pattern that does not compile
/// matches nothing.
pub(crate) fn matches(pattern: &Value, event: &Value) -> bool {
    compile(pattern).is_ok_and(|p| p.matches(event))
}

/// SNS: the most keys a filter policy may have (for a nested policy, only the top-level
/// ones count), and the most value combinations ("Amazon SNS filter policy constraints",
/// <https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html>).
const SNS_MAX_KEYS: usize = 5;
const SNS_MAX_COMBINATIONS: u64 = 150;

/// Checks an SNS filter policy: the pattern grammar, no nesting when the policy applies to
/// message attributes, at most five keys and at most 150 combinations (the product, over
/// every value list, of its length times the depth of its key, as the SNS guide counts
/// them; alternatives of `$or` add up). The error is the text after "Invalid parameter: ".
pub(crate) fn check_filter_policy(policy: &Value, message_body: bool) -> Result<(), String> {
    let p = compile(policy).map_err(|e| format!("FilterPolicy: {e}"))?;
    if !message_body && p.root.fields.iter().any(|(_, i)| matches!(i, Item::Obj(_))) {
        return Err(
            "Filter policy scope MessageAttributes does not support nested filter policy".into(),
        );
    }
    if key_count(&p.root) > SNS_MAX_KEYS {
        return Err(format!(
            "FilterPolicy: Filter policy can not have more than {SNS_MAX_KEYS} keys"
        ));
    }
    if combinations(&p.root, 1) > SNS_MAX_COMBINATIONS {
        return Err("FilterPolicy: Filter policy is too complex".into());
    }
    Ok(())
}

fn key_count(o: &Obj) -> usize {
    o.fields.len()
        + o.ors
            .iter()
            .map(|g| g.iter().map(key_count).max().unwrap_or(0))
            .sum::<usize>()
}

fn combinations(o: &Obj, depth: u64) -> u64 {
    let fields = o.fields.iter().fold(1u64, |acc, (_, item)| {
        let c = match item {
            Item::Conds(c) => depth.saturating_mul(c.len() as u64),
            Item::Obj(inner) => combinations(inner, depth + 1),
        };
        acc.saturating_mul(c)
    });
    o.ors.iter().fold(fields, |acc, g| {
        let sum = g
            .iter()
            .fold(0u64, |s, alt| s.saturating_add(combinations(alt, depth)));
        acc.saturating_mul(sum)
    })
}

impl Pattern {
    /// Whether `event` matches this pattern.
    pub(crate) fn matches(&self, event: &Value) -> bool {
        let event = normalise(event, 0);
        match_obj(&self.root, &event)
    }
}

fn compile_object(m: &Map<String, Value>, depth: usize) -> Result<Obj, PatternError> {
    if depth > MAX_DEPTH {
        return Err("Filter nests too deeply".into());
    }
    if m.is_empty() {
        return Err("Empty objects are not allowed".into());
    }
    let mut obj = Obj::default();
    for (k, v) in m {
        if k == OR_KEY {
            let Value::Array(alts) = v else {
                return Err("It must be an Array followed with $or.".into());
            };
            let mut group = Vec::new();
            for alt in alts {
                let Value::Object(am) = alt else {
                    return Err("Only JSON object is allowed in array of $or relationship.".into());
                };
                group.push(compile_object(am, depth + 1)?);
            }
            if group.len() < 2 {
                return Err("There must have at least 2 Objects in $or relationship.".into());
            }
            obj.ors.push(group);
            continue;
        }
        let item = match v {
            Value::Object(inner) => Item::Obj(compile_object(inner, depth + 1)?),
            Value::Array(conds) => {
                if conds.is_empty() {
                    return Err("Empty arrays are not allowed".into());
                }
                Item::Conds(
                    conds
                        .iter()
                        .map(compile_condition)
                        .collect::<Result<_, _>>()?,
                )
            }
            _ => return Err(format!("\"{k}\" must be an object or an array")),
        };
        insert_path(&mut obj, k, item);
    }
    Ok(obj)
}

/// Inserts `item` at the dotted path `key` (`a.b` is `{"a": {"b": ..}}`), merging with
/// what is there; a later condition list for the same field replaces an earlier one.
fn insert_path(obj: &mut Obj, key: &str, item: Item) {
    let (head, rest) = match key.split_once('.') {
        Some((h, r)) if !h.is_empty() && !r.is_empty() => (h, Some(r)),
        _ => (key, None),
    };
    let item = match rest {
        None => item,
        Some(rest) => {
            let mut inner = Obj::default();
            insert_path(&mut inner, rest, item);
            Item::Obj(inner)
        }
    };
    match (obj.fields.iter_mut().find(|(k, _)| k == head), item) {
        (Some((_, Item::Obj(existing))), Item::Obj(new)) => {
            for (k, i) in new.fields {
                insert_path(existing, &k, i);
            }
            existing.ors.extend(new.ors);
        }
        (Some((_, slot)), item) => *slot = item,
        (None, item) => obj.fields.push((head.to_owned(), item)),
    }
}

fn compile_condition(c: &Value) -> Result<Cond, PatternError> {
    let op = match c {
        Value::Object(op) => op,
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {
            return Ok(Cond::Exact(c.clone()));
        }
        Value::Array(_) => {
            return Err("Match value must be String, number, true, false, or null".into());
        }
    };
    let mut it = op.iter();
    let Some((name, arg)) = it.next() else {
        return Err("Match expression name not found".into());
    };
    let only_one = |c: Cond| {
        if op.len() > 1 {
            Err::<Cond, PatternError>("Only one key allowed in match expression".into())
        } else {
            Ok(c)
        }
    };
    match name.as_str() {
        "prefix" | "suffix" => {
            let prefix = name == "prefix";
            let c = match arg {
                Value::String(s) if prefix => Cond::Prefix(s.clone()),
                Value::String(s) => Cond::Suffix(s.clone()),
                Value::Object(o) => {
                    let Some((k, v)) = o.iter().next() else {
                        return Err(if prefix {
                            "Prefix expression name not found".into()
                        } else {
                            "Suffix expression name not found".into()
                        });
                    };
                    if k != "equals-ignore-case" {
                        return Err(if prefix {
                            format!("Unsupported prefix pattern: {k}")
                        } else {
                            format!("Unsupported suffix pattern: {k}")
                        });
                    }
                    let Value::String(s) = v else {
                        return Err("equals-ignore-case match pattern must be a string".into());
                    };
                    if o.len() > 1 {
                        return Err("Only one key allowed in match expression".into());
                    }
                    if prefix {
                        Cond::PrefixIgnoreCase(s.clone())
                    } else {
                        Cond::SuffixIgnoreCase(s.clone())
                    }
                }
                _ => return Err(format!("{name} match pattern must be a string")),
            };
            only_one(c)
        }
        "equals-ignore-case" => match arg {
            Value::String(s) => only_one(Cond::EqualsIgnoreCase(s.clone())),
            _ => Err("equals-ignore-case match pattern must be a string".into()),
        },
        "wildcard" => match arg {
            Value::String(s) => only_one(Cond::Wildcard(parse_wildcard(s)?)),
            _ => Err("wildcard match pattern must be a string".into()),
        },
        "exists" => match arg {
            Value::Bool(b) => only_one(Cond::Exists(*b)),
            _ => Err("exists match pattern must be either true or false.".into()),
        },
        "numeric" => match arg {
            Value::Array(a) => only_one(compile_numeric(a)?),
            _ => Err("Value of numeric must be an array.".into()),
        },
        "cidr" => match arg {
            Value::String(s) => only_one(Cond::Cidr(parse_cidr(s)?)),
            _ => Err("prefix match pattern must be a string".into()),
        },
        "anything-but" => only_one(Cond::AnythingBut(compile_anything_but(arg)?)),
        other => Err(format!("Unrecognized match type {other}")),
    }
}

fn compile_anything_but(arg: &Value) -> Result<AnythingBut, PatternError> {
    const BAD_VALUE: &str = "Value of anything-but must be an array or single string/number value.";
    match arg {
        Value::String(s) => Ok(AnythingBut::Strings(vec![s.clone()])),
        Value::Number(n) => Ok(AnythingBut::Numbers(vec![number(n)])),
        Value::Array(list) => {
            let mut strings = Vec::new();
            let mut numbers = Vec::new();
            for v in list {
                match v {
                    Value::String(s) => strings.push(s.clone()),
                    Value::Number(n) => numbers.push(number(n)),
                    _ => {
                        return Err(
                            "Inside anything but list, start|null|boolean is not supported.".into(),
                        );
                    }
                }
            }
            match (strings.is_empty(), numbers.is_empty()) {
                (false, true) => Ok(AnythingBut::Strings(strings)),
                (true, false) => Ok(AnythingBut::Numbers(numbers)),
                _ => Err("Inside anything but list, either all values are number or string, mixed type is not supported".into()),
            }
        }
        Value::Object(o) => {
            let Some((k, v)) = o.iter().next() else {
                return Err("Anything-But expression name not found".into());
            };
            let type_error: PatternError = match k.as_str() {
                "equals-ignore-case" => {
                    "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.".into()
                }
                "wildcard" => "wildcard match pattern must be a string".into(),
                "prefix" | "suffix" => "prefix/suffix match pattern must be a string".into(),
                other => return Err(format!("Unsupported anything-but pattern: {other}")),
            };
            let values: Vec<String> = match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(list) => list
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| type_error.clone())
                    })
                    .collect::<Result<_, _>>()?,
                Value::Number(_) => return Err(type_error),
                _ => return Err(BAD_VALUE.into()),
            };
            if o.len() > 1 {
                return Err("Too many elements in numeric expression".into());
            }
            if matches!(k.as_str(), "prefix" | "suffix") && values.iter().any(String::is_empty) {
                return Err("Null prefix/suffix not allowed".into());
            }
            Ok(match k.as_str() {
                "equals-ignore-case" => AnythingBut::IgnoreCase(values),
                "prefix" => AnythingBut::Prefix(values),
                "suffix" => AnythingBut::Suffix(values),
                _ => AnythingBut::Wildcard(
                    values
                        .iter()
                        .map(|s| parse_wildcard(s))
                        .collect::<Result<_, _>>()?,
                ),
            })
        }
        _ => Err(BAD_VALUE.into()),
    }
}

fn number(n: &serde_json::Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

fn compile_numeric(a: &[Value]) -> Result<Cond, PatternError> {
    let text = |v: Option<&Value>| v.map_or_else(|| "]".to_owned(), |v| v.to_string());
    let op = match a.first() {
        Some(Value::String(s)) => s.as_str(),
        other => return Err(format!("Invalid member in numeric match: {}", text(other))),
    };
    let value = |i: usize, op: &str| match a.get(i) {
        Some(Value::Number(n)) => Ok(number(n)),
        _ => Err(format!(
            "Value of {} must be numeric",
            if op == "=" { "equals" } else { op }
        )),
    };
    let too_many = || -> PatternError { "Too many elements in numeric expression".into() };
    match op {
        "=" => {
            let v = value(1, op)?;
            if a.len() > 2 {
                return Err(too_many());
            }
            Ok(Cond::Numeric(Some((v, true)), Some((v, true))))
        }
        "<" | "<=" => {
            let v = value(1, op)?;
            if a.len() > 2 {
                return Err(too_many());
            }
            Ok(Cond::Numeric(None, Some((v, op == "<="))))
        }
        ">" | ">=" => {
            let low = (value(1, op)?, op == ">=");
            if a.len() == 2 {
                return Ok(Cond::Numeric(Some(low), None));
            }
            let top_op = match a.get(2) {
                Some(Value::String(s)) => s.as_str(),
                other => return Err(format!("Bad value in numeric range: {}", text(other))),
            };
            if top_op != "<" && top_op != "<=" {
                return Err(format!("Bad numeric range operator: {top_op}"));
            }
            let top = value(3, top_op)?;
            if a.len() > 4 {
                return Err("Too many terms in numeric range expression".into());
            }
            if low.0 >= top {
                return Err("Bottom must be less than top".into());
            }
            Ok(Cond::Numeric(Some(low), Some((top, top_op == "<="))))
        }
        other => Err(format!("Unrecognized numeric range operator: {other}")),
    }
}

/// Parses a wildcard expression as AWS does: `*` any run, `\*` and `\\` literal; positions
/// in errors count the opening quote of the JSON string, as AWS's do.
fn parse_wildcard(s: &str) -> Result<Vec<Wc>, PatternError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut pos = 1; // byte position in `"s"`, as AWS reports it
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    return Err(format!("Consecutive wildcard characters at pos {pos}"));
                }
                out.push(Wc::Star);
            }
            '\\' => match chars.get(i + 1) {
                Some(&n @ ('*' | '\\')) => {
                    out.push(Wc::Char(n));
                    i += 1;
                    pos += 1;
                }
                _ => return Err(format!("Invalid escape character at pos {pos}")),
            },
            c => out.push(Wc::Char(c)),
        }
        pos += c.len_utf8();
        i += 1;
    }
    if out.iter().filter(|w| **w == Wc::Star).count() > MAX_WILDCARDS {
        return Err("Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character".into());
    }
    Ok(out)
}

fn wildcard_matches(p: &[Wc], text: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(Wc::Char(c)) if *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            Some(Wc::Star) => {
                star = Some((pi, ti));
                pi += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|w| *w == Wc::Star)
}

fn parse_cidr(s: &str) -> Result<IpNet, PatternError> {
    let parts: Vec<&str> = s.split('/').collect();
    let [ip, bits] = parts[..] else {
        return Err("Malformed CIDR, one '/' required".into());
    };
    let bits: i64 = bits
        .parse()
        .map_err(|_| "Malformed CIDR, mask bits must be an integer".to_owned())?;
    if bits < 0 {
        return Err("Malformed CIDR, mask bits must not be negative".into());
    }
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| format!("Nonstandard IP address: {ip}"))?;
    let bits = u32::try_from(bits).unwrap_or(u32::MAX);
    match addr {
        IpAddr::V4(_) if bits > 31 => Err("IPv4 mask bits must be < 32".into()),
        IpAddr::V6(_) if bits > 127 => Err("IPv6 mask bits must be < 128".into()),
        _ => Ok(IpNet { addr, bits }),
    }
}

fn ip_bits(a: IpAddr) -> (u128, u32) {
    match a {
        IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    }
}

impl IpNet {
    fn contains(&self, s: &str) -> bool {
        let Ok(a) = s.parse::<IpAddr>() else {
            return false;
        };
        let ((net, width), (ip, ip_width)) = (ip_bits(self.addr), ip_bits(a));
        if width != ip_width {
            return false;
        }
        let shift = width - self.bits;
        shift >= 128 || (net >> shift) == (ip >> shift)
    }
}

/// The event with dotted keys split (`{"a.b": 1}` is `{"a": {"b": 1}}`); a field that
/// both forms give a value becomes an array of both values.
fn normalise(event: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return event.clone();
    }
    match event {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let v = normalise(v, depth + 1);
                let mut segs = k.split('.').filter(|s| !s.is_empty()).collect::<Vec<_>>();
                if segs.len() < 2 {
                    segs = vec![k.as_str()];
                }
                merge_into(&mut out, &segs, v);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| normalise(v, depth + 1)).collect()),
        v => v.clone(),
    }
}

fn merge_into(out: &mut Map<String, Value>, segs: &[&str], v: Value) {
    let Some((head, rest)) = segs.split_first() else {
        return;
    };
    let v = if rest.is_empty() {
        v
    } else {
        let mut inner = Map::new();
        merge_into(&mut inner, rest, v);
        Value::Object(inner)
    };
    match out.get_mut(*head) {
        None => {
            out.insert((*head).to_owned(), v);
        }
        Some(Value::Object(existing)) if v.is_object() => {
            if let Value::Object(new) = v {
                for (k, x) in new {
                    merge_into(existing, &[k.as_str()], x);
                }
            }
        }
        Some(existing) => {
            let old = existing.take();
            *existing = Value::Array(vec![old, v]);
        }
    }
}

fn match_obj(p: &Obj, event: &Value) -> bool {
    p.fields.iter().all(|(k, item)| {
        let here = event.as_object().and_then(|o| o.get(k));
        match item {
            Item::Obj(inner) => match_sub(inner, here),
            Item::Conds(conds) => {
                let mut leaves = Vec::new();
                if let Some(v) = here {
                    collect_leaves(v, &mut leaves);
                }
                conds.iter().any(|c| match_cond(c, &leaves))
            }
        }
    }) && p
        .ors
        .iter()
        .all(|group| group.iter().any(|alt| match_obj(alt, event)))
}

/// A sub-pattern against what the event has at its field: an object, an array whose
/// elements are tried one by one, or nothing (then only absence conditions can hold).
fn match_sub(p: &Obj, here: Option<&Value>) -> bool {
    match here {
        Some(Value::Array(items)) => {
            items.iter().any(|i| match_sub(p, Some(i)))
                || (items.iter().all(|i| !i.is_object()) && match_obj(p, &Value::Null))
        }
        Some(v @ Value::Object(_)) => match_obj(p, v),
        _ => match_obj(p, &Value::Null),
    }
}

fn collect_leaves<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| collect_leaves(x, out)),
        Value::Object(_) => {}
        leaf => out.push(leaf),
    }
}

fn match_cond(c: &Cond, leaves: &[&Value]) -> bool {
    match c {
        Cond::Exists(want) => leaves.is_empty() != *want,
        c => leaves.iter().any(|v| match_leaf(c, v)),
    }
}

fn match_leaf(c: &Cond, v: &Value) -> bool {
    let s = v.as_str();
    match c {
        Cond::Exact(x) => literal_eq(x, v),
        Cond::Prefix(p) => s.is_some_and(|s| s.starts_with(p.as_str())),
        Cond::PrefixIgnoreCase(p) => {
            s.is_some_and(|s| s.to_lowercase().starts_with(&p.to_lowercase()))
        }
        Cond::Suffix(p) => s.is_some_and(|s| s.ends_with(p.as_str())),
        Cond::SuffixIgnoreCase(p) => {
            s.is_some_and(|s| s.to_lowercase().ends_with(&p.to_lowercase()))
        }
        Cond::EqualsIgnoreCase(p) => s.is_some_and(|s| s.to_lowercase() == p.to_lowercase()),
        Cond::Wildcard(w) => s.is_some_and(|s| wildcard_matches(w, s)),
        Cond::Exists(_) => true,
        Cond::Numeric(low, high) => v.as_f64().is_some_and(|n| {
            low.is_none_or(|(b, incl)| if incl { n >= b } else { n > b })
                && high.is_none_or(|(t, incl)| if incl { n <= t } else { n < t })
        }),
        Cond::Cidr(net) => s.is_some_and(|s| net.contains(s)),
        // A value of another type than the excluded ones is "anything but" them.
        Cond::AnythingBut(ab) => match ab {
            AnythingBut::Strings(list) => !s.is_some_and(|s| list.iter().any(|x| x == s)),
            AnythingBut::Numbers(list) => !v.as_f64().is_some_and(|n| list.contains(&n)),
            AnythingBut::IgnoreCase(list) => {
                !s.is_some_and(|s| list.iter().any(|x| x.to_lowercase() == s.to_lowercase()))
            }
            AnythingBut::Prefix(list) => {
                !s.is_some_and(|s| list.iter().any(|x| s.starts_with(x.as_str())))
            }
            AnythingBut::Suffix(list) => {
                !s.is_some_and(|s| list.iter().any(|x| s.ends_with(x.as_str())))
            }
            AnythingBut::Wildcard(list) => {
                !s.is_some_and(|s| list.iter().any(|w| wildcard_matches(w, s)))
            }
        },
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
            Err(e) => e,
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
        let p = json!({"$or": [{"source": ["x"]}, {"detail": {"$or": [{"count": [7]}, {"count": [8]}]}}]});
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
            check_filter_policy(&nested, false).unwrap_err(),
            "Filter policy scope MessageAttributes does not support nested filter policy"
        );
        assert!(check_filter_policy(&nested, true).is_ok());
        // 3 x 4 x 2 x 3 x 1 x 3 = 216, the SNS guide's own example.
        let complex = json!({
            "key_a": {"key_b": {"key_c": ["1", "2", "3", "4"]}},
            "key_d": {"key_e": ["1", "2", "3"]},
            "key_f": ["1", "2", "3"]
        });
        assert_eq!(
            check_filter_policy(&complex, true).unwrap_err(),
            "FilterPolicy: Filter policy is too complex"
        );
        let six: Map<String, Value> = (0..6).map(|i| (format!("k{i}"), json!(["v"]))).collect();
        assert_eq!(
            check_filter_policy(&Value::Object(six), false).unwrap_err(),
            "FilterPolicy: Filter policy can not have more than 5 keys"
        );
        assert_eq!(
            check_filter_policy(&json!({"key_a": "value_one"}), true).unwrap_err(),
            "FilterPolicy: \"key_a\" must be an object or an array"
        );
        let or = json!({"$or": [{"a": ["1"]}, {"b": [{"numeric": [">", 1]}]}]});
        assert!(check_filter_policy(&or, false).is_ok());
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
}
