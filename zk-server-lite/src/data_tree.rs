//! The znode tree: nodes with their Stat bookkeeping, and [`DataTree::apply`], which executes a
//! committed [`Txn`] and reports the [`TreeEvent`]s that fire watches.
//!
//! Pure data, no locks, no I/O. Stat rules (Apache's `DataTree` / `DataNode`):
//!
//! * create: `czxid = mzxid = pzxid = zxid`, `ctime = mtime = txn time`; the parent's stored
//!   **create counter** becomes the txn's `parent_cversion` and its `pzxid` the zxid.
//! * delete: the parent's `pzxid` = zxid (if larger); its create counter is unchanged.
//! * setData: `version` (already computed by prep), `mzxid`, `mtime`.
//! * setACL: `aversion`; `mzxid`/`mtime` unchanged.
//! * On the wire `cversion = 2 × counter − numChildren` (creates + deletes), and
//!   `ephemeralOwner` is 0 for containers and TTL nodes ([`DataTree::stat`]).

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use zk_proto::records::{Acl, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, Stat};
use zk_proto::{ErrorCode, EventType};

use crate::txn::{NodeKind, Txn, TxnBody};

/// The config node (`getConfig` reads it).
pub const CONFIG_NODE: &str = "/zookeeper/config";
/// The quota root.
pub const QUOTA_NODE: &str = "/zookeeper/quota";
/// The system subtree.
pub const ZOOKEEPER_NODE: &str = "/zookeeper";

/// Nodes that may never be deleted (BADARGUMENTS).
pub fn is_special_path(path: &str) -> bool {
    matches!(path, "/" | ZOOKEEPER_NODE | QUOTA_NODE | CONFIG_NODE)
}

/// The parent of a valid path (`/` for top-level nodes and for `/` itself).
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last segment of a path.
pub fn name_of(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// One znode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Data (`None` = null).
    pub data: Option<Bytes>,
    /// ACL.
    pub acl: Vec<Acl>,
    /// Create zxid.
    pub czxid: i64,
    /// Last setData zxid.
    pub mzxid: i64,
    /// Create time, ms.
    pub ctime: i64,
    /// Last setData time, ms.
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Stored create counter (drives sequential names; not the wire cversion).
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Stored ephemeralOwner (see [`NodeKind::stored_owner`]).
    pub owner: i64,
    /// Last child create/delete zxid.
    pub pzxid: i64,
    /// Child names.
    pub children: BTreeSet<String>,
}

impl Node {
    fn new(data: Option<Bytes>, acl: Vec<Acl>) -> Node {
        Node {
            data,
            acl,
            czxid: 0,
            mzxid: 0,
            ctime: 0,
            mtime: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
            owner: 0,
            pzxid: 0,
            children: BTreeSet::new(),
        }
    }

    /// The node's kind, decoded from its stored owner.
    pub fn kind(&self) -> NodeKind {
        NodeKind::from_stored_owner(self.owner)
    }

    /// The Stat clients see.
    pub fn stat(&self) -> Stat {
        let num_children = i32::try_from(self.children.len()).unwrap_or(i32::MAX);
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner: self.kind().client_owner(),
            data_length: self
                .data
                .as_ref()
                .map_or(0, |d| i32::try_from(d.len()).unwrap_or(i32::MAX)),
            num_children,
            pzxid: self.pzxid,
        }
    }
}

/// A change that may fire watches, with the ACL that filters delivery (the changed node's;
/// for `ChildrenChanged`, the parent's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEvent {
    /// The node whose watches fire (for `NodeChildrenChanged`, the parent).
    pub path: String,
    /// What happened.
    pub event: EventType,
    /// ACL of that node at the time of the change.
    pub acl: Vec<Acl>,
}

/// The result of applying one transaction (or sub-transaction of a multi).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    /// A node was created.
    Created {
        /// Its final path.
        path: String,
        /// Its stat.
        stat: Stat,
    },
    /// A node was deleted.
    Deleted,
    /// Data was set; the node's new stat.
    SetData(Stat),
    /// ACL was set; the node's new stat.
    SetAcl(Stat),
    /// A check passed.
    Check,
    /// The transaction was an error.
    Error(ErrorCode),
    /// A multi's results.
    Multi(Vec<TxnResult>),
    /// A session was created.
    SessionCreated,
    /// A session was closed.
    SessionClosed,
}

/// The znode tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataTree {
    nodes: HashMap<String, Node>,
    ephemerals: HashMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl DataTree {
    /// The initial tree: `/`, `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`.
    pub fn new() -> DataTree {
        let empty = Some(Bytes::new());
        let mut nodes = HashMap::new();
        let mut root = Node::new(empty.clone(), OPEN_ACL_UNSAFE.clone());
        root.children.insert("zookeeper".into());
        let mut zk = Node::new(empty.clone(), OPEN_ACL_UNSAFE.clone());
        zk.children.insert("quota".into());
        zk.children.insert("config".into());
        nodes.insert("/".to_owned(), root);
        nodes.insert(ZOOKEEPER_NODE.to_owned(), zk);
        nodes.insert(
            QUOTA_NODE.to_owned(),
            Node::new(empty.clone(), OPEN_ACL_UNSAFE.clone()),
        );
        nodes.insert(
            CONFIG_NODE.to_owned(),
            Node::new(empty, READ_ACL_UNSAFE.clone()),
        );
        DataTree {
            nodes,
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
        }
    }

    /// Every node with its path (unordered).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// Rebuilds a tree from nodes (children sets are ignored and recomputed). `None` if the
    /// root is missing or a node's parent is.
    pub fn from_nodes(nodes: Vec<(String, Node)>) -> Option<DataTree> {
        let mut tree = DataTree {
            nodes: HashMap::with_capacity(nodes.len()),
            ephemerals: HashMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
        };
        for (path, mut node) in nodes {
            node.children.clear();
            tree.nodes.insert(path, node);
        }
        if !tree.nodes.contains_key("/") {
            return None;
        }
        let paths: Vec<String> = tree.nodes.keys().cloned().collect();
        for path in paths {
            if path == "/" {
                continue;
            }
            let kind = tree.nodes.get(&path)?.kind();
            let parent = tree.nodes.get_mut(parent_of(&path))?;
            parent.children.insert(name_of(&path).to_owned());
            match kind {
                NodeKind::Ephemeral(s) => {
                    tree.ephemerals.entry(s).or_default().insert(path);
                }
                NodeKind::Container => {
                    tree.containers.insert(path);
                }
                NodeKind::Ttl(_) => {
                    tree.ttls.insert(path);
                }
                NodeKind::Persistent => {}
            }
        }
        Some(tree)
    }

    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// The client-visible Stat of `path`.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.nodes.get(path).map(Node::stat)
    }

    /// Checks the internal indexes (children sets, ephemeral/container/TTL indexes) against
    /// the nodes; returns a description of the first inconsistency.
    pub fn check_consistency(&self) -> Result<(), String> {
        for (path, node) in &self.nodes {
            if path != "/" {
                let parent = self
                    .nodes
                    .get(parent_of(path))
                    .ok_or_else(|| format!("{path}: parent missing"))?;
                if !parent.children.contains(name_of(path)) {
                    return Err(format!("{path}: not listed by its parent"));
                }
            }
            for child in &node.children {
                if !self.nodes.contains_key(&child_path(path, child)) {
                    return Err(format!("{path}: lists missing child {child}"));
                }
            }
            let indexed = match node.kind() {
                NodeKind::Ephemeral(s) => self.ephemerals.get(&s).is_some_and(|e| e.contains(path)),
                NodeKind::Container => self.containers.contains(path),
                NodeKind::Ttl(_) => self.ttls.contains(path),
                NodeKind::Persistent => true,
            };
            if !indexed {
                return Err(format!("{path}: missing from its kind's index"));
            }
            if matches!(node.kind(), NodeKind::Ephemeral(_)) && !node.children.is_empty() {
                return Err(format!("{path}: ephemeral with children"));
            }
        }
        let indexed = self
            .ephemerals
            .values()
            .flatten()
            .chain(&self.containers)
            .chain(&self.ttls);
        for path in indexed {
            if !self.nodes.contains_key(path) {
                return Err(format!("index lists missing node {path}"));
            }
        }
        Ok(())
    }

    /// Number of nodes, root included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Total size of all node data in bytes.
    pub fn data_size(&self) -> usize {
        self.nodes
            .iter()
            .map(|(p, n)| p.len() + n.data.as_ref().map_or(0, Bytes::len))
            .sum()
    }

    /// Number of descendants of `path` (all levels).
    pub fn all_children_number(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            if let Some(node) = self.nodes.get(&p) {
                for name in &node.children {
                    count += 1;
                    stack.push(child_path(&p, name));
                }
            }
        }
        count
    }

    /// The ephemeral nodes of a session, sorted.
    pub fn ephemerals(&self, session: i64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Number of ephemeral nodes in the tree.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Container paths, sorted.
    pub fn containers(&self) -> impl Iterator<Item = &String> {
        self.containers.iter()
    }

    /// TTL node paths, sorted.
    pub fn ttl_nodes(&self) -> impl Iterator<Item = &String> {
        self.ttls.iter()
    }

    /// Applies a committed transaction, appending the watch-firing events to `events`.
    pub fn apply(&mut self, txn: &Txn, events: &mut Vec<TreeEvent>) -> TxnResult {
        self.apply_body(&txn.body, txn.header.zxid, txn.header.time, events)
    }

    fn apply_body(
        &mut self,
        body: &TxnBody,
        zxid: i64,
        time: i64,
        events: &mut Vec<TreeEvent>,
    ) -> TxnResult {
        match body {
            TxnBody::CreateSession { .. } => TxnResult::SessionCreated,
            TxnBody::CloseSession { paths_to_delete } => {
                for path in paths_to_delete {
                    // Already gone (e.g. deleted by the client) is fine.
                    let _ = self.delete(path, zxid, events);
                }
                TxnResult::SessionClosed
            }
            TxnBody::Create {
                path,
                data,
                acl,
                kind,
                parent_cversion,
            } => match self.create(path, data, acl, *kind, *parent_cversion, zxid, time, events) {
                Ok(stat) => TxnResult::Created {
                    path: path.clone(),
                    stat,
                },
                Err(e) => TxnResult::Error(e),
            },
            TxnBody::Delete { path } => match self.delete(path, zxid, events) {
                Ok(()) => TxnResult::Deleted,
                Err(e) => TxnResult::Error(e),
            },
            TxnBody::SetData {
                path,
                data,
                version,
            } => match self.nodes.get_mut(path.as_str()) {
                Some(node) => {
                    node.data = data.clone();
                    node.version = *version;
                    node.mzxid = zxid;
                    node.mtime = time;
                    let stat = node.stat();
                    events.push(TreeEvent {
                        path: path.clone(),
                        event: EventType::NodeDataChanged,
                        acl: node.acl.clone(),
                    });
                    TxnResult::SetData(stat)
                }
                None => TxnResult::Error(ErrorCode::NoNode),
            },
            TxnBody::SetAcl { path, acl, version } => match self.nodes.get_mut(path.as_str()) {
                Some(node) => {
                    node.acl = acl.clone();
                    node.aversion = *version;
                    TxnResult::SetAcl(node.stat())
                }
                None => TxnResult::Error(ErrorCode::NoNode),
            },
            TxnBody::Check { .. } => TxnResult::Check,
            TxnBody::Error(e) => TxnResult::Error(*e),
            TxnBody::Multi(ops) => TxnResult::Multi(
                ops.iter()
                    .map(|(_, sub)| self.apply_body(sub, zxid, time, events))
                    .collect(),
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        path: &str,
        data: &Option<Bytes>,
        acl: &[Acl],
        kind: NodeKind,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
        events: &mut Vec<TreeEvent>,
    ) -> Result<Stat, ErrorCode> {
        if self.nodes.contains_key(path) {
            return Err(ErrorCode::NodeExists);
        }
        let parent_path = parent_of(path);
        let parent = self.nodes.get_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        parent.children.insert(name_of(path).to_owned());
        if parent_cversion > parent.cversion {
            parent.cversion = parent_cversion;
            parent.pzxid = zxid;
        }
        let parent_acl = parent.acl.clone();
        let mut node = Node::new(data.clone(), acl.to_vec());
        node.czxid = zxid;
        node.mzxid = zxid;
        node.pzxid = zxid;
        node.ctime = time;
        node.mtime = time;
        node.owner = kind.stored_owner();
        let stat = node.stat();
        match kind {
            NodeKind::Ephemeral(session) => {
                self.ephemerals
                    .entry(session)
                    .or_default()
                    .insert(path.to_owned());
            }
            NodeKind::Container => {
                self.containers.insert(path.to_owned());
            }
            NodeKind::Ttl(_) => {
                self.ttls.insert(path.to_owned());
            }
            NodeKind::Persistent => {}
        }
        events.push(TreeEvent {
            path: path.to_owned(),
            event: EventType::NodeCreated,
            acl: acl.to_vec(),
        });
        events.push(TreeEvent {
            path: parent_path.to_owned(),
            event: EventType::NodeChildrenChanged,
            acl: parent_acl,
        });
        self.nodes.insert(path.to_owned(), node);
        Ok(stat)
    }

    fn delete(
        &mut self,
        path: &str,
        zxid: i64,
        events: &mut Vec<TreeEvent>,
    ) -> Result<(), ErrorCode> {
        if path == "/" {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.nodes.remove(path).ok_or(ErrorCode::NoNode)?;
        let parent_path = parent_of(path);
        let mut parent_acl = Vec::new();
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            parent.children.remove(name_of(path));
            if zxid > parent.pzxid {
                parent.pzxid = zxid;
            }
            parent_acl = parent.acl.clone();
        }
        match node.kind() {
            NodeKind::Ephemeral(session) => {
                if let Some(set) = self.ephemerals.get_mut(&session) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&session);
                    }
                }
            }
            NodeKind::Container => {
                self.containers.remove(path);
            }
            NodeKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            NodeKind::Persistent => {}
        }
        events.push(TreeEvent {
            path: path.to_owned(),
            event: EventType::NodeDeleted,
            acl: node.acl,
        });
        events.push(TreeEvent {
            path: parent_path.to_owned(),
            event: EventType::NodeChildrenChanged,
            acl: parent_acl,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::TxnHeader;
    use zk_proto::OpCode;

    fn txn(zxid: i64, body: TxnBody) -> Txn {
        Txn {
            header: TxnHeader {
                session_id: 1,
                cxid: 1,
                zxid,
                time: 1000 + zxid,
                op: OpCode::Create2,
            },
            body,
        }
    }

    fn create(path: &str, kind: NodeKind, parent_cversion: i32) -> TxnBody {
        TxnBody::Create {
            path: path.into(),
            data: Some(Bytes::from_static(b"d")),
            acl: OPEN_ACL_UNSAFE.clone(),
            kind,
            parent_cversion,
        }
    }

    #[test]
    fn initial_tree() {
        let t = DataTree::new();
        assert_eq!(t.node_count(), 4);
        let root = t.stat("/").unwrap();
        assert_eq!((root.num_children, root.cversion), (1, -1));
        assert_eq!(t.get(CONFIG_NODE).unwrap().acl, *READ_ACL_UNSAFE);
        assert_eq!(t.all_children_number("/"), 3);
        assert!(is_special_path("/zookeeper/quota"));
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(name_of("/a/b"), "b");
    }

    #[test]
    fn stat_bookkeeping_and_cversion_quirk() {
        let mut t = DataTree::new();
        let mut ev = Vec::new();
        t.apply(&txn(1, create("/a", NodeKind::Persistent, 1)), &mut ev);
        t.apply(&txn(2, create("/a/x", NodeKind::Persistent, 1)), &mut ev);
        t.apply(&txn(3, create("/a/y", NodeKind::Ephemeral(7), 2)), &mut ev);
        let a = t.stat("/a").unwrap();
        assert_eq!((a.czxid, a.mzxid, a.pzxid), (1, 1, 3));
        assert_eq!((a.cversion, a.num_children), (2, 2));
        assert_eq!(t.ephemerals(7), vec!["/a/y".to_owned()]);
        assert_eq!(t.stat("/a/y").unwrap().ephemeral_owner, 7);
        let r = t.apply(
            &txn(
                4,
                TxnBody::Delete {
                    path: "/a/x".into(),
                },
            ),
            &mut ev,
        );
        assert_eq!(r, TxnResult::Deleted);
        let a = t.stat("/a").unwrap();
        // Stored counter 2, one child: wire cversion = 2*2-1 = 3 (two creates + one delete).
        assert_eq!((a.cversion, a.num_children, a.pzxid), (3, 1, 4));
        let r = t.apply(
            &txn(
                5,
                TxnBody::SetData {
                    path: "/a".into(),
                    data: None,
                    version: 1,
                },
            ),
            &mut ev,
        );
        let TxnResult::SetData(s) = r else {
            panic!("{r:?}")
        };
        assert_eq!(
            (s.version, s.mzxid, s.mtime, s.data_length),
            (1, 5, 1005, 0)
        );
        assert_eq!(s.ctime, 1001);
        let r = t.apply(
            &txn(
                6,
                TxnBody::SetAcl {
                    path: "/a".into(),
                    acl: READ_ACL_UNSAFE.clone(),
                    version: 1,
                },
            ),
            &mut ev,
        );
        let TxnResult::SetAcl(s) = r else {
            panic!("{r:?}")
        };
        assert_eq!((s.aversion, s.mzxid), (1, 5));
        t.apply(
            &txn(
                7,
                TxnBody::CloseSession {
                    paths_to_delete: vec!["/a/y".into()],
                },
            ),
            &mut ev,
        );
        assert!(t.get("/a/y").is_none());
        assert!(t.ephemerals(7).is_empty());
        assert_eq!(t.all_children_number("/a"), 0);
    }

    #[test]
    fn container_and_ttl_owners_hidden() {
        let mut t = DataTree::new();
        let mut ev = Vec::new();
        t.apply(&txn(1, create("/c", NodeKind::Container, 1)), &mut ev);
        t.apply(&txn(2, create("/t", NodeKind::Ttl(500), 2)), &mut ev);
        assert_eq!(t.stat("/c").unwrap().ephemeral_owner, 0);
        assert_eq!(t.stat("/t").unwrap().ephemeral_owner, 0);
        assert_eq!(t.get("/t").unwrap().kind(), NodeKind::Ttl(500));
        assert_eq!(t.containers().count(), 1);
        assert_eq!(t.ttl_nodes().count(), 1);
    }

    #[test]
    fn events_in_order() {
        let mut t = DataTree::new();
        let mut ev = Vec::new();
        t.apply(&txn(1, create("/a", NodeKind::Persistent, 1)), &mut ev);
        let kinds: Vec<_> = ev.iter().map(|e| (e.path.as_str(), e.event)).collect();
        assert_eq!(
            kinds,
            vec![
                ("/a", EventType::NodeCreated),
                ("/", EventType::NodeChildrenChanged)
            ]
        );
    }
}
