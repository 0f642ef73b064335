//! Four-letter words: 4 raw ASCII bytes sent instead of a `ConnectRequest`; the server
//! answers with text and closes (Apache's `FourLetterCommands` and `*Command` classes).
//!
//! Commands not in `4lw.commands.whitelist` answer
//! `<cmd> is not executed because it is not in the whitelist.`

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::core::Core;

/// The version string reported by `srvr`, `stat`, `mntr` and `envi`.
pub const VERSION: &str = concat!(
    "3.9.0-zk-server-lite-",
    env!("CARGO_PKG_VERSION"),
    ", built on 1970-01-01 00:00 UTC"
);

/// Every command this server knows.
pub const COMMANDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "wchs", "wchc", "wchp", "dump",
    "envi", "isro", "dirs",
];

/// Which commands may run (`4lw.commands.whitelist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whitelist {
    /// `*`: every command.
    All,
    /// Only these.
    Only(BTreeSet<String>),
}

impl Whitelist {
    /// Parses the comma-separated whitelist (`*` = all).
    pub fn parse(text: &str) -> Whitelist {
        let items: BTreeSet<String> = text
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if items.contains("*") {
            Whitelist::All
        } else {
            Whitelist::Only(items)
        }
    }

    /// Apache's default: `srvr` only.
    pub fn apache_default() -> Whitelist {
        Whitelist::parse("srvr")
    }

    /// Whether `cmd` may run.
    pub fn allows(&self, cmd: &str) -> bool {
        match self {
            Whitelist::All => true,
            Whitelist::Only(set) => set.contains(cmd),
        }
    }
}

/// Static facts the commands report.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Allowed commands.
    pub whitelist: Whitelist,
    /// `tickTime`, ms.
    pub tick_ms: i64,
    /// `key=value` lines for `conf`.
    pub conf: Vec<(String, String)>,
    /// Data directory for `dirs` (empty when in memory).
    pub data_dir: String,
}

/// The command spelled by the first 4 bytes of a connection, if any.
pub fn command(first: &[u8]) -> Option<&'static str> {
    let word = std::str::from_utf8(first.get(..4)?).ok()?;
    COMMANDS.iter().copied().find(|c| *c == word)
}

/// Runs a command and returns its text ([`capture`] then [`Captured::render`]).
pub fn execute(cmd: &str, core: &Core, info: &ServerInfo) -> String {
    capture(cmd, core, info).render()
}

/// What a command needs from the server state, taken while the state is locked; the
/// text is built by [`Captured::render`] after the lock is released. The watch listings
/// (`wchc`, `wchp`, 200,000 lines and more) only copy (shared path, connection) pairs
/// under the lock: sorting and formatting happen outside it.
#[derive(Debug)]
pub enum Captured {
    /// The finished text (small outputs).
    Text(String),
    /// `wchc` / `wchp`: every (path, session) watch pair.
    Watches {
        /// `wchp` (by path) rather than `wchc` (by session).
        by_path: bool,
        /// (path, session id) pairs, unsorted.
        pairs: Vec<(std::sync::Arc<str>, i64)>,
    },
}

impl Captured {
    /// The command's text.
    pub fn render(self) -> String {
        match self {
            Captured::Text(t) => t,
            Captured::Watches { by_path, mut pairs } => {
                let mut out = String::new();
                if by_path {
                    pairs.sort_unstable();
                    pairs.dedup();
                    let mut last: Option<&str> = None;
                    for (path, sid) in &pairs {
                        if last != Some(&**path) {
                            let _ = writeln!(out, "{path}");
                            last = Some(path);
                        }
                        let _ = writeln!(out, "\t{sid:#x}");
                    }
                } else {
                    pairs.sort_unstable_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
                    pairs.dedup();
                    let mut last = None;
                    for (path, sid) in &pairs {
                        if last != Some(*sid) {
                            let _ = writeln!(out, "{sid:#x}");
                            last = Some(*sid);
                        }
                        let _ = writeln!(out, "\t{path}");
                    }
                }
                out
            }
        }
    }
}

/// Takes what `cmd` needs from the state (see [`Captured`]).
pub fn capture(cmd: &str, core: &Core, info: &ServerInfo) -> Captured {
    if !info.whitelist.allows(cmd) {
        return Captured::Text(format!(
            "{cmd} is not executed because it is not in the whitelist.\n"
        ));
    }
    if cmd == "wchc" || cmd == "wchp" {
        let sessions: std::collections::HashMap<crate::ConnId, i64> = core
            .connections()
            .map(|(id, c)| (*id, c.session.unwrap_or(0)))
            .collect();
        let pairs = core
            .watches()
            .pairs()
            .map(|(path, conn)| (path, sessions.get(&conn).copied().unwrap_or(0)))
            .collect();
        return Captured::Watches {
            by_path: cmd == "wchp",
            pairs,
        };
    }
    let mut out = String::new();
    match cmd {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str("rw"),
        "srvr" => srvr(core, &mut out, false),
        "stat" => srvr(core, &mut out, true),
        "mntr" => mntr(core, &mut out),
        "conf" => {
            for (k, v) in &info.conf {
                let _ = writeln!(out, "{k}={v}");
            }
        }
        "cons" => {
            cons(core, &mut out, false);
            out.push('\n');
        }
        "crst" => out.push_str("Connection stats reset.\n"),
        "srst" => out.push_str("Server stats reset.\n"),
        "wchs" => {
            let w = core.watches();
            let _ = writeln!(
                out,
                "{} connections watching {} paths\nTotal watches:{}",
                w.connection_count(),
                w.path_count(),
                w.watch_count()
            );
        }
        "dump" => dump(core, &mut out),
        "envi" => envi(&mut out),
        "dirs" => {
            let _ = writeln!(
                out,
                "datadir_size: 0\nlogdir_size: 0\ndatadir: {}",
                info.data_dir
            );
        }
        _ => {}
    }
    Captured::Text(out)
}

fn srvr(core: &Core, out: &mut String, with_clients: bool) {
    let _ = writeln!(out, "Zookeeper version: {VERSION}");
    if with_clients {
        out.push_str("Clients:\n");
        // Brief, as Apache's `stat`: no session ids (half of what a hijacker needs).
        cons(core, out, true);
        out.push('\n');
    }
    let c = core.counters();
    let _ = writeln!(out, "Latency min/avg/max: 0/0.0/0");
    let _ = writeln!(out, "Received: {}", c.received);
    let _ = writeln!(out, "Sent: {}", c.sent);
    let _ = writeln!(out, "Connections: {}", core.connection_count());
    let _ = writeln!(out, "Outstanding: 0");
    let _ = writeln!(out, "Zxid: {:#x}", core.last_zxid());
    let _ = writeln!(out, "Mode: standalone");
    let _ = writeln!(out, "Node count: {}", core.tree().node_count());
}

/// One line per connection; `brief` (for `stat`) stops after the counters, as Apache's
/// `dumpConnectionInfo(pw, true)` does, leaving out the session id and what follows.
fn cons(core: &Core, out: &mut String, brief: bool) {
    let mut conns: Vec<_> = core.connections().collect();
    conns.sort_by_key(|(id, _)| **id);
    for (_, c) in conns {
        let peer = c
            .peer
            .map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        let _ = write!(
            out,
            " /{peer}[1](queued=0,recved={},sent={}",
            c.received, c.sent
        );
        if !brief {
            let sid = c.session.unwrap_or(0);
            let timeout = c
                .session
                .and_then(|s| core.sessions().get(s))
                .map_or(0, |s| s.timeout);
            let _ = write!(
                out,
                ",sid={sid:#x},lop={},est={},to={timeout},lcxid={:#x},lzxid={:#x},lresp=0,llat=0,minlat=0,avglat=0.0,maxlat=0",
                c.last_op, c.established, c.last_cxid, c.last_zxid
            );
        }
        out.push_str(")\n");
    }
}

fn mntr(core: &Core, out: &mut String) {
    let c = core.counters();
    let w = core.watches();
    let tree = core.tree();
    let lines: [(&str, String); 13] = [
        ("zk_version", VERSION.to_owned()),
        ("zk_server_state", "standalone".to_owned()),
        ("zk_avg_latency", "0.0".to_owned()),
        ("zk_max_latency", "0".to_owned()),
        ("zk_min_latency", "0".to_owned()),
        ("zk_packets_received", c.received.to_string()),
        ("zk_packets_sent", c.sent.to_string()),
        (
            "zk_num_alive_connections",
            core.connection_count().to_string(),
        ),
        ("zk_outstanding_requests", "0".to_owned()),
        ("zk_znode_count", tree.node_count().to_string()),
        ("zk_watch_count", w.watch_count().to_string()),
        ("zk_ephemerals_count", tree.ephemeral_count().to_string()),
        ("zk_approximate_data_size", tree.data_size().to_string()),
    ];
    for (k, v) in lines {
        let _ = writeln!(out, "{k}\t{v}");
    }
    let _ = writeln!(out, "zk_global_sessions\t{}", core.sessions().len());
    let _ = writeln!(out, "zk_last_proposal_size\t-1");
}

fn dump(core: &Core, out: &mut String) {
    out.push_str("SessionTracker dump:\n");
    let _ = writeln!(out, "Global Sessions({}):", core.sessions().len());
    for s in core.sessions().iter() {
        let _ = writeln!(out, "{:#x}\t{}ms", s.id, s.timeout);
    }
    out.push_str("ephemeral nodes dump:\n");
    let with: Vec<_> = core
        .sessions()
        .iter()
        .map(|s| (s.id, core.tree().ephemerals(s.id)))
        .filter(|(_, e)| !e.is_empty())
        .collect();
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", with.len());
    for (id, paths) in with {
        let _ = writeln!(out, "{id:#x}:");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
}

fn envi(out: &mut String) {
    out.push_str("Environment:\n");
    let _ = writeln!(out, "zookeeper.version={VERSION}");
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned());
    let _ = writeln!(out, "host.name={host}");
    let _ = writeln!(out, "os.name={}", std::env::consts::OS);
    let _ = writeln!(out, "os.arch={}", std::env::consts::ARCH);
    if let Ok(dir) = std::env::current_dir() {
        let _ = writeln!(out, "user.dir={}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{CoreConfig, Now};

    fn info(whitelist: &str) -> ServerInfo {
        ServerInfo {
            whitelist: Whitelist::parse(whitelist),
            tick_ms: 2000,
            conf: vec![("clientPort".into(), "2181".into())],
            data_dir: String::new(),
        }
    }

    #[test]
    fn watch_listings_group_sort_and_dedup() {
        let pairs = |v: &[(&str, i64)]| {
            v.iter()
                .map(|(p, s)| (std::sync::Arc::from(*p), *s))
                .collect::<Vec<_>>()
        };
        let w = pairs(&[("/b", 2), ("/a", 2), ("/b", 1), ("/b", 2)]);
        let by_path = Captured::Watches {
            by_path: true,
            pairs: w.clone(),
        };
        assert_eq!(by_path.render(), "/a\n\t0x2\n/b\n\t0x1\n\t0x2\n");
        let by_session = Captured::Watches {
            by_path: false,
            pairs: w,
        };
        assert_eq!(by_session.render(), "0x1\n\t/b\n0x2\n\t/a\n\t/b\n");
    }

    #[test]
    fn stat_lists_clients_without_session_ids_cons_with() {
        let mut core = Core::new(CoreConfig::default(), Now::at(0));
        core.open(1, Some("127.0.0.1:5000".parse().unwrap()), Now::at(0));
        let req = zk_proto::records::ConnectRequest::new_session(6000, 0, false);
        core.connect(1, &req, Now::at(0));
        let session = core.connections().next().unwrap().1.session.unwrap();
        let sid = format!("{session:#x}");
        let all = info("*");
        let stat = execute("stat", &core, &all);
        assert!(
            stat.contains("Clients:\n /127.0.0.1:5000[1](queued=0,recved=0,sent=0)\n\n"),
            "{stat}"
        );
        assert!(!stat.contains("sid="), "{stat}");
        let cons = execute("cons", &core, &all);
        assert!(cons.contains(&format!(",sid={sid},")), "{cons}");
    }

    #[test]
    fn commands_and_whitelist() {
        let core = Core::new(CoreConfig::default(), Now::at(0));
        assert_eq!(command(b"ruok"), Some("ruok"));
        assert_eq!(command(b"\0\0\0\x2d"), None);
        assert_eq!(command(b"ru"), None);
        let all = info("*");
        assert_eq!(execute("ruok", &core, &all), "imok");
        assert_eq!(execute("isro", &core, &all), "rw");
        assert!(execute("srvr", &core, &all).contains("Mode: standalone\nNode count: 4\n"));
        assert!(execute("stat", &core, &all).contains("Clients:\n"));
        assert!(execute("mntr", &core, &all).contains("zk_znode_count\t4\n"));
        assert_eq!(execute("conf", &core, &all), "clientPort=2181\n");
        assert!(execute("wchs", &core, &all).contains("Total watches:0"));
        assert_eq!(execute("wchc", &core, &all), "");
        assert_eq!(execute("wchp", &core, &all), "");
        assert!(execute("envi", &core, &all).starts_with("Environment:\n"));
        assert!(execute("dump", &core, &all).starts_with("SessionTracker dump:"));
        let only = info("srvr, ruok");
        assert_eq!(execute("ruok", &core, &only), "imok");
        assert_eq!(
            execute("mntr", &core, &only),
            "mntr is not executed because it is not in the whitelist.\n"
        );
        assert!(Whitelist::apache_default().allows("srvr"));
        assert!(!Whitelist::apache_default().allows("ruok"));
    }
}
