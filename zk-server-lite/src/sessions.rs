//! The session table: ids, passwords, negotiated timeouts and expiry on tick boundaries
//! (Apache's `SessionTrackerImpl` + `ExpiryQueue`). Time is always passed in (`now`, ms on a
//! monotonic clock), never read here.
//!
//! * Ids: the first is `((now << 24) >>> 8) | (myid << 56)`, then +1 per session;
//!   `0x8000_0000_0000_0000` (the container marker) is skipped.
//! * Passwords are derived from the id and a server secret, so they need no storage and
//!   every replica derives the same one.
//! * A session expires at `round_up(last_touch + timeout)` to the next multiple of tickTime;
//!   [`SessionTracker::expired`] lists (and marks closing) those whose deadline has passed.

use std::collections::BTreeMap;

use zk_proto::records::PASSWORD_LEN;

/// One live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Session id.
    pub id: i64,
    /// Negotiated timeout, ms.
    pub timeout: i32,
    /// Deadline (ms, on the tick grid).
    pub expire_at: i64,
    /// A closeSession txn is on its way: new requests get SESSIONEXPIRED.
    pub closing: bool,
}

/// The session table.
#[derive(Debug)]
pub struct SessionTracker {
    sessions: BTreeMap<i64, Session>,
    next_id: i64,
    tick_ms: i64,
    secret: u64,
}

/// Apache's `ExpiryQueue.roundToNextInterval`.
pub fn round_to_next_tick(time: i64, tick_ms: i64) -> i64 {
    (time / tick_ms + 1) * tick_ms
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SessionTracker {
    /// A table for server `myid`, seeding ids from `now` (ms).
    pub fn new(myid: u8, now: i64, tick_ms: i64, secret: u64) -> SessionTracker {
        let first = (((now << 24) as u64) >> 8) as i64 | (i64::from(myid) << 56);
        SessionTracker {
            sessions: BTreeMap::new(),
            next_id: first,
            tick_ms: tick_ms.max(1),
            secret,
        }
    }

    /// Allocates the next session id.
    pub fn next_session_id(&mut self) -> i64 {
        // 0 means "new session" on the wire; i64::MIN is the container marker.
        if self.next_id == i64::MIN || self.next_id == 0 {
            self.next_id += 1;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Makes later ids larger than `id` when `id` came from this server's id space (after
    /// recovery, so new sessions never reuse a restored id).
    pub fn ensure_next_above(&mut self, id: i64) {
        if (id >> 56) == (self.next_id >> 56) && id >= self.next_id {
            self.next_id = id + 1;
        }
    }

    /// The password of session `id`.
    pub fn password(&self, id: i64) -> [u8; PASSWORD_LEN] {
        let a = splitmix64(id as u64 ^ self.secret);
        let b = splitmix64(a);
        let mut out = [0; PASSWORD_LEN];
        out[..8].copy_from_slice(&a.to_be_bytes());
        out[8..].copy_from_slice(&b.to_be_bytes());
        out
    }

    /// Registers a session (applying its createSession txn).
    pub fn add(&mut self, id: i64, timeout: i32, now: i64) {
        let expire_at = round_to_next_tick(now + i64::from(timeout), self.tick_ms);
        self.sessions.insert(
            id,
            Session {
                id,
                timeout,
                expire_at,
                closing: false,
            },
        );
    }

    /// The session, if known.
    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// Whether the session is known and not closing.
    pub fn is_live(&self, id: i64) -> bool {
        self.sessions.get(&id).is_some_and(|s| !s.closing)
    }

    /// Renews a live session's deadline; `false` if unknown or closing.
    pub fn touch(&mut self, id: i64, now: i64) -> bool {
        match self.sessions.get_mut(&id) {
            Some(s) if !s.closing => {
                s.expire_at = round_to_next_tick(now + i64::from(s.timeout), self.tick_ms);
                true
            }
            _ => false,
        }
    }

    /// Changes a session's timeout (re-attach with a new negotiated timeout).
    pub fn set_timeout(&mut self, id: i64, timeout: i32, now: i64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.timeout = timeout;
        }
        self.touch(id, now);
    }

    /// Marks a session closing; `false` if unknown or already closing.
    pub fn set_closing(&mut self, id: i64) -> bool {
        match self.sessions.get_mut(&id) {
            Some(s) if !s.closing => {
                s.closing = true;
                true
            }
            _ => false,
        }
    }

    /// Sessions whose deadline is `<= now` and that are not closing yet; they are marked
    /// closing. Sorted by id.
    pub fn expired(&mut self, now: i64) -> Vec<i64> {
        let mut out = Vec::new();
        for s in self.sessions.values_mut() {
            if !s.closing && s.expire_at <= now {
                s.closing = true;
                out.push(s.id);
            }
        }
        out
    }

    /// Forgets a session (its closeSession txn was applied).
    pub fn remove(&mut self, id: i64) -> Option<Session> {
        self.sessions.remove(&id)
    }

    /// All sessions, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_passwords() {
        let mut t = SessionTracker::new(1, 0x1234_5678, 2000, 7);
        let a = t.next_session_id();
        let b = t.next_session_id();
        assert_eq!(b, a + 1);
        assert_eq!(a >> 56, 1);
        assert_eq!(a & 0xffff, 0);
        assert_eq!(t.password(a), t.password(a));
        assert_ne!(t.password(a), t.password(b));
    }

    #[test]
    fn expiry_on_tick_boundaries() {
        let mut t = SessionTracker::new(0, 0, 1000, 7);
        t.add(5, 4000, 1500);
        assert_eq!(t.get(5).map(|s| s.expire_at), Some(6000));
        assert!(t.expired(5999).is_empty());
        assert!(t.touch(5, 2100));
        assert_eq!(t.get(5).map(|s| s.expire_at), Some(7000));
        assert!(t.expired(6999).is_empty());
        assert_eq!(t.expired(7000), vec![5]);
        assert!(t.expired(8000).is_empty());
        assert!(!t.is_live(5));
        assert!(!t.touch(5, 8000));
        assert!(t.remove(5).is_some());
        assert!(t.is_empty());
    }
}
