//! Tracing initialisation, bounded waiting, four-letter words, free ports and process checks.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Once;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// Default bound of [`four_letter_word`].
pub const FOUR_LETTER_WORD_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends a four-letter word (e.g. `"srvr"`, `"ruok"`, `"mntr"`) and returns the whole answer.
/// Bounded by [`FOUR_LETTER_WORD_TIMEOUT`].
pub async fn four_letter_word(addr: SocketAddr, word: &str) -> io::Result<String> {
    four_letter_word_timeout(addr, word, FOUR_LETTER_WORD_TIMEOUT).await
}

/// [`four_letter_word`] with an explicit bound (connect, send and read to end of stream).
pub async fn four_letter_word_timeout(
    addr: SocketAddr,
    word: &str,
    timeout: Duration,
) -> io::Result<String> {
    if word.len() != 4 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a four-letter word has 4 bytes, not {word:?}"),
        ));
    }
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(word.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("four-letter word {word:?} to {addr} got no answer within {timeout:?}"),
        )
    })?
}

#[cfg(any(feature = "apache", feature = "containers"))]
pub(crate) use host::free_ports;

/// Ports and processes of this host (for the servers the test kit starts).
#[cfg(any(feature = "apache", feature = "containers"))]
pub(crate) mod host {
    use std::collections::HashSet;
    use std::io;
    use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
    use std::sync::Mutex;

    /// Picks `n` distinct free loopback ports (bind `127.0.0.1:0`, read, release).
    ///
    /// Ports handed out earlier by this process are never handed out again, so two servers of
    /// one test binary cannot be given the same port.
    pub(crate) fn free_ports(n: usize) -> io::Result<Vec<u16>> {
        static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        let given = given.get_or_insert_with(HashSet::new);
        let mut held = Vec::new();
        let mut ports = Vec::new();
        let mut tries = 0;
        while ports.len() < n {
            tries += 1;
            if tries > 1000 {
                return Err(io::Error::other("could not find free loopback ports"));
            }
            let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
            let port = l.local_addr()?.port();
            if given.insert(port) {
                ports.push(port);
            }
            // Keep every listener open until all are chosen so the kernel cannot repeat one.
            held.push(l);
        }
        Ok(ports)
    }

    /// Whether a process with this pid exists (Linux: `/proc/<pid>`; zombies count as gone).
    #[allow(unreachable_pub)] // re-exported by `apache`
    pub fn process_alive(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // Field 3 (after the parenthesised command name) is the state; Z = zombie, X = dead.
            Ok(stat) => match stat.rfind(')') {
                Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
                None => true,
            },
            Err(_) => false,
        }
    }
}
