//! A server→client frame payload (what the client decodes), interpreted as the reply to any
//! opcode the first byte selects. Whatever decodes must re-encode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_proto::{Encode, OpCode, decode_reply_frame};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else { return };
    let op = OpCode::ALL[usize::from(pick) % OpCode::ALL.len()];
    if let Ok((header, response)) = decode_reply_frame(payload, |_| Some(op)) {
        let bytes = (&header, &response).to_bytes();
        let again = decode_reply_frame(bytes, |_| Some(op)).expect("re-encoded reply decodes");
        assert_eq!(again, (header, response));
    }
});
