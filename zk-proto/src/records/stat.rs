//! [`Stat`] (znode metadata, 68 bytes) and [`StatPersisted`] (the on-disk variant).

jute_record! {
    /// Znode metadata returned by most read and write operations. Always 68 bytes.
    #[derive(Copy, Hash)]
    pub struct Stat {
        /// zxid of the create.
        pub czxid: i64,
        /// zxid of the last setData (= czxid until then).
        pub mzxid: i64,
        /// Create time, ms since the epoch.
        pub ctime: i64,
        /// Last setData time, ms since the epoch.
        pub mtime: i64,
        /// Data version.
        pub version: i32,
        /// Child version.
        pub cversion: i32,
        /// ACL version.
        pub aversion: i32,
        /// Owning session id for ephemerals, else 0.
        pub ephemeral_owner: i64,
        /// Data length (0 for null data).
        pub data_length: i32,
        /// Number of children.
        pub num_children: i32,
        /// zxid of the last child create/delete.
        pub pzxid: i64,
    }
}

/// Encoded size of a [`Stat`].
pub const STAT_LEN: usize = 68;

jute_record! {
    /// The metadata a server persists: [`Stat`] without `data_length` and `num_children`.
    #[derive(Copy, Hash)]
    pub struct StatPersisted {
        /// zxid of the create.
        pub czxid: i64,
        /// zxid of the last setData.
        pub mzxid: i64,
        /// Create time, ms since the epoch.
        pub ctime: i64,
        /// Last setData time, ms since the epoch.
        pub mtime: i64,
        /// Data version.
        pub version: i32,
        /// Child version.
        pub cversion: i32,
        /// ACL version.
        pub aversion: i32,
        /// Owning session id for ephemerals, else 0.
        pub ephemeral_owner: i64,
        /// zxid of the last child create/delete.
        pub pzxid: i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Decode, Encode};
    use crate::records::testing::{hex, roundtrip, sample_stat as sample};

    #[test]
    fn stat_bytes() {
        // 1_700_000_000_000 = 0x18B_CFE5_6800; +123 = 0x18B_CFE5_687B.
        let expected = hex(
            "0000000100000002 0000000100000003 0000018bcfe56800 0000018bcfe5687b
             00000001 00000002 00000000 0100012345670000 00000005 00000000
             0000000100000002",
        );
        let bytes = roundtrip(&sample());
        assert_eq!(bytes.len(), STAT_LEN);
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(Stat::MIN_LEN, STAT_LEN);
    }

    #[test]
    fn stat_persisted_roundtrip() {
        let s = sample();
        let p = StatPersisted {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion,
            aversion: s.aversion,
            ephemeral_owner: s.ephemeral_owner,
            pzxid: s.pzxid,
        };
        assert_eq!(roundtrip(&p).len(), 60);
        assert_eq!(p.encoded_len(), 60);
    }
}
