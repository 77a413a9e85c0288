//! The shared error vocabulary. Each library keeps its own typed errors; every one of them can
//! say which [`ErrorKind`] it is, so the server maps kinds to wire codes in exactly one place.

use thiserror::Error;

/// What kind of failure an error is, independent of which API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or breaks a rule; nothing was changed.
    InvalidInput,
    /// The named thing does not exist.
    NotFound,
    /// The request conflicts with the current state (an existing key, a non-empty bucket).
    Conflict,
    /// A body, key or value is larger than allowed.
    TooLarge,
    /// A precondition the client set does not hold.
    PreconditionFailed,
    /// The platform cannot take the request now (shutting down, overloaded); retry later.
    Unavailable,
    /// The storage under eddy is full: writes are refused until space returns (reads and
    /// deletes go on); retry later.
    StorageFull,
    /// A fault inside eddy or its storage: an I/O or database error.
    Internal,
}

/// Errors that know their [`ErrorKind`].
pub trait Classify {
    fn kind(&self) -> ErrorKind;
}

/// A name or key that breaks its rule. `value` is quoted and cut to a bounded length.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("invalid {what} {value}: {reason}")]
pub struct InvalidName {
    pub what: &'static str,
    pub value: String,
    pub reason: String,
}

impl Classify for InvalidName {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}
