//! Watch records: [`WatcherEvent`] (notification body), [`SetWatches`] / [`SetWatches2`]
//! (re-registration after reconnect), [`AddWatchRequest`], [`CheckWatchesRequest`] and
//! [`RemoveWatchesRequest`].

use crate::codec::UnknownValue;
use crate::types::{AddWatchMode, EventType, KeeperState, WatcherType};

jute_record! {
    /// Body of a notification (reply xid -1): what happened, and where.
    pub struct WatcherEvent {
        /// Raw event type (jute `type`); see [`WatcherEvent::event`].
        pub event_type: i32,
        /// Raw keeper state; see [`WatcherEvent::keeper_state`]. Servers always send 3.
        pub state: i32,
        /// Full server path of the znode (the client strips its chroot).
        pub path: String,
    }
}

impl WatcherEvent {
    /// A notification as a server sends it (state `SyncConnected`).
    pub fn new(event: EventType, path: impl Into<String>) -> Self {
        WatcherEvent {
            event_type: event.into(),
            state: KeeperState::SyncConnected.into(),
            path: path.into(),
        }
    }

    /// The event type, if known.
    pub fn event(&self) -> Result<EventType, UnknownValue> {
        EventType::try_from(self.event_type)
    }

    /// The keeper state, if known.
    pub fn keeper_state(&self) -> Result<KeeperState, UnknownValue> {
        KeeperState::try_from(self.state)
    }
}

jute_record! {
    /// Request body of `setWatches` (101): the watches a reconnecting client still holds.
    pub struct SetWatches {
        /// The client's last seen zxid; events after it fire immediately.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exist watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
    }
}

jute_record! {
    /// Request body of `setWatches2` (105): [`SetWatches`] plus persistent watches.
    pub struct SetWatches2 {
        /// The client's last seen zxid.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exist watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
        /// Paths with persistent watches.
        pub persistent_watches: Vec<String>,
        /// Paths with persistent recursive watches.
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! {
    /// Request body of `addWatch` (106). The success reply body is `ErrorResponse { err: 0 }`.
    pub struct AddWatchRequest {
        /// Znode path (need not exist).
        pub path: String,
        /// Raw mode; see [`AddWatchRequest::add_watch_mode`].
        pub mode: i32,
    }
}

impl AddWatchRequest {
    /// The watch mode, if known.
    pub fn add_watch_mode(&self) -> Result<AddWatchMode, UnknownValue> {
        AddWatchMode::try_from(self.mode)
    }
}

jute_record! {
    /// Request body of `checkWatches` (17).
    pub struct CheckWatchesRequest {
        /// Znode path.
        pub path: String,
        /// Raw watcher type (jute `type`); see [`CheckWatchesRequest::watcher_type`].
        pub watcher_type: i32,
    }
}

impl CheckWatchesRequest {
    /// The watcher type, if known.
    pub fn watcher_type(&self) -> Result<WatcherType, UnknownValue> {
        WatcherType::try_from(self.watcher_type)
    }
}

jute_record! {
    /// Request body of `removeWatches` (18).
    pub struct RemoveWatchesRequest {
        /// Znode path.
        pub path: String,
        /// Raw watcher type (jute `type`); see [`RemoveWatchesRequest::watcher_type`].
        pub watcher_type: i32,
    }
}

impl RemoveWatchesRequest {
    /// The watcher type, if known.
    pub fn watcher_type(&self) -> Result<WatcherType, UnknownValue> {
        WatcherType::try_from(self.watcher_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{hex, roundtrip};

    #[test]
    fn watcher_event_bytes() {
        let ev = WatcherEvent::new(EventType::NodeDataChanged, "/a");
        assert_eq!(
            &roundtrip(&ev)[..],
            &hex("00000003 00000003 00000002 2f61")[..]
        );
        assert_eq!(ev.event(), Ok(EventType::NodeDataChanged));
        assert_eq!(ev.keeper_state(), Ok(KeeperState::SyncConnected));
        let odd = WatcherEvent {
            event_type: 99,
            state: 2,
            path: String::new(),
        };
        roundtrip(&odd);
        assert!(odd.event().is_err() && odd.keeper_state().is_err());
    }

    #[test]
    fn watch_records_roundtrip() {
        roundtrip(&SetWatches {
            relative_zxid: 5,
            data_watches: vec!["/a".into()],
            exist_watches: vec![],
            child_watches: vec!["/".into(), "/b".into()],
        });
        roundtrip(&SetWatches2 {
            relative_zxid: 5,
            persistent_recursive_watches: vec!["/r".into()],
            ..Default::default()
        });
        let add = AddWatchRequest {
            path: "/a".into(),
            mode: 1,
        };
        roundtrip(&add);
        assert_eq!(add.add_watch_mode(), Ok(AddWatchMode::PersistentRecursive));
        let check = CheckWatchesRequest {
            path: "/a".into(),
            watcher_type: 3,
        };
        roundtrip(&check);
        assert_eq!(check.watcher_type(), Ok(WatcherType::Any));
        let remove = RemoveWatchesRequest {
            path: "/a".into(),
            watcher_type: 9,
        };
        roundtrip(&remove);
        assert!(remove.watcher_type().is_err());
    }
}
