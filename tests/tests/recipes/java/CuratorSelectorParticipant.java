// A Curator 5.x LeaderSelector participant for the cross-language selector test
// (tests/recipes/selector.rs).
//
// Usage: CuratorSelectorParticipant <connect> <path> <id> <rounds> <holderPath>
// Leads <rounds> times (autoRequeue). Each term creates the ephemeral node <holderPath>
// (exclusive proof: if it exists, another leader is active: prints "OVERLAP" and exits 1),
// holds it briefly, deletes it and prints "LED <n>". Then closes and prints "DONE".

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;

public class CuratorSelectorParticipant {
    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String path = args[1];
        String id = args[2];
        int rounds = Integer.parseInt(args[3]);
        String holder = args[4];
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10000, 10000, new ExponentialBackoffRetry(100, 10))) {
            client.start();
            client.blockUntilConnected();
            CountDownLatch done = new CountDownLatch(rounds);
            AtomicInteger led = new AtomicInteger();
            LeaderSelector selector = new LeaderSelector(client, path, new LeaderSelectorListenerAdapter() {
                @Override
                public void takeLeadership(CuratorFramework c) throws Exception {
                    if (done.getCount() == 0) {
                        return;
                    }
                    try {
                        c.create().withMode(CreateMode.EPHEMERAL).forPath(holder, id.getBytes());
                    } catch (KeeperException.NodeExistsException e) {
                        System.out.println("OVERLAP");
                        System.out.flush();
                        System.exit(1);
                    }
                    Thread.sleep(30);
                    c.delete().forPath(holder);
                    System.out.println("LED " + led.incrementAndGet());
                    System.out.flush();
                    done.countDown();
                }
            });
            selector.setId(id);
            selector.autoRequeue();
            selector.start();
            if (!done.await(60, TimeUnit.SECONDS)) {
                System.exit(1);
            }
            selector.close();
            System.out.println("DONE");
            System.out.flush();
        }
    }
}
