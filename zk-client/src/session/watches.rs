//! The local watch registry: server path × kind → the watchers that wait on it.
//!
//! Kinds follow Java's `ZKWatchManager`: *data* (getData, or exists on an existing node),
//! *exist* (exists on a missing node), *child* (getChildren), *persistent* and *persistent
//! recursive* (addWatch). Keys are server paths (chroot included) so notifications match
//! without translation; events handed to users carry the client path.
//!
//! Fan-out of a server notification (Java's `materialize`):
//!
//! | event | one-shot watchers fired (and removed) | persistent | recursive (path and ancestors) |
//! |---|---|---|---|
//! | NodeCreated, NodeDataChanged | data, exist | yes | yes |
//! | NodeDeleted | data, exist, child | yes | yes |
//! | NodeChildrenChanged | child | yes | no |
//!
//! After a reconnect the registry yields the paths to restore (watchers that were dropped are
//! pruned first) and [`set_watches_requests`] batches them like the Java client.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::oneshot;
use zk_proto::records::{SetWatches, SetWatches2};
use zk_proto::{AddWatchMode, Chroot, EventType, KeeperState, Request, WatcherType};

use super::event::WatchedEvent;
use super::stream::StreamTx;

/// The Java client's SetWatches batch limit: 128 KiB of path characters.
pub(crate) const SET_WATCHES_MAX_LENGTH: usize = 128 * 1024;

/// The kind of a one-shot watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OneshotKind {
    Data,
    Exist,
    Child,
}

type OneshotTx = oneshot::Sender<WatchedEvent>;

/// The watchers on one path: nearly always one, kept inline (a `Vec` would allocate room
/// for four on the first push).
#[derive(Debug)]
pub(crate) enum List<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List::Many(Vec::new())
    }
}

impl<T> List<T> {
    fn push(&mut self, item: T) {
        match self {
            List::Many(items) if items.is_empty() => *self = List::One(item),
            List::Many(items) => items.push(item),
            List::One(_) => {
                if let List::One(first) = std::mem::take(self) {
                    *self = List::Many(vec![first, item]);
                }
            }
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        match self {
            List::One(item) => {
                if !keep(item) {
                    *self = List::default();
                }
            }
            List::Many(items) => items.retain(|item| keep(item)),
        }
    }

    fn iter(&self) -> std::slice::Iter<'_, T> {
        match self {
            List::One(item) => std::slice::from_ref(item).iter(),
            List::Many(items) => items.iter(),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, List::Many(items) if items.is_empty())
    }
}

impl<T> IntoIterator for List<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        match self {
            List::One(item) => Some(item).into_iter().chain(Vec::new()),
            List::Many(items) => None.into_iter().chain(items),
        }
    }
}

/// Paths to restore after a reconnect, in the Java order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct WatchLists {
    pub(crate) data: Vec<String>,
    pub(crate) exist: Vec<String>,
    pub(crate) child: Vec<String>,
    pub(crate) persistent: Vec<String>,
    pub(crate) recursive: Vec<String>,
}

impl WatchLists {
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }
}

/// Registrations between two sweeps of dropped watchers (at least; see
/// [`WatchRegistry::maybe_prune`]).
const PRUNE_EVERY: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct WatchRegistry {
    data: HashMap<String, List<OneshotTx>>,
    exist: HashMap<String, List<OneshotTx>>,
    child: HashMap<String, List<OneshotTx>>,
    /// Keyed by the path the watcher's queue holds too (one allocation for both). B-trees:
    /// they grow a node at a time, where a hash table's doubling leaves its old table
    /// behind in the allocator (bench_memory's per-watch figure jumped by 60 bytes with it).
    persistent: BTreeMap<Arc<str>, List<StreamTx>>,
    recursive: BTreeMap<Arc<str>, List<StreamTx>>,
    /// Registrations since the last sweep, and how many watchers were live after it.
    since_prune: usize,
    live_after_prune: usize,
}

fn client_path(chroot: &Chroot, server_path: &str) -> String {
    chroot.strip(server_path).unwrap_or(server_path).to_owned()
}

fn fire_oneshots(list: Option<List<OneshotTx>>, event: &WatchedEvent) {
    for tx in list.into_iter().flatten() {
        let _ = tx.send(event.clone());
    }
}

fn fire_streams(list: Option<&mut List<StreamTx>>, event: &WatchedEvent) {
    if let Some(list) = list {
        list.retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// Fires the streams on `path`, forgetting the path once none is left (only the paths an
/// event touches are looked at, not the whole table).
fn fire_streams_at(
    table: &mut BTreeMap<Arc<str>, List<StreamTx>>,
    path: &str,
    event: &WatchedEvent,
) {
    if let Some(list) = table.get_mut(path) {
        fire_streams(Some(&mut *list), event);
        if list.is_empty() {
            table.remove(path);
        }
    }
}

/// `/a/b` → `/a/b`, `/a`, `/`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.rfind('/') {
            _ if current == "/" => None,
            Some(0) => Some("/"),
            Some(at) => Some(&current[..at]),
            None => None,
        };
        Some(current)
    })
}

impl WatchRegistry {
    pub(crate) fn add_oneshot(&mut self, kind: OneshotKind, server_path: String, tx: OneshotTx) {
        let table = match kind {
            OneshotKind::Data => &mut self.data,
            OneshotKind::Exist => &mut self.exist,
            OneshotKind::Child => &mut self.child,
        };
        table.entry(server_path).or_default().push(tx);
        self.maybe_prune();
    }

    /// Sweeps out dropped watchers now and then, so that a long-lived connection whose
    /// watched nodes never change does not accumulate them (amortised O(1) per
    /// registration: the sweep runs after as many registrations as there were live
    /// watchers, and at least [`PRUNE_EVERY`]).
    fn maybe_prune(&mut self) {
        self.since_prune += 1;
        if self.since_prune < PRUNE_EVERY.max(self.live_after_prune) {
            return;
        }
        let lists = self.lists();
        self.since_prune = 0;
        self.live_after_prune = lists.data.len()
            + lists.exist.len()
            + lists.child.len()
            + lists.persistent.len()
            + lists.recursive.len();
    }

    pub(crate) fn add_persistent(&mut self, mode: AddWatchMode, server_path: String, tx: StreamTx) {
        let table = match mode {
            AddWatchMode::Persistent => &mut self.persistent,
            AddWatchMode::PersistentRecursive => &mut self.recursive,
        };
        let key = match tx.server_path() {
            Some(path) if **path == *server_path => path.clone(),
            _ => Arc::from(server_path),
        };
        table.entry(key).or_default().push(tx);
        self.maybe_prune();
    }

    /// Whether a live stream of `mode` watches `server_path` (dropped ones are pruned).
    pub(crate) fn has_stream(&mut self, mode: AddWatchMode, server_path: &str) -> bool {
        let table = match mode {
            AddWatchMode::Persistent => &mut self.persistent,
            AddWatchMode::PersistentRecursive => &mut self.recursive,
        };
        let Some(list) = table.get_mut(server_path) else {
            return false;
        };
        list.retain(|tx| !tx.is_closed());
        if list.is_empty() {
            table.remove(server_path);
            return false;
        }
        true
    }

    /// Whether any live watcher, of any kind, is registered on exactly `server_path`.
    pub(crate) fn watches_path(&mut self, server_path: &str) -> bool {
        let oneshot = [&self.data, &self.exist, &self.child]
            .into_iter()
            .any(|table| {
                table
                    .get(server_path)
                    .is_some_and(|list| list.iter().any(|tx| !tx.is_closed()))
            });
        oneshot
            || self.has_stream(AddWatchMode::Persistent, server_path)
            || self.has_stream(AddWatchMode::PersistentRecursive, server_path)
    }

    /// Delivers a server notification to every matching local watcher.
    pub(crate) fn dispatch(&mut self, event_type: EventType, server_path: &str, chroot: &Chroot) {
        // Paths outside the chroot only match watches registered on server paths (the
        // config node); they are reported unchanged.
        let event = WatchedEvent::node(event_type, client_path(chroot, server_path));
        match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                fire_oneshots(self.data.remove(server_path), &event);
                fire_oneshots(self.exist.remove(server_path), &event);
            }
            EventType::NodeDeleted => {
                fire_oneshots(self.data.remove(server_path), &event);
                fire_oneshots(self.exist.remove(server_path), &event);
                fire_oneshots(self.child.remove(server_path), &event);
            }
            EventType::NodeChildrenChanged => {
                fire_oneshots(self.child.remove(server_path), &event);
            }
            other => {
                tracing::debug!(event = %other, path = server_path, "unexpected notification type");
                return;
            }
        }
        fire_streams_at(&mut self.persistent, server_path, &event);
        if event_type != EventType::NodeChildrenChanged {
            for ancestor in ancestors(server_path) {
                fire_streams_at(&mut self.recursive, ancestor, &event);
            }
        }
    }

    /// Removes the watches of `kind` on a path after the server accepted `removeWatches`,
    /// telling each watcher with a `*WatchRemoved` event.
    pub(crate) fn remove(&mut self, kind: WatcherType, server_path: &str, chroot: &Chroot) {
        let path = client_path(chroot, server_path);
        let data_removed = WatchedEvent::node(EventType::DataWatchRemoved, path.clone());
        let child_removed = WatchedEvent::node(EventType::ChildWatchRemoved, path.clone());
        let persistent_removed = WatchedEvent::node(EventType::PersistentWatchRemoved, path);
        let (data, child, persistent, recursive) = match kind {
            WatcherType::Data => (true, false, false, false),
            WatcherType::Children => (false, true, false, false),
            WatcherType::Persistent => (false, false, true, false),
            WatcherType::PersistentRecursive => (false, false, false, true),
            WatcherType::Any => (true, true, true, true),
        };
        if data {
            fire_oneshots(self.data.remove(server_path), &data_removed);
            fire_oneshots(self.exist.remove(server_path), &data_removed);
        }
        if child {
            fire_oneshots(self.child.remove(server_path), &child_removed);
        }
        if persistent {
            fire_streams(
                self.persistent.remove(server_path).as_mut(),
                &persistent_removed,
            );
        }
        if recursive {
            fire_streams(
                self.recursive.remove(server_path).as_mut(),
                &persistent_removed,
            );
        }
    }

    /// Drops watchers whose receiver is gone and returns the paths still watched.
    pub(crate) fn lists(&mut self) -> WatchLists {
        fn live_oneshots(table: &mut HashMap<String, List<OneshotTx>>) -> Vec<String> {
            table.retain(|_, list| {
                list.retain(|tx| !tx.is_closed());
                !list.is_empty()
            });
            let mut paths: Vec<String> = table.keys().cloned().collect();
            paths.sort();
            paths
        }
        fn live_streams(table: &mut BTreeMap<Arc<str>, List<StreamTx>>) -> Vec<String> {
            table.retain(|_, list| {
                list.retain(|tx| !tx.is_closed());
                !list.is_empty()
            });
            let mut paths: Vec<String> = table.keys().map(|path| path.to_string()).collect();
            paths.sort();
            paths
        }
        WatchLists {
            data: live_oneshots(&mut self.data),
            exist: live_oneshots(&mut self.exist),
            child: live_oneshots(&mut self.child),
            persistent: live_streams(&mut self.persistent),
            recursive: live_streams(&mut self.recursive),
        }
    }

    /// The session ended: every watcher gets a final session event (and streams end).
    pub(crate) fn terminate(&mut self, state: KeeperState, chroot: &Chroot) {
        for table in [&mut self.data, &mut self.exist, &mut self.child] {
            for (server_path, list) in table.drain() {
                let event = WatchedEvent::session(state, client_path(chroot, &server_path));
                fire_oneshots(Some(list), &event);
            }
        }
        for table in [&mut self.persistent, &mut self.recursive] {
            for (server_path, mut list) in std::mem::take(table) {
                let event = WatchedEvent::session(state, client_path(chroot, &server_path));
                fire_streams(Some(&mut list), &event);
            }
        }
    }
}

/// Builds the `setWatches` / `setWatches2` requests that restore `lists`, batched at
/// [`SET_WATCHES_MAX_LENGTH`] bytes of paths in Java's order (data, exist, child, persistent,
/// recursive). A batch carrying persistent watches is a `setWatches2`, otherwise a
/// `setWatches`.
pub(crate) fn set_watches_requests(relative_zxid: i64, lists: WatchLists) -> Vec<Request> {
    let mut requests = Vec::new();
    let mut iters = [
        lists.data.into_iter(),
        lists.exist.into_iter(),
        lists.child.into_iter(),
        lists.persistent.into_iter(),
        lists.recursive.into_iter(),
    ];
    loop {
        let mut batch: [Vec<String>; 5] = Default::default();
        let mut length = 0;
        'fill: while length < SET_WATCHES_MAX_LENGTH {
            for (i, iter) in iters.iter_mut().enumerate() {
                if let Some(path) = iter.next() {
                    length += path.len();
                    batch[i].push(path);
                    continue 'fill;
                }
            }
            break;
        }
        if length == 0 && batch.iter().all(Vec::is_empty) {
            return requests;
        }
        let [data, exist, child, persistent, recursive] = batch;
        if persistent.is_empty() && recursive.is_empty() {
            requests.push(Request::SetWatches(SetWatches {
                relative_zxid,
                data_watches: data,
                exist_watches: exist,
                child_watches: child,
            }));
        } else {
            requests.push(Request::SetWatches2(SetWatches2 {
                relative_zxid,
                data_watches: data,
                exist_watches: exist,
                child_watches: child,
                persistent_watches: persistent,
                persistent_recursive_watches: recursive,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chroot(s: &str) -> Chroot {
        Chroot::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn ancestors_walk_to_root() {
        assert_eq!(
            ancestors("/a/b/c").collect::<Vec<_>>(),
            ["/a/b/c", "/a/b", "/a", "/"]
        );
        assert_eq!(ancestors("/").collect::<Vec<_>>(), ["/"]);
    }

    #[test]
    fn fan_out_follows_java() {
        let mut reg = WatchRegistry::default();
        let none = Chroot::none();
        let (d1, mut d1r) = oneshot::channel();
        let (d2, mut d2r) = oneshot::channel();
        let (c1, mut c1r) = oneshot::channel();
        let (e1, mut e1r) = oneshot::channel();
        reg.add_oneshot(OneshotKind::Data, "/a".into(), d1);
        reg.add_oneshot(OneshotKind::Data, "/a".into(), d2);
        reg.add_oneshot(OneshotKind::Child, "/a".into(), c1);
        reg.add_oneshot(OneshotKind::Exist, "/b".into(), e1);
        let (ptx, mut prx) = super::super::stream::channel(None);
        let (rtx, mut rrx) = super::super::stream::channel(None);
        reg.add_persistent(AddWatchMode::Persistent, "/a".into(), ptx);
        reg.add_persistent(AddWatchMode::PersistentRecursive, "/".into(), rtx);

        reg.dispatch(EventType::NodeDataChanged, "/a", &none);
        let changed = WatchedEvent::node(EventType::NodeDataChanged, "/a");
        assert_eq!(d1r.try_recv(), Ok(changed.clone()));
        assert_eq!(d2r.try_recv(), Ok(changed.clone()));
        assert!(
            c1r.try_recv().is_err(),
            "child watch must not fire on data change"
        );
        assert_eq!(prx.try_recv(), Ok(changed.clone()));
        assert_eq!(rrx.try_recv(), Ok(changed));

        reg.dispatch(EventType::NodeChildrenChanged, "/a", &none);
        let children = WatchedEvent::node(EventType::NodeChildrenChanged, "/a");
        assert_eq!(c1r.try_recv(), Ok(children.clone()));
        assert_eq!(prx.try_recv(), Ok(children));
        assert!(
            rrx.try_recv().is_err(),
            "recursive watches never see children changes"
        );

        reg.dispatch(EventType::NodeCreated, "/b", &none);
        assert_eq!(
            e1r.try_recv(),
            Ok(WatchedEvent::node(EventType::NodeCreated, "/b"))
        );
        assert_eq!(
            rrx.try_recv(),
            Ok(WatchedEvent::node(EventType::NodeCreated, "/b"))
        );

        let lists = reg.lists();
        assert_eq!(lists.persistent, ["/a"]);
        assert_eq!(lists.recursive, ["/"]);
        assert!(lists.data.is_empty() && lists.child.is_empty() && lists.exist.is_empty());
    }

    #[test]
    fn chroot_is_stripped_and_outside_paths_kept() {
        let mut reg = WatchRegistry::default();
        let app = chroot("/app");
        let (tx, mut rx) = oneshot::channel();
        reg.add_oneshot(OneshotKind::Data, "/app/x".into(), tx);
        let (config_tx, mut config_rx) = oneshot::channel();
        reg.add_oneshot(OneshotKind::Data, "/zookeeper/config".into(), config_tx);
        reg.dispatch(EventType::NodeDeleted, "/apple/x", &app);
        assert!(rx.try_recv().is_err());
        reg.dispatch(EventType::NodeDeleted, "/app/x", &app);
        assert_eq!(
            rx.try_recv(),
            Ok(WatchedEvent::node(EventType::NodeDeleted, "/x"))
        );
        reg.dispatch(EventType::NodeDataChanged, "/zookeeper/config", &app);
        assert_eq!(
            config_rx.try_recv(),
            Ok(WatchedEvent::node(
                EventType::NodeDataChanged,
                "/zookeeper/config"
            ))
        );
    }

    #[test]
    fn dropped_watchers_are_pruned_and_terminate_tells_the_rest() {
        let mut reg = WatchRegistry::default();
        let (gone, _) = oneshot::channel();
        reg.add_oneshot(OneshotKind::Data, "/gone".into(), gone);
        let (tx, mut rx) = oneshot::channel();
        reg.add_oneshot(OneshotKind::Child, "/kept".into(), tx);
        let (stx, mut srx) = super::super::stream::channel(None);
        reg.add_persistent(AddWatchMode::Persistent, "/p".into(), stx);
        let lists = reg.lists();
        assert!(lists.data.is_empty());
        assert_eq!(lists.child, ["/kept"]);

        reg.terminate(KeeperState::Expired, &Chroot::none());
        assert_eq!(
            rx.try_recv(),
            Ok(WatchedEvent::session(KeeperState::Expired, "/kept"))
        );
        assert_eq!(
            srx.try_recv(),
            Ok(WatchedEvent::session(KeeperState::Expired, "/p"))
        );
        assert!(srx.try_recv().is_err());
        assert!(reg.lists().is_empty());
    }

    #[test]
    fn dropped_watchers_are_swept_periodically() {
        let mut reg = WatchRegistry::default();
        let (kept, _kept_rx) = oneshot::channel();
        reg.add_oneshot(OneshotKind::Data, "/kept".into(), kept);
        for i in 0..PRUNE_EVERY * 2 {
            let (tx, _) = oneshot::channel();
            reg.add_oneshot(OneshotKind::Data, format!("/gone/{i}"), tx);
        }
        assert!(reg.data.len() < PRUNE_EVERY + 2, "{}", reg.data.len());
        assert!(reg.data.contains_key("/kept"));
    }

    #[test]
    fn remove_tells_watchers() {
        let mut reg = WatchRegistry::default();
        let (tx, mut rx) = oneshot::channel();
        reg.add_oneshot(OneshotKind::Exist, "/x".into(), tx);
        let (stx, mut srx) = super::super::stream::channel(None);
        reg.add_persistent(AddWatchMode::PersistentRecursive, "/x".into(), stx);
        reg.remove(WatcherType::Data, "/x", &Chroot::none());
        assert_eq!(
            rx.try_recv(),
            Ok(WatchedEvent::node(EventType::DataWatchRemoved, "/x"))
        );
        assert!(srx.try_recv().is_err());
        reg.remove(WatcherType::Any, "/x", &Chroot::none());
        assert_eq!(
            srx.try_recv(),
            Ok(WatchedEvent::node(EventType::PersistentWatchRemoved, "/x"))
        );
        assert!(reg.lists().is_empty());
    }

    #[test]
    fn set_watches_batches_like_java() {
        assert!(set_watches_requests(5, WatchLists::default()).is_empty());

        let small = WatchLists {
            data: vec!["/d".into()],
            exist: vec!["/e".into()],
            child: vec!["/c".into()],
            ..Default::default()
        };
        let requests = set_watches_requests(7, small);
        assert_eq!(
            requests,
            [Request::SetWatches(SetWatches {
                relative_zxid: 7,
                data_watches: vec!["/d".into()],
                exist_watches: vec!["/e".into()],
                child_watches: vec!["/c".into()],
            })]
        );

        // 3000 paths of 100 bytes = 300 000 bytes → 3 batches (131 100 + 131 100 + rest).
        let long: Vec<String> = (0..3000).map(|i| format!("/{i:099}")).collect();
        let big = WatchLists {
            data: long.clone(),
            persistent: vec!["/p".into()],
            ..Default::default()
        };
        let requests = set_watches_requests(1, big);
        assert_eq!(requests.len(), 3);
        let mut seen = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            match r {
                Request::SetWatches(sw) => {
                    assert!(i < 2);
                    assert_eq!(sw.data_watches.len(), 1311);
                    seen.extend(sw.data_watches.iter().cloned());
                }
                Request::SetWatches2(sw) => {
                    assert_eq!(i, 2);
                    assert_eq!(sw.persistent_watches, ["/p"]);
                    seen.extend(sw.data_watches.iter().cloned());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seen, long);
    }
}
