/* hashpipe.c -- hashing a batch's canonical bytes on a second thread while
 * the caller canonicalises, never slower than hashing them itself.
 *
 * The caller (the producer, transcript.c) writes the canonical stream into
 * slots of PIPE_CHUNK bytes and queues each full one; a worker thread, one
 * per context, started on the first large batch and parked on a condition
 * variable between batches, hashes queued slots in stream order.  SHA-256 is
 * sequential, so the worker can only help while it runs: on a machine whose
 * other core is busy it may not run for milliseconds.  So nobody waits for
 * it unboundedly -- either side may hash the slot at the head of the queue:
 *
 *   - hashing works on a copy of the committed state and commits it (state,
 *     checkpoint digests, dequeue) under the lock only if nobody committed
 *     in between (gen unchanged);
 *   - the worker takes the head only when the producer is not hashing it;
 *   - the producer, needing a free slot or draining at the end, hashes the
 *     head itself at once when the worker has not taken it, and after
 *     STEAL_WAIT_NS of no progress when it has (the worker is then most
 *     likely descheduled; if not, one of the two copies is wasted).
 *
 * A slot the worker reads is pinned and never written or freed by the
 * producer: it picks another free slot (PIPE_SLOTS >= 3 keeps one).  The
 * worker's hex output goes to the slot's own area (hex[0]), the producer's
 * to hex[1]: the two never write the same bytes.  Everything shared is read
 * and written under `mu`; hashing happens outside it on private copies.
 *
 * Lifetime: the pipe is reference counted (the context and the worker); the
 * last one out frees it, so a context can be freed while the worker is still
 * descheduled inside a stale copy.  After fork() the child has no worker
 * (and `mu` may have been held by it): a pipe made by another process is
 * abandoned, never touched, and a new one made.
 */
#define MOBSTORE_CANON_INTERNAL 1
#include "canon.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PIPE_SLOTS 8
/* Slot size: large enough that a handoff (a futex wake at most) is rare,
 * small enough that the worker starts early and the tail left to hash after
 * the last message is short.  4,000 x 1 KiB f3: see the commit that set it. */
#define PIPE_CHUNK (128u << 10)
/* How long the producer lets the worker finish the slot it took before
 * hashing it too: ~2x the time SHA-NI needs for a full slot. */
#define STEAL_WAIT_NS 150000L

typedef struct {
    uint32_t off; /* the checkpoint is the stream up to this byte of the slot */
    uint32_t j;   /* its index in the caller's hex_out */
} pmark;

typedef struct {
    mob_out out;
    pmark *marks;
    size_t nmarks, capmarks;
    char *hex[2]; /* 64 bytes per mark: [0] written by the worker, [1] by the producer */
    size_t caphex;
    int queued;
} pslot;

struct mob_pipe {
    pthread_mutex_t mu;
    pthread_cond_t work; /* worker waits: a slot was queued, the head was released, or stop */
    pthread_cond_t prog; /* producer waits: a slot was committed or unpinned */
    int refs;
    int stop;
    int worker_waiting;
    int worker_running; /* the thread exists (created and not exited) */
    int pinned;         /* slot the worker reads, or -1 */
    int producer_hashing;
    pid_t pid;
    unsigned q[PIPE_SLOTS], qhead, qlen; /* queued slots in stream order */
    uint64_t gen;                        /* commits so far, never reset */
    mobstore_sha256 st;                  /* the stream hashed so far */
    char *hex_out;                       /* the batch's checkpoint digests (caller-owned) */
    int cur;                             /* the producer's slot */
    int test_mode;
    uint64_t by_worker, by_producer; /* slots committed in this batch by each side */
    uint64_t total_worker, total_producer, total_waits; /* since the pipe was made (tests, tuning) */
    pslot slot[PIPE_SLOTS];
};

static int g_test_mode; /* MOB_PIPE_TEST_*: set by tests before a batch */

void mob_pipe_set_test_mode(int mode) { __atomic_store_n(&g_test_mode, mode, __ATOMIC_RELAXED); }

size_t mob_pipe_chunk(const mob_pipe *p) { return (p->test_mode & MOB_PIPE_TEST_TINY) ? 512 : PIPE_CHUNK; }

static void pipe_free(mob_pipe *p)
{
    for (int i = 0; i < PIPE_SLOTS; i++) {
        free(p->slot[i].out.buf);
        free(p->slot[i].marks);
        free(p->slot[i].hex[0]);
        free(p->slot[i].hex[1]);
    }
    pthread_cond_destroy(&p->prog);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Drop one reference (mu held); frees the pipe if it was the last. */
static void unref_locked(mob_pipe *p)
{
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last) pipe_free(p);
}

/* Hash slot s into *st, writing the transcript digest ("]" appended to a
 * copy) at each mark into hex (64 bytes per mark, no NUL). */
static void hash_slot(const pslot *s, mobstore_sha256 *st, char *hex)
{
    size_t at = 0;
    for (size_t m = 0; m < s->nmarks; m++) {
        size_t off = s->marks[m].off;
        mobstore_sha256_update(st, s->out.buf + at, off - at);
        at = off;
        mobstore_sha256 c = *st;
        char h[65];
        mobstore_sha256_update(&c, "]", 1);
        mobstore_sha256_final_hex(&c, h);
        memcpy(hex + 64 * m, h, 64);
    }
    mobstore_sha256_update(st, s->out.buf + at, s->out.len - at);
}

/* Commit (mu held) the hash of the queue head k computed from the state at
 * generation g, unless someone committed first.  Returns 1 if committed. */
static int commit_locked(mob_pipe *p, unsigned k, uint64_t g, const mobstore_sha256 *st, int side)
{
    if (p->gen != g || !p->qlen || p->q[p->qhead] != k) return 0;
    if (side == 0) p->by_worker++;
    else p->by_producer++;
    p->st = *st;
    const pslot *s = &p->slot[k];
    for (size_t m = 0; m < s->nmarks; m++) memcpy(p->hex_out + 64 * (size_t)s->marks[m].j, s->hex[side] + 64 * m, 64);
    p->slot[k].queued = 0;
    p->qhead = (p->qhead + 1) % PIPE_SLOTS;
    p->qlen--;
    p->gen++;
    return 1;
}

static void *worker_main(void *arg)
{
    mob_pipe *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && (!p->qlen || p->producer_hashing || (p->test_mode & MOB_PIPE_TEST_NO_WORKER))) {
            p->worker_waiting = 1;
            pthread_cond_wait(&p->work, &p->mu);
            p->worker_waiting = 0;
        }
        if (p->stop) break;
        unsigned k = p->q[p->qhead];
        uint64_t g = p->gen;
        mobstore_sha256 st = p->st;
        p->pinned = (int)k;
        int slow = p->test_mode & MOB_PIPE_TEST_SLOW_WORKER;
        pthread_mutex_unlock(&p->mu);
        if (slow) { /* tests: a worker descheduled mid-slot, so the producer hashes it too */
            struct timespec pause = {0, 2 * STEAL_WAIT_NS};
            nanosleep(&pause, NULL);
        }
        hash_slot(&p->slot[k], &st, p->slot[k].hex[0]);
        pthread_mutex_lock(&p->mu);
        p->pinned = -1;
        commit_locked(p, k, g, &st, 0);
        pthread_cond_signal(&p->prog);
    }
    p->worker_running = 0;
    unref_locked(p);
    return NULL;
}

static int start_worker(mob_pipe *p)
{
    pthread_attr_t attr;
    if (pthread_attr_init(&attr)) return -1;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* the worker takes no signals: they stay with the caller's threads */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t th;
    p->refs++; /* the worker's reference, before it can run */
    p->worker_running = 1;
    int rc = pthread_create(&th, &attr, worker_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc) {
        p->refs--;
        p->worker_running = 0;
        return -1;
    }
    return 0;
}

static mob_pipe *pipe_new(void)
{
    mob_pipe *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_condattr_t ca;
    if (pthread_mutex_init(&p->mu, NULL)) goto fail_mu;
    if (pthread_condattr_init(&ca)) goto fail_ca;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&p->prog, &ca)) goto fail_prog;
    if (pthread_cond_init(&p->work, NULL)) goto fail_work;
    pthread_condattr_destroy(&ca);
    p->refs = 1;
    p->pinned = -1;
    p->pid = getpid();
    return p;
fail_work:
    pthread_cond_destroy(&p->prog);
fail_prog:
    pthread_condattr_destroy(&ca);
fail_ca:
    pthread_mutex_destroy(&p->mu);
fail_mu:
    free(p);
    return NULL;
}

void mob_pipe_release(mob_pipe *p)
{
    if (!p || p->pid != getpid()) return; /* another process's: never touched */
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->work);
    unref_locked(p);
}

void mob_pipe_trim(mob_pipe *p)
{
    if (!p || p->pid != getpid()) return;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < PIPE_SLOTS; i++) {
        pslot *s = &p->slot[i];
        if (i == p->pinned || s->queued || s->out.cap <= (1u << 20)) continue;
        free(s->out.buf);
        memset(&s->out, 0, sizeof s->out);
    }
    pthread_mutex_unlock(&p->mu);
}

/* The producer's new current slot: empty, no marks, room for a chunk and a
 * quarter (a slot is queued after the message that takes it past a chunk, so
 * it usually ends a little over).  Nonzero when the room cannot be had. */
static int slot_open(pslot *s, size_t chunk)
{
    s->out.len = 0;
    s->out.oom = 0;
    s->nmarks = 0;
    return mob_out_reserve(&s->out, chunk + (chunk >> 2));
}

/* Start a batch on *cache (made, or remade after a fork, as needed) from the
 * stream state *st; hex_out receives checkpoint digests.  NULL when no
 * pipe can be had (the caller then runs sequentially). */
mob_pipe *mob_pipe_begin(mob_pipe **cache, const mobstore_sha256 *st, char *hex_out)
{
    mob_pipe *p = *cache;
    if (p && p->pid != getpid()) p = *cache = NULL; /* made before a fork: abandoned */
    if (!p && !(p = *cache = pipe_new())) return NULL;
    pthread_mutex_lock(&p->mu);
    p->test_mode = __atomic_load_n(&g_test_mode, __ATOMIC_RELAXED);
    if (!p->worker_running && !(p->test_mode & MOB_PIPE_TEST_NO_WORKER) && start_worker(p)) {
        pthread_mutex_unlock(&p->mu);
        return NULL;
    }
    p->st = *st;
    p->hex_out = hex_out;
    p->qhead = p->qlen = 0;
    p->by_worker = p->by_producer = 0;
    int cur = -1;
    for (int i = 0; i < PIPE_SLOTS && cur < 0; i++)
        if (i != p->pinned) cur = i;
    p->cur = cur;
    pthread_mutex_unlock(&p->mu);
    if (slot_open(&p->slot[cur], mob_pipe_chunk(p))) return NULL;
    return p;
}

mob_out *mob_pipe_out(mob_pipe *p) { return &p->slot[p->cur].out; }

/* A checkpoint (index j of hex_out) at the current end of the stream. */
int mob_pipe_mark(mob_pipe *p, size_t j)
{
    pslot *s = &p->slot[p->cur];
    if (s->nmarks == s->capmarks) {
        size_t cap = s->capmarks ? 2 * s->capmarks : 16;
        pmark *m = realloc(s->marks, cap * sizeof *m);
        if (!m) return MOBSTORE_E_NOMEM;
        s->marks = m;
        s->capmarks = cap;
    }
    if (s->nmarks == s->caphex) {
        size_t cap = s->capmarks;
        char *h0 = realloc(s->hex[0], 64 * cap);
        if (!h0) return MOBSTORE_E_NOMEM;
        s->hex[0] = h0;
        char *h1 = realloc(s->hex[1], 64 * cap);
        if (!h1) return MOBSTORE_E_NOMEM;
        s->hex[1] = h1;
        s->caphex = cap;
    }
    s->marks[s->nmarks++] = (pmark){(uint32_t)s->out.len, (uint32_t)j};
    return 0;
}

/* The producer hashes the queue head itself (mu held; returns with it held). */
static void producer_hash_head(mob_pipe *p)
{
    unsigned k = p->q[p->qhead];
    uint64_t g = p->gen;
    mobstore_sha256 st = p->st;
    p->producer_hashing = 1;
    pthread_mutex_unlock(&p->mu);
    hash_slot(&p->slot[k], &st, p->slot[k].hex[1]);
    pthread_mutex_lock(&p->mu);
    p->producer_hashing = 0;
    commit_locked(p, k, g, &st, 1);
    if (p->worker_waiting) pthread_cond_signal(&p->work);
}

/* One step towards an emptier queue (mu held, qlen > 0): let the worker
 * finish the head it took, for at most STEAL_WAIT_NS, else hash it here. */
static void help_locked(mob_pipe *p)
{
    unsigned k = p->q[p->qhead];
    if (p->pinned == (int)k) {
        uint64_t g = p->gen;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += STEAL_WAIT_NS;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_nsec -= 1000000000L;
            until.tv_sec++;
        }
        while (p->gen == g && p->pinned == (int)k) {
            if (pthread_cond_timedwait(&p->prog, &p->mu, &until) == ETIMEDOUT) {
                p->total_waits++;
                break;
            }
        }
        if (p->gen != g || !p->qlen) return; /* the worker committed */
        if (p->pinned != (int)k) return;      /* it let go: look again */
    }
    producer_hash_head(p);
}

/* After a message: queue the current slot once it holds a chunk, and move
 * to a free one (hashing queued slots here if none is free). */
int mob_pipe_after_message(mob_pipe *p)
{
    pslot *s = &p->slot[p->cur];
    size_t chunk = mob_pipe_chunk(p);
    if (s->out.len < chunk) return 0;
    pthread_mutex_lock(&p->mu);
    s->queued = 1;
    p->q[(p->qhead + p->qlen) % PIPE_SLOTS] = (unsigned)p->cur;
    p->qlen++;
    /* wake the worker for two slots at a time: half the wakeups (each may
     * cost two context switches when the other core is busy) */
    if (p->worker_waiting && p->qlen >= 2) pthread_cond_signal(&p->work);
    int next = -1;
    for (;;) {
        for (int i = 1; i <= PIPE_SLOTS && next < 0; i++) {
            int c = (p->cur + i) % PIPE_SLOTS;
            if (!p->slot[c].queued && c != p->pinned) next = c;
        }
        if (next >= 0) break;
        help_locked(p);
    }
    p->cur = next;
    pthread_mutex_unlock(&p->mu);
    return slot_open(&p->slot[next], chunk) ? MOBSTORE_E_NOMEM : 0;
}

/* End of the batch: queue what is left, hash everything, *st = the state
 * after the whole stream (checkpoint digests are in hex_out).  Returns the
 * share of the batch's slots the worker hashed, in percent. */
int mob_pipe_end(mob_pipe *p, mobstore_sha256 *st)
{
    pslot *s = &p->slot[p->cur];
    pthread_mutex_lock(&p->mu);
    if (s->out.len || s->nmarks) {
        s->queued = 1;
        p->q[(p->qhead + p->qlen) % PIPE_SLOTS] = (unsigned)p->cur;
        p->qlen++;
        if (p->worker_waiting) pthread_cond_signal(&p->work);
    }
    while (p->qlen) help_locked(p);
    *st = p->st;
    p->hex_out = NULL;
    uint64_t w = p->by_worker, all = p->by_worker + p->by_producer;
    p->total_worker += w;
    p->total_producer += p->by_producer;
    pthread_mutex_unlock(&p->mu);
    return all ? (int)(100 * w / all) : 100;
}

void mob_pipe_stats(mob_pipe *p, uint64_t out[3])
{
    out[0] = out[1] = out[2] = 0;
    if (!p || p->pid != getpid()) return;
    pthread_mutex_lock(&p->mu);
    out[0] = p->total_worker;
    out[1] = p->total_producer;
    out[2] = p->total_waits;
    pthread_mutex_unlock(&p->mu);
}
