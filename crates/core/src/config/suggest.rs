//! Messages for people: "did you mean", the keys a table takes, and serde's type errors
//! reworded without Rust jargon (`i64`, `a sequence`, `a map` ...).

use std::fmt;

/// The closest of `candidates` to `word`: the same up to case and `-`/`_`, or else within
/// an edit distance of 2 (and less than the word's length, so that short words do not
/// match anything).
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let w = norm(word);
    if let Some(c) = candidates.iter().find(|c| norm(c) == w) {
        return Some(c);
    }
    let len = w.chars().count();
    candidates
        .iter()
        .map(|c| (distance(&w, &norm(c)), *c))
        .filter(|(d, _)| *d <= 2 && *d < len)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// "unknown key `x` in `[source]`; did you mean `y`? (keys: a, b)"; `place` is "in
/// `[source]`", "at the top level" or empty.
pub(crate) fn unknown_key(key: &str, place: &str, known: &[&str]) -> String {
    let mut m = format!("unknown key `{key}`");
    if !place.is_empty() {
        m.push_str(&format!(" {place}"));
    }
    if let Some(s) = did_you_mean(key, known) {
        m.push_str(&format!("; did you mean `{s}`?"));
    }
    m.push_str(&format!(" (keys: {})", known.join(", ")));
    m
}

/// The field names of a struct that derives `Deserialize` (what serde's `deny_unknown_fields`
/// accepts), read by asking it to deserialize from a probe.
pub(crate) fn fields_of<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(Probe) {
        Err(Found(f)) => f,
        Ok(_) => &[],
    }
}

struct Probe;

#[derive(Debug)]
struct Found(&'static [&'static str]);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe")
    }
}

impl std::error::Error for Found {}

impl serde::de::Error for Found {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Found(&[])
    }
}

impl<'de> serde::Deserializer<'de> for Probe {
    type Error = Found;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found(&[]))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Found> {
        Err(Found(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// serde's message reworded for people; `key` is the key whose value it is about.
///
/// `invalid type: string "many", expected i64` → ``` `concurrency`: expected a whole number,
/// found text "many" ```; `unknown field `x`, expected one of ...` → `unknown key ...`
/// with a suggestion; `missing field `x`` → ``missing key `x` ``.
pub(crate) fn humanize(message: &str, key: Option<&str>) -> String {
    let message = message.trim_end();
    let prefix = key
        .map(|k| format!("`{k}`: "))
        .filter(|p| !message.starts_with(p.trim_end_matches(": ")))
        .unwrap_or_default();
    for head in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(head)
            && let Some((found, expected)) = rest.rsplit_once(", expected ")
        {
            return format!(
                "{prefix}expected {}, found {}",
                expected_words(expected),
                found_words(found)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, rest)) = rest.split_once('`')
    {
        let known: Vec<&str> = rest
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|s| !s.is_empty())
            .collect();
        return unknown_key(field, "", &known);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        return format!("missing key `{rest}");
    }
    format!("{prefix}{message}")
}

fn expected_words(e: &str) -> String {
    match e {
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize"
        | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        "a map" => "a table".into(),
        "a string" | "a borrowed string" | "a character" => "text".into(),
        "a boolean" => "true or false".into(),
        e if e.starts_with("struct ") => "a table".into(),
        e => e.into(),
    }
}

fn found_words(f: &str) -> String {
    let value = |s: &str| s.trim_matches('`').to_owned();
    if let Some(s) = f.strip_prefix("string ") {
        format!("text {s}")
    } else if let Some(s) = f.strip_prefix("integer ") {
        format!("the whole number {}", value(s))
    } else if let Some(s) = f.strip_prefix("floating point ") {
        format!("the number {}", value(s))
    } else if let Some(s) = f.strip_prefix("boolean ") {
        value(s)
    } else if f == "sequence" {
        "a list".into()
    } else if f == "map" {
        "a table".into()
    } else {
        f.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["queue_url", "topic_arn", "concurrency"];
        assert_eq!(did_you_mean("queue_urll", &keys), Some("queue_url"));
        assert_eq!(did_you_mean("Queue-URL", &keys), Some("queue_url"));
        assert_eq!(did_you_mean("concurency", &keys), Some("concurrency"));
        assert_eq!(did_you_mean("zzz", &keys), None);
        assert_eq!(did_you_mean("x", &["y"]), None);
    }

    #[test]
    fn serde_jargon_is_reworded() {
        assert_eq!(
            humanize(
                "invalid type: string \"many\", expected i64",
                Some("concurrency")
            ),
            "`concurrency`: expected a whole number, found text \"many\""
        );
        assert_eq!(
            humanize("invalid type: integer `5`, expected a sequence", None),
            "expected a list, found the whole number 5"
        );
        assert_eq!(
            humanize("invalid type: boolean `true`, expected a string", Some("k")),
            "`k`: expected text, found true"
        );
        assert_eq!(
            humanize("invalid type: sequence, expected a map\n", None),
            "expected a table, found a list"
        );
        assert_eq!(
            humanize(
                "unknown field `nmae`, expected one of `name`, `transition`",
                None
            ),
            "unknown key `nmae`; did you mean `name`? (keys: name, transition)"
        );
        assert_eq!(humanize("missing field `name`", None), "missing key `name`");
    }
}
