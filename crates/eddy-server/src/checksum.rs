//! The checksum a client sends with an upload — `x-amz-checksum-ALGORITHM` as a header, or as
//! an aws-chunked trailer announced by `x-amz-trailer` — checked against the bytes as they
//! arrive. A mismatch fails the body at its end, before the store takes it, so nothing is
//! stored; the answer is `BadDigest`, as AWS gives.

use std::pin::Pin;
use std::task::{Context, Poll};

use s3s::checksum::ChecksumHasher;
use s3s::dto::Checksum;
use s3s::{S3Error, S3ErrorCode, S3Result};
use tokio::io::{AsyncRead, ReadBuf};

/// The algorithms AWS offers, with their header names and digest sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algorithm {
    const ALL: [Algorithm; 5] = [
        Algorithm::Crc32,
        Algorithm::Crc32c,
        Algorithm::Crc64Nvme,
        Algorithm::Sha1,
        Algorithm::Sha256,
    ];

    fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// As AWS names it in messages.
    fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64Nvme => 8,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }

    fn from_header(name: &str) -> Option<Algorithm> {
        Self::ALL
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(name.trim()))
    }

    fn hasher(self) -> ChecksumHasher {
        let mut hasher = ChecksumHasher::default();
        match self {
            Algorithm::Crc32 => hasher.crc32 = Some(Default::default()),
            Algorithm::Crc32c => hasher.crc32c = Some(Default::default()),
            Algorithm::Crc64Nvme => hasher.crc64nvme = Some(Default::default()),
            Algorithm::Sha1 => hasher.sha1 = Some(Default::default()),
            Algorithm::Sha256 => hasher.sha256 = Some(Default::default()),
        }
        hasher
    }

    fn of(self, sums: &Checksum) -> Option<&String> {
        match self {
            Algorithm::Crc32 => sums.checksum_crc32.as_ref(),
            Algorithm::Crc32c => sums.checksum_crc32c.as_ref(),
            Algorithm::Crc64Nvme => sums.checksum_crc64nvme.as_ref(),
            Algorithm::Sha1 => sums.checksum_sha1.as_ref(),
            Algorithm::Sha256 => sums.checksum_sha256.as_ref(),
        }
    }
}

/// Where the expected value comes from.
#[derive(Debug)]
enum Expected {
    Header(String),
    Trailer(s3s::TrailingHeaders),
}

/// What an upload's body must hash to.
#[derive(Debug)]
pub struct Check {
    algorithm: Algorithm,
    expected: Expected,
}

/// The check an upload asks for: from its `x-amz-checksum-*` headers (`sums`, as s3s parsed
/// them) or the trailer its `x-amz-trailer` header announces. More than one checksum, a
/// malformed value, or a trailer of no known algorithm is refused before the body is read.
pub fn requested(
    sums: &Checksum,
    headers: &hyper::HeaderMap,
    trailers: Option<s3s::TrailingHeaders>,
) -> S3Result<Option<Check>> {
    let given: Vec<Algorithm> = Algorithm::ALL
        .into_iter()
        .filter(|a| a.of(sums).is_some())
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
        return Ok(Some(Check {
            algorithm,
            expected: Expected::Trailer(trailers),
        }));
    }
    let Some(&algorithm) = given.first() else {
        return Ok(None);
    };
    let value = algorithm.of(sums).cloned().unwrap_or_default();
    well_formed(algorithm, &value)?;
    Ok(Some(Check {
        algorithm,
        expected: Expected::Header(value),
    }))
}

/// A value must be the base64 of a digest of the algorithm's size.
fn well_formed(algorithm: Algorithm, value: &str) -> S3Result<()> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD.decode(value.trim());
    match decoded {
        Ok(bytes) if bytes.len() == algorithm.digest_len() => Ok(()),
        _ => Err(S3Error::with_message(
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

/// The body's checksum did not match the one the client sent.
#[derive(Debug, thiserror::Error)]
#[error("The {algorithm} you specified did not match the calculated checksum.")]
pub struct Mismatch {
    algorithm: &'static str,
}

/// A body reader that hashes what passes and, at the end, fails with [`Mismatch`] (also when
/// an announced trailer never came) instead of reporting the end. Without a check it only
/// passes the bytes on.
pub struct Checked<R> {
    inner: R,
    hasher: Option<ChecksumHasher>,
    check: Option<Check>,
}

impl<R> Checked<R> {
    pub fn new(inner: R, check: Option<Check>) -> Self {
        Self {
            inner,
            hasher: check.as_ref().map(|c| c.algorithm.hasher()),
            check,
        }
    }

    /// Compares the finished digest with the expected value.
    fn verdict(&self, hasher: ChecksumHasher) -> std::io::Result<()> {
        let Some(check) = &self.check else {
            return Ok(());
        };
        let algorithm = check.algorithm;
        let computed = hasher.finalize();
        let computed = algorithm.of(&computed).cloned().unwrap_or_default();
        let expected = match &check.expected {
            Expected::Header(value) => value.trim().to_string(),
            Expected::Trailer(trailers) => {
                let found = trailers.read(|h| {
                    h.get(algorithm.header())
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                });
                match found.flatten() {
                    Some(value) => value.trim().to_string(),
                    None => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            Mismatch {
                                algorithm: algorithm.name(),
                            },
                        ));
                    }
                }
            }
        };
        if computed == expected {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                Mismatch {
                    algorithm: algorithm.name(),
                },
            ))
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Checked<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if !read.is_empty() {
                    if let Some(hasher) = this.hasher.as_mut() {
                        hasher.update(read);
                    }
                    return Poll::Ready(Ok(()));
                }
                // The end: the store sees it only if the bytes are what the client said.
                match this.hasher.take() {
                    Some(hasher) => Poll::Ready(this.verdict(hasher)),
                    None => Poll::Ready(Ok(())),
                }
            }
            other => other,
        }
    }
}

/// The [`Mismatch`] behind a failed body read, if that is why it failed.
pub fn mismatch(error: &std::io::Error) -> Option<&Mismatch> {
    error.get_ref().and_then(|e| e.downcast_ref::<Mismatch>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

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

    /// The digest of "hello" for each algorithm, computed independently of s3s (Python's zlib
    /// and hashlib; CRC32C and CRC64NVME bit by bit from their published parameters).
    fn right(algorithm: Algorithm) -> &'static str {
        match algorithm {
            Algorithm::Crc32 => "NhCmhg==",
            Algorithm::Crc32c => "mnG7TA==",
            Algorithm::Crc64Nvme => "M3eFcAZSQlc=",
            Algorithm::Sha1 => "qvTGHdzF6KLavt4PO0gs2a6pQ00=",
            Algorithm::Sha256 => "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
        }
    }

    async fn read_all(algorithm: Algorithm, value: &str) -> std::io::Result<Vec<u8>> {
        let check = requested(&sums_with(algorithm, value), &hyper::HeaderMap::new(), None)
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        Checked::new(&b"hello"[..], Some(check))
            .read_to_end(&mut out)
            .await
            .map(|_| out)
    }

    #[tokio::test]
    async fn each_algorithm_passes_the_right_digest_and_fails_a_wrong_one() {
        for algorithm in Algorithm::ALL {
            assert_eq!(
                read_all(algorithm, right(algorithm)).await.unwrap(),
                b"hello"
            );
            // Well formed but wrong: zeros of the digest's size.
            let wrong = {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(vec![0; algorithm.digest_len()])
            };
            let failed = read_all(algorithm, &wrong).await.unwrap_err();
            assert_eq!(
                mismatch(&failed).unwrap().to_string(),
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    algorithm.name()
                )
            );
        }
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
        let mut two = sums_with(Algorithm::Crc32, right(Algorithm::Crc32));
        two.checksum_sha1 = Some(right(Algorithm::Sha1).into());
        assert!(requested(&two, &hyper::HeaderMap::new(), None).is_err());
        let mut headers = hyper::HeaderMap::new();
        headers.insert("x-amz-trailer", "x-amz-checksum-md5".parse().unwrap());
        assert!(requested(&Checksum::default(), &headers, None).is_err());
    }
}
