//! Identifiers in the shapes AWS uses.

use rand::Rng;

/// (region, resource) of `arn:<partition>:<service>:<region>:<account>:<resource>`, the
/// resource being all that follows the fifth colon.
pub(crate) fn split_arn<'a>(arn: &'a str, service: &str) -> Option<(&'a str, &'a str)> {
    let mut p = arn.splitn(6, ':');
    let (a, _partition, svc, region, _account, resource) = (
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
        p.next()?,
    );
    (a == "arn" && svc == service).then_some((region, resource))
}

/// A request id / token: a UUID v4, 36 characters.
pub(crate) fn uuid() -> String {
    // From the thread-local generator: `Uuid::new_v4` makes a getrandom system call for
    // every id, and a lifecycle action takes several ids.
    let bytes: [u8; 16] = rand::rng().random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// `prefix-` followed by 17 lowercase hex digits, like `i-0853dfa8ce1627af9`.
pub(crate) fn hex_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + 18);
    s.push_str(prefix);
    s.push('-');
    for _ in 0..17 {
        s.push(char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'));
    }
    s
}

/// 32 hex digits, for message ids and MD5-like values.
pub(crate) fn hex32() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .simple()
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes() {
        let i = super::hex_id("i");
        assert_eq!(i.len(), 19);
        assert!(i.starts_with("i-"));
        let u = super::uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4', "version 4: {u}");
        assert!(
            matches!(u.as_bytes()[19], b'8' | b'9' | b'a' | b'b'),
            "RFC 4122 variant: {u}"
        );
        assert_eq!(super::hex32().len(), 32);
    }
}
