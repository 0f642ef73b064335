// A Curator 5.x DistributedBarrier participant for the cross-language recipe tests
// (tests/recipes/barrier.rs).
//
// Usage: CuratorDistributedBarrierParticipant <connect> <barrierPath>
//
// Prints "CONNECTED". Commands on stdin, one per line:
//   set     setBarrier(), print "SET"
//   remove  removeBarrier(), print "REMOVED"
//   wait    print "WAITING", waitOnBarrier() (blocks), print "RELEASED"
//   quit    exit

import java.io.BufferedReader;
import java.io.InputStreamReader;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorDistributedBarrierParticipant {
    static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String path = args[1];
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10000, 10000, new ExponentialBackoffRetry(100, 10))) {
            client.start();
            client.blockUntilConnected();
            say("CONNECTED");
            DistributedBarrier barrier = new DistributedBarrier(client, path);
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
            String line;
            while ((line = in.readLine()) != null) {
                String command = line.trim();
                if (command.equals("set")) {
                    barrier.setBarrier();
                    say("SET");
                } else if (command.equals("remove")) {
                    barrier.removeBarrier();
                    say("REMOVED");
                } else if (command.equals("wait")) {
                    say("WAITING");
                    barrier.waitOnBarrier();
                    say("RELEASED");
                } else if (command.equals("quit")) {
                    break;
                }
            }
        }
    }
}
