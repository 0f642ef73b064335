//! Every quorum packet a real Apache ZooKeeper 3.8 ensemble sent (the zk-proto golden
//! captures: zk-proto/tests/golden/quorum) maps to a Zab engine message and back to the
//! same packet, and every election notification to an engine notification and back.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use zk_proto::quorum::election;
use zk_proto::quorum::learner::LearnerInfo;
use zk_proto::quorum::{PacketType, QuorumPacketDecoder};
use zk_server_lite::peer::wire::{self, Sender, WireContext};
use zk_server_lite::zab::Message;

struct Fixture {
    name: String,
    /// The member that dialled (a learner on the quorum port).
    dialler: String,
    /// The member that sent these bytes.
    from: String,
    items: Vec<(char, Bytes)>,
}

fn fixtures(prefix: &str) -> Vec<Fixture> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../zk-proto/tests/golden/quorum");
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("golden dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|n| n.starts_with(prefix) && n.ends_with(".txt"))
        .collect();
    names.sort();
    for name in names {
        let text = std::fs::read_to_string(dir.join(&name)).expect("read");
        // "# Connection 10 on the quorum port: s1 dialled s3 during ..."
        let dialler = text
            .lines()
            .find_map(|l| {
                l.split(" dialled ")
                    .next()
                    .filter(|_| l.contains(" dialled "))
            })
            .and_then(|l| l.rsplit(' ').next())
            .expect("dialler")
            .to_owned();
        // quorum-010-s1-to-s3.txt
        let from = name.split('-').nth(2).expect("from").to_owned();
        let items = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (tag, hex) = l.split_once(' ').expect("tag");
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                    .collect();
                (tag.chars().next().expect("tag"), Bytes::from(bytes))
            })
            .collect();
        out.push(Fixture {
            name,
            dialler,
            from,
            items,
        });
    }
    assert!(!out.is_empty(), "no {prefix} fixtures");
    out
}

#[test]
fn every_captured_quorum_packet_maps_to_an_engine_message_and_back() {
    let decoder = QuorumPacketDecoder::default();
    let mut seen = std::collections::BTreeMap::<&'static str, usize>::new();
    for f in fixtures("quorum-") {
        let sender = if f.from == f.dialler {
            Sender::Learner
        } else {
            Sender::Leader
        };
        let mut ctx = WireContext::default();
        for (i, (tag, bytes)) in f.items.iter().enumerate() {
            if *tag != 'P' {
                continue;
            }
            let at = format!("{} item {i}", f.name);
            let mut buf = BytesMut::from(&bytes[..]);
            let packet = decoder
                .decode(&mut buf)
                .unwrap_or_else(|e| panic!("{at}: {e}"))
                .expect("a whole packet");
            let ty = packet.packet_type().expect("known type");
            let message = wire::decode(&packet, sender, None)
                .unwrap_or_else(|e| panic!("{at}: {} from a {sender:?}: {e}", ty.name()));
            match (&message, ty) {
                (Message::FollowerInfo { .. } | Message::ObserverInfo { .. }, _) => {
                    let info = LearnerInfo::from_data(packet.data());
                    ctx.myid = info.server_id.expect("sid");
                    ctx.config_version = info.config_version.unwrap_or(0);
                    assert_eq!(wire::learner_sid(&packet), Some(ctx.myid));
                }
                (_, PacketType::NewLeader) => {
                    ctx.config = packet.data.clone();
                }
                _ => {}
            }
            let back = wire::encode(&message, sender, &ctx);
            assert_eq!(
                back.packet,
                packet,
                "{at}: {} re-encoded differently",
                ty.name()
            );
            *seen.entry(ty.name()).or_default() += 1;
        }
    }
    for must in [
        "FOLLOWERINFO",
        "OBSERVERINFO",
        "LEADERINFO",
        "ACKEPOCH",
        "DIFF",
        "TRUNC",
        "SNAP",
        "PROPOSAL",
        "COMMIT",
        "INFORM",
        "NEWLEADER",
        "ACK",
        "UPTODATE",
        "PING",
        "REQUEST",
        "REVALIDATE",
        "SYNC",
    ] {
        assert!(
            seen.contains_key(must),
            "no {must} in the captures: {seen:?}"
        );
    }
}

#[test]
fn every_captured_notification_maps_to_an_engine_notification_and_back() {
    let mut count = 0;
    for f in fixtures("election-") {
        for (i, (tag, bytes)) in f.items.iter().enumerate() {
            if *tag != 'M' {
                continue;
            }
            let at = format!("{} item {i}", f.name);
            let mut buf = BytesMut::from(&bytes[..]);
            let message = election::parse_frame(&mut buf)
                .unwrap_or_else(|e| panic!("{at}: {e}"))
                .expect("a whole frame");
            let n = election::Notification::from_message(&message).expect("notification");
            let ours = wire::decode_notification(&n).unwrap_or_else(|e| panic!("{at}: {e}"));
            let config = n.config.clone().unwrap_or_default();
            let back = wire::encode_notification(&ours, config);
            assert_eq!(back.to_message(), message, "{at}: re-encoded differently");
            count += 1;
        }
    }
    assert!(count > 50, "only {count} notifications");
}
