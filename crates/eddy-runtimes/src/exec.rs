//! The `exec` runtime: one process per invocation. The event goes to stdin as JSON, the result
//! comes from stdout (JSON, or text), stderr is the log. A non-zero exit or a signal is a
//! failure. The process runs in its own process group, and the whole group is killed when the
//! invocation ends — on timeout, and also after a normal exit, so no child outlives it.

use std::path::Path;
use std::process::Stdio;

use eddy_subscriptions::FunctionSpec;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::{
    Context, FunctionError, LOG_LIMIT, Outcome, RESULT_LIMIT, Unrunnable, Workers,
    lambda_environment,
};

pub(super) async fn run(
    function: &FunctionSpec,
    command: &[String],
    dir: &Path,
    workers: &Workers,
    payload: &crate::Payload,
    context: &Context,
) -> Result<Outcome, Unrunnable> {
    let cannot_start = |e: &dyn std::fmt::Display| {
        Ok(Outcome::failed(FunctionError::new(
            "Runtime.InvalidEntrypoint",
            format!("cannot start {:?}: {e}", command[0]),
        )))
    };
    let Some(program) = workers.interpreters().resolve(&command[0], dir) else {
        return cannot_start(&"no such program on eddy's PATH or in the function's folder");
    };
    let jail =
        workers
            .sandbox()
            .jail(function.name.as_str(), &program.path, &program.needs, dir)?;
    let mut cmd = Command::new(&program.path);
    cmd.args(&command[1..])
        .env_clear()
        .envs(crate::inherited())
        .envs(workers.environment(function.name.as_str()))
        .envs(lambda_environment(function, context))
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    crate::sandbox::confine(&mut cmd, jail);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return cannot_start(&e),
    };
    let group = child.id().map(|id| Pid::from_raw(id as i32));
    let input = payload.to_bytes();
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A handler that never reads its input must not block the invocation.
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
    });
    let stdout = tokio::spawn(read_bounded(
        child.stdout.take().expect("stdout is piped"),
        RESULT_LIMIT,
    ));
    let stderr = tokio::spawn(read_bounded(
        child.stderr.take().expect("stderr is piped"),
        LOG_LIMIT,
    ));

    let status = tokio::time::timeout(function.timeout, child.wait()).await;
    if let Some(group) = group {
        // Ends the handler on timeout, and anything it left running in either case.
        let _ = killpg(group, Signal::SIGKILL);
    }
    let status = match status {
        Ok(Ok(status)) => Some(Ok(status)),
        Ok(Err(e)) => Some(Err(e)),
        Err(_) => {
            let _ = child.wait().await;
            None
        }
    };
    writer.abort();
    let (out, out_cut) = stdout.await.unwrap_or_default();
    let (log, log_cut) = stderr.await.unwrap_or_default();
    let mut logs = String::from_utf8_lossy(&log).into_owned();
    if log_cut {
        logs.push_str(&format!("\n[eddy: the log was cut at {LOG_LIMIT} bytes]"));
    }
    let status = match status {
        None => return Ok(Outcome::timeout(function.timeout, logs, log_cut)),
        Some(Err(e)) => {
            let error = FunctionError::new(
                "Runtime.ExitError",
                format!("waiting for the process failed: {e}"),
            );
            return Ok(Outcome::ended(Err(error), logs, log_cut));
        }
        Some(Ok(status)) => status,
    };
    let result = if out_cut {
        Err(FunctionError::new(
            "Runtime.ResponseSizeTooLarge",
            format!("the result is larger than {RESULT_LIMIT} bytes"),
        ))
    } else if status.success() {
        Ok(parse_result(&out))
    } else {
        Err(exit_error(status, &logs))
    };
    Ok(Outcome::ended(result, logs, log_cut))
}

/// Reads a stream to its end, keeping at most `limit` bytes; says whether it cut.
async fn read_bounded(mut stream: impl AsyncRead + Unpin, limit: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut cut = false;
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return (kept, cut),
            Ok(n) => {
                let room = limit.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
}

/// JSON if stdout holds JSON, else its text; nothing is `null`.
fn parse_result(out: &[u8]) -> Value {
    let text = String::from_utf8_lossy(out);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(trimmed).unwrap_or_else(|_| Value::String(trimmed.to_string()))
}

fn exit_error(status: std::process::ExitStatus, logs: &str) -> FunctionError {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!(
            "was killed by signal {}",
            Signal::try_from(signal).map_or(signal.to_string(), |s| s.to_string())
        ),
        _ => "ended abnormally".to_string(),
    };
    let last_line = logs.lines().rev().find(|l| !l.trim().is_empty());
    let message = match last_line {
        Some(line) => format!("the process {how}: {line}"),
        None => format!("the process {how}"),
    };
    FunctionError::new("Runtime.ExitError", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_json_or_text() {
        assert_eq!(
            parse_result(b" {\"ok\": true}\n"),
            serde_json::json!({"ok": true})
        );
        assert_eq!(parse_result(b"hello\n"), Value::String("hello".into()));
        assert_eq!(parse_result(b""), Value::Null);
    }

    #[tokio::test]
    async fn bounded_reads_cut_and_say_so() {
        let data = vec![b'x'; 10_000];
        let (kept, cut) = read_bounded(&data[..], 4096).await;
        assert_eq!((kept.len(), cut), (4096, true));
        let (kept, cut) = read_bounded(&data[..], 20_000).await;
        assert_eq!((kept.len(), cut), (10_000, false));
    }
}
