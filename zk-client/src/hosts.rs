//! The connect string (`h1:p1,h2:p2/chroot`) and the host list the session cycles through.
//!
//! Parsing follows Java's `ConnectStringParser`: hosts are separated by commas, a missing
//! port means 2181, IPv6 literals are written in brackets (`[::1]:2181`), and everything from
//! the first `/` on is the chroot (a lone `/` means none). Hosts are resolved (every address
//! of every name) and shuffled (by the session's seedable generator) at the start of each round, so a DNS change is picked up and
//! clients spread over the ensemble; between two full rounds without success the session
//! backs off.
//!
//! ```
//! use zk_client::ConnectString;
//!
//! let cs = ConnectString::parse("zk1:2181,zk2,[::1]:2182/app")?;
//! assert_eq!(cs.hosts()[1].port, 2181);
//! assert_eq!(cs.hosts()[2].host, "::1");
//! assert_eq!(cs.chroot().as_str(), Some("/app"));
//! # Ok::<(), zk_client::Error>(())
//! ```

use zk_proto::Chroot;

use crate::error::Error;
use crate::transport::Endpoint;

/// The port used when a host has none.
pub const DEFAULT_PORT: u16 = 2181;

/// One `host:port` of a connect string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostSpec {
    /// A name or an IP literal (IPv6 without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

/// A parsed connect string: the hosts and the chroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    hosts: Vec<HostSpec>,
    chroot: Chroot,
}

impl ConnectString {
    /// Parses `h1:p1,h2:p2/chroot`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConnectString`] for an empty host list, an empty host or a bad port,
    /// [`Error::InvalidPath`] for a bad chroot.
    pub fn parse(s: &str) -> Result<ConnectString, Error> {
        let s = s.trim();
        let (hosts_part, chroot) = match s.find('/') {
            Some(at) => {
                let chroot_str = &s[at..];
                let chroot =
                    Chroot::parse(chroot_str).map_err(|e| Error::invalid_path(chroot_str, e))?;
                (&s[..at], chroot)
            }
            None => (s, Chroot::none()),
        };
        let mut hosts = Vec::new();
        for part in hosts_part.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            hosts.push(parse_host(part)?);
        }
        if hosts.is_empty() {
            return Err(Error::InvalidConnectString(format!("no host in {s:?}")));
        }
        Ok(ConnectString { hosts, chroot })
    }

    /// The hosts, in the order given.
    pub fn hosts(&self) -> &[HostSpec] {
        &self.hosts
    }

    /// The chroot (possibly none).
    pub fn chroot(&self) -> &Chroot {
        &self.chroot
    }
}

fn parse_host(part: &str) -> Result<HostSpec, Error> {
    let bad = |why: &str| Error::InvalidConnectString(format!("{part:?}: {why}"));
    let parse_port = |p: &str| p.parse::<u16>().map_err(|_| bad("invalid port"));
    let (host, port) = if let Some(rest) = part.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        let port = match after {
            "" => DEFAULT_PORT,
            _ => parse_port(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad("junk after ']'"))?,
            )?,
        };
        (host, port)
    } else if part.matches(':').count() > 1 {
        // A bare IPv6 literal without a port.
        (part, DEFAULT_PORT)
    } else {
        match part.rsplit_once(':') {
            Some((host, "")) => (host, DEFAULT_PORT),
            Some((host, port)) => (host, parse_port(port)?),
            None => (part, DEFAULT_PORT),
        }
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    Ok(HostSpec {
        host: host.to_owned(),
        port,
    })
}

/// Cycles through the resolved, shuffled addresses of the connect string's hosts, each with
/// the host name it was resolved from.
///
/// [`HostList::next`] hands out one endpoint at a time; `None` means a full round ended
/// without success (the caller backs off, then [`resolve`]s and starts a new round).
#[derive(Debug)]
pub(crate) struct HostList {
    specs: Vec<HostSpec>,
    round: Vec<Endpoint>,
    pos: usize,
    /// Tried before anything else (a read-write server found while read-only).
    preferred: Option<Endpoint>,
}

impl HostList {
    pub(crate) fn new(specs: Vec<HostSpec>) -> HostList {
        HostList {
            specs,
            round: Vec::new(),
            pos: 0,
            preferred: None,
        }
    }

    /// The number of host specs (used to share the connect timeout).
    pub(crate) fn len(&self) -> usize {
        self.specs.len()
    }

    /// Starts a round over `endpoints`, in that order (the session shuffles them).
    pub(crate) fn set_round(&mut self, endpoints: Vec<Endpoint>) {
        self.round = endpoints;
        self.pos = 0;
    }

    /// Every endpoint of the current round.
    pub(crate) fn addresses(&self) -> &[Endpoint] {
        &self.round
    }

    /// Makes `endpoint` the next one handed out (once).
    pub(crate) fn prefer(&mut self, endpoint: Endpoint) {
        self.preferred = Some(endpoint);
    }

    /// The next endpoint of the current round, or `None` at its end.
    pub(crate) fn next(&mut self) -> Option<Endpoint> {
        if let Some(endpoint) = self.preferred.take() {
            return Some(endpoint);
        }
        let endpoint = self.round.get(self.pos).cloned();
        if endpoint.is_some() {
            self.pos += 1;
        }
        endpoint
    }
}

/// Resolves every host of `specs`, for a new round of the session. Hosts that fail to resolve
/// are skipped (logged at debug). IP literals resolve at once, without a lookup.
pub(crate) async fn resolve(specs: &[HostSpec]) -> Vec<Endpoint> {
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for spec in specs {
        match tokio::net::lookup_host((spec.host.as_str(), spec.port)).await {
            Ok(found) => {
                for addr in found {
                    // The first host naming an address keeps it.
                    if !endpoints.iter().any(|e| e.addr == addr) {
                        endpoints.push(Endpoint::new(addr, spec.host.clone()));
                    }
                }
            }
            Err(error) => {
                tracing::debug!(host = %spec.host, port = spec.port, %error, "cannot resolve host");
            }
        }
    }
    endpoints
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn spec(host: &str, port: u16) -> HostSpec {
        HostSpec {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_hosts_ports_and_chroot() {
        let cs = ConnectString::parse("a:1,b, c:3 /x/y").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cs.hosts(), &[spec("a", 1), spec("b", 2181), spec("c", 3)]);
        assert_eq!(cs.chroot().as_str(), Some("/x/y"));

        let cs =
            ConnectString::parse("[::1]:2182,[fe80::1],::1/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cs.hosts(),
            &[spec("::1", 2182), spec("fe80::1", 2181), spec("::1", 2181)]
        );
        assert!(cs.chroot().is_none());

        let cs = ConnectString::parse("127.0.0.1:").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cs.hosts(), &[spec("127.0.0.1", 2181)]);
    }

    #[test]
    fn rejects_bad_strings() {
        for bad in ["", ",", "/app", "a:x", "a:70000", "[::1", "[::1]x", ":2181"] {
            assert!(
                matches!(
                    ConnectString::parse(bad),
                    Err(Error::InvalidConnectString(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            ConnectString::parse("a:1/app/"),
            Err(Error::InvalidPath { .. })
        ));
        assert!(matches!(
            ConnectString::parse("a:1/app//b"),
            Err(Error::InvalidPath { .. })
        ));
    }

    #[test]
    fn host_list_cycles_a_round() {
        let mut list = HostList::new(vec![spec("a", 1)]);
        assert_eq!(list.next(), None);
        let addrs: Vec<Endpoint> = (1..=5)
            .map(|p| Endpoint::from(SocketAddr::from(([127, 0, 0, 1], p))))
            .collect();
        list.set_round(addrs.clone());
        let seen: Vec<Endpoint> = std::iter::from_fn(|| list.next()).collect();
        assert_eq!(seen, addrs);
        assert_eq!(list.next(), None);
        assert_eq!(list.addresses().len(), 5);
        list.prefer(addrs[2].clone());
        assert_eq!(list.next(), Some(addrs[2].clone()));
        assert_eq!(list.next(), None);
    }

    #[tokio::test]
    async fn resolves_localhost() {
        let mut list = HostList::new(vec![spec("127.0.0.1", 2181)]);
        let round = resolve(&[spec("127.0.0.1", 2181)]).await;
        list.set_round(round);
        assert_eq!(
            list.next(),
            Some(Endpoint::new(
                SocketAddr::from(([127, 0, 0, 1], 2181)),
                "127.0.0.1"
            ))
        );
        assert_eq!(list.next(), None);

        // The host name travels with each address it resolves to.
        let mut list = HostList::new(vec![spec("localhost", 2181)]);
        let round = resolve(&[spec("localhost", 2181)]).await;
        list.set_round(round);
        let first = list.next().unwrap();
        assert_eq!(first.host, "localhost");
        assert!(first.addr.ip().is_loopback());
    }
}
