//! Curator-like retry policies on [`backon`], and [`retry`] to run an operation under one.
//!
//! Only errors that say so ([`Error::is_retryable`]: connection loss, timeouts, throttling)
//! are retried; everything else is returned at once. A retried write whose previous
//! attempt's outcome was unknown may meet its own effect (e.g. [`Error::NodeExists`]), so
//! make writes idempotent or check before retrying them.
//!
//! ```
//! use std::time::Duration;
//! use zk_client::retry::{retry, RetryPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = zk_server_lite::Server::builder().start().await?;
//! # let client = zk_client::Client::connect(&server.connect_string()).await?;
//! # client.create("/config", b"", zk_client::CreateMode::Persistent).await?;
//! let policy = RetryPolicy::exponential(Duration::from_millis(100), Duration::from_secs(5), 10);
//! let (data, _stat) = retry(&policy, || client.get_data("/config")).await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ConstantBuilder, ExponentialBuilder};
use tokio::time::Instant;

use crate::error::Error;

/// When and how often to retry (Curator's `ExponentialBackoffRetry`, `RetryNTimes`,
/// `RetryUntilElapsed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Exponential {
        base: Duration,
        max_delay: Duration,
        max_retries: usize,
    },
    NTimes {
        retries: usize,
        delay: Duration,
    },
    UntilElapsed {
        total: Duration,
        delay: Duration,
    },
}

impl RetryPolicy {
    /// Up to `max_retries` retries, waiting `base`, then twice as long each time (with
    /// random jitter), never more than `max_delay`.
    pub fn exponential(base: Duration, max_delay: Duration, max_retries: usize) -> RetryPolicy {
        RetryPolicy {
            kind: Kind::Exponential {
                base,
                max_delay: max_delay.max(base),
                max_retries,
            },
        }
    }

    /// Up to `retries` retries, `delay` apart.
    pub fn n_times(retries: usize, delay: Duration) -> RetryPolicy {
        RetryPolicy {
            kind: Kind::NTimes { retries, delay },
        }
    }

    /// Retries `delay` apart until `total` has passed since the first attempt.
    pub fn until_elapsed(total: Duration, delay: Duration) -> RetryPolicy {
        RetryPolicy {
            kind: Kind::UntilElapsed { total, delay },
        }
    }

    /// Never retry.
    pub fn never() -> RetryPolicy {
        RetryPolicy::n_times(0, Duration::ZERO)
    }

    /// The delays before each retry (the iterator ends when the policy gives up, except
    /// for [`until_elapsed`](Self::until_elapsed), which [`retry`] bounds by time).
    pub fn delays(&self) -> Box<dyn Iterator<Item = Duration> + Send + Sync> {
        match self.kind {
            Kind::Exponential {
                base,
                max_delay,
                max_retries,
            } => Box::new(
                ExponentialBuilder::default()
                    .with_min_delay(base)
                    .with_max_delay(max_delay)
                    .with_factor(2.0)
                    .with_jitter()
                    .with_max_times(max_retries)
                    .build(),
            ),
            Kind::NTimes { retries, delay } => Box::new(
                ConstantBuilder::default()
                    .with_delay(delay)
                    .with_max_times(retries)
                    .build(),
            ),
            Kind::UntilElapsed { delay, .. } => Box::new(
                ConstantBuilder::default()
                    .with_delay(delay)
                    .without_max_times()
                    .build(),
            ),
        }
    }

    fn deadline(&self, start: Instant) -> Option<Instant> {
        match self.kind {
            Kind::UntilElapsed { total, .. } => Some(start + total),
            _ => None,
        }
    }
}

/// Runs `op` until it succeeds, fails with an error that is not
/// [retryable](Error::is_retryable), or `policy` gives up (then the last error is returned).
///
/// `op` is called again for each attempt, so it builds a fresh request every time.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = zk_server_lite::Server::builder().start().await?;
/// # let client = zk_client::Client::connect(&server.connect_string()).await?;
/// use std::time::Duration;
/// use zk_client::retry::{retry, RetryPolicy};
/// let policy = RetryPolicy::n_times(3, Duration::from_millis(200));
/// retry(&policy, || client.sync("/")).await?;
/// # Ok(()) }
/// ```
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let start = Instant::now();
    let deadline = policy.deadline(start);
    let mut delays = policy.delays();
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(error) if !error.is_retryable() => return Err(error),
            Err(error) => error,
        };
        let Some(delay) = delays.next() else {
            return Err(error);
        };
        if deadline.is_some_and(|deadline| Instant::now() + delay > deadline) {
            return Err(error);
        }
        tracing::debug!(%error, ?delay, "retrying");
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn lost() -> Error {
        Error::ConnectionLoss {
            outcome_unknown: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_retryable_errors() {
        let calls = AtomicUsize::new(0);
        let policy = RetryPolicy::n_times(3, Duration::from_millis(10));
        let result: Result<(), Error> = retry(&policy, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::NoNode)
        })
        .await;
        assert_eq!(result, Err(Error::NoNode));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        calls.store(0, Ordering::SeqCst);
        let result: Result<(), Error> = retry(&policy, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(lost())
        })
        .await;
        assert_eq!(result, Err(lost()));
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        calls.store(0, Ordering::SeqCst);
        let result = retry(&policy, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(Error::Timeout)
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(result, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn until_elapsed_is_bounded_by_time() {
        let calls = AtomicUsize::new(0);
        let policy = RetryPolicy::until_elapsed(Duration::from_secs(1), Duration::from_millis(100));
        let start = Instant::now();
        let result: Result<(), Error> = retry(&policy, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(lost())
        })
        .await;
        assert!(result.is_err());
        assert!(start.elapsed() <= Duration::from_secs(1));
        assert_eq!(calls.load(Ordering::SeqCst), 11);
    }

    #[test]
    fn exponential_delays_grow_to_the_cap() {
        let policy =
            RetryPolicy::exponential(Duration::from_millis(10), Duration::from_millis(50), 6);
        let delays: Vec<Duration> = policy.delays().collect();
        assert_eq!(delays.len(), 6);
        // Jitter adds up to one more delay; the cap bounds the base.
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(100)));
        assert!(RetryPolicy::never().delays().next().is_none());
    }
}
