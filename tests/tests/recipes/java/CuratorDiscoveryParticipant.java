// A Curator 5.x curator-x-discovery participant for the cross-language service discovery
// test (tests/recipes/discovery.rs). String payloads, Curator's default JSON serializer.
//
// Usage: CuratorDiscoveryParticipant <connect> <basePath>, then commands on stdin, one a line:
//   register <name> <id> <address> <port> <payload>
//       registers a DYNAMIC instance with uriSpec "{scheme}://{address}:{port}";
//       prints "REGISTERED <the node's JSON as stored>"
//   unregister <name> <id>        prints "UNREGISTERED"
//   names                         prints "NAMES <sorted, comma-separated>"
//   query <name>                  prints "INSTANCE <id> <address> <port> <sslPort> <payload>
//                                 <serviceType> <registrationTimeUTC> <uri>" per instance
//                                 (sorted by id), then "END"
//   await <name> <ids>            waits until a ServiceCache (watch-driven) on <name> holds
//                                 exactly <ids> (comma-separated, "-" for none); prints
//                                 "CACHED <ids>"
//   expire                        expires this client's session (a second connection with
//                                 its id and password, closed), waits until Curator has
//                                 reconnected with a new session; prints "EXPIRED"
//   quit                          closes everything (unregisters) and exits
// Exits 1 if a wait takes longer than 30 s.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceCache;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.UriSpec;
import org.apache.zookeeper.ZooKeeper;

public class CuratorDiscoveryParticipant {
    static void fail(String why) {
        System.out.println("FAILED " + why);
        System.out.flush();
        System.exit(1);
    }

    static String ids(List<ServiceInstance<String>> instances) {
        TreeSet<String> ids = new TreeSet<>();
        for (ServiceInstance<String> i : instances) {
            ids.add(i.getId());
        }
        return ids.isEmpty() ? "-" : String.join(",", ids);
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String basePath = args[1];
        CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10000, 10000, new ExponentialBackoffRetry(100, 10));
        client.start();
        client.blockUntilConnected();
        ServiceDiscovery<String> discovery = ServiceDiscoveryBuilder.builder(String.class)
                .client(client)
                .basePath(basePath)
                .build();
        discovery.start();
        Map<String, ServiceCache<String>> caches = new HashMap<>();
        System.out.println("READY");
        System.out.flush();

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] w = line.trim().split(" ");
            switch (w[0]) {
                case "register": {
                    ServiceInstance<String> instance = ServiceInstance.<String>builder()
                            .name(w[1])
                            .id(w[2])
                            .address(w[3])
                            .port(Integer.parseInt(w[4]))
                            .payload(w[5])
                            .uriSpec(new UriSpec("{scheme}://{address}:{port}"))
                            .build();
                    discovery.registerService(instance);
                    byte[] stored = client.getData().forPath(basePath + "/" + w[1] + "/" + w[2]);
                    System.out.println("REGISTERED " + new String(stored, StandardCharsets.UTF_8));
                    break;
                }
                case "unregister": {
                    ServiceInstance<String> instance = discovery.queryForInstance(w[1], w[2]);
                    if (instance == null) {
                        fail("no instance " + w[2]);
                    }
                    discovery.unregisterService(instance);
                    System.out.println("UNREGISTERED");
                    break;
                }
                case "names": {
                    List<String> names = new ArrayList<>(discovery.queryForNames());
                    Collections.sort(names);
                    System.out.println("NAMES " + String.join(",", names));
                    break;
                }
                case "query": {
                    List<ServiceInstance<String>> instances = new ArrayList<>(discovery.queryForInstances(w[1]));
                    instances.sort((a, b) -> a.getId().compareTo(b.getId()));
                    for (ServiceInstance<String> i : instances) {
                        Map<String, Object> values = new HashMap<>();
                        values.put(UriSpec.FIELD_SCHEME, "http");
                        String uri = i.getUriSpec() == null ? "-" : i.buildUriSpec(values);
                        System.out.println("INSTANCE " + i.getId() + " " + i.getAddress() + " " + i.getPort()
                                + " " + i.getSslPort() + " " + i.getPayload() + " " + i.getServiceType()
                                + " " + i.getRegistrationTimeUTC() + " " + uri);
                    }
                    System.out.println("END");
                    break;
                }
                case "await": {
                    ServiceCache<String> cache = caches.get(w[1]);
                    if (cache == null) {
                        cache = discovery.serviceCacheBuilder().name(w[1]).build();
                        cache.start();
                        caches.put(w[1], cache);
                    }
                    long deadline = System.currentTimeMillis() + 30000;
                    while (!ids(cache.getInstances()).equals(w[2])) {
                        if (System.currentTimeMillis() > deadline) {
                            fail("cache holds " + ids(cache.getInstances()) + ", not " + w[2]);
                        }
                        Thread.sleep(20);
                    }
                    System.out.println("CACHED " + w[2]);
                    break;
                }
                case "expire": {
                    ZooKeeper zk = client.getZookeeperClient().getZooKeeper();
                    long old = zk.getSessionId();
                    CountDownLatch reconnected = new CountDownLatch(1);
                    client.getConnectionStateListenable().addListener((c, state) -> {
                        if (state == ConnectionState.RECONNECTED) {
                            reconnected.countDown();
                        }
                    });
                    ZooKeeper twin = new ZooKeeper(connect, 10000, event -> { }, old, zk.getSessionPasswd());
                    long deadline = System.currentTimeMillis() + 30000;
                    while (twin.getState() != ZooKeeper.States.CONNECTED) {
                        if (System.currentTimeMillis() > deadline) {
                            fail("the twin connection did not come up");
                        }
                        Thread.sleep(10);
                    }
                    twin.close();
                    if (!reconnected.await(30, TimeUnit.SECONDS)) {
                        fail("no reconnection after the expiry");
                    }
                    while (client.getZookeeperClient().getZooKeeper().getSessionId() == old) {
                        if (System.currentTimeMillis() > deadline) {
                            fail("still the old session");
                        }
                        Thread.sleep(10);
                    }
                    System.out.println("EXPIRED");
                    break;
                }
                case "quit": {
                    for (ServiceCache<String> cache : caches.values()) {
                        cache.close();
                    }
                    discovery.close();
                    client.close();
                    System.out.println("DONE");
                    System.out.flush();
                    return;
                }
                default:
                    fail("unknown command " + line);
            }
            System.out.flush();
        }
    }
}
