// A Curator 5.x LeaderLatch participant for the cross-language recipe tests
// (tests/recipes/curator.rs).
//
// Usage: CuratorLatchParticipant <connect> <latchPath> <id>
//
// Prints "CONNECTED", then obeys stdin commands, one a line:
//   start  - creates and starts a LeaderLatch with <id> (prints "STARTED" just before)
//   close  - closes it (prints "CLOSED")
//   exit   - ends the program
// and prints "LEADER" / "NOT_LEADER" when its LeaderLatchListener is told.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorLatchParticipant {
    private static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String latchPath = args[1];
        String id = args[2];
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10000, 10000, new ExponentialBackoffRetry(100, 10))) {
            client.start();
            client.blockUntilConnected();
            say("CONNECTED");
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
            LeaderLatch latch = null;
            String command;
            while ((command = in.readLine()) != null) {
                switch (command.trim()) {
                    case "start":
                        latch = new LeaderLatch(client, latchPath, id);
                        latch.addListener(new LeaderLatchListener() {
                            @Override
                            public void isLeader() {
                                say("LEADER");
                            }

                            @Override
                            public void notLeader() {
                                say("NOT_LEADER");
                            }
                        });
                        // Said first, so that "LEADER" always comes after it.
                        say("STARTED");
                        latch.start();
                        break;
                    case "close":
                        latch.close();
                        latch = null;
                        say("CLOSED");
                        break;
                    case "exit":
                        return;
                    default:
                        throw new IllegalArgumentException("unknown command " + command);
                }
            }
        }
    }
}
