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

mod compile;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use serde_json::{Map, Value};

/// Why a pattern is not valid: AWS's reason, then where its JSON parser stood, as AWS
/// appends it (`\n at [Source: (String)"..."; line: 1, column: 11]`), for the reasons AWS
/// gives with one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PatternError {
    pub(crate) reason: String,
    location: String,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.reason, self.location)
    }
}

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

/// Parses the text of a pattern and compiles it, as AWS does (see [`compile`]).
pub(crate) fn parse(text: &str) -> Result<Pattern, PatternError> {
    compile::compile(text)
}

/// Whether `event` matches `pattern` (given as JSON). A pattern that does not compile
/// matches nothing.
pub(crate) fn matches(pattern: &Value, event: &Value) -> bool {
    parse(&pattern.to_string()).is_ok_and(|p| p.matches(event))
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
pub(crate) fn check_filter_policy(policy: &str, message_body: bool) -> Result<(), String> {
    let p = parse(policy).map_err(|e| format!("FilterPolicy: {e}"))?;
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

/// Parses a wildcard expression as AWS does: `*` any run, `\*` and `\\` literal; positions
/// in errors count the opening quote of the JSON string, as AWS's do.
fn parse_wildcard(s: &str) -> Result<Vec<Wc>, String> {
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

fn parse_cidr(s: &str) -> Result<IpNet, String> {
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
