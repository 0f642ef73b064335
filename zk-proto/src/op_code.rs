//! [`OpCode`]: the `type` field of a `RequestHeader` (and of a `MultiHeader`).
//!
//! Numbers and names follow Java's `ZooDefs.OpCode`. Unknown numbers are not an error until
//! you ask for an `OpCode`: `OpCode::try_from(n)` returns an
//! [`UnknownValue`](crate::UnknownValue) carrying `n`.
//!
//! ```
//! use zk_proto::OpCode;
//!
//! assert_eq!(OpCode::try_from(14), Ok(OpCode::Multi));
//! assert_eq!(i32::from(OpCode::CloseSession), -11);
//! assert!(OpCode::SetData.is_write());
//! assert_eq!(OpCode::try_from(10).map_err(|e| e.value), Err(10));
//! ```

use std::fmt;

code_enum! {
    /// A ZooKeeper operation code.
    pub enum OpCode("opcode") {
        /// 0: a watch notification (server→client only, xid -1).
        Notification = 0 => "notification",
        /// 1: create a znode; the reply carries only the path.
        Create = 1 => "create",
        /// 2: delete a znode.
        Delete = 2 => "delete",
        /// 3: stat a znode, optionally leaving a watch.
        Exists = 3 => "exists",
        /// 4: read a znode's data and stat.
        GetData = 4 => "getData",
        /// 5: write a znode's data.
        SetData = 5 => "setData",
        /// 6: read a znode's ACL.
        GetAcl = 6 => "getACL",
        /// 7: set a znode's ACL.
        SetAcl = 7 => "setACL",
        /// 8: list children.
        GetChildren = 8 => "getChildren",
        /// 9: sync the serving replica with the leader.
        Sync = 9 => "sync",
        /// 11: keep-alive (xid -2).
        Ping = 11 => "ping",
        /// 12: list children and return the parent's stat.
        GetChildren2 = 12 => "getChildren2",
        /// 13: version check (only meaningful inside a multi).
        Check = 13 => "check",
        /// 14: atomic multi-op transaction.
        Multi = 14 => "multi",
        /// 15: create a znode; the reply carries path and stat.
        Create2 = 15 => "create2",
        /// 16: dynamic reconfiguration.
        Reconfig = 16 => "reconfig",
        /// 17: check that a watch exists.
        CheckWatches = 17 => "checkWatches",
        /// 18: remove watches.
        RemoveWatches = 18 => "removeWatches",
        /// 19: create a container znode.
        CreateContainer = 19 => "createContainer",
        /// 20: delete an empty container (server-internal reaper).
        DeleteContainer = 20 => "deleteContainer",
        /// 21: create a znode with a TTL.
        CreateTtl = 21 => "createTTL",
        /// 22: several reads in one round trip.
        MultiRead = 22 => "multiRead",
        /// 100: add authentication (xid -4).
        Auth = 100 => "auth",
        /// 101: re-register watches after reconnect.
        SetWatches = 101 => "setWatches",
        /// 102: a SASL token exchange step.
        Sasl = 102 => "sasl",
        /// 103: list the session's ephemeral znodes.
        GetEphemerals = 103 => "getEphemerals",
        /// 104: count all descendants of a znode.
        GetAllChildrenNumber = 104 => "getAllChildrenNumber",
        /// 105: re-register watches including persistent ones.
        SetWatches2 = 105 => "setWatches2",
        /// 106: add a persistent (optionally recursive) watch.
        AddWatch = 106 => "addWatch",
        /// 107: ask which identities the connection is authenticated as.
        WhoAmI = 107 => "whoAmI",
        /// -10: session creation (quorum-internal transaction type; never sent by clients).
        CreateSession = -10 => "createSession",
        /// -11: close the session.
        CloseSession = -11 => "closeSession",
        /// -1: the "error" transaction type and the multi error-result marker.
        Error = -1 => "error",
    }
}

impl OpCode {
    /// Writes that go through the leader (Zab): they change the tree or the session table.
    ///
    /// `check` is included: it is part of a write multi.
    pub const fn is_write(self) -> bool {
        matches!(
            self,
            OpCode::Create
                | OpCode::Delete
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Check
                | OpCode::Multi
                | OpCode::Create2
                | OpCode::Reconfig
                | OpCode::CreateContainer
                | OpCode::DeleteContainer
                | OpCode::CreateTtl
                | OpCode::CreateSession
                | OpCode::CloseSession
        )
    }

    /// Reads served from the local replica.
    pub const fn is_read(self) -> bool {
        matches!(
            self,
            OpCode::Exists
                | OpCode::GetData
                | OpCode::GetAcl
                | OpCode::GetChildren
                | OpCode::GetChildren2
                | OpCode::MultiRead
                | OpCode::GetEphemerals
                | OpCode::GetAllChildrenNumber
                | OpCode::WhoAmI
        )
    }

    /// One of the four create opcodes (create, create2, createContainer, createTTL).
    pub const fn is_create(self) -> bool {
        matches!(
            self,
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl
        )
    }
}

impl fmt::Display for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opcode_roundtrips() {
        assert_eq!(OpCode::ALL.len(), 33);
        for &op in OpCode::ALL {
            assert_eq!(OpCode::try_from(i32::from(op)), Ok(op));
            assert_eq!(op.to_string(), op.name());
        }
    }

    #[test]
    fn numbers_match_zoodefs() {
        let expected = [
            (0, OpCode::Notification),
            (1, OpCode::Create),
            (9, OpCode::Sync),
            (11, OpCode::Ping),
            (16, OpCode::Reconfig),
            (20, OpCode::DeleteContainer),
            (22, OpCode::MultiRead),
            (102, OpCode::Sasl),
            (107, OpCode::WhoAmI),
            (-10, OpCode::CreateSession),
            (-11, OpCode::CloseSession),
            (-1, OpCode::Error),
        ];
        for (n, op) in expected {
            assert_eq!(op.as_i32(), n);
        }
    }

    #[test]
    fn unknown_numbers_are_values() {
        for n in [10, 23, 99, 108, -2, -12, i32::MIN, i32::MAX] {
            let err = OpCode::try_from(n);
            assert_eq!(err.map_err(|e| (e.kind, e.value)), Err(("opcode", n)));
        }
    }

    #[test]
    fn kinds_are_disjoint() {
        for &op in OpCode::ALL {
            assert!(!(op.is_read() && op.is_write()), "{op}");
        }
        assert!(OpCode::CreateTtl.is_write() && OpCode::CreateTtl.is_create());
        assert!(!OpCode::Ping.is_write() && !OpCode::Ping.is_read());
    }
}
