//! Watch tables (Apache's `WatchManager` + `WatcherModeManager`): one-shot data/exist and child
//! watches, persistent and persistent-recursive watches, keyed by (path, connection).
//!
//! Two tables, as in Apache: the **data** table (exists/getData watches, persistent watches,
//! recursive watches) and the **child** table (getChildren watches, persistent watches).
//! A connection has at most one entry per (table, path), holding a set of modes, so a standard
//! and a persistent watch can coexist (ZOOKEEPER-4466) and a change produces one notification
//! per connection.
//!
//! Firing rules ([`WatchManager::trigger`]):
//!
//! | event on P | data table | child table |
//! |---|---|---|
//! | NodeCreated, NodeDataChanged | P, and recursive watches on P's ancestors | — |
//! | NodeDeleted | P, and recursive watches on ancestors | P (not twice to one connection) |
//! | NodeChildrenChanged (P = parent) | — | P |
//!
//! Standard watches are removed when they fire; persistent ones stay.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use zk_proto::{EventType, WatcherType};

use crate::ConnId;
use crate::data_tree::{TreeEvent, parent_of};

/// One-shot watch bit.
const STANDARD: u8 = 1;
/// Persistent watch bit.
const PERSISTENT: u8 = 2;
/// Persistent recursive watch bit.
const RECURSIVE: u8 = 4;
const ALL: u8 = STANDARD | PERSISTENT | RECURSIVE;

/// Which of the two watch tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// exists/getData watches (and persistent/recursive ones).
    Data,
    /// getChildren watches (and persistent ones).
    Child,
}

/// The connections watching one path, with their mode bits. Most paths have one or a few
/// watchers: a small vector (one allocation of 16 bytes per watcher) until
/// [`FEW`] of them, a hash map beyond, so a path watched by thousands of connections
/// stays O(1) per operation.
#[derive(Debug, Clone)]
enum PathWatchers {
    Few(Vec<(ConnId, u8)>),
    Many(HashMap<ConnId, u8>),
}

/// Watchers kept in a vector before switching to a map.
const FEW: usize = 8;

impl Default for PathWatchers {
    fn default() -> Self {
        PathWatchers::Few(Vec::with_capacity(1))
    }
}

impl PathWatchers {
    fn get_mut(&mut self, conn: ConnId) -> Option<&mut u8> {
        match self {
            PathWatchers::Few(v) => v.iter_mut().find(|(c, _)| *c == conn).map(|(_, f)| f),
            PathWatchers::Many(m) => m.get_mut(&conn),
        }
    }

    fn get(&self, conn: ConnId) -> Option<u8> {
        match self {
            PathWatchers::Few(v) => v.iter().find(|(c, _)| *c == conn).map(|(_, f)| *f),
            PathWatchers::Many(m) => m.get(&conn).copied(),
        }
    }

    /// The flags of `conn`, inserted as 0 if missing.
    fn entry(&mut self, conn: ConnId) -> &mut u8 {
        if let PathWatchers::Few(v) = self
            && v.len() >= FEW
            && !v.iter().any(|(c, _)| *c == conn)
        {
            *self = PathWatchers::Many(v.drain(..).collect());
        }
        match self {
            PathWatchers::Few(v) => {
                let i = match v.iter().position(|(c, _)| *c == conn) {
                    Some(i) => i,
                    None => {
                        v.push((conn, 0));
                        v.len() - 1
                    }
                };
                &mut v[i].1
            }
            PathWatchers::Many(m) => m.entry(conn).or_insert(0),
        }
    }

    fn remove(&mut self, conn: ConnId) -> Option<u8> {
        match self {
            PathWatchers::Few(v) => {
                let i = v.iter().position(|(c, _)| *c == conn)?;
                Some(v.swap_remove(i).1)
            }
            PathWatchers::Many(m) => m.remove(&conn),
        }
    }

    fn len(&self) -> usize {
        match self {
            PathWatchers::Few(v) => v.len(),
            PathWatchers::Many(m) => m.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (ConnId, u8)> + '_> {
        match self {
            PathWatchers::Few(v) => Box::new(v.iter().copied()),
            PathWatchers::Many(m) => Box::new(m.iter().map(|(c, f)| (*c, *f))),
        }
    }

    fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.iter().map(|(c, _)| c)
    }
}

/// Both watch tables plus a per-connection index for cleanup. A watched path is stored
/// once (`Arc<str>`), shared by both tables and the per-connection index.
#[derive(Debug, Default)]
pub struct WatchManager {
    data: HashMap<Arc<str>, PathWatchers>,
    child: HashMap<Arc<str>, PathWatchers>,
    by_conn: HashMap<ConnId, HashSet<(Table, Arc<str>)>>,
    recursive: usize,
}

impl WatchManager {
    /// Empty tables.
    pub fn new() -> WatchManager {
        WatchManager::default()
    }

    fn table_mut(&mut self, table: Table) -> &mut HashMap<Arc<str>, PathWatchers> {
        match table {
            Table::Data => &mut self.data,
            Table::Child => &mut self.child,
        }
    }

    fn table(&self, table: Table) -> &HashMap<Arc<str>, PathWatchers> {
        match table {
            Table::Data => &self.data,
            Table::Child => &self.child,
        }
    }

    /// The stored copy of `path`, if either table has it.
    fn stored(&self, path: &str) -> Option<Arc<str>> {
        self.data
            .get_key_value(path)
            .or_else(|| self.child.get_key_value(path))
            .map(|(k, _)| Arc::clone(k))
    }

    fn add(&mut self, table: Table, path: &str, conn: ConnId, mode: u8) {
        let key = self.stored(path).unwrap_or_else(|| Arc::from(path));
        let entry = self
            .table_mut(table)
            .entry(Arc::clone(&key))
            .or_default()
            .entry(conn);
        let newly_recursive = mode & RECURSIVE != 0 && *entry & RECURSIVE == 0;
        *entry |= mode;
        if newly_recursive {
            self.recursive += 1;
        }
        self.by_conn.entry(conn).or_default().insert((table, key));
    }

    /// Clears `bits` of `conn`'s entry on (table, path); returns whether any bit was set.
    fn clear(&mut self, table: Table, path: &str, conn: ConnId, bits: u8) -> bool {
        let map = self.table_mut(table);
        let Some(key) = map.get_key_value(path).map(|(k, _)| Arc::clone(k)) else {
            return false;
        };
        let Some(watchers) = map.get_mut(path) else {
            return false;
        };
        let Some(flags) = watchers.get_mut(conn) else {
            return false;
        };
        let had = *flags & bits;
        *flags &= !bits;
        let empty = *flags == 0;
        if empty {
            watchers.remove(conn);
            if watchers.is_empty() {
                map.remove(path);
            }
        }
        if had & RECURSIVE != 0 {
            self.recursive -= 1;
        }
        if empty && let Some(set) = self.by_conn.get_mut(&conn) {
            set.remove(&(table, key));
            if set.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
        had != 0
    }

    /// A one-shot data watch (exists/getData with `watch = true`).
    pub fn add_data_watch(&mut self, path: &str, conn: ConnId) {
        self.add(Table::Data, path, conn, STANDARD);
    }

    /// A one-shot child watch (getChildren with `watch = true`).
    pub fn add_child_watch(&mut self, path: &str, conn: ConnId) {
        self.add(Table::Child, path, conn, STANDARD);
    }

    /// A persistent watch (data + child tables) or a persistent recursive one (data table).
    pub fn add_persistent(&mut self, path: &str, conn: ConnId, recursive: bool) {
        if recursive {
            self.add(Table::Data, path, conn, RECURSIVE);
        } else {
            self.add(Table::Data, path, conn, PERSISTENT);
            self.add(Table::Child, path, conn, PERSISTENT);
        }
    }

    fn bits_for(kind: WatcherType) -> [(Table, u8); 2] {
        match kind {
            WatcherType::Children => [(Table::Child, STANDARD), (Table::Data, 0)],
            WatcherType::Data => [(Table::Data, STANDARD), (Table::Child, 0)],
            WatcherType::Any => [(Table::Data, ALL), (Table::Child, ALL)],
            WatcherType::Persistent => [(Table::Data, PERSISTENT), (Table::Child, PERSISTENT)],
            WatcherType::PersistentRecursive => [(Table::Data, RECURSIVE), (Table::Child, 0)],
        }
    }

    /// checkWatches: whether `conn` has a watch of `kind` on `path`.
    pub fn contains(&self, path: &str, kind: WatcherType, conn: ConnId) -> bool {
        WatchManager::bits_for(kind).iter().any(|&(table, bits)| {
            self.table(table)
                .get(path)
                .and_then(|w| w.get(conn))
                .is_some_and(|flags| flags & bits != 0)
        })
    }

    /// removeWatches: removes `conn`'s watches of `kind` on `path`; whether any was removed.
    pub fn remove(&mut self, path: &str, kind: WatcherType, conn: ConnId) -> bool {
        let mut removed = false;
        for (table, bits) in WatchManager::bits_for(kind) {
            if bits != 0 {
                removed |= self.clear(table, path, conn, bits);
            }
        }
        removed
    }

    /// Drops every watch of a connection (it closed).
    pub fn remove_connection(&mut self, conn: ConnId) {
        let Some(entries) = self.by_conn.remove(&conn) else {
            return;
        };
        for (table, path) in entries {
            let map = self.table_mut(table);
            if let Some(watchers) = map.get_mut(&path) {
                if let Some(flags) = watchers.remove(conn)
                    && flags & RECURSIVE != 0
                {
                    self.recursive -= 1;
                }
                let map = self.table_mut(table);
                if map.get(&path).is_some_and(PathWatchers::is_empty) {
                    map.remove(&path);
                }
            }
        }
    }

    fn fire(
        &mut self,
        table: Table,
        path: &str,
        suppress: &HashSet<ConnId>,
        out: &mut Vec<ConnId>,
    ) {
        let mut hit: Vec<ConnId> = Vec::new();
        if let Some(watchers) = self.table(table).get(path) {
            hit.extend(watchers.conns());
        }
        // One-shot watches are consumed even when their notification is suppressed.
        for conn in &hit {
            self.clear(table, path, *conn, STANDARD);
        }
        hit.retain(|conn| !suppress.contains(conn));
        if self.recursive > 0 && table == Table::Data {
            let mut p = path;
            while p != "/" {
                p = parent_of(p);
                if let Some(watchers) = self.data.get(p) {
                    hit.extend(
                        watchers
                            .iter()
                            .filter(|(c, f)| *f & RECURSIVE != 0 && !suppress.contains(c))
                            .map(|(c, _)| c),
                    );
                }
            }
        }
        for conn in hit {
            if !out.contains(&conn) {
                out.push(conn);
            }
        }
    }

    /// The connections to notify of `event` (each once), removing fired one-shot watches.
    pub fn trigger(&mut self, event: &TreeEvent) -> Vec<ConnId> {
        let mut out = Vec::new();
        let none = HashSet::new();
        match event.event {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                self.fire(Table::Data, &event.path, &none, &mut out);
            }
            EventType::NodeDeleted => {
                self.fire(Table::Data, &event.path, &none, &mut out);
                let seen: HashSet<ConnId> = out.iter().copied().collect();
                self.fire(Table::Child, &event.path, &seen, &mut out);
            }
            EventType::NodeChildrenChanged => {
                self.fire(Table::Child, &event.path, &none, &mut out);
            }
            _ => {}
        }
        out
    }

    /// Number of connections with watches.
    pub fn connection_count(&self) -> usize {
        self.by_conn.len()
    }

    /// Number of distinct watched paths.
    pub fn path_count(&self) -> usize {
        let mut paths: HashSet<&Arc<str>> = self.data.keys().collect();
        paths.extend(self.child.keys());
        paths.len()
    }

    /// Number of (table, path, connection) entries.
    pub fn watch_count(&self) -> usize {
        self.data.values().map(PathWatchers::len).sum::<usize>()
            + self.child.values().map(PathWatchers::len).sum::<usize>()
    }

    /// Watched paths per connection, sorted (for `wchc`).
    pub fn paths_by_connection(&self) -> std::collections::BTreeMap<ConnId, Vec<String>> {
        self.by_conn
            .iter()
            .map(|(conn, entries)| {
                let mut paths: Vec<String> = entries.iter().map(|(_, p)| p.to_string()).collect();
                paths.sort();
                paths.dedup();
                (*conn, paths)
            })
            .collect()
    }

    /// Watching connections per path, sorted (for `wchp`).
    pub fn connections_by_path(&self) -> std::collections::BTreeMap<String, Vec<ConnId>> {
        let mut out: std::collections::BTreeMap<String, Vec<ConnId>> = Default::default();
        for (path, watchers) in self.data.iter().chain(self.child.iter()) {
            out.entry(path.to_string())
                .or_default()
                .extend(watchers.conns());
        }
        for conns in out.values_mut() {
            conns.sort_unstable();
            conns.dedup();
        }
        out
    }

    /// Every (path, connection) watch pair of both tables, unsorted; a path watched in both
    /// tables by one connection comes twice. Copies only shared pointers (for `wchc`/`wchp`,
    /// whose text is built later, outside the server lock).
    pub fn pairs(&self) -> impl Iterator<Item = (Arc<str>, ConnId)> + '_ {
        self.data
            .iter()
            .chain(self.child.iter())
            .flat_map(|(path, w)| w.conns().map(move |c| (Arc::clone(path), c)))
    }

    /// Number of watch entries of one connection.
    pub fn connection_watch_count(&self, conn: ConnId) -> usize {
        self.by_conn.get(&conn).map_or(0, HashSet::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(path: &str, event: EventType) -> TreeEvent {
        TreeEvent {
            path: path.into(),
            event,
            acl: vec![],
        }
    }

    #[test]
    fn many_watchers_on_one_path_and_one_stored_path() {
        let mut w = WatchManager::new();
        for conn in 1..=20 {
            w.add_data_watch("/p", conn);
            w.add_child_watch("/p", conn);
        }
        assert_eq!(w.watch_count(), 40);
        assert!(w.contains("/p", WatcherType::Data, 17));
        // Both tables and every connection's index share one copy of the path.
        assert_eq!(
            w.stored("/p").map(|k| Arc::strong_count(&k)),
            Some(1 + 2 + 40)
        );
        assert!(w.remove("/p", WatcherType::Data, 17));
        assert!(!w.contains("/p", WatcherType::Data, 17));
        w.remove_connection(3);
        let mut fired = w.trigger(&ev("/p", EventType::NodeDataChanged));
        fired.sort_unstable();
        let expect: Vec<ConnId> = (1..=20).filter(|c| *c != 3 && *c != 17).collect();
        assert_eq!(fired, expect);
        for conn in 1..=20 {
            w.remove_connection(conn);
        }
        assert_eq!(
            (w.watch_count(), w.path_count(), w.connection_count()),
            (0, 0, 0)
        );
    }

    #[test]
    fn one_shot_fires_once() {
        let mut w = WatchManager::new();
        w.add_data_watch("/a", 1);
        w.add_data_watch("/a", 1);
        w.add_data_watch("/a", 2);
        let mut got = w.trigger(&ev("/a", EventType::NodeDataChanged));
        got.sort();
        assert_eq!(got, vec![1, 2]);
        assert!(w.trigger(&ev("/a", EventType::NodeDataChanged)).is_empty());
        assert_eq!(w.watch_count(), 0);
        assert_eq!(w.connection_count(), 0);
    }

    #[test]
    fn delete_notifies_once_per_connection() {
        let mut w = WatchManager::new();
        w.add_data_watch("/a", 1);
        w.add_child_watch("/a", 1);
        w.add_child_watch("/a", 2);
        w.add_child_watch("/", 3);
        let got = w.trigger(&ev("/a", EventType::NodeDeleted));
        assert_eq!(got, vec![1, 2]);
        assert_eq!(w.trigger(&ev("/", EventType::NodeChildrenChanged)), vec![3]);
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn persistent_and_recursive() {
        let mut w = WatchManager::new();
        w.add_persistent("/p", 1, false);
        w.add_persistent("/r", 2, true);
        w.add_data_watch("/p", 1);
        for _ in 0..2 {
            assert_eq!(w.trigger(&ev("/p", EventType::NodeDataChanged)), vec![1]);
            assert_eq!(
                w.trigger(&ev("/p", EventType::NodeChildrenChanged)),
                vec![1]
            );
            assert_eq!(w.trigger(&ev("/r/x/y", EventType::NodeCreated)), vec![2]);
            assert_eq!(w.trigger(&ev("/r", EventType::NodeDataChanged)), vec![2]);
            // Recursive watches never see NodeChildrenChanged.
            assert!(
                w.trigger(&ev("/r", EventType::NodeChildrenChanged))
                    .is_empty()
            );
        }
        assert!(w.contains("/p", WatcherType::Persistent, 1));
        assert!(!w.contains("/p", WatcherType::Data, 1));
        assert!(w.contains("/r", WatcherType::PersistentRecursive, 2));
        assert!(w.remove("/r", WatcherType::Any, 2));
        assert!(!w.remove("/r", WatcherType::Any, 2));
        assert!(w.trigger(&ev("/r/x", EventType::NodeCreated)).is_empty());
        w.remove_connection(1);
        assert_eq!(w.watch_count(), 0);
        assert_eq!(w.recursive, 0);
    }

    #[test]
    fn check_and_remove_by_type() {
        let mut w = WatchManager::new();
        w.add_data_watch("/a", 1);
        w.add_child_watch("/a", 1);
        assert!(w.contains("/a", WatcherType::Data, 1));
        assert!(!w.contains("/a", WatcherType::Data, 2));
        assert!(w.remove("/a", WatcherType::Children, 1));
        assert!(!w.contains("/a", WatcherType::Children, 1));
        assert!(w.contains("/a", WatcherType::Any, 1));
        assert_eq!(w.path_count(), 1);
        assert_eq!(w.connection_watch_count(1), 1);
    }
}
