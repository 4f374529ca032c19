'use strict';
// Compatibility scenario for the Node `etcd3` client (contract: ../README.md).
//
// Drives the server at $ETCD_ENDPOINT through the unchanged library and prints
// `VERSION ...` and one `RESULT <feature> PASS|FAIL <why>` line per feature.
// The library returns int64 fields (revisions, counts) as decimal strings.

const { Etcd3, EtcdLockFailedError } = require('etcd3');
const { version } = require('etcd3/package.json');

const COMPACTED = 'mvcc: required revision has been compacted';
const SCENARIO_LIMIT_MS = 85000; // the README allows 90 s for a whole scenario

class Fail extends Error {}

function check(condition, why) {
  if (!condition) throw new Fail(why);
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

// Resolves like `promise`, or fails with `what` after `ms` milliseconds.
function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Fail(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function connect() {
  return new Etcd3({ hosts: `http://${process.env.ETCD_ENDPOINT}`, dialTimeout: 5000 });
}

// The feature's key prefix, emptied first so a reused server still works.
async function fresh(client, feature) {
  const prefix = `/compat/${feature}/`;
  await client.delete().prefix(prefix).exec();
  return prefix;
}

// Runs `call`, which must fail with etcd's compacted-revision error.
async function expectCompacted(call, what) {
  let result;
  try {
    result = await call();
  } catch (err) {
    check(String(err.message).includes(COMPACTED),
      `${what}: error ${err.name} "${err.message}", expected "${COMPACTED}"`);
    return;
  }
  throw new Fail(`${what} succeeded (${JSON.stringify(result)}), expected "${COMPACTED}"`);
}

async function put_get(client) {
  const key = (await fresh(client, 'put_get')) + 'k';
  const rev1 = Number((await client.put(key).value('v1').exec()).header.revision);
  let resp = await client.get(key).exec();
  let kv = resp.kvs[0];
  check(kv && kv.value.toString() === 'v1', `get after put v1 returned ${kv && kv.value}`);
  check(Number(kv.create_revision) === rev1 && Number(kv.mod_revision) === rev1,
    `create/mod revision ${kv.create_revision}/${kv.mod_revision}, put revision ${rev1}`);
  check(kv.version === '1', `version ${kv.version} after first put`);

  const rev2 = Number((await client.put(key).value('v2').exec()).header.revision);
  check(rev2 === rev1 + 1, `second put at revision ${rev2}, first at ${rev1}`);
  resp = await client.get(key).exec();
  kv = resp.kvs[0];
  check(kv && kv.value.toString() === 'v2', `get after put v2 returned ${kv && kv.value}`);
  check(kv.version === '2', `version ${kv.version} after second put`);
  check(Number(kv.create_revision) === rev1,
    `create revision ${kv.create_revision} changed from ${rev1}`);
  check(Number(kv.mod_revision) === rev2, `mod revision ${kv.mod_revision}, second put at ${rev2}`);
}

async function range_prefix_limit(client) {
  const base = await fresh(client, 'range_prefix_limit');
  const prefix = base + 'p/';
  for (const name of ['a', 'b', 'c', 'd', 'e']) {
    await client.put(prefix + name).value(name).exec();
  }
  // "p0" is exactly the prefix's range end, the first key past the prefix.
  await client.put(base + 'p0').value('outside').exec();

  const resp = await client.getAll().prefix(prefix).limit(2).exec();
  const keys = resp.kvs.map(kv => kv.key.toString());
  check(JSON.stringify(keys) === JSON.stringify([prefix + 'a', prefix + 'b']),
    `limit 2 returned keys ${JSON.stringify(keys)}`);
  check(resp.more === true, `more = ${resp.more} with 5 keys and limit 2`);
  check(resp.count === '5', `count = ${resp.count}, expected 5`);
}

async function txn_cas(client) {
  const key = (await fresh(client, 'txn_cas')) + 'k';
  await client.put(key).value('old').exec();
  const cas = () => client
    .if(key, 'Value', '==', 'old')
    .then(client.put(key).value('new'))
    .else(client.get(key))
    .commit();

  let resp = await cas();
  check(resp.succeeded === true, 'first txn did not succeed');
  check(resp.responses.length === 1 && resp.responses[0].response === 'response_put',
    `first txn responses ${JSON.stringify(resp.responses.map(r => r.response))}`);

  resp = await cas();
  check(resp.succeeded === false, 'second txn succeeded');
  const range = resp.responses.length === 1 && resp.responses[0].response_range;
  check(range, `second txn responses ${JSON.stringify(resp.responses.map(r => r.response))}`);
  const values = range.kvs.map(kv => kv.value.toString());
  check(JSON.stringify(values) === '["new"]', `else-branch get returned ${JSON.stringify(values)}`);
}

async function lease(client) {
  const prefix = await fresh(client, 'lease');
  const short = client.lease(5, { autoKeepAlive: false });
  const kept = client.lease(5); // the library keeps this one alive by itself
  const lost = [];
  kept.on('lost', err => lost.push(err.message));
  try {
    await short.put(prefix + 'short').value('1').exec();
    await kept.put(prefix + 'kept').value('2').exec();

    const deadline = Date.now() + 20000;
    while (await client.get(prefix + 'short').exists()) {
      check(Date.now() < deadline, 'key on the unrefreshed 5 s lease still there after 20 s');
      await sleep(200);
    }
    await sleep(5000);
    check(lost.length === 0, `kept-alive lease lost: ${lost[0]}`);
    check(await client.get(prefix + 'kept').string() === '2',
      'key on the kept-alive lease gone a TTL after the other expired');

    await kept.revoke();
    check(!(await client.get(prefix + 'kept').exists()), 'key still there after revoking its lease');
  } finally {
    short.release();
    kept.release();
  }
}

async function watch(client) {
  const key = (await fresh(client, 'watch')) + 'k';
  const rev = Number((await client.put(key).value('0').exec()).header.revision);
  const events = [];
  let arrived;
  const both = new Promise(resolve => { arrived = resolve; });
  const watcher = await within(10000,
    client.watch().key(key).startRevision(String(rev + 1)).withPreviousKV().create(),
    'creating the watch');
  watcher.on('data', res => {
    events.push(...res.events);
    if (events.length >= 2) arrived();
  });
  try {
    await client.put(key).value('1').exec();
    await client.delete().key(key).exec();
    await within(10000, both, `waiting for 2 events (got ${events.length})`);
  } finally {
    await watcher.cancel();
  }

  check(events.length === 2, `${events.length} events, expected 2`);
  const [put, del] = events;
  const describe = e => `${e.type} value "${e.kv.value}" at ${e.kv.mod_revision} prev "${e.prev_kv && e.prev_kv.value}"`;
  check(put.type === 'Put' && put.kv.value.toString() === '1' &&
      Number(put.kv.mod_revision) === rev + 1 && put.prev_kv && put.prev_kv.value.toString() === '0',
    `first event ${describe(put)}, expected Put "1" at ${rev + 1} prev "0"`);
  check(del.type === 'Delete' && Number(del.kv.mod_revision) === rev + 2 &&
      del.prev_kv && del.prev_kv.value.toString() === '1',
    `second event ${describe(del)}, expected Delete at ${rev + 2} prev "1"`);
}

async function compaction(client) {
  const key = (await fresh(client, 'compaction')) + 'k';
  const revs = [];
  for (const value of ['1', '2', '3']) {
    revs.push((await client.put(key).value(value).exec()).header.revision);
  }
  const [r1, r2] = revs;
  // The library has no compaction helper; it exposes the KV service as `kv`.
  await client.kv.compact({ revision: r2 });

  await expectCompacted(() => client.get(key).revision(r1).exec(), `get at compacted revision ${r1}`);
  const value = await client.get(key).revision(r2).string();
  check(value === '2', `get at revision ${r2} returned ${value}`);
  await expectCompacted(() => client.kv.compact({ revision: r2 }), `compacting ${r2} again`);
}

async function lock(client) {
  const key = (await fresh(client, 'lock')) + 'm';
  const other = connect(); // the second contender has its own connection
  try {
    const first = await within(10000, client.lock(key).ttl(10).acquire(), 'first acquire');
    // etcd3's Lock does not queue: a contender fails at once while it is held.
    const second = other.lock(key).ttl(10);
    let refused = null;
    try {
      await within(10000, second.acquire(), 'second acquire while held');
    } catch (err) {
      refused = err;
    }
    check(refused instanceof EtcdLockFailedError,
      `second acquire while held: ${refused ? refused.message : 'succeeded'}`);
    await first.release();
    await within(10000, second.acquire(), 'second acquire after release');
    check(await client.get(key).exists(), 'lock key missing while the second holds it');
    await second.release();
    check(!(await client.get(key).exists()), 'lock key still there after release');
  } finally {
    other.close();
  }
}

async function election(client) {
  const ns = client.namespace(await fresh(client, 'election'));
  const other = connect(); // the second candidate has its own connection
  const theirs = other.namespace('/compat/election/').election('e', 10);
  const ours = ns.election('e', 10);
  let observer;
  try {
    const first = ours.campaign('one');
    await within(10000, first.wait(), 'first campaign');
    observer = await within(10000, ours.observe(), 'observe');
    check(observer.leader() === 'one', `observer sees leader ${observer.leader()}`);
    check(await ours.leader() === 'one', `leader() is ${await ours.leader()}`);

    const second = theirs.campaign('two');
    let elected = false;
    second.on('elected', () => { elected = true; });
    const secondElected = second.wait();
    secondElected.catch(() => undefined); // awaited below
    await sleep(1500);
    check(!elected, 'second candidate elected while the first leads');

    const changed = new Promise(resolve => observer.on('change', value => {
      if (value === 'two') resolve();
    }));
    await first.resign();
    await within(10000, secondElected, 'second candidate after resign');
    await within(10000, changed, 'observer seeing the new leader');
    check(await ours.leader() === 'two', `leader() after resign is ${await ours.leader()}`);
    await second.resign();
  } finally {
    if (observer) await observer.cancel();
    other.close();
  }
}

const FEATURES = [put_get, range_prefix_limit, txn_cas, lease, watch, compaction, lock, election];

async function main() {
  console.log(`VERSION node etcd3 ${version}`);
  let current = 'startup';
  setTimeout(() => {
    console.log(`RESULT ${current} FAIL scenario exceeded ${SCENARIO_LIMIT_MS / 1000} s`);
    process.exit(1);
  }, SCENARIO_LIMIT_MS).unref();

  const client = connect();
  let failed = false;
  for (const feature of FEATURES) {
    current = feature.name;
    try {
      await feature(client);
      console.log(`RESULT ${feature.name} PASS`);
    } catch (err) {
      failed = true;
      const why = err instanceof Fail ? err.message : `${err.name}: ${err.message}`;
      console.log(`RESULT ${feature.name} FAIL ${why.split(/\s+/).join(' ')}`);
    }
  }
  client.close();
  process.exit(failed ? 1 : 0);
}

main();
