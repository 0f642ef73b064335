//! Shared helpers of the integration tests: a raw zk-proto client over TCP and a
//! four-letter-word helper.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zk_proto::records::*;
use zk_proto::{
    CreateMode, Decode, Encode, ErrorCode, EventType, OpCode, Request, Response,
    decode_reply_frame, frame,
};

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
    xid: i32,
    pending: HashMap<i32, OpCode>,
    pub events: Vec<(EventType, String)>,
}

impl Raw {
    pub async fn open(addr: SocketAddr) -> Raw {
        Raw::from_stream(TcpStream::connect(addr).await.unwrap())
    }

    /// Wraps an already connected socket (e.g. one opened with blocking `std::net`).
    pub fn from_stream(stream: TcpStream) -> Raw {
        Raw {
            stream,
            buf: BytesMut::new(),
            xid: 0,
            pending: HashMap::new(),
            events: Vec::new(),
        }
    }

    pub async fn connect(addr: SocketAddr) -> (Raw, ConnectResponse) {
        let mut raw = Raw::open(addr).await;
        let rsp = raw
            .handshake(ConnectRequest::new_session(6000, 0, false))
            .await
            .expect("handshake");
        (raw, rsp)
    }

    pub async fn send_payload(&mut self, payload: &(impl Encode + ?Sized)) {
        let mut out = BytesMut::new();
        frame::encode_frame(&mut out, usize::MAX >> 1, payload).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next frame's payload; `None` at EOF (or reset).
    pub async fn recv(&mut self) -> Option<Bytes> {
        loop {
            if let Some(p) = frame::parse(&mut self.buf, usize::MAX >> 1).unwrap() {
                return Some(p);
            }
            let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("timed out waiting for the server");
            match n {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    pub async fn handshake(&mut self, req: ConnectRequest) -> Option<ConnectResponse> {
        self.send_payload(&req).await;
        let p = self.recv().await?;
        Some(ConnectResponse::decode_exact(p).unwrap())
    }

    pub async fn send(&mut self, req: &Request) -> i32 {
        self.xid += 1;
        let xid = self.xid;
        self.pending.insert(xid, req.op_code());
        self.send_payload(&(&RequestHeader::new(xid, req.op_code()), req))
            .await;
        xid
    }

    /// Reads until the reply to `xid`, recording notifications.
    pub async fn reply(&mut self, xid: i32) -> Option<(ReplyHeader, Response)> {
        loop {
            let p = self.recv().await?;
            let pending = &self.pending;
            let (h, body) = decode_reply_frame(p, |x| pending.get(&x).copied()).unwrap();
            if let Response::Notification(e) = &body {
                self.events.push((e.event().unwrap(), e.path.clone()));
                continue;
            }
            if h.xid == xid {
                self.pending.remove(&xid);
                return Some((h, body));
            }
        }
    }

    pub async fn call(&mut self, req: Request) -> Result<Response, ErrorCode> {
        let xid = self.send(&req).await;
        let (h, body) = self.reply(xid).await.expect("connection closed");
        match h.error_code().unwrap() {
            ErrorCode::Ok => Ok(body),
            e => Err(e),
        }
    }

    pub async fn create(&mut self, path: &str, mode: CreateMode) -> Result<Response, ErrorCode> {
        self.call(Request::Create(CreateRequest {
            path: path.into(),
            data: Some(Bytes::from_static(b"v")),
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: mode.into(),
        }))
        .await
    }

    /// Reads to EOF; returns the number of frames seen.
    pub async fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.recv().await.is_some() {
            n += 1;
        }
        n
    }
}

pub fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

pub async fn four_letter(addr: SocketAddr, cmd: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(cmd.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}
