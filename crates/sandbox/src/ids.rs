//! Identifiers in the shapes AWS uses.

use rand::Rng;

/// A request id / token: a UUID v4, 36 characters.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `prefix-` followed by 17 lowercase hex digits, like `i-0853dfa8ce1627af9`.
pub fn hex_id(prefix: &str) -> String {
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
pub fn hex32() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes() {
        let i = super::hex_id("i");
        assert_eq!(i.len(), 19);
        assert!(i.starts_with("i-"));
        assert_eq!(super::uuid().len(), 36);
    }
}
