//! [`Config`]: the settings the session task runs with. The public
//! [`ClientBuilder`](crate::ClientBuilder) fills it in; the session layer never looks at the
//! builder.

use std::time::Duration;

use bytes::Bytes;
use zk_proto::Chroot;

use crate::hosts::HostSpec;
use crate::sasl::DigestCredentials;
use crate::transport::Connector;

/// Settings shared by the client handles and the session task.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) hosts: Vec<HostSpec>,
    pub(crate) chroot: Chroot,
    pub(crate) session_timeout: Duration,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) request_timeout: Duration,
    pub(crate) read_only: bool,
    pub(crate) fail_fast: bool,
    pub(crate) max_frame_out: usize,
    pub(crate) max_frame_in: usize,
    /// Back-off between two full rounds of failed hosts: exponential from the first to the
    /// second value, with jitter.
    pub(crate) reconnect_backoff: (Duration, Duration),
    pub(crate) auths: Vec<(String, Bytes)>,
    pub(crate) sasl: Option<DigestCredentials>,
    pub(crate) connector: Connector,
    pub(crate) coalesce: Option<Duration>,
    pub(crate) reconnect_delay: Duration,
    pub(crate) max_queued: usize,
    /// Seed of the session's random choices (host order, back-off and reconnect jitter);
    /// `None`: seeded from the process's hash randomness.
    pub(crate) seed: Option<u64>,
}
