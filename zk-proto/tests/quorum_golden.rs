//! Golden vectors for the server-to-server formats: every byte a real Apache ZooKeeper 3.8
//! ensemble (3 voters + 1 observer) sent on its quorum and election connections while a
//! Java client wrote through followers and the leader was killed and restarted, recorded by
//! `tests/golden/quorum/capture/capture.py` (see `tests/golden/quorum/README.md`).
//!
//! Each file is one direction of one connection. Every quorum packet must come out of the
//! streaming decoder exactly where the recording split it (also when the stream arrives in
//! small pieces), re-encode byte for byte, and its data must decode with the typed helper for
//! its type and re-encode identically; the same for initial messages, election frames,
//! notifications and the transactions inside PROPOSAL / INFORM. Then specific packets are
//! checked against what the client did.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use zk_proto::codec::{Decode, Encode};
use zk_proto::quorum::election::{self, InitialMessage, Notification, ServerState};
use zk_proto::quorum::learner::{
    self, AckEpoch, LeaderInfo, LearnerRequest, RevalidateReply, RevalidateRequest, SessionTouches,
};
use zk_proto::quorum::packet::{PROTOCOL_VERSION, zxid_counter};
use zk_proto::quorum::snapshot::{Snapshot, SnapshotDecoder};
use zk_proto::quorum::txn::{TxnEntry, TxnRecord};
use zk_proto::quorum::{LearnerInfo, PacketType, QuorumPacket, QuorumPacketDecoder};
use zk_proto::records::Id;
use zk_proto::{OpCode, Request};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/quorum")
}

/// One fixture file: one direction of one connection.
struct Fixture {
    name: String,
    /// Sender and receiver sids (from the file name `<kind>-<n>-s<from>-to-s<to>.txt`).
    from: i64,
    to: i64,
    items: Vec<(char, Bytes)>,
}

fn load(prefix: &str) -> Vec<Fixture> {
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .expect("golden dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .filter(|n| n.starts_with(prefix) && n.ends_with(".txt"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(golden_dir().join(&name)).expect("read fixture");
            let parts: Vec<&str> = name.trim_end_matches(".txt").split('-').collect();
            let sid = |s: &str| s.trim_start_matches('s').parse::<i64>().expect("sid");
            let (from, to) = (sid(parts[2]), sid(parts[4]));
            let items = text
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| {
                    let (tag, hex_bytes) = l.split_once(' ').expect("tag");
                    let bytes = hex::decode(hex_bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                    (tag.chars().next().expect("tag"), Bytes::from(bytes))
                })
                .collect();
            Fixture {
                name,
                from,
                to,
                items,
            }
        })
        .collect()
}

/// Everything decoded from the quorum files, for the specific checks.
#[derive(Default)]
struct Quorum {
    /// (file, sender sid, packet) in file order.
    packets: Vec<(String, i64, QuorumPacket)>,
    types: BTreeMap<&'static str, usize>,
    txns: Vec<TxnEntry>,
    snapshots: Vec<Snapshot>,
}

/// Checks a packet's data with the helper for its type; returns the txn of PROPOSAL/INFORM.
fn check_data(at: &str, p: &QuorumPacket, from_learner: bool) -> Option<TxnEntry> {
    let ty = p.packet_type().unwrap_or_else(|e| panic!("{at}: {e}"));
    let data = p.data();
    let same = |bytes: Bytes| {
        assert_eq!(
            Some(&bytes[..]),
            data,
            "{at}: {} data re-encodes differently",
            ty.name()
        );
    };
    match ty {
        PacketType::FollowerInfo | PacketType::ObserverInfo => {
            let info = LearnerInfo::decode_exact(data.expect("LearnerInfo")).expect("LearnerInfo");
            same(info.to_bytes());
            assert_eq!(info.protocol_version, PROTOCOL_VERSION, "{at}");
            assert_eq!(zxid_counter(p.zxid), 0, "{at}: acceptedEpoch<<32");
        }
        PacketType::LeaderInfo => {
            let li = LeaderInfo::from_data(data).expect("LEADERINFO");
            same(li.to_data());
            assert_eq!(li.protocol_version, PROTOCOL_VERSION, "{at}");
            assert_eq!(zxid_counter(p.zxid), 0, "{at}: newEpoch<<32");
        }
        PacketType::AckEpoch => same(AckEpoch::from_data(data).expect("ACKEPOCH").to_data()),
        PacketType::NewLeader => {
            let text = learner::new_leader_config(data).expect("config");
            assert!(
                text.contains("server.1=") && text.contains("version="),
                "{at}: {text}"
            );
            assert_eq!(zxid_counter(p.zxid), 0, "{at}");
        }
        PacketType::Proposal | PacketType::Inform => {
            let entry = p.txn().unwrap_or_else(|e| panic!("{at}: txn: {e}"));
            same(entry.to_bytes());
            assert_eq!(entry.header.zxid, p.zxid, "{at}: packet zxid = txn zxid");
            if let TxnRecord::Multi(m) = &entry.record {
                for t in &m.txns {
                    let r = t.record().unwrap_or_else(|e| panic!("{at}: sub-txn: {e}"));
                    assert_eq!(r.to_bytes(), t.data, "{at}: sub-txn re-encodes differently");
                }
            }
            return Some(entry);
        }
        PacketType::Request => {
            let r = LearnerRequest::from_data(data).expect("REQUEST");
            same(r.to_data());
            assert_eq!(p.zxid, -1, "{at}");
            let op = r.op_code().unwrap_or_else(|e| panic!("{at}: {e}"));
            match op {
                // Server-internal bodies: the negotiated timeout; nothing.
                OpCode::CreateSession => assert_eq!(r.body.len(), 4, "{at}"),
                OpCode::CloseSession => assert!(r.body.is_empty(), "{at}"),
                _ => {
                    let request = Request::decode_body(op, &mut &r.body[..])
                        .unwrap_or_else(|e| panic!("{at}: {op:?} body: {e}"));
                    assert_eq!(request.to_bytes(), r.body, "{at}: {op:?} body");
                }
            }
        }
        PacketType::Ping if from_learner => {
            same(SessionTouches::from_data(data).expect("PING").to_data());
        }
        PacketType::Revalidate if from_learner => {
            same(
                RevalidateRequest::from_data(data)
                    .expect("REVALIDATE")
                    .to_data(),
            );
        }
        PacketType::Revalidate => {
            same(
                RevalidateReply::from_data(data)
                    .expect("REVALIDATE")
                    .to_data(),
            );
        }
        _ => assert_eq!(data, None, "{at}: {} has no data", ty.name()),
    }
    None
}

fn replay_quorum() -> Quorum {
    let files = load("quorum-");
    assert!(
        files.len() >= 8,
        "only {} quorum fixture files",
        files.len()
    );
    let decoder = QuorumPacketDecoder::default();
    let mut q = Quorum::default();
    for f in &files {
        let from_learner = f.items.first().is_some_and(|(_, b)| {
            let ty = i32::from_be_bytes(b[..4].try_into().expect("type"));
            ty == PacketType::FollowerInfo.as_i32() || ty == PacketType::ObserverInfo.as_i32()
        });
        // The whole direction as one stream, decoded in one go and in small pieces.
        let stream: Vec<u8> = f.items.iter().flat_map(|(_, b)| b.to_vec()).collect();
        let mut expected: Vec<(char, Bytes)> = Vec::new();
        let mut buf = BytesMut::from(&stream[..]);
        for (i, (tag, bytes)) in f.items.iter().enumerate() {
            let at = format!("{} item {}", f.name, i + 1);
            match tag {
                'P' => {
                    let p = decoder
                        .decode(&mut buf)
                        .unwrap_or_else(|e| panic!("{at}: {e}"))
                        .unwrap_or_else(|| panic!("{at}: incomplete"));
                    assert_eq!(hex::encode(p.to_bytes()), hex::encode(bytes), "{at}");
                    let name = p.packet_type().expect("known type").name();
                    *q.types.entry(name).or_default() += 1;
                    if let Some(txn) = check_data(&at, &p, from_learner) {
                        q.txns.push(txn);
                    }
                    q.packets.push((f.name.clone(), f.from, p));
                }
                'S' => {
                    // The snapshot after SNAP, up to and including "BenWasHere".
                    let last = q.packets.last().map(|(_, _, p)| p.ty);
                    assert_eq!(last, Some(PacketType::Snap.as_i32()), "{at}");
                    let before = buf.len();
                    let snap = SnapshotDecoder::new()
                        .decode(&mut buf)
                        .unwrap_or_else(|e| panic!("{at}: {e}"))
                        .unwrap_or_else(|| panic!("{at}: incomplete snapshot"));
                    assert_eq!(before - buf.len(), bytes.len(), "{at}: snapshot length");
                    assert_eq!(hex::encode(snap.to_stream()), hex::encode(bytes), "{at}");
                    q.snapshots.push(snap);
                }
                'X' => {
                    // Cut by the connection close: the decoder must want more, not fail.
                    assert_eq!(decoder.decode(&mut buf), Ok(None), "{at}");
                    let _ = buf.split_to(bytes.len());
                }
                other => panic!("{at}: unexpected tag {other}"),
            }
            expected.push((*tag, bytes.clone()));
        }
        assert!(buf.is_empty(), "{}: bytes left", f.name);
        for chunk in [1, 7, 100] {
            rechunk(&f.name, &stream, &expected, chunk, &decoder);
        }
    }
    q
}

/// Feeds the stream in pieces of `chunk` bytes and checks the packet boundaries again (the
/// snapshot after SNAP is skipped by its recorded length).
fn rechunk(
    name: &str,
    stream: &[u8],
    items: &[(char, Bytes)],
    chunk: usize,
    decoder: &QuorumPacketDecoder,
) {
    let mut buf = BytesMut::new();
    let mut fed = 0;
    for (i, (tag, bytes)) in items.iter().enumerate() {
        loop {
            if *tag == 'P' {
                if let Some(p) = decoder.decode(&mut buf).expect("valid") {
                    assert_eq!(&p.to_bytes(), bytes, "{name} item {} chunk {chunk}", i + 1);
                    break;
                }
            } else if buf.len() >= bytes.len() || fed == stream.len() {
                let n = bytes.len().min(buf.len());
                let _ = buf.split_to(n);
                break;
            }
            assert!(fed < stream.len(), "{name} item {}: stream ended", i + 1);
            let end = (fed + chunk).min(stream.len());
            buf.extend_from_slice(&stream[fed..end]);
            fed = end;
        }
    }
}

#[test]
fn quorum_packets_round_trip_byte_for_byte() {
    let q = replay_quorum();
    let types: BTreeSet<&str> = q.types.keys().copied().collect();
    for want in [
        "REQUEST",
        "PROPOSAL",
        "ACK",
        "COMMIT",
        "PING",
        "REVALIDATE",
        "SYNC",
        "INFORM",
        "NEWLEADER",
        "FOLLOWERINFO",
        "UPTODATE",
        "DIFF",
        "SNAP",
        "TRUNC",
        "OBSERVERINFO",
        "LEADERINFO",
        "ACKEPOCH",
    ] {
        assert!(types.contains(want), "no {want} in the capture: {types:?}");
    }
    assert!(
        !q.snapshots.is_empty(),
        "a SNAP sync (at least the wiped observer)"
    );
}

#[test]
fn quorum_known_packets() {
    let q = replay_quorum();
    let packets = |ty: PacketType| {
        q.packets
            .iter()
            .filter(move |(_, _, p)| p.ty == ty.as_i32())
            .collect::<Vec<_>>()
    };

    // FOLLOWERINFO carries the follower's own sid, protocol 0x10000, config version 0;
    // OBSERVERINFO comes from the observer (s4).
    for (file, from, p) in packets(PacketType::FollowerInfo) {
        let info = LearnerInfo::from_data(p.data());
        assert_eq!(info.server_id, Some(*from), "{file}");
        assert_eq!(info.protocol_version, 0x10000, "{file}");
        assert_eq!(info.config_version, Some(0), "{file}");
    }
    for (file, from, p) in packets(PacketType::ObserverInfo) {
        assert_eq!(
            (*from, LearnerInfo::from_data(p.data()).server_id),
            (4, Some(4)),
            "{file}"
        );
    }
    // LEADERINFO proposes epoch 1 at start and 2 after the leader was killed.
    let epochs: BTreeSet<i64> = packets(PacketType::LeaderInfo)
        .iter()
        .map(|(_, _, p)| p.zxid >> 32)
        .collect();
    assert_eq!(epochs, BTreeSet::from([1, 2]));
    // ACKEPOCH reports the learner's currentEpoch (0 on a fresh start, 1 after).
    let acks: BTreeSet<i32> = packets(PacketType::AckEpoch)
        .iter()
        .map(|(_, _, p)| {
            AckEpoch::from_data(p.data())
                .expect("ACKEPOCH")
                .current_epoch
        })
        .collect();
    assert!(acks.contains(&0) && acks.contains(&1), "{acks:?}");

    // The client's writes, as the leader proposed them.
    let records: Vec<&TxnRecord> = q.txns.iter().map(|t| &t.record).collect();
    let create = |path: &str| {
        records.iter().find_map(|r| match r {
            TxnRecord::Create(c) if c.path == path => Some(c.clone()),
            _ => None,
        })
    };
    let q_node = create("/q").expect("a PROPOSAL creating /q");
    assert_eq!(q_node.data.as_deref(), Some(&b"hello"[..]));
    assert!(!q_node.ephemeral);
    assert_eq!(q_node.acl, *zk_proto::records::OPEN_ACL_UNSAFE);
    assert!(create("/q/eph").expect("ephemeral").ephemeral);
    let seq = create("/q/seq-0000000001").expect("sequential, with its suffix");
    assert_eq!(seq.data, None, "created with null data");
    assert!(
        records
            .iter()
            .any(|r| matches!(r, TxnRecord::CreateContainer(c) if c.path == "/q/c"))
    );
    assert!(records.iter().any(
        |r| matches!(r, TxnRecord::SetData(s) if s.path == "/q" && s.version == 1 && s.data.as_deref() == Some(&b"world"[..]))
    ));
    assert!(records.iter().any(
        |r| matches!(r, TxnRecord::SetAcl(s) if s.path == "/q/c/kid" && s.acl == *zk_proto::records::READ_ACL_UNSAFE)
    ));
    // The failed create is an error txn: NODEEXISTS (-110).
    assert!(
        records
            .iter()
            .any(|r| matches!(r, TxnRecord::Error(e) if e.err == -110))
    );
    // The multi: create, setData, check, delete; the failed multi: only error sub-txns.
    let multis: Vec<Vec<(i32, TxnRecord)>> = records
        .iter()
        .filter_map(|r| match r {
            TxnRecord::Multi(m) => Some(
                m.txns
                    .iter()
                    .map(|t| (t.ty, t.record().expect("sub-txn")))
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert!(
        multis
            .iter()
            .any(|m| m.iter().map(|(t, _)| *t).collect::<Vec<_>>() == [1, 5, 13, 2])
    );
    // A failed multi keeps the real txn of each op before the failure (apply skips them all
    // because one sub-txn is an error), the failing op becomes its error, later ops
    // RUNTIMEINCONSISTENCY: create /q/m2; check -> BADVERSION (-103); delete -> -2.
    let failed = multis
        .iter()
        .find(|m| m.iter().any(|(t, _)| *t == -1))
        .expect("a failed multi");
    assert_eq!(failed.len(), 3);
    assert!(matches!(&failed[0], (1, TxnRecord::Create(c)) if c.path == "/q/m2"));
    assert!(matches!(&failed[1], (-1, TxnRecord::Error(e)) if e.err == -103));
    assert!(matches!(&failed[2], (-1, TxnRecord::Error(e)) if e.err == -2));
    // TTL node; the container emptied in phase 2 is deleted by the leader's reaper
    // (deleteContainer, session 0, record DeleteTxn).
    assert!(
        records
            .iter()
            .any(|r| matches!(r, TxnRecord::CreateTtl(t) if t.path == "/q/ttl" && t.ttl == 60_000))
    );
    assert!(q.txns.iter().any(|t| {
        t.header.op_code() == Ok(OpCode::DeleteContainer)
            && t.header.client_id == 0
            && matches!(&t.record, TxnRecord::Delete(d) if d.path == "/q/c")
    }));
    // Sessions: created with the negotiated timeout, closed with their ephemerals.
    assert!(
        records
            .iter()
            .any(|r| matches!(r, TxnRecord::CreateSession(s) if s.time_out == 10_000))
    );
    assert!(
        records.iter().any(
            |r| matches!(r, TxnRecord::CloseSession(Some(c)) if c.paths2_delete == ["/q/eph2"])
        )
    );
    // Apache 3.8 appends a digest (version 2) to every transaction except error txns.
    for t in &q.txns {
        let is_error = t.header.op_code() == Ok(OpCode::Error);
        assert_eq!(t.digest.is_none(), is_error, "{:x}", t.header.zxid);
        assert!(t.digest.is_none_or(|d| d.version == 2));
    }

    // The proposal the killed leader logged but never got acknowledged: proposed (its packets
    // to the learners were recorded, not delivered), never committed, and truncated away with
    // TRUNC to the zxid before it when the old leader rejoined.
    let stalled = q
        .txns
        .iter()
        .find(|t| matches!(&t.record, TxnRecord::Create(c) if c.path == "/q/trunc"))
        .expect("the stalled proposal");
    let zxid = stalled.header.zxid;
    assert!(
        packets(PacketType::Commit)
            .iter()
            .all(|(_, _, p)| p.zxid != zxid)
    );
    let truncs = packets(PacketType::Trunc);
    assert_eq!(truncs.len(), 1);
    assert_eq!(
        truncs[0].2.zxid,
        zxid - 1,
        "TRUNC to the last committed zxid"
    );

    // The last snapshot (to the wiped observer, after phase 2) holds the client's tree: /q
    // with its latest data, the TTL node (ephemeralOwner = 0xFF << 56 | ttl, Apache's
    // EphemeralType encoding), not the ephemerals of the sessions closed in phase 2, the
    // root ("") and /zookeeper; its nodes refer to ACL cache entries.
    let snap = q.snapshots.last().expect("a snapshot");
    assert_eq!(
        snap.node("/q").and_then(|n| n.data.clone()).as_deref(),
        Some(&b"after"[..])
    );
    let ttl = snap.node("/q/ttl").expect("TTL node");
    assert_eq!(ttl.stat.ephemeral_owner, (0xFF << 56) | 60_000);
    assert!(snap.node("/q/eph").is_none() && snap.node("/q/eph2").is_none());
    assert!(snap.node("").is_some() && snap.node("/zookeeper").is_some());
    assert!(snap.node("/q/trunc").is_none() && snap.node("/q/c").is_none());
    for n in &snap.nodes {
        assert!(
            n.acl == -1 || snap.acls.iter().any(|(r, _)| *r == n.acl),
            "{}",
            n.path
        );
    }
    assert!(!snap.acls.is_empty());

    // REQUEST: the follower forwards the client's create of /q with the client's auth ids.
    let forwarded = packets(PacketType::Request)
        .into_iter()
        .find_map(|(_, _, p)| {
            let r = LearnerRequest::from_data(p.data()).expect("REQUEST");
            match Request::decode_body(r.op_code().ok()?, &mut &r.body[..]) {
                Ok(Request::Create(c)) if c.path == "/q" => Some((r, p.authinfo.clone())),
                _ => None,
            }
        })
        .expect("a forwarded create of /q");
    assert_eq!(forwarded.0.op_code(), Ok(OpCode::Create));
    assert_eq!(forwarded.1, Some(vec![Id::new("ip", "127.0.0.1")]));

    // REVALIDATE: the learner asks, the leader answers valid.
    let revalidate = packets(PacketType::Revalidate);
    assert!(
        revalidate
            .iter()
            .any(|(_, _, p)| { RevalidateReply::from_data(p.data()).is_ok_and(|r| r.valid) })
    );
    // A learner's PING answer lists the sessions it touched.
    assert!(
        packets(PacketType::Ping).iter().any(|(_, _, p)| {
            SessionTouches::from_data(p.data()).is_ok_and(|t| !t.0.is_empty())
        })
    );
}

#[test]
fn election_messages_round_trip_byte_for_byte() {
    let files = load("election-");
    assert!(
        files.len() >= 10,
        "only {} election fixture files",
        files.len()
    );
    let mut initial = 0;
    let mut states: BTreeMap<&'static str, usize> = BTreeMap::new();
    for f in &files {
        let stream: Vec<u8> = f.items.iter().flat_map(|(_, b)| b.to_vec()).collect();
        let mut buf = BytesMut::from(&stream[..]);
        for (i, (tag, bytes)) in f.items.iter().enumerate() {
            let at = format!("{} item {}", f.name, i + 1);
            match tag {
                'I' => {
                    assert_eq!(i, 0, "{at}: initial message first");
                    let m = InitialMessage::parse(&mut buf)
                        .unwrap_or_else(|e| panic!("{at}: {e}"))
                        .expect("complete");
                    assert_eq!(&m.to_bytes(), bytes, "{at}");
                    assert_eq!(m.sid(), f.from, "{at}: the dialler's sid");
                    match &m {
                        InitialMessage::Addressed {
                            protocol_version,
                            address,
                            ..
                        } => {
                            assert_eq!(*protocol_version, election::PROTOCOL_VERSION_V1, "{at}");
                            assert!(address.starts_with("127.0.0.1:"), "{at}: {address}");
                        }
                        InitialMessage::Bare { .. } => panic!("{at}: 3.8 sends the V1 form"),
                    }
                    initial += 1;
                }
                'M' => {
                    let body = election::parse_frame(&mut buf)
                        .unwrap_or_else(|e| panic!("{at}: {e}"))
                        .expect("complete");
                    let n =
                        Notification::from_message(&body).unwrap_or_else(|e| panic!("{at}: {e}"));
                    let mut again = BytesMut::new();
                    election::encode_frame(&mut again, &n.to_message());
                    assert_eq!(hex::encode(&again), hex::encode(bytes), "{at}");
                    assert_eq!(n.version, Some(2), "{at}: format version 2");
                    assert!(n.ignored.is_empty(), "{at}");
                    let config = n.config_text().expect("config");
                    assert!(
                        config.contains("server.4=") && config.contains("version=0"),
                        "{at}"
                    );
                    let state = n.state().unwrap_or_else(|e| panic!("{at}: {e}"));
                    *states.entry(state.name()).or_default() += 1;
                    // Voters propose a voter; the observer's own vote is Long.MIN_VALUE for
                    // leader, zxid and peer epoch until it learns the leader.
                    let observer_vote = f.from == 4 && n.leader == i64::MIN && n.zxid == i64::MIN;
                    assert!((1..=3).contains(&n.leader) || observer_vote, "{at}: {n:?}");
                    assert_ne!(f.to, f.from, "{at}");
                }
                'X' => {
                    assert_eq!(election::parse_frame(&mut buf), Ok(None), "{at}");
                    let _ = buf.split_to(bytes.len());
                }
                other => panic!("{at}: unexpected tag {other}"),
            }
        }
        assert!(buf.is_empty(), "{}: bytes left", f.name);
    }
    assert!(initial >= 6, "initial messages: {initial}");
    for state in [
        ServerState::Looking,
        ServerState::Following,
        ServerState::Leading,
    ] {
        assert!(
            states.contains_key(state.name()),
            "no {state:?} notification: {states:?}"
        );
    }
}
