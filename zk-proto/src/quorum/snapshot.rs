//! The snapshot a leader streams on the quorum port right after a SNAP packet (Apache's
//! `ZKDatabase.serializeSnapshot` followed by the signature string), and an incremental
//! [`SnapshotDecoder`] for it.
//!
//! Layout (jute, no length prefix for the whole):
//!
//! | part | encoding |
//! |---|---|
//! | sessions | `count:int`, then `count` × (`sessionId:long`, `timeout:int`) |
//! | ACL cache | `count:int`, then `count` × (`ref:long`, `vector<ACL>`) — nodes refer to their ACL by `ref` |
//! | nodes | pre-order from the root (path `""`): `path:ustring`, `data:buffer`, `acl:long` (a ref, -1 = open), `StatPersisted` |
//! | end of nodes | the path `"/"` (which is never a node's own entry: the root's path is `""`) |
//! | signature | the ustring [`SNAP_SIGNATURE`] (`"BenWasHere"`) |
//!
//! The transactions after the snapshot's zxid (the SNAP packet's zxid) arrive afterwards as
//! ordinary PROPOSAL/COMMIT packets. Snapshot files on disk (`snapshot.<zxid>`) use the same
//! body between a file header and a checksum; this module only handles the wire form.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::codec::{Decode, DecodeError, Encode};
use crate::records::{Acl, StatPersisted};

use super::QuorumError;
use super::learner::SessionTouch;
use super::packet::SNAP_SIGNATURE;

/// One znode of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNode {
    /// The full path; `""` for the root.
    pub path: String,
    /// The data (`None` = null).
    pub data: Option<Bytes>,
    /// Reference into [`Snapshot::acls`]; -1 = `OPEN_ACL_UNSAFE` without a cache entry.
    pub acl: i64,
    /// The persisted stat.
    pub stat: StatPersisted,
}

/// A decoded snapshot stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Live sessions with their timeouts (ms), in stream order.
    pub sessions: Vec<SessionTouch>,
    /// The ACL cache: reference → ACL list, in stream order.
    pub acls: Vec<(i64, Vec<Acl>)>,
    /// The nodes, pre-order from the root.
    pub nodes: Vec<SnapshotNode>,
}

impl Snapshot {
    /// Appends the stream: sessions, ACL cache, nodes, the `"/"` end marker and the
    /// signature.
    pub fn encode_stream<B: BufMut>(&self, buf: &mut B) {
        len_i32(self.sessions.len()).encode(buf);
        for s in &self.sessions {
            buf.put_i64(s.session_id);
            buf.put_i32(s.timeout);
        }
        len_i32(self.acls.len()).encode(buf);
        for (r, list) in &self.acls {
            r.encode(buf);
            list.encode(buf);
        }
        for n in &self.nodes {
            n.path.encode(buf);
            n.data.encode(buf);
            n.acl.encode(buf);
            n.stat.encode(buf);
        }
        String::from("/").encode(buf);
        String::from(SNAP_SIGNATURE).encode(buf);
    }

    /// The stream as bytes.
    pub fn to_stream(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.encode_stream(&mut buf);
        buf.freeze()
    }

    /// The node at `path` (`""` = root), if present.
    pub fn node(&self, path: &str) -> Option<&SnapshotNode> {
        self.nodes.iter().find(|n| n.path == path)
    }
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Where the decoder is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Part {
    #[default]
    SessionCount,
    Sessions(usize),
    AclCount,
    Acls(usize),
    Nodes,
    Signature,
    Done,
}

/// Decodes a snapshot stream as its bytes arrive: each call consumes the complete items at
/// the front of the buffer (a session, an ACL entry, a node) and keeps them, so a large
/// snapshot is read in one pass; [`decode`](Self::decode) returns the snapshot once the
/// signature has been read. Bytes after the signature are left in the buffer (the next
/// quorum packets).
#[derive(Debug, Clone, Default)]
pub struct SnapshotDecoder {
    part: Part,
    snapshot: Snapshot,
}

/// Decodes one item from the front of `buf`; `Ok(None)` (nothing consumed) if incomplete.
fn item<T>(
    buf: &mut BytesMut,
    read: impl FnOnce(&mut &[u8]) -> Result<T, DecodeError>,
) -> Result<Option<T>, QuorumError> {
    let mut slice = &buf[..];
    match read(&mut slice) {
        Ok(value) => {
            let used = buf.len() - slice.len();
            buf.advance(used);
            Ok(Some(value))
        }
        Err(e) if e.is_incomplete() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn count(n: i32, what: &'static str) -> Result<usize, QuorumError> {
    usize::try_from(n).map_err(|_| QuorumError::data("SNAP", format!("negative {what} count {n}")))
}

impl SnapshotDecoder {
    /// A decoder at the start of a snapshot stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes what it can from `buf`; `Ok(Some(snapshot))` once the signature was read
    /// (the decoder is then spent), `Ok(None)` while more bytes are needed. Errors for
    /// negative counts, oversized fields, a null ACL list or a wrong signature.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Snapshot>, QuorumError> {
        loop {
            match self.part {
                Part::SessionCount => {
                    let Some(n) = item(buf, |b| i32::decode(b))? else {
                        return Ok(None);
                    };
                    self.part = Part::Sessions(count(n, "session")?);
                }
                Part::Sessions(0) => self.part = Part::AclCount,
                Part::Sessions(left) => {
                    let Some(s) = item(buf, |b| {
                        Ok(SessionTouch {
                            session_id: i64::decode(b)?,
                            timeout: i32::decode(b)?,
                        })
                    })?
                    else {
                        return Ok(None);
                    };
                    self.snapshot.sessions.push(s);
                    self.part = Part::Sessions(left - 1);
                }
                Part::AclCount => {
                    let Some(n) = item(buf, |b| i32::decode(b))? else {
                        return Ok(None);
                    };
                    self.part = Part::Acls(count(n, "ACL cache")?);
                }
                Part::Acls(0) => self.part = Part::Nodes,
                Part::Acls(left) => {
                    let Some((r, list)) = item(buf, |b| {
                        Ok((i64::decode(b)?, Option::<Vec<Acl>>::decode(b)?))
                    })?
                    else {
                        return Ok(None);
                    };
                    let list = list.ok_or_else(|| QuorumError::data("SNAP", "null ACL list"))?;
                    self.snapshot.acls.push((r, list));
                    self.part = Part::Acls(left - 1);
                }
                Part::Nodes => {
                    let Some(node) = item(buf, |b| {
                        let path = String::decode(b)?;
                        if path == "/" {
                            return Ok(None);
                        }
                        Ok(Some(SnapshotNode {
                            path,
                            data: Decode::decode(b)?,
                            acl: Decode::decode(b)?,
                            stat: Decode::decode(b)?,
                        }))
                    })?
                    else {
                        return Ok(None);
                    };
                    match node {
                        Some(node) => self.snapshot.nodes.push(node),
                        None => self.part = Part::Signature,
                    }
                }
                Part::Signature => {
                    let Some(sig) = item(buf, |b| String::decode(b))? else {
                        return Ok(None);
                    };
                    if sig != SNAP_SIGNATURE {
                        return Err(QuorumError::data(
                            "SNAP",
                            format!("signature {sig:?}, expected {SNAP_SIGNATURE:?}"),
                        ));
                    }
                    self.part = Part::Done;
                    return Ok(Some(std::mem::take(&mut self.snapshot)));
                }
                Part::Done => {
                    return Err(QuorumError::data("SNAP", "decoder already finished"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::OPEN_ACL_UNSAFE;
    use crate::records::testing::sample_stat;

    fn sample() -> Snapshot {
        let s = sample_stat();
        let stat = StatPersisted {
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
        Snapshot {
            sessions: vec![SessionTouch {
                session_id: 7,
                timeout: 10_000,
            }],
            acls: vec![(1, OPEN_ACL_UNSAFE.clone())],
            nodes: vec![
                SnapshotNode {
                    path: String::new(),
                    data: Some(Bytes::new()),
                    acl: -1,
                    stat: StatPersisted::default(),
                },
                SnapshotNode {
                    path: "/a".into(),
                    data: None,
                    acl: 1,
                    stat,
                },
            ],
        }
    }

    #[test]
    fn stream_roundtrips_in_any_pieces() {
        let snap = sample();
        let mut stream = snap.to_stream().to_vec();
        stream.extend_from_slice(b"next");
        for chunk in [1, 3, 16, stream.len()] {
            let mut d = SnapshotDecoder::new();
            let mut buf = BytesMut::new();
            let mut got = None;
            for piece in stream.chunks(chunk) {
                buf.extend_from_slice(piece);
                if got.is_none() {
                    got = d.decode(&mut buf).unwrap();
                }
            }
            assert_eq!(got.as_ref(), Some(&snap), "chunk {chunk}");
            assert_eq!(&buf[..], b"next");
        }
        assert_eq!(snap.node("/a").map(|n| n.acl), Some(1));
    }

    #[test]
    fn invalid_streams() {
        let mut d = SnapshotDecoder::new();
        let mut buf = BytesMut::from(&(-2i32).to_bytes()[..]);
        assert!(matches!(d.decode(&mut buf), Err(QuorumError::Data { .. })));

        let mut bad_sig = Snapshot::default().to_stream().to_vec();
        let n = bad_sig.len();
        bad_sig[n - 1] = b'X';
        let mut d = SnapshotDecoder::new();
        let mut buf = BytesMut::from(&bad_sig[..]);
        assert!(matches!(d.decode(&mut buf), Err(QuorumError::Data { .. })));

        // A null ACL list in the cache.
        let mut null_acl = BytesMut::new();
        0i32.encode(&mut null_acl);
        1i32.encode(&mut null_acl);
        5i64.encode(&mut null_acl);
        (-1i32).encode(&mut null_acl);
        let mut d = SnapshotDecoder::new();
        assert!(d.decode(&mut null_acl).is_err());
    }
}
