//! Prep-stage tests: error precedence and the pending-change overlay.

use bytes::Bytes;
use zk_proto::records::{CreateRequest, DeleteRequest, OPEN_ACL_UNSAFE, SetDataRequest};

use super::*;

fn ctx(auth: &[Id]) -> PrepContext<'_> {
    PrepContext {
        session_id: 9,
        auth,
        extended_types: false,
    }
}

fn create(path: &str, flags: i32) -> MultiOp {
    MultiOp::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"x")),
        acl: OPEN_ACL_UNSAFE.clone(),
        flags,
    })
}

#[test]
fn overlay_sees_earlier_ops() {
    let tree = DataTree::new();
    let mut prep = Prep::new(&tree);
    let ids = [];
    let c = ctx(&ids);
    assert!(prep.op(&c, &create("/a", 0)).is_ok());
    let seq = prep.op(&c, &create("/a/s", 2)).unwrap();
    let TxnBody::Create {
        path,
        parent_cversion,
        ..
    } = seq
    else {
        panic!()
    };
    assert_eq!((path.as_str(), parent_cversion), ("/a/s0000000000", 1));
    assert_eq!(prep.op(&c, &create("/a", 0)), Err(ErrorCode::NodeExists));
    let del = MultiOp::Delete(DeleteRequest {
        path: "/a".into(),
        version: -1,
    });
    assert_eq!(prep.op(&c, &del), Err(ErrorCode::NotEmpty));
    let set = MultiOp::SetData(SetDataRequest {
        path: "/a/s0000000000".into(),
        data: None,
        version: 0,
    });
    assert!(matches!(
        prep.op(&c, &set),
        Ok(TxnBody::SetData { version: 1, .. })
    ));
    assert_eq!(prep.op(&c, &set), Err(ErrorCode::BadVersion));
}

#[test]
fn ephemeral_owner_and_bad_flags() {
    let tree = DataTree::new();
    let mut prep = Prep::new(&tree);
    let ids = [];
    let c = ctx(&ids);
    let Ok(TxnBody::Create { kind, .. }) = prep.op(&c, &create("/e", 1)) else {
        panic!()
    };
    assert_eq!(kind, NodeKind::Ephemeral(9));
    assert_eq!(
        prep.op(&c, &create("/e/x", 0)),
        Err(ErrorCode::NoChildrenForEphemerals)
    );
    assert_eq!(prep.op(&c, &create("/f", 9)), Err(ErrorCode::BadArguments));
    assert_eq!(prep.op(&c, &create("/f", 4)), Err(ErrorCode::BadArguments));
    assert_eq!(prep.op(&c, &create("/f", 5)), Err(ErrorCode::BadArguments));
}

#[test]
fn failed_multi_is_all_errors() {
    let tree = DataTree::new();
    let mut prep = Prep::new(&tree);
    let ids = [];
    let body = prep.multi(
        &ctx(&ids),
        &[create("/a", 0), create("/a", 0), create("/b", 0)],
    );
    let TxnBody::Multi(ops) = body else { panic!() };
    let codes: Vec<_> = ops
        .iter()
        .map(|(_, b)| match b {
            TxnBody::Error(e) => *e,
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::Ok,
            ErrorCode::NodeExists,
            ErrorCode::RuntimeInconsistency
        ]
    );
}
