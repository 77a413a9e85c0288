//! The checksum a client sends with an upload — `x-amz-checksum-ALGORITHM` as a header, or as
//! an aws-chunked trailer announced by `x-amz-trailer` — read into what the object store
//! checks while it stages the bytes (a mismatch is `BadDigest` with nothing stored), and the
//! stored checksum as the headers of an answer.

use std::sync::Arc;

use eddy_objects::{
    ChecksumAlgorithm as Algorithm, ChecksumRequest, ExpectedChecksum, ObjectChecksum,
};
use s3s::dto::Checksum;
use s3s::{S3Error, S3ErrorCode, S3Result};

/// The value of one algorithm among the `x-amz-checksum-*` headers s3s parsed.
fn sent(algorithm: Algorithm, sums: &Checksum) -> Option<&String> {
    match algorithm {
        Algorithm::Crc32 => sums.checksum_crc32.as_ref(),
        Algorithm::Crc32c => sums.checksum_crc32c.as_ref(),
        Algorithm::Crc64Nvme => sums.checksum_crc64nvme.as_ref(),
        Algorithm::Sha1 => sums.checksum_sha1.as_ref(),
        Algorithm::Sha256 => sums.checksum_sha256.as_ref(),
    }
}

/// A stored checksum as the fields of an answer (s3s writes them as `x-amz-checksum-*`).
pub fn answered(sum: Option<&ObjectChecksum>) -> (Checksum, Option<s3s::dto::ChecksumType>) {
    let mut fields = Checksum::default();
    let Some(sum) = sum else {
        return (fields, None);
    };
    let value = Some(sum.value.clone());
    match sum.algorithm {
        Algorithm::Crc32 => fields.checksum_crc32 = value,
        Algorithm::Crc32c => fields.checksum_crc32c = value,
        Algorithm::Crc64Nvme => fields.checksum_crc64nvme = value,
        Algorithm::Sha1 => fields.checksum_sha1 = value,
        Algorithm::Sha256 => fields.checksum_sha256 = value,
    }
    let kind = s3s::dto::ChecksumType::from(sum.kind.name().to_string());
    (fields, Some(kind))
}

/// The checksum an upload asks for: from its `x-amz-checksum-*` headers (`sums`, as s3s parsed
/// them) or the trailer its `x-amz-trailer` header announces. More than one checksum, a
/// malformed value, or a trailer of no known algorithm is refused before the body is read.
pub fn requested(
    sums: &Checksum,
    headers: &hyper::HeaderMap,
    trailers: Option<s3s::TrailingHeaders>,
) -> S3Result<Option<ChecksumRequest>> {
    let given: Vec<Algorithm> = Algorithm::ALL
        .into_iter()
        .filter(|a| sent(*a, sums).is_some())
        .collect();
    let trailer = headers
        .get("x-amz-trailer")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    if given.len() + usize::from(trailer.is_some()) > 1 {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ));
    }
    if let Some(name) = trailer {
        let (Some(algorithm), Some(trailers)) = (Algorithm::from_header(&name), trailers) else {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!(
                    "x-amz-trailer {name:?} names no checksum eddy knows; use one of x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1 or -sha256"
                ),
            ));
        };
        let header = algorithm.header();
        let read = move || {
            trailers
                .read(|h| {
                    h.get(header)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                })
                .flatten()
        };
        return Ok(Some(ChecksumRequest {
            algorithm,
            expected: Some(ExpectedChecksum::Trailer(Arc::new(read))),
        }));
    }
    let Some(&algorithm) = given.first() else {
        return Ok(None);
    };
    let value = sent(algorithm, sums).cloned().unwrap_or_default();
    well_formed(algorithm, &value)?;
    Ok(Some(ChecksumRequest {
        algorithm,
        expected: Some(ExpectedChecksum::Sent(value)),
    }))
}

/// The checksum a client lists for a part when completing an upload (`<ChecksumCRC32>` …):
/// at most one, well formed.
pub fn listed(sums: &Checksum) -> S3Result<Option<(Algorithm, String)>> {
    let mut given = Algorithm::ALL
        .into_iter()
        .filter_map(|a| sent(a, sums).map(|v| (a, v.clone())));
    let first = given.next();
    if given.next().is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "a <Part> lists one checksum at most",
        ));
    }
    if let Some((algorithm, value)) = &first {
        well_formed(*algorithm, value)?;
    }
    Ok(first)
}

/// A value must be the base64 of a digest of the algorithm's size.
fn well_formed(algorithm: Algorithm, value: &str) -> S3Result<()> {
    match algorithm.decode(value) {
        Some(_) => Ok(()),
        None => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            format!(
                "Value for {} header is invalid: it must be the base64 of the body's {}-byte {} digest",
                algorithm.header(),
                algorithm.digest_len(),
                algorithm.name()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums_with(algorithm: Algorithm, value: &str) -> Checksum {
        let mut sums = Checksum::default();
        let value = Some(value.to_string());
        match algorithm {
            Algorithm::Crc32 => sums.checksum_crc32 = value,
            Algorithm::Crc32c => sums.checksum_crc32c = value,
            Algorithm::Crc64Nvme => sums.checksum_crc64nvme = value,
            Algorithm::Sha1 => sums.checksum_sha1 = value,
            Algorithm::Sha256 => sums.checksum_sha256 = value,
        }
        sums
    }

    #[test]
    fn malformed_or_several_checksums_are_refused_before_the_body() {
        let bad = requested(
            &sums_with(Algorithm::Sha256, "not base64!"),
            &hyper::HeaderMap::new(),
            None,
        )
        .unwrap_err();
        assert_eq!(*bad.code(), S3ErrorCode::InvalidRequest);
        let short = requested(
            &sums_with(Algorithm::Crc32, "AAAAAAAA"),
            &hyper::HeaderMap::new(),
            None,
        );
        assert!(short.is_err(), "six bytes are not a CRC32");
        let mut two = sums_with(Algorithm::Crc32, "NhCmhg==");
        two.checksum_sha1 = Some("qvTGHdzF6KLavt4PO0gs2a6pQ00=".into());
        assert!(requested(&two, &hyper::HeaderMap::new(), None).is_err());
        let mut headers = hyper::HeaderMap::new();
        headers.insert("x-amz-trailer", "x-amz-checksum-md5".parse().unwrap());
        assert!(requested(&Checksum::default(), &headers, None).is_err());
    }
}
