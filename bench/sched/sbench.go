// sbench.go - scheduler benchmarks against Go's runtime (the twin of
// sbench.c; see there for the modes). Keep the two in step when editing.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
)

const hour = time.Hour

// epoch makes nanotime monotonic, like gort_nanotime.
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

// ---- helpers ---------------------------------------------------------------

// rssBytes is the resident set size in bytes, from /proc/self/statm
// (second field, pages).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	var size, resident int64
	if err == nil {
		_, err = fmt.Sscan(string(b), &size, &resident)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sbench: cannot read /proc/self/statm")
		os.Exit(1)
	}
	return resident * int64(os.Getpagesize())
}

// ---- spawn -----------------------------------------------------------------

var spawnCount int64

func spawnWorker(c *int64) {
	atomic.AddInt64(c, 1)
}

func benchSpawn(n int64) {
	t0 := nanotime()
	for i := int64(0); i < n; i++ {
		go spawnWorker(&spawnCount)
	}
	for atomic.LoadInt64(&spawnCount) < n {
		runtime.Gosched()
	}
	t1 := nanotime()
	fmt.Fprintf(os.Stderr, "spawn: %d goroutines in %.3f s\n", n, float64(t1-t0)/1e9)
	fmt.Printf("result %.2f\n", float64(t1-t0)/float64(n))
}

// ---- yield -----------------------------------------------------------------

var yieldDone int64
var yieldEnd int64

func yieldWorker(k int64) {
	for i := int64(0); i < k; i++ {
		runtime.Gosched()
	}
	if atomic.AddInt64(&yieldDone, 1) == 2 {
		atomic.StoreInt64(&yieldEnd, nanotime())
	}
}

func benchYield(k int64) {
	t0 := nanotime()
	go yieldWorker(k)
	go yieldWorker(k)
	for atomic.LoadInt64(&yieldDone) < 2 {
		time.Sleep(time.Millisecond)
	}
	t1 := atomic.LoadInt64(&yieldEnd)
	fmt.Fprintf(os.Stderr, "yield: 2 x %d yields in %.3f s\n", k, float64(t1-t0)/1e9)
	fmt.Printf("result %.2f\n", float64(t1-t0)/float64(2*k))
}

// ---- parked ----------------------------------------------------------------

var parkedStarted int64

func parkedWorker() {
	atomic.AddInt64(&parkedStarted, 1)
	time.Sleep(hour)
}

func benchParked(n int64) {
	before := rssBytes()
	t0 := nanotime()
	for i := int64(0); i < n; i++ {
		go parkedWorker()
	}
	for atomic.LoadInt64(&parkedStarted) < n || int64(runtime.NumGoroutine()) < n+1 {
		time.Sleep(time.Millisecond)
	}
	t1 := nanotime()
	time.Sleep(100 * time.Millisecond)
	after := rssBytes()
	fmt.Fprintf(os.Stderr, "parked: %d goroutines parked in %.3f s; rss %.1f MiB -> %.1f MiB; goroutines %d\n",
		n, float64(t1-t0)/1e9, float64(before)/1048576.0, float64(after)/1048576.0,
		runtime.NumGoroutine())
	fmt.Printf("result %.1f\n", float64(after-before)/float64(n))
}

// ---- main ------------------------------------------------------------------

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "spawn" && os.Args[1] != "yield" && os.Args[1] != "parked") {
		fmt.Fprintf(os.Stderr, "usage: %s spawn|yield|parked N\n", os.Args[0])
		os.Exit(2)
	}
	n, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "sbench: N must be positive")
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "go: GOMAXPROCS=%d\n", runtime.GOMAXPROCS(0))
	switch os.Args[1] {
	case "spawn":
		benchSpawn(n)
	case "yield":
		benchYield(n)
	case "parked":
		benchParked(n)
	}
}
