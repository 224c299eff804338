//! S3 through aws-sdk-s3 (REST-XML, path-style), including the SDK's streamed
//! `aws-chunked` uploads with a trailing CRC32.

use aws_sdk_s3::primitives::ByteStream;
use lifehook_conformance::Harness;

async fn bucket(h: &Harness, name: &str) {
    h.s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("CreateBucket");
}

#[tokio::test]
async fn static_and_streamed_uploads_round_trip() {
    let h = Harness::manual().await;
    bucket(&h, "logs").await;

    // Static body: x-amz-checksum-crc32 header.
    let put =
        h.s3.put_object()
            .bucket("logs")
            .key("dir/static.txt")
            .body(ByteStream::from_static(b"hello s3"))
            .send()
            .await
            .expect("PutObject static");
    // MD5("hello s3"), quoted.
    let etag = put.e_tag().unwrap().to_owned();
    assert_eq!(etag, "\"b60d991fa6dbd33863c7cec70d15dbac\"");

    // Streamed body from a file: aws-chunked with signed chunks and a trailer.
    let dir = std::env::temp_dir().join(format!("lifehook-s3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.bin");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let put =
        h.s3.put_object()
            .bucket("logs")
            .key("dir/streamed.bin")
            .body(ByteStream::from_path(&path).await.unwrap())
            .send()
            .await
            .expect("PutObject streamed");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(put.e_tag().is_some());

    let got =
        h.s3.get_object()
            .bucket("logs")
            .key("dir/streamed.bin")
            .send()
            .await
            .expect("GetObject");
    assert_eq!(got.content_length(), Some(data.len() as i64));
    assert_eq!(got.e_tag(), put.e_tag());
    assert!(got.last_modified().is_some());
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(body.len(), data.len());
    assert!(
        body.as_ref() == data.as_slice(),
        "streamed upload must decode to the file"
    );

    let got =
        h.s3.get_object()
            .bucket("logs")
            .key("dir/static.txt")
            .send()
            .await
            .unwrap();
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"hello s3");

    // Range.
    let got =
        h.s3.get_object()
            .bucket("logs")
            .key("dir/static.txt")
            .range("bytes=0-4")
            .send()
            .await
            .unwrap();
    assert_eq!(got.content_range(), Some("bytes 0-4/8"));
    assert_eq!(
        &got.body.collect().await.unwrap().into_bytes()[..],
        b"hello"
    );

    let head =
        h.s3.head_object()
            .bucket("logs")
            .key("dir/static.txt")
            .send()
            .await
            .expect("HeadObject");
    assert_eq!(head.content_length(), Some(8));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
}

#[tokio::test]
async fn list_with_prefix_delimiter_and_pages() {
    let h = Harness::manual().await;
    bucket(&h, "cfg").await;
    for k in ["a/1", "a/2", "a/sub/3", "b/4", "top"] {
        h.s3.put_object()
            .bucket("cfg")
            .key(k)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let out =
        h.s3.list_objects_v2()
            .bucket("cfg")
            .delimiter("/")
            .send()
            .await
            .unwrap();
    let keys: Vec<_> = out.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<_> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(keys, ["top"]);
    assert_eq!(prefixes, ["a/", "b/"]);

    let out =
        h.s3.list_objects_v2()
            .bucket("cfg")
            .prefix("a/")
            .delimiter("/")
            .send()
            .await
            .unwrap();
    let keys: Vec<_> = out.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<_> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(keys, ["a/1", "a/2"]);
    assert_eq!(prefixes, ["a/sub/"]);
    assert_eq!(out.contents()[0].size(), Some(1));

    // Pagination with max-keys 2 covers every key exactly once.
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out =
            h.s3.list_objects_v2()
                .bucket("cfg")
                .max_keys(2)
                .set_continuation_token(token.clone())
                .send()
                .await
                .unwrap();
        pages += 1;
        all.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        if out.is_truncated() == Some(true) {
            token = out.next_continuation_token().map(str::to_owned);
            assert!(token.is_some());
        } else {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(all, ["a/1", "a/2", "a/sub/3", "b/4", "top"]);

    let names: Vec<_> =
        h.s3.list_buckets()
            .send()
            .await
            .unwrap()
            .buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_owned))
            .collect();
    assert_eq!(names, ["cfg"]);
}

#[tokio::test]
async fn errors_have_s3_codes() {
    let h = Harness::manual().await;
    bucket(&h, "errs").await;
    let e =
        h.s3.get_object()
            .bucket("errs")
            .key("missing")
            .send()
            .await
            .unwrap_err();
    let se = e.into_service_error();
    assert!(se.is_no_such_key(), "{se:?}");

    let e =
        h.s3.get_object()
            .bucket("nope-bucket")
            .key("k")
            .send()
            .await
            .unwrap_err();
    let meta = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).map(str::to_owned);
    assert_eq!(meta.as_deref(), Some("NoSuchBucket"));

    let e =
        h.s3.head_bucket()
            .bucket("nope-bucket")
            .send()
            .await
            .unwrap_err();
    assert!(e.into_service_error().is_not_found());

    h.s3.put_object()
        .bucket("errs")
        .key("k")
        .body(ByteStream::from_static(b"1"))
        .send()
        .await
        .unwrap();
    let e =
        h.s3.delete_bucket()
            .bucket("errs")
            .send()
            .await
            .unwrap_err();
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&e),
        Some("BucketNotEmpty")
    );
    h.s3.delete_object()
        .bucket("errs")
        .key("k")
        .send()
        .await
        .unwrap();
    h.s3.delete_bucket().bucket("errs").send().await.unwrap();
    let e = h.s3.head_bucket().bucket("errs").send().await.unwrap_err();
    assert!(e.into_service_error().is_not_found());
}

#[tokio::test]
async fn create_bucket_outside_us_east_1_and_conflict() {
    let h = Harness::manual().await;
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    h.s3.create_bucket()
        .bucket("eu-logs")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let state = h.state().await;
    assert!(
        state["regions"]["eu-west-1"]["s3"]["buckets"]["eu-logs"].is_object(),
        "{state}"
    );
    let e =
        h.s3.create_bucket()
            .bucket("eu-logs")
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap_err();
    assert!(e.into_service_error().is_bucket_already_owned_by_you());
}

/// Raw HTTP: virtual-hosted addressing, unsigned requests, aws-chunked bodies with a bad
/// checksum or a malformed framing, and bodies above the 2 MiB API limit.
#[tokio::test]
async fn raw_http_addressing_and_chunked_errors() {
    let h = Harness::manual().await;
    bucket(&h, "vhost").await;
    let port = h.sandbox.addr().port();
    let http = h.http();

    // Virtual-hosted style: the bucket is in Host, the key is the whole path.
    let r = http
        .put(format!("{}/dir/a.txt", h.endpoint()))
        .header("host", format!("vhost.localhost:{port}"))
        .body("via host")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let got =
        h.s3.get_object()
            .bucket("vhost")
            .key("dir/a.txt")
            .send()
            .await
            .unwrap();
    assert_eq!(
        &got.body.collect().await.unwrap().into_bytes()[..],
        b"via host"
    );
    let r = http
        .get(format!("{}/dir/a.txt", h.endpoint()))
        .header("host", format!("vhost.s3.us-east-1.amazonaws.com:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().contains_key("x-amz-request-id"));
    assert!(r.headers().contains_key("last-modified"));
    assert_eq!(r.text().await.unwrap(), "via host");

    // An aws-chunked body whose trailing CRC32 does not match.
    let chunked = |crc: &str| {
        format!(
            "8;chunk-signature={sig}\r\nabcdefgh\r\n0;chunk-signature={sig}\r\nx-amz-checksum-crc32:{crc}\r\n\r\n",
            sig = "0".repeat(64)
        )
    };
    let put = |body: String, decoded: &str| {
        http.put(format!("{}/vhost/chunked", h.endpoint()))
            .header("content-encoding", "aws-chunked")
            .header(
                "x-amz-content-sha256",
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            )
            .header("x-amz-decoded-content-length", decoded.to_owned())
            .header("x-amz-trailer", "x-amz-checksum-crc32")
            .body(body)
            .send()
    };
    let r = put(chunked("AAAAAA=="), "8").await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("<Code>BadDigest</Code>"));
    // The right CRC32 of "abcdefgh" is accepted and echoed.
    let r = put(chunked("ru8qUA=="), "8").await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    // A wrong decoded length and a malformed framing are 400s.
    let r = put(chunked("ru8qUA=="), "9").await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = put("zz;chunk-signature=x\r\nabc".into(), "3")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("<Code>InvalidRequest</Code>")
    );

    // 5 MiB: above the 2 MiB API limit, within S3's.
    let big = vec![7u8; 5 * 1024 * 1024];
    h.s3.put_object()
        .bucket("vhost")
        .key("big")
        .body(ByteStream::from(big.clone()))
        .send()
        .await
        .expect("5 MiB PutObject");
    let head =
        h.s3.head_object()
            .bucket("vhost")
            .key("big")
            .send()
            .await
            .unwrap();
    assert_eq!(head.content_length(), Some(big.len() as i64));
}
