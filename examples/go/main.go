// Command example talks to etcdlite (or any etcd v3 server) with the official Go client:
// put and get, a compare-and-swap transaction, a watch, a lease and a lock.
//
// The endpoint comes from ETCD_ENDPOINT (host:port), 127.0.0.1:2379 by default.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
)

func main() {
	endpoint := os.Getenv("ETCD_ENDPOINT")
	if endpoint == "" {
		endpoint = "127.0.0.1:2379"
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		log.Fatalf("connect to %s: %v", endpoint, err)
	}
	defer cli.Close()
	fmt.Println("connected to", endpoint)

	// Every call gets at most 30 s in all.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	putAndGet(ctx, cli)
	compareAndSwap(ctx, cli)
	watch(ctx, cli)
	lease(ctx, cli)
	lock(ctx, cli)
}

func putAndGet(ctx context.Context, cli *clientv3.Client) {
	put, err := cli.Put(ctx, "/example/greeting", "hello")
	check("put", err)
	fmt.Println("put /example/greeting = hello at revision", put.Header.Revision)

	get, err := cli.Get(ctx, "/example/greeting")
	check("get", err)
	for _, kv := range get.Kvs {
		fmt.Printf("get %s = %s (version %d)\n", kv.Key, kv.Value, kv.Version)
	}
}

func compareAndSwap(ctx context.Context, cli *clientv3.Client) {
	// Replace "hello" by "bonjour", but only if nobody changed it in between.
	txn, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value("/example/greeting"), "=", "hello")).
		Then(clientv3.OpPut("/example/greeting", "bonjour")).
		Else(clientv3.OpGet("/example/greeting")).
		Commit()
	check("txn", err)
	fmt.Println("txn: the greeting was still hello, swapped for bonjour:", txn.Succeeded)
}

func watch(ctx context.Context, cli *clientv3.Client) {
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	// Start from the next revision so that no change is missed.
	get, err := cli.Get(ctx, "/example/counter")
	check("get", err)
	events := cli.Watch(watchCtx, "/example/counter", clientv3.WithRev(get.Header.Revision+1))

	for _, n := range []string{"1", "2", "3"} {
		_, err := cli.Put(ctx, "/example/counter", n)
		check("put", err)
	}
	seen := 0
	for resp := range events {
		check("watch", resp.Err())
		for _, ev := range resp.Events {
			fmt.Printf("watch: %s %s = %s at revision %d\n", ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
			seen++
		}
		if seen == 3 {
			break
		}
	}
}

func lease(ctx context.Context, cli *clientv3.Client) {
	grant, err := cli.Grant(ctx, 2)
	check("grant", err)
	_, err = cli.Put(ctx, "/example/ephemeral", "here for 2 s", clientv3.WithLease(grant.ID))
	check("put", err)
	fmt.Printf("lease %x granted for %d s, /example/ephemeral attached to it\n", grant.ID, grant.TTL)

	// Without keep-alives the lease expires, and its key with it.
	for {
		get, err := cli.Get(ctx, "/example/ephemeral")
		check("get", err)
		if len(get.Kvs) == 0 {
			fmt.Println("lease expired: /example/ephemeral is gone")
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func lock(ctx context.Context, cli *clientv3.Client) {
	// A session holds a lease that is kept alive while the program runs.
	session, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	check("session", err)
	defer session.Close()

	mutex := concurrency.NewMutex(session, "/example/lock")
	check("lock", mutex.Lock(ctx))
	fmt.Println("locked /example/lock as", mutex.Key())
	check("unlock", mutex.Unlock(ctx))
	fmt.Println("unlocked /example/lock")
}

// check stops the program on the first error.
func check(what string, err error) {
	if err != nil {
		log.Fatalf("%s: %v", what, err)
	}
}
