//! The length-prefix framing: the sans-io check/parse pair and the tokio codec, fed an
//! arbitrary byte stream in arbitrary read sizes, with a small maximum so oversize frames are
//! exercised. Must never panic and never buffer more than what was fed.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use zk_proto::frame::{self, FrameCodec};

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else { return };
    let chunk = usize::from(split % 64) + 1;
    let max = 1 << (split % 20);

    let mut codec = FrameCodec::with_max_frame_len(max);
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    'feed: for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => assert!(frame.len() <= max),
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
        assert!(buf.capacity() <= fed.max(64 * 1024) * 2 + 64 * 1024);
    }

    let mut whole = BytesMut::from(stream);
    while let Ok(Some(len)) = frame::check(&whole, max) {
        let before = whole.len();
        match frame::parse(&mut whole, max) {
            Ok(Some(payload)) => {
                assert_eq!(payload.len() + 4, len.min(before));
                assert!(payload.len() <= max);
            }
            _ => break,
        }
    }
});
