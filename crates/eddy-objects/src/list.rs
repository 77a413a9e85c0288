//! Listing in S3's order (UTF-8 bytes, which is SQLite's binary order for TEXT), with prefixes,
//! delimiters and resumable positions. Keys and common prefixes together count toward
//! `max_keys`, as in S3.

use eddy_core::BucketName;

use crate::ObjectError;
use crate::model::*;
use crate::store::{ObjectStore, require_bucket};

/// Rows fetched per query while scanning.
const SCAN_BATCH: usize = 256;

impl ObjectStore {
    pub async fn list_objects(
        &self,
        bucket: &BucketName,
        params: &ListParams,
    ) -> Result<ListPage, ObjectError> {
        let mut db = self.bus.readers();
        require_bucket(self.index.as_ref(), &mut db, bucket).await?;
        let target = params.max_keys.min(MAX_LIST_KEYS);
        let mut page = ListPage::default();
        if target == 0 {
            return Ok(page);
        }
        let prefix = params.prefix.as_str();
        let delimiter = params.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut position = start_position(prefix, delimiter, params.start.as_ref());
        let mut count = 0;
        'scan: loop {
            let batch = self
                .index
                .scan(&mut db, bucket, &position, SCAN_BATCH)
                .await?;
            let exhausted = batch.len() < SCAN_BATCH;
            for meta in batch {
                let key = meta.key.as_str();
                if !key.starts_with(prefix) {
                    // Keys with a prefix form one contiguous run; past it, nothing more matches.
                    break 'scan;
                }
                let common = delimiter.and_then(|d| common_prefix(key, prefix, d));
                if common.is_some() && page.common_prefixes.last() == common.as_ref() {
                    position = ListPosition::After(key.to_string());
                    continue;
                }
                if count == target {
                    // One entry more than the page holds: the page is truncated here.
                    page.next = Some(position);
                    break 'scan;
                }
                count += 1;
                match common {
                    Some(cp) => {
                        // Skip every other key under this common prefix with one seek.
                        position = match successor(&cp) {
                            Some(next) => ListPosition::From(next),
                            None => ListPosition::After(key.to_string()),
                        };
                        page.common_prefixes.push(cp);
                        continue 'scan;
                    }
                    None => {
                        position = ListPosition::After(key.to_string());
                        page.objects.push(meta);
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(page)
    }
}

/// Where a listing starts: at the prefix, or at the requested position if that is later.
/// A start after a common prefix itself starts past every key under it: S3 hands out the last
/// common prefix as the `NextMarker` of a truncated v1 listing, and resuming there must not
/// return that prefix again.
fn start_position(
    prefix: &str,
    delimiter: Option<&str>,
    start: Option<&ListPosition>,
) -> ListPosition {
    let at_prefix = ListPosition::From(prefix.to_string());
    match start {
        None => at_prefix,
        Some(ListPosition::After(k)) | Some(ListPosition::From(k)) if k.as_str() < prefix => {
            at_prefix
        }
        Some(ListPosition::After(k)) => delimiter
            .filter(|_| k.starts_with(prefix))
            .and_then(|d| common_prefix(k, prefix, d))
            .filter(|cp| cp == k)
            .and_then(|cp| successor(&cp))
            .map_or_else(|| ListPosition::After(k.clone()), ListPosition::From),
        Some(p) => p.clone(),
    }
}

/// The common prefix `key` rolls up into: the prefix, then everything up to and including the
/// first delimiter after it.
fn common_prefix(key: &str, prefix: &str, delimiter: &str) -> Option<String> {
    let rest = &key[prefix.len()..];
    rest.find(delimiter)
        .map(|i| key[..prefix.len() + i + delimiter.len()].to_string())
}

/// The smallest string greater than every string that starts with `s`: `s` with its last
/// character raised by one. `None` when that character is already the largest there is.
fn successor(s: &str) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    let last = chars.pop()?;
    let next = match last {
        '\u{D7FF}' => '\u{E000}',
        c => char::from_u32(c as u32 + 1)?,
    };
    chars.push(next);
    Some(chars.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_bounds_every_extension() {
        for s in ["a/", "photos/2026/", "ü/", "\u{D7FF}"] {
            let next = successor(s).unwrap();
            for ext in ["", "\0", "zzz", "\u{10FFFF}\u{10FFFF}"] {
                let longer = format!("{s}{ext}");
                assert!(longer.as_bytes() < next.as_bytes(), "{longer:?} < {next:?}");
            }
            assert!(s.as_bytes() < next.as_bytes());
        }
        assert_eq!(successor("\u{10FFFF}"), None);
    }

    #[test]
    fn common_prefixes_include_the_delimiter() {
        assert_eq!(common_prefix("a/b/c", "", "/").as_deref(), Some("a/"));
        assert_eq!(common_prefix("a/b/c", "a/", "/").as_deref(), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", "/"), None);
        assert_eq!(common_prefix("x--y--z", "", "--").as_deref(), Some("x--"));
    }

    #[test]
    fn tokens_round_trip() {
        for p in [
            ListPosition::After("a b/ü".into()),
            ListPosition::From("x".into()),
        ] {
            assert_eq!(ListPosition::from_token(&p.token()), Some(p));
        }
        assert_eq!(ListPosition::from_token("zzz"), None);
        assert_eq!(ListPosition::from_token(""), None);
        assert_eq!(ListPosition::from_token("aff"), None);
    }
}
