//! Which node leads the duties one node does for all (blob garbage collection when blobs are
//! shared): the one holding a PostgreSQL advisory lock on a connection of its own. When that
//! node dies its connection closes, PostgreSQL lets go of the lock, and another node takes it
//! at its next try. On SQLite the only node leads.
//!
//! Leading is for economy, never for safety: every duty stays correct when two nodes briefly
//! both believe they lead (a partitioned leader whose session PostgreSQL has not yet dropped).

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::watch;

/// The advisory lock whose holder leads ("eddylead").
const LEADER_LOCK: i64 = 0x6564_6479_6c65_6164;
/// How often a follower tries to take the lead, and a leader checks it still holds it.
const LEADER_CHECK: Duration = Duration::from_secs(1);

/// Keeps trying to lead, and says in `leading` whether this node does, until the bus goes.
pub(crate) async fn contend(options: PgConnectOptions, leading: watch::Sender<bool>) {
    let mut ticks = tokio::time::interval(LEADER_CHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held: Option<PgConnection> = None;
    loop {
        ticks.tick().await;
        held = match held {
            // Still connected means still holding: the lock lives as long as the session.
            Some(mut conn) => match conn.ping().await {
                Ok(()) => Some(conn),
                Err(error) => {
                    tracing::warn!(%error, "lost the connection that held the lead");
                    None
                }
            },
            None => try_lead(&options).await,
        };
        leading.send_if_modified(|was| {
            let now = held.is_some();
            if *was != now {
                tracing::info!(leading = now, "singleton duties moved");
            }
            std::mem::replace(was, now) != now
        });
    }
}

/// A connection holding the leader's lock, or `None` if another node holds it (or the
/// database cannot be reached).
async fn try_lead(options: &PgConnectOptions) -> Option<PgConnection> {
    let mut conn = options.connect().await.ok()?;
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(&mut conn)
        .await
        .ok()?;
    if taken {
        Some(conn)
    } else {
        let _ = conn.close().await;
        None
    }
}
