// Command contend takes a clientv3 concurrency.Mutex ROUNDS times in each of WORKERS
// goroutines (one session each) against the server at ETCD_ENDPOINT, and inside each
// critical section checks that nobody else is inside and adds one to a shared counter.
// An etcdlite program running the same critical section on the same lock at the same
// time (server/tests/go_interop.rs) proves that the two implementations exclude each
// other. It prints DONE and exits 0, or prints the first failure and exits 1.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
)

func main() {
	endpoint := os.Getenv("ETCD_ENDPOINT")
	prefix := os.Getenv("INTEROP_PREFIX")
	rounds, _ := strconv.Atoi(os.Getenv("ROUNDS"))
	workers, _ := strconv.Atoi(os.Getenv("WORKERS"))
	if endpoint == "" || prefix == "" || rounds <= 0 || workers <= 0 {
		fmt.Println("FAIL set ETCD_ENDPOINT, INTEROP_PREFIX, ROUNDS and WORKERS")
		os.Exit(2)
	}
	// A safety net: whatever hangs, the program ends.
	time.AfterFunc(5*time.Minute, func() {
		fmt.Println("FAIL out of time")
		os.Exit(1)
	})
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Printf("FAIL connect: %v\n", err)
		os.Exit(1)
	}
	defer cli.Close()

	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			errs <- contend(cli, prefix, fmt.Sprintf("go-%d", w), rounds)
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			fmt.Printf("FAIL %v\n", err)
			os.Exit(1)
		}
	}
	fmt.Println("DONE")
}

func contend(cli *clientv3.Client, prefix, me string, rounds int) error {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		return fmt.Errorf("%s: session: %v", me, err)
	}
	defer s.Close()
	m := concurrency.NewMutex(s, prefix+"lock")
	for i := 0; i < rounds; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := round(ctx, cli, m, prefix, me)
		cancel()
		if err != nil {
			return fmt.Errorf("%s round %d: %v", me, i, err)
		}
	}
	return nil
}

// round takes the lock, runs the critical section and releases the lock.
func round(ctx context.Context, cli *clientv3.Client, m *concurrency.Mutex, prefix, me string) error {
	if err := m.Lock(ctx); err != nil {
		return fmt.Errorf("lock: %v", err)
	}
	holder, counter := prefix+"holder", prefix+"counter"
	// Nobody may be inside: the holder key is absent on the way in.
	enter, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Version(holder), "=", 0)).
		Then(clientv3.OpPut(holder, me)).
		Else(clientv3.OpGet(holder)).
		Commit()
	if err != nil {
		return fmt.Errorf("enter: %v", err)
	}
	if !enter.Succeeded {
		who := enter.Responses[0].GetResponseRange().Kvs[0].Value
		return fmt.Errorf("two holders: %s found %s inside", me, who)
	}
	got, err := cli.Get(ctx, counter)
	if err != nil {
		return fmt.Errorf("read the counter: %v", err)
	}
	count := 0
	if len(got.Kvs) > 0 {
		count, _ = strconv.Atoi(string(got.Kvs[0].Value))
	}
	write, err := cli.Txn(ctx).
		If(m.IsOwner()).
		Then(clientv3.OpPut(counter, strconv.Itoa(count+1)), clientv3.OpDelete(holder)).
		Commit()
	if err != nil {
		return fmt.Errorf("write the counter: %v", err)
	}
	if !write.Succeeded {
		return fmt.Errorf("the lock's owner compare failed inside the critical section")
	}
	return m.Unlock(ctx)
}
