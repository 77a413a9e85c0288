//! Request bodies with a deadline for progress: a client that stops sending in the middle of a
//! body (or trickles it) cannot hold a connection, a task and a buffer forever.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use http_body::Frame;
use tokio::time::{Instant, Sleep};

/// Whether reading a body failed because it passed the limit it was read with
/// (`axum::body::to_bytes`'s limit; the error's text is all that names it).
pub fn over_limit(error: &axum::Error) -> bool {
    error.to_string().contains("length limit")
}

/// How long a body may go without delivering a byte, unless configured otherwise.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The error a stalled body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled: no data for {0:?}")]
pub struct Stalled(pub Duration);

/// `body`, failing once `idle` passes without a frame.
pub fn with_idle_timeout(body: Body, idle: Duration) -> Body {
    Body::new(IdleTimeout {
        inner: body,
        idle,
        sleep: Box::pin(tokio::time::sleep(idle)),
    })
}

struct IdleTimeout {
    inner: Body,
    idle: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl HttpBody for IdleTimeout {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let idle = this.idle;
                this.sleep.as_mut().reset(Instant::now() + idle);
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(Stalled(this.idle))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_sending_fails_and_a_steady_one_does_not() {
        use futures_util::StreamExt;
        // One chunk, then nothing ever again.
        let first =
            futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"first"))]);
        let stalled = Body::from_stream(first.chain(futures_util::stream::pending()));
        let read =
            axum::body::to_bytes(with_idle_timeout(stalled, Duration::from_secs(30)), 1 << 20);
        // Time is paused: the read waits out 30 virtual seconds and gives up.
        let error = read.await.unwrap_err();
        assert!(format!("{error:?}").contains("Stalled"), "{error:?}");

        let steady = Body::from("all of it at once");
        let read =
            axum::body::to_bytes(with_idle_timeout(steady, Duration::from_secs(30)), 1 << 20);
        assert_eq!(read.await.unwrap(), "all of it at once");
    }
}
