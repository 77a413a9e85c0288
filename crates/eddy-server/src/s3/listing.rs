//! Listings: ListObjects (v1 and v2) and ListObjectVersions, in S3's order (the keys' UTF-8
//! bytes), each page with only the keys the signer may see.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use eddy_node::Principal;

use super::*;

/// How a listing writes keys and prefixes: as they are, or URL-encoded when the client asked
/// for `encoding-type=url` (botocore always does, and decodes what it gets back, so a `+` or
/// `%` in a key must go out encoded).
#[derive(Clone, Copy)]
struct KeyForm {
    url: bool,
}

impl KeyForm {
    fn of(encoding_type: Option<&EncodingType>) -> S3Result<Self> {
        match encoding_type.map(EncodingType::as_str) {
            None => Ok(Self { url: false }),
            Some(EncodingType::URL) => Ok(Self { url: true }),
            Some(other) => Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("encoding-type must be url; got {other:?}"),
            )),
        }
    }

    fn write(self, text: String) -> String {
        if self.url {
            eddy_sigv4::uri_encode_path(&text)
        } else {
            text
        }
    }

    fn write_opt(self, text: Option<String>) -> Option<String> {
        text.map(|t| self.write(t))
    }
}

fn listed_object(meta: &ObjectMeta, form: KeyForm, with_owner: bool) -> Object {
    Object {
        e_tag: Some(etag(meta)),
        key: Some(form.write(meta.key.to_string())),
        last_modified: Some(timestamp(meta.last_modified_ms)),
        size: Some(meta.size as i64),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        owner: with_owner.then(owner),
        ..Default::default()
    }
}

/// A page's keys and common prefixes as a listing answers them; each key's owner only when
/// asked (ListObjectsV2's `fetch-owner`; v1 always names it).
fn listed(
    page: &ListPage,
    form: KeyForm,
    with_owner: bool,
) -> (Option<Vec<Object>>, Option<Vec<CommonPrefix>>) {
    let objects = page
        .objects
        .iter()
        .map(|o| listed_object(o, form, with_owner));
    let prefixes = page.common_prefixes.iter().map(|p| CommonPrefix {
        prefix: Some(form.write(p.clone())),
    });
    (Some(objects.collect()), Some(prefixes.collect()))
}

impl EddyS3 {
    async fn list(
        &self,
        bucket: &str,
        prefix: Option<String>,
        delimiter: Option<String>,
        start: Option<ListPosition>,
        max: Option<i32>,
    ) -> S3Result<ListPage> {
        let params = ListParams {
            prefix: prefix.unwrap_or_default(),
            // An empty delimiter groups nothing, as none does.
            delimiter: delimiter.filter(|d| !d.is_empty()),
            start,
            max_keys: page_size(max, "max-keys")?,
        };
        self.services
            .objects
            .list_objects(&bucket_name(bucket)?, &params)
            .await
            .map_err(s3_error)
    }
}

/// Where the next page of a truncated v1 or versions listing starts: the last key or common
/// prefix of this one, whichever sorts later, as S3 gives it.
fn next_marker(page: &ListPage) -> Option<String> {
    page.is_truncated().then(|| {
        let last_key = page.objects.last().map(|o| o.key.to_string());
        let last_prefix = page.common_prefixes.last().cloned();
        last_key.max(last_prefix).unwrap_or_default()
    })
}

impl EddyS3 {
    /// A page after a key `marker` (v1 and versions listings), the marker of the page after it
    /// (found before the page is cut down), and the page as `principal` may see it.
    async fn marked_page(
        &self,
        principal: &Principal,
        bucket: &str,
        (prefix, delimiter): (Option<String>, Option<String>),
        marker: Option<String>,
        max_keys: Option<i32>,
    ) -> S3Result<(ListPage, Option<String>)> {
        let after = marker.map(ListPosition::After);
        let mut page = self
            .list(bucket, prefix, delimiter, after, max_keys)
            .await?;
        let next = next_marker(&page);
        principal.filter_listing(bucket, &mut page);
        Ok((page, next))
    }

    pub(super) async fn objects_page(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let principal = signer(&req)?;
        let input = req.input;
        let form = KeyForm::of(input.encoding_type.as_ref())?;
        let marker = input.marker.filter(|m| !m.is_empty());
        let (page, next_marker) = self
            .marked_page(
                &principal,
                &input.bucket,
                (input.prefix.clone(), input.delimiter.clone()),
                marker.clone(),
                input.max_keys,
            )
            .await?;
        let (contents, common_prefixes) = listed(&page, form, true);
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(form.write(input.prefix.unwrap_or_default())),
            // Echoed as sent, empty when none was.
            marker: Some(form.write(marker.unwrap_or_default())),
            max_keys: input.max_keys.or(Some(eddy_objects::MAX_LIST_KEYS as i32)),
            is_truncated: Some(page.is_truncated()),
            contents,
            common_prefixes,
            delimiter: form.write_opt(input.delimiter.filter(|d| !d.is_empty())),
            next_marker: form.write_opt(next_marker),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    pub(super) async fn objects_page_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let principal = signer(&req)?;
        let input = req.input;
        let form = KeyForm::of(input.encoding_type.as_ref())?;
        let token = input.continuation_token.as_ref().filter(|t| !t.is_empty());
        let start = match (token, &input.start_after) {
            (Some(token), _) => Some(ListPosition::from_token(token).ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    "the continuation token is not one this server gave out",
                )
            })?),
            (None, Some(after)) if !after.is_empty() => Some(ListPosition::After(after.clone())),
            (None, _) => None,
        };
        let mut page = self
            .list(
                &input.bucket,
                input.prefix.clone(),
                input.delimiter.clone(),
                start,
                input.max_keys,
            )
            .await?;
        principal.filter_listing(&input.bucket, &mut page);
        let (contents, common_prefixes) = listed(&page, form, input.fetch_owner == Some(true));
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(form.write(input.prefix.unwrap_or_default())),
            max_keys: input.max_keys.or(Some(eddy_objects::MAX_LIST_KEYS as i32)),
            key_count: Some((page.objects.len() + page.common_prefixes.len()) as i32),
            continuation_token: input.continuation_token,
            is_truncated: Some(page.is_truncated()),
            next_continuation_token: page.next.as_ref().map(ListPosition::token),
            contents,
            common_prefixes,
            delimiter: form.write_opt(input.delimiter.filter(|d| !d.is_empty())),
            encoding_type: input.encoding_type,
            start_after: form.write_opt(input.start_after),
            ..Default::default()
        }))
    }

    /// An unversioned bucket's listing of versions, as S3 answers it: each object once, as its
    /// only and latest version, with the version id `null`.
    pub(super) async fn versions_page(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let principal = signer(&req)?;
        let input = req.input;
        let form = KeyForm::of(input.encoding_type.as_ref())?;
        only_null_version(
            input
                .version_id_marker
                .as_deref()
                .filter(|id| !id.is_empty()),
        )?;
        let marker = input.key_marker.clone().filter(|m| !m.is_empty());
        let (page, next_key_marker) = self
            .marked_page(
                &principal,
                &input.bucket,
                (input.prefix.clone(), input.delimiter.clone()),
                marker.clone(),
                input.max_keys,
            )
            .await?;
        let (objects, common_prefixes) = listed(&page, form, true);
        let versions = objects
            .unwrap_or_default()
            .into_iter()
            .map(|o| ObjectVersion {
                e_tag: o.e_tag,
                is_latest: Some(true),
                key: o.key,
                last_modified: o.last_modified,
                owner: o.owner,
                size: o.size,
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                version_id: Some("null".into()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(form.write(input.prefix.unwrap_or_default())),
            key_marker: form.write_opt(marker),
            version_id_marker: input.version_id_marker,
            max_keys: input.max_keys.or(Some(eddy_objects::MAX_LIST_KEYS as i32)),
            is_truncated: Some(page.is_truncated()),
            next_key_marker: form.write_opt(next_key_marker.clone()),
            next_version_id_marker: next_key_marker.map(|_| "null".to_string()),
            versions: Some(versions),
            common_prefixes,
            delimiter: form.write_opt(input.delimiter.filter(|d| !d.is_empty())),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }
}
