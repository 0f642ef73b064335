// A Curator 5.x GroupMember for the cross-language group test (tests/recipes/persistent_node.rs).
//
// Usage: CuratorGroupParticipant <connect> <path> <id> <payload>, then on stdin:
//   await <id=payload,...>   waits until getCurrentMembers() is exactly that (sorted by id);
//                            prints "MEMBERS <same>"
//   payload <data>           setThisData; prints "SET"
//   quit                     closes (leaves) and prints "DONE"
// Exits 1 if a wait takes longer than 30 s.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.nodes.GroupMember;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorGroupParticipant {
    static String render(Map<String, byte[]> members) {
        StringBuilder out = new StringBuilder();
        for (Map.Entry<String, byte[]> e : new TreeMap<>(members).entrySet()) {
            if (out.length() > 0) {
                out.append(',');
            }
            out.append(e.getKey()).append('=').append(new String(e.getValue(), StandardCharsets.UTF_8));
        }
        return out.toString();
    }

    public static void main(String[] args) throws Exception {
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(
                args[0], 10000, 10000, new ExponentialBackoffRetry(100, 10))) {
            client.start();
            client.blockUntilConnected();
            GroupMember member = new GroupMember(client, args[1], args[2], args[3].getBytes(StandardCharsets.UTF_8));
            member.start();
            System.out.println("READY");
            System.out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                String[] w = line.trim().split(" ", 2);
                if (w[0].equals("await")) {
                    long deadline = System.currentTimeMillis() + 30000;
                    while (!render(member.getCurrentMembers()).equals(w[1])) {
                        if (System.currentTimeMillis() > deadline) {
                            System.out.println("FAILED " + render(member.getCurrentMembers()));
                            System.out.flush();
                            System.exit(1);
                        }
                        Thread.sleep(20);
                    }
                    System.out.println("MEMBERS " + w[1]);
                } else if (w[0].equals("payload")) {
                    member.setThisData(w[1].getBytes(StandardCharsets.UTF_8));
                    System.out.println("SET");
                } else if (w[0].equals("quit")) {
                    member.close();
                    System.out.println("DONE");
                    System.out.flush();
                    return;
                }
                System.out.flush();
            }
        }
    }
}
