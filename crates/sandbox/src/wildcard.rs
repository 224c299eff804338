//! The sandbox's one wildcard matcher, for IAM policies (`Action`, `Resource`,
//! `StringLike`, `ArnLike`) and EC2 filter values. (EventBridge's `{"wildcard": …}` has
//! escapes and its own matcher in `events::pattern`.)
//!
//! `*` matches any run of characters, empty included (`/` and `:` are ordinary
//! characters). Matching is case-sensitive; a caller that wants otherwise lowercases both
//! sides (IAM does for actions). What `?` means differs by service, so it is a parameter.

/// What `?` means in a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Question {
    /// Any one character: IAM policies and EC2 filter values.
    AnyChar,
}

/// Whether `text` matches `pattern` (the whole of it).
pub(crate) fn matches(pattern: &str, text: &str, question: Question) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let one = |c: char, x: char| c == x || (c == '?' && question == Question::AnyChar);
    let (mut pi, mut ti) = (0usize, 0usize);
    // The last `*` seen and the text position it has been tried up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && one(p[pi], t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::Question::AnyChar;
    use super::*;

    #[test]
    fn iam_patterns() {
        assert!(matches("a*b?c", "a/x:yb1c", AnyChar));
        assert!(!matches("a*b?c", "abc", AnyChar));
        assert!(matches("*", "", AnyChar));
    }

    #[test]
    fn ec2_filter_values() {
        assert!(matches("web-*", "web-1", AnyChar));
        assert!(matches("*", "", AnyChar));
        assert!(matches("a?c", "abc", AnyChar));
        assert!(!matches("a?c", "ac", AnyChar));
        assert!(matches("*b*", "abc", AnyChar));
        assert!(!matches("web", "web-1", AnyChar));
    }

    #[test]
    fn case_sensitive_and_whole_text() {
        assert!(!matches("Web*", "web-1", AnyChar));
        assert!(!matches("web", "web-1", AnyChar));
        assert!(!matches("*a", "ab", AnyChar));
    }

    #[test]
    fn a_star_in_the_text_is_matched_like_any_character() {
        assert!(matches("*a", "*ba", AnyChar));
        assert!(matches("a*", "a*", AnyChar));
    }
}
