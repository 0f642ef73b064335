// A Curator 5.x SharedCount participant for the cross-language recipe tests
// (tests/recipes/shared_count.rs).
//
// Usage: CuratorSharedCountParticipant <connect> <countPath> <seed>
//
// Prints "CONNECTED", starts the SharedCount (seeding it if missing) and prints
// "STARTED <value> <version>". Every change its listener reports is printed as
// "CHANGED <value>". Commands on stdin, one per line:
//   read      keep the current versioned value, print "READ <value> <version>"
//   tryset N  trySetCount(kept value, N), print "TRYSET true|false"
//   set N     setCount(N), print "SET"
//   quit      close and exit

import java.io.BufferedReader;
import java.io.InputStreamReader;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.SharedCountListener;
import org.apache.curator.framework.recipes.shared.SharedCountReader;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorSharedCountParticipant {
    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String path = args[1];
        int seed = Integer.parseInt(args[2]);
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(
                connect, 10000, 10000, new ExponentialBackoffRetry(100, 10))) {
            client.start();
            client.blockUntilConnected();
            say("CONNECTED");
            SharedCount count = new SharedCount(client, path, seed);
            count.addListener(new SharedCountListener() {
                @Override
                public void countHasChanged(SharedCountReader reader, int newCount) {
                    say("CHANGED " + newCount);
                }

                @Override
                public void stateChanged(CuratorFramework c, ConnectionState s) {}
            });
            count.start();
            VersionedValue<Integer> kept = count.getVersionedValue();
            say("STARTED " + kept.getValue() + " " + kept.getVersion());
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
            String line;
            while ((line = in.readLine()) != null) {
                String[] words = line.trim().split(" ");
                if (words[0].equals("read")) {
                    kept = count.getVersionedValue();
                    say("READ " + kept.getValue() + " " + kept.getVersion());
                } else if (words[0].equals("tryset")) {
                    say("TRYSET " + count.trySetCount(kept, Integer.parseInt(words[1])));
                } else if (words[0].equals("set")) {
                    count.setCount(Integer.parseInt(words[1]));
                    say("SET");
                } else if (words[0].equals("quit")) {
                    break;
                }
            }
            count.close();
        }
    }
}
