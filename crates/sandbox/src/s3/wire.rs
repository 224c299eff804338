//! Recognising an S3 request (path- and virtual-hosted-style) and decoding its body
//! (`aws-chunked`, CRC32 checksums).

use super::*;

/// Whether a request is for S3: not JSON (`X-Amz-Target`) nor Query (form `POST`, or
/// `Action=` in the query string), and either signed for `s3` or unsigned with a
/// bucket-like first path segment or a virtual-hosted bucket in `Host`.
pub(crate) fn is_s3_request(method: &Method, uri: &http::Uri, headers: &HeaderMap) -> bool {
    if headers.contains_key("x-amz-target") {
        return false;
    }
    let form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| {
            c.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if (*method == Method::POST && form) || uri.query().is_some_and(|q| q.contains("Action=")) {
        return false;
    }
    match crate::server::credential_scope(headers, uri.query()) {
        Some((_, svc)) => svc == "s3",
        None => {
            let host = headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            host_bucket(host).is_some()
                || uri
                    .path()
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .is_some_and(valid_bucket_name)
        }
    }
}

/// The bucket named by a virtual-hosted-style `Host` (`b.localhost:4566`,
/// `b.s3.amazonaws.com`, `b.s3.us-east-1.amazonaws.com`).
pub(super) fn host_bucket(host: &str) -> Option<String> {
    let h = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let h = h.to_ascii_lowercase();
    let bucket = if let Some(b) = h.strip_suffix(".localhost") {
        b.to_owned()
    } else if let Some((b, _)) = h.split_once(".s3.") {
        b.to_owned()
    } else if let Some((b, _)) = h.split_once(".s3-") {
        b.to_owned()
    } else {
        return None;
    };
    valid_bucket_name(&bucket).then_some(bucket)
}

/// S3's bucket naming rules (3–63 characters of lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit).
pub(crate) fn valid_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.as_bytes()[0].is_ascii_alphanumeric()
        && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric()
        && !b.contains("..")
}

pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn query_map(uri: &http::Uri) -> BTreeMap<String, String> {
    uri.query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// aws-chunked
// ---------------------------------------------------------------------------------------

/// A decoded `aws-chunked` body: the payload and the trailing headers (lower-cased names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) data: Vec<u8>,
    pub(crate) trailers: Vec<(String, String)>,
}

/// Decodes an `aws-chunked` body: `hex-size[;chunk-signature=…]\r\n<bytes>\r\n` repeated,
/// a zero-size chunk, then optional `name:value\r\n` trailers and a final `\r\n`. Chunk
/// signatures are not checked. Never panics; a malformed body is an error naming why.
pub(crate) fn decode_aws_chunked(body: &[u8]) -> Result<Decoded, String> {
    fn line(body: &[u8], pos: usize) -> Option<(&[u8], usize)> {
        let rest = body.get(pos..)?;
        let i = rest.windows(2).position(|w| w == b"\r\n")?;
        Some((&rest[..i], pos + i + 2))
    }
    let mut data = Vec::new();
    let mut pos = 0;
    loop {
        let (header, next) = line(body, pos).ok_or("chunk header is not terminated by CRLF")?;
        let header = std::str::from_utf8(header).map_err(|_| "chunk header is not UTF-8")?;
        let size_hex = header.split(';').next().unwrap_or_default().trim();
        if size_hex.is_empty() || size_hex.len() > 16 {
            return Err(format!("invalid chunk size {size_hex:?}"));
        }
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("invalid chunk size {size_hex:?}"))?;
        pos = next;
        if size == 0 {
            break;
        }
        let end = pos
            .checked_add(size)
            .filter(|e| *e <= body.len())
            .ok_or("chunk is longer than the body")?;
        data.extend_from_slice(&body[pos..end]);
        if body.get(end..end + 2) != Some(b"\r\n".as_slice()) {
            return Err("chunk data is not followed by CRLF".into());
        }
        pos = end + 2;
    }
    let mut trailers = Vec::new();
    while pos < body.len() {
        let Some((l, next)) = line(body, pos) else {
            // A last trailer without its CRLF: accept it, as S3 does.
            let l = &body[pos..];
            push_trailer(&mut trailers, l)?;
            break;
        };
        pos = next;
        if l.is_empty() {
            break;
        }
        push_trailer(&mut trailers, l)?;
    }
    Ok(Decoded { data, trailers })
}

fn push_trailer(out: &mut Vec<(String, String)>, l: &[u8]) -> Result<(), String> {
    let l = std::str::from_utf8(l).map_err(|_| "trailer is not UTF-8")?;
    let (k, v) = l
        .split_once(':')
        .ok_or_else(|| format!("malformed trailer {l:?}"))?;
    out.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    Ok(())
}

/// CRC-32 (IEEE), as S3's `x-amz-checksum-crc32` (base64 of the big-endian value).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut c = !0u32;
    for &b in data {
        c = t[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

pub(crate) fn crc32_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc32(data).to_be_bytes())
}
