//! Compiling a pattern's text the way AWS does: a walk over its JSON tokens that follows
//! AWS's open-source matcher (event-ruler, `JsonRuleCompiler`) step by step, so that the
//! first error found, its wording and the parser position AWS appends to it (Jackson's
//! `at [Source: ...; line: L, column: C]`) are AWS's.
//!
//! Jackson's position is where its parser stands after the last token it read: past a
//! bracket, number or literal; past only the opening quote of a string whose text was not
//! asked for; and past a field name, its colon and the first token of its value (which
//! Jackson reads ahead).

use serde_json::{Number, Value};

use super::{
    AnythingBut, Cond, IpNet, Item, MAX_DEPTH, OR_KEY, Obj, Pattern, PatternError, insert_path,
    parse_cidr, parse_wildcard,
};

/// Field names `$or` alternatives may not use (event-ruler's reserved names).
const RESERVED_IN_OR: [&str; 9] = [
    "exact",
    "equals-ignore-case",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "wildcard",
    "numeric",
    "cidr",
];
/// Jackson shows at most this many characters of the source.
const MAX_SOURCE_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    StartObj,
    EndObj,
    StartArr,
    EndArr,
    Field(String),
    Str(String),
    Num(Number),
    True,
    False,
    Null,
    /// Past the last token.
    End,
}

impl Tok {
    /// The token's text, as Jackson's `getText()` gives it.
    fn text(&self) -> String {
        match self {
            Tok::StartObj => "{".into(),
            Tok::EndObj => "}".into(),
            Tok::StartArr => "[".into(),
            Tok::EndArr => "]".into(),
            Tok::Field(s) | Tok::Str(s) => s.clone(),
            Tok::Num(n) => n.to_string(),
            Tok::True => "true".into(),
            Tok::False => "false".into(),
            Tok::Null => "null".into(),
            Tok::End => String::new(),
        }
    }
}

/// A token and the byte range of its text in the source.
#[derive(Debug, Clone)]
struct Lexed {
    tok: Tok,
    start: usize,
    end: usize,
}

/// Splits valid JSON into tokens (a string followed by `:` is a field name).
fn lex(src: &str) -> Vec<Lexed> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | b',' | b':') {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        if i >= b.len() {
            break;
        }
        let start = i;
        let bracket = match b[i] {
            b'{' => Some(Tok::StartObj),
            b'}' => Some(Tok::EndObj),
            b'[' => Some(Tok::StartArr),
            b']' => Some(Tok::EndArr),
            _ => None,
        };
        let tok = match b[i] {
            _ if bracket.is_some() => {
                i += 1;
                bracket.unwrap_or(Tok::End)
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                let s: String = serde_json::from_str(&src[start..i]).unwrap_or_default();
                let mut j = i;
                while j < b.len() && matches!(b[j], b' ' | b'\t' | b'\n' | b'\r') {
                    j += 1;
                }
                if j < b.len() && b[j] == b':' {
                    Tok::Field(s)
                } else {
                    Tok::Str(s)
                }
            }
            b't' | b'f' | b'n' => {
                let word = if b[i] == b'n' || b[i] == b't' { 4 } else { 5 };
                i = (i + word).min(b.len());
                match &src[start..i] {
                    "true" => Tok::True,
                    "false" => Tok::False,
                    _ => Tok::Null,
                }
            }
            _ => {
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                match serde_json::from_str::<Number>(&src[start..i]) {
                    Ok(n) => Tok::Num(n),
                    Err(_) => break,
                }
            }
        };
        out.push(Lexed { tok, start, end: i });
    }
    out
}

/// A cursor over the tokens that knows where Jackson's parser would stand.
struct Parser<'a> {
    src: &'a str,
    toks: Vec<Lexed>,
    /// The index of the current token (the last one `next` returned), if any.
    cur: Option<usize>,
    /// Whether the current string's text has been read.
    text_read: bool,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Tok {
        let i = self.cur.map_or(0, |c| c + 1);
        self.cur = Some(i);
        self.text_read = false;
        self.toks.get(i).map_or(Tok::End, |l| l.tok.clone())
    }

    /// The current string's text, read (Jackson's `getText()` finishes the string).
    fn text(&mut self) -> String {
        self.text_read = true;
        self.cur
            .and_then(|c| self.toks.get(c))
            .map_or_else(String::new, |l| l.tok.text())
    }

    /// The byte offset where Jackson's parser stands.
    fn offset(&self) -> usize {
        let Some(c) = self.cur else {
            return 0;
        };
        let Some(l) = self.toks.get(c) else {
            return self.src.len();
        };
        let past = |l: &Lexed, read: bool| match l.tok {
            Tok::Str(_) if !read => l.start + 1,
            _ => l.end,
        };
        match &l.tok {
            Tok::Field(_) => self.toks.get(c + 1).map_or(l.end, |v| past(v, false)),
            _ => past(l, self.text_read),
        }
    }

    /// Jackson's `\n at [Source: (String)"..."; line: L, column: C]`.
    fn location(&self) -> String {
        let offset = self.offset().min(self.src.len());
        let before = &self.src[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let total = self.src.chars().count();
        let shown: String = self.src.chars().take(MAX_SOURCE_CHARS).collect();
        let truncated = if total > MAX_SOURCE_CHARS {
            format!("[truncated {} chars]", total - MAX_SOURCE_CHARS)
        } else {
            String::new()
        };
        format!("\n at [Source: (String)\"{shown}\"{truncated}; line: {line}, column: {column}]")
    }

    fn barf<T>(&self, reason: impl Into<String>) -> Result<T, PatternError> {
        Err(PatternError {
            reason: reason.into(),
            location: self.location(),
        })
    }

    /// An error event-ruler catches and raises again: its position appears twice.
    fn barf_twice<T>(&self, reason: impl Into<String>) -> Result<T, PatternError> {
        let at = self.location();
        Err(PatternError {
            reason: reason.into(),
            location: format!("{at}{at}"),
        })
    }
}

/// Errors AWS raises without a parser position (CIDR and complexity checks).
fn plain(reason: String) -> PatternError {
    PatternError {
        reason,
        location: String::new(),
    }
}

/// Compiles the text of a pattern. Text that is not JSON fails with the JSON parser's
/// reason (worded as serde_json words it, not as Jackson does).
pub(super) fn compile(src: &str) -> Result<Pattern, PatternError> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(src) {
        return Err(plain(e.to_string()));
    }
    let mut p = Parser {
        src,
        toks: lex(src),
        cur: None,
        text_read: false,
    };
    if p.next() != Tok::StartObj {
        return p.barf("Filter is not an object");
    }
    Ok(Pattern {
        root: object(&mut p, 0, false)?,
    })
}

fn object(p: &mut Parser<'_>, depth: usize, in_or: bool) -> Result<Obj, PatternError> {
    if depth > MAX_DEPTH {
        return p.barf("Filter nests too deeply");
    }
    let mut obj = Obj::default();
    let mut any = false;
    loop {
        let name = match p.next() {
            Tok::EndObj | Tok::End => break,
            Tok::Field(n) => n,
            other => return p.barf(format!("Unexpected token {}", other.text())),
        };
        any = true;
        if name == OR_KEY {
            obj.ors.push(or_group(p, depth)?);
            continue;
        }
        if in_or && RESERVED_IN_OR.contains(&name.as_str()) {
            return p.barf(format!(
                "{name} is Ruler reserved fieldName which cannot be used inside {OR_KEY}."
            ));
        }
        let item = match p.next() {
            Tok::StartObj => Item::Obj(object(p, depth + 1, in_or)?),
            Tok::StartArr => Item::Conds(conditions(p)?),
            _ => return p.barf(format!("\"{name}\" must be an object or an array")),
        };
        insert_path(&mut obj, &name, item);
    }
    if !any {
        return p.barf("Empty objects are not allowed");
    }
    Ok(obj)
}

fn or_group(p: &mut Parser<'_>, depth: usize) -> Result<Vec<Obj>, PatternError> {
    if p.next() != Tok::StartArr {
        return p.barf(format!("It must be an Array followed with {OR_KEY}."));
    }
    let mut group = Vec::new();
    loop {
        match p.next() {
            Tok::EndArr | Tok::End => break,
            Tok::StartObj => group.push(object(p, depth + 1, true)?),
            _ => {
                return p.barf(format!(
                    "Only JSON object is allowed in array of {OR_KEY} relationship."
                ));
            }
        }
    }
    if group.len() < 2 {
        return p.barf(format!(
            "There must have at least 2 Objects in {OR_KEY} relationship."
        ));
    }
    Ok(group)
}

fn conditions(p: &mut Parser<'_>) -> Result<Vec<Cond>, PatternError> {
    let mut out = Vec::new();
    loop {
        let c = match p.next() {
            Tok::EndArr | Tok::End => break,
            Tok::StartObj => match_expression(p)?,
            Tok::Str(_) => literal_string(p.text()),
            Tok::Num(n) => Cond::Exact(Value::Number(n)),
            Tok::True => Cond::Exact(Value::Bool(true)),
            Tok::False => Cond::Exact(Value::Bool(false)),
            Tok::Null => Cond::Exact(Value::Null),
            _ => return p.barf("Match value must be String, number, true, false, or null"),
        };
        out.push(c);
    }
    if out.is_empty() {
        return p.barf("Empty arrays are not allowed");
    }
    Ok(out)
}

/// A string value of a pattern: an IP address stands for that address, whichever way an
/// event writes it (`2001:db8::1` is `2001:0db8:0:0:0:0:0:1`), as AWS's matcher treats it.
fn literal_string(s: String) -> Cond {
    match s.parse::<std::net::IpAddr>() {
        Ok(addr) => Cond::Cidr(IpNet {
            addr,
            bits: if addr.is_ipv4() { 32 } else { 128 },
        }),
        Err(_) => Cond::Exact(Value::String(s)),
    }
}

/// The end of a one-key match expression.
fn only_one(p: &mut Parser<'_>, c: Cond) -> Result<Cond, PatternError> {
    if p.next() != Tok::EndObj {
        return p.barf("Only one key allowed in match expression");
    }
    Ok(c)
}

fn match_expression(p: &mut Parser<'_>) -> Result<Cond, PatternError> {
    let Tok::Field(name) = p.next() else {
        return p.barf("Match expression name not found");
    };
    match name.as_str() {
        "exact" => {
            if !matches!(p.next(), Tok::Str(_)) {
                return p.barf("exact match pattern must be a string");
            }
            let s = p.text();
            only_one(p, Cond::Exact(Value::String(s)))
        }
        "prefix" | "suffix" => {
            let prefix = name == "prefix";
            match p.next() {
                Tok::StartObj => ignore_case_affix(p, prefix),
                Tok::Str(_) => {
                    let s = p.text();
                    let c = if prefix {
                        Cond::Prefix(s)
                    } else {
                        Cond::Suffix(s)
                    };
                    only_one(p, c)
                }
                _ => p.barf(format!("{name} match pattern must be a string")),
            }
        }
        "numeric" => {
            if p.next() != Tok::StartArr {
                return p.barf("Value of numeric must be an array.");
            }
            let c = numeric(p)?;
            if p.next() != Tok::EndObj {
                return p.barf("Too many elements in numeric expression");
            }
            Ok(c)
        }
        "anything-but" => anything_but(p),
        "exists" => {
            let c = match p.next() {
                Tok::True => Cond::Exists(true),
                Tok::False => Cond::Exists(false),
                _ => return p.barf("exists match pattern must be either true or false."),
            };
            only_one(p, c)
        }
        "cidr" => {
            if !matches!(p.next(), Tok::Str(_)) {
                return p.barf("prefix match pattern must be a string");
            }
            let net = parse_cidr(&p.text()).map_err(plain)?;
            only_one(p, Cond::Cidr(net))
        }
        "equals-ignore-case" => {
            if !matches!(p.next(), Tok::Str(_)) {
                return p.barf("equals-ignore-case match pattern must be a string");
            }
            let s = p.text();
            only_one(p, Cond::EqualsIgnoreCase(s))
        }
        "wildcard" => {
            if !matches!(p.next(), Tok::Str(_)) {
                return p.barf("wildcard match pattern must be a string");
            }
            let w = match parse_wildcard(&p.text()) {
                Ok(w) => w,
                Err(e) if e.starts_with("Rule is too complex") => return Err(plain(e)),
                Err(e) => return p.barf(e),
            };
            only_one(p, Cond::Wildcard(w))
        }
        other => p.barf(format!("Unrecognized match type {other}")),
    }
}

/// `{"prefix" | "suffix": {"equals-ignore-case": s}}`, after the inner `{`.
fn ignore_case_affix(p: &mut Parser<'_>, prefix: bool) -> Result<Cond, PatternError> {
    let Tok::Field(op) = p.next() else {
        return p.barf(if prefix {
            "Prefix expression name not found"
        } else {
            "Suffix expression name not found"
        });
    };
    if op != "equals-ignore-case" {
        let kind = if prefix { "prefix" } else { "suffix" };
        return p.barf(format!("Unsupported {kind} pattern: {op}"));
    }
    if !matches!(p.next(), Tok::Str(_)) {
        return p.barf("equals-ignore-case match pattern must be a string");
    }
    let s = p.text();
    if p.next() != Tok::EndObj {
        return p.barf("Only one key allowed in match expression");
    }
    let c = if prefix {
        Cond::PrefixIgnoreCase(s)
    } else {
        Cond::SuffixIgnoreCase(s)
    };
    only_one(p, c)
}

#[derive(Clone, Copy, PartialEq)]
enum AbKind {
    Plain,
    IgnoreCase,
    Prefix,
    Suffix,
    Wildcard,
}

impl AbKind {
    fn type_error(self) -> &'static str {
        match self {
            AbKind::IgnoreCase => {
                "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
            }
            AbKind::Wildcard => "wildcard match pattern must be a string",
            _ => "prefix/suffix match pattern must be a string",
        }
    }

    fn affix(self) -> bool {
        matches!(self, AbKind::Prefix | AbKind::Suffix)
    }
}

fn anything_but(p: &mut Parser<'_>) -> Result<Cond, PatternError> {
    let mut kind = AbKind::Plain;
    let mut tok = p.next();
    if tok == Tok::StartObj {
        let Tok::Field(op) = p.next() else {
            return p.barf("Anything-But expression name not found");
        };
        kind = match op.as_str() {
            "equals-ignore-case" => AbKind::IgnoreCase,
            "prefix" => AbKind::Prefix,
            "suffix" => AbKind::Suffix,
            "wildcard" => AbKind::Wildcard,
            other => return p.barf(format!("Unsupported anything-but pattern: {other}")),
        };
        tok = p.next();
    }
    if !matches!(tok, Tok::StartArr | Tok::Str(_) | Tok::Num(_)) {
        return p.barf("Value of anything-but must be an array or single string/number value.");
    }
    let ab = match (kind, tok) {
        (AbKind::Plain, Tok::StartArr) => plain_list(p)?,
        (AbKind::Plain, Tok::Str(_)) => AnythingBut::Strings(vec![p.text()]),
        (AbKind::Plain, Tok::Num(n)) => AnythingBut::Numbers(vec![n.as_f64().unwrap_or(f64::NAN)]),
        (kind, Tok::StartArr) => {
            let mut values = Vec::new();
            loop {
                match p.next() {
                    Tok::EndArr | Tok::End => break,
                    Tok::Str(_) => {
                        let s = p.text();
                        if kind.affix() && s.is_empty() {
                            return p.barf_twice("Null prefix/suffix not allowed");
                        }
                        values.push(s);
                    }
                    _ => return p.barf_twice(kind.type_error()),
                }
            }
            affix_set(p, kind, values)?
        }
        (kind, Tok::Str(_)) => {
            let s = p.text();
            if kind.affix() && s.is_empty() {
                return p.barf("Null prefix/suffix not allowed");
            }
            affix_set(p, kind, vec![s])?
        }
        (kind, _) => return p.barf(kind.type_error()),
    };
    if p.next() != Tok::EndObj {
        return p.barf("Too many elements in numeric expression");
    }
    if kind != AbKind::Plain && p.next() != Tok::EndObj {
        return p.barf("Too many elements in numeric expression");
    }
    Ok(Cond::AnythingBut(ab))
}

fn affix_set(
    p: &Parser<'_>,
    kind: AbKind,
    values: Vec<String>,
) -> Result<AnythingBut, PatternError> {
    Ok(match kind {
        AbKind::IgnoreCase => AnythingBut::IgnoreCase(values),
        AbKind::Prefix => AnythingBut::Prefix(values),
        AbKind::Suffix => AnythingBut::Suffix(values),
        _ => {
            let mut out = Vec::new();
            for v in &values {
                match parse_wildcard(v) {
                    Ok(w) => out.push(w),
                    Err(e) if e.starts_with("Rule is too complex") => return Err(plain(e)),
                    Err(e) => return p.barf(e),
                }
            }
            AnythingBut::Wildcard(out)
        }
    })
}

/// `{"anything-but": [..]}`: all strings or all numbers.
fn plain_list(p: &mut Parser<'_>) -> Result<AnythingBut, PatternError> {
    let mut strings = Vec::new();
    let mut numbers = Vec::new();
    loop {
        match p.next() {
            Tok::EndArr | Tok::End => break,
            Tok::Str(_) => strings.push(p.text()),
            Tok::Num(n) => numbers.push(n.as_f64().unwrap_or(f64::NAN)),
            _ => {
                return p
                    .barf_twice("Inside anything but list, start|null|boolean is not supported.");
            }
        }
    }
    match (strings.is_empty(), numbers.is_empty()) {
        (false, true) => Ok(AnythingBut::Strings(strings)),
        (true, false) => Ok(AnythingBut::Numbers(numbers)),
        _ => p.barf(
            "Inside anything but list, either all values are number or string, mixed type is not supported",
        ),
    }
}

/// `{"numeric": [..]}`, after the `[`.
fn numeric(p: &mut Parser<'_>) -> Result<Cond, PatternError> {
    let op = match p.next() {
        Tok::Str(_) => p.text(),
        other => return p.barf(format!("Invalid member in numeric match: {}", other.text())),
    };
    let tok = p.next();
    let value_of = |op: &str| {
        if op == "=" {
            "equals".to_owned()
        } else {
            op.to_owned()
        }
    };
    let Tok::Num(n) = tok else {
        return match op.as_str() {
            "=" | "<" | "<=" | ">" | ">=" => {
                p.barf(format!("Value of {} must be numeric", value_of(&op)))
            }
            other => p.barf(format!("Unrecognized numeric range operator: {other}")),
        };
    };
    let v = n.as_f64().unwrap_or(f64::NAN);
    match op.as_str() {
        "=" | "<" | "<=" => {
            if p.next() != Tok::EndArr {
                return p.barf("Too many elements in numeric expression");
            }
            Ok(match op.as_str() {
                "=" => Cond::Numeric(Some((v, true)), Some((v, true))),
                _ => Cond::Numeric(None, Some((v, op == "<="))),
            })
        }
        ">" | ">=" => {
            let low = (v, op == ">=");
            let top_op = match p.next() {
                Tok::EndArr => return Ok(Cond::Numeric(Some(low), None)),
                Tok::Str(_) => p.text(),
                other => return p.barf(format!("Bad value in numeric range: {}", other.text())),
            };
            if top_op != "<" && top_op != "<=" {
                return p.barf(format!("Bad numeric range operator: {top_op}"));
            }
            let Tok::Num(t) = p.next() else {
                return p.barf(format!("Value of {top_op} must be numeric"));
            };
            let top = t.as_f64().unwrap_or(f64::NAN);
            if p.next() != Tok::EndArr {
                return p.barf("Too many terms in numeric range expression");
            }
            if low.0 >= top {
                return p.barf("Bottom must be less than top");
            }
            Ok(Cond::Numeric(Some(low), Some((top, top_op == "<="))))
        }
        other => p.barf(format!("Unrecognized numeric range operator: {other}")),
    }
}
