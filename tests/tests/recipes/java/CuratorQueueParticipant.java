// A Curator 5.x DistributedQueue / DistributedPriorityQueue participant for the
// cross-language queue test (tests/recipes/queue.rs).
//
// Usage:
//   CuratorQueueParticipant <connect> produce <queuePath> <item>...
//   CuratorQueueParticipant <connect> produce-priority <queuePath> <item>:<priority>...
//   CuratorQueueParticipant <connect> consume <queuePath> <lockPath> <count>
//   CuratorQueueParticipant <connect> simple-offer <queuePath> <item>...
//   CuratorQueueParticipant <connect> produce-delay <queuePath> <item>:<delayMs>...
//   CuratorQueueParticipant <connect> produce-id <queuePath> <item>:<id>...
//   CuratorQueueParticipant <connect> consume-delay <queuePath> <count>
//   CuratorQueueParticipant <connect> simple-take <queuePath> <count>
//
// produce: puts each item (UTF-8), waits for the puts to land, prints "DONE".
// consume: consumes <count> items with Curator's lockPath safety, printing "GOT <item>" for
// each in the order received, waits until the queue and lock nodes are empty, then prints
// "DONE". Exits 1 if that takes longer than 30 s.
// produce-delay / produce-id: Curator's DistributedDelayQueue (due now + delay) and
// DistributedIdQueue; consume-delay prints "GOT <item> <epoch ms when received>".
// simple-offer / simple-take: Curator's SimpleDistributedQueue; simple-take prints
// "GOT <item>" per item taken (take() blocks), then "DONE".

import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.queue.DistributedDelayQueue;
import org.apache.curator.framework.recipes.queue.DistributedIdQueue;
import org.apache.curator.framework.recipes.queue.DistributedPriorityQueue;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.recipes.queue.SimpleDistributedQueue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorQueueParticipant {
    static final QueueSerializer<String> UTF8 = new QueueSerializer<String>() {
        @Override
        public byte[] serialize(String item) {
            return item.getBytes(StandardCharsets.UTF_8);
        }

        @Override
        public String deserialize(byte[] bytes) {
            return new String(bytes, StandardCharsets.UTF_8);
        }
    };

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String mode = args[1];
        String path = args[2];
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10000, 10000, new ExponentialBackoffRetry(100, 10))) {
            client.start();
            client.blockUntilConnected();
            if (mode.equals("produce-delay")) {
                DistributedDelayQueue<String> queue =
                        QueueBuilder.builder(client, null, UTF8, path).buildDelayQueue();
                queue.start();
                long now = System.currentTimeMillis();
                for (int i = 3; i < args.length; i++) {
                    int colon = args[i].lastIndexOf(':');
                    queue.put(args[i].substring(0, colon), now + Long.parseLong(args[i].substring(colon + 1)));
                }
                if (!queue.flushPuts(30, TimeUnit.SECONDS)) {
                    System.exit(1);
                }
                queue.close();
            } else if (mode.equals("produce-id")) {
                DistributedIdQueue<String> queue =
                        QueueBuilder.builder(client, null, UTF8, path).buildIdQueue();
                queue.start();
                for (int i = 3; i < args.length; i++) {
                    int colon = args[i].lastIndexOf(':');
                    queue.put(args[i].substring(0, colon), args[i].substring(colon + 1));
                }
                if (!queue.flushPuts(30, TimeUnit.SECONDS)) {
                    System.exit(1);
                }
                queue.close();
            } else if (mode.equals("consume-delay")) {
                int count = Integer.parseInt(args[3]);
                CountDownLatch received = new CountDownLatch(count);
                QueueConsumer<String> consumer = new QueueConsumer<String>() {
                    @Override
                    public synchronized void consumeMessage(String message) {
                        System.out.println("GOT " + message + " " + System.currentTimeMillis());
                        System.out.flush();
                        received.countDown();
                    }

                    @Override
                    public void stateChanged(CuratorFramework c, ConnectionState state) {
                    }
                };
                DistributedDelayQueue<String> queue = QueueBuilder.builder(client, consumer, UTF8, path)
                        .executor(Runnable::run)
                        .buildDelayQueue();
                queue.start();
                if (!received.await(30, TimeUnit.SECONDS)) {
                    System.exit(1);
                }
                queue.close();
            } else if (mode.equals("simple-offer")) {
                SimpleDistributedQueue queue = new SimpleDistributedQueue(client, path);
                for (int i = 3; i < args.length; i++) {
                    queue.offer(args[i].getBytes(StandardCharsets.UTF_8));
                }
            } else if (mode.equals("simple-take")) {
                SimpleDistributedQueue queue = new SimpleDistributedQueue(client, path);
                int count = Integer.parseInt(args[3]);
                for (int i = 0; i < count; i++) {
                    byte[] item = queue.poll(30, TimeUnit.SECONDS);
                    if (item == null) {
                        System.exit(1);
                    }
                    System.out.println("GOT " + new String(item, StandardCharsets.UTF_8));
                    System.out.flush();
                }
            } else if (mode.equals("produce")) {
                DistributedQueue<String> queue =
                        QueueBuilder.builder(client, null, UTF8, path).buildQueue();
                queue.start();
                for (int i = 3; i < args.length; i++) {
                    queue.put(args[i]);
                }
                if (!queue.flushPuts(30, TimeUnit.SECONDS)) {
                    System.exit(1);
                }
                queue.close();
            } else if (mode.equals("produce-priority")) {
                DistributedPriorityQueue<String> queue =
                        QueueBuilder.builder(client, null, UTF8, path).buildPriorityQueue(0);
                queue.start();
                for (int i = 3; i < args.length; i++) {
                    int colon = args[i].lastIndexOf(':');
                    queue.put(args[i].substring(0, colon),
                            Integer.parseInt(args[i].substring(colon + 1)));
                }
                if (!queue.flushPuts(30, TimeUnit.SECONDS)) {
                    System.exit(1);
                }
                queue.close();
            } else {
                String lockPath = args[3];
                int count = Integer.parseInt(args[4]);
                CountDownLatch received = new CountDownLatch(count);
                QueueConsumer<String> consumer = new QueueConsumer<String>() {
                    @Override
                    public synchronized void consumeMessage(String message) {
                        System.out.println("GOT " + message);
                        System.out.flush();
                        received.countDown();
                    }

                    @Override
                    public void stateChanged(CuratorFramework c, ConnectionState state) {
                    }
                };
                DistributedQueue<String> queue = QueueBuilder.builder(client, consumer, UTF8, path)
                        .lockPath(lockPath)
                        .executor(Runnable::run)
                        .buildQueue();
                queue.start();
                if (!received.await(30, TimeUnit.SECONDS)) {
                    System.exit(1);
                }
                // The item node is deleted after consumeMessage returns: let the last
                // deletes land before closing (close interrupts the consumer thread).
                long deadline = System.currentTimeMillis() + 30000;
                while (!client.getChildren().forPath(path).isEmpty()
                        || !client.getChildren().forPath(lockPath).isEmpty()) {
                    if (System.currentTimeMillis() > deadline) {
                        System.exit(1);
                    }
                    Thread.sleep(20);
                }
                queue.close();
            }
            System.out.println("DONE");
            System.out.flush();
        }
    }
}
