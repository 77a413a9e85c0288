//! The log of refused requests, bounded: a client that sends thousands of bad requests gets a
//! few lines and a count, not a log that grows without end.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines logged per window at most; the rest are counted.
const LINES_PER_WINDOW: u32 = 20;
const WINDOW: Duration = Duration::from_secs(60);
/// The most of a client-sent value (a path, a key id) a line repeats.
const QUOTED: usize = 128;

#[derive(Default)]
pub struct RefusalLog {
    state: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    started: Option<Instant>,
    logged: u32,
    unlogged: u64,
}

impl RefusalLog {
    /// Logs a refusal unless this window's lines are used up. `path` and `reason` are cut.
    pub fn refused(&self, path: &str, reason: &dyn std::fmt::Display) {
        let now = Instant::now();
        let mut window = self.state.lock().expect("refusal log lock");
        if window
            .started
            .is_none_or(|s| now.duration_since(s) >= WINDOW)
        {
            if window.unlogged > 0 {
                tracing::info!(
                    count = window.unlogged,
                    "more requests were refused for their credentials than were logged"
                );
            }
            *window = Window {
                started: Some(now),
                ..Window::default()
            };
        }
        if window.logged < LINES_PER_WINDOW {
            window.logged += 1;
            tracing::info!(
                path = quoted(path),
                reason = quoted(&reason.to_string()),
                "request refused: credentials"
            );
        } else {
            window.unlogged += 1;
        }
    }
}

/// `text`, cut to a length fit for a log line.
pub fn quoted(text: &str) -> String {
    let mut cut: String = text.chars().take(QUOTED).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_logs_a_few_lines_and_counts_the_rest() {
        let log = RefusalLog::default();
        for _ in 0..1000 {
            log.refused(&"x".repeat(16 * 1024), &"bad signature");
        }
        let window = log.state.lock().unwrap();
        assert_eq!(window.logged, LINES_PER_WINDOW);
        assert_eq!(window.unlogged, 1000 - u64::from(LINES_PER_WINDOW));
        assert!(quoted(&"x".repeat(16 * 1024)).len() < 200);
    }
}
