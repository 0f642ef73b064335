// A Curator 5.x DistributedAtomicLong participant for the cross-language recipe tests
// (tests/recipes/curator.rs).
//
// Usage: CuratorCounterParticipant <connect> <counterPath> <increments> [int <lockPath>]
//
// With "int <lockPath>": a DistributedAtomicInteger promoted to an InterProcessMutex at
// <lockPath> after one optimistic attempt (so many increments go through the lock).
//
// Prints "CONNECTED", increments the counter <increments> times (retrying an attempt that
// did not succeed), then prints "DONE".

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicInteger;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.atomic.PromotedToLock;
import java.util.concurrent.TimeUnit;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;

public class CuratorCounterParticipant {
    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String path = args[1];
        int increments = Integer.parseInt(args[2]);
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10000, 10000, new ExponentialBackoffRetry(100, 10))) {
            client.start();
            client.blockUntilConnected();
            System.out.println("CONNECTED");
            System.out.flush();
            if (args.length > 4 && args[3].equals("int")) {
                PromotedToLock promoted = PromotedToLock.builder()
                        .lockPath(args[4])
                        .retryPolicy(new RetryNTimes(100, 5))
                        .timeout(30, TimeUnit.SECONDS)
                        .build();
                DistributedAtomicInteger counter =
                        new DistributedAtomicInteger(client, path, new RetryNTimes(0, 0), promoted);
                for (int i = 0; i < increments; i++) {
                    AtomicValue<Integer> result;
                    do {
                        result = counter.increment();
                    } while (!result.succeeded());
                }
                System.out.println("DONE");
                System.out.flush();
                return;
            }
            DistributedAtomicLong counter = new DistributedAtomicLong(client, path, new RetryNTimes(100, 5));
            for (int i = 0; i < increments; i++) {
                AtomicValue<Long> result;
                do {
                    result = counter.increment();
                } while (!result.succeeded());
            }
            System.out.println("DONE");
            System.out.flush();
        }
    }
}
