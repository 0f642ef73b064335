//! A client→server frame payload (what the server decodes): header + body by opcode.
//! Whatever decodes must re-encode to something that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_proto::{Encode, decode_request_frame};

fuzz_target!(|data: &[u8]| {
    if let Ok((header, request)) = decode_request_frame(data) {
        let bytes = (&header, &request).to_bytes();
        assert_eq!(bytes.len(), header.encoded_len() + request.encoded_len());
        let again = decode_request_frame(bytes).expect("re-encoded request decodes");
        assert_eq!(again, (header, request));
    }
});
