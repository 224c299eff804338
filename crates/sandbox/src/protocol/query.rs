//! Query-protocol parameters (spec §4.2): `Name=value`, lists as `Name.member.N` (AWS
//! Query) or `Name.N` (EC2 Query), structures as `Name.Field`, an empty list as `Name=`.

use std::collections::BTreeMap;

use super::AwsError;

/// The decoded parameters of a Query request, by full dotted name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Params {
    map: BTreeMap<String, String>,
}

/// The most parameters one request may carry before it is refused.
pub(crate) const MAX_PARAMS: usize = 10_000;

impl Params {
    /// Decodes an `application/x-www-form-urlencoded` body or query string.
    pub(crate) fn parse(input: &[u8]) -> Result<Params, AwsError> {
        let mut map = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(input) {
            if map.len() >= MAX_PARAMS {
                return Err(AwsError::validation(format!(
                    "too many parameters (more than {MAX_PARAMS})"
                )));
            }
            map.insert(k.into_owned(), v.into_owned());
        }
        Ok(Params { map })
    }

    #[cfg(test)]
    pub(crate) fn from_pairs<I, K, V>(pairs: I) -> Params
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Params {
            map: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub(crate) fn insert(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.map.insert(k.into(), v.into());
    }

    /// The value of `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// The value of `name`, if present and not empty.
    pub(crate) fn get_nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|s| !s.is_empty())
    }

    /// The value of a required parameter, or the AWS "must not be null" error.
    pub(crate) fn required(&self, name: &str) -> Result<&str, AwsError> {
        self.get(name).ok_or_else(|| AwsError::missing(name))
    }

    /// A required string of `min..=max` characters.
    pub(crate) fn required_len(
        &self,
        name: &str,
        min: usize,
        max: usize,
    ) -> Result<&str, AwsError> {
        let v = self.required(name)?;
        check_len(name, v, min, max)?;
        Ok(v)
    }

    /// An optional string of `min..=max` characters.
    pub(crate) fn opt_len(
        &self,
        name: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<&str>, AwsError> {
        match self.get(name) {
            Some(v) => check_len(name, v, min, max).map(|()| Some(v)),
            None => Ok(None),
        }
    }

    /// An optional integer.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(s) => s.trim().parse::<i64>().map(Some).map_err(|_| {
                AwsError::validation(format!(
                    "Invalid value for parameter {name}: {s:?} is not an integer"
                ))
            }),
        }
    }

    /// A required integer.
    pub(crate) fn required_int(&self, name: &str) -> Result<i64, AwsError> {
        self.int(name)?.ok_or_else(|| AwsError::missing(name))
    }

    /// A required boolean.
    pub(crate) fn required_bool(&self, name: &str) -> Result<bool, AwsError> {
        self.bool(name)?.ok_or_else(|| AwsError::missing(name))
    }

    /// An optional boolean (`true`/`false`, case-insensitive).
    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(s) => Err(AwsError::validation(format!(
                "Invalid value for parameter {name}: {s:?} is not a boolean (true or false)"
            ))),
        }
    }

    /// A list of scalars: `name.member.1`, `name.member.2` ... (AWS Query), or `name.1` ...
    /// (EC2 Query). `name=` alone is an empty list.
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        let mut items: Vec<(u32, String)> = Vec::new();
        for prefix in [format!("{name}.member."), format!("{name}.")] {
            for (k, v) in self.map.range(prefix.clone()..) {
                let Some(rest) = k.strip_prefix(&prefix) else {
                    break;
                };
                if let Ok(i) = rest.parse::<u32>() {
                    items.push((i, v.clone()));
                }
            }
            if !items.is_empty() {
                break;
            }
        }
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// A list of structures: the sub-parameters of `name.member.N.*` (or `name.N.*`), in
    /// index order.
    pub(crate) fn struct_list(&self, name: &str) -> Vec<Params> {
        let mut items: BTreeMap<u32, Params> = BTreeMap::new();
        for prefix in [format!("{name}.member."), format!("{name}.")] {
            for (k, v) in self.map.range(prefix.clone()..) {
                let Some(rest) = k.strip_prefix(&prefix) else {
                    break;
                };
                let Some((idx, field)) = rest.split_once('.') else {
                    continue;
                };
                if let Ok(i) = idx.parse::<u32>() {
                    items.entry(i).or_default().insert(field, v.clone());
                }
            }
            if !items.is_empty() {
                break;
            }
        }
        items.into_values().collect()
    }

    /// The sub-parameters of a structure `name.*`.
    pub(crate) fn sub(&self, name: &str) -> Params {
        let prefix = format!("{name}.");
        let mut out = Params::default();
        for (k, v) in self.map.range(prefix.clone()..) {
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            out.insert(rest, v.clone());
        }
        out
    }
}

/// Checks a string length constraint, worded as AWS does.
pub(crate) fn check_len(name: &str, v: &str, min: usize, max: usize) -> Result<(), AwsError> {
    let n = v.chars().count();
    if n < min || n > max {
        let constraint = if n < min {
            format!("Member must have length greater than or equal to {min}")
        } else {
            format!("Member must have length less than or equal to {max}")
        };
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: {constraint}",
            truncate(v, 64),
            lower_first(name)
        )));
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n).collect::<String>() + "..."
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lists_and_structs() {
        let p = Params::parse(
            b"Action=X&Names.member.2=b&Names.member.1=a&Names.member.10=c\
              &Tags.member.1.Key=k1&Tags.member.1.Value=v1&Tags.member.2.Key=k2\
              &LaunchTemplate.LaunchTemplateName=lt&LaunchTemplate.Version=%24Latest&Empty=",
        )
        .unwrap();
        assert_eq!(p.list("Names"), vec!["a", "b", "c"]);
        let tags = p.struct_list("Tags");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].get("Value"), Some("v1"));
        assert_eq!(p.sub("LaunchTemplate").get("Version"), Some("$Latest"));
        assert!(p.list("Empty").is_empty());
        assert_eq!(p.get("Empty"), Some(""));
    }

    #[test]
    fn ec2_lists() {
        let p = Params::parse(
            b"InstanceId.1=i-a&InstanceId.2=i-b&Filter.1.Name=tag:x&Filter.1.Value.1=y",
        )
        .unwrap();
        assert_eq!(p.list("InstanceId"), vec!["i-a", "i-b"]);
        let f = p.struct_list("Filter");
        assert_eq!(f[0].get("Name"), Some("tag:x"));
        assert_eq!(f[0].list("Value"), vec!["y"]);
    }

    #[test]
    fn plus_is_space_and_errors_name_the_parameter() {
        let p = Params::parse(b"A=a+b&N=x&B=maybe").unwrap();
        assert_eq!(p.get("A"), Some("a b"));
        assert!(p.int("N").unwrap_err().message.contains("N"));
        assert!(p.bool("B").unwrap_err().message.contains("B"));
        assert!(
            p.required("Missing")
                .unwrap_err()
                .message
                .contains("missing")
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(p) = Params::parse(&bytes) {
                let _ = p.list("A");
                let _ = p.struct_list("A");
                let _ = p.int("A");
            }
        }
    }
}
