//! Every record decoder on its own (the first byte picks the record), plus path validation
//! and chroot handling on arbitrary strings. Whatever decodes must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_proto::records::*;
use zk_proto::{Chroot, Decode, Encode, path};

fn check<T: Decode + Encode + PartialEq + std::fmt::Debug>(mut data: &[u8]) {
    if let Ok(value) = T::decode(&mut data) {
        let bytes = value.to_bytes();
        assert_eq!(bytes.len(), value.encoded_len());
        let again = T::decode_exact(bytes).expect("re-encoded record decodes");
        assert_eq!(again, value);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    match pick % 44 {
        0 => check::<ConnectRequest>(rest),
        1 => check::<ConnectResponse>(rest),
        2 => check::<RequestHeader>(rest),
        3 => check::<ReplyHeader>(rest),
        4 => check::<Stat>(rest),
        5 => check::<StatPersisted>(rest),
        6 => check::<Id>(rest),
        7 => check::<Acl>(rest),
        8 => check::<GetAclRequest>(rest),
        9 => check::<GetAclResponse>(rest),
        10 => check::<SetAclRequest>(rest),
        11 => check::<SetAclResponse>(rest),
        12 => check::<AuthPacket>(rest),
        13 => check::<GetSaslRequest>(rest),
        14 => check::<SetSaslResponse>(rest),
        15 => check::<WhoAmIResponse>(rest),
        16 => check::<GetChildrenRequest>(rest),
        17 => check::<GetChildrenResponse>(rest),
        18 => check::<GetChildren2Request>(rest),
        19 => check::<GetChildren2Response>(rest),
        20 => check::<CreateRequest>(rest),
        21 => check::<CreateTtlRequest>(rest),
        22 => check::<CreateResponse>(rest),
        23 => check::<Create2Response>(rest),
        24 => check::<DeleteRequest>(rest),
        25 => check::<ExistsRequest>(rest),
        26 => check::<ExistsResponse>(rest),
        27 => check::<GetDataRequest>(rest),
        28 => check::<GetDataResponse>(rest),
        29 => check::<SetDataRequest>(rest),
        30 => check::<SetDataResponse>(rest),
        31 => check::<CheckVersionRequest>(rest),
        32 => check::<SyncRequest>(rest),
        33 => check::<GetEphemeralsResponse>(rest),
        34 => check::<ReconfigRequest>(rest),
        35 => check::<ErrorResponse>(rest),
        36 => check::<MultiHeader>(rest),
        37 => check::<MultiRequest>(rest),
        38 => check::<MultiResponse>(rest),
        39 => check::<WatcherEvent>(rest),
        40 => check::<SetWatches>(rest),
        41 => check::<SetWatches2>(rest),
        42 => check::<AddWatchRequest>(rest),
        _ => {
            let text = String::from_utf8_lossy(rest);
            let _ = path::validate_path(&text);
            let _ = path::validate_sequential(&text);
            if let Ok(chroot) = Chroot::parse(&text) {
                let full = chroot.prefix("/a/b");
                assert_eq!(chroot.strip(&full), Some("/a/b"));
                let _ = chroot.strip(&text);
            }
        }
    }
});
