// Drives the official ZooKeeper Java client against zk-server-lite and checks every result.
// Usage: java SmokeClient <host:port>. Prints "java-client: OK" and exits 0 on success.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.Watcher.Event.EventType;
import org.apache.zookeeper.Watcher.Event.KeeperState;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Stat;

public class SmokeClient {
    static final BlockingQueue<String> events = new LinkedBlockingQueue<>();

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError("check failed: " + what);
        }
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static void expectEvent(String expected) throws InterruptedException {
        String got = events.poll(10, TimeUnit.SECONDS);
        check(expected.equals(got), "event " + expected + ", got " + got);
    }

    static void expectError(KeeperException.Code code, ThrowingRunnable r) throws Exception {
        try {
            r.run();
        } catch (KeeperException e) {
            check(e.code() == code, "expected " + code + ", got " + e.code());
            return;
        }
        throw new AssertionError("expected " + code + ", got success");
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    static ZooKeeper connect(String hosts) throws Exception {
        CountDownLatch up = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(hosts, 6000, (WatchedEvent e) -> {
            if (e.getState() == KeeperState.SyncConnected) {
                up.countDown();
            }
        });
        check(up.await(20, TimeUnit.SECONDS), "connected");
        return zk;
    }

    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        Watcher recorder = (WatchedEvent e) -> {
            if (e.getType() != EventType.None) {
                events.add(e.getType() + " " + e.getPath());
            }
        };
        ZooKeeper zk = connect(hosts);

        // create / getData / setData with a data watch
        check("/j".equals(zk.create("/j", b("hello"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT)), "create /j");
        Stat stat = new Stat();
        check(Arrays.equals(b("hello"), zk.getData("/j", recorder, stat)), "getData");
        check(stat.getVersion() == 0 && stat.getDataLength() == 5, "stat of /j");
        Stat after = zk.setData("/j", b("world"), 0);
        check(after.getVersion() == 1 && after.getMzxid() > stat.getMzxid(), "setData stat");
        expectEvent("NodeDataChanged /j");
        expectError(KeeperException.Code.BADVERSION, () -> zk.setData("/j", b("x"), 0));

        // children, sequential and ephemeral nodes, child watch
        check(zk.getChildren("/j", recorder).isEmpty(), "no children");
        String seq = zk.create("/j/s-", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL);
        check("/j/s-0000000000".equals(seq), "sequential name " + seq);
        expectEvent("NodeChildrenChanged /j");
        Stat created = new Stat();
        zk.create("/j/e", b("e"), Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL, created);
        check(created.getEphemeralOwner() == zk.getSessionId(), "ephemeral owner");
        List<String> kids = new ArrayList<>(zk.getChildren("/j", false));
        Collections.sort(kids);
        check(kids.equals(Arrays.asList("e", "s-0000000000")), "children " + kids);
        expectError(KeeperException.Code.NOCHILDRENFOREPHEMERALS,
                () -> zk.create("/j/e/x", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        check(zk.exists("/j/missing", recorder) == null, "exists missing");
        zk.create("/j/missing", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        expectEvent("NodeCreated /j/missing");

        // multi: success, then a failing one that changes nothing
        List<OpResult> ok = zk.multi(Arrays.asList(
                Op.create("/j/m", b("m"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.setData("/j/m", b("m2"), 0),
                Op.check("/j/m", 1),
                Op.delete("/j/missing", -1)));
        check(ok.size() == 4, "multi results");
        check(((OpResult.SetDataResult) ok.get(1)).getStat().getVersion() == 1, "multi setData");
        try {
            zk.multi(Arrays.asList(
                    Op.create("/j/never", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                    Op.check("/j/m", 42)));
            throw new AssertionError("multi should fail");
        } catch (KeeperException e) {
            check(e.code() == KeeperException.Code.BADVERSION, "multi error " + e.code());
            List<OpResult> rs = e.getResults();
            check(rs.size() == 2 && ((OpResult.ErrorResult) rs.get(0)).getErr() == 0, "rolled back results");
        }
        check(zk.exists("/j/never", false) == null, "multi rolled back");

        // persistent recursive watch
        zk.addWatch("/j/m", recorder, AddWatchMode.PERSISTENT_RECURSIVE);
        zk.create("/j/m/deep", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        expectEvent("NodeCreated /j/m/deep");
        zk.setData("/j/m/deep", b("d"), -1);
        expectEvent("NodeDataChanged /j/m/deep");

        // digest auth and ACLs
        zk.addAuthInfo("digest", b("alice:secret"));
        zk.create("/j/private", b("p"), Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT);
        List<ACL> acl = zk.getACL("/j/private", new Stat());
        check(acl.size() == 1 && acl.get(0).getId().getScheme().equals("digest")
                && acl.get(0).getId().getId().startsWith("alice:"), "acl " + acl);
        ZooKeeper other = connect(hosts);
        expectError(KeeperException.Code.NOAUTH, () -> other.getData("/j/private", false, null));

        // counts, ephemerals, sync, config
        check(zk.getAllChildrenNumber("/j") == 5, "all children " + zk.getAllChildrenNumber("/j"));
        check(zk.getEphemerals().equals(Collections.singletonList("/j/e")), "ephemerals");
        CountDownLatch synced = new CountDownLatch(1);
        zk.sync("/j", (rc, path, ctx) -> synced.countDown(), null);
        check(synced.await(10, TimeUnit.SECONDS), "sync");
        check(zk.getConfig(false, null).length == 0, "empty standalone config");

        // delete errors and success
        expectError(KeeperException.Code.NONODE, () -> zk.delete("/j/nope", -1));
        expectError(KeeperException.Code.NOTEMPTY, () -> zk.delete("/j", -1));
        expectError(KeeperException.Code.BADVERSION, () -> zk.delete("/j/s-0000000000", 3));
        zk.delete("/j/s-0000000000", 0);

        // the other session sees the ephemeral vanish when this one closes
        check(other.exists("/j/e", recorder) != null, "ephemeral visible");
        long sid = zk.getSessionId();
        zk.close();
        expectEvent("NodeDeleted /j/e");
        check(other.getSessionId() != sid, "distinct sessions");
        other.close();
        System.out.println("java-client: OK");
    }
}
