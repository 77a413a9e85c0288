//! Checksums of stored bytes, as S3 keeps them (its "additional checksums"): every object and
//! every part is stored with one — the algorithm the client chose, or CRC64NVME, which S3 adds
//! when a client chooses none — computed while the bytes are staged and checked there against
//! the value the client sent. An object assembled from parts has the checksum its upload asked
//! for: `COMPOSITE` (the checksum of the parts' checksums, with `-N` for N parts) or
//! `FULL_OBJECT` (a CRC of all the bytes, combined from the parts' CRCs without reading them).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The algorithms S3 offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// As S3 names it (`x-amz-checksum-algorithm`, messages).
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The header that carries a value of this algorithm.
    pub fn header(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn from_header(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(name.trim()))
    }

    /// What a multipart upload that names this algorithm and no type gets, as in S3.
    pub fn default_type(self) -> ChecksumType {
        match self {
            ChecksumAlgorithm::Crc64Nvme => ChecksumType::FullObject,
            _ => ChecksumType::Composite,
        }
    }

    /// Whether S3 offers this combination for multipart uploads: full-object checksums are
    /// CRCs only (they are combined from the parts'), and CRC64NVME is full-object only.
    pub fn allows(self, kind: ChecksumType) -> bool {
        !matches!(
            (self, kind),
            (
                ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256,
                ChecksumType::FullObject
            ) | (ChecksumAlgorithm::Crc64Nvme, ChecksumType::Composite)
        )
    }

    fn crc(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            ChecksumAlgorithm::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            ChecksumAlgorithm::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            ChecksumAlgorithm::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
        }
    }

    /// The digest in `value` (base64, as headers carry it), if it is one of this algorithm.
    pub fn decode(self, value: &str) -> Option<Vec<u8>> {
        BASE64
            .decode(value.trim())
            .ok()
            .filter(|d| d.len() == self.digest_len())
    }
}

/// How a multipart object's checksum covers its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChecksumType {
    /// Of all the bytes at once (what a single PUT's checksum always is).
    FullObject,
    /// Of the parts' checksums, one after another.
    Composite,
}

impl ChecksumType {
    pub fn name(self) -> &'static str {
        match self {
            ChecksumType::FullObject => "FULL_OBJECT",
            ChecksumType::Composite => "COMPOSITE",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [ChecksumType::FullObject, ChecksumType::Composite]
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// The checksum an object or a part is stored with.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectChecksum {
    pub algorithm: ChecksumAlgorithm,
    #[serde(rename = "type")]
    pub kind: ChecksumType,
    /// Base64 of the digest; a composite one ends in `-N`.
    pub value: String,
}

impl ObjectChecksum {
    /// The checksum of bytes that hash to `digest`.
    pub fn of_bytes(algorithm: ChecksumAlgorithm, digest: &[u8]) -> Self {
        Self {
            algorithm,
            kind: ChecksumType::FullObject,
            value: BASE64.encode(digest),
        }
    }

    /// The checksum of an object made of parts, each given as its own (full) checksum and its
    /// size: `None` when a part has none of `algorithm`.
    pub fn of_parts(
        algorithm: ChecksumAlgorithm,
        kind: ChecksumType,
        parts: &[(Option<&ObjectChecksum>, u64)],
    ) -> Option<Self> {
        let digests = parts
            .iter()
            .map(|(sum, size)| {
                let sum = sum.filter(|s| s.algorithm == algorithm)?;
                Some((algorithm.decode(&sum.value)?, *size))
            })
            .collect::<Option<Vec<_>>>()?;
        let value = match (kind, algorithm.crc()) {
            (ChecksumType::FullObject, Some(crc)) => {
                let mut whole: Option<u64> = None;
                for (digest, size) in &digests {
                    let part = crc_value(digest);
                    whole = Some(match whole {
                        None => part,
                        Some(before) => crc_fast::checksum_combine(crc, before, part, *size),
                    });
                }
                let whole = whole?;
                let bytes = whole.to_be_bytes();
                BASE64.encode(&bytes[8 - algorithm.digest_len()..])
            }
            (ChecksumType::FullObject, None) => return None,
            (ChecksumType::Composite, _) => {
                let mut hasher = Hasher::new(algorithm);
                for (digest, _) in &digests {
                    hasher.update(digest);
                }
                format!("{}-{}", BASE64.encode(hasher.finish()), digests.len())
            }
        };
        Some(Self {
            algorithm,
            kind,
            value,
        })
    }
}

/// A CRC digest (big-endian, as S3 encodes it) as a number.
fn crc_value(digest: &[u8]) -> u64 {
    digest.iter().fold(0, |n, b| (n << 8) | u64::from(*b))
}

/// Computes one algorithm's digest of bytes fed in pieces.
pub enum Hasher {
    Crc(crc_fast::Digest, usize),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        use sha2::Digest as _;
        match (algorithm, algorithm.crc()) {
            (_, Some(crc)) => Hasher::Crc(crc_fast::Digest::new(crc), algorithm.digest_len()),
            (ChecksumAlgorithm::Sha1, None) => Hasher::Sha1(sha1::Sha1::new()),
            (_, None) => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        use sha2::Digest as _;
        match self {
            Hasher::Crc(digest, _) => digest.update(bytes),
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
        }
    }

    /// The digest, big-endian for a CRC as S3 encodes it.
    pub fn finish(self) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            Hasher::Crc(digest, len) => digest.finalize().to_be_bytes()[8 - len..].to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// The checksum a body is stored with, and the value it must have if the client sent one.
#[derive(Clone, Debug)]
pub struct ChecksumRequest {
    pub algorithm: ChecksumAlgorithm,
    pub expected: Option<ExpectedChecksum>,
}

impl ChecksumRequest {
    /// What a body the client sent no checksum for is stored with, as S3 does.
    pub fn default_for_uploads() -> Self {
        Self {
            algorithm: ChecksumAlgorithm::Crc64Nvme,
            expected: None,
        }
    }
}

/// The value a client sent: in a header, or in a trailer known only when the body has ended.
#[derive(Clone)]
pub enum ExpectedChecksum {
    Sent(String),
    /// Reads the trailer once the body is read (`None`: it never came).
    Trailer(Arc<dyn Fn() -> Option<String> + Send + Sync>),
}

impl std::fmt::Debug for ExpectedChecksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedChecksum::Sent(value) => f.debug_tuple("Sent").field(value).finish(),
            ExpectedChecksum::Trailer(_) => f.write_str("Trailer"),
        }
    }
}

impl ExpectedChecksum {
    /// Whether `value` (base64, as stored) is the value the client sent.
    pub fn matches(&self, value: &str) -> bool {
        let sent = match self {
            ExpectedChecksum::Sent(sent) => Some(sent.clone()),
            ExpectedChecksum::Trailer(read) => read(),
        };
        sent.is_some_and(|v| v.trim() == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(algorithm: ChecksumAlgorithm, bytes: &[u8]) -> Vec<u8> {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    fn part(algorithm: ChecksumAlgorithm, bytes: &[u8]) -> (ObjectChecksum, u64) {
        (
            ObjectChecksum::of_bytes(algorithm, &digest(algorithm, bytes)),
            bytes.len() as u64,
        )
    }

    #[test]
    fn digests_are_the_published_check_values() {
        // The check value of each CRC is its digest of "123456789" (the CRC catalogue's).
        let check = |a| crc_value(&digest(a, b"123456789"));
        assert_eq!(check(ChecksumAlgorithm::Crc32), 0xcbf4_3926);
        assert_eq!(check(ChecksumAlgorithm::Crc32c), 0xe306_9283);
        assert_eq!(check(ChecksumAlgorithm::Crc64Nvme), 0xae8b_1486_0a79_9888);
        assert_eq!(
            hex::encode(digest(ChecksumAlgorithm::Sha1, b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(digest(ChecksumAlgorithm::Sha256, b"").len(), 32);
    }

    #[test]
    fn digests_of_hello_are_those_computed_independently() {
        // Python's zlib and hashlib; CRC32C and CRC64NVME bit by bit from their parameters.
        for (algorithm, right) in [
            (ChecksumAlgorithm::Crc32, "NhCmhg=="),
            (ChecksumAlgorithm::Crc32c, "mnG7TA=="),
            (ChecksumAlgorithm::Crc64Nvme, "M3eFcAZSQlc="),
            (ChecksumAlgorithm::Sha1, "qvTGHdzF6KLavt4PO0gs2a6pQ00="),
            (
                ChecksumAlgorithm::Sha256,
                "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
            ),
        ] {
            let sum = ObjectChecksum::of_bytes(algorithm, &digest(algorithm, b"hello"));
            assert_eq!(sum.value, right, "{algorithm:?}");
        }
    }

    #[test]
    fn a_full_object_crc_is_the_crc_of_all_the_bytes() {
        let (a, b, c) = (&b"hello, "[..], &b"multipart "[..], &b"world"[..]);
        for algorithm in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let parts = [part(algorithm, a), part(algorithm, b), part(algorithm, c)];
            let listed: Vec<_> = parts.iter().map(|(s, n)| (Some(s), *n)).collect();
            let whole =
                ObjectChecksum::of_parts(algorithm, ChecksumType::FullObject, &listed).unwrap();
            let direct =
                ObjectChecksum::of_bytes(algorithm, &digest(algorithm, &[a, b, c].concat()));
            assert_eq!(whole, direct, "{algorithm:?}");
        }
    }

    #[test]
    fn a_composite_is_the_checksum_of_the_parts_checksums() {
        let algorithm = ChecksumAlgorithm::Sha256;
        let parts = [part(algorithm, b"one"), part(algorithm, b"two")];
        let listed: Vec<_> = parts.iter().map(|(s, n)| (Some(s), *n)).collect();
        let composite =
            ObjectChecksum::of_parts(algorithm, ChecksumType::Composite, &listed).unwrap();
        let inner = [digest(algorithm, b"one"), digest(algorithm, b"two")].concat();
        assert_eq!(
            composite.value,
            format!("{}-2", BASE64.encode(digest(algorithm, &inner)))
        );
        // A part without a checksum of the algorithm leaves the object without one.
        let other = part(ChecksumAlgorithm::Crc32, b"two");
        let mixed = [(Some(&parts[0].0), 3), (Some(&other.0), 3)];
        assert_eq!(
            ObjectChecksum::of_parts(algorithm, ChecksumType::Composite, &mixed),
            None
        );
        assert_eq!(
            ObjectChecksum::of_parts(algorithm, ChecksumType::Composite, &[(None, 3)]),
            None
        );
    }

    #[test]
    fn sent_values_are_compared_as_base64_of_the_digest() {
        let d = digest(ChecksumAlgorithm::Crc32, b"x");
        let value = BASE64.encode(&d);
        assert!(ExpectedChecksum::Sent(format!(" {value} ")).matches(&value));
        assert!(!ExpectedChecksum::Sent("AAAAAA==".into()).matches(&value));
        assert!(!ExpectedChecksum::Trailer(Arc::new(|| None)).matches(&value));
        assert_eq!(
            ChecksumAlgorithm::Crc32.decode("AAAAAA=="),
            Some(vec![0; 4])
        );
        assert_eq!(ChecksumAlgorithm::Crc64Nvme.decode("AAAAAA=="), None);
    }
}
