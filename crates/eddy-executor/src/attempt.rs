//! One attempt of a function: its context, the run through its runtime, and the invocation
//! record that the settlement commits.

use std::time::Instant;

use eddy_core::{Event, Lineage};
use eddy_subscriptions::FunctionSpec;

use crate::Inner;
use crate::deliveries::{self, InvocationRecord};
use crate::runtime::{self, Context, Outcome};

impl Inner {
    /// One attempt: runs the function and builds its invocation record.
    pub(crate) async fn run(
        &self,
        function: &FunctionSpec,
        payload: &runtime::Payload,
        request_id: String,
        event: Option<&Event>,
        lineage: Lineage,
    ) -> Result<(Outcome, InvocationRecord), runtime::Unrunnable> {
        let start_ms = self.clock.now_ms();
        let context = Context {
            request_id: request_id.clone(),
            function_name: function.name.clone(),
            memory_mb: function.memory_mb,
            deadline_ms: start_ms + function.timeout.as_millis() as i64,
            invoked_function_arn: runtime::function_arn(&function.name),
            event_id: event.map(|e| e.id),
            lineage,
        };
        let handler = self
            .handlers
            .read()
            .expect("handler lock")
            .get(&function.name)
            .cloned();
        let started = Instant::now();
        let outcome = runtime::invoke(function, handler, &self.workers, payload, context).await?;
        let (outcome_name, error_type, error) = match &outcome.result {
            Ok(_) => ("success", None, None),
            Err(e) => (
                if outcome.timed_out {
                    "timeout"
                } else {
                    "error"
                },
                Some(e.error_type.clone()),
                Some(e.message.clone()),
            ),
        };
        let record = InvocationRecord {
            request_id,
            function: function.name.to_string(),
            delivery_id: None,
            event_seq: event.map(|e| e.seq),
            attempt: 1,
            start_ms,
            duration_us: started.elapsed().as_micros() as u64,
            outcome: outcome_name.into(),
            error_type,
            error,
            output: outcome.logs.clone(),
            truncated: outcome.truncated,
            memory_mb: function.memory_mb,
            billed_ms: runtime::billed_ms(outcome.duration),
            max_memory_mb: outcome.max_memory_mb,
            init_us: outcome.init_duration.map(|d| d.as_micros() as u64),
            batch_size: None,
            response: outcome.result.as_ref().ok().map(deliveries::kept_response),
        };
        Ok((outcome, record))
    }
}
