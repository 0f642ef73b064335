//! Records of `getChildren` (8) and `getChildren2` (12).

use crate::records::stat::Stat;

jute_record! {
    /// Request body of `getChildren` (8).
    pub struct GetChildrenRequest {
        /// Znode path.
        pub path: String,
        /// Leave a child watch.
        pub watch: bool,
    }
}

jute_record! {
    /// Response body of `getChildren` (8).
    pub struct GetChildrenResponse {
        /// Child names (not paths), in no particular order.
        pub children: Vec<String>,
    }
}

jute_record! {
    /// Request body of `getChildren2` (12); same layout as [`GetChildrenRequest`].
    pub struct GetChildren2Request {
        /// Znode path.
        pub path: String,
        /// Leave a child watch.
        pub watch: bool,
    }
}

jute_record! {
    /// Response body of `getChildren2` (12).
    pub struct GetChildren2Response {
        /// Child names (not paths), in no particular order.
        pub children: Vec<String>,
        /// The parent's stat.
        pub stat: Stat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{hex, roundtrip, sample_stat};

    #[test]
    fn children_roundtrip() {
        let req = GetChildrenRequest {
            path: "/a".into(),
            watch: true,
        };
        assert_eq!(&roundtrip(&req)[..], &hex("00000002 2f61 01")[..]);
        let rsp = GetChildrenResponse {
            children: vec!["x".into(), "yz".into()],
        };
        assert_eq!(
            &roundtrip(&rsp)[..],
            &hex("00000002 00000001 78 00000002 797a")[..]
        );
        roundtrip(&GetChildrenResponse { children: vec![] });
        roundtrip(&GetChildren2Request {
            path: "/".into(),
            watch: false,
        });
        roundtrip(&GetChildren2Response {
            children: vec!["c".into()],
            stat: sample_stat(),
        });
    }
}
