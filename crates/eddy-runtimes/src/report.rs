//! The lines Lambda writes around every invocation's own output, exactly in its format:
//!
//! ```text
//! START RequestId: <id> Version: $LATEST
//! …the function's output…
//! END RequestId: <id>
//! REPORT RequestId: <id>→Duration: 4.42 ms→Billed Duration: 5 ms→Memory Size: 128 MB→Max Memory Used: 41 MB→Init Duration: 61.20 ms
//! ```
//!
//! (→ is a tab.) `Init Duration` appears on a cold start only; `Max Memory Used` where it was measured (the
//! warm workers of the Lambda runtimes). A timeout adds Lambda's `Task timed out` line.

use std::time::Duration;

use crate::Outcome;

/// The milliseconds Lambda bills for a duration: rounded up to the next whole millisecond.
pub fn billed_ms(duration: Duration) -> u64 {
    (duration.as_micros() as u64).div_ceil(1000).max(1)
}

/// A duration in milliseconds with two decimals, rounded up as the billing is: the billed
/// milliseconds are always the shown figure rounded up to a whole one (2.003 ms shows as 2.01 ms,
/// billed 3 ms; rounding to the nearest would show 2.00 ms billed 3 ms).
fn shown_ms(duration: Duration) -> String {
    let hundredths = duration.as_micros().div_ceil(10);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// The invocation's log between its START, END and REPORT lines.
pub(crate) fn frame(request_id: &str, memory_mb: u32, outcome: &Outcome) -> String {
    let mut log = format!("START RequestId: {request_id} Version: $LATEST\n");
    log.push_str(&outcome.logs);
    if !log.ends_with('\n') {
        log.push('\n');
    }
    if let (true, Err(error)) = (outcome.timed_out, &outcome.result) {
        let now = eddy_events::iso8601_millis(now_ms());
        log.push_str(&format!("{now} {request_id} {}\n", error.message));
    }
    log.push_str(&format!("END RequestId: {request_id}\n"));
    log.push_str(&format!(
        "REPORT RequestId: {request_id}\tDuration: {} ms\tBilled Duration: {} ms\tMemory Size: {memory_mb} MB",
        shown_ms(outcome.duration),
        billed_ms(outcome.duration)
    ));
    if let Some(used) = outcome.max_memory_mb {
        log.push_str(&format!("\tMax Memory Used: {used} MB"));
    }
    if let Some(init) = outcome.init_duration {
        log.push_str(&format!("\tInit Duration: {} ms", shown_ms(init)));
    }
    log.push('\n');
    log
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FunctionError;

    fn outcome(logs: &str, duration_us: u64) -> Outcome {
        let mut outcome = Outcome::ended(Ok(serde_json::Value::Null), logs.into(), false);
        outcome.duration = Duration::from_micros(duration_us);
        outcome
    }

    #[test]
    fn lines_are_lambdas() {
        let mut o = outcome("hello\n", 4_420);
        o.max_memory_mb = Some(41);
        o.init_duration = Some(Duration::from_micros(61_204));
        assert_eq!(
            frame("abc", 128, &o),
            "START RequestId: abc Version: $LATEST\nhello\nEND RequestId: abc\n\
             REPORT RequestId: abc\tDuration: 4.42 ms\tBilled Duration: 5 ms\tMemory Size: 128 MB\tMax Memory Used: 41 MB\tInit Duration: 61.21 ms\n"
        );
        let warm = frame("abc", 256, &outcome("no newline", 1_000));
        assert!(warm.contains("no newline\nEND RequestId: abc\n"), "{warm}");
        assert!(
            warm.ends_with("Billed Duration: 1 ms\tMemory Size: 256 MB\n"),
            "{warm}"
        );
    }

    #[test]
    fn billing_rounds_up_to_the_millisecond() {
        assert_eq!(billed_ms(Duration::from_micros(1)), 1);
        assert_eq!(billed_ms(Duration::from_micros(1_000)), 1);
        assert_eq!(billed_ms(Duration::from_micros(1_001)), 2);
        assert_eq!(billed_ms(Duration::ZERO), 1);
    }

    #[test]
    fn the_shown_duration_rounds_up_like_the_bill() {
        assert_eq!(shown_ms(Duration::from_micros(2_000)), "2.00");
        assert_eq!(shown_ms(Duration::from_micros(2_003)), "2.01");
        assert_eq!(shown_ms(Duration::from_micros(1_995)), "2.00");
        assert_eq!(shown_ms(Duration::from_micros(61_204)), "61.21");
        assert_eq!(billed_ms(Duration::from_micros(2_003)), 3);
    }

    #[test]
    fn a_timeout_says_so_before_the_end() {
        let mut o = outcome("", 3_000_000);
        o.timed_out = true;
        o.result = Err(FunctionError::new(
            "Sandbox.Timedout",
            "Task timed out after 3.00 seconds",
        ));
        let log = frame("id1", 128, &o);
        assert!(
            log.lines()
                .nth(1)
                .unwrap()
                .ends_with(" id1 Task timed out after 3.00 seconds"),
            "{log}"
        );
    }
}
