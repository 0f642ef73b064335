// A Curator 5.x participant for the cross-language recipe tests (tests/recipes/curator.rs).
//
// Usage: CuratorMutexParticipant <connect> <lockPath> loop <holderPath> <counterPath> <rounds>
//        CuratorMutexParticipant <connect> <lockPath> hold [mutex|read|write]
//        CuratorMutexParticipant <connect> <semaphorePath> lease <maxLeases>
//        CuratorMutexParticipant <connect> <path1,path2,...> multi
//
// "multi": like "hold", with an InterProcessMultiLock over the comma-separated paths
// (prints "HELD").
//
// "lease": like "hold", with one lease of an InterProcessSemaphoreV2 (prints "HELD <lease
// node>").
//
// "hold": prints "CONNECTED", acquires the lock (an InterProcessMutex, or the read or write
// lock of an InterProcessReadWriteLock on <lockPath>), prints "HELD <our lock node>", waits for a
// line on stdin, releases, prints "DONE".
//
// "loop": takes an InterProcessMutex on <lockPath> <rounds> times. While holding it, it creates the
// ephemeral <holderPath> (NodeExists means two holders at once: the program fails), does a
// versioned read-modify-write of the decimal counter in <counterPath> (BadVersion means a
// concurrent writer: the program fails), prints "HELD <our lock node>", deletes <holderPath>
// and releases. Prints "DONE" at the end. Any failure exits non-zero.

import java.nio.charset.StandardCharsets;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMultiLock;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.data.Stat;

public class CuratorMutexParticipant {
    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String lockPath = args[1];
        String mode = args[2];
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10000, 10000, new ExponentialBackoffRetry(100, 10))) {
            client.start();
            client.blockUntilConnected();
            System.out.println("CONNECTED");
            System.out.flush();
            if (mode.equals("lease")) {
                InterProcessSemaphoreV2 semaphore =
                    new InterProcessSemaphoreV2(client, lockPath, Integer.parseInt(args[3]));
                Lease lease = semaphore.acquire();
                System.out.println("HELD " + lease.getNodeName());
                System.out.flush();
                new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
                semaphore.returnLease(lease);
                System.out.println("DONE");
                System.out.flush();
                return;
            }
            if (mode.equals("multi")) {
                InterProcessMultiLock multi =
                    new InterProcessMultiLock(client, java.util.Arrays.asList(lockPath.split(",")));
                multi.acquire();
                System.out.println("HELD");
                System.out.flush();
                new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
                multi.release();
                System.out.println("DONE");
                System.out.flush();
                return;
            }
            InterProcessMutex mutex = new InterProcessMutex(client, lockPath);
            if (mode.equals("hold")) {
                String kind = args.length > 3 ? args[3] : "mutex";
                if (kind.equals("read")) {
                    mutex = new InterProcessReadWriteLock(client, lockPath).readLock();
                } else if (kind.equals("write")) {
                    mutex = new InterProcessReadWriteLock(client, lockPath).writeLock();
                }
                mutex.acquire();
                System.out.println("HELD " + mutex.getParticipantNodes().iterator().next());
                System.out.flush();
                new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
                mutex.release();
                System.out.println("DONE");
                System.out.flush();
                return;
            }
            String holderPath = args[3];
            String counterPath = args[4];
            int rounds = Integer.parseInt(args[5]);
            for (int i = 0; i < rounds; i++) {
                mutex.acquire();
                try {
                    client.create().withMode(CreateMode.EPHEMERAL).forPath(holderPath);
                    Stat stat = new Stat();
                    byte[] data = client.getData().storingStatIn(stat).forPath(counterPath);
                    long value = Long.parseLong(new String(data, StandardCharsets.UTF_8));
                    Thread.yield();
                    client.setData().withVersion(stat.getVersion())
                        .forPath(counterPath, Long.toString(value + 1).getBytes(StandardCharsets.UTF_8));
                    String holder = mutex.getParticipantNodes().iterator().next();
                    System.out.println("HELD " + holder);
                    System.out.flush();
                    client.delete().forPath(holderPath);
                } finally {
                    mutex.release();
                }
            }
            System.out.println("DONE");
            System.out.flush();
        }
    }
}
