//! ACLs and authentication: the `world`, `auth`, `digest` and `ip` schemes, the super digest,
//! permission checks and the create/setACL fix-up (Apache's `PrepRequestProcessor.fixupACL`,
//! `ZooKeeperServer.checkACL`, `DigestAuthenticationProvider`, `IPAuthenticationProvider`).
//!
//! A connection's identity is a list of [`Id`]s ([`AuthIds`]): it starts with `ip:<peer>`,
//! and each successful `auth` packet adds more (`digest:user:hash`, plus `super:` when the
//! password matches the configured super digest).

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};
use zk_proto::ErrorCode;
use zk_proto::Perms;
use zk_proto::records::{Acl, Id};

/// The identities a connection has authenticated as.
pub type AuthIds = Vec<Id>;

/// Apache's digest id for `user:password`: `user:BASE64(SHA1("user:password"))`.
///
/// ```
/// use zk_server_lite::acl::digest;
/// assert_eq!(digest("super:admin"), "super:xQJmxLMiHGwaqBvst5y6rkB6HQs=");
/// ```
pub fn digest(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or_default();
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// What an `auth` packet did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The ids to add to the connection.
    Added(Vec<Id>),
    /// Unknown scheme or bad credentials: AUTHFAILED, then close.
    Failed,
}

/// Handles an `auth` packet for `scheme` with payload `auth`.
///
/// `super_digest` is the configured `super:<hash>` id (Apache's
/// `zookeeper.DigestAuthenticationProvider.superDigest`), if any.
pub fn authenticate(
    scheme: &str,
    auth: &[u8],
    peer: Option<IpAddr>,
    super_digest: Option<&str>,
) -> AuthOutcome {
    match scheme {
        "digest" => {
            let Ok(text) = std::str::from_utf8(auth) else {
                return AuthOutcome::Failed;
            };
            let id = digest(text);
            let mut ids = Vec::new();
            if super_digest == Some(id.as_str()) {
                ids.push(Id::new("super", ""));
            }
            ids.push(Id::new("digest", id));
            AuthOutcome::Added(ids)
        }
        "ip" => match peer {
            Some(ip) => AuthOutcome::Added(vec![Id::new("ip", ip.to_string())]),
            None => AuthOutcome::Failed,
        },
        _ => AuthOutcome::Failed,
    }
}

/// Whether `ids` is allowed `perm` on a node with `acl` (Apache's `checkACL`): super users
/// and empty ACL lists allow everything.
pub fn check(acl: &[Acl], perm: Perms, ids: &[Id]) -> bool {
    if acl.is_empty() || ids.iter().any(|id| id.scheme == "super") {
        return true;
    }
    acl.iter().any(|entry| {
        if !entry.perms.contains(perm) {
            return false;
        }
        let want = &entry.id;
        if want.scheme == "world" && want.id == "anyone" {
            return true;
        }
        ids.iter().any(|have| match want.scheme.as_str() {
            "ip" => have.scheme == "ip" && ip_matches(&have.id, &want.id),
            scheme => have.scheme == scheme && have.id == want.id,
        })
    })
}

/// Whether the address `addr` lies in the ACL expression `expr` (`a.b.c.d[/bits]`, IPv6 too).
pub fn ip_matches(addr: &str, expr: &str) -> bool {
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return false;
    };
    let Some((net, bits)) = parse_ip_expr(expr) else {
        return false;
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => prefix_eq(&a.octets(), &n.octets(), bits),
        (IpAddr::V6(a), IpAddr::V6(n)) => prefix_eq(&a.octets(), &n.octets(), bits),
        _ => false,
    }
}

fn parse_ip_expr(expr: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (expr, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u32) -> bool {
    let full = (bits / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// Whether `id` is a valid id for its scheme (Apache's provider `isValid`).
fn is_valid_id(id: &Id) -> bool {
    match id.scheme.as_str() {
        // Java: id.split(":").length == 2 (trailing empty parts dropped).
        "digest" => {
            let parts: Vec<&str> = id.id.split(':').collect();
            let mut n = parts.len();
            while n > 0 && parts[n - 1].is_empty() {
                n -= 1;
            }
            n == 2
        }
        "ip" => parse_ip_expr(&id.id).is_some(),
        _ => false,
    }
}

/// Apache's `fixupACL`: removes duplicates, expands `auth:` entries into the caller's
/// authenticated ids, validates the rest. Empty lists and invalid entries are INVALIDACL.
pub fn fixup(acl: &[Acl], ids: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<Acl> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(entry) {
            unique.push(entry.clone());
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for entry in unique {
        let id = &entry.id;
        if id.scheme == "world" && id.id == "anyone" {
            out.push(entry);
        } else if id.scheme == "auth" {
            // Only ids of providers that "authenticate" count: digest (not ip, not super).
            let mut added = false;
            for have in ids.iter().filter(|i| i.scheme == "digest") {
                out.push(Acl::new(entry.perms, have.clone()));
                added = true;
            }
            if !added {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if is_valid_id(id) {
            out.push(entry);
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

/// The ACL as getACL shows it to a caller without ADMIN: digest ids become `user:x`.
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or_default();
                Acl::new(a.perms, Id::new("digest", format!("{user}:x")))
            } else {
                a.clone()
            }
        })
        .collect()
}

/// The user name whoAmI reports for an id.
pub fn user_name(id: &Id) -> String {
    match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or_default().to_owned(),
        _ => id.id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_vectors() {
        assert_eq!(digest("super:admin"), "super:xQJmxLMiHGwaqBvst5y6rkB6HQs=");
        assert_eq!(digest("user:password"), "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
    }

    #[test]
    fn super_digest_adds_super() {
        let out = authenticate(
            "digest",
            b"super:admin",
            None,
            Some("super:xQJmxLMiHGwaqBvst5y6rkB6HQs="),
        );
        let AuthOutcome::Added(ids) = out else {
            panic!("{out:?}")
        };
        assert_eq!(ids[0], Id::new("super", ""));
        assert!(check(
            &[Acl::new(Perms::READ, Id::new("digest", "x:y"))],
            Perms::ADMIN,
            &ids
        ));
        assert_eq!(
            authenticate("kerberos", b"", None, None),
            AuthOutcome::Failed
        );
    }

    #[test]
    fn checks() {
        let ids = vec![Id::new("ip", "10.1.2.3"), Id::new("digest", digest("u:p"))];
        let world_read = vec![Acl::new(Perms::READ, Id::anyone())];
        assert!(check(&world_read, Perms::READ, &ids));
        assert!(!check(&world_read, Perms::WRITE, &ids));
        assert!(check(&[], Perms::ADMIN, &ids));
        let ip = vec![Acl::new(Perms::ALL, Id::new("ip", "10.1.0.0/16"))];
        assert!(check(&ip, Perms::DELETE, &ids));
        let ip = vec![Acl::new(Perms::ALL, Id::new("ip", "10.2.0.0/16"))];
        assert!(!check(&ip, Perms::DELETE, &ids));
        let dig = vec![Acl::new(Perms::ALL, Id::new("digest", digest("u:p")))];
        assert!(check(&dig, Perms::ADMIN, &ids));
        assert!(ip_matches("::1", "::1"));
        assert!(!ip_matches("::1", "127.0.0.1"));
        assert!(ip_matches("192.168.1.77", "192.168.1.64/26"));
        assert!(!ip_matches("192.168.1.7", "192.168.1.64/26"));
    }

    #[test]
    fn fixups() {
        let ids = vec![Id::new("ip", "127.0.0.1")];
        assert_eq!(fixup(&[], &ids), Err(ErrorCode::InvalidAcl));
        let creator = vec![Acl::new(Perms::ALL, Id::creator())];
        assert_eq!(fixup(&creator, &ids), Err(ErrorCode::InvalidAcl));
        let mut authed = ids.clone();
        authed.push(Id::new("digest", digest("u:p")));
        assert_eq!(
            fixup(&creator, &authed),
            Ok(vec![Acl::new(Perms::ALL, Id::new("digest", digest("u:p")))])
        );
        let dup = vec![
            Acl::new(Perms::ALL, Id::anyone()),
            Acl::new(Perms::ALL, Id::anyone()),
        ];
        assert_eq!(fixup(&dup, &ids).map(|a| a.len()), Ok(1));
        for bad in [
            Id::new("digest", "nocolon"),
            Id::new("digest", "a:b:c"),
            Id::new("ip", "300.1.1.1"),
            Id::new("ip", "1.2.3.4/33"),
            Id::new("world", "someone"),
            Id::new("foo", "bar"),
        ] {
            assert_eq!(
                fixup(&[Acl::new(Perms::ALL, bad.clone())], &ids),
                Err(ErrorCode::InvalidAcl),
                "{bad:?}"
            );
        }
        let masked = mask_digests(&[Acl::new(Perms::ALL, Id::new("digest", digest("u:p")))]);
        assert_eq!(masked[0].id.id, "u:x");
    }
}
