# kazoo (PyPI) against zk-server-lite: basic ops, a watch, transactions, Lock and Election.
# Usage: python3 kazoo_smoke.py <host:port>; prints "kazoo: OK" and exits 0 on success.
import sys, threading, time
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NodeExistsError, BadVersionError, NotEmptyError
from kazoo.recipe.lock import Lock
from kazoo.recipe.election import Election

hosts = sys.argv[1]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=10)
zk.ensure_path("/kz/a/b")
zk.set("/kz/a", b"data")
data, stat = zk.get("/kz/a")
assert data == b"data" and stat.version == 1, (data, stat)
events = []
ev = threading.Event()
def w(e):
    events.append(e); ev.set()
zk.get("/kz/a", watch=w)
zk.set("/kz/a", b"x")
assert ev.wait(5), "watch"
assert events[0].type == "CHANGED", events
try:
    zk.create("/kz/a"); raise SystemExit("expected exists")
except NodeExistsError:
    pass
try:
    zk.delete("/kz/a"); raise SystemExit("expected notempty")
except NotEmptyError:
    pass
p = zk.create("/kz/seq-", b"", sequence=True, ephemeral=True)
assert p == "/kz/seq-0000000001", p
t = zk.transaction()
t.create("/kz/t1", b"1")
t.set_data("/kz/a", b"y", version=2)
t.check("/kz/a", 3)
res = t.commit()
assert res[0] == "/kz/t1", res
t = zk.transaction()
t.create("/kz/t2")
t.check("/kz/a", 99)
res = t.commit()
assert isinstance(res[1], BadVersionError), res
assert zk.exists("/kz/t2") is None
children = sorted(zk.get_children("/kz"))
assert children == ["a", "seq-0000000001", "t1"], children
# Lock and Election recipes
lock = Lock(zk, "/kz/lock", "me")
with lock:
    assert lock.is_acquired
zk2 = KazooClient(hosts=hosts, timeout=10); zk2.start(timeout=10)
won = []
el = Election(zk2, "/kz/election", "cand")
th = threading.Thread(target=lambda: el.run(lambda: won.append(1)))
th.start(); th.join(10)
assert won == [1]
zk2.add_auth("digest", "u:p")
zk2.stop()
zk.stop(); zk.close()
print("kazoo: OK")
