//! When to try again. The delay before attempt n+1 is drawn uniformly from [d/2, d], where d
//! starts at the policy's minimum and doubles with each attempt up to its maximum: the gaps
//! grow, and deliveries that failed together do not retry together.

use std::time::Duration;

use eddy_subscriptions::RetryPolicy;

/// The delay after the `attempt`-th failed attempt (1-based), given a random `unit` in [0, 1).
pub fn delay(policy: &RetryPolicy, attempt: u32, unit: f64) -> Duration {
    let doubling = 2f64.powi(attempt.saturating_sub(1).min(62) as i32);
    let ceiling =
        (policy.backoff_min.as_secs_f64() * doubling).min(policy.backoff_max.as_secs_f64());
    Duration::from_secs_f64(ceiling / 2.0 + ceiling / 2.0 * unit.clamp(0.0, 1.0))
}

/// A random number in [0, 1): a xorshift generator seeded from a fresh UUID's random bits.
/// Jitter needs spread, not cryptographic quality.
pub fn random_unit() -> f64 {
    let mut x = uuid::Uuid::new_v4().as_u64_pair().0 | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_bounds_and_stop_at_the_maximum() {
        let policy = RetryPolicy {
            max_attempts: 10,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            max_event_age: Duration::from_secs(3600),
        };
        assert_eq!(delay(&policy, 1, 0.0), Duration::from_millis(500));
        assert_eq!(delay(&policy, 1, 1.0), Duration::from_secs(1));
        assert_eq!(delay(&policy, 3, 1.0), Duration::from_secs(4));
        assert_eq!(delay(&policy, 20, 1.0), Duration::from_secs(300));
        assert_eq!(delay(&policy, 20, 0.0), Duration::from_secs(150));
        let samples: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(samples.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((0.4..0.6).contains(&mean), "spread: mean {mean}");
    }
}
