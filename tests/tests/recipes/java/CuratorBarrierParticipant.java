// A Curator 5.x DistributedDoubleBarrier member for the cross-language recipe tests
// (tests/recipes/curator.rs).
//
// Usage: CuratorBarrierParticipant <connect> <barrierPath> <memberQty>
//
// Prints "CONNECTED", enters (prints "ENTERED" once the barrier opens), waits for a line on
// stdin, leaves (prints "LEFT" once every member has left).

import java.io.BufferedReader;
import java.io.InputStreamReader;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorBarrierParticipant {
    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String path = args[1];
        int members = Integer.parseInt(args[2]);
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10000, 10000, new ExponentialBackoffRetry(100, 10))) {
            client.start();
            client.blockUntilConnected();
            System.out.println("CONNECTED");
            System.out.flush();
            DistributedDoubleBarrier barrier = new DistributedDoubleBarrier(client, path, members);
            barrier.enter();
            System.out.println("ENTERED");
            System.out.flush();
            new BufferedReader(new InputStreamReader(System.in)).readLine();
            barrier.leave();
            System.out.println("LEFT");
            System.out.flush();
        }
    }
}
