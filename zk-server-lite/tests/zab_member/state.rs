//! The test members' state (the list of applied txns) as snapshot bytes: `zxid:long,
//! len:int, bytes` per txn. Shared by the network tests and the simulator.

#![allow(dead_code, unreachable_pub)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use zk_server_lite::zab::Proposal;

pub fn encode(state: &[Proposal]) -> Bytes {
    let mut b = BytesMut::new();
    for p in state {
        b.put_i64(p.zxid);
        b.put_u32(p.data.len() as u32);
        b.put_slice(&p.data);
    }
    b.freeze()
}

pub fn decode(mut b: Bytes) -> Vec<Proposal> {
    let mut out = Vec::new();
    while b.remaining() >= 12 {
        let zxid = b.get_i64();
        let len = b.get_u32() as usize;
        let data = b.split_to(len.min(b.remaining()));
        out.push(Proposal { zxid, data });
    }
    out
}
