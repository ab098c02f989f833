/* gc_tree.c - a persistent search tree shared between goroutines, with no free().
 *
 * A writer goroutine keeps an ordered map from keys to values as an immutable
 * binary search tree. An insert never changes a node: it copies the nodes on
 * the path from the root down to the key and shares every other subtree with
 * the previous version (path copying). So each version stays valid, unchanged,
 * for as long as anyone holds its root, and readers need no lock.
 *
 * Every few hundred inserts the writer publishes a snapshot (the root, the
 * number of keys, a version number) on a channel. Reader goroutines take
 * snapshots off the channel and check them while the writer goes on: the keys
 * come out in order, there are as many as the snapshot says, no value is newer
 * than the snapshot, and the snapshot a reader checked before is still exactly
 * what it was.
 *
 * Who frees a node? It belongs to many versions at once, and any reader may
 * still be walking an old one. Without a collector this needs a reference
 * count on every node (or hazard pointers, or epochs). Here nobody frees
 * anything: the collector reclaims the nodes that no live version reaches.
 * A finalizer on each snapshot counts the versions it found unreachable.
 *
 * The GC heap keeps an object alive while a pointer to it is on a goroutine's
 * stack, in a global, in a channel's buffer or in another GC object. Memory
 * from malloc is not scanned: a tree kept only in malloc'd memory would be
 * collected under it.
 *
 *   gcc -O2 -Iinclude examples/gc_tree.c build/libgort.a -lpthread -ldl
 *   GORT_DEBUG=gctrace=1 ./a.out      # a line per collection on stderr
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gort.h"

enum { INSERTS = 200000, EVERY = 1000, READERS = 4, KEYS = 1 << 20 };

typedef struct node {
    const struct node *left, *right;
    long key, value;
} node;

typedef struct snapshot {
    const node *root;
    long size;      /* keys in this version */
    long version;   /* values in it are at most this */
} snapshot;

/* What the goroutines share: one GC object, passed as their argument. */
typedef struct world {
    gort_chan *snapshots;   /* snapshot *, from the writer to the readers */
    gort_chan *reports;     /* report, from the readers to main */
} world;

typedef struct report {
    long checked, nodes;
    bool ok;
} report;

static atomic_long finalized;

static void snapshot_finalize(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    atomic_fetch_add(&finalized, 1);
}

/* A new version with key set to value; *added tells whether the key is new. */
static const node *insert(const node *t, long key, long value, bool *added)
{
    node *n = gort_gc_alloc(sizeof *n);
    if (!t) {
        *n = (node){NULL, NULL, key, value};
        *added = true;
        return n;
    }
    *n = *t;   /* copy the node on the path; its other child stays shared */
    if (key < t->key)
        n->left = insert(t->left, key, value, added);
    else if (key > t->key)
        n->right = insert(t->right, key, value, added);
    else
        n->value = value;
    return n;
}

static const node *lookup(const node *t, long key)
{
    while (t && t->key != key)
        t = key < t->key ? t->left : t->right;
    return t;
}

/* In-order walk: counts the nodes, checks the order and the values. */
static long walk(const node *t, long *last, long version, bool *ok)
{
    if (!t)
        return 0;
    long n = walk(t->left, last, version, ok);
    if (t->key <= *last || t->value > version)
        *ok = false;
    *last = t->key;
    return n + 1 + walk(t->right, last, version, ok);
}

static long check(const snapshot *s, bool *ok)
{
    long last = -1;
    long n = walk(s->root, &last, s->version, ok);
    if (n != s->size)
        *ok = false;
    return n;
}

static void writer(void *arg)
{
    world *w = arg;
    const node *root = NULL;
    long size = 0;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (long i = 1; i <= INSERTS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        long key = (long)(x % KEYS);
        long version = i / EVERY + 1;
        bool added = false;
        root = insert(root, key, version, &added);   /* the old root is garbage, or a snapshot's */
        size += added;
        if (i % EVERY == 0) {
            snapshot *s = gort_gc_alloc(sizeof *s);
            *s = (snapshot){root, size, version};
            gort_gc_set_finalizer(s, snapshot_finalize, NULL);
            gort_chan_send(w->snapshots, &s);
            /* the newest key is in the snapshot, with this version's value */
            const node *n = lookup(root, key);
            if (!n || n->value != version)
                gort_panic("key %ld lost", key);
        }
    }
    gort_chan_close(w->snapshots);
}

static void reader(void *arg)
{
    world *w = arg;
    report r = {0, 0, true};
    snapshot *s, *prev = NULL;
    long prev_size = 0;
    while (gort_chan_recv(w->snapshots, &s)) {
        r.nodes += check(s, &r.ok);
        r.checked++;
        /* the older version is untouched by all the inserts since */
        if (prev && check(prev, &r.ok) != prev_size)
            r.ok = false;
        prev = s;
        prev_size = s->size;
    }
    gort_chan_send(w->reports, &r);
}

static double mib(uint64_t b)
{
    return b / 1048576.0;
}

static void print_gc(const char *when)
{
    gort_memstats m;
    gort_read_memstats(&m);
    uint64_t max = 0;
    for (uint32_t i = 0; i < m.num_gc && i < 256; i++)   /* the last 256 pauses */
        if (m.pause_ns[i] > max)
            max = m.pause_ns[i];
    printf("%s: heap_alloc %.2f MiB, %.0f MiB allocated in all, %u collections "
           "(pauses: max %.2f ms, total %.2f ms)\n",
           when, mib(m.heap_alloc), mib(m.total_alloc), m.num_gc, max / 1e6,
           m.pause_total_ns / 1e6);
}

static void main_goroutine(void *arg)
{
    (void)arg;
    world *w = gort_gc_alloc(sizeof *w);
    w->snapshots = gort_chan_make(sizeof(snapshot *), 16);
    w->reports = gort_chan_make(sizeof(report), READERS);

    gort_go(writer, w);
    for (int i = 0; i < READERS; i++)
        gort_go(reader, w);
    report total = {0, 0, true};
    for (int i = 0; i < READERS; i++) {
        report r;
        gort_chan_recv(w->reports, &r);
        total.checked += r.checked;
        total.nodes += r.nodes;
        total.ok &= r.ok;
    }
    printf("%d readers checked %ld snapshots (%ld nodes walked): %s\n", READERS,
           total.checked, total.nodes, total.ok ? "all consistent" : "INCONSISTENT");
    print_gc("after the run");

    /* Every snapshot is unreachable now. A collection finds them and queues
     * their finalizers, which run on the finalizer goroutine; the next one
     * frees them with the nodes that only they reached. */
    gort_gc_collect();
    for (int i = 0; i < 1000 && atomic_load(&finalized) < total.checked; i++)
        gort_sleep(1000000);
    printf("finalizers ran for %ld of %ld snapshots\n", (long)atomic_load(&finalized),
           total.checked);
    gort_gc_collect();
    print_gc("after gort_gc_collect()");
    if (!total.ok)
        gort_panic("a snapshot changed under its readers");
}

int main(void)
{
    return gort_main(main_goroutine, NULL);
}
