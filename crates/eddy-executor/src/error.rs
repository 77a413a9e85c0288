use eddy_bus::BusError;
use eddy_core::{Classify, ErrorKind};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExecError {
    #[error("function `{0}` does not exist")]
    NoSuchFunction(String),
    #[error(
        "function `{function}` is already running {concurrency} invocations, its concurrency; try again later"
    )]
    Throttled { function: String, concurrency: u32 },
    #[error("function `{function}` cannot run: {reason}")]
    Unrunnable { function: String, reason: String },
    #[error("trigger `{0}` does not exist")]
    NoSuchTrigger(String),
    #[error("cannot replay: {0}")]
    InvalidReplay(String),
    #[error("the delivery records hold something unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl Classify for ExecError {
    fn kind(&self) -> ErrorKind {
        match self {
            ExecError::NoSuchFunction(_) => ErrorKind::NotFound,
            ExecError::Throttled { .. } => ErrorKind::Unavailable,
            ExecError::Unrunnable { .. } => ErrorKind::InvalidInput,
            ExecError::NoSuchTrigger(_) => ErrorKind::NotFound,
            ExecError::InvalidReplay(_) => ErrorKind::InvalidInput,
            ExecError::Corrupt(_) => ErrorKind::Internal,
            ExecError::Bus(e) => e.kind(),
        }
    }
}
