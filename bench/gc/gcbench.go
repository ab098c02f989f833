// gcbench.go - garbage-collector benchmarks against Go's runtime (the twin
// of gcbench.c; see there for the workloads and the RESULT line). Keep the
// two in step when editing.
//
// Pauses come from runtime.ReadMemStats after the run: NumGC, PauseTotalNs
// and the PauseNs ring, which holds the last 256 cycles.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "gcbench: "+format+"\n", a...)
	os.Exit(1)
}

// epoch makes nowNs monotonic, as CLOCK_MONOTONIC in the C twin.
var epoch = time.Now()

func nowNs() int64 { return int64(time.Since(epoch)) }

// ---- pause accounting -------------------------------------------------------

type gcstats struct {
	numGC        uint64
	maxPauseNs   uint64
	totalPauseNs uint64
	ringEntries  uint64 // how many cycles maxPauseNs looked at
}

func gcSetup() {}

func gcReport() gcstats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s := gcstats{uint64(m.NumGC), 0, m.PauseTotalNs, uint64(m.NumGC)}
	if s.ringEntries > 256 {
		s.ringEntries = 256
	}
	// Cycle k (1-based) is at PauseNs[(k+255)%256]; the ring holds the last
	// 256, so the max is over those.
	for k := s.numGC; k > s.numGC-s.ringEntries; k-- {
		p := m.PauseNs[(k+255)%256]
		if p > s.maxPauseNs {
			s.maxPauseNs = p
		}
	}
	note := ""
	if m.NumGC > 256 {
		note = "; max pause is over the last 256 cycles only"
	}
	fmt.Fprintf(os.Stderr, "go: %d cycles (%d forced), HeapSys %d KiB, TotalAlloc %d KiB, GOMAXPROCS %d%s\n",
		m.NumGC, m.NumForcedGC, m.HeapSys/1024, m.TotalAlloc/1024, runtime.GOMAXPROCS(0), note)
	return s
}

// ---- GCBench ----------------------------------------------------------------

const (
	gcbMinDepth  = 4
	gcbArraySize = 500000
)

type gnode struct {
	left, right *gnode
	i, j        int32
}

func gnodeNew(l, r *gnode) *gnode {
	n := new(gnode)
	n.left = l
	n.right = r
	return n
}

// treeSize: nodes in a complete tree of depth d.
func treeSize(d int) int64 { return (int64(1) << (d + 1)) - 1 }

// numIters: trees of depth d that allocate as much as two stretch trees.
func numIters(d, stretch int) int64 { return 2 * treeSize(stretch) / treeSize(d) }

// populate is top-down: n exists; give it two children and recurse.
func populate(d int, n *gnode) {
	if d <= 0 {
		return
	}
	d--
	n.left = gnodeNew(nil, nil)
	n.right = gnodeNew(nil, nil)
	populate(d, n.left)
	populate(d, n.right)
}

// makeTree is bottom-up: the children exist before their parent.
func makeTree(d int) *gnode {
	if d <= 0 {
		return gnodeNew(nil, nil)
	}
	return gnodeNew(makeTree(d-1), makeTree(d-1))
}

func countNodes(n *gnode) int64 {
	if n == nil {
		return 0
	}
	return 1 + countNodes(n.left) + countNodes(n.right)
}

func timeConstruction(d, stretch int) {
	iters := numIters(d, stretch)
	fmt.Fprintf(os.Stderr, "creating %d trees of depth %d\n", iters, d)

	t0 := nowNs()
	for i := int64(0); i < iters; i++ {
		tmp := gnodeNew(nil, nil)
		populate(d, tmp)
		tmp = nil
	}
	t1 := nowNs()
	fmt.Fprintf(os.Stderr, "\ttop-down construction: %.1f ms\n", float64(t1-t0)/1e6)

	for i := int64(0); i < iters; i++ {
		tmp := makeTree(d)
		tmp = nil
		_ = tmp
	}
	t2 := nowNs()
	fmt.Fprintf(os.Stderr, "\tbottom-up construction: %.1f ms\n", float64(t2-t1)/1e6)
}

// benchGCBench returns the elapsed nanoseconds; the checks after the clock stops.
func benchGCBench(stretch int) int64 {
	longLived, maxDepth := stretch-2, stretch-2
	fmt.Fprintf(os.Stderr, "GCBench: stretch depth %d, long-lived tree depth %d, array of %d doubles, "+
		"trees of depth %d..%d\n",
		stretch, longLived, gcbArraySize, gcbMinDepth, maxDepth)

	t0 := nowNs()

	tmp := makeTree(stretch)
	tmp = nil
	_ = tmp

	longTree := gnodeNew(nil, nil)
	populate(longLived, longTree)

	array := make([]float64, gcbArraySize)
	for i := 1; i < gcbArraySize/2; i++ {
		array[i] = 1.0 / float64(i)
	}

	for d := gcbMinDepth; d <= maxDepth; d += 2 {
		timeConstruction(d, stretch)
	}

	elapsed := nowNs() - t0

	if longTree == nil || array[1000] != 1.0/1000 {
		fail("GCBench: the long-lived array or tree was lost")
	}
	nodes := countNodes(longTree)
	if nodes != treeSize(longLived) {
		fail("GCBench: long-lived tree has %d nodes, want %d", nodes, treeSize(longLived))
	}
	for i := 1; i < gcbArraySize/2; i++ {
		if array[i] != 1.0/float64(i) {
			fail("GCBench: long-lived array damaged at %d", i)
		}
	}
	return elapsed
}

// ---- binary-trees -----------------------------------------------------------

const btMinDepth = 4

type bnode struct {
	left, right *bnode
}

func bottomUpTree(d int) *bnode {
	n := new(bnode)
	if d > 0 {
		n.left = bottomUpTree(d - 1)
		n.right = bottomUpTree(d - 1)
	}
	return n
}

func itemCheck(n *bnode) int64 {
	if n.left == nil {
		return 1
	}
	return 1 + itemCheck(n.left) + itemCheck(n.right)
}

func wantCheck(got, want int64, what string) {
	if got != want {
		fail("binary-trees: %s check %d, want %d", what, got, want)
	}
}

func benchBinaryTrees(n int) int64 {
	maxDepth := btMinDepth + 2
	if n > btMinDepth+2 {
		maxDepth = n
	}
	stretch := maxDepth + 1

	t0 := nowNs()

	check := itemCheck(bottomUpTree(stretch))
	fmt.Fprintf(os.Stderr, "stretch tree of depth %d\t check: %d\n", stretch, check)
	wantCheck(check, treeSize(stretch), "stretch tree")

	longLived := bottomUpTree(maxDepth)

	for d := btMinDepth; d <= maxDepth; d += 2 {
		iters := int64(1) << (maxDepth - d + btMinDepth)
		check = 0
		for i := int64(0); i < iters; i++ {
			check += itemCheck(bottomUpTree(d))
		}
		fmt.Fprintf(os.Stderr, "%d\t trees of depth %d\t check: %d\n", iters, d, check)
		wantCheck(check, iters*treeSize(d), "short-lived trees")
	}

	check = itemCheck(longLived)
	fmt.Fprintf(os.Stderr, "long lived tree of depth %d\t check: %d\n", maxDepth, check)
	wantCheck(check, treeSize(maxDepth), "long-lived tree")

	return nowNs() - t0
}

// ---- main -------------------------------------------------------------------

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fail("usage: gcbench gcbench|binary-trees [depth]")
	}
	w := os.Args[1]
	arg := 0
	if len(os.Args) == 3 {
		arg, _ = strconv.Atoi(os.Args[2])
	}

	gcSetup()

	var elapsed int64
	switch w {
	case "gcbench":
		if arg == 0 {
			arg = 18
		}
		if arg < gcbMinDepth+2 || arg > 30 {
			fail("GCBench: stretch depth %d out of range", arg)
		}
		elapsed = benchGCBench(arg)
	case "binary-trees":
		if arg == 0 {
			arg = 20
		}
		if arg < 1 || arg > 30 {
			fail("binary-trees: depth %d out of range", arg)
		}
		elapsed = benchBinaryTrees(arg)
	default:
		fail("unknown workload %s", w)
	}

	s := gcReport()
	fmt.Printf("RESULT workload=%s impl=go elapsed_ms=%.1f max_pause_us=%.1f total_pause_ms=%.3f num_gc=%d\n",
		w, float64(elapsed)/1e6, float64(s.maxPauseNs)/1e3, float64(s.totalPauseNs)/1e6, s.numGC)
}
