// Drives the official ZooKeeper 3.8 Java client through the recording proxy so that
// zk-proto gets golden frames for every client opcode.  Written for this repository;
// it only calls the public client API.
//
// Usage: java GoldenSession <proxyHost:port> <directHost:port> <goFile>
//   proxyHost:port  - the recording proxy (the recorded session goes through it)
//   directHost:port - the ZooKeeper server itself (a second, unrecorded handle used to
//                     change nodes while the recorded client is cut off)
//   goFile          - created to tell the proxy to let the recorded client reconnect
//
// Exits 0 when every step behaved as asserted, non-zero otherwise.

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.KeeperException.Code;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.Watcher.Event.EventType;
import org.apache.zookeeper.Watcher.Event.KeeperState;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooDefs.Perms;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.admin.ZooKeeperAdmin;
import org.apache.zookeeper.client.ZKClientConfig;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;

public class GoldenSession {

    static final int SESSION_TIMEOUT_MS = 6000;
    static final long EVENT_WAIT_MS = 5000;
    static final List<ACL> OPEN = Ids.OPEN_ACL_UNSAFE;

    // Every watch event seen by any watcher of the recorded client, tagged with the
    // watcher's label; awaitEvent() consumes matching entries.
    static final List<String> events = new ArrayList<>();

    static volatile CountDownLatch connected = new CountDownLatch(1);
    static volatile CountDownLatch disconnected = new CountDownLatch(1);

    static ZooKeeperAdmin zk;     // recorded, through the proxy
    static ZooKeeper direct;      // unrecorded, straight to the server
    static Path goFile;
    static int step = 0;

    static void log(String s) {
        System.out.println("[golden] " + s);
        System.out.flush();
    }

    static void fail(String s) {
        throw new AssertionError(s);
    }

    static void check(boolean cond, String what) {
        if (!cond) {
            fail("check failed: " + what);
        }
    }

    static void section(String s) {
        step++;
        log(String.format("%02d %s", step, s));
    }

    static String key(String label, EventType type, String path) {
        return label + " " + type + " " + path;
    }

    static Watcher watcher(final String label) {
        return new Watcher() {
            @Override
            public void process(WatchedEvent e) {
                record(label, e);
            }
        };
    }

    static void record(String label, WatchedEvent e) {
        if (e.getType() == EventType.None) {
            return; // state changes are handled by the default watcher
        }
        synchronized (events) {
            events.add(key(label, e.getType(), e.getPath()));
            events.notifyAll();
        }
    }

    static void awaitEvent(String label, EventType type, String path) throws InterruptedException {
        String k = key(label, type, path);
        long deadline = System.currentTimeMillis() + EVENT_WAIT_MS;
        synchronized (events) {
            while (!events.remove(k)) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    fail("event not received: " + k + "; pending events: " + events);
                }
                events.wait(left);
            }
        }
        log("   event ok: " + k);
    }

    interface Action {
        void run() throws Exception;
    }

    static void expectError(Code code, Action a) throws Exception {
        try {
            a.run();
        } catch (KeeperException e) {
            check(e.code() == code, "expected " + code + " but got " + e.code() + " (" + e + ")");
            log("   expected error ok: " + code + " (" + code.intValue() + ")");
            return;
        }
        fail("expected " + code + " but the call succeeded");
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String s(byte[] d) {
        return d == null ? null : new String(d, StandardCharsets.UTF_8);
    }

    // Cut the recorded connection via the proxy cue, run `outage` through the direct
    // handle while the recorded client is disconnected, then let it reconnect.
    static void cutAndReconnect(String cuePath, boolean useCreate2, Action outage) throws Exception {
        disconnected = new CountDownLatch(1);
        connected = new CountDownLatch(1);
        if (useCreate2) {
            zk.create(cuePath, null, OPEN, CreateMode.EPHEMERAL, new Stat());
        } else {
            zk.create(cuePath, null, OPEN, CreateMode.EPHEMERAL);
        }
        check(disconnected.await(EVENT_WAIT_MS, TimeUnit.MILLISECONDS), "Disconnected after proxy cut");
        log("   disconnected by the proxy; changing nodes through the direct handle");
        outage.run();
        Files.write(goFile, b("go\n"));
        check(connected.await(10000, TimeUnit.MILLISECONDS), "SyncConnected after reconnect");
        log("   reconnected (same session 0x" + Long.toHexString(zk.getSessionId()) + ")");
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: GoldenSession <proxyHost:port> <directHost:port> <goFile>");
            System.exit(64);
        }
        // Hard upper bound on the run time.
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(30000);
                System.err.println("[golden] watchdog: session took longer than 30 s, aborting");
                Runtime.getRuntime().halt(3);
            } catch (InterruptedException ignored) {
                // normal exit
            }
        });
        watchdog.setDaemon(true);
        watchdog.start();
        int rc = 1;
        try {
            run(args[0], args[1], Paths.get(args[2]));
            rc = 0;
        } catch (Throwable t) {
            System.err.println("[golden] FAILED at step " + step + ": " + t);
            t.printStackTrace();
        } finally {
            try {
                if (direct != null) {
                    direct.close();
                }
            } catch (Throwable ignored) {
                // best effort
            }
        }
        System.exit(rc);
    }

    // The JVM may carry a JAAS file (for the SASL session at the end); the main and the
    // direct handle must not attempt SASL, so that conn 1..3 hold no opcode-102 frames.
    static ZKClientConfig noSasl() {
        ZKClientConfig c = new ZKClientConfig();
        c.setProperty(ZKClientConfig.ENABLE_CLIENT_SASL_KEY, "false");
        return c;
    }

    // A second, short recorded session (a new TCP connection on the proxy, after the main
    // session closed) that authenticates with SASL DIGEST-MD5: opcode 102 frames.
    static void saslSession(String proxy, String loginContext) throws Exception {
        section("SASL DIGEST-MD5 session (opcode 102), login context " + loginContext);
        ZKClientConfig c = new ZKClientConfig();
        c.setProperty(ZKClientConfig.ENABLE_CLIENT_SASL_KEY, "true");
        c.setProperty(ZKClientConfig.LOGIN_CONTEXT_NAME_KEY, loginContext);
        CountDownLatch up = new CountDownLatch(1);
        CountDownLatch saslOk = new CountDownLatch(1);
        ZooKeeper sz = new ZooKeeper(proxy, SESSION_TIMEOUT_MS, e -> {
            if (e.getState() == KeeperState.SyncConnected) {
                up.countDown();
            } else if (e.getState() == KeeperState.SaslAuthenticated) {
                saslOk.countDown();
            } else if (e.getState() == KeeperState.AuthFailed) {
                log("   SASL AuthFailed event");
            }
        }, c);
        try {
            check(up.await(10, TimeUnit.SECONDS), "SASL session connected");
            check(saslOk.await(10, TimeUnit.SECONDS), "SaslAuthenticated event");
            List<ClientInfo> who = sz.whoAmI();
            log("   whoAmI: " + who);
            boolean hasSasl = false;
            for (ClientInfo ci : who) {
                hasSasl |= ci.getAuthScheme().equals("sasl");
            }
            check(hasSasl, "whoAmI lists a sasl identity");
            check("golden".equals(s(sz.getData("/golden", false, null))), "getData over SASL session");
        } finally {
            sz.close();
        }
    }

    static void run(String proxy, String server, Path go) throws Exception {
        goFile = go;
        Files.deleteIfExists(goFile);

        // The unrecorded handle first, so the recorded session is the only one on the proxy.
        CountDownLatch directUp = new CountDownLatch(1);
        direct = new ZooKeeper(server, SESSION_TIMEOUT_MS, e -> {
            if (e.getState() == KeeperState.SyncConnected) {
                directUp.countDown();
            }
        }, noSasl());
        check(directUp.await(10, TimeUnit.SECONDS), "direct handle connected");

        section("connect (ConnectRequest with readOnly byte, ConnectResponse)");
        zk = new ZooKeeperAdmin(proxy, SESSION_TIMEOUT_MS, e -> {
            if (e.getType() == EventType.None) {
                if (e.getState() == KeeperState.SyncConnected) {
                    connected.countDown();
                } else if (e.getState() == KeeperState.Disconnected) {
                    disconnected.countDown();
                }
            } else {
                record("default", e);
            }
        }, noSasl());
        check(connected.await(10, TimeUnit.SECONDS), "recorded client connected");
        log("   session 0x" + Long.toHexString(zk.getSessionId())
            + " negotiated timeout " + zk.getSessionTimeout());

        section("whoAmI before any auth (opcode 107)");
        List<ClientInfo> who = zk.whoAmI();
        log("   whoAmI: " + who);
        check(who.size() == 1 && who.get(0).getAuthScheme().equals("ip"), "whoAmI = [ip]");

        section("create, every mode, plain create (opcode 1)");
        check(zk.create("/golden", b("golden"), OPEN, CreateMode.PERSISTENT).equals("/golden"), "create /golden");
        check(zk.create("/golden/null", null, OPEN, CreateMode.PERSISTENT).equals("/golden/null"), "null data");
        check(zk.create("/golden/empty", new byte[0], OPEN, CreateMode.PERSISTENT).equals("/golden/empty"),
              "empty data");
        check(zk.create("/golden/eph", b("e"), OPEN, CreateMode.EPHEMERAL).equals("/golden/eph"), "ephemeral");
        String pseq = zk.create("/golden/pseq-", b("ps"), OPEN, CreateMode.PERSISTENT_SEQUENTIAL);
        check(pseq.matches("/golden/pseq-\\d{10}"), "persistent sequential name " + pseq);
        String eseq = zk.create("/golden/eseq-", null, OPEN, CreateMode.EPHEMERAL_SEQUENTIAL);
        check(eseq.matches("/golden/eseq-\\d{10}"), "ephemeral sequential name " + eseq);

        section("create(..., Stat), every mode (opcode 15 create2)");
        Stat st = new Stat();
        check(zk.create("/golden/c2", b("c2-data"), OPEN, CreateMode.PERSISTENT, st).equals("/golden/c2"), "c2");
        check(st.getDataLength() == 7 && st.getVersion() == 0, "create2 stat");
        st = new Stat();
        zk.create("/golden/c2-null", null, OPEN, CreateMode.PERSISTENT, st);
        check(st.getDataLength() == 0, "create2 null data stat");
        st = new Stat();
        zk.create("/golden/c2-eph", b("x"), OPEN, CreateMode.EPHEMERAL, st);
        check(st.getEphemeralOwner() == zk.getSessionId(), "create2 ephemeral owner");
        String c2pseq = zk.create("/golden/c2-pseq-", b("y"), OPEN, CreateMode.PERSISTENT_SEQUENTIAL, new Stat());
        check(c2pseq.matches("/golden/c2-pseq-\\d{10}"), "create2 persistent sequential");
        String c2eseq = zk.create("/golden/c2-eseq-", null, OPEN, CreateMode.EPHEMERAL_SEQUENTIAL, new Stat());
        check(c2eseq.matches("/golden/c2-eseq-\\d{10}"), "create2 ephemeral sequential");

        section("create errors: NODEEXISTS (1 and 15), NONODE parent (1), NOCHILDRENFOREPHEMERALS");
        expectError(Code.NODEEXISTS, () -> zk.create("/golden", null, OPEN, CreateMode.PERSISTENT));
        expectError(Code.NODEEXISTS, () -> zk.create("/golden/c2", null, OPEN, CreateMode.PERSISTENT, new Stat()));
        expectError(Code.NONODE, () -> zk.create("/golden/no/such/parent", null, OPEN, CreateMode.PERSISTENT));
        expectError(Code.NOCHILDRENFOREPHEMERALS,
                    () -> zk.create("/golden/eph/child", null, OPEN, CreateMode.PERSISTENT));

        section("createContainer (opcode 19, plain and Stat variant)");
        check(zk.create("/golden/container", b("box"), OPEN, CreateMode.CONTAINER).equals("/golden/container"),
              "container");
        zk.create("/golden/container/item", null, OPEN, CreateMode.PERSISTENT);
        st = new Stat();
        zk.create("/golden/container2", null, OPEN, CreateMode.CONTAINER, st);
        check(st.getEphemeralOwner() == 0, "container stat");

        section("createTTL (opcode 21): persistent-with-TTL and persistent-sequential-with-TTL");
        st = new Stat();
        zk.create("/golden/ttl", b("ttl"), OPEN, CreateMode.PERSISTENT_WITH_TTL, st, 60000L);
        check(st.getVersion() == 0, "ttl stat");
        String ttlseq = zk.create("/golden/ttlseq-", null, OPEN, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL,
                                  new Stat(), 3600000L);
        check(ttlseq.matches("/golden/ttlseq-\\d{10}"), "ttl sequential name");

        section("exists (opcode 3): present, present with watch, missing with watch");
        Stat es = zk.exists("/golden", false);
        check(es != null && es.getDataLength() == 6, "exists /golden");
        zk.create("/golden/w", null, OPEN, CreateMode.PERSISTENT);
        zk.create("/golden/w/data", b("v0"), OPEN, CreateMode.PERSISTENT);
        check(zk.exists("/golden/w/data", watcher("exists")) != null, "exists with watch");
        check(zk.exists("/golden/w/notyet", watcher("exists")) == null, "missing with watch");

        section("getData (opcode 4) with watch; setData (opcode 5) good -> NodeDataChanged, bad version");
        Stat gs = new Stat();
        byte[] d = zk.getData("/golden/w/data", watcher("data"), gs);
        check("v0".equals(s(d)) && gs.getVersion() == 0, "getData v0");
        check(zk.getData("/golden/null", false, null) == null, "getData null data -> null buffer");
        check(zk.getData("/golden/empty", false, null).length == 0, "getData empty data");
        Stat ss = zk.setData("/golden/w/data", b("v1"), 0);
        check(ss.getVersion() == 1, "setData version 1");
        awaitEvent("exists", EventType.NodeDataChanged, "/golden/w/data");
        awaitEvent("data", EventType.NodeDataChanged, "/golden/w/data");
        expectError(Code.BADVERSION, () -> zk.setData("/golden/w/data", b("bad"), 7));
        expectError(Code.NONODE, () -> zk.setData("/golden/w/missing", b("x"), -1));
        expectError(Code.NONODE, () -> zk.getData("/golden/w/missing", false, null));

        section("exists watch fires NodeCreated");
        zk.create("/golden/w/notyet", b("now"), OPEN, CreateMode.PERSISTENT);
        awaitEvent("exists", EventType.NodeCreated, "/golden/w/notyet");

        section("getChildren (8) with watch, getChildren2 (12) with Stat -> NodeChildrenChanged");
        zk.create("/golden/w/kids", null, OPEN, CreateMode.PERSISTENT);
        zk.create("/golden/w/kids/a", null, OPEN, CreateMode.PERSISTENT);
        List<String> kids = zk.getChildren("/golden/w/kids", watcher("children"));
        check(kids.equals(Arrays.asList("a")), "getChildren = [a]");
        Stat cs = new Stat();
        List<String> kids2 = zk.getChildren("/golden/w/kids", watcher("children2"), cs);
        check(kids2.equals(Arrays.asList("a")) && cs.getNumChildren() == 1, "getChildren2 stat");
        zk.create("/golden/w/kids/b", b("b"), OPEN, CreateMode.PERSISTENT);
        awaitEvent("children", EventType.NodeChildrenChanged, "/golden/w/kids");
        awaitEvent("children2", EventType.NodeChildrenChanged, "/golden/w/kids");
        expectError(Code.NONODE, () -> zk.getChildren("/golden/w/missing", false));
        expectError(Code.NONODE, () -> zk.getChildren("/golden/w/missing", false, new Stat()));
        List<String> emptyKids = zk.getChildren("/golden/null", false);
        check(emptyKids.isEmpty(), "getChildren of a leaf = []");

        section("getData + getChildren watches fire NodeDeleted on delete (opcode 2)");
        zk.create("/golden/w/gone", b("bye"), OPEN, CreateMode.PERSISTENT);
        zk.getData("/golden/w/gone", watcher("data"), null);
        zk.getChildren("/golden/w/gone", watcher("children"));
        zk.delete("/golden/w/gone", -1);
        awaitEvent("data", EventType.NodeDeleted, "/golden/w/gone");
        awaitEvent("children", EventType.NodeDeleted, "/golden/w/gone");

        section("delete: good version, bad version, missing, not empty");
        zk.create("/golden/del", null, OPEN, CreateMode.PERSISTENT);
        expectError(Code.BADVERSION, () -> zk.delete("/golden/del", 5));
        zk.delete("/golden/del", 0);
        expectError(Code.NONODE, () -> zk.delete("/golden/del", -1));
        expectError(Code.NOTEMPTY, () -> zk.delete("/golden/w/kids", -1));

        section("getACL (6), setACL (7) good and bad version");
        Stat as = new Stat();
        List<ACL> acl = zk.getACL("/golden", as);
        check(acl.equals(OPEN) && as.getAversion() == 0, "getACL /golden = OPEN");
        zk.create("/golden/acl", b("acl"), OPEN, CreateMode.PERSISTENT);
        List<ACL> readWrite = new ArrayList<>();
        readWrite.add(new ACL(Perms.READ | Perms.WRITE | Perms.DELETE | Perms.ADMIN, Ids.ANYONE_ID_UNSAFE));
        readWrite.add(new ACL(Perms.READ, new Id("ip", "127.0.0.1")));
        Stat sa = zk.setACL("/golden/acl", readWrite, 0);
        check(sa.getAversion() == 1, "setACL aversion 1");
        expectError(Code.BADVERSION, () -> zk.setACL("/golden/acl", OPEN, 0));
        check(zk.getACL("/golden/acl", new Stat()).equals(readWrite), "getACL after setACL");
        expectError(Code.NONODE, () -> zk.getACL("/golden/acl-missing", new Stat()));
        expectError(Code.NOAUTH, () -> zk.create("/golden/acl/child", null, OPEN, CreateMode.PERSISTENT));

        section("addAuthInfo digest (xid -4, opcode 100), CREATOR_ALL_ACL node, whoAmI after auth");
        zk.addAuthInfo("digest", b("golden:secret"));
        zk.create("/golden/mine", b("mine"), Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT);
        List<ACL> mine = zk.getACL("/golden/mine", new Stat());
        check(mine.size() == 1 && mine.get(0).getId().getScheme().equals("digest")
              && mine.get(0).getId().getId().startsWith("golden:"), "CREATOR_ALL_ACL became digest:golden:...");
        check("mine".equals(s(zk.getData("/golden/mine", false, null))), "authorised read");
        who = zk.whoAmI();
        log("   whoAmI: " + who);
        check(who.size() == 2, "whoAmI = [ip, digest]");

        section("NOAUTH: node readable only by digest other:pw");
        String otherId = DigestAuthenticationProvider.generateDigest("other:pw");
        List<ACL> otherOnly = Collections.singletonList(new ACL(Perms.ALL, new Id("digest", otherId)));
        zk.create("/golden/secret", b("secret"), otherOnly, CreateMode.PERSISTENT);
        expectError(Code.NOAUTH, () -> zk.getData("/golden/secret", false, null));
        expectError(Code.NOAUTH, () -> zk.setData("/golden/secret", b("x"), -1));
        expectError(Code.NOAUTH, () -> zk.getACL("/golden/secret", new Stat()).size());
        check(zk.exists("/golden/secret", false) != null, "exists needs no permission");

        section("getAllChildrenNumber (104), getEphemerals (103) with and without prefix");
        int all = zk.getAllChildrenNumber("/golden");
        log("   getAllChildrenNumber(/golden) = " + all);
        check(all > 20, "getAllChildrenNumber");
        List<String> ephs = zk.getEphemerals();
        log("   getEphemerals() = " + ephs);
        check(ephs.contains("/golden/eph") && ephs.contains(eseq) && ephs.contains("/golden/c2-eph"),
              "getEphemerals()");
        List<String> ephC2 = zk.getEphemerals("/golden/c2");
        log("   getEphemerals(/golden/c2) = " + ephC2);
        check(ephC2.size() == 2 && ephC2.contains("/golden/c2-eph") && ephC2.contains(c2eseq),
              "getEphemerals(prefix)");
        check(zk.getEphemerals("/nothing-here").isEmpty(), "getEphemerals(no match) = []");

        section("sync (opcode 9)");
        CountDownLatch synced = new CountDownLatch(1);
        AtomicInteger syncRc = new AtomicInteger(-999);
        AtomicReference<String> syncPath = new AtomicReference<>();
        zk.sync("/golden", (rc, path, ctx) -> {
            syncRc.set(rc);
            syncPath.set(path);
            synced.countDown();
        }, null);
        check(synced.await(EVENT_WAIT_MS, TimeUnit.MILLISECONDS) && syncRc.get() == 0, "sync ok");

        section("multi (14): success mixing create/create2-ish/setData/check/delete");
        zk.create("/golden/multi", b("m0"), OPEN, CreateMode.PERSISTENT);
        zk.create("/golden/multi/old", null, OPEN, CreateMode.PERSISTENT);
        List<OpResult> res = zk.multi(Arrays.asList(
            Op.create("/golden/multi/a", b("a"), OPEN, CreateMode.PERSISTENT),
            Op.create("/golden/multi/seq-", null, OPEN, CreateMode.EPHEMERAL_SEQUENTIAL),
            Op.create("/golden/multi/box", null, OPEN, CreateMode.CONTAINER),
            Op.create("/golden/multi/ttl", null, OPEN, CreateMode.PERSISTENT_WITH_TTL, 60000L),
            Op.setData("/golden/multi", b("m1"), 0),
            Op.check("/golden/multi", 1),
            Op.delete("/golden/multi/old", 0)));
        check(res.size() == 7, "multi result count");
        check(res.get(0) instanceof OpResult.CreateResult
              && ((OpResult.CreateResult) res.get(0)).getPath().equals("/golden/multi/a"), "multi create");
        check(res.get(4) instanceof OpResult.SetDataResult, "multi setData");
        check(res.get(5) instanceof OpResult.CheckResult, "multi check");
        check(res.get(6) instanceof OpResult.DeleteResult, "multi delete");

        section("multi (14) whose middle op fails: error-result encoding");
        try {
            zk.multi(Arrays.asList(
                Op.create("/golden/multi/never", null, OPEN, CreateMode.PERSISTENT),
                Op.check("/golden/multi", 99),
                Op.setData("/golden/multi", b("never"), -1)));
            fail("failing multi succeeded");
        } catch (KeeperException e) {
            check(e.code() == Code.BADVERSION, "multi fails with BADVERSION, got " + e.code());
            List<OpResult> r = e.getResults();
            check(r.size() == 3, "3 error results");
            int[] errs = new int[3];
            for (int i = 0; i < 3; i++) {
                errs[i] = ((OpResult.ErrorResult) r.get(i)).getErr();
            }
            log("   multi error results: " + Arrays.toString(errs));
            check(errs[0] == 0 && errs[1] == Code.BADVERSION.intValue()
                  && errs[2] == Code.RUNTIMEINCONSISTENCY.intValue(), "error results 0, -103, -2");
        }
        check(zk.exists("/golden/multi/never", false) == null, "failed multi rolled back");

        section("multiRead (22): getData + getChildren + ops on a missing node");
        List<OpResult> rr = zk.multi(Arrays.asList(
            Op.getData("/golden/multi"),
            Op.getChildren("/golden/w/kids"),
            Op.getData("/golden/multi/missing"),
            Op.getChildren("/golden/missing")));
        check(rr.size() == 4, "multiRead results");
        check("m1".equals(s(((OpResult.GetDataResult) rr.get(0)).getData())), "multiRead getData");
        check(((OpResult.GetChildrenResult) rr.get(1)).getChildren().size() == 2, "multiRead getChildren");
        check(((OpResult.ErrorResult) rr.get(2)).getErr() == Code.NONODE.intValue(), "multiRead missing data");
        check(((OpResult.ErrorResult) rr.get(3)).getErr() == Code.NONODE.intValue(), "multiRead missing kids");

        section("getConfig (getData of /zookeeper/config) and reconfig (16) via ZooKeeperAdmin");
        Stat cfgStat = new Stat();
        byte[] cfg = zk.getConfig(false, cfgStat);
        log("   config: " + (cfg == null ? "null" : "\"" + s(cfg).replace("\n", "\\n") + "\""));
        expectError(Code.RECONFIGDISABLED, () -> zk.reconfigure(null, "2", null, -1L, new Stat()));

        section("checkWatches (17) = removeWatches(path, watcher, type, local=false)");
        Watcher rmw = watcher("rm");
        zk.create("/golden/rm", null, OPEN, CreateMode.PERSISTENT);
        zk.getData("/golden/rm", rmw, null);
        zk.removeWatches("/golden/rm", rmw, Watcher.WatcherType.Data, false);
        awaitEvent("rm", EventType.DataWatchRemoved, "/golden/rm");
        // checkWatches only CHECKS on the server (the client removes locally), so the server
        // still has the data watch: this second call gets err 0 on the wire and the client
        // raises NOWATCHER itself because its local registry no longer has the watcher.
        expectError(Code.NOWATCHER, () -> zk.removeWatches("/golden/rm", rmw, Watcher.WatcherType.Data, false));
        // No watch at all on this path on the server: err -121 NOWATCHER on the wire.
        expectError(Code.NOWATCHER, () -> zk.removeWatches("/golden/rm-none", rmw, Watcher.WatcherType.Data, false));

        section("removeWatches (18) = removeAllWatches(path, type, local=false)");
        zk.getChildren("/golden/rm", watcher("rm"));
        zk.getData("/golden/rm", watcher("rm2"), null);
        zk.removeAllWatches("/golden/rm", Watcher.WatcherType.Any, false);
        awaitEvent("rm", EventType.ChildWatchRemoved, "/golden/rm");
        awaitEvent("rm2", EventType.DataWatchRemoved, "/golden/rm");
        expectError(Code.NOWATCHER, () -> zk.removeAllWatches("/golden/rm", Watcher.WatcherType.Children, false));

        section("idle for pings (opcode 11, xid -2)");
        Thread.sleep(3000);

        section("reconnect #1: standard watches only -> setWatches (101)");
        zk.create("/golden/r", null, OPEN, CreateMode.PERSISTENT);
        zk.create("/golden/r/d", b("d0"), OPEN, CreateMode.PERSISTENT);
        zk.create("/golden/r/del", b("del"), OPEN, CreateMode.PERSISTENT);
        zk.create("/golden/r/kids", null, OPEN, CreateMode.PERSISTENT);
        zk.create("/golden/r/quiet", b("q0"), OPEN, CreateMode.PERSISTENT);
        zk.getData("/golden/r/d", watcher("r1"), null);
        zk.getData("/golden/r/del", watcher("r1"), null);
        zk.exists("/golden/r/new", watcher("r1"));
        zk.getChildren("/golden/r/kids", watcher("r1"));
        zk.getData("/golden/r/quiet", watcher("r1"), null);
        cutAndReconnect("/golden/cut-now-1", false, () -> {
            direct.setData("/golden/r/d", b("d1"), -1);
            direct.delete("/golden/r/del", -1);
            direct.create("/golden/r/new", b("new"), OPEN, CreateMode.PERSISTENT);
            direct.create("/golden/r/kids/k", null, OPEN, CreateMode.PERSISTENT);
        });
        awaitEvent("r1", EventType.NodeDataChanged, "/golden/r/d");
        awaitEvent("r1", EventType.NodeDeleted, "/golden/r/del");
        awaitEvent("r1", EventType.NodeCreated, "/golden/r/new");
        awaitEvent("r1", EventType.NodeChildrenChanged, "/golden/r/kids");
        check("mine".equals(s(zk.getData("/golden/mine", false, null))), "digest auth re-sent after reconnect");
        zk.setData("/golden/r/quiet", b("q1"), -1);
        awaitEvent("r1", EventType.NodeDataChanged, "/golden/r/quiet");

        section("addWatch (106) persistent and persistent-recursive, their events");
        zk.addWatch("/golden/p", watcher("persistent"), AddWatchMode.PERSISTENT);
        zk.addWatch("/golden/rec", watcher("recursive"), AddWatchMode.PERSISTENT_RECURSIVE);
        zk.create("/golden/p", b("p0"), OPEN, CreateMode.PERSISTENT);
        awaitEvent("persistent", EventType.NodeCreated, "/golden/p");
        zk.setData("/golden/p", b("p1"), -1);
        awaitEvent("persistent", EventType.NodeDataChanged, "/golden/p");
        zk.create("/golden/p/c", null, OPEN, CreateMode.PERSISTENT);
        awaitEvent("persistent", EventType.NodeChildrenChanged, "/golden/p");
        zk.create("/golden/rec", null, OPEN, CreateMode.PERSISTENT);
        awaitEvent("recursive", EventType.NodeCreated, "/golden/rec");
        zk.create("/golden/rec/a", null, OPEN, CreateMode.PERSISTENT);
        awaitEvent("recursive", EventType.NodeCreated, "/golden/rec/a");
        zk.create("/golden/rec/a/b", b("b"), OPEN, CreateMode.PERSISTENT);
        awaitEvent("recursive", EventType.NodeCreated, "/golden/rec/a/b");
        zk.setData("/golden/rec/a/b", b("b1"), -1);
        awaitEvent("recursive", EventType.NodeDataChanged, "/golden/rec/a/b");
        zk.delete("/golden/rec/a/b", -1);
        awaitEvent("recursive", EventType.NodeDeleted, "/golden/rec/a/b");
        zk.delete("/golden/p/c", -1);
        awaitEvent("persistent", EventType.NodeChildrenChanged, "/golden/p");

        section("reconnect #2: persistent watches exist -> setWatches2 (105)");
        zk.create("/golden/r2", b("r2-0"), OPEN, CreateMode.PERSISTENT);
        zk.getData("/golden/r2", watcher("r2"), null);
        zk.exists("/golden/r2-new", watcher("r2"));
        cutAndReconnect("/golden/cut-now-2", true, () -> {
            direct.setData("/golden/r2", b("r2-1"), -1);
            direct.create("/golden/r2-new", null, OPEN, CreateMode.PERSISTENT);
        });
        awaitEvent("r2", EventType.NodeDataChanged, "/golden/r2");
        awaitEvent("r2", EventType.NodeCreated, "/golden/r2-new");
        zk.setData("/golden/p", b("p2"), -1);
        awaitEvent("persistent", EventType.NodeDataChanged, "/golden/p");
        zk.create("/golden/rec/after", null, OPEN, CreateMode.PERSISTENT);
        awaitEvent("recursive", EventType.NodeCreated, "/golden/rec/after");
        zk.delete("/golden/p", -1);
        awaitEvent("persistent", EventType.NodeDeleted, "/golden/p");

        section("close (closeSession, opcode -11)");
        zk.close();
        synchronized (events) {
            log("   unconsumed events (informational): " + events);
        }
        check(direct.exists("/golden/eph", false) == null, "ephemerals gone after close");

        String saslContext = System.getProperty("golden.sasl.context");
        if (saslContext != null && !saslContext.isEmpty()) {
            saslSession(proxy, saslContext);
        } else {
            log("   (no -Dgolden.sasl.context: SASL session skipped)");
        }
        log("done");
    }
}
