//! [`Id`], [`Acl`], the predefined ACL lists, and the getACL / setACL records.

use std::sync::LazyLock;

use crate::records::stat::Stat;
use crate::types::Perms;

jute_record! {
    /// An identity: an auth scheme and an id within it (`world:anyone`, `digest:user:hash`,
    /// `ip:10.0.0.0/8`, ...).
    #[derive(Hash, PartialOrd, Ord)]
    pub struct Id {
        /// The scheme, e.g. `world`, `auth`, `digest`, `ip`, `sasl`.
        pub scheme: String,
        /// The id within the scheme.
        pub id: String,
    }
}

impl Id {
    /// Builds an id from its two parts.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// `world:anyone`, which matches every client.
    pub fn anyone() -> Self {
        Id::new("world", "anyone")
    }

    /// `auth:` (empty id), which stands for "every identity the creating connection has".
    pub fn creator() -> Self {
        Id::new("auth", "")
    }
}

jute_record! {
    /// One ACL entry: permissions granted to an identity.
    #[derive(Hash)]
    pub struct Acl {
        /// The permission bits.
        pub perms: Perms,
        /// Who gets them.
        pub id: Id,
    }
}

impl Acl {
    /// Builds an ACL entry.
    pub fn new(perms: Perms, id: Id) -> Self {
        Acl { perms, id }
    }
}

/// `[ALL, world:anyone]`: completely open (Java `Ids.OPEN_ACL_UNSAFE`).
pub static OPEN_ACL_UNSAFE: LazyLock<Vec<Acl>> =
    LazyLock::new(|| vec![Acl::new(Perms::ALL, Id::anyone())]);

/// `[ALL, auth:]`: all permissions for the creator's identities (Java `Ids.CREATOR_ALL_ACL`).
pub static CREATOR_ALL_ACL: LazyLock<Vec<Acl>> =
    LazyLock::new(|| vec![Acl::new(Perms::ALL, Id::creator())]);

/// `[READ, world:anyone]`: world-readable (Java `Ids.READ_ACL_UNSAFE`).
pub static READ_ACL_UNSAFE: LazyLock<Vec<Acl>> =
    LazyLock::new(|| vec![Acl::new(Perms::READ, Id::anyone())]);

jute_record! {
    /// Request body of `getACL` (6).
    pub struct GetAclRequest {
        /// Znode path.
        pub path: String,
    }
}

jute_record! {
    /// Response body of `getACL` (6).
    pub struct GetAclResponse {
        /// The znode's ACL.
        pub acl: Vec<Acl>,
        /// The znode's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// Request body of `setACL` (7).
    pub struct SetAclRequest {
        /// Znode path.
        pub path: String,
        /// The new ACL.
        pub acl: Vec<Acl>,
        /// Expected ACL version (`aversion`), or -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// Response body of `setACL` (7).
    pub struct SetAclResponse {
        /// The znode's stat after the change.
        pub stat: Stat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{hex, roundtrip, sample_stat};

    #[test]
    fn open_acl_bytes() {
        // perms 31, "world", "anyone"
        let expected = hex("00000001 0000001f 00000005 776f726c64 00000006 616e796f6e65");
        assert_eq!(&roundtrip(&*OPEN_ACL_UNSAFE)[..], &expected[..]);
    }

    #[test]
    fn predefined_lists() {
        assert_eq!(CREATOR_ALL_ACL[0].id, Id::new("auth", ""));
        assert_eq!(READ_ACL_UNSAFE[0].perms, Perms::READ);
    }

    #[test]
    fn acl_records_roundtrip() {
        roundtrip(&Id::new("digest", "user:abc="));
        roundtrip(&GetAclRequest { path: "/a".into() });
        roundtrip(&GetAclResponse {
            acl: OPEN_ACL_UNSAFE.clone(),
            stat: sample_stat(),
        });
        roundtrip(&SetAclRequest {
            path: "/a".into(),
            acl: CREATOR_ALL_ACL.clone(),
            version: -1,
        });
        roundtrip(&SetAclResponse {
            stat: sample_stat(),
        });
    }
}
