// A Curator 5.x client that writes a script of changes, for the cross-language cache test
// (tests/recipes/cache.rs).
//
// Usage: CuratorWriterParticipant <connect>, then on stdin, one a line:
//   create <path> <data> | set <path> <data> | delete <path>   applied in order, synchronously
//   tree <root>     prints "NODE <path> <data>" for every node under <root> (root included,
//                   depth first, sorted), then "END"
//   quit            prints "DONE" and exits

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorWriterParticipant {
    static void tree(CuratorFramework client, String path) throws Exception {
        byte[] data = client.getData().forPath(path);
        System.out.println("NODE " + path + " " + new String(data, StandardCharsets.UTF_8));
        List<String> children = new ArrayList<>(client.getChildren().forPath(path));
        Collections.sort(children);
        for (String child : children) {
            tree(client, (path.equals("/") ? "" : path) + "/" + child);
        }
    }

    public static void main(String[] args) throws Exception {
        try (CuratorFramework client = CuratorFrameworkFactory.newClient(
                args[0], 10000, 10000, new ExponentialBackoffRetry(100, 10))) {
            client.start();
            client.blockUntilConnected();
            System.out.println("READY");
            System.out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                String[] w = line.trim().split(" ");
                switch (w[0]) {
                    case "create":
                        client.create().forPath(w[1], w[2].getBytes(StandardCharsets.UTF_8));
                        break;
                    case "set":
                        client.setData().forPath(w[1], w[2].getBytes(StandardCharsets.UTF_8));
                        break;
                    case "delete":
                        client.delete().forPath(w[1]);
                        break;
                    case "tree":
                        tree(client, w[1]);
                        System.out.println("END");
                        break;
                    case "quit":
                        System.out.println("DONE");
                        System.out.flush();
                        return;
                    default:
                        System.out.println("FAILED unknown command " + line);
                        System.out.flush();
                        System.exit(1);
                }
                System.out.flush();
            }
        }
    }
}
