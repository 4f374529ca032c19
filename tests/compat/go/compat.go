// Command compat drives an etcd server through the official Go client (clientv3 and
// clientv3/concurrency from etcd 3.4) and prints one RESULT line per feature, as
// described in tests/compat/README.md. It exits 1 if any feature failed.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	"go.etcd.io/etcd/mvcc/mvccpb"
	"go.etcd.io/etcd/version"
)

// compactedError is the text of the error for a read or compaction below the compacted
// revision.
const compactedError = "mvcc: required revision has been compacted"

// A feature is one check of the scenario, with a time budget for everything it does.
// The budgets, with 5 s to connect, add up to less than the README's 90 s for the
// whole scenario.
type feature struct {
	name   string
	budget time.Duration
	run    func(ctx context.Context, cli *clientv3.Client) error
}

var features = []feature{
	{"put_get", 5 * time.Second, putGet},
	{"range_prefix_limit", 5 * time.Second, rangePrefixLimit},
	{"txn_cas", 5 * time.Second, txnCas},
	{"lease", 27 * time.Second, lease},
	{"watch", 5 * time.Second, watch},
	{"compaction", 5 * time.Second, compaction},
	{"session", 10 * time.Second, session},
	{"mutex", 10 * time.Second, mutex},
	{"election", 10 * time.Second, election},
}

func main() {
	endpoint := os.Getenv("ETCD_ENDPOINT")
	if endpoint == "" {
		endpoint = "127.0.0.1:2379"
	}
	fmt.Printf("VERSION go clientv3 %s\n", version.Version)

	// A safety net: whatever hangs, the scenario ends within 90 s.
	time.AfterFunc(88*time.Second, func() {
		fmt.Println("scenario: out of time, giving up")
		os.Exit(1)
	})

	cli, err := connect(endpoint)
	if err != nil {
		for _, f := range features {
			report(f.name, err)
		}
		os.Exit(1)
	}
	defer cli.Close()

	failed := false
	for _, f := range features {
		ctx, cancel := context.WithTimeout(context.Background(), f.budget)
		err := clean(ctx, cli, f.name)
		if err == nil {
			err = f.run(ctx, cli)
		}
		cancel()
		report(f.name, err)
		if err != nil {
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// connect makes a client and checks, within 5 s, that the server answers a read, so that
// an absent server fails the scenario at once rather than feature by feature.
func connect(endpoint string) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %v", endpoint, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "/compat/"); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no answer from %s: %v", endpoint, err)
	}
	return cli, nil
}

// report prints the RESULT line of a feature.
func report(name string, err error) {
	if err == nil {
		fmt.Printf("RESULT %s PASS\n", name)
		return
	}
	why := strings.Join(strings.Fields(err.Error()), " ")
	fmt.Printf("RESULT %s FAIL %s\n", name, why)
}

// key returns the key called name among the feature's own keys.
func key(feature, name string) string {
	return "/compat/" + feature + "/" + name
}

// clean deletes whatever an earlier run left under the feature's prefix.
func clean(ctx context.Context, cli *clientv3.Client, feature string) error {
	if _, err := cli.Delete(ctx, key(feature, ""), clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("clean up %s: %v", key(feature, ""), err)
	}
	return nil
}

// getOne reads a key that must exist.
func getOne(ctx context.Context, cli *clientv3.Client, k string, opts ...clientv3.OpOption) (*mvccpb.KeyValue, error) {
	resp, err := cli.Get(ctx, k, opts...)
	if err != nil {
		return nil, fmt.Errorf("get %s: %v", k, err)
	}
	if len(resp.Kvs) != 1 {
		return nil, fmt.Errorf("get %s: %d keys, want 1", k, len(resp.Kvs))
	}
	return resp.Kvs[0], nil
}

// exists tells whether a key is there.
func exists(ctx context.Context, cli *clientv3.Client, k string) (bool, error) {
	resp, err := cli.Get(ctx, k)
	if err != nil {
		return false, fmt.Errorf("get %s: %v", k, err)
	}
	return len(resp.Kvs) > 0, nil
}

// wait waits for ch to deliver, at most for d (and never past ctx's deadline).
func wait(ctx context.Context, ch <-chan error, d time.Duration) (ok bool, err error) {
	select {
	case err := <-ch:
		return true, err
	case <-time.After(d):
		return false, nil
	case <-ctx.Done():
		return false, nil
	}
}

func putGet(ctx context.Context, cli *clientv3.Client) error {
	k := key("put_get", "k")

	put1, err := cli.Put(ctx, k, "v1")
	if err != nil {
		return fmt.Errorf("put v1: %v", err)
	}
	rev := put1.Header.Revision
	kv, err := getOne(ctx, cli, k)
	if err != nil {
		return err
	}
	if string(kv.Value) != "v1" || kv.CreateRevision != rev || kv.ModRevision != rev || kv.Version != 1 {
		return fmt.Errorf("after put v1 at revision %d: got value %q create %d mod %d version %d, want v1 %d %d 1",
			rev, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, rev, rev)
	}

	put2, err := cli.Put(ctx, k, "v2")
	if err != nil {
		return fmt.Errorf("put v2: %v", err)
	}
	if put2.Header.Revision != rev+1 {
		return fmt.Errorf("put v2: revision %d, want %d", put2.Header.Revision, rev+1)
	}
	kv, err = getOne(ctx, cli, k)
	if err != nil {
		return err
	}
	if string(kv.Value) != "v2" || kv.CreateRevision != rev || kv.ModRevision != rev+1 || kv.Version != 2 {
		return fmt.Errorf("after put v2: got value %q create %d mod %d version %d, want v2 %d %d 2",
			kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, rev, rev+1)
	}
	return nil
}

func rangePrefixLimit(ctx context.Context, cli *clientv3.Client) error {
	// The prefix is ".../p/"; ".../p0" is the first key after every key under it.
	prefix := key("range_prefix_limit", "p/")
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		if _, err := cli.Put(ctx, prefix+name, name); err != nil {
			return fmt.Errorf("put %s: %v", prefix+name, err)
		}
	}
	outside := key("range_prefix_limit", "p0")
	if _, err := cli.Put(ctx, outside, "outside"); err != nil {
		return fmt.Errorf("put %s: %v", outside, err)
	}

	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithLimit(2))
	if err != nil {
		return fmt.Errorf("get prefix %s limit 2: %v", prefix, err)
	}
	var got []string
	for _, kv := range resp.Kvs {
		got = append(got, strings.TrimPrefix(string(kv.Key), prefix))
	}
	if strings.Join(got, ",") != "a,b" || !resp.More || resp.Count != 5 {
		return fmt.Errorf("get prefix limit 2: keys %v more %v count %d, want [a b] true 5", got, resp.More, resp.Count)
	}
	return nil
}

func txnCas(ctx context.Context, cli *clientv3.Client) error {
	k := key("txn_cas", "k")
	if _, err := cli.Put(ctx, k, "old"); err != nil {
		return fmt.Errorf("put old: %v", err)
	}
	cas := func() (*clientv3.TxnResponse, error) {
		return cli.Txn(ctx).
			If(clientv3.Compare(clientv3.Value(k), "=", "old")).
			Then(clientv3.OpPut(k, "new")).
			Else(clientv3.OpGet(k)).
			Commit()
	}

	first, err := cas()
	if err != nil {
		return fmt.Errorf("first txn: %v", err)
	}
	if !first.Succeeded || len(first.Responses) != 1 || first.Responses[0].GetResponsePut() == nil {
		return fmt.Errorf("first txn: succeeded %v with responses %v, want true with one put", first.Succeeded, first.Responses)
	}

	second, err := cas()
	if err != nil {
		return fmt.Errorf("second txn: %v", err)
	}
	if second.Succeeded || len(second.Responses) != 1 || second.Responses[0].GetResponseRange() == nil {
		return fmt.Errorf("second txn: succeeded %v with responses %v, want false with one range", second.Succeeded, second.Responses)
	}
	kvs := second.Responses[0].GetResponseRange().Kvs
	if len(kvs) != 1 || string(kvs[0].Value) != "new" {
		return fmt.Errorf("second txn: else branch got %v, want the value new", kvs)
	}
	return nil
}

func lease(ctx context.Context, cli *clientv3.Client) error {
	const ttl = 5 // seconds
	short, err := cli.Grant(ctx, ttl)
	if err != nil {
		return fmt.Errorf("grant first lease: %v", err)
	}
	kept, err := cli.Grant(ctx, ttl)
	if err != nil {
		return fmt.Errorf("grant second lease: %v", err)
	}
	k1, k2 := key("lease", "expires"), key("lease", "kept")
	if _, err := cli.Put(ctx, k1, "1", clientv3.WithLease(short.ID)); err != nil {
		return fmt.Errorf("put %s: %v", k1, err)
	}
	if _, err := cli.Put(ctx, k2, "2", clientv3.WithLease(kept.ID)); err != nil {
		return fmt.Errorf("put %s: %v", k2, err)
	}

	// Keep the second lease alive until this feature ends; drain its responses.
	kaCtx, stopKeepAlive := context.WithCancel(ctx)
	defer stopKeepAlive()
	acks, err := cli.KeepAlive(kaCtx, kept.ID)
	if err != nil {
		return fmt.Errorf("keep alive: %v", err)
	}
	go func() {
		for range acks {
		}
	}()

	// The first key goes when its lease expires: poll for at most 20 s.
	start := time.Now()
	for {
		there, err := exists(ctx, cli, k1)
		if err != nil {
			return err
		}
		if !there {
			break
		}
		if time.Since(start) > 20*time.Second {
			return fmt.Errorf("%s still there 20 s after its %d s lease was granted", k1, ttl)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A full TTL later, the kept key is still there.
	time.Sleep(ttl * time.Second)
	if there, err := exists(ctx, cli, k2); err != nil {
		return err
	} else if !there {
		return fmt.Errorf("%s gone although its lease was kept alive", k2)
	}

	if _, err := cli.Revoke(ctx, kept.ID); err != nil {
		return fmt.Errorf("revoke: %v", err)
	}
	if there, err := exists(ctx, cli, k2); err != nil {
		return err
	} else if there {
		return fmt.Errorf("%s still there after its lease was revoked", k2)
	}
	return nil
}

func watch(ctx context.Context, cli *clientv3.Client) error {
	k := key("watch", "k")
	put0, err := cli.Put(ctx, k, "0")
	if err != nil {
		return fmt.Errorf("put 0: %v", err)
	}
	r := put0.Header.Revision

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	events := cli.Watch(watchCtx, k, clientv3.WithRev(r+1), clientv3.WithPrevKV())

	if _, err := cli.Put(ctx, k, "1"); err != nil {
		return fmt.Errorf("put 1: %v", err)
	}
	if _, err := cli.Delete(ctx, k); err != nil {
		return fmt.Errorf("delete: %v", err)
	}

	var got []*clientv3.Event
	for len(got) < 2 {
		select {
		case resp, ok := <-events:
			if !ok {
				return fmt.Errorf("watch closed after %d events: %v", len(got), ctx.Err())
			}
			if err := resp.Err(); err != nil {
				return fmt.Errorf("watch: %v", err)
			}
			got = append(got, resp.Events...)
		case <-ctx.Done():
			return fmt.Errorf("watch: %d events before the deadline, want 2", len(got))
		}
	}
	if len(got) != 2 {
		return fmt.Errorf("watch: %d events, want 2", len(got))
	}
	if err := checkEvent(got[0], mvccpb.PUT, r+1, "1", "0"); err != nil {
		return fmt.Errorf("first event: %v", err)
	}
	if err := checkEvent(got[1], mvccpb.DELETE, r+2, "", "1"); err != nil {
		return fmt.Errorf("second event: %v", err)
	}
	return nil
}

// checkEvent compares a watch event with what is expected of it.
func checkEvent(ev *clientv3.Event, typ mvccpb.Event_EventType, rev int64, value, prev string) error {
	prevValue := "<no prev_kv>"
	if ev.PrevKv != nil {
		prevValue = string(ev.PrevKv.Value)
	}
	if ev.Type != typ || ev.Kv.ModRevision != rev || string(ev.Kv.Value) != value || prevValue != prev {
		return fmt.Errorf("got %s at %d value %q prev %q, want %s at %d value %q prev %q",
			ev.Type, ev.Kv.ModRevision, ev.Kv.Value, prevValue, typ, rev, value, prev)
	}
	return nil
}

func compaction(ctx context.Context, cli *clientv3.Client) error {
	k := key("compaction", "k")
	var revs []int64
	for _, v := range []string{"1", "2", "3"} {
		resp, err := cli.Put(ctx, k, v)
		if err != nil {
			return fmt.Errorf("put %s: %v", v, err)
		}
		revs = append(revs, resp.Header.Revision)
	}
	r1, r2 := revs[0], revs[1]

	if _, err := cli.Compact(ctx, r2); err != nil {
		return fmt.Errorf("compact %d: %v", r2, err)
	}
	if _, err := cli.Get(ctx, k, clientv3.WithRev(r1)); err == nil || !strings.Contains(err.Error(), compactedError) {
		return fmt.Errorf("get at compacted revision %d: got error %v, want %q", r1, err, compactedError)
	}
	kv, err := getOne(ctx, cli, k, clientv3.WithRev(r2))
	if err != nil {
		return fmt.Errorf("at revision %d: %v", r2, err)
	}
	if string(kv.Value) != "2" {
		return fmt.Errorf("get at revision %d: value %q, want 2", r2, kv.Value)
	}
	if _, err := cli.Compact(ctx, r2); err == nil || !strings.Contains(err.Error(), compactedError) {
		return fmt.Errorf("compact %d again: got error %v, want %q", r2, err, compactedError)
	}
	return nil
}

func session(ctx context.Context, cli *clientv3.Client) error {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("new session: %v", err)
	}
	id := s.Lease()

	live, err := cli.TimeToLive(ctx, id)
	if err != nil {
		s.Close()
		return fmt.Errorf("time to live of the session's lease: %v", err)
	}
	if live.TTL <= 0 {
		s.Close()
		return fmt.Errorf("session's lease %x has TTL %d, want > 0", id, live.TTL)
	}

	if err := s.Close(); err != nil {
		return fmt.Errorf("close session: %v", err)
	}
	gone, err := cli.TimeToLive(ctx, id)
	if err != nil {
		return fmt.Errorf("time to live after close: %v", err)
	}
	if gone.TTL != -1 {
		return fmt.Errorf("after close the session's lease %x has TTL %d, want -1", id, gone.TTL)
	}
	return nil
}

// twoSessions opens two sessions of 10 s, for two contenders.
func twoSessions(ctx context.Context, cli *clientv3.Client) (*concurrency.Session, *concurrency.Session, error) {
	s1, err := concurrency.NewSession(cli, concurrency.WithTTL(10), concurrency.WithContext(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("first session: %v", err)
	}
	s2, err := concurrency.NewSession(cli, concurrency.WithTTL(10), concurrency.WithContext(ctx))
	if err != nil {
		s1.Close()
		return nil, nil, fmt.Errorf("second session: %v", err)
	}
	return s1, s2, nil
}

func mutex(ctx context.Context, cli *clientv3.Client) error {
	s1, s2, err := twoSessions(ctx, cli)
	if err != nil {
		return err
	}
	defer s1.Close()
	defer s2.Close()

	name := key("mutex", "lock")
	m1, m2 := concurrency.NewMutex(s1, name), concurrency.NewMutex(s2, name)
	var order []string

	if err := m1.Lock(ctx); err != nil {
		return fmt.Errorf("m1 lock: %v", err)
	}
	order = append(order, "m1 locked")

	acquired := make(chan error, 1)
	go func() { acquired <- m2.Lock(ctx) }()
	if ok, err := wait(ctx, acquired, time.Second); ok {
		return fmt.Errorf("m2 lock returned (error %v) while m1 held the lock", err)
	}

	if err := m1.Unlock(ctx); err != nil {
		return fmt.Errorf("m1 unlock: %v", err)
	}
	order = append(order, "m1 unlocked")

	ok, err := wait(ctx, acquired, 5*time.Second)
	if !ok {
		return fmt.Errorf("m2 did not acquire the lock within 5 s of m1 unlocking")
	}
	if err != nil {
		return fmt.Errorf("m2 lock: %v", err)
	}
	order = append(order, "m2 locked")

	if err := m2.Unlock(ctx); err != nil {
		return fmt.Errorf("m2 unlock: %v", err)
	}
	if got := strings.Join(order, ", "); got != "m1 locked, m1 unlocked, m2 locked" {
		return fmt.Errorf("hand-over order %q", got)
	}
	return nil
}

func election(ctx context.Context, cli *clientv3.Client) error {
	s1, s2, err := twoSessions(ctx, cli)
	if err != nil {
		return err
	}
	defer s1.Close()
	defer s2.Close()

	name := key("election", "e")
	e1, e2 := concurrency.NewElection(s1, name), concurrency.NewElection(s2, name)

	if err := e1.Campaign(ctx, "a"); err != nil {
		return fmt.Errorf("e1 campaign: %v", err)
	}

	// An observer of its own follows the leader.
	observeCtx, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	leaders := concurrency.NewElection(s1, name).Observe(observeCtx)
	if err := observe(ctx, leaders, "a"); err != nil {
		return err
	}

	elected := make(chan error, 1)
	go func() { elected <- e2.Campaign(ctx, "b") }()
	if ok, err := wait(ctx, elected, time.Second); ok {
		return fmt.Errorf("e2 campaign returned (error %v) while e1 led", err)
	}

	if err := e1.Resign(ctx); err != nil {
		return fmt.Errorf("e1 resign: %v", err)
	}
	ok, err := wait(ctx, elected, 5*time.Second)
	if !ok {
		return fmt.Errorf("e2 not elected within 5 s of e1 resigning")
	}
	if err != nil {
		return fmt.Errorf("e2 campaign: %v", err)
	}

	leader, err := e2.Leader(ctx)
	if err != nil {
		return fmt.Errorf("leader: %v", err)
	}
	if len(leader.Kvs) != 1 || string(leader.Kvs[0].Value) != "b" {
		return fmt.Errorf("leader after e1 resigned: %v, want b", leader.Kvs)
	}
	if err := observe(ctx, leaders, "b"); err != nil {
		return err
	}
	return e2.Resign(ctx)
}

// observe waits, at most 5 s, for an observer to report want as the leader.
func observe(ctx context.Context, leaders <-chan clientv3.GetResponse, want string) error {
	timeout := time.After(5 * time.Second)
	var seen []string
	for {
		select {
		case resp, ok := <-leaders:
			if !ok {
				return fmt.Errorf("observer closed having seen %v, want %s", seen, want)
			}
			if len(resp.Kvs) > 0 {
				seen = append(seen, string(resp.Kvs[0].Value))
				if string(resp.Kvs[0].Value) == want {
					return nil
				}
			}
		case <-timeout:
			return fmt.Errorf("observer saw %v in 5 s, want %s", seen, want)
		case <-ctx.Done():
			return fmt.Errorf("observer saw %v before the deadline, want %s", seen, want)
		}
	}
}
