//! Tracing initialisation and bounded waiting.

use std::fmt;
use std::future::Future;
use std::sync::Once;
use std::time::{Duration, Instant};

/// Installs a global `tracing` subscriber for tests, once per process.
///
/// Output goes through the libtest capture (`with_test_writer`), so it shows only for
/// failing tests (or with `--nocapture`). The filter comes from `RUST_LOG`; without it,
/// `info` is used. Calling it again (from any test) does nothing.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // Another subscriber may already be installed (e.g. by the test itself): fine.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// The error of [`try_wait_until`]: the condition did not hold in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    /// What was awaited, as given by the caller.
    pub what: String,
    /// The limit that passed.
    pub timeout: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for: {}",
            self.timeout, self.what
        )
    }
}

impl std::error::Error for TimedOut {}

/// Polls `condition` until it returns `true`, for at most `timeout`.
///
/// The condition is polled at once, then with a short back-off (5 ms doubling up to 100 ms).
/// A single poll that hangs is cut off by the overall timeout as well.
pub async fn try_wait_until<F, Fut>(
    timeout: Duration,
    what: impl fmt::Display,
    mut condition: F,
) -> Result<(), TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let poll = async {
        let mut pause = Duration::from_millis(5);
        loop {
            if condition().await {
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    };
    tokio::time::timeout(timeout, poll)
        .await
        .map_err(|_| TimedOut {
            what: what.to_string(),
            timeout,
        })
}

/// Polls `condition` until it returns `true`; panics if that takes longer than `timeout`.
///
/// `what` names the awaited condition in the panic message, e.g.
/// `wait_until(Duration::from_secs(30), "a leader is elected", || async { ... }).await`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: impl fmt::Display, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    if let Err(e) = try_wait_until(timeout, what, condition).await {
        panic!("{e} (gave up after {:?})", started.elapsed());
    }
}
