//! [`WatchedEvent`]: what a watch delivers. Defined in the session layer (the watch registry
//! creates them) and re-exported by [`crate::watcher`].

use zk_proto::{EventType, KeeperState};

/// A watch notification, with the path as the client sees it (chroot stripped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened; [`EventType::None`] for session events.
    pub event_type: EventType,
    /// The session state: `SyncConnected` for node events from the server; `Expired`,
    /// `AuthFailed` or `Closed` for the final event of an ended session.
    pub state: KeeperState,
    /// The node the event is about (for a recursive watch: the changed descendant).
    pub path: String,
}

impl WatchedEvent {
    pub(crate) fn node(event_type: EventType, path: impl Into<String>) -> WatchedEvent {
        WatchedEvent {
            event_type,
            state: KeeperState::SyncConnected,
            path: path.into(),
        }
    }

    pub(crate) fn session(state: KeeperState, path: impl Into<String>) -> WatchedEvent {
        WatchedEvent {
            event_type: EventType::None,
            state,
            path: path.into(),
        }
    }

    /// `true` for the final event of an ended session (not a node event).
    pub fn is_session_event(&self) -> bool {
        self.event_type == EventType::None
    }
}
