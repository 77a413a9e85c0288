//! Errors as the table and admin APIs send them: `{"error": {"code": …, "message": …}}` with the
//! status of the error's kind. The one place where error kinds become HTTP statuses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use eddy_core::{Classify, ErrorKind};
use serde_json::json;

/// The HTTP status for an error kind.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error answer of the table and admin APIs.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// From a library error: its kind gives the status, [`ApiCode`] the code. Internal errors
    /// are logged in full and answered without details.
    pub fn from_error<E: Classify + ApiCode + std::fmt::Display>(error: E) -> Self {
        let kind = error.kind();
        if kind == ErrorKind::Internal {
            tracing::error!(%error, "internal error");
            return Self::new(
                status(kind),
                "InternalError",
                "eddy failed to complete the request; see its log",
            );
        }
        Self::new(status(kind), error.api_code(), error.to_string())
    }
}

/// The code the table, Lambda-invoke and admin APIs send for an error, written out per variant:
/// clients match on these, so renaming a variant must not change them.
pub trait ApiCode {
    fn api_code(&self) -> &'static str;
}

impl ApiCode for eddy_core::InvalidName {
    fn api_code(&self) -> &'static str {
        "InvalidName"
    }
}

impl ApiCode for eddy_bus::BusError {
    fn api_code(&self) -> &'static str {
        use eddy_bus::BusError as E;
        use eddy_bus::Failure as F;
        match self {
            E::Database { failure, .. } => match failure {
                F::UniqueViolation => "Conflict",
                F::Constraint => "ConstraintViolation",
                F::Full => "StorageFull",
                F::Io => "StorageError",
                F::Busy => "Busy",
                F::Other => "DatabaseError",
            },
            E::Decode(_) | E::CorruptRecord { .. } => "CorruptData",
            E::Migrate(_) | E::SchemaTooNew { .. } => "SchemaError",
            E::Copy(_) => "CopyFailed",
            E::DataDirInUse { .. } => "DataDirInUse",
            E::Unreachable(_) => "DatabaseUnreachable",
            E::Io { .. } => "StorageError",
            E::NotCommitted(_) => "NotCommitted",
            E::WriterStopped => "WriterStopped",
            E::StorageFull { .. } => "StorageFull",
            E::StorageFailed { .. } => "StorageFailed",
            E::StorageFault { .. } => "StorageFault",
        }
    }
}

impl ApiCode for eddy_tables::TableError {
    fn api_code(&self) -> &'static str {
        use eddy_tables::TableError as E;
        match self {
            E::InvalidName(e) => e.api_code(),
            E::NoSuchTable(_) => "NoSuchTable",
            E::InvalidSchema(_) => "InvalidSchema",
            E::CorruptCatalog { .. } => "CorruptCatalog",
            E::DestructiveChange { .. } => "DestructiveChange",
            E::UnknownColumn { .. } => "UnknownColumn",
            E::MissingColumn { .. } => "MissingColumn",
            E::WrongType { .. } => "WrongType",
            E::NotAnObject(_) => "NotAnObject",
            E::KeyExists(_) => "KeyExists",
            E::NoSuchRow(_) => "NoSuchRow",
            E::KeyChange { .. } => "KeyChange",
            E::KeyShape { .. } => "KeyShape",
            E::InvalidQuery(_) => "InvalidQuery",
            E::BatchTooLarge { .. } => "BatchTooLarge",
            E::Bus(e) => e.api_code(),
        }
    }
}

impl ApiCode for eddy_executor::ExecError {
    fn api_code(&self) -> &'static str {
        use eddy_executor::ExecError as E;
        match self {
            E::NoSuchFunction(_) => "NoSuchFunction",
            E::Throttled { .. } => "Throttled",
            E::Unrunnable { .. } => "Unrunnable",
            E::NoSuchTrigger(_) => "NoSuchTrigger",
            E::InvalidReplay(_) => "InvalidReplay",
            E::Corrupt(_) => "CorruptData",
            E::Bus(e) => e.api_code(),
        }
    }
}

impl ApiCode for eddy_node::NodeError {
    fn api_code(&self) -> &'static str {
        use eddy_node::NodeError as E;
        match self {
            E::InvalidManifests(_) => "InvalidManifest",
            E::Lock(_) | E::Bucket { .. } | E::Table { .. } | E::Tables(_) | E::Secret(_) => {
                "CannotApply"
            }
            E::Rows(e) => e.api_code(),
            E::Corrupt(_) => "CorruptData",
            E::InvalidNodeId(_) | E::NodeIdFile { .. } | E::Watcher(_) => "NodeError",
            E::TargetNotEmpty { .. } | E::Incomplete { .. } => "CopyFailed",
            E::Executor(e) => e.api_code(),
            E::Objects(_) => "CannotApply",
            E::Store(e) => e.api_code(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<eddy_tables::TableError> for ApiError {
    fn from(e: eddy_tables::TableError) -> Self {
        Self::from_error(e)
    }
}

impl From<eddy_executor::ExecError> for ApiError {
    fn from(e: eddy_executor::ExecError) -> Self {
        Self::from_error(e)
    }
}

impl From<eddy_node::NodeError> for ApiError {
    fn from(e: eddy_node::NodeError) -> Self {
        Self::from_error(e)
    }
}

impl From<eddy_bus::BusError> for ApiError {
    fn from(e: eddy_bus::BusError) -> Self {
        Self::from_error(e)
    }
}

impl From<eddy_core::InvalidName> for ApiError {
    fn from(e: eddy_core::InvalidName) -> Self {
        Self::from_error(e)
    }
}

/// An object store failure as the S3 API reports it: S3's own code for each condition.
/// Internal errors are logged in full and answered without details.
pub fn s3_error(error: eddy_objects::ObjectError) -> s3s::S3Error {
    use eddy_objects::ObjectError as E;
    use s3s::S3ErrorCode as C;
    let code = match &error {
        E::InvalidName(_) => C::InvalidArgument,
        E::NoSuchBucket(_) => C::NoSuchBucket,
        E::BucketAlreadyExists(_) => C::BucketAlreadyOwnedByYou,
        E::BucketNotEmpty(_) => C::BucketNotEmpty,
        E::NoSuchKey { .. } => C::NoSuchKey,
        E::NoSuchUpload(_) => C::NoSuchUpload,
        E::InvalidPart(_) => C::InvalidPart,
        E::InvalidPartOrder => C::InvalidPartOrder,
        E::EntityTooSmall { .. } => C::EntityTooSmall,
        E::InvalidPartNumber(_) => C::InvalidArgument,
        E::NoParts => C::MalformedXML,
        E::InvalidRange { .. } => C::InvalidRange,
        E::PreconditionFailed(_) => C::PreconditionFailed,
        E::BadDigest | E::ChecksumMismatch(_) => C::BadDigest,
        E::InvalidCopyRange { .. } => C::InvalidRange,
        E::ConditionalRequestConflict(_) => {
            // A code s3s does not name, with the status S3 gives it.
            let mut conflict = s3s::S3Error::with_message(
                C::Custom("ConditionalRequestConflict".into()),
                error.to_string(),
            );
            conflict.set_status_code(StatusCode::CONFLICT);
            return conflict;
        }
        E::TooLarge { .. } => C::EntityTooLarge,
        E::TooSmall { .. } => C::EntityTooSmall,
        E::InvalidRequest(_) => C::InvalidRequest,
        E::Body(_) => C::IncompleteBody,
        E::BlobCollected | E::BlobStore(_) => C::ServiceUnavailable,
        E::Bus(_) | E::Io { .. } => match error.kind() {
            ErrorKind::Unavailable | ErrorKind::StorageFull => C::ServiceUnavailable,
            _ => {
                tracing::error!(%error, "internal error");
                return s3s::S3Error::with_message(
                    C::InternalError,
                    "eddy failed to complete the request; see its log",
                );
            }
        },
    };
    s3s::S3Error::with_message(code, error.to_string())
}

/// An S3-style XML error answer with any code (those s3s does not name among them).
pub fn s3_response(status: StatusCode, code: &str, message: &str) -> Response {
    let mut error = s3s::S3Error::with_message(
        s3s::S3ErrorCode::Custom(code.to_string().into()),
        message.to_string(),
    );
    error.set_status_code(status);
    match error.to_http_response() {
        Ok(response) => response.map(axum::body::Body::new),
        Err(_) => status.into_response(),
    }
}

/// A refused credential check. The Lambda API answers with the error types AWS uses; the
/// `/_eddy/` API with its JSON error.
pub fn auth_error(lambda: bool, error: &eddy_sigv4::SigError) -> Response {
    use eddy_sigv4::SigError as E;
    let (status, lambda_type, code) = match error {
        E::Missing => (
            StatusCode::UNAUTHORIZED,
            "MissingAuthenticationTokenException",
            "MissingAuthentication",
        ),
        E::Malformed(_) => (
            StatusCode::BAD_REQUEST,
            "IncompleteSignatureException",
            "MalformedAuthorization",
        ),
        E::UnknownAccessKey(_) => (
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "InvalidAccessKeyId",
        ),
        E::TooSkewed(_) => (
            StatusCode::FORBIDDEN,
            "InvalidSignatureException",
            "RequestTimeTooSkewed",
        ),
        E::Mismatch => (
            StatusCode::FORBIDDEN,
            "InvalidSignatureException",
            "SignatureDoesNotMatch",
        ),
    };
    if lambda {
        crate::lambda::error(status, lambda_type, error.to_string())
    } else {
        ApiError::new(status, code, error.to_string()).into_response()
    }
}

/// A body over `limit` bytes, on the Lambda API or the `/_eddy/` API.
pub fn too_large(lambda: bool, limit: usize) -> Response {
    let message = format!("the request body is over the {limit} bytes accepted");
    if lambda {
        crate::lambda::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            message,
        )
    } else {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "TooLarge", message).into_response()
    }
}

/// A body that did not arrive in time.
pub fn body_timeout(lambda: bool) -> Response {
    let message = "the request body did not arrive in time";
    if lambda {
        crate::lambda::error(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeoutException",
            message,
        )
    } else {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, "RequestTimeout", message).into_response()
    }
}

/// A request whose principal may not do what it asks. Nothing was changed.
pub fn access_denied(lambda: bool, principal: &str, action: &str, resource: &str) -> Response {
    let message = format!("{principal} may not {action} on {resource}");
    if lambda {
        crate::lambda::error(StatusCode::FORBIDDEN, "AccessDeniedException", message)
    } else {
        ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", message).into_response()
    }
}
