//! Protected sequential creation: a create whose reply is lost is found again, not repeated.

use std::time::Duration;

use zk_recipes::paths::{self, ProtectedId};
use zk_testkit::{Direction, FaultProxy, wait_until};

use crate::{WAIT, connect, connect_with, start, within};
use zk_testkit::ServerKind;

for_each_server!(a_lost_create_reply_leaves_exactly_one_node,);

async fn a_lost_create_reply_leaves_exactly_one_node(kind: ServerKind) {
    let server = start(kind).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = connect_with(&proxy.addr().to_string(), Duration::from_secs(20)).await;
    let observer = connect(&server.connect_string()).await;
    paths::ensure_path(&client, "/protected").await.unwrap();
    let id = ProtectedId::new();

    // Replies are swallowed: the create reaches the server, its reply never comes back.
    proxy.drop_direction(Direction::ServerToClient);
    let create = tokio::spawn({
        let client = client.clone();
        async move {
            paths::create_protected_sequential(&client, "/protected", "item-", b"x", &id).await
        }
    });
    wait_until(WAIT, "the node to exist on the server", || {
        let observer = observer.clone();
        async move {
            !observer
                .get_children("/protected")
                .await
                .unwrap()
                .is_empty()
        }
    })
    .await;
    // Break the connection: the create fails with an unknown outcome and is looked up.
    proxy.restore();
    proxy.cut_all().await;
    let (path, stat) = within("the protected create", create)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stat.ephemeral_owner, client.session_id());
    let children = observer.get_children("/protected").await.unwrap();
    assert_eq!(children.len(), 1, "{children:?}");
    assert_eq!(format!("/protected/{}", children[0]), path);
    assert!(id.owns(&children[0]));
    assert_eq!(paths::normalize(&children[0]).len(), "item-".len() + 10);
}
