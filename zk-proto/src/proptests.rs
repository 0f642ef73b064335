//! Property tests: every record, `Request` and `Response` round-trips through its encoding,
//! every strict prefix of an encoding is reported as incomplete, and arbitrary bytes never
//! make a decoder panic.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::codec::{Decode, DecodeError, Encode};
use crate::frame;
use crate::op_code::OpCode;
use crate::records::*;
use crate::request::{Request, decode_request_frame};
use crate::response::{Response, decode_reply_frame};
use crate::types::Perms;

// ---- strategies -------------------------------------------------------------------------

fn string() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z/]{0,10}", "\\PC{0,6}"]
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(string(), 0..4)
}

fn bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn opt_bytes() -> impl Strategy<Value = Option<Bytes>> {
    option::of(bytes())
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        (any::<i64>(), any::<i32>(), any::<i32>(), any::<i64>()),
    )
        .prop_map(
            |(
                (czxid, mzxid, ctime, mtime),
                (version, cversion, aversion),
                (ephemeral_owner, data_length, num_children, pzxid),
            )| Stat {
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner,
                data_length,
                num_children,
                pzxid,
            },
        )
}

fn stat_persisted() -> impl Strategy<Value = StatPersisted> {
    stat().prop_map(|s| StatPersisted {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.cversion,
        aversion: s.aversion,
        ephemeral_owner: s.ephemeral_owner,
        pzxid: s.pzxid,
    })
}

fn id() -> impl Strategy<Value = Id> {
    (string(), string()).prop_map(|(scheme, id)| Id { scheme, id })
}

fn acl() -> impl Strategy<Value = Acl> {
    (any::<i32>(), id()).prop_map(|(perms, id)| Acl {
        perms: Perms(perms),
        id,
    })
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(acl(), 0..3)
}

fn connect_request() -> impl Strategy<Value = ConnectRequest> {
    (
        any::<i32>(),
        any::<i64>(),
        any::<i32>(),
        any::<i64>(),
        bytes(),
        option::of(any::<bool>()),
    )
        .prop_map(
            |(protocol_version, last_zxid_seen, time_out, session_id, passwd, read_only)| {
                ConnectRequest {
                    protocol_version,
                    last_zxid_seen,
                    time_out,
                    session_id,
                    passwd,
                    read_only,
                }
            },
        )
}

fn connect_response() -> impl Strategy<Value = ConnectResponse> {
    (
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
        bytes(),
        option::of(any::<bool>()),
    )
        .prop_map(
            |(protocol_version, time_out, session_id, passwd, read_only)| ConnectResponse {
                protocol_version,
                time_out,
                session_id,
                passwd,
                read_only,
            },
        )
}

fn request_header() -> impl Strategy<Value = RequestHeader> {
    (any::<i32>(), any::<i32>()).prop_map(|(xid, op)| RequestHeader { xid, op })
}

fn reply_header() -> impl Strategy<Value = ReplyHeader> {
    (any::<i32>(), any::<i64>(), any::<i32>()).prop_map(|(xid, zxid, err)| ReplyHeader {
        xid,
        zxid,
        err,
    })
}

fn create_request() -> impl Strategy<Value = CreateRequest> {
    (string(), opt_bytes(), acls(), any::<i32>()).prop_map(|(path, data, acl, flags)| {
        CreateRequest {
            path,
            data,
            acl,
            flags,
        }
    })
}

fn create_ttl_request() -> impl Strategy<Value = CreateTtlRequest> {
    (string(), opt_bytes(), acls(), any::<i32>(), any::<i64>()).prop_map(
        |(path, data, acl, flags, ttl)| CreateTtlRequest {
            path,
            data,
            acl,
            flags,
            ttl,
        },
    )
}

fn path_version<T: Debug>(f: fn(String, i32) -> T) -> impl Strategy<Value = T> {
    (string(), any::<i32>()).prop_map(move |(p, v)| f(p, v))
}

fn path_watch<T: Debug>(f: fn(String, bool) -> T) -> impl Strategy<Value = T> {
    (string(), any::<bool>()).prop_map(move |(p, w)| f(p, w))
}

fn path_only<T: Debug>(f: fn(String) -> T) -> impl Strategy<Value = T> {
    string().prop_map(f)
}

fn delete_request() -> impl Strategy<Value = DeleteRequest> {
    path_version(|path, version| DeleteRequest { path, version })
}

fn set_data_request() -> impl Strategy<Value = SetDataRequest> {
    (string(), opt_bytes(), any::<i32>()).prop_map(|(path, data, version)| SetDataRequest {
        path,
        data,
        version,
    })
}

fn check_request() -> impl Strategy<Value = CheckVersionRequest> {
    path_version(|path, version| CheckVersionRequest { path, version })
}

fn get_data_request() -> impl Strategy<Value = GetDataRequest> {
    path_watch(|path, watch| GetDataRequest { path, watch })
}

fn get_children_request() -> impl Strategy<Value = GetChildrenRequest> {
    path_watch(|path, watch| GetChildrenRequest { path, watch })
}

fn get_data_response() -> impl Strategy<Value = GetDataResponse> {
    (opt_bytes(), stat()).prop_map(|(data, stat)| GetDataResponse { data, stat })
}

fn get_children_response() -> impl Strategy<Value = GetChildrenResponse> {
    strings().prop_map(|children| GetChildrenResponse { children })
}

fn create2_response() -> impl Strategy<Value = Create2Response> {
    (string(), stat()).prop_map(|(path, stat)| Create2Response { path, stat })
}

fn reconfig_request() -> impl Strategy<Value = ReconfigRequest> {
    (
        option::of(string()),
        option::of(string()),
        option::of(string()),
        any::<i64>(),
    )
        .prop_map(
            |(joining_servers, leaving_servers, new_members, cur_config_id)| ReconfigRequest {
                joining_servers,
                leaving_servers,
                new_members,
                cur_config_id,
            },
        )
}

fn set_watches() -> impl Strategy<Value = SetWatches> {
    (any::<i64>(), strings(), strings(), strings()).prop_map(
        |(relative_zxid, data_watches, exist_watches, child_watches)| SetWatches {
            relative_zxid,
            data_watches,
            exist_watches,
            child_watches,
        },
    )
}

fn set_watches2() -> impl Strategy<Value = SetWatches2> {
    (set_watches(), strings(), strings()).prop_map(|(w, persistent, recursive)| SetWatches2 {
        relative_zxid: w.relative_zxid,
        data_watches: w.data_watches,
        exist_watches: w.exist_watches,
        child_watches: w.child_watches,
        persistent_watches: persistent,
        persistent_recursive_watches: recursive,
    })
}

fn watcher_event() -> impl Strategy<Value = WatcherEvent> {
    (any::<i32>(), any::<i32>(), string()).prop_map(|(event_type, state, path)| WatcherEvent {
        event_type,
        state,
        path,
    })
}

fn auth_packet() -> impl Strategy<Value = AuthPacket> {
    (any::<i32>(), string(), bytes()).prop_map(|(auth_type, scheme, auth)| AuthPacket {
        auth_type,
        scheme,
        auth,
    })
}

fn who_am_i_response() -> impl Strategy<Value = WhoAmIResponse> {
    vec(
        (string(), string()).prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user }),
        0..3,
    )
    .prop_map(|client_info| WhoAmIResponse { client_info })
}

fn multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        create_request().prop_map(MultiOp::Create),
        create_request().prop_map(MultiOp::Create2),
        create_request().prop_map(MultiOp::CreateContainer),
        create_ttl_request().prop_map(MultiOp::CreateTtl),
        delete_request().prop_map(MultiOp::Delete),
        set_data_request().prop_map(MultiOp::SetData),
        check_request().prop_map(MultiOp::Check),
    ]
}

fn multi_request() -> impl Strategy<Value = MultiRequest> {
    vec(multi_op(), 0..4).prop_map(|ops| MultiRequest { ops })
}

fn multi_read_request() -> impl Strategy<Value = MultiReadRequest> {
    vec(
        prop_oneof![
            get_children_request().prop_map(MultiReadOp::GetChildren),
            get_data_request().prop_map(MultiReadOp::GetData),
        ],
        0..4,
    )
    .prop_map(|ops| MultiReadRequest { ops })
}

fn multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        string().prop_map(|path| MultiResult::Create(CreateResponse { path })),
        create2_response().prop_map(MultiResult::Create2),
        Just(MultiResult::Delete),
        stat().prop_map(|stat| MultiResult::SetData(SetDataResponse { stat })),
        Just(MultiResult::Check),
        get_children_response().prop_map(MultiResult::GetChildren),
        get_data_response().prop_map(MultiResult::GetData),
        any::<i32>().prop_map(MultiResult::Error),
    ]
}

fn multi_response() -> impl Strategy<Value = MultiResponse> {
    vec(multi_result(), 0..4).prop_map(|results| MultiResponse { results })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        create_request().prop_map(Request::Create),
        create_request().prop_map(Request::Create2),
        create_request().prop_map(Request::CreateContainer),
        create_ttl_request().prop_map(Request::CreateTtl),
        delete_request().prop_map(Request::Delete),
        path_watch(|path, watch| Request::Exists(ExistsRequest { path, watch })),
        get_data_request().prop_map(Request::GetData),
        set_data_request().prop_map(Request::SetData),
        path_only(|path| Request::GetAcl(GetAclRequest { path })),
        (string(), acls(), any::<i32>())
            .prop_map(|(path, acl, version)| Request::SetAcl(SetAclRequest { path, acl, version })),
        get_children_request().prop_map(Request::GetChildren),
        path_watch(|path, watch| Request::GetChildren2(GetChildren2Request { path, watch })),
        path_only(|path| Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path })),
        path_only(|prefix_path| Request::GetEphemerals(GetEphemeralsRequest { prefix_path })),
        path_only(|path| Request::Sync(SyncRequest { path })),
        check_request().prop_map(Request::Check),
        multi_request().prop_map(Request::Multi),
        multi_read_request().prop_map(Request::MultiRead),
        reconfig_request().prop_map(Request::Reconfig),
        path_version(
            |path, watcher_type| Request::CheckWatches(CheckWatchesRequest { path, watcher_type })
        ),
        path_version(
            |path, watcher_type| Request::RemoveWatches(RemoveWatchesRequest {
                path,
                watcher_type
            })
        ),
        auth_packet().prop_map(Request::Auth),
        opt_bytes().prop_map(|token| Request::Sasl(GetSaslRequest { token })),
        set_watches().prop_map(Request::SetWatches),
        set_watches2().prop_map(Request::SetWatches2),
        path_version(|path, mode| Request::AddWatch(AddWatchRequest { path, mode })),
        path_only(|path| Request::DeleteContainer(DeleteContainerRequest { path })),
        Just(Request::WhoAmI),
        Just(Request::Ping),
        Just(Request::CloseSession),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        Just(Response::Empty),
        path_only(|path| Response::Create(CreateResponse { path })),
        create2_response().prop_map(Response::Create2),
        stat().prop_map(|stat| Response::Exists(ExistsResponse { stat })),
        get_data_response().prop_map(Response::GetData),
        stat().prop_map(|stat| Response::SetData(SetDataResponse { stat })),
        (acls(), stat()).prop_map(|(acl, stat)| Response::GetAcl(GetAclResponse { acl, stat })),
        stat().prop_map(|stat| Response::SetAcl(SetAclResponse { stat })),
        get_children_response().prop_map(Response::GetChildren),
        (strings(), stat()).prop_map(|(children, stat)| Response::GetChildren2(
            GetChildren2Response { children, stat }
        )),
        path_only(|path| Response::Sync(SyncResponse { path })),
        multi_response().prop_map(Response::Multi),
        opt_bytes().prop_map(|token| Response::Sasl(SetSaslResponse { token })),
        strings()
            .prop_map(|ephemerals| Response::GetEphemerals(GetEphemeralsResponse { ephemerals })),
        any::<i32>().prop_map(|total_number| Response::GetAllChildrenNumber(
            GetAllChildrenNumberResponse { total_number }
        )),
        any::<i32>().prop_map(|err| Response::AddWatch(ErrorResponse { err })),
        who_am_i_response().prop_map(Response::WhoAmI),
        watcher_event().prop_map(Response::Notification),
    ]
}

/// An opcode for which `Response::decode_body` yields `response`'s variant.
fn response_op(response: &Response) -> OpCode {
    match response {
        Response::Empty => OpCode::Delete,
        Response::Create(_) => OpCode::Create,
        Response::Create2(_) => OpCode::Create2,
        Response::Exists(_) => OpCode::Exists,
        Response::GetData(_) => OpCode::GetData,
        Response::SetData(_) => OpCode::SetData,
        Response::GetAcl(_) => OpCode::GetAcl,
        Response::SetAcl(_) => OpCode::SetAcl,
        Response::GetChildren(_) => OpCode::GetChildren,
        Response::GetChildren2(_) => OpCode::GetChildren2,
        Response::Sync(_) => OpCode::Sync,
        Response::Multi(_) => OpCode::Multi,
        Response::Sasl(_) => OpCode::Sasl,
        Response::GetEphemerals(_) => OpCode::GetEphemerals,
        Response::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
        Response::AddWatch(_) => OpCode::AddWatch,
        Response::WhoAmI(_) => OpCode::WhoAmI,
        Response::Notification(_) => OpCode::Notification,
    }
}

// ---- checks -----------------------------------------------------------------------------

/// Round trip plus "every strict prefix is incomplete".
fn check<T: Encode + Decode + PartialEq + Debug>(value: &T) -> Result<(), TestCaseError> {
    let bytes = check_no_cuts(value)?;
    for cut in 0..bytes.len() {
        let result = T::decode(&mut &bytes[..cut]);
        prop_assert!(
            matches!(result, Err(DecodeError::UnexpectedEof { .. })),
            "prefix {cut}/{}: {result:?}",
            bytes.len()
        );
    }
    Ok(())
}

/// Round trip only (for records with an optional tail).
fn check_no_cuts<T: Encode + Decode + PartialEq + Debug>(
    value: &T,
) -> Result<Bytes, TestCaseError> {
    let bytes = value.to_bytes();
    prop_assert_eq!(bytes.len(), value.encoded_len());
    prop_assert_eq!(&T::decode_exact(bytes.clone())?, value);
    Ok(bytes)
}

macro_rules! roundtrip_props {
    ($( $name:ident: $strategy:expr; )*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            $(
                #[test]
                fn $name(value in $strategy) {
                    check(&value)?;
                }
            )*
        }
    };
}

roundtrip_props! {
    stat_roundtrips: stat();
    stat_persisted_roundtrips: stat_persisted();
    id_roundtrips: id();
    acl_roundtrips: acl();
    request_header_roundtrips: request_header();
    reply_header_roundtrips: reply_header();
    create_request_roundtrips: create_request();
    create_ttl_request_roundtrips: create_ttl_request();
    create_response_roundtrips: string().prop_map(|path| CreateResponse { path });
    create2_response_roundtrips: create2_response();
    delete_request_roundtrips: delete_request();
    exists_request_roundtrips: path_watch(|path, watch| ExistsRequest { path, watch });
    exists_response_roundtrips: stat().prop_map(|stat| ExistsResponse { stat });
    get_data_request_roundtrips: get_data_request();
    get_data_response_roundtrips: get_data_response();
    set_data_request_roundtrips: set_data_request();
    set_data_response_roundtrips: stat().prop_map(|stat| SetDataResponse { stat });
    get_acl_request_roundtrips: path_only(|path| GetAclRequest { path });
    get_acl_response_roundtrips: (acls(), stat()).prop_map(|(acl, stat)| GetAclResponse { acl, stat });
    set_acl_request_roundtrips: (string(), acls(), any::<i32>())
        .prop_map(|(path, acl, version)| SetAclRequest { path, acl, version });
    set_acl_response_roundtrips: stat().prop_map(|stat| SetAclResponse { stat });
    get_children_request_roundtrips: get_children_request();
    get_children_response_roundtrips: get_children_response();
    get_children2_request_roundtrips: path_watch(|path, watch| GetChildren2Request { path, watch });
    get_children2_response_roundtrips: (strings(), stat())
        .prop_map(|(children, stat)| GetChildren2Response { children, stat });
    check_version_request_roundtrips: check_request();
    sync_request_roundtrips: path_only(|path| SyncRequest { path });
    sync_response_roundtrips: path_only(|path| SyncResponse { path });
    get_all_children_number_request_roundtrips: path_only(|path| GetAllChildrenNumberRequest { path });
    get_all_children_number_response_roundtrips: any::<i32>()
        .prop_map(|total_number| GetAllChildrenNumberResponse { total_number });
    get_ephemerals_request_roundtrips: path_only(|prefix_path| GetEphemeralsRequest { prefix_path });
    get_ephemerals_response_roundtrips: strings().prop_map(|ephemerals| GetEphemeralsResponse { ephemerals });
    reconfig_request_roundtrips: reconfig_request();
    error_response_roundtrips: any::<i32>().prop_map(|err| ErrorResponse { err });
    multi_header_roundtrips: (any::<i32>(), any::<bool>(), any::<i32>())
        .prop_map(|(op, done, err)| MultiHeader { op, done, err });
    multi_request_roundtrips: multi_request();
    multi_read_request_roundtrips: multi_read_request();
    multi_response_roundtrips: multi_response();
    watcher_event_roundtrips: watcher_event();
    set_watches_roundtrips: set_watches();
    set_watches2_roundtrips: set_watches2();
    add_watch_request_roundtrips: path_version(|path, mode| AddWatchRequest { path, mode });
    check_watches_request_roundtrips: path_version(|path, watcher_type| CheckWatchesRequest { path, watcher_type });
    remove_watches_request_roundtrips: path_version(|path, watcher_type| RemoveWatchesRequest { path, watcher_type });
    auth_packet_roundtrips: auth_packet();
    get_sasl_request_roundtrips: opt_bytes().prop_map(|token| GetSaslRequest { token });
    set_sasl_response_roundtrips: opt_bytes().prop_map(|token| SetSaslResponse { token });
    who_am_i_response_roundtrips: who_am_i_response();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn connect_request_roundtrips(value in connect_request()) {
        let bytes = check_no_cuts(&value)?;
        // Without the optional readOnly byte, every prefix is incomplete.
        let required = bytes.len() - usize::from(value.read_only.is_some());
        for cut in 0..required {
            let result = ConnectRequest::decode(&mut &bytes[..cut]);
            prop_assert!(result.is_err_and(|e| e.is_incomplete()), "cut {}", cut);
        }
    }

    #[test]
    fn connect_response_roundtrips(value in connect_response()) {
        let bytes = check_no_cuts(&value)?;
        let required = bytes.len() - usize::from(value.read_only.is_some());
        for cut in 0..required {
            let result = ConnectResponse::decode(&mut &bytes[..cut]);
            prop_assert!(result.is_err_and(|e| e.is_incomplete()), "cut {}", cut);
        }
    }

    #[test]
    fn delete_container_request_roundtrips(path in string()) {
        check_no_cuts(&DeleteContainerRequest { path })?;
    }

    #[test]
    fn request_frames_roundtrip(xid in any::<i32>(), request in request()) {
        let header = RequestHeader::new(xid, request.op_code());
        let payload = (&header, &request).to_bytes();
        prop_assert_eq!(payload.len(), 8 + request.encoded_len());
        prop_assert_eq!(decode_request_frame(payload.clone())?, (header.clone(), request.clone()));

        // Every strict prefix of the body is incomplete (deleteContainer's body is "the rest").
        if !matches!(request, Request::DeleteContainer(_)) {
            let body = &payload[8..];
            for cut in 0..body.len() {
                let result = Request::decode_body(request.op_code(), &mut &body[..cut]);
                prop_assert!(result.is_err_and(|e| e.is_incomplete()), "cut {}", cut);
            }
        }
        // And through the framing layer.
        let mut wire = BytesMut::new();
        frame::encode_frame(&mut wire, frame::DEFAULT_MAX_FRAME_LEN, &(&header, &request))?;
        let parsed = frame::parse(&mut wire, frame::DEFAULT_MAX_FRAME_LEN)?;
        prop_assert_eq!(parsed, Some(payload));
        prop_assert!(wire.is_empty());
    }

    #[test]
    fn reply_frames_roundtrip(xid in 1..i32::MAX, zxid in any::<i64>(), response in response()) {
        let op = response_op(&response);
        let (xid, header) = match response {
            Response::Notification(_) => (-1, ReplyHeader { xid: -1, zxid, err: 0 }),
            _ => (xid, ReplyHeader { xid, zxid, err: 0 }),
        };
        let payload = (&header, &response).to_bytes();
        let decoded = decode_reply_frame(payload.clone(), |x| (x == xid).then_some(op))?;
        prop_assert_eq!(&decoded, &(header, response.clone()));
        prop_assert_eq!((&decoded.0, &decoded.1).to_bytes(), payload.clone());

        let body = &payload[16..];
        for cut in 0..body.len() {
            let result = Response::decode_body(op, &mut &body[..cut]);
            prop_assert!(result.is_err_and(|e| e.is_incomplete()), "cut {}", cut);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..64), op in any::<i32>()) {
        let _ = decode_request_frame(&data[..]);
        let _ = decode_reply_frame(&data[..], |_| OpCode::try_from(op).ok());
        let _ = ConnectRequest::decode(&mut &data[..]);
        let _ = ConnectResponse::decode(&mut &data[..]);
        if let Ok(op) = OpCode::try_from(op) {
            let _ = Request::decode_body(op, &mut &data[..]);
            let _ = Response::decode_body(op, &mut &data[..]);
        }
        let _ = frame::check(&data, frame::DEFAULT_MAX_FRAME_LEN);
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(_)) = frame::parse(&mut buf, 64) {}
    }

    #[test]
    fn arbitrary_bodies_for_every_opcode_never_panic(data in vec(any::<u8>(), 0..96)) {
        for &op in OpCode::ALL {
            let _ = Request::decode_body(op, &mut &data[..]);
            let _ = Response::decode_body(op, &mut &data[..]);
        }
    }
}
