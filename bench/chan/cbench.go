// cbench.go - channel and sync benchmarks against Go's runtime (the twin of
// cbench.c; see there for the modes). Keep the two in step when editing.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

const (
	bufCap       = 1024 // buffered: channel capacity
	selectChans  = 4    // select4: producers and channels
	selectCap    = 0    // select4: capacity of each channel
	skynetDiv    = 10   // skynet: children per node
	mutexWorkers = 8    // mutex: goroutines sharing the lock
)

// epoch makes nanotime monotonic, like gort_nanotime.
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "cbench: "+format+"\n", a...)
	os.Exit(1)
}

// ---- pingpong --------------------------------------------------------------

func pingpongEcho(ping, pong chan int64, n int64) {
	for i := int64(0); i < n; i++ {
		v := <-ping
		v++
		pong <- v
	}
}

func benchPingpong(n int64) {
	ping := make(chan int64)
	pong := make(chan int64)
	var sum int64
	t0 := nanotime()
	go pingpongEcho(ping, pong, n)
	for i := int64(0); i < n; i++ {
		v := i
		ping <- v
		v = <-pong
		sum += v
	}
	t1 := nanotime()
	if sum != n*(n+1)/2 {
		fail("pingpong: sum %d, want %d", sum, n*(n+1)/2)
	}
	fmt.Fprintf(os.Stderr, "pingpong: %d round trips in %.3f s\n", n, float64(t1-t0)/1e9)
	fmt.Printf("result %.2f\n", float64(t1-t0)/float64(n))
}

// ---- buffered --------------------------------------------------------------

func bufferedProducer(c chan int64, n int64) {
	for i := int64(0); i < n; i++ {
		v := i
		c <- v
	}
	close(c)
}

func benchBuffered(n int64) {
	c := make(chan int64, bufCap)
	var sum, got int64
	t0 := nanotime()
	go bufferedProducer(c, n)
	for {
		v, ok := <-c
		if !ok {
			break
		}
		sum += v
		got++
	}
	t1 := nanotime()
	if got != n || sum != n*(n-1)/2 {
		fail("buffered: %d items, sum %d; want %d, %d", got, sum, n, n*(n-1)/2)
	}
	fmt.Fprintf(os.Stderr, "buffered: %d items (cap %d) in %.3f s\n", n, bufCap, float64(t1-t0)/1e9)
	fmt.Printf("result %.2f\n", float64(t1-t0)/float64(n))
}

// ---- select4 ---------------------------------------------------------------

func selectProducer(c chan int64, q int64) {
	for i := int64(0); i < q; i++ {
		v := i
		c <- v
	}
	close(c)
}

func benchSelect4(n int64) {
	q := n / selectChans
	var chans [selectChans]chan int64
	for i := 0; i < selectChans; i++ {
		chans[i] = make(chan int64, selectCap)
	}
	var sum, got int64
	open := selectChans
	t0 := nanotime()
	for i := 0; i < selectChans; i++ {
		go selectProducer(chans[i], q)
	}
	// A closed channel is replaced by nil, which select never picks.
	for open > 0 {
		var v int64
		var ok bool
		var k int
		select {
		case v, ok = <-chans[0]:
			k = 0
		case v, ok = <-chans[1]:
			k = 1
		case v, ok = <-chans[2]:
			k = 2
		case v, ok = <-chans[3]:
			k = 3
		}
		if !ok {
			chans[k] = nil
			open--
			continue
		}
		sum += v
		got++
	}
	t1 := nanotime()
	if got != selectChans*q || sum != selectChans*(q*(q-1)/2) {
		fail("select4: %d messages, sum %d; want %d, %d", got, sum, selectChans*q, selectChans*(q*(q-1)/2))
	}
	fmt.Fprintf(os.Stderr, "select4: %d messages from %d producers (cap %d) in %.3f s\n",
		got, selectChans, selectCap, float64(t1-t0)/1e9)
	fmt.Printf("result %.2f\n", float64(t1-t0)/float64(got))
}

// ---- skynet ----------------------------------------------------------------

func skynet(out chan int64, num, size int64) {
	if size == 1 {
		out <- num
		return
	}
	rc := make(chan int64)
	for i := int64(0); i < skynetDiv; i++ {
		go skynet(rc, num+i*(size/skynetDiv), size/skynetDiv)
	}
	var sum int64
	for i := 0; i < skynetDiv; i++ {
		v := <-rc
		sum += v
	}
	out <- sum
}

func benchSkynet(n int64) {
	for s := n; s > 1; s /= skynetDiv {
		if s%skynetDiv != 0 {
			fail("skynet: N must be a power of %d", skynetDiv)
		}
	}
	out := make(chan int64)
	t0 := nanotime()
	go skynet(out, 0, n)
	sum := <-out
	t1 := nanotime()
	if sum != n*(n-1)/2 {
		fail("skynet: sum %d, want %d", sum, n*(n-1)/2)
	}
	fmt.Fprintf(os.Stderr, "skynet: %d leaves, sum %d in %.3f s\n", n, sum, float64(t1-t0)/1e9)
	fmt.Printf("result %.1f\n", float64(t1-t0)/1e6)
}

// ---- mutex -----------------------------------------------------------------

type mutexShared struct {
	mu      sync.Mutex
	wg      sync.WaitGroup
	counter int64
	per     int64
}

func mutexWorker(s *mutexShared) {
	for i := int64(0); i < s.per; i++ {
		s.mu.Lock()
		s.counter++
		s.mu.Unlock()
	}
	s.wg.Done()
}

func benchMutex(n int64) {
	s := &mutexShared{per: n / mutexWorkers}
	total := s.per * mutexWorkers
	t0 := nanotime()
	s.wg.Add(mutexWorkers)
	for i := 0; i < mutexWorkers; i++ {
		go mutexWorker(s)
	}
	s.wg.Wait()
	t1 := nanotime()
	if s.counter != total {
		fail("mutex: counter %d, want %d", s.counter, total)
	}
	fmt.Fprintf(os.Stderr, "mutex: %d goroutines x %d lock/unlock in %.3f s\n",
		mutexWorkers, s.per, float64(t1-t0)/1e9)
	fmt.Printf("result %.2f\n", float64(t1-t0)/float64(total))
}

// ---- main ------------------------------------------------------------------

func main() {
	modes := map[string]func(int64){
		"pingpong": benchPingpong,
		"buffered": benchBuffered,
		"select4":  benchSelect4,
		"skynet":   benchSkynet,
		"mutex":    benchMutex,
	}
	var bench func(int64)
	if len(os.Args) == 3 {
		bench = modes[os.Args[1]]
	}
	if bench == nil {
		fmt.Fprintf(os.Stderr, "usage: %s pingpong|buffered|select4|skynet|mutex N\n", os.Args[0])
		os.Exit(2)
	}
	n, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil || n < 8 {
		fmt.Fprintln(os.Stderr, "cbench: N must be at least 8")
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "go: GOMAXPROCS=%d\n", runtime.GOMAXPROCS(0))
	bench(n)
}
