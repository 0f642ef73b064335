// Client workload for the quorum golden capture (see capture.py next to it).
//
// Reads commands from stdin, one per line, runs them with the official Java client
// (zookeeper.jar 3.8) and answers "OK <command>" (or "ERR <why>" and exits 1) on stdout.
// Every result is checked, so a capture only succeeds when the ensemble behaved.
//
//   phase1 <followerA host:port> <followerB host:port>
//   connect-leader <leader host:port>   (a session on the leader only)
//   stall                                (async create /q/trunc on it; not awaited)
//   phase2 <any member host:port> <rejoined member host:port>
//   quit
//
// Run: java -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar QuorumSession.java

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class QuorumSession {
    static final int TIMEOUT_MS = 10000;

    static ZooKeeper connect(String hosts, long sessionId, byte[] passwd) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        Watcher w = e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        };
        ZooKeeper zk = passwd == null
            ? new ZooKeeper(hosts, TIMEOUT_MS, w)
            : new ZooKeeper(hosts, TIMEOUT_MS, w, sessionId, passwd);
        if (!connected.await(60, TimeUnit.SECONDS)) {
            throw new IllegalStateException("no connection to " + hosts);
        }
        return zk;
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException("check failed: " + what);
        }
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static void phase1(String followerA, String followerB) throws Exception {
        ZooKeeper zk = connect(followerA, 0, null);
        zk.create("/q", b("hello"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/q/eph", b("e"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        String seq = zk.create("/q/seq-", null, ZooDefs.Ids.OPEN_ACL_UNSAFE,
            CreateMode.PERSISTENT_SEQUENTIAL);
        check(seq.startsWith("/q/seq-"), "sequential name " + seq);
        zk.create("/q/c", b(""), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER);
        zk.create("/q/c/kid", b("k"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/q/ttl", b("t"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL,
            null, 60000);
        Stat st = zk.setData("/q", b("world"), 0);
        check(st.getVersion() == 1, "setData version");
        zk.setACL("/q/c/kid", ZooDefs.Ids.READ_ACL_UNSAFE, -1);
        try {
            zk.create("/q", b("again"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            check(false, "NODEEXISTS expected");
        } catch (KeeperException.NodeExistsException expected) {
            // An error txn goes through the quorum.
        }
        List<OpResult> results = zk.multi(Arrays.asList(
            Op.create("/q/m1", b("m"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
            Op.setData("/q/m1", b("m2"), -1),
            Op.check("/q", 1),
            Op.delete(seq, -1)));
        check(results.size() == 4, "multi results");
        try {
            zk.multi(Arrays.asList(
                Op.create("/q/m2", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.check("/q", 99),
                Op.delete("/q/eph", -1)));
            check(false, "BADVERSION expected");
        } catch (KeeperException.BadVersionException expected) {
            // A failed multi: a multi txn of error txns.
        }
        zk.delete("/q/m1", -1);
        zk.sync("/q", (rc, path, ctx) -> { }, null);
        check(zk.exists("/q/m1", false) == null, "m1 deleted");

        // A second session through the other follower; its close deletes its ephemeral.
        ZooKeeper zk2 = connect(followerB, 0, null);
        zk2.create("/q/eph2", b("e2"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        zk2.close();
        check(zk.exists("/q/eph2", false) == null, "eph2 gone after close");

        // A session moving to the other follower: that follower asks the leader (REVALIDATE).
        ZooKeeper zk3 = connect(followerA, 0, null);
        long id = zk3.getSessionId();
        byte[] pw = zk3.getSessionPasswd();
        ZooKeeper moved = connect(followerB, id, pw);
        check(moved.getSessionId() == id, "same session after the move");
        moved.create("/q/moved", b("mv"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        moved.close();
        zk3.close();
        // Keep the first session (and its ephemeral /q/eph) open across the leader restart.
        kept = zk;
    }

    static ZooKeeper kept;
    static ZooKeeper stalled;

    static void phase2(String any, String rejoined) throws Exception {
        // The stalled write was never committed: nobody has /q/trunc.
        check(kept.exists("/q/trunc", false) == null, "uncommitted /q/trunc is gone");
        stalled.close(1000);
        // The kept session failed over on its own; its ephemeral must still be there.
        check(kept.exists("/q/eph", false) != null, "ephemeral survived the failover");
        kept.setData("/q", b("after"), -1);
        ZooKeeper zk = connect(any, 0, null);
        zk.create("/q/after", b("a"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        // Writes through the member that was restarted (now a follower).
        ZooKeeper zr = connect(rejoined, 0, null);
        zr.setData("/q/after", b("b"), 0);
        zr.delete("/q/after", 1);
        // Emptying the container lets the leader's container reaper delete it
        // (deleteContainer txn, session 0).
        zr.delete("/q/c/kid", -1);
        long deadline = System.currentTimeMillis() + 60000;
        while (zr.exists("/q/c", false) != null) {
            check(System.currentTimeMillis() < deadline, "container /q/c reaped");
            Thread.sleep(100);
        }
        zr.close();
        zk.close();
        kept.close();
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] cmd = line.trim().split("\\s+");
            try {
                switch (cmd[0]) {
                    case "phase1": phase1(cmd[1], cmd[2]); break;
                    case "connect-leader": stalled = connect(cmd[1], 0, null); break;
                    case "stall":
                        stalled.create("/q/trunc", b("never committed"), ZooDefs.Ids.OPEN_ACL_UNSAFE,
                            CreateMode.PERSISTENT, (rc, path, ctx, name) -> { }, null);
                        break;
                    case "phase2": phase2(cmd[1], cmd[2]); break;
                    case "quit": System.out.println("OK quit"); System.out.flush(); return;
                    default: throw new IllegalArgumentException("unknown command " + cmd[0]);
                }
                System.out.println("OK " + cmd[0]);
                System.out.flush();
            } catch (Exception e) {
                e.printStackTrace();
                System.out.println("ERR " + e);
                System.out.flush();
                System.exit(1);
            }
        }
    }
}
