//! `GroupMember`: member sets, payloads, a deleted node re-created, duplicate ids refused,
//! a member whose session expires disappears and is told.

use std::time::Duration;

use zk_recipes::GroupMember;
use zk_testkit::{FaultProxy, wait_until};

use crate::{WAIT, connect, connect_with, start, within};
use zk_testkit::ServerKind;

for_each_server!(members_join_leave_recover_and_expire,);

async fn members_join_leave_recover_and_expire(kind: ServerKind) {
    let server = start(kind).await;
    let cs = server.connect_string();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let admin = connect(&cs).await;
    let path = "/groups/workers";

    let a = GroupMember::join(&connect(&cs).await, path, "a", b"pa")
        .await
        .unwrap();
    let b = GroupMember::join(&connect(&cs).await, path, "b", b"pb")
        .await
        .unwrap();
    let proxied = connect_with(&proxy.addr().to_string(), Duration::from_secs(4)).await;
    let c = GroupMember::join(&proxied, path, "c", b"pc").await.unwrap();
    let members = a.members().await.unwrap();
    assert_eq!(members.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(members["b"], b"pb");
    // Curator's layout: one plain ephemeral node per member id.
    let stat = admin.exists(&format!("{path}/c")).await.unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, proxied.session_id());

    let mut changes = a.changes();
    wait_for_set(&mut changes, &["a", "b", "c"]).await;

    // A second member with the same id (another session) is refused.
    let duplicate = GroupMember::join(&connect(&cs).await, path, "a", b"x").await;
    assert!(duplicate.is_err(), "{duplicate:?}");

    b.leave().await.unwrap();
    wait_for_set(&mut changes, &["a", "c"]).await;

    // Someone deletes c's node: c puts it back.
    admin.delete(&format!("{path}/c"), None).await.unwrap();
    wait_until(WAIT, "c to re-create its node", || {
        let admin = admin.clone();
        async move { admin.exists("/groups/workers/c").await.unwrap().is_some() }
    })
    .await;

    // c's session expires: c is told, the others see it gone.
    let lost = c.lost();
    proxy.stall();
    within("c's loss", lost).await;
    wait_for_set(&mut changes, &["a"]).await;
    drop(c);
    a.leave().await.unwrap();
}

/// Waits until `changes` reports exactly the members `want`.
async fn wait_for_set(changes: &mut zk_recipes::MemberChanges, want: &[&str]) {
    within(&format!("members {want:?}"), async {
        loop {
            let set = changes.next().await.expect("changes ended");
            if set.keys().map(String::as_str).eq(want.iter().copied()) {
                return;
            }
        }
    })
    .await
}
