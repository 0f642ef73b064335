//! zxids: the epoch in the high 32 bits, a counter in the low 32 (PROTOCOL.md 2.8).
//!
//! A new leader of epoch `e` starts at `make(e, 0)`, a zxid that belongs to no transaction (it
//! tags NEWLEADER and the acks of NEWLEADER and UPTODATE); its first proposal is `make(e, 1)`.

/// A transaction id, as Apache's `long`.
pub type Zxid = i64;

/// An epoch (Apache keeps them as `long`; only the low 32 bits fit in a zxid).
pub type Epoch = i64;

/// The last counter a leader may use: a proposal whose counter would reach `0xFFFF_FFFF` is
/// not made; the leader steps down so that a new epoch begins (ZOOKEEPER-1277).
pub const MAX_COUNTER: i64 = 0xFFFF_FFFE;

/// The zxid `(epoch, counter)`.
pub fn make(epoch: Epoch, counter: i64) -> Zxid {
    (epoch << 32) | (counter & 0xFFFF_FFFF)
}

/// The epoch of a zxid.
pub fn epoch(zxid: Zxid) -> Epoch {
    zxid >> 32
}

/// The counter of a zxid.
pub fn counter(zxid: Zxid) -> i64 {
    zxid & 0xFFFF_FFFF
}

/// Whether `next` may directly follow `last` in one history: the next counter of the same
/// epoch, or the first transaction of a later epoch.
pub fn follows(last: Zxid, next: Zxid) -> bool {
    next == last + 1 || (epoch(next) > epoch(last) && counter(next) == 1)
}

/// `0x…` for logs.
pub fn hex(zxid: Zxid) -> String {
    format!("{zxid:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let z = make(3, 7);
        assert_eq!(z, 0x0000_0003_0000_0007);
        assert_eq!(epoch(z), 3);
        assert_eq!(counter(z), 7);
        assert_eq!(counter(make(2, 0xFFFF_FFFF)), 0xFFFF_FFFF);
    }

    #[test]
    fn follow_rule() {
        assert!(follows(make(1, 4), make(1, 5)));
        assert!(follows(make(1, 4), make(2, 1)));
        assert!(follows(0, make(1, 1)));
        assert!(!follows(make(1, 4), make(1, 6)));
        assert!(!follows(make(1, 4), make(2, 2)));
        assert!(!follows(make(2, 4), make(1, 5)));
    }
}
