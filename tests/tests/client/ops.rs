//! Every operation, its error paths, chroot, multi, pipelining and size limits.

use std::time::Duration;

use futures::future::join_all;
use zk_client::proto::records::{Acl, Id, Stat};
use zk_client::{CreateMode, CreateOptions, Error, Op, OpResult, Perms, ReadOp, ReadResult};
use zk_testkit::{ServerKind, ServerOptions};

use crate::{connect, start_server, within};

for_each_server!(
    every_operation_and_its_errors,
    multi_is_atomic_and_reports_the_failing_op,
    chroot_applies_everywhere,
    ten_thousand_pipelined_requests_complete_in_order,
    data_over_the_limit_fails_cleanly,
    stat_bookkeeping_follows_apache,
    error_precedence_follows_apache,
);

fn opts(mode: CreateMode) -> CreateOptions {
    CreateOptions::new(mode)
}

async fn every_operation_and_its_errors(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new().extended_types(true)).await;
    let client = connect(&server.connect_string()).await;
    let persistent = opts(CreateMode::Persistent);

    // create in every mode, returning path and stat
    let (path, stat) = client.create("/a", b"one", &persistent).await.unwrap();
    assert_eq!(path, "/a");
    assert_eq!((stat.version, stat.data_length), (0, 3));
    let (eph, stat) = client
        .create("/a/eph", b"", opts(CreateMode::Ephemeral))
        .await
        .unwrap();
    assert_eq!(stat.ephemeral_owner, client.session_id());
    let (seq, _) = client
        .create("/a/seq-", b"", opts(CreateMode::PersistentSequential))
        .await
        .unwrap();
    assert_eq!(seq, "/a/seq-0000000001");
    let (eseq, _) = client
        .create("/a/eseq-", b"", opts(CreateMode::EphemeralSequential))
        .await
        .unwrap();
    assert_eq!(eseq, "/a/eseq-0000000002");
    let (container, stat) = client
        .create("/c", b"", opts(CreateMode::Container))
        .await
        .unwrap();
    assert_eq!((container.as_str(), stat.ephemeral_owner), ("/c", 0));
    let ttl = opts(CreateMode::PersistentWithTtl).ttl(Duration::from_secs(3600));
    let (ttl_path, _) = client.create("/ttl", b"t", &ttl).await.unwrap();
    assert_eq!(ttl_path, "/ttl");
    let seq_ttl = opts(CreateMode::PersistentSequentialWithTtl).ttl(Duration::from_secs(3600));
    let (seq_ttl_path, _) = client.create("/ttl/s-", b"", &seq_ttl).await.unwrap();
    assert!(seq_ttl_path.starts_with("/ttl/s-"));

    // create errors
    assert_eq!(
        client.create("/a", b"", &persistent).await,
        Err(Error::NodeExists)
    );
    assert_eq!(
        client.create("/missing/x", b"", &persistent).await,
        Err(Error::NoNode)
    );
    assert_eq!(
        client
            .create(&format!("{eph}/child"), b"", &persistent)
            .await,
        Err(Error::NoChildrenForEphemerals)
    );
    assert!(matches!(
        client.create("no-slash", b"", &persistent).await,
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        client.create("/a/", b"", &persistent).await,
        Err(Error::InvalidPath { .. })
    ));

    // exists / get / set
    let stat = client.exists("/a").await.unwrap().unwrap();
    assert_eq!(stat.num_children, 3);
    assert_eq!(client.exists("/nope").await.unwrap(), None);
    let (data, _) = client.get_data("/a").await.unwrap();
    assert_eq!(&data[..], b"one");
    assert_eq!(client.get_data("/nope").await, Err(Error::NoNode));
    let stat = client.set_data("/a", b"two", Some(0)).await.unwrap();
    assert_eq!(stat.version, 1);
    assert_eq!(
        client.set_data("/a", b"three", Some(0)).await,
        Err(Error::BadVersion)
    );
    assert_eq!(
        client.set_data("/nope", b"", None).await,
        Err(Error::NoNode)
    );
    let stat = client.set_data("/a", b"three", None).await.unwrap();
    assert_eq!(stat.version, 2);

    // children
    let mut children = client.get_children("/a").await.unwrap();
    children.sort();
    assert_eq!(children, ["eph", "eseq-0000000002", "seq-0000000001"]);
    let (children, stat) = client.get_children_with_stat("/a").await.unwrap();
    assert_eq!((children.len(), stat.num_children), (3, 3));
    assert_eq!(client.get_children("/nope").await, Err(Error::NoNode));
    assert_eq!(client.get_all_children_number("/a").await, Ok(3));
    let mut ephemerals = client.get_ephemerals("/").await.unwrap();
    ephemerals.sort();
    assert_eq!(ephemerals, [eph.clone(), eseq.clone()]);
    assert_eq!(
        client.get_ephemerals("/a/eph").await.unwrap(),
        [eph.as_str()]
    );

    // delete
    assert_eq!(client.delete("/a", None).await, Err(Error::NotEmpty));
    assert_eq!(client.delete(&seq, Some(5)).await, Err(Error::BadVersion));
    client.delete(&seq, Some(0)).await.unwrap();
    assert_eq!(client.delete(&seq, None).await, Err(Error::NoNode));

    // sync, whoAmI, config
    client.sync("/a").await.unwrap();
    let who = client.who_am_i().await.unwrap();
    assert!(who.iter().any(|c| c.auth_scheme == "ip"), "{who:?}");
    let (_config, _stat) = client.get_config().await.unwrap();
    let change = zk_client::Reconfig {
        leaving: Some("9".into()),
        ..Default::default()
    };
    assert_eq!(client.reconfig(&change).await, Err(Error::ReconfigDisabled));

    // ACLs: a digest-only node, NoAuth for others until they add_auth
    let digest_acl = vec![Acl::new(
        Perms::ALL,
        Id::new("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="),
    )];
    // base64(sha1("alice:secret")), as DigestAuthenticationProvider computes it
    let (acl, _) = client.get_acl("/a").await.unwrap();
    assert_eq!(acl, *zk_client::proto::records::OPEN_ACL_UNSAFE);
    assert_eq!(
        client.set_acl("/a", &digest_acl, Some(3)).await,
        Err(Error::BadVersion)
    );
    client.set_acl("/a", &digest_acl, Some(0)).await.unwrap();
    // Now even ADMIN is gone for this unauthenticated session.
    assert_eq!(
        client.set_acl("/a", &digest_acl, None).await,
        Err(Error::NoAuth)
    );
    assert_eq!(client.get_data("/a").await, Err(Error::NoAuth));
    assert_eq!(
        client.set_acl("/a", &[], None).await,
        Err(Error::InvalidAcl)
    );
    let other = connect(&server.connect_string()).await;
    assert_eq!(other.get_data("/a").await, Err(Error::NoAuth));
    other.add_auth("digest", b"alice:secret").await.unwrap();
    let (data, _) = other.get_data("/a").await.unwrap();
    assert_eq!(&data[..], b"three");
    let who = other.who_am_i().await.unwrap();
    assert!(
        who.iter()
            .any(|c| c.auth_scheme == "digest" && c.user == "alice"),
        "{who:?}"
    );
    other.close().await;

    client.close().await;
    assert_eq!(client.exists("/").await, Err(Error::Closed));
}

async fn multi_is_atomic_and_reports_the_failing_op(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let client = connect(&server.connect_string()).await;
    let persistent = opts(CreateMode::Persistent);
    client.create("/m", b"0", &persistent).await.unwrap();

    let results = client
        .transaction()
        .check("/m", Some(0))
        .create("/m/a", b"a", &persistent)
        .create("/m/s-", b"", opts(CreateMode::PersistentSequential))
        .set_data("/m", b"1", Some(0))
        .delete("/m/a", None)
        .commit()
        .await
        .unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0], OpResult::Check);
    // Apache reads a create2 inside a multi as a plain create (MultiOperationRecord makes
    // every create an `Op.create`) and answers with the path only: no stat.
    let no_stat = Stat::default();
    assert!(
        matches!(&results[1], OpResult::Create { path, stat } if path == "/m/a" && *stat == no_stat)
    );
    assert!(
        matches!(&results[2], OpResult::Create { path, stat } if path == "/m/s-0000000001" && *stat == no_stat)
    );
    assert!(matches!(&results[3], OpResult::SetData { stat } if stat.version == 1));
    assert_eq!(results[4], OpResult::Delete);

    // A failing op: nothing applied, the first error and its index reported.
    let err = client
        .multi(&[
            Op::Create {
                path: "/m/b".into(),
                data: "b".into(),
                options: persistent.clone(),
            },
            Op::SetData {
                path: "/m".into(),
                data: "2".into(),
                version: Some(0),
            },
            Op::Delete {
                path: "/m/none".into(),
                version: None,
            },
        ])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Transaction {
            index: 1,
            source: Box::new(Error::BadVersion)
        }
    );
    assert_eq!(client.exists("/m/b").await.unwrap(), None);
    // A container create inside a multi is answered with its stat.
    let results = client
        .transaction()
        .create("/m/box", b"", opts(CreateMode::Container))
        .commit()
        .await
        .unwrap();
    let box_stat = client.exists("/m/box").await.unwrap().unwrap();
    assert!(
        matches!(&results[0], OpResult::Create { path, stat } if path == "/m/box" && *stat == box_stat),
        "{results:?}"
    );
    client.delete("/m/box", None).await.unwrap();
    assert_eq!(&client.get_data("/m").await.unwrap().0[..], b"1");
    assert_eq!(client.multi(&[]).await, Ok(Vec::new()));
    // Bad arguments are caught before sending.
    assert!(matches!(
        client.transaction().check("bad", None).commit().await,
        Err(Error::Transaction { index: 0, .. })
    ));

    // multiRead: each read on its own.
    let results = client
        .multi_read(&[
            ReadOp::GetData("/m".into()),
            ReadOp::GetChildren("/m".into()),
            ReadOp::GetData("/none".into()),
        ])
        .await
        .unwrap();
    assert!(matches!(&results[0], Ok(ReadResult::Data { data, .. }) if &data[..] == b"1"));
    assert_eq!(
        results[1],
        Ok(ReadResult::Children(vec!["s-0000000001".into()]))
    );
    assert_eq!(results[2], Err(Error::NoNode));

    // TTL nodes need extendedTypesEnabled on the server.
    let ttl = opts(CreateMode::PersistentWithTtl).ttl(Duration::from_secs(60));
    assert_eq!(
        client.create("/ttl", b"", &ttl).await,
        Err(Error::Unimplemented)
    );
    // Ephemeral nodes cannot have children, inside a transaction too.
    let err = client
        .transaction()
        .create("/m/e", b"", opts(CreateMode::Ephemeral))
        .create("/m/e/child", b"", &persistent)
        .commit()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Transaction {
            index: 1,
            source: Box::new(Error::NoChildrenForEphemerals)
        }
    );
    assert_eq!(client.exists("/m/e").await.unwrap(), None);
}

async fn chroot_applies_everywhere(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let root = connect(&server.connect_string()).await;
    let persistent = opts(CreateMode::Persistent);
    root.create("/app", b"", &persistent).await.unwrap();
    root.create("/apple", b"", &persistent).await.unwrap();

    let client = connect(&format!("{}/app", server.connect_string())).await;
    assert_eq!(client.chroot().as_str(), Some("/app"));
    let (path, _) = client.create("/x", b"x", &persistent).await.unwrap();
    assert_eq!(path, "/x");
    assert!(root.exists("/app/x").await.unwrap().is_some());
    let (path, _) = client
        .create("/x/e-", b"", opts(CreateMode::EphemeralSequential))
        .await
        .unwrap();
    assert_eq!(path, "/x/e-0000000000");
    root.create("/apple/e", b"", opts(CreateMode::Ephemeral))
        .await
        .unwrap();
    assert_eq!(client.get_ephemerals("/").await.unwrap(), [path.as_str()]);
    assert_eq!(client.get_children("/").await.unwrap(), ["x"]);

    let results = client
        .transaction()
        .create("/y", b"", &persistent)
        .commit()
        .await
        .unwrap();
    assert!(matches!(&results[0], OpResult::Create { path, .. } if path == "/y"));

    // Watch event paths lose the chroot too.
    let (_, _, watcher) = client.get_data_watch("/x").await.unwrap();
    root.set_data("/app/x", b"changed", None).await.unwrap();
    let event = within("the chrooted watch", watcher).await;
    assert_eq!(event.path, "/x");
    assert_eq!(event.event_type, zk_client::EventType::NodeDataChanged);

    // A recursive watch on the chroot sees the subtree only: not /apple (a sibling that
    // shares the prefix), not the chroot's parent.
    let mut tree = client
        .add_watch("/", zk_client::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    root.create("/apple/z", b"", &persistent).await.unwrap();
    root.set_data("/", b"", None).await.unwrap();
    root.create("/app/x/y", b"", &persistent).await.unwrap();
    root.set_data("/app", b"1", None).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = within("the chrooted recursive watch", tree.next())
            .await
            .unwrap();
        seen.push((event.event_type, event.path));
    }
    assert_eq!(
        seen,
        [
            (zk_client::EventType::NodeCreated, "/x/y".to_owned()),
            (zk_client::EventType::NodeDataChanged, "/".to_owned()),
        ]
    );
}

async fn ten_thousand_pipelined_requests_complete_in_order(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let client = connect(&server.connect_string()).await;
    client
        .create("/p", b"", opts(CreateMode::Persistent))
        .await
        .unwrap();
    // Issued one after the other without awaiting: the server must apply them in call
    // order, so the n-th set sees version n.
    let futures: Vec<_> = (0..10_000)
        .map(|i: i32| client.set_data("/p", &i.to_be_bytes(), Some(i)))
        .collect();
    let results = within("10 000 pipelined setData", join_all(futures)).await;
    for (i, result) in results.into_iter().enumerate() {
        let stat = result.unwrap_or_else(|e| panic!("request {i} failed: {e}"));
        assert_eq!(stat.version, i as i32 + 1);
    }
    let (data, stat) = client.get_data("/p").await.unwrap();
    assert_eq!(stat.version, 10_000);
    assert_eq!(&data[..], &9_999i32.to_be_bytes());
}

async fn data_over_the_limit_fails_cleanly(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let client = connect(&server.connect_string()).await;
    let big = vec![7u8; 1024 * 1024 + 1];
    assert!(matches!(
        client
            .create("/big", &big, opts(CreateMode::Persistent))
            .await,
        Err(Error::TooLarge { .. })
    ));
    client
        .create("/big", b"", opts(CreateMode::Persistent))
        .await
        .unwrap();
    assert!(matches!(
        client.set_data("/big", &big, None).await,
        Err(Error::TooLarge { .. })
    ));
    // Just under the server's limit works, and the session is unharmed.
    let large = vec![1u8; 1000 * 1000];
    client.set_data("/big", &large, None).await.unwrap();
    let (data, _) = client.get_data("/big").await.unwrap();
    assert_eq!(data.len(), large.len());
    assert!(client.state().is_connected());

    // A server-side limit (our limit raised above the server's): the server drops the
    // connection, the request fails with connection loss, the session survives.
    let loose = zk_client::Client::builder(server.connect_string())
        .max_request_size(4 * 1024 * 1024)
        .connect_timeout(crate::WAIT)
        .connect()
        .await
        .unwrap();
    let mut changes = loose.state_changes();
    let err = loose.set_data("/big", &big, None).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    crate::wait_state(
        &mut changes,
        "reconnection after the oversized packet",
        |s| s == zk_client::SessionState::Reconnected,
    )
    .await;
    assert!(loose.exists("/big").await.unwrap().is_some());
}

async fn stat_bookkeeping_follows_apache(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let client = connect(&server.connect_string()).await;
    let persistent = opts(CreateMode::Persistent);
    // One session, one writer: every write below takes the next zxid.
    let (_, stat) = client.create("/s", b"abc", &persistent).await.unwrap();
    let z = stat.czxid;
    assert!(z > 0);
    assert_eq!((stat.mzxid, stat.pzxid, stat.ctime), (z, z, stat.mtime));
    assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
    assert_eq!(
        (stat.ephemeral_owner, stat.data_length, stat.num_children),
        (0, 3, 0)
    );

    // A child: the parent's cversion, numChildren and pzxid move, its mzxid does not.
    let (_, child) = client.create("/s/a", b"", &persistent).await.unwrap();
    assert_eq!((child.czxid, child.data_length), (z + 1, 0));
    let stat = client.exists("/s").await.unwrap().unwrap();
    assert_eq!(
        (stat.mzxid, stat.pzxid, stat.cversion, stat.num_children),
        (z, z + 1, 1, 1)
    );
    // setData: version and mzxid; children untouched.
    let stat = client.set_data("/s", b"", None).await.unwrap();
    assert_eq!(
        (
            stat.czxid,
            stat.mzxid,
            stat.pzxid,
            stat.version,
            stat.data_length
        ),
        (z, z + 2, z + 1, 1, 0)
    );
    assert!(stat.mtime >= stat.ctime);
    // Deleting a child bumps cversion again and sets pzxid to the delete's zxid.
    client.delete("/s/a", None).await.unwrap();
    let stat = client.exists("/s").await.unwrap().unwrap();
    assert_eq!(
        (stat.pzxid, stat.cversion, stat.num_children),
        (z + 3, 2, 0)
    );
    // Apache stores a count of child creates, reports cversion as 2 × creates − children
    // (2 above: one create, one delete) and numbers sequential children from the count:
    // this one is 1, not 2.
    let (path, stat) = client
        .create("/s/q-", b"", opts(CreateMode::PersistentSequential))
        .await
        .unwrap();
    assert_eq!((path.as_str(), stat.czxid), ("/s/q-0000000001", z + 4));
    // setACL: aversion only.
    let stat = client
        .set_acl("/s", &zk_client::proto::records::OPEN_ACL_UNSAFE, Some(0))
        .await
        .unwrap();
    assert_eq!(
        (
            stat.mzxid,
            stat.pzxid,
            stat.version,
            stat.cversion,
            stat.aversion
        ),
        (z + 2, z + 4, 1, 3, 1)
    );
    // Containers read as plain nodes; ephemerals name their session.
    let (_, stat) = client
        .create("/c", b"", opts(CreateMode::Container))
        .await
        .unwrap();
    assert_eq!((stat.czxid, stat.ephemeral_owner), (z + 6, 0));
    assert_eq!(client.exists("/c").await.unwrap(), Some(stat));
    let (_, stat) = client
        .create("/e", b"", opts(CreateMode::Ephemeral))
        .await
        .unwrap();
    assert_eq!(stat.ephemeral_owner, client.session_id());
    // The root and /zookeeper: zxid 0, /zookeeper's cversion -2 as Apache builds it.
    let root = client.exists("/").await.unwrap().unwrap();
    assert_eq!(
        (root.czxid, root.mzxid, root.pzxid, root.num_children),
        (0, 0, z + 7, 4)
    );
    let zk = client.exists("/zookeeper").await.unwrap().unwrap();
    assert_eq!(
        (zk.czxid, zk.pzxid, zk.cversion, zk.num_children),
        (0, 0, -2, 2)
    );
    let mut children = client.get_children("/zookeeper").await.unwrap();
    children.sort();
    assert_eq!(children, ["config", "quota"]);
}

async fn error_precedence_follows_apache(kind: ServerKind) {
    let server = start_server(kind, ServerOptions::new()).await;
    let client = connect(&server.connect_string()).await;
    let persistent = opts(CreateMode::Persistent);
    let world = |perms| vec![Acl::new(perms, Id::new("world", "anyone"))];
    client
        .create("/ro", b"", persistent.clone().acl(world(Perms::READ)))
        .await
        .unwrap();
    // create: parent missing, then the parent's CREATE permission, then NodeExists.
    assert_eq!(
        client.create("/nope/x", b"", &persistent).await,
        Err(Error::NoNode)
    );
    assert_eq!(
        client.create("/ro/x", b"", &persistent).await,
        Err(Error::NoAuth)
    );
    assert_eq!(
        client.create("/ro", b"", &persistent).await,
        Err(Error::NodeExists)
    );
    // The ACL is checked before the path exists (fix-up comes first).
    for bad in [
        vec![],
        vec![Acl::new(Perms::ALL, Id::new("auth", ""))],
        vec![Acl::new(Perms::ALL, Id::new("bogus", "x"))],
        vec![Acl::new(Perms::ALL, Id::new("ip", "not-an-ip"))],
    ] {
        assert_eq!(
            client
                .create("/nope/x", b"", persistent.clone().acl(bad.clone()))
                .await,
            Err(Error::InvalidAcl),
            "{bad:?}"
        );
        assert_eq!(
            client.set_acl("/nope", &bad, None).await,
            Err(Error::InvalidAcl),
            "{bad:?}"
        );
    }
    let ip_acl = vec![Acl::new(Perms::ALL, Id::new("ip", "127.0.0.1/8"))];
    client
        .create("/ip", b"ip", persistent.clone().acl(ip_acl))
        .await
        .unwrap();
    assert_eq!(&client.get_data("/ip").await.unwrap().0[..], b"ip");
    // setData checks WRITE before the version; delete checks the parent's DELETE
    // permission (world has it on /) before the version.
    assert_eq!(
        client.set_data("/ro", b"x", Some(9)).await,
        Err(Error::NoAuth)
    );
    assert_eq!(client.delete("/ro", Some(9)).await, Err(Error::BadVersion));
    // The version is checked before emptiness.
    client.create("/d", b"", &persistent).await.unwrap();
    client.create("/d/k", b"", &persistent).await.unwrap();
    assert_eq!(client.delete("/d", Some(5)).await, Err(Error::BadVersion));
    assert_eq!(client.delete("/d", None).await, Err(Error::NotEmpty));
    // Reads: READ is needed for data and children, not for exists or getACL.
    client
        .create("/nr", b"", persistent.clone().acl(world(Perms(30))))
        .await
        .unwrap();
    assert_eq!(client.get_data("/nr").await, Err(Error::NoAuth));
    assert_eq!(client.get_children("/nr").await, Err(Error::NoAuth));
    assert_eq!(
        client.get_all_children_number("/nr").await,
        Err(Error::NoAuth)
    );
    assert!(client.exists("/nr").await.unwrap().is_some());
    assert_eq!(client.get_acl("/nr").await.unwrap().0.len(), 1);
    // Ephemeral parents refuse children before anything else about the child.
    client
        .create("/e", b"", opts(CreateMode::Ephemeral))
        .await
        .unwrap();
    assert_eq!(
        client
            .create("/e/s", b"", opts(CreateMode::EphemeralSequential))
            .await,
        Err(Error::NoChildrenForEphemerals)
    );
    // The system nodes: / and /zookeeper cannot be deleted, /zookeeper/config is read-only.
    assert!(matches!(
        client.delete("/", None).await,
        Err(Error::BadArguments(_))
    ));
    assert!(matches!(
        client.delete("/zookeeper", None).await,
        Err(Error::BadArguments(_))
    ));
    assert_eq!(
        client.set_data("/zookeeper/config", b"", None).await,
        Err(Error::NoAuth)
    );
}
