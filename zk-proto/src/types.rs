//! Small protocol enums and flags: watch [`EventType`] / [`KeeperState`], [`WatcherType`],
//! [`AddWatchMode`], [`CreateMode`] and the ACL permission bits [`Perms`].
//!
//! Records keep these as raw integers (so decoding never fails on a value this crate does not
//! know); convert with `TryFrom<i32>`, which returns an [`UnknownValue`](crate::UnknownValue)
//! for unknown numbers.
//!
//! ```
//! use zk_proto::{CreateMode, OpCode, Perms};
//!
//! let mode = CreateMode::try_from(3)?;
//! assert_eq!(mode, CreateMode::EphemeralSequential);
//! assert!(mode.is_ephemeral() && mode.is_sequential());
//! assert_eq!(mode.op_code(true), OpCode::Create2);
//! assert_eq!(CreateMode::Container.op_code(true), OpCode::CreateContainer);
//!
//! let perms = Perms::READ | Perms::WRITE;
//! assert!(perms.contains(Perms::READ) && !perms.contains(Perms::ADMIN));
//! assert_eq!(format!("{perms:?}"), "Perms(READ | WRITE)");
//! # Ok::<(), zk_proto::UnknownValue>(())
//! ```

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign};

use bytes::{Buf, BufMut};

use crate::codec::{Decode, DecodeError, Encode};
use crate::op_code::OpCode;

code_enum! {
    /// What happened to a watched znode (`Watcher.Event.EventType`).
    pub enum EventType("event type") {
        /// -1: no znode event; the state changed.
        None = -1 => "None",
        /// 1: the znode was created.
        NodeCreated = 1 => "NodeCreated",
        /// 2: the znode was deleted.
        NodeDeleted = 2 => "NodeDeleted",
        /// 3: the znode's data changed.
        NodeDataChanged = 3 => "NodeDataChanged",
        /// 4: the znode's children changed.
        NodeChildrenChanged = 4 => "NodeChildrenChanged",
        /// 5: a data watch was removed (client-local).
        DataWatchRemoved = 5 => "DataWatchRemoved",
        /// 6: a child watch was removed (client-local).
        ChildWatchRemoved = 6 => "ChildWatchRemoved",
        /// 7: a persistent watch was removed (client-local).
        PersistentWatchRemoved = 7 => "PersistentWatchRemoved",
    }
}

code_enum! {
    /// Connection/session state carried by watch events (`Watcher.Event.KeeperState`).
    pub enum KeeperState("keeper state") {
        /// -1: unknown (deprecated).
        Unknown = -1 => "Unknown",
        /// 0: disconnected from the ensemble.
        Disconnected = 0 => "Disconnected",
        /// 1: unused (deprecated).
        NoSyncConnected = 1 => "NoSyncConnected",
        /// 3: connected; server notifications always carry this state.
        SyncConnected = 3 => "SyncConnected",
        /// 4: authentication failed.
        AuthFailed = 4 => "AuthFailed",
        /// 5: connected to a read-only server.
        ConnectedReadOnly = 5 => "ConnectedReadOnly",
        /// 6: SASL authentication succeeded.
        SaslAuthenticated = 6 => "SaslAuthenticated",
        /// 7: the client was closed (client-local).
        Closed = 7 => "Closed",
        /// -112: the session expired.
        Expired = -112 => "Expired",
    }
}

code_enum! {
    /// Which watches `checkWatches` / `removeWatches` address (`Watcher.WatcherType`).
    pub enum WatcherType("watcher type") {
        /// 1: child watches.
        Children = 1 => "Children",
        /// 2: data (and exist) watches.
        Data = 2 => "Data",
        /// 3: any watch.
        Any = 3 => "Any",
        /// 4: persistent watches.
        Persistent = 4 => "Persistent",
        /// 5: persistent recursive watches.
        PersistentRecursive = 5 => "PersistentRecursive",
    }
}

code_enum! {
    /// The `mode` of an `addWatch` request (`AddWatchMode`).
    pub enum AddWatchMode("add-watch mode") {
        /// 0: persistent watch on the node (data and children).
        Persistent = 0 => "PERSISTENT",
        /// 1: persistent watch on the node and all descendants.
        PersistentRecursive = 1 => "PERSISTENT_RECURSIVE",
    }
}

code_enum! {
    /// The `flags` of a create request (`CreateMode`).
    pub enum CreateMode("create mode") {
        /// 0: persistent node.
        Persistent = 0 => "PERSISTENT",
        /// 1: deleted when the creating session ends.
        Ephemeral = 1 => "EPHEMERAL",
        /// 2: persistent with a sequence suffix.
        PersistentSequential = 2 => "PERSISTENT_SEQUENTIAL",
        /// 3: ephemeral with a sequence suffix.
        EphemeralSequential = 3 => "EPHEMERAL_SEQUENTIAL",
        /// 4: deleted by the server once its last child is gone.
        Container = 4 => "CONTAINER",
        /// 5: persistent, deleted after a TTL once it has no children.
        PersistentWithTtl = 5 => "PERSISTENT_WITH_TTL",
        /// 6: persistent sequential with a TTL.
        PersistentSequentialWithTtl = 6 => "PERSISTENT_SEQUENTIAL_WITH_TTL",
    }
}

/// Largest TTL (ms) a TTL node may have: 2^40 − 1 (about 34.8 years).
pub const MAX_TTL_MS: i64 = (1 << 40) - 1;

impl CreateMode {
    /// Deleted when the owning session ends.
    pub const fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// The server appends a 10-digit sequence number to the name.
    pub const fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// A container node (must be created with [`OpCode::CreateContainer`]).
    pub const fn is_container(self) -> bool {
        matches!(self, CreateMode::Container)
    }

    /// A TTL node (must be created with [`OpCode::CreateTtl`]).
    pub const fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// The opcode the Java client uses for this mode: containers always use
    /// `createContainer`, TTL modes `createTTL`; the others `create2` when the caller wants the
    /// new node's stat (`with_stat`), else `create`.
    pub const fn op_code(self, with_stat: bool) -> OpCode {
        if self.is_container() {
            OpCode::CreateContainer
        } else if self.is_ttl() {
            OpCode::CreateTtl
        } else if with_stat {
            OpCode::Create2
        } else {
            OpCode::Create
        }
    }
}

macro_rules! impl_display_name {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}

impl_display_name!(
    EventType,
    KeeperState,
    WatcherType,
    AddWatchMode,
    CreateMode
);

/// ACL permission bits (the `perms` int of an ACL). Any `i32` is representable, so decoding
/// never fails and unknown bits survive a round trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Perms(pub i32);

impl Perms {
    /// No permissions.
    pub const NONE: Perms = Perms(0);
    /// Read data and list children (1).
    pub const READ: Perms = Perms(1 << 0);
    /// Set data (2).
    pub const WRITE: Perms = Perms(1 << 1);
    /// Create children (4).
    pub const CREATE: Perms = Perms(1 << 2);
    /// Delete children (8).
    pub const DELETE: Perms = Perms(1 << 3);
    /// Set the ACL (16).
    pub const ADMIN: Perms = Perms(1 << 4);
    /// All five bits (31).
    pub const ALL: Perms = Perms(31);

    /// The raw bits.
    pub const fn bits(self) -> i32 {
        self.0
    }

    /// `true` if every bit of `other` is set in `self`.
    pub const fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }

    /// `true` if no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

impl BitOrAssign for Perms {
    fn bitor_assign(&mut self, rhs: Perms) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Perms {
    type Output = Perms;
    fn bitand(self, rhs: Perms) -> Perms {
        Perms(self.0 & rhs.0)
    }
}

impl fmt::Debug for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(Perms, &str); 5] = [
            (Perms::READ, "READ"),
            (Perms::WRITE, "WRITE"),
            (Perms::CREATE, "CREATE"),
            (Perms::DELETE, "DELETE"),
            (Perms::ADMIN, "ADMIN"),
        ];
        f.write_str("Perms(")?;
        let mut first = true;
        for (bit, name) in NAMES {
            if self.contains(bit) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        let rest = self.0 & !Perms::ALL.0;
        if rest != 0 || first {
            if !first {
                f.write_str(" | ")?;
            }
            write!(f, "{rest:#x}")?;
        }
        f.write_str(")")
    }
}

impl Encode for Perms {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.0.encode(buf);
    }
    fn encoded_len(&self) -> usize {
        4
    }
}

impl Decode for Perms {
    const MIN_LEN: usize = 4;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        i32::decode(buf).map(Perms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_roundtrip() {
        for &v in EventType::ALL {
            assert_eq!(EventType::try_from(v.as_i32()), Ok(v));
        }
        for &v in KeeperState::ALL {
            assert_eq!(KeeperState::try_from(v.as_i32()), Ok(v));
        }
        for &v in WatcherType::ALL {
            assert_eq!(WatcherType::try_from(v.as_i32()), Ok(v));
        }
        for &v in AddWatchMode::ALL {
            assert_eq!(AddWatchMode::try_from(v.as_i32()), Ok(v));
        }
        for &v in CreateMode::ALL {
            assert_eq!(CreateMode::try_from(v.as_i32()), Ok(v));
        }
        assert_eq!(KeeperState::Expired.as_i32(), -112);
        assert_eq!(EventType::None.as_i32(), -1);
    }

    #[test]
    fn unknown_values() {
        assert!(EventType::try_from(0).is_err());
        assert!(KeeperState::try_from(2).is_err());
        assert!(WatcherType::try_from(0).is_err());
        assert!(AddWatchMode::try_from(2).is_err());
        assert_eq!(CreateMode::try_from(7).map_err(|e| e.value), Err(7));
        assert_eq!(
            CreateMode::try_from(-1).map_err(|e| e.kind),
            Err("create mode")
        );
    }

    #[test]
    fn create_mode_table() {
        // (mode, ephemeral, sequential, container, ttl, opcode with stat, without)
        use CreateMode::*;
        use OpCode as O;
        let table = [
            (
                Persistent,
                false,
                false,
                false,
                false,
                O::Create2,
                O::Create,
            ),
            (Ephemeral, true, false, false, false, O::Create2, O::Create),
            (
                PersistentSequential,
                false,
                true,
                false,
                false,
                O::Create2,
                O::Create,
            ),
            (
                EphemeralSequential,
                true,
                true,
                false,
                false,
                O::Create2,
                O::Create,
            ),
            (
                Container,
                false,
                false,
                true,
                false,
                O::CreateContainer,
                O::CreateContainer,
            ),
            (
                PersistentWithTtl,
                false,
                false,
                false,
                true,
                O::CreateTtl,
                O::CreateTtl,
            ),
            (
                PersistentSequentialWithTtl,
                false,
                true,
                false,
                true,
                O::CreateTtl,
                O::CreateTtl,
            ),
        ];
        for (mode, eph, seq, cont, ttl, op2, op1) in table {
            assert_eq!(mode.is_ephemeral(), eph, "{mode}");
            assert_eq!(mode.is_sequential(), seq, "{mode}");
            assert_eq!(mode.is_container(), cont, "{mode}");
            assert_eq!(mode.is_ttl(), ttl, "{mode}");
            assert_eq!(mode.op_code(true), op2, "{mode}");
            assert_eq!(mode.op_code(false), op1, "{mode}");
        }
    }

    #[test]
    fn perms() {
        assert_eq!(
            Perms::READ | Perms::WRITE | Perms::CREATE | Perms::DELETE | Perms::ADMIN,
            Perms::ALL
        );
        assert_eq!(Perms::ALL.bits(), 31);
        assert_eq!(format!("{:?}", Perms::NONE), "Perms(0x0)");
        assert_eq!(format!("{:?}", Perms(1 | 64)), "Perms(READ | 0x40)");
        assert!((Perms::ALL & Perms::ADMIN).contains(Perms::ADMIN));
        assert!(Perms::NONE.is_empty());
    }
}
