use super::ops::parse_range;
use super::wire::{crc32, crc32_b64, decode_aws_chunked};
use super::wire::{host_bucket, percent_decode};
use super::*;
use proptest::prelude::*;

const SIG: &str =
    "chunk-signature=aedc9d602d726e381dde2ee89f7222a7d21958df984b5ce48c35d29ec2200415";

#[test]
fn decodes_sdk_streamed_body() {
    let body = format!(
        "12;{SIG}\r\nhello from a file!\r\n0;{SIG}\r\nx-amz-checksum-crc32:NmGVyA==\r\nx-amz-trailer-signature:{}\r\n\r\n",
        "0".repeat(64)
    );
    let d = decode_aws_chunked(body.as_bytes()).unwrap();
    assert_eq!(d.data, b"hello from a file!");
    assert_eq!(d.data.len(), 0x12);
    assert_eq!(
        d.trailers[0],
        ("x-amz-checksum-crc32".to_owned(), "NmGVyA==".to_owned())
    );
    assert_eq!(d.trailers.len(), 2);
}

#[test]
fn decodes_unsigned_chunks_and_multiple_chunks() {
    let d = decode_aws_chunked(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
    assert_eq!(d.data, b"abcde");
    assert!(d.trailers.is_empty());
    // No trailers and no final CRLF at all.
    let d = decode_aws_chunked(b"1\r\nx\r\n0\r\n").unwrap();
    assert_eq!(d.data, b"x");
}

#[test]
fn malformed_bodies_are_errors() {
    for bad in [
        &b""[..],
        b"zz\r\nabc\r\n0\r\n\r\n",
        b"5\r\nabc\r\n0\r\n\r\n",
        b"3\r\nabcXX0\r\n\r\n",
        b"3;chunk-signature=x",
        b"ffffffffffffffff\r\nabc\r\n",
        b"fffffffffffffffff\r\nabc\r\n",
        b"\r\n",
        b"0\r\nno-colon-here\r\n\r\n",
        b"3\r\nabc",
    ] {
        assert!(
            decode_aws_chunked(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn crc32_matches_known_values() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32_b64(b""), "AAAAAA==");
}

#[test]
fn ranges() {
    assert_eq!(parse_range("bytes=0-3", 10), Some((0, 3)));
    assert_eq!(parse_range("bytes=5-", 10), Some((5, 9)));
    assert_eq!(parse_range("bytes=-3", 10), Some((7, 9)));
    assert_eq!(parse_range("bytes=8-100", 10), Some((8, 9)));
    assert_eq!(parse_range("bytes=10-", 10), None);
    assert_eq!(parse_range("bytes=x-1", 10), None);
}

#[test]
fn recognition_and_hosts() {
    let mut h = HeaderMap::new();
    assert!(is_s3_request(
        &Method::PUT,
        &"/my-bucket/k".parse().unwrap(),
        &h
    ));
    assert!(!is_s3_request(&Method::POST, &"/".parse().unwrap(), &h));
    h.insert(
        "x-amz-target",
        HeaderValue::from_static("AmazonSSM.SendCommand"),
    );
    assert!(!is_s3_request(
        &Method::POST,
        &"/my-bucket".parse().unwrap(),
        &h
    ));
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=t/20261122/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=x",
        ),
    );
    assert!(is_s3_request(&Method::GET, &"/".parse().unwrap(), &h));
    assert_eq!(host_bucket("logs.localhost:4566").as_deref(), Some("logs"));
    assert_eq!(
        host_bucket("logs.s3.us-east-1.amazonaws.com").as_deref(),
        Some("logs")
    );
    assert_eq!(host_bucket("127.0.0.1:4566"), None);
    assert_eq!(host_bucket("localhost:4566"), None);
    assert_eq!(percent_decode("a%20b%2Fc%zz%"), "a b/c%zz%");
}

proptest! {
    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_aws_chunked(&bytes);
    }

    #[test]
    fn decoder_round_trips(data in proptest::collection::vec(any::<u8>(), 0..300), n in 1usize..64) {
        let mut body = Vec::new();
        for c in data.chunks(n) {
            body.extend_from_slice(format!("{:x};{SIG}\r\n", c.len()).as_bytes());
            body.extend_from_slice(c);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("0;{SIG}\r\nx-amz-checksum-crc32:{}\r\n\r\n", crc32_b64(&data)).as_bytes());
        let d = decode_aws_chunked(&body).unwrap();
        prop_assert_eq!(&d.data, &data);
        prop_assert_eq!(&d.trailers[0].1, &crc32_b64(&data));
    }

    #[test]
    fn range_never_panics(s in ".{0,20}", len in 0usize..50) {
        if let Some((a, b)) = parse_range(&s, len) {
            prop_assert!(a <= b && b < len);
        }
    }
}
