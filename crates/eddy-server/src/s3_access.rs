//! What each S3 request needs: an action on a bucket or an object, checked against the
//! principal that signed it before the operation runs. Denials are S3's `AccessDenied`.
//!
//! Two operations are checked inside their handlers, where the details are: ListBuckets
//! answers only the buckets the principal reaches, and DeleteObjects refuses key by key.

use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::*;
use s3s::path::S3Path;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result};

use crate::Shared;
use crate::auth::Principal;

pub struct S3Permissions(pub Shared);

/// `bucket/NAME` or `bucket/NAME/KEY`, the resources roles and policies name.
pub fn resource(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("bucket/{bucket}/{key}"),
        None => format!("bucket/{bucket}"),
    }
}

/// The principal that signed a request, as the access check found it.
pub fn signer<T>(req: &S3Request<T>) -> S3Result<Principal> {
    req.extensions.get::<Principal>().cloned().ok_or_else(|| {
        S3Error::with_message(S3ErrorCode::AccessDenied, "the request is not signed")
    })
}

impl S3Permissions {
    /// Refuses (and counts) unless `principal` may do `action` on `resource`.
    pub fn require(&self, principal: &Principal, action: &str, resource: &str) -> S3Result<()> {
        if principal.allows(action, resource) {
            return Ok(());
        }
        self.0.guard.denied(principal, action, resource);
        Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            format!("{} may not {action} on {resource}", principal.describe()),
        ))
    }

    fn require_list<T>(
        &self,
        req: &S3Request<T>,
        bucket: &str,
        prefix: Option<&str>,
    ) -> S3Result<()> {
        let principal = signer(req)?;
        let resource = match prefix.filter(|p| !p.is_empty()) {
            Some(prefix) => resource(bucket, Some(prefix)),
            None => resource(bucket, None),
        };
        self.require(&principal, "objects:list", &resource)
    }
}

#[async_trait::async_trait]
impl S3Access for S3Permissions {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let principal = cx
            .credentials()
            .and_then(|c| self.0.principals.lookup(&c.access_key))
            .map(|(_, principal)| principal)
            .ok_or_else(|| {
                S3Error::with_message(S3ErrorCode::AccessDenied, "the request is not signed")
            })?;
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let bucket = bucket.unwrap_or_default();
        let object = || resource(&bucket, key.as_deref());
        let needed = match cx.s3_op().name() {
            // Checked with their details: in the methods below, or in the handlers.
            "ListBuckets"
            | "ListObjects"
            | "ListObjectsV2"
            | "ListObjectVersions"
            | "ListMultipartUploads"
            | "DeleteObjects" => None,
            "CreateBucket" => Some(("objects:write", resource(&bucket, None))),
            "DeleteBucket" => Some(("objects:delete", resource(&bucket, None))),
            "HeadBucket" | "GetBucketLocation" => Some(("objects:list", resource(&bucket, None))),
            "GetObject" | "HeadObject" => Some(("objects:read", object())),
            "PutObject"
            | "CopyObject"
            | "CreateMultipartUpload"
            | "UploadPart"
            | "UploadPartCopy"
            | "CompleteMultipartUpload"
            | "AbortMultipartUpload"
            | "ListParts" => Some(("objects:write", object())),
            "DeleteObject" => Some(("objects:delete", object())),
            // Who may reach a bucket from a browser is the operator's to say.
            "GetBucketCors" => Some(("admin:read", "*".to_string())),
            _ => Some(("admin:write", "*".to_string())),
        };
        if let Some((action, resource)) = needed {
            self.require(&principal, action, &resource)?;
        }
        cx.extensions_mut().insert(principal);
        Ok(())
    }

    /// A copy writes its target (checked above) and reads its source.
    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        let principal = signer(req)?;
        if let CopySource::Bucket { bucket, key, .. } = &req.input.copy_source {
            self.require(&principal, "objects:read", &resource(bucket, Some(key)))?;
        }
        Ok(())
    }

    /// A part copy writes its upload's object (checked above) and reads its source.
    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        let principal = signer(req)?;
        if let CopySource::Bucket { bucket, key, .. } = &req.input.copy_source {
            self.require(&principal, "objects:read", &resource(bucket, Some(key)))?;
        }
        Ok(())
    }

    async fn list_objects(&self, req: &mut S3Request<ListObjectsInput>) -> S3Result<()> {
        self.require_list(req, &req.input.bucket, req.input.prefix.as_deref())
    }

    async fn list_objects_v2(&self, req: &mut S3Request<ListObjectsV2Input>) -> S3Result<()> {
        self.require_list(req, &req.input.bucket, req.input.prefix.as_deref())
    }

    async fn list_object_versions(
        &self,
        req: &mut S3Request<ListObjectVersionsInput>,
    ) -> S3Result<()> {
        self.require_list(req, &req.input.bucket, req.input.prefix.as_deref())
    }

    async fn list_multipart_uploads(
        &self,
        req: &mut S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<()> {
        self.require_list(req, &req.input.bucket, req.input.prefix.as_deref())
    }
}
