"""Compatibility scenario for the Python `etcd3` client (contract: ../README.md).

Drives the server at $ETCD_ENDPOINT through the unchanged library and prints
`VERSION ...` and one `RESULT <feature> PASS|FAIL <why>` line per feature.

etcd3 0.12.0 accepts `limit` and `revision` in its range helpers but never puts
them into the request, so range_prefix_limit and compaction send their
RangeRequest through the client's own KV stub (`client.kvstub`).
"""

import os
import queue
import sys
import threading
import time
from importlib.metadata import version

import grpc

import etcd3
from etcd3 import etcdrpc
from etcd3.utils import increment_last_byte
from etcd3.events import DeleteEvent, PutEvent

COMPACTED = "mvcc: required revision has been compacted"
SCENARIO_LIMIT_S = 85  # the README allows 90 s for a whole scenario
RPC_TIMEOUT_S = 10


class Fail(Exception):
    """A check did not hold; the message says what was expected and got."""


def check(condition, why):
    if not condition:
        raise Fail(why)


def connect():
    host, port = os.environ["ETCD_ENDPOINT"].rsplit(":", 1)
    return etcd3.client(host=host, port=int(port), timeout=RPC_TIMEOUT_S)


def fresh(client, feature):
    """The feature's key prefix, emptied first so a reused server still works."""
    prefix = f"/compat/{feature}/"
    client.delete_prefix(prefix)
    return prefix


def range_request(client, **fields):
    return client.kvstub.Range(etcdrpc.RangeRequest(**fields), RPC_TIMEOUT_S)


def expect_compacted(call, what):
    """Runs `call`, which must fail with etcd's compacted-revision error."""
    try:
        call()
    except grpc.RpcError as err:
        check(COMPACTED in (err.details() or ""),
              f"{what}: error {err.code()} {err.details()!r}, "
              f"expected {COMPACTED!r}")
        return
    raise Fail(f"{what} succeeded, expected {COMPACTED!r}")


def put_get(client):
    key = fresh(client, "put_get") + "k"
    rev1 = client.put(key, "v1").header.revision
    value, meta = client.get(key)
    check(value == b"v1", f"get after put v1 returned {value!r}")
    check(meta.create_revision == rev1 and meta.mod_revision == rev1,
          f"create/mod revision {meta.create_revision}/{meta.mod_revision}, "
          f"put revision {rev1}")
    check(meta.version == 1, f"version {meta.version} after first put")

    rev2 = client.put(key, "v2").header.revision
    check(rev2 == rev1 + 1, f"second put at revision {rev2}, first at {rev1}")
    value, meta = client.get(key)
    check(value == b"v2", f"get after put v2 returned {value!r}")
    check(meta.version == 2, f"version {meta.version} after second put")
    check(meta.create_revision == rev1,
          f"create revision {meta.create_revision} changed from {rev1}")
    check(meta.mod_revision == rev2,
          f"mod revision {meta.mod_revision}, second put at {rev2}")


def range_prefix_limit(client):
    base = fresh(client, "range_prefix_limit")
    prefix = base + "p/"
    for name in "abcde":
        client.put(prefix + name, name)
    # "p0" is exactly the prefix's range end, the first key past the prefix.
    client.put(base + "p0", "outside")

    resp = range_request(client, key=prefix.encode(),
                         range_end=increment_last_byte(prefix.encode()),
                         limit=2)
    keys = [kv.key.decode() for kv in resp.kvs]
    check(keys == [prefix + "a", prefix + "b"], f"limit 2 returned keys {keys}")
    check(resp.more, "more = false with 5 keys and limit 2")
    check(resp.count == 5, f"count = {resp.count}, expected 5")


def txn_cas(client):
    key = fresh(client, "txn_cas") + "k"
    client.put(key, "old")

    def cas():
        return client.transaction(
            compare=[client.transactions.value(key) == "old"],
            success=[client.transactions.put(key, "new")],
            failure=[client.transactions.get(key)])

    succeeded, responses = cas()
    check(succeeded is True, "first txn did not succeed")
    # A put response comes back as the raw ResponseOp, a get as a list.
    check(len(responses) == 1 and not isinstance(responses[0], list)
          and responses[0].WhichOneof("response") == "response_put",
          f"first txn responses {responses!r}")

    succeeded, responses = cas()
    check(succeeded is False, "second txn succeeded")
    check(len(responses) == 1 and isinstance(responses[0], list),
          f"second txn responses {responses!r}")
    values = [value for value, _ in responses[0]]
    check(values == [b"new"], f"else-branch get returned {values}")


def lease(client):
    prefix = fresh(client, "lease")
    short, kept = client.lease(5), client.lease(5)
    client.put(prefix + "short", "1", lease=short)
    client.put(prefix + "kept", "2", lease=kept)

    # The library has no automatic keep-alive: refresh once a second.
    stop, errors = threading.Event(), []

    def keep_alive():
        while not stop.wait(1):
            try:
                kept.refresh()
            except Exception as err:  # reported by the main thread
                errors.append(repr(err))

    thread = threading.Thread(target=keep_alive, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while client.get(prefix + "short")[0] is not None:
            check(time.monotonic() < deadline,
                  "key on the unrefreshed 5 s lease still there after 20 s")
            time.sleep(0.2)
        time.sleep(5)
        check(not errors, f"keep-alive failed: {errors[:1]}")
        check(client.get(prefix + "kept")[0] == b"2",
              "key on the kept-alive lease gone a TTL after the other expired")
    finally:
        stop.set()
        thread.join(5)

    kept.revoke()
    check(client.get(prefix + "kept")[0] is None,
          "key still there after revoking its lease")


def watch(client):
    key = fresh(client, "watch") + "k"
    rev = client.put(key, "0").header.revision
    responses = queue.Queue()
    watch_id = client.add_watch_callback(key, responses.put,
                                         start_revision=rev + 1, prev_kv=True)
    try:
        client.put(key, "1")
        client.delete(key)
        events, deadline = [], time.monotonic() + 10
        while len(events) < 2:
            try:
                item = responses.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise Fail(f"only {len(events)} event(s) within 10 s")
            if isinstance(item, Exception):
                raise Fail(f"watch failed: {item!r}")
            events.extend(item.events)
    finally:
        client.cancel_watch(watch_id)

    check(len(events) == 2, f"{len(events)} events, expected 2")
    put, delete = events
    check(isinstance(put, PutEvent) and put.value == b"1"
          and put.mod_revision == rev + 1 and put.prev_value == b"0",
          f"first event {type(put).__name__} value {put.value!r} at "
          f"{put.mod_revision} prev {put.prev_value!r}, expected PUT '1' at "
          f"{rev + 1} prev '0'")
    check(isinstance(delete, DeleteEvent) and delete.mod_revision == rev + 2
          and delete.prev_value == b"1",
          f"second event {type(delete).__name__} at {delete.mod_revision} "
          f"prev {delete.prev_value!r}, expected DELETE at {rev + 2} prev '1'")


def compaction(client):
    key = fresh(client, "compaction") + "k"
    r1, r2, _ = (client.put(key, v).header.revision for v in ("1", "2", "3"))
    client.compact(r2)

    expect_compacted(lambda: range_request(client, key=key.encode(), revision=r1),
                     f"get at compacted revision {r1}")
    resp = range_request(client, key=key.encode(), revision=r2)
    values = [kv.value for kv in resp.kvs]
    check(values == [b"2"], f"get at revision {r2} returned {values}")
    expect_compacted(lambda: client.compact(r2), f"compacting {r2} again")


class CompatLock(etcd3.Lock):
    """The library's lock, with its key under this feature's prefix."""
    lock_prefix = "/compat/lock/"


def lock(client):
    fresh(client, "lock")
    other = connect()  # the second contender has its own connection
    first = CompatLock("m", ttl=10, etcd_client=client)
    second = CompatLock("m", ttl=10, etcd_client=other)
    check(first.acquire(timeout=5), "first contender could not acquire")

    acquired = {}

    def contend():
        acquired["ok"] = second.acquire(timeout=15)
        acquired["at"] = time.monotonic()

    thread = threading.Thread(target=contend, daemon=True)
    thread.start()
    try:
        thread.join(1.5)
        check(not acquired, "second contender acquired while the first held it")
        released_at = time.monotonic()
        check(first.release(), "first contender's release failed")
        thread.join(15)
        check(acquired.get("ok"), "second contender did not acquire after release")
        check(acquired["at"] >= released_at, "second acquired before the release")
        check(second.is_acquired(), "second contender does not hold the lock")
        check(second.release(), "second contender's release failed")
    finally:
        thread.join(15)


FEATURES = [put_get, range_prefix_limit, txn_cas, lease, watch, compaction, lock]


def main():
    print(f"VERSION python etcd3 {version('etcd3')}", flush=True)
    current = ["startup"]

    def overrun():
        print(f"RESULT {current[0]} FAIL scenario exceeded {SCENARIO_LIMIT_S} s",
              flush=True)
        os._exit(1)

    watchdog = threading.Timer(SCENARIO_LIMIT_S, overrun)
    watchdog.daemon = True
    watchdog.start()

    client = connect()
    failed = False
    for feature in FEATURES:
        current[0] = feature.__name__
        try:
            feature(client)
            print(f"RESULT {feature.__name__} PASS", flush=True)
        except Exception as err:
            failed = True
            why = str(err) if isinstance(err, Fail) else f"{type(err).__name__}: {err}"
            print(f"RESULT {feature.__name__} FAIL {' '.join(why.split())}",
                  flush=True)
    watchdog.cancel()
    # No client.close(): etcd3 0.12's watch thread prints a traceback when its
    # channel closes under it; the process exit ends the connections.
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
