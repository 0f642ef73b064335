//! Golden vectors: frames that the official Java client (3.8.0) and a real Apache ZooKeeper
//! 3.8 server exchanged, recorded by `tests/golden/capture/capture.sh`. Every frame must
//! decode with zk-proto and re-encode to the identical bytes, and the byte stream of each
//! direction must split into the same frames through the sans-io framing and the tokio codec,
//! whatever the read sizes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;
use zk_proto::frame::{self, DEFAULT_MAX_FRAME_LEN, FrameCodec};
use zk_proto::records::{ConnectRequest, ConnectResponse, xid};
use zk_proto::{Decode, Encode, OpCode, Response, decode_reply_frame, decode_request_frame};

const JAVA_SESSION: &str = include_str!("golden/java-3.8-session.txt");
const RAW_NO_READONLY: &str = include_str!("golden/python-raw-no-readonly.txt");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Client,
    Server,
}

/// One TCP connection of a vector file: frames in observed order, each with its length prefix.
#[derive(Debug, Default)]
struct Conn {
    frames: Vec<(Dir, Bytes)>,
}

fn parse_vectors(text: &str) -> Vec<Conn> {
    let mut conns: Vec<Conn> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("conn ") {
            conns.push(Conn::default());
            continue;
        }
        let (tag, hex_frame) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("line {}: no tag", n + 1));
        let dir = match tag {
            "C" => Dir::Client,
            "S" => Dir::Server,
            other => panic!("line {}: unknown tag {other:?}", n + 1),
        };
        let bytes = hex::decode(hex_frame).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        conns
            .last_mut()
            .unwrap_or_else(|| panic!("line {}: frame before any `conn` line", n + 1))
            .frames
            .push((dir, Bytes::from(bytes)));
    }
    conns
}

/// What one replayed file contained, for the coverage assertions.
#[derive(Debug, Default)]
struct Seen {
    frames: usize,
    request_ops: BTreeMap<i32, usize>,
    reply_errors: BTreeSet<i32>,
    notifications: usize,
    multi_errors: Vec<Option<OpCode>>,
    connect_read_only_flags: Vec<Option<bool>>,
}

/// Decodes and re-encodes every frame of every connection; panics on the first mismatch.
fn replay(conns: &[Conn]) -> Seen {
    let mut seen = Seen::default();
    for (c, conn) in conns.iter().enumerate() {
        let mut pending: HashMap<i32, OpCode> = HashMap::new();
        let mut handshake_sent = false;
        let mut handshake_answered = false;
        for (i, (dir, framed)) in conn.frames.iter().enumerate() {
            let at = format!("conn {} frame {} ({dir:?})", c + 1, i + 1);
            seen.frames += 1;
            // The frame splits off whole through the sans-io framing.
            let mut buf = BytesMut::from(&framed[..]);
            let payload = frame::parse(&mut buf, DEFAULT_MAX_FRAME_LEN)
                .unwrap_or_else(|e| panic!("{at}: framing: {e}"))
                .unwrap_or_else(|| panic!("{at}: incomplete frame"));
            assert!(buf.is_empty(), "{at}: bytes left after the frame");

            let reencoded: Bytes = match dir {
                Dir::Client if !handshake_sent => {
                    handshake_sent = true;
                    let req = ConnectRequest::decode_exact(payload.clone())
                        .unwrap_or_else(|e| panic!("{at}: ConnectRequest: {e}"));
                    seen.connect_read_only_flags.push(req.read_only);
                    req.to_bytes()
                }
                Dir::Server if !handshake_answered => {
                    handshake_answered = true;
                    ConnectResponse::decode_exact(payload.clone())
                        .unwrap_or_else(|e| panic!("{at}: ConnectResponse: {e}"))
                        .to_bytes()
                }
                Dir::Client => {
                    let (header, request) = decode_request_frame(payload.clone())
                        .unwrap_or_else(|e| panic!("{at}: request: {e}"));
                    assert_eq!(header.op, request.op_code().as_i32(), "{at}: opcode");
                    *seen.request_ops.entry(header.op).or_default() += 1;
                    if header.xid != xid::PING && header.xid != xid::AUTH {
                        pending.insert(header.xid, request.op_code());
                    }
                    (&header, &request).to_bytes()
                }
                Dir::Server => {
                    let answered = pending.get(&frame_xid(&payload)).copied();
                    let (header, response) = decode_reply_frame(payload.clone(), |_| answered)
                        .unwrap_or_else(|e| panic!("{at}: reply: {e}"));
                    if header.xid == xid::NOTIFICATION {
                        seen.notifications += 1;
                    } else {
                        pending.remove(&header.xid);
                        seen.reply_errors.insert(header.err);
                    }
                    if let Response::Multi(multi) = &response {
                        if multi.first_error().is_some() {
                            seen.multi_errors.push(answered);
                        }
                    }
                    (&header, &response).to_bytes()
                }
            };
            assert_eq!(
                hex::encode(&reencoded),
                hex::encode(&payload),
                "{at}: re-encoding differs"
            );
        }
        assert!(
            pending.is_empty(),
            "conn {}: requests without a reply: {pending:?}",
            c + 1
        );
    }
    seen
}

/// The xid of a server frame (the first field of its `ReplyHeader`).
fn frame_xid(payload: &[u8]) -> i32 {
    i32::from_be_bytes(payload[..4].try_into().expect("a reply header"))
}

/// Feeds one direction's byte stream to the tokio codec in chunks of `chunk` bytes and checks
/// it yields exactly the recorded frames.
fn reframe(conns: &[Conn], chunk: usize) {
    for dir in [Dir::Client, Dir::Server] {
        for conn in conns {
            let expected: Vec<Bytes> = conn
                .frames
                .iter()
                .filter(|(d, _)| *d == dir)
                .map(|(_, f)| f.slice(4..))
                .collect();
            let stream: Vec<u8> = conn
                .frames
                .iter()
                .filter(|(d, _)| *d == dir)
                .flat_map(|(_, f)| f.iter().copied())
                .collect();
            let mut codec = FrameCodec::new();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(frame) = codec.decode(&mut buf).expect("decode") {
                    got.push(frame);
                }
            }
            assert!(codec.decode_eof(&mut buf).expect("eof").is_none());
            assert_eq!(got, expected, "chunk size {chunk}");
        }
    }
}

#[test]
fn java_client_session_round_trips_byte_for_byte() {
    let conns = parse_vectors(JAVA_SESSION);
    assert!(conns.len() >= 3, "expected the reconnects in the capture");
    let seen = replay(&conns);
    assert!(seen.frames > 250, "only {} frames", seen.frames);

    // Coverage: every opcode a 3.8 client sends appears in the capture.
    let expected = [
        OpCode::Create,
        OpCode::Delete,
        OpCode::Exists,
        OpCode::GetData,
        OpCode::SetData,
        OpCode::GetAcl,
        OpCode::SetAcl,
        OpCode::GetChildren,
        OpCode::Sync,
        OpCode::Ping,
        OpCode::GetChildren2,
        OpCode::Multi,
        OpCode::Create2,
        OpCode::Reconfig,
        OpCode::CheckWatches,
        OpCode::RemoveWatches,
        OpCode::CreateContainer,
        OpCode::CreateTtl,
        OpCode::MultiRead,
        OpCode::Auth,
        OpCode::SetWatches,
        OpCode::Sasl,
        OpCode::GetEphemerals,
        OpCode::GetAllChildrenNumber,
        OpCode::SetWatches2,
        OpCode::AddWatch,
        OpCode::WhoAmI,
        OpCode::CloseSession,
    ];
    let missing: Vec<_> = expected
        .iter()
        .filter(|op| !seen.request_ops.contains_key(&op.as_i32()))
        .collect();
    assert!(
        missing.is_empty(),
        "opcodes missing from the capture: {missing:?}"
    );
    assert!(seen.notifications >= 4, "watch notifications");
    assert_eq!(
        seen.multi_errors,
        vec![Some(OpCode::Multi), Some(OpCode::MultiRead)],
        "a multi with a failing op, and a multiRead with missing nodes"
    );
    for code in [-101, -102, -103, -110, -111, -121, -123] {
        assert!(
            seen.reply_errors.contains(&code),
            "no reply with err {code}"
        );
    }
    assert!(
        seen.connect_read_only_flags
            .iter()
            .all(|f| *f == Some(false)),
        "the Java client sends the readOnly byte"
    );
}

#[test]
fn handshake_without_read_only_byte_round_trips() {
    let conns = parse_vectors(RAW_NO_READONLY);
    let seen = replay(&conns);
    assert_eq!(seen.connect_read_only_flags, vec![None]);
    // The server answered without the trailing byte too.
    let (_, response) = conns[0]
        .frames
        .iter()
        .find(|(d, _)| *d == Dir::Server)
        .expect("a server frame");
    assert_eq!(response.len(), 4 + 36);
}

#[test]
fn recorded_streams_reframe_under_any_read_size() {
    let conns = parse_vectors(JAVA_SESSION);
    for chunk in [1, 3, 7, 64, 1500, 1 << 20] {
        reframe(&conns, chunk);
    }
}
