//! Retrying transient failures with exponential back-off.

use std::future::Future;
use std::time::Duration;

use crate::client::{self, Code};

/// How a call that failed transiently (an endpoint unreachable or unavailable) is tried
/// again: up to `max_attempts` tries in all, waiting `initial_delay`, then each wait
/// `multiplier` times the last, at most `max_delay`. Semantic errors (a compacted revision,
/// an unknown lease, a refused request) are never retried.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
}

impl Default for RetryPolicy {
    /// 3 attempts, 100 ms, doubling, at most 2 s.
    fn default() -> Self {
        RetryPolicy::new()
    }
}

impl RetryPolicy {
    /// 3 attempts, 100 ms, doubling, at most 2 s.
    pub const fn new() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            multiplier: 2.0,
        }
    }

    /// Tries in all, the first included (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The wait before the second try.
    pub fn with_initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The longest wait between tries.
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// How much each wait grows (at least 1).
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier.is_finite() { multiplier.max(1.0) } else { 1.0 };
        self
    }

    /// Tries in all.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait after the `attempt`th failed try (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let grown = self.initial_delay.as_secs_f64() * self.multiplier.powi(attempt.saturating_sub(1) as i32);
        Duration::from_secs_f64(grown.min(self.max_delay.as_secs_f64()))
    }

    /// Runs `call` until it succeeds, fails for good, or has been tried `max_attempts`
    /// times.
    pub(crate) async fn run<T, E, F, Fut>(&self, mut call: F) -> std::result::Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: Transient,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if self.again(&mut attempt, &e).await => {}
                result => return result,
            }
        }
    }

    /// After the `attempt`th try failed with `error`: whether to try again, having waited
    /// the back-off if so (and counted the attempt).
    pub(crate) async fn again<E: Transient>(&self, attempt: &mut u32, error: &E) -> bool {
        if !error.is_transient() || *attempt >= self.max_attempts {
            return false;
        }
        tracing::debug!(attempt = *attempt, "transient failure, retrying: {error:?}");
        futures_timer::Delay::new(self.delay(*attempt)).await;
        *attempt += 1;
        true
    }
}

/// Whether an error is worth another try: the endpoint did not answer, or answered that it
/// cannot serve now.
pub(crate) trait Transient: std::fmt::Debug {
    fn is_transient(&self) -> bool;
}

impl Transient for client::Error {
    fn is_transient(&self) -> bool {
        match self {
            client::Error::GRpcStatus(status) => status.code() == Code::Unavailable,
            client::Error::TransportError(_) | client::Error::IoError(_) => true,
            _ => false,
        }
    }
}

impl Transient for crate::concurrency::Error {
    fn is_transient(&self) -> bool {
        matches!(self, crate::concurrency::Error::Client(e) if e.is_transient())
    }
}

impl Transient for super::Error {
    fn is_transient(&self) -> bool {
        match self {
            super::Error::Client(e) => e.is_transient(),
            super::Error::Concurrency(e) => e.is_transient(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::client::Status;

    #[test]
    fn delays_grow_by_the_multiplier_up_to_the_cap() {
        let policy = RetryPolicy::new();
        let delays: Vec<_> = (1..=6).map(|a| policy.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000]);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_semantic_ones_are_not() {
        let policy = RetryPolicy::new().with_initial_delay(Duration::from_millis(1));
        let tries = Cell::new(0);
        let unavailable =
            || -> client::Error { Status::new(Code::Unavailable, "etcdserver: leader changed").into() };
        let result: std::result::Result<(), _> = policy
            .run(|| {
                tries.set(tries.get() + 1);
                async { Err(unavailable()) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(tries.get(), 3, "three attempts in all");

        tries.set(0);
        let result: std::result::Result<(), client::Error> = policy
            .run(|| {
                tries.set(tries.get() + 1);
                async { Err(crate::Error::Compacted.into()) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(tries.get(), 1, "a compacted revision is not retried");

        tries.set(0);
        let result = policy
            .run(|| {
                tries.set(tries.get() + 1);
                let attempt = tries.get();
                async move {
                    if attempt < 2 {
                        Err(unavailable())
                    } else {
                        Ok(attempt)
                    }
                }
            })
            .await;
        assert_eq!(result.unwrap(), 2, "succeeds on the second try");
    }
}
