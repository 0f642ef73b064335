//! Tests of the core state machine: requests in, frames out.

use zk_proto::records::*;
use zk_proto::{CreateMode, ErrorCode, EventType, OpCode, Perms, Request, Response};

use super::*;

struct H {
    core: Core,
    now: i64,
    xid: i32,
}

type Frames = Vec<(ConnId, Output)>;

impl H {
    fn new() -> H {
        H::with(CoreConfig::with_tick(1000))
    }

    fn with(cfg: CoreConfig) -> H {
        H {
            core: Core::new(cfg, Now::at(1_000_000)),
            now: 1_000_000,
            xid: 0,
        }
    }

    fn now(&self) -> Now {
        Now::at(self.now)
    }

    /// Opens `conn` from 127.0.0.1 and starts a new session; returns the session id.
    fn session(&mut self, conn: ConnId) -> i64 {
        self.core
            .open(conn, Some("127.0.0.1:5000".parse().unwrap()), self.now());
        let out = self.core.connect(
            conn,
            &ConnectRequest::new_session(4000, 0, false),
            self.now(),
        );
        match out.last() {
            Some((c, Output::Handshake(r))) if *c == conn => {
                assert_eq!(r.time_out, 4000);
                r.session_id
            }
            other => panic!("{other:?}"),
        }
    }

    /// Sends a request; returns all frames.
    fn send(&mut self, conn: ConnId, req: Request) -> Frames {
        self.xid += 1;
        let header = RequestHeader::new(self.xid, req.op_code());
        self.core.request(conn, header, req, self.now())
    }

    /// Sends a request; returns the reply to it (the last frame for `conn` with its xid).
    fn call(&mut self, conn: ConnId, req: Request) -> Result<Response, ErrorCode> {
        let xid_sent = self.xid + 1;
        let out = self.send(conn, req);
        for (c, o) in out.into_iter().rev() {
            if let (true, Output::Reply(h, body)) = (c == conn, o)
                && h.xid == xid_sent
            {
                return match h.error_code().unwrap() {
                    ErrorCode::Ok => Ok(body),
                    e => Err(e),
                };
            }
        }
        panic!("no reply")
    }

    fn create(&mut self, conn: ConnId, path: &str, mode: CreateMode) -> Result<String, ErrorCode> {
        let req = CreateRequest {
            path: path.into(),
            data: Some(Bytes::from_static(b"x")),
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: mode.into(),
        };
        let r = if mode.is_container() {
            Request::CreateContainer(req)
        } else {
            Request::Create2(req)
        };
        match self.call(conn, r)? {
            Response::Create2(r) => Ok(r.path),
            other => panic!("{other:?}"),
        }
    }

    fn stat(&mut self, path: &str) -> Option<Stat> {
        self.core.tree().stat(path)
    }
}

fn notifications(out: &Frames, conn: ConnId) -> Vec<(EventType, String)> {
    out.iter()
        .filter_map(|(c, o)| match o {
            Output::Reply(h, Response::Notification(e)) if *c == conn && h.xid == -1 => {
                Some((e.event().unwrap(), e.path.clone()))
            }
            _ => None,
        })
        .collect()
}

fn set_data(path: &str, version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"new")),
        version,
    })
}

fn delete(path: &str, version: i32) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

#[test]
fn create_modes_and_sequential_names() {
    let mut h = H::new();
    let s = h.session(1);
    assert_eq!(h.create(1, "/a", CreateMode::Persistent), Ok("/a".into()));
    assert_eq!(
        h.create(1, "/a/q-", CreateMode::PersistentSequential),
        Ok("/a/q-0000000000".into())
    );
    assert_eq!(
        h.create(1, "/a/plain", CreateMode::Persistent),
        Ok("/a/plain".into())
    );
    assert_eq!(
        h.create(1, "/a/", CreateMode::EphemeralSequential),
        Ok("/a/0000000002".into())
    );
    assert_eq!(h.call(1, delete("/a/plain", -1)), Ok(Response::Empty));
    // The counter counts creates, so numbers keep increasing after deletes.
    assert_eq!(
        h.create(1, "/a/q-", CreateMode::PersistentSequential),
        Ok("/a/q-0000000003".into())
    );
    let e = h.create(1, "/e", CreateMode::Ephemeral).unwrap();
    assert_eq!(h.stat(&e).unwrap().ephemeral_owner, s);
    assert_eq!(
        h.create(1, "/e/child", CreateMode::Persistent),
        Err(ErrorCode::NoChildrenForEphemerals)
    );
    assert_eq!(
        h.create(1, "/a", CreateMode::Persistent),
        Err(ErrorCode::NodeExists)
    );
    assert_eq!(
        h.create(1, "/", CreateMode::Persistent),
        Err(ErrorCode::NodeExists)
    );
    assert_eq!(
        h.create(1, "/x/y", CreateMode::Persistent),
        Err(ErrorCode::NoNode)
    );
    assert_eq!(
        h.create(1, "/bad/", CreateMode::Persistent),
        Err(ErrorCode::BadArguments)
    );
    // Plain create returns only the path.
    let r = h.call(
        1,
        Request::Create(CreateRequest {
            path: "/p".into(),
            data: None,
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: 0,
        }),
    );
    assert_eq!(
        r,
        Ok(Response::Create(CreateResponse { path: "/p".into() }))
    );
    let r = h.call(1, get_data("/p", false)).unwrap();
    let Response::GetData(d) = r else { panic!() };
    assert_eq!((d.data, d.stat.data_length), (None, 0));
}

#[test]
fn create_error_precedence() {
    let mut h = H::new();
    h.session(1);
    // Bad flags beat everything, even a bad path.
    let r = h.call(
        1,
        Request::Create(CreateRequest {
            path: "bad".into(),
            data: None,
            acl: vec![],
            flags: 42,
        }),
    );
    assert_eq!(r, Err(ErrorCode::BadArguments));
    // Path shape before ACL list.
    let r = h.call(
        1,
        Request::Create(CreateRequest {
            path: "bad".into(),
            data: None,
            acl: vec![],
            flags: 0,
        }),
    );
    assert_eq!(r, Err(ErrorCode::BadArguments));
    // ACL list before parent.
    let r = h.call(
        1,
        Request::Create(CreateRequest {
            path: "/missing/x".into(),
            data: None,
            acl: vec![],
            flags: 0,
        }),
    );
    assert_eq!(r, Err(ErrorCode::InvalidAcl));
    // TTL disabled.
    let r = h.call(
        1,
        Request::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: CreateMode::PersistentWithTtl.into(),
            ttl: 100,
        }),
    );
    assert_eq!(r, Err(ErrorCode::Unimplemented));
    // CREATE on parent before NODEEXISTS.
    h.call(
        1,
        Request::Create(CreateRequest {
            path: "/ro".into(),
            data: None,
            acl: READ_ACL_UNSAFE.clone(),
            flags: 0,
        }),
    )
    .unwrap();
    assert_eq!(
        h.create(1, "/ro/x", CreateMode::Persistent),
        Err(ErrorCode::NoAuth)
    );
    // DELETE on parent before NONODE.
    assert_eq!(h.call(1, delete("/ro/missing", -1)), Err(ErrorCode::NoAuth));
    assert_eq!(
        h.call(1, delete("/zookeeper", -1)),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(h.call(1, delete("/", -1)), Err(ErrorCode::BadArguments));
}

#[test]
fn failed_writes_consume_zxids_and_versions() {
    let mut h = H::new();
    h.session(1);
    h.create(1, "/a", CreateMode::Persistent).unwrap();
    let before = h.core.last_zxid();
    assert_eq!(h.call(1, set_data("/a", 5)), Err(ErrorCode::BadVersion));
    assert_eq!(h.core.last_zxid(), before + 1);
    let Ok(Response::SetData(r)) = h.call(1, set_data("/a", 0)) else {
        panic!()
    };
    assert_eq!((r.stat.version, r.stat.mzxid), (1, before + 2));
    assert_eq!(h.call(1, set_data("/nope", -1)), Err(ErrorCode::NoNode));
    assert_eq!(h.call(1, delete("/a", 0)), Err(ErrorCode::BadVersion));
    h.create(1, "/a/b", CreateMode::Persistent).unwrap();
    assert_eq!(h.call(1, delete("/a", 1)), Err(ErrorCode::NotEmpty));
    let a = h.stat("/a").unwrap();
    assert_eq!((a.cversion, a.num_children), (1, 1));
    h.call(1, delete("/a/b", -1)).unwrap();
    let a2 = h.stat("/a").unwrap();
    assert_eq!((a2.cversion, a2.num_children), (2, 0));
    assert!(a2.pzxid > a.pzxid);
    assert_eq!(h.call(1, delete("/a", 1)), Ok(Response::Empty));
}

#[test]
fn acls_auth_and_super() {
    let mut cfg = CoreConfig::with_tick(1000);
    cfg.super_digest = Some(crate::acl::digest("super:admin"));
    let mut h = H::with(cfg);
    h.session(1);
    h.session(2);
    h.session(3);
    // Without auth, auth:"" is INVALIDACL.
    let creator = |path: &str| {
        Request::Create(CreateRequest {
            path: path.into(),
            data: None,
            acl: CREATOR_ALL_ACL.clone(),
            flags: 0,
        })
    };
    assert_eq!(h.call(1, creator("/s")), Err(ErrorCode::InvalidAcl));
    let auth = |cred: &str| Request::Auth(AuthPacket::new("digest", cred.as_bytes().to_vec()));
    assert_eq!(h.call(1, auth("u:p")), Ok(Response::Empty));
    h.call(1, creator("/s")).unwrap();
    let Ok(Response::GetAcl(r)) = h.call(1, Request::GetAcl(GetAclRequest { path: "/s".into() }))
    else {
        panic!()
    };
    assert_eq!(r.acl[0].id, Id::new("digest", crate::acl::digest("u:p")));
    // Another connection: no READ.
    assert_eq!(h.call(2, get_data("/s", false)), Err(ErrorCode::NoAuth));
    assert_eq!(
        h.call(2, Request::GetAcl(GetAclRequest { path: "/s".into() })),
        Err(ErrorCode::NoAuth)
    );
    // exists works without READ (Apache 3.8).
    assert!(matches!(
        h.call(
            2,
            Request::Exists(ExistsRequest {
                path: "/s".into(),
                watch: false
            })
        ),
        Ok(Response::Exists(_))
    ));
    // Super sees everything.
    assert_eq!(h.call(3, auth("super:admin")), Ok(Response::Empty));
    assert!(h.call(3, get_data("/s", false)).is_ok());
    // READ without ADMIN masks digests.
    h.call(
        1,
        Request::SetAcl(SetAclRequest {
            path: "/s".into(),
            acl: vec![
                Acl::new(Perms::READ, Id::anyone()),
                Acl::new(Perms::ALL, Id::new("digest", crate::acl::digest("u:p"))),
            ],
            version: 0,
        }),
    )
    .unwrap();
    let Ok(Response::GetAcl(r)) = h.call(2, Request::GetAcl(GetAclRequest { path: "/s".into() }))
    else {
        panic!()
    };
    assert_eq!(r.acl[1].id.id, "u:x");
    assert_eq!(r.stat.aversion, 1);
    // setACL order: ACL list (-114) before node (-101); aversion check.
    let bad = Request::SetAcl(SetAclRequest {
        path: "/none".into(),
        acl: vec![],
        version: 0,
    });
    assert_eq!(h.call(1, bad), Err(ErrorCode::InvalidAcl));
    let stale = Request::SetAcl(SetAclRequest {
        path: "/s".into(),
        acl: OPEN_ACL_UNSAFE.clone(),
        version: 0,
    });
    assert_eq!(h.call(1, stale), Err(ErrorCode::BadVersion));
    // whoAmI lists digest before ip.
    let Ok(Response::WhoAmI(w)) = h.call(1, Request::WhoAmI) else {
        panic!()
    };
    let got: Vec<_> = w
        .client_info
        .iter()
        .map(|c| (c.auth_scheme.as_str(), c.user.as_str()))
        .collect();
    assert_eq!(got, vec![("digest", "u"), ("ip", "127.0.0.1")]);
    // Unknown scheme: AUTHFAILED then close.
    let out = h.send(2, Request::Auth(AuthPacket::new("kerberos", vec![1u8])));
    assert!(matches!(&out[0].1, Output::Reply(hd, _) if hd.err == -115 && hd.xid == h.xid));
    assert_eq!(out[1], (2, Output::Close));
}

#[test]
fn watches_fire_before_the_reply() {
    let mut h = H::new();
    h.session(1);
    h.session(2);
    h.create(1, "/w", CreateMode::Persistent).unwrap();
    h.call(2, get_data("/w", true)).unwrap();
    h.call(
        2,
        Request::Exists(ExistsRequest {
            path: "/w".into(),
            watch: true,
        }),
    )
    .unwrap();
    h.call(
        2,
        Request::GetChildren(GetChildrenRequest {
            path: "/w".into(),
            watch: true,
        }),
    )
    .unwrap();
    // exists on a missing node leaves a watch and returns NONODE.
    assert_eq!(
        h.call(
            2,
            Request::Exists(ExistsRequest {
                path: "/w/new".into(),
                watch: true
            })
        ),
        Err(ErrorCode::NoNode)
    );
    // getData on a missing node leaves nothing.
    assert_eq!(
        h.call(2, get_data("/w/other", true)),
        Err(ErrorCode::NoNode)
    );
    let out = h.send(1, set_data("/w", -1));
    assert_eq!(
        notifications(&out, 2),
        vec![(EventType::NodeDataChanged, "/w".into())]
    );
    let out = h.send(
        1,
        Request::Create(CreateRequest {
            path: "/w/new".into(),
            data: None,
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: 0,
        }),
    );
    // Notifications come before the writer's reply and carry the txn zxid.
    assert_eq!(
        notifications(&out, 2),
        vec![
            (EventType::NodeCreated, "/w/new".into()),
            (EventType::NodeChildrenChanged, "/w".into())
        ]
    );
    assert!(matches!(out.last(), Some((1, Output::Reply(hd, _))) if hd.xid == h.xid));
    let out = h.send(1, delete("/w/other-missing", -1));
    assert!(notifications(&out, 2).is_empty());
    // One-shot: nothing more.
    let out = h.send(1, set_data("/w", -1));
    assert!(notifications(&out, 2).is_empty());
    // Delete: data + child watches → one NodeDeleted.
    h.call(2, get_data("/w/new", true)).unwrap();
    h.call(
        2,
        Request::GetChildren2(GetChildren2Request {
            path: "/w/new".into(),
            watch: true,
        }),
    )
    .unwrap();
    let out = h.send(1, delete("/w/new", -1));
    assert_eq!(
        notifications(&out, 2),
        vec![(EventType::NodeDeleted, "/w/new".into())]
    );
    // Disconnect drops watches.
    h.call(2, get_data("/w", true)).unwrap();
    h.core.disconnected(2);
    assert_eq!(h.core.watches().watch_count(), 0);
}

#[test]
fn persistent_recursive_and_check_remove_watches() {
    let mut h = H::new();
    h.session(1);
    h.session(2);
    let add = |path: &str, mode: i32| {
        Request::AddWatch(AddWatchRequest {
            path: path.into(),
            mode,
        })
    };
    assert_eq!(
        h.call(2, add("/r", 1)),
        Ok(Response::AddWatch(ErrorResponse { err: 0 }))
    );
    h.call(2, add("/p", 0)).unwrap();
    assert_eq!(h.call(2, add("/p", 7)), Err(ErrorCode::BadArguments));
    let out = h.send(
        1,
        Request::Create(CreateRequest {
            path: "/r".into(),
            data: None,
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: 0,
        }),
    );
    assert_eq!(
        notifications(&out, 2),
        vec![(EventType::NodeCreated, "/r".into())]
    );
    let out = h.send(
        1,
        Request::Create(CreateRequest {
            path: "/r/a".into(),
            data: None,
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: 0,
        }),
    );
    assert_eq!(
        notifications(&out, 2),
        vec![(EventType::NodeCreated, "/r/a".into())]
    );
    h.create(1, "/p", CreateMode::Persistent).unwrap();
    let out = h.send(
        1,
        Request::Create(CreateRequest {
            path: "/p/a".into(),
            data: None,
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: 0,
        }),
    );
    assert_eq!(
        notifications(&out, 2),
        vec![(EventType::NodeChildrenChanged, "/p".into())]
    );
    let out = h.send(1, set_data("/p", -1));
    assert_eq!(
        notifications(&out, 2),
        vec![(EventType::NodeDataChanged, "/p".into())]
    );
    let check = |path: &str, t: i32| {
        Request::CheckWatches(CheckWatchesRequest {
            path: path.into(),
            watcher_type: t,
        })
    };
    let remove = |path: &str, t: i32| {
        Request::RemoveWatches(RemoveWatchesRequest {
            path: path.into(),
            watcher_type: t,
        })
    };
    assert_eq!(h.call(2, check("/r", 5)), Ok(Response::Empty));
    assert_eq!(h.call(2, check("/nothing", 3)), Err(ErrorCode::NoWatcher));
    assert_eq!(h.call(2, remove("/r", 3)), Ok(Response::Empty));
    assert_eq!(h.call(2, remove("/r", 3)), Err(ErrorCode::NoWatcher));
    let out = h.send(1, set_data("/r/a", -1));
    assert!(notifications(&out, 2).is_empty());
}

#[test]
fn set_watches_fires_what_was_missed() {
    let mut h = H::new();
    h.session(1);
    h.create(1, "/same", CreateMode::Persistent).unwrap();
    h.create(1, "/changed", CreateMode::Persistent).unwrap();
    h.create(1, "/kids", CreateMode::Persistent).unwrap();
    let rel = h.core.last_zxid();
    h.call(1, set_data("/changed", -1)).unwrap();
    h.create(1, "/kids/k", CreateMode::Persistent).unwrap();
    h.create(1, "/appeared", CreateMode::Persistent).unwrap();
    h.session(2);
    let out = h.send(
        2,
        Request::SetWatches(SetWatches {
            relative_zxid: rel,
            data_watches: vec!["/same".into(), "/changed".into(), "/gone".into()],
            exist_watches: vec!["/appeared".into(), "/absent".into()],
            child_watches: vec!["/kids".into(), "/same".into()],
        }),
    );
    assert_eq!(
        notifications(&out, 2),
        vec![
            (EventType::NodeDataChanged, "/changed".into()),
            (EventType::NodeDeleted, "/gone".into()),
            (EventType::NodeCreated, "/appeared".into()),
            (EventType::NodeChildrenChanged, "/kids".into()),
        ]
    );
    assert!(out.iter().all(|(_, o)| match o {
        Output::Reply(hd, Response::Notification(_)) => hd.zxid == -1,
        _ => true,
    }));
    assert!(matches!(out.last(), Some((2, Output::Reply(hd, Response::Empty))) if hd.xid == h.xid));
    // Registered: /same (data, child), /absent (exist).
    assert_eq!(h.core.watches().connection_watch_count(2), 3);
    let out = h.send(1, set_data("/same", -1));
    assert_eq!(
        notifications(&out, 2),
        vec![(EventType::NodeDataChanged, "/same".into())]
    );
    let out = h.send(
        1,
        Request::Create(CreateRequest {
            path: "/absent".into(),
            data: None,
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: 0,
        }),
    );
    assert_eq!(
        notifications(&out, 2),
        vec![(EventType::NodeCreated, "/absent".into())]
    );
}

#[test]
fn multi_all_or_nothing() {
    let mut h = H::new();
    h.session(1);
    h.create(1, "/m", CreateMode::Persistent).unwrap();
    let create = |p: &str| {
        MultiOp::Create(CreateRequest {
            path: p.into(),
            data: None,
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: 0,
        })
    };
    let ok = Request::Multi(MultiRequest {
        ops: vec![
            create("/m/a"),
            MultiOp::Create2(CreateRequest {
                path: "/m/a/s-".into(),
                data: None,
                acl: OPEN_ACL_UNSAFE.clone(),
                flags: 2,
            }),
            MultiOp::SetData(SetDataRequest {
                path: "/m/a".into(),
                data: None,
                version: 0,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: "/m/a".into(),
                version: 1,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/m/a/s-0000000000".into(),
                version: -1,
            }),
            MultiOp::CreateContainer(CreateRequest {
                path: "/m/a/box".into(),
                data: None,
                acl: OPEN_ACL_UNSAFE.clone(),
                flags: 4,
            }),
        ],
    });
    let before = h.core.last_zxid();
    let Ok(Response::Multi(r)) = h.call(1, ok) else {
        panic!()
    };
    assert_eq!(h.core.last_zxid(), before + 1);
    let types: Vec<OpCode> = r.results.iter().map(|r| r.op_code()).collect();
    // As Apache (its MultiOperationRecord reads create2 as a plain create): a create2
    // inside a multi gets a create result (path only); a container create gets its stat.
    assert_eq!(
        types,
        vec![
            OpCode::Create,
            OpCode::Create,
            OpCode::SetData,
            OpCode::Check,
            OpCode::Delete,
            OpCode::Create2,
        ]
    );
    let MultiResult::Create2(container) = &r.results[5] else {
        panic!()
    };
    assert_eq!(container.stat.czxid, before + 1);
    let MultiResult::SetData(sd) = &r.results[2] else {
        panic!()
    };
    assert_eq!(sd.stat.mzxid, before + 1);
    let bad = Request::Multi(MultiRequest {
        ops: vec![
            create("/m/b"),
            MultiOp::Check(CheckVersionRequest {
                path: "/m/a".into(),
                version: 7,
            }),
            create("/m/c"),
        ],
    });
    let Ok(Response::Multi(r)) = h.call(1, bad) else {
        panic!()
    };
    assert_eq!(r, MultiResponse::aborted(3, 1, ErrorCode::BadVersion));
    assert!(h.stat("/m/b").is_none());
    // multiRead: per-op results.
    let mr = Request::MultiRead(MultiReadRequest {
        ops: vec![
            MultiReadOp::GetData(GetDataRequest {
                path: "/m/a".into(),
                watch: false,
            }),
            MultiReadOp::GetChildren(GetChildrenRequest {
                path: "/m".into(),
                watch: false,
            }),
            MultiReadOp::GetData(GetDataRequest {
                path: "/none".into(),
                watch: false,
            }),
        ],
    });
    let Ok(Response::Multi(r)) = h.call(1, mr) else {
        panic!()
    };
    assert!(matches!(&r.results[0], MultiResult::GetData(_)));
    assert_eq!(
        r.results[1],
        MultiResult::GetChildren(GetChildrenResponse {
            children: vec!["a".into()]
        })
    );
    assert_eq!(r.results[2], MultiResult::Error(-101));
}

#[test]
fn sessions_expire_on_ticks_and_delete_ephemerals() {
    let mut h = H::new();
    let s = h.session(1);
    h.session(2);
    h.create(1, "/eph", CreateMode::Ephemeral).unwrap();
    h.call(2, get_data("/eph", true)).unwrap();
    let Ok(Response::GetEphemerals(e)) = h.call(
        1,
        Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: "/".into(),
        }),
    ) else {
        panic!()
    };
    assert_eq!(e.ephemerals, vec!["/eph".to_owned()]);
    // Keep session 2 alive; let session 1 go quiet. Deadline = round_up(now + 4000, 1000).
    let deadline = (h.now + 4000) / 1000 * 1000 + 1000;
    h.now = deadline - 1;
    h.call(2, Request::Ping).unwrap();
    assert!(h.core.tick(h.now()).is_empty());
    h.now = deadline;
    let out = h.core.tick(h.now());
    assert_eq!(
        notifications(&out, 2),
        vec![(EventType::NodeDeleted, "/eph".into())]
    );
    assert!(out.contains(&(1, Output::Close)));
    assert!(h.stat("/eph").is_none());
    assert!(h.core.sessions().get(s).is_none());
    // Re-attach to the expired session from a new connection: refused.
    h.core.open(3, None, h.now());
    let mut req = ConnectRequest::new_session(4000, 0, false);
    req.session_id = s;
    let out = h.core.connect(3, &req, h.now());
    assert!(matches!(&out[0], (3, Output::Handshake(r)) if r.time_out == 0 && r.session_id == 0));
    assert_eq!(out[1], (3, Output::Close));
}

#[test]
fn reattach_needs_the_password_and_moves_the_session() {
    let mut h = H::new();
    let s = h.session(1);
    let password = h.core.sessions().password(s);
    h.core.open(2, None, h.now());
    let mut req = ConnectRequest::new_session(100_000, 0, true);
    req.session_id = s;
    let out = h.core.connect(2, &req, h.now());
    assert!(matches!(&out[0], (2, Output::Handshake(r)) if r.time_out == 0));
    h.core.open(3, None, h.now());
    req.passwd = Bytes::copy_from_slice(&password);
    let out = h.core.connect(3, &req, h.now());
    assert_eq!(out[0], (1, Output::Close));
    let (_, Output::Handshake(r)) = &out[1] else {
        panic!("{out:?}")
    };
    // Clamped to 20 ticks; readOnly byte echoed as false.
    assert_eq!(
        (r.session_id, r.time_out, r.read_only),
        (s, 20_000, Some(false))
    );
    assert_eq!(h.core.connection_of(s), Some(3));
    // The old connection is no longer bound: requests there close it.
    let out = h.send(1, Request::Ping);
    assert_eq!(out, vec![(1, Output::Close)]);
    // A client that has seen the future is refused.
    h.core.open(4, None, h.now());
    let mut req = ConnectRequest::new_session(4000, h.core.last_zxid() + 1, false);
    req.read_only = None;
    assert_eq!(h.core.connect(4, &req, h.now()), vec![(4, Output::Close)]);
}

#[test]
fn close_session_replies_then_closes() {
    let mut h = H::new();
    let s = h.session(1);
    h.session(2);
    h.create(1, "/e", CreateMode::Ephemeral).unwrap();
    h.call(
        2,
        Request::Exists(ExistsRequest {
            path: "/e".into(),
            watch: true,
        }),
    )
    .unwrap();
    let out = h.send(1, Request::CloseSession);
    assert_eq!(
        notifications(&out, 2),
        vec![(EventType::NodeDeleted, "/e".into())]
    );
    let n = out.len();
    assert!(matches!(&out[n - 2], (1, Output::Reply(hd, Response::Empty)) if hd.xid == h.xid));
    assert_eq!(out[n - 1], (1, Output::Close));
    assert!(h.core.sessions().get(s).is_none());
    // expire_session on an unknown session does nothing.
    assert!(!h.core.expire_session(s, h.now()).0);
}

#[test]
fn containers_and_ttl_nodes_are_reaped() {
    let mut cfg = CoreConfig::with_tick(1000);
    cfg.extended_types = true;
    cfg.container_check_interval_ms = 100;
    let mut h = H::with(cfg);
    h.session(1);
    h.create(1, "/c", CreateMode::Container).unwrap();
    h.create(1, "/never", CreateMode::Container).unwrap();
    h.create(1, "/c/x", CreateMode::Persistent).unwrap();
    let r = h.call(
        1,
        Request::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: OPEN_ACL_UNSAFE.clone(),
            flags: CreateMode::PersistentWithTtl.into(),
            ttl: 1000,
        }),
    );
    let Ok(Response::Create2(c)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(c.stat.ephemeral_owner, 0);
    for (flags, ttl) in [(5, 0), (5, 1 << 40), (0, 100)] {
        let r = h.call(
            1,
            Request::CreateTtl(CreateTtlRequest {
                path: "/t2".into(),
                data: None,
                acl: OPEN_ACL_UNSAFE.clone(),
                flags,
                ttl,
            }),
        );
        assert_eq!(r, Err(ErrorCode::BadArguments), "{flags} {ttl}");
    }
    h.now += 200;
    h.call(1, Request::Ping).unwrap();
    h.core.tick(h.now());
    assert!(h.stat("/c").is_some() && h.stat("/t").is_some());
    h.call(1, delete("/c/x", -1)).unwrap();
    h.now += 400;
    h.call(1, Request::Ping).unwrap();
    h.core.tick(h.now());
    assert!(h.stat("/c").is_none(), "used, empty container reaped");
    assert!(h.stat("/never").is_some(), "never-used container kept");
    assert!(h.stat("/t").is_some());
    h.now += 500;
    h.call(1, Request::Ping).unwrap();
    h.core.tick(h.now());
    assert!(h.stat("/t").is_none(), "TTL passed");
}

#[test]
fn misc_reads() {
    let mut h = H::new();
    h.session(1);
    h.create(1, "/a", CreateMode::Persistent).unwrap();
    h.create(1, "/a/b", CreateMode::Persistent).unwrap();
    h.create(1, "/a/b/c", CreateMode::Persistent).unwrap();
    let r = h.call(
        1,
        Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: "/a".into() }),
    );
    assert_eq!(
        r,
        Ok(Response::GetAllChildrenNumber(
            GetAllChildrenNumberResponse { total_number: 2 }
        ))
    );
    let r = h.call(1, Request::Sync(SyncRequest { path: "/a".into() }));
    assert_eq!(r, Ok(Response::Sync(SyncResponse { path: "/a".into() })));
    let Ok(Response::GetData(cfg)) = h.call(1, get_data("/zookeeper/config", false)) else {
        panic!()
    };
    assert_eq!(cfg.data.as_deref(), Some(&b""[..]));
    let before = h.core.last_zxid();
    assert_eq!(
        h.call(
            1,
            Request::Reconfig(ReconfigRequest {
                joining_servers: None,
                leaving_servers: Some("2".into()),
                new_members: None,
                cur_config_id: -1
            })
        ),
        Err(ErrorCode::ReconfigDisabled)
    );
    // Like Apache, the refused reconfig is an error txn with its own zxid.
    assert_eq!(h.core.last_zxid(), before + 1);
    assert_eq!(
        h.call(1, get_data("no-slash", false)),
        Err(ErrorCode::BadArguments)
    );
    let Ok(Response::GetChildren(c)) = h.call(
        1,
        Request::GetChildren(GetChildrenRequest {
            path: "/".into(),
            watch: false,
        }),
    ) else {
        panic!()
    };
    assert_eq!(c.children, vec!["a".to_owned(), "zookeeper".to_owned()]);
    // check alone: UNIMPLEMENTED then close.
    let out = h.send(
        1,
        Request::Check(CheckVersionRequest {
            path: "/a".into(),
            version: -1,
        }),
    );
    assert!(matches!(&out[0], (1, Output::Reply(hd, _)) if hd.err == -6));
    assert_eq!(out[1], (1, Output::Close));
}

mod model {
    //! Random operation sequences: the core never panics, the tree stays consistent, and
    //! replaying the logged txns on a fresh core reproduces the same tree (what a follower
    //! or a restart does).

    use proptest::prelude::*;

    use super::*;

    const PATHS: &[&str] = &["/a", "/a/b", "/a/b/c", "/d", "/a/e", "/d/f"];

    #[derive(Debug, Clone)]
    enum Op {
        Create(usize, i32, usize),
        Delete(usize, i32, usize),
        SetData(usize, i32, usize),
        SetAcl(usize, usize),
        Multi(Vec<(u8, usize, i32)>),
        Expire(usize),
        Tick(i64),
        Reconnect(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let p = 0..PATHS.len();
        let c = 0..3usize;
        prop_oneof![
            (p.clone(), 0..7i32, c.clone()).prop_map(|(p, f, c)| Op::Create(p, f, c)),
            (p.clone(), -1..2i32, c.clone()).prop_map(|(p, v, c)| Op::Delete(p, v, c)),
            (p.clone(), -1..2i32, c.clone()).prop_map(|(p, v, c)| Op::SetData(p, v, c)),
            (p.clone(), c.clone()).prop_map(|(p, c)| Op::SetAcl(p, c)),
            prop::collection::vec((0..3u8, p.clone(), -1..2i32), 0..4).prop_map(Op::Multi),
            c.clone().prop_map(Op::Expire),
            (0..3000i64).prop_map(Op::Tick),
            c.prop_map(Op::Reconnect),
        ]
    }

    fn multi_op(kind: u8, path: &str, v: i32) -> MultiOp {
        match kind {
            0 => MultiOp::Create(CreateRequest {
                path: path.into(),
                data: None,
                acl: OPEN_ACL_UNSAFE.clone(),
                flags: v.rem_euclid(4),
            }),
            1 => MultiOp::Delete(DeleteRequest {
                path: path.into(),
                version: v,
            }),
            _ => MultiOp::Check(CheckVersionRequest {
                path: path.into(),
                version: v,
            }),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_ops_keep_the_tree_consistent_and_replayable(ops in prop::collection::vec(op(), 1..60)) {
            let mut cfg = CoreConfig::with_tick(1000);
            cfg.extended_types = true;
            cfg.container_check_interval_ms = 500;
            let mut h = H::with(cfg.clone());
            let start = h.now();
            for conn in 0..3u64 {
                h.session(conn);
            }
            for op in ops {
                match op {
                    Op::Create(p, flags, c) => {
                        let mode = CreateMode::try_from(flags).unwrap();
                        let req = CreateRequest {
                            path: PATHS[p].into(),
                            data: Some(Bytes::from_static(b"x")),
                            acl: OPEN_ACL_UNSAFE.clone(),
                            flags,
                        };
                        let r = if mode.is_container() {
                            Request::CreateContainer(req)
                        } else if mode.is_ttl() {
                            Request::CreateTtl(CreateTtlRequest {
                                path: req.path,
                                data: req.data,
                                acl: req.acl,
                                flags,
                                ttl: 700,
                            })
                        } else {
                            Request::Create2(req)
                        };
                        h.send(c as u64, r);
                    }
                    Op::Delete(p, v, c) => {
                        h.send(c as u64, delete(PATHS[p], v));
                    }
                    Op::SetData(p, v, c) => {
                        h.send(c as u64, set_data(PATHS[p], v));
                    }
                    Op::SetAcl(p, c) => {
                        h.send(
                            c as u64,
                            Request::SetAcl(SetAclRequest {
                                path: PATHS[p].into(),
                                acl: OPEN_ACL_UNSAFE.clone(),
                                version: -1,
                            }),
                        );
                    }
                    Op::Multi(ops) => {
                        let ops = ops
                            .into_iter()
                            .map(|(k, p, v)| multi_op(k, PATHS[p], v))
                            .collect();
                        h.send(0, Request::Multi(MultiRequest { ops }));
                    }
                    Op::Expire(c) => {
                        if let Some(s) = h.core.conns.get(&(c as u64)).and_then(|i| i.session) {
                            h.core.expire_session(s, h.now());
                        }
                    }
                    Op::Tick(ms) => {
                        h.now += ms;
                        h.core.tick(h.now());
                    }
                    Op::Reconnect(c) => {
                        h.core.disconnected(c as u64);
                        h.session(c as u64);
                    }
                }
                prop_assert_eq!(h.core.tree().check_consistency(), Ok(()));
            }
            // Replay the log from the start on a fresh core.
            let txns = h.core.log().read_after(0);
            prop_assume!(txns.first().map(|t| t.header.zxid) == Some(1));
            let replica = Core::restore(cfg, Box::new(MemLog::default()), None, txns, start);
            prop_assert_eq!(replica.tree(), h.core.tree());
            prop_assert_eq!(replica.last_zxid(), h.core.last_zxid());
        }
    }
}
