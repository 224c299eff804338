//! Serving S3: `serve`, the dispatch of a request to its operation, and one function per
//! operation.

use super::wire::*;
use super::*;

/// Serves one S3 request (already recognised by [`is_s3_request`]).
pub(crate) async fn serve(
    sb: &Sandbox,
    parts: http::request::Parts,
    body: Body,
    request_id: String,
    host: String,
) -> Response {
    let render = |e: AwsError| {
        let mut r = e.render(Service::S3, Wire::RestXml, &request_id);
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            r.headers_mut().insert("x-amz-request-id", v);
        }
        // HEAD answers carry no body.
        if parts.method == Method::HEAD {
            *r.body_mut() = Body::empty();
        }
        r
    };
    let body = match http_body_util::Limited::new(body, MAX_OBJECT_BYTES)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return render(
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    AwsError::new(
                        400,
                        "EntityTooLarge",
                        format!(
                            "Your proposed upload exceeds the sandbox's maximum of {MAX_OBJECT_BYTES} bytes"
                        ),
                    )
                } else {
                    AwsError::new(
                        400,
                        "IncompleteBody",
                        format!("Could not read the body: {e}"),
                    )
                },
            );
        }
    };
    let region = crate::server::credential_scope(&parts.headers, parts.uri.query())
        .map(|(r, _)| r)
        .filter(|r| crate::world::is_region_name(r))
        .unwrap_or_else(|| DEFAULT_REGION.to_owned());

    // Bucket and key, from Host or path.
    let path = parts.uri.path();
    let (bucket, key) = match host_bucket(&host) {
        Some(b) => (Some(b), percent_decode(path.trim_start_matches('/'))),
        None => {
            let p = path.trim_start_matches('/');
            match p.split_once('/') {
                Some((b, k)) => (Some(percent_decode(b)), percent_decode(k)),
                None if p.is_empty() => (None, String::new()),
                None => (Some(percent_decode(p)), String::new()),
            }
        }
    };
    let q = query_map(&parts.uri);
    let op = operation(
        &parts.method,
        bucket.is_some(),
        !key.is_empty(),
        &q,
        &parts.headers,
    );

    if let Some(e) = crate::iam::authorize(
        sb,
        &parts.headers,
        parts.uri.query(),
        Service::S3,
        op,
        &region,
        |_| vec![crate::iam::s3_check(op, bucket.as_deref(), &key)],
    ) {
        return render(e);
    }
    let verdict = {
        let mut rules = sb.faults();
        if rules.is_empty() {
            faults::Verdict::default()
        } else {
            faults::judge(&mut rules, Service::S3, op, false)
        }
    };
    if let Some(d) = verdict.delay {
        tokio::time::sleep(d).await;
    }
    if let Some(e) = verdict.error {
        return render(e);
    }
    tracing::debug!(service = "s3", op, region = %region, "request");

    let req = Req {
        method: &parts.method,
        headers: &parts.headers,
        query: &q,
        bucket: bucket.as_deref().unwrap_or_default(),
        key: &key,
        body,
        region: &region,
    };
    let prepared = (op == "PutObject").then(|| prepare_put(&req));
    let result = {
        let mut w = sb.lock();
        match prepared {
            Some(p) => p.and_then(|o| put_object(&mut w, &req, o)),
            None => run(&mut w, op, &req),
        }
    };
    sb.poke();
    match result {
        Ok(mut r) => {
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                h.insert("x-amz-request-id", v.clone());
                h.insert("x-amzn-requestid", v);
            }
            r
        }
        Err(e) => render(e),
    }
}

/// The S3 operation a request is.
fn operation(
    method: &Method,
    has_bucket: bool,
    has_key: bool,
    q: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> &'static str {
    match (method.as_str(), has_bucket, has_key) {
        ("GET", false, _) => "ListBuckets",
        ("PUT", true, false) => "CreateBucket",
        ("HEAD", true, false) => "HeadBucket",
        ("DELETE", true, false) => "DeleteBucket",
        ("GET", true, false) if q.contains_key("location") => "GetBucketLocation",
        ("GET", true, false) if q.get("list-type").is_some_and(|v| v == "2") => "ListObjectsV2",
        ("GET", true, false) => "ListObjects",
        ("PUT", true, true) if headers.contains_key("x-amz-copy-source") => "CopyObject",
        ("PUT", true, true) => "PutObject",
        ("GET", true, true) => "GetObject",
        ("HEAD", true, true) => "HeadObject",
        ("DELETE", true, true) => "DeleteObject",
        _ => "Unsupported",
    }
}

struct Req<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    query: &'a BTreeMap<String, String>,
    bucket: &'a str,
    key: &'a str,
    body: Bytes,
    region: &'a str,
}

impl Req<'_> {
    /// The user metadata the request sets: its `x-amz-meta-*` headers.
    fn user_meta(&self) -> BTreeMap<String, String> {
        self.headers
            .iter()
            .filter_map(|(k, v)| {
                let k = k.as_str().strip_prefix("x-amz-meta-")?;
                Some((k.to_owned(), v.to_str().ok()?.to_owned()))
            })
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn bucket_mut<'w>(world: &'w mut World, name: &str) -> Option<&'w mut Bucket> {
    world
        .regions
        .values_mut()
        .find_map(|r| r.s3.buckets.get_mut(name))
}

fn bucket_region(world: &World, name: &str) -> Option<String> {
    world
        .regions
        .iter()
        .find(|(_, r)| r.s3.buckets.contains_key(name))
        .map(|(n, _)| n.clone())
}

fn response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r
}

fn xml(doc: String) -> Response {
    let mut r = response(
        StatusCode::OK,
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{doc}"),
    );
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

fn set(h: &mut HeaderMap, name: &'static str, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(name, v);
    }
}

fn http_date(ms: Millis) -> String {
    to_datetime(ms)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn run(world: &mut World, op: &str, r: &Req<'_>) -> Result<Response, AwsError> {
    match op {
        "ListBuckets" => list_buckets(world),
        "CreateBucket" => create_bucket(world, r),
        "HeadBucket" => head_bucket(world, r),
        "GetBucketLocation" => get_bucket_location(world, r),
        "DeleteBucket" => delete_bucket(world, r),
        "ListObjectsV2" | "ListObjects" => list_objects(world, op == "ListObjectsV2", r),
        "PutObject" => prepare_put(r).and_then(|o| put_object(world, r, o)),
        "CopyObject" => copy_object(world, r),
        "GetObject" | "HeadObject" => get_object(world, op == "HeadObject", r),
        "DeleteObject" => delete_object(world, r),
        _ => Err(AwsError::new(
            501,
            "NotImplemented",
            format!(
                "The sandbox does not implement {} {} for S3",
                r.method,
                if r.key.is_empty() {
                    "on a bucket"
                } else {
                    "on an object"
                }
            ),
        )),
    }
}

fn list_buckets(world: &mut World) -> Result<Response, AwsError> {
    let mut all: Vec<(&String, Millis)> = world
        .regions
        .values()
        .flat_map(|reg| reg.s3.buckets.iter().map(|(n, b)| (n, b.created)))
        .collect();
    all.sort();
    let mut w = XmlWriter::root("ListAllMyBucketsResult", Some(NS));
    w.start("Owner")
        .elem("ID", crate::ACCOUNT_ID)
        .elem("DisplayName", "sandbox")
        .end();
    w.start("Buckets");
    for (n, c) in all {
        w.start("Bucket")
            .elem("Name", n)
            .elem("CreationDate", iso_millis(c))
            .end();
    }
    w.end();
    Ok(xml(w.finish_bare()))
}

fn create_bucket(world: &mut World, r: &Req<'_>) -> Result<Response, AwsError> {
    let now = world.now;
    if !valid_bucket_name(r.bucket) {
        return Err(AwsError::new(
            400,
            "InvalidBucketName",
            "The specified bucket is not valid.",
        ));
    }
    let mut location = r.region.to_owned();
    if let Some(c) = location_constraint(&r.body)?
        && !c.is_empty()
    {
        location = c;
    }
    if let Some(existing) = bucket_region(world, r.bucket) {
        // us-east-1 answers 200 to re-creating one's own bucket there (legacy).
        if !(existing == "us-east-1" && location == "us-east-1") {
            return Err(AwsError::new(
                409,
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it.",
            ));
        }
    } else {
        world.region(&location).s3.buckets.insert(
            r.bucket.to_owned(),
            Bucket {
                created: now,
                objects: BTreeMap::new(),
            },
        );
    }
    let mut resp = response(StatusCode::OK, Body::empty());
    set(resp.headers_mut(), "location", &format!("/{}", r.bucket));
    Ok(resp)
}

fn head_bucket(world: &mut World, r: &Req<'_>) -> Result<Response, AwsError> {
    let region = bucket_region(world, r.bucket).ok_or_else(|| no_bucket(r.bucket))?;
    let mut resp = response(StatusCode::OK, Body::empty());
    set(resp.headers_mut(), "x-amz-bucket-region", &region);
    Ok(resp)
}

fn get_bucket_location(world: &mut World, r: &Req<'_>) -> Result<Response, AwsError> {
    let region = bucket_region(world, r.bucket).ok_or_else(|| no_bucket(r.bucket))?;
    let doc = if region == "us-east-1" {
        format!("<LocationConstraint xmlns=\"{NS}\"/>")
    } else {
        format!("<LocationConstraint xmlns=\"{NS}\">{region}</LocationConstraint>")
    };
    Ok(xml(doc))
}

fn delete_bucket(world: &mut World, r: &Req<'_>) -> Result<Response, AwsError> {
    let region = bucket_region(world, r.bucket).ok_or_else(|| no_bucket(r.bucket))?;
    let s3 = &mut world.region(&region).s3;
    if s3
        .buckets
        .get(r.bucket)
        .is_some_and(|b| !b.objects.is_empty())
    {
        return Err(AwsError::new(
            409,
            "BucketNotEmpty",
            "The bucket you tried to delete is not empty",
        ));
    }
    s3.buckets.remove(r.bucket);
    Ok(response(StatusCode::NO_CONTENT, Body::empty()))
}

fn delete_object(world: &mut World, r: &Req<'_>) -> Result<Response, AwsError> {
    let b = bucket_mut(world, r.bucket).ok_or_else(|| no_bucket(r.bucket))?;
    b.objects.remove(r.key);
    Ok(response(StatusCode::NO_CONTENT, Body::empty()))
}

/// The text of the first `<tag>…</tag>` in a small XML document.
/// The `LocationConstraint` of a `CreateBucketConfiguration` body; an empty body has none,
/// a body that is not well-formed XML is `MalformedXML`.
fn location_constraint(body: &[u8]) -> Result<Option<String>, AwsError> {
    use quick_xml::events::Event;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let malformed = || {
        AwsError::new(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    };
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().check_end_names = true;
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut in_location = false;
    let mut location = None;
    loop {
        match reader.read_event_into(&mut buf).map_err(|_| malformed())? {
            Event::Start(e) => {
                depth += 1;
                in_location = e.local_name().as_ref() == "LocationConstraint";
            }
            Event::End(_) => {
                depth = depth.checked_sub(1).ok_or_else(malformed)?;
                in_location = false;
            }
            Event::Text(t) if in_location => {
                let text = t.xml10_content();
                location = Some(text.trim().to_owned());
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if depth != 0 {
        return Err(malformed());
    }
    Ok(location)
}

/// Decodes, verifies and hashes a PutObject body, outside the world lock.
fn prepare_put(r: &Req<'_>) -> Result<Object, AwsError> {
    let chunked = r
        .header("content-encoding")
        .is_some_and(|e| e.split(',').any(|p| p.trim() == "aws-chunked"))
        || r.header("x-amz-content-sha256")
            .is_some_and(|s| s.starts_with("STREAMING-"));
    let (data, trailers) = if chunked {
        let d = decode_aws_chunked(&r.body)
            .map_err(|e| invalid_request(format!("Malformed aws-chunked body: {e}")))?;
        if let Some(n) = r.header("x-amz-decoded-content-length") {
            let n: usize = n
                .trim()
                .parse()
                .map_err(|_| invalid_request("x-amz-decoded-content-length is not a number"))?;
            if n != d.data.len() {
                return Err(AwsError::new(
                    400,
                    "IncompleteBody",
                    format!(
                        "x-amz-decoded-content-length is {n} but the decoded body has {} bytes",
                        d.data.len()
                    ),
                ));
            }
        }
        (Bytes::from(d.data), d.trailers)
    } else {
        (r.body.clone(), Vec::new())
    };
    let sent_crc = trailers
        .iter()
        .find(|(k, _)| k == "x-amz-checksum-crc32")
        .map(|(_, v)| v.clone())
        .or_else(|| r.header("x-amz-checksum-crc32").map(str::to_owned));
    let crc = crc32_b64(&data);
    if let Some(sent) = &sent_crc
        && *sent != crc
    {
        return Err(AwsError::new(
            400,
            "BadDigest",
            "The CRC32 you specified did not match the calculated checksum.",
        ));
    }
    if let Some(md5) = r.header("content-md5") {
        let got = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&data));
        if md5.trim() != got {
            return Err(AwsError::new(
                400,
                "BadDigest",
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    let meta = r.user_meta();
    Ok(Object {
        etag: format!("\"{}\"", hex(&Md5::digest(&data))),
        data,
        modified: 0,
        content_type: r.header("content-type").map(str::to_owned),
        crc32: sent_crc.map(|_| crc),
        meta,
    })
}

fn put_object(world: &mut World, r: &Req<'_>, mut obj: Object) -> Result<Response, AwsError> {
    obj.modified = world.now;
    let b = bucket_mut(world, r.bucket).ok_or_else(|| no_bucket(r.bucket))?;
    let mut resp = response(StatusCode::OK, Body::empty());
    let h = resp.headers_mut();
    set(h, "etag", &obj.etag);
    if let Some(c) = &obj.crc32 {
        set(h, "x-amz-checksum-crc32", c);
    }
    b.objects.insert(r.key.to_owned(), obj);
    Ok(resp)
}

fn copy_object(world: &mut World, r: &Req<'_>) -> Result<Response, AwsError> {
    let now = world.now;
    let src = percent_decode(r.header("x-amz-copy-source").unwrap_or_default());
    let src = src.trim_start_matches('/');
    let src = src.split("?versionId=").next().unwrap_or(src);
    let (sb, sk) = src
        .split_once('/')
        .ok_or_else(|| invalid_request("x-amz-copy-source must be bucket/key"))?;
    let mut obj = bucket_mut(world, sb)
        .ok_or_else(|| no_bucket(sb))?
        .objects
        .get(sk)
        .cloned()
        .ok_or_else(no_key)?;
    obj.modified = now;
    if r.header("x-amz-metadata-directive") == Some("REPLACE") {
        obj.content_type = r.header("content-type").map(str::to_owned);
        obj.meta = r.user_meta();
    }
    let mut w = XmlWriter::root("CopyObjectResult", Some(NS));
    w.elem("LastModified", iso_millis(now))
        .elem("ETag", &obj.etag);
    let b = bucket_mut(world, r.bucket).ok_or_else(|| no_bucket(r.bucket))?;
    b.objects.insert(r.key.to_owned(), obj);
    Ok(xml(w.finish_bare()))
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against an object of `len` bytes: (start, end incl.).
pub(super) fn parse_range(v: &str, len: usize) -> Option<(usize, usize)> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: usize = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        return Some((len.saturating_sub(n), len - 1));
    }
    let start: usize = a.parse().ok()?;
    if start >= len {
        return None;
    }
    let end = if b.is_empty() {
        len - 1
    } else {
        b.parse::<usize>().ok()?.min(len - 1)
    };
    (end >= start).then_some((start, end))
}

fn get_object(world: &mut World, head: bool, r: &Req<'_>) -> Result<Response, AwsError> {
    let b = bucket_mut(world, r.bucket).ok_or_else(|| no_bucket(r.bucket))?;
    let obj = b.objects.get(r.key).ok_or_else(no_key)?;
    let len = obj.data.len();
    let range = match r.header("range") {
        Some(v) => match parse_range(v, len) {
            Some(x) => Some(x),
            None => {
                return Err(AwsError::new(
                    416,
                    "InvalidRange",
                    "The requested range is not satisfiable",
                ));
            }
        },
        None => None,
    };
    let (status, data) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, obj.data.slice(s..=e)),
        None => (StatusCode::OK, obj.data.clone()),
    };
    let n = data.len();
    let mut resp = response(
        status,
        if head {
            Body::empty()
        } else {
            Body::from(data)
        },
    );
    let h = resp.headers_mut();
    set(h, "etag", &obj.etag);
    set(h, "content-length", &n.to_string());
    set(h, "last-modified", &http_date(obj.modified));
    set(h, "accept-ranges", "bytes");
    set(
        h,
        "content-type",
        obj.content_type
            .as_deref()
            .unwrap_or("application/octet-stream"),
    );
    if let Some((s, e)) = range {
        set(h, "content-range", &format!("bytes {s}-{e}/{len}"));
    } else if r
        .header("x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("enabled"))
        && let Some(c) = &obj.crc32
    {
        set(h, "x-amz-checksum-crc32", c);
    }
    for (k, v) in &obj.meta {
        if let (Ok(name), Ok(val)) = (
            http::HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(name, val);
        }
    }
    Ok(resp)
}

fn list_objects(world: &mut World, v2: bool, r: &Req<'_>) -> Result<Response, AwsError> {
    let b = bucket_mut(world, r.bucket).ok_or_else(|| no_bucket(r.bucket))?;
    let q = r.query;
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let delimiter = q.get("delimiter").cloned().filter(|d| !d.is_empty());
    let max_keys: usize = match q.get("max-keys") {
        Some(v) => v
            .parse()
            .map_err(|_| AwsError::new(400, "InvalidArgument", "max-keys must be an integer"))?,
        None => 1000,
    }
    .min(1000);
    // Where to start: after the continuation token / start-after (V2) or marker (V1).
    let token = q.get("continuation-token").cloned();
    let after = if v2 {
        match &token {
            Some(t) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        AwsError::new(
                            400,
                            "InvalidArgument",
                            "The continuation token provided is incorrect",
                        )
                    })?,
            ),
            None => q.get("start-after").cloned(),
        }
    } else {
        q.get("marker").cloned()
    };
    let mut contents: Vec<(&String, &Object)> = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut truncated = false;
    let mut last = None;
    for (k, o) in b.objects.iter() {
        if !k.starts_with(&prefix) || after.as_ref().is_some_and(|a| k <= a) {
            continue;
        }
        let common = delimiter.as_ref().and_then(|d| {
            k[prefix.len()..]
                .find(d.as_str())
                .map(|i| k[..prefix.len() + i + d.len()].to_owned())
        });
        if let Some(cp) = &common
            && (prefixes.last() == Some(cp)
                || after
                    .as_ref()
                    .is_some_and(|a| a.starts_with(cp.as_str()) && a >= cp))
        {
            continue;
        }
        if contents.len() + prefixes.len() >= max_keys {
            truncated = true;
            break;
        }
        match common {
            Some(cp) => {
                // The marker past a common prefix is the prefix's last possible key.
                last = Some(format!("{cp}\u{10ffff}"));
                prefixes.push(cp);
            }
            None => {
                last = Some(k.clone());
                contents.push((k, o));
            }
        }
    }
    let mut w = XmlWriter::root("ListBucketResult", Some(NS));
    w.elem("Name", r.bucket)
        .elem("Prefix", &prefix)
        .elem("MaxKeys", max_keys)
        .opt("Delimiter", delimiter.as_deref())
        .elem("IsTruncated", truncated);
    if v2 {
        w.elem("KeyCount", contents.len() + prefixes.len());
        w.opt("ContinuationToken", token.as_deref());
        w.opt("StartAfter", q.get("start-after"));
        if truncated && let Some(l) = &last {
            w.elem(
                "NextContinuationToken",
                base64::engine::general_purpose::STANDARD.encode(l),
            );
        }
    } else {
        w.elem("Marker", q.get("marker").cloned().unwrap_or_default());
        if truncated {
            w.opt(
                "NextMarker",
                last.as_deref().map(|l| l.trim_end_matches('\u{10ffff}')),
            );
        }
    }
    for (k, o) in contents {
        w.start("Contents")
            .elem("Key", k)
            .elem("LastModified", iso_millis(o.modified))
            .elem("ETag", &o.etag)
            .elem("Size", o.data.len())
            .elem("StorageClass", "STANDARD")
            .end();
    }
    for p in prefixes {
        w.start("CommonPrefixes").elem("Prefix", p).end();
    }
    Ok(xml(w.finish_bare()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
