/* transcript.c -- the public C API of canon.h: reusable contexts, error
 * reporting, one message (canonical bytes or their SHA-256) and whole or
 * streamed transcripts ("[" + canonical messages joined by "," + "]").
 *
 * A mobstore_ctx owns the parse tree (mob_doc) and the output buffer
 * (mob_out) and is reused across calls, so steady state allocates nothing.
 * One context per thread: the Python side calls these without the GIL.
 */
#define MOBSTORE_CANON_INTERNAL 1
#include "canon.h"

#include <string.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

/* Two-thread transcript digest (mobstore_transcript_digest only): the calling
 * thread canonicalises into a ring of PIPE_SLOTS output buffers while one
 * short-lived helper thread hashes the filled ones in order.  Below
 * PIPE_MIN_INPUT bytes of input the thread start/join (~tens of us) and the
 * handoffs cost more than the overlap gains, so small batches stay sequential. */
#define PIPE_MIN_INPUT (1u << 20) /* total input bytes of a batch */
#define PIPE_SLOTS 4
/* A slot is handed over once it holds >= PIPE_CHUNK bytes.  Each handoff can
 * wake the hasher (it hashes faster than the caller canonicalises), so larger
 * chunks mean fewer wakeups: measured on 4,000 x 1 KiB, 64 KiB -> 4.6 ms,
 * 256 KiB -> 4.2 ms (sequential 6.6 ms).  Ring: 4 x 512 KiB (buffer capacity
 * after the first large call) per context; mobstore_ctx_trim keeps it. */
#define PIPE_CHUNK (256u << 10)

struct mobstore_ctx {
    mob_doc doc;
    mob_out out;
    mob_out ring[PIPE_SLOTS]; /* pipeline slots: allocated on first large call, reused */
    mob_jcs *jcs;             /* the jcs profile's parse state: allocated on first use */
    int err;
    size_t err_index;
    size_t err_off;
    char err_text[192];
    const char *err_msg;    /* err_text, or the decoder's message in doc.msg */
    const char *jcs_detail; /* a jcs error's detail (owned by jcs), or NULL */
    int jcs_failed;         /* the error came from jcs.c */
};

const char *mobstore_canon_spec(void) { return MOBSTORE_CANON_SPEC; }

mobstore_ctx *mobstore_ctx_new(void)
{
    mobstore_ctx *c = calloc(1, sizeof *c);
    if (c) c->err_msg = c->err_text;
    return c;
}

void mobstore_ctx_free(mobstore_ctx *ctx)
{
    if (!ctx) return;
    mob_doc_free(&ctx->doc);
    free(ctx->out.buf);
    for (int i = 0; i < PIPE_SLOTS; i++) free(ctx->ring[i].buf);
    mob_jcs_free(ctx->jcs);
    free(ctx);
}

void mobstore_ctx_trim(mobstore_ctx *ctx)
{
    if (!ctx) return;
    if (ctx->doc.nodes_cap > 65536) {
        mob_doc_free(&ctx->doc);
        ctx->err_msg = ctx->err_text;
    }
    mob_jcs_trim(ctx->jcs);
    if (ctx->out.cap > (1u << 20)) {
        free(ctx->out.buf);
        memset(&ctx->out, 0, sizeof ctx->out);
    }
    for (int i = 0; i < PIPE_SLOTS; i++) {
        if (ctx->ring[i].cap > (1u << 20)) {
            free(ctx->ring[i].buf);
            memset(&ctx->ring[i], 0, sizeof ctx->ring[i]);
        }
    }
}

/* The jcs profile's error kinds (jcs.c reports a kind, an offset and a
 * detail; engine/_jcs_py.py words the same text). */
static const char *code_text(int code)
{
    switch (code) {
    case MOBSTORE_E_UTF8: return "invalid UTF-8";
    case MOBSTORE_E_SYNTAX: return "invalid JSON";
    case MOBSTORE_E_NUMBER: return "invalid number";
    case MOBSTORE_E_NUMBER_RANGE: return "number out of range";
    case MOBSTORE_E_DEPTH: return "nesting deeper than 127 levels";
    case MOBSTORE_E_DUPLICATE_KEY: return "duplicate key";
    case MOBSTORE_E_ESCAPE: return "invalid escape";
    case MOBSTORE_E_CONTROL: return "control character in string";
    case MOBSTORE_E_TRAILING: return "trailing characters";
    case MOBSTORE_E_SCHEMA: return "not a valid meerkat message";
    case MOBSTORE_E_TOO_LARGE: return "message too large";
    case MOBSTORE_E_NOMEM: return "out of memory";
    case MOBSTORE_E_ARG: return "bad argument";
    case MOBSTORE_E_NOT_OBJECT: return "message is not a JSON object";
    }
    return "error";
}

/* The error text: for the meerkat profiles the decoder's own (d->msg, naming
 * the path and what was allowed, as the Python reference words it); for jcs
 * its kind, detail and byte offset; else one for the code. */
static int set_error(mobstore_ctx *ctx, int code, size_t index)
{
    ctx->err = code;
    ctx->err_index = index;
    ctx->err_off = ctx->doc.err_off;
    ctx->err_msg = ctx->err_text;
    if (code == MOBSTORE_E_ARG || code == MOBSTORE_E_NOMEM) {
        snprintf(ctx->err_text, sizeof ctx->err_text, "%s", code_text(code));
    } else if (ctx->jcs_failed) {
        const char *detail = ctx->jcs_detail ? ctx->jcs_detail : code_text(code);
        if (strcmp(detail, code_text(code)) == 0)
            snprintf(ctx->err_text, sizeof ctx->err_text, "%s at byte %zu", detail, ctx->err_off);
        else
            snprintf(ctx->err_text, sizeof ctx->err_text, "%s: %s at byte %zu", code_text(code), detail,
                     ctx->err_off);
    } else if (ctx->doc.err == code && ctx->doc.msg.len) {
        ctx->err_msg = (const char *)ctx->doc.msg.buf;
    } else {
        snprintf(ctx->err_text, sizeof ctx->err_text, "%s", code_text(code));
    }
    return code;
}

static void clear_error(mobstore_ctx *ctx)
{
    ctx->err = 0;
    ctx->err_index = 0;
    ctx->err_off = 0;
    ctx->err_text[0] = 0;
    ctx->err_msg = ctx->err_text;
    ctx->jcs_detail = NULL;
    ctx->jcs_failed = 0;
    ctx->doc.err = 0;
    ctx->doc.msg.len = 0;
    ctx->out.oom = 0;
}

static int valid_profile(int p)
{
    int base = p & ~MOBSTORE_DECODE_STRICT;
    return base == MOBSTORE_PROFILE_F3 || base == MOBSTORE_PROFILE_F2 || base == MOBSTORE_PROFILE_BARE ||
           p == MOBSTORE_PROFILE_JCS;
}

/* One message's canonical bytes appended to o: the meerkat profiles
 * (message.c) or jcs (jcs.c, whose error position and detail go where
 * set_error reads them). */
static int canon_one(mobstore_ctx *ctx, mob_out *o, const uint8_t *msg, size_t len, int profile)
{
    if (profile != MOBSTORE_PROFILE_JCS) return mob_canonical_message(&ctx->doc, o, msg, len, profile);
    if (!ctx->jcs && !(ctx->jcs = mob_jcs_new())) return MOBSTORE_E_NOMEM;
    int rc = mob_jcs_message(ctx->jcs, o, msg, len);
    if (rc) {
        ctx->doc.err_off = mob_jcs_error_offset(ctx->jcs);
        ctx->jcs_detail = mob_jcs_error_detail(ctx->jcs);
        ctx->jcs_failed = 1;
    }
    return rc;
}

int mobstore_canonical(mobstore_ctx *ctx, const char *msg, size_t len, int profile,
                       const char **out, size_t *out_len)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    ctx->doc.err_off = 0;
    if (!out || !out_len || (!msg && len) || !valid_profile(profile)) return set_error(ctx, MOBSTORE_E_ARG, 0);
    ctx->out.len = 0;
    int rc = canon_one(ctx, &ctx->out, (const uint8_t *)(msg ? msg : ""), len, profile);
    if (rc) return set_error(ctx, rc, 0);
    *out = (const char *)ctx->out.buf;
    *out_len = ctx->out.len;
    return 0;
}

/* SHA-256 of one message's canonical bytes (no transcript framing) into out32
 * (caller-owned, 32 bytes), in one call: what a per-message content hash needs
 * without copying the canonical bytes out.  Errors as mobstore_canonical, plus
 * MOBSTORE_E_ARG for a NULL out32; out32 is written only on success. */
int mobstore_message_sha256(mobstore_ctx *ctx, const char *msg, size_t len, int profile, uint8_t *out32)
{
    const char *canon;
    size_t canon_len;
    if (!ctx) return MOBSTORE_E_ARG;
    if (!out32) {
        clear_error(ctx);
        return set_error(ctx, MOBSTORE_E_ARG, 0);
    }
    int rc = mobstore_canonical(ctx, msg, len, profile, &canon, &canon_len);
    if (rc) return rc;
    mobstore_sha256 s;
    mobstore_sha256_init(&s);
    mobstore_sha256_update(&s, canon, canon_len);
    mobstore_sha256_final(&s, out32);
    return 0;
}

/* Where a batch's messages are: back to back in `data` (ptrs NULL), or message i at
 * ptrs[i] + bias (the caller's own buffers, e.g. Python bytes objects: no join). */
typedef struct {
    const uint8_t *data;
    const char *const *ptrs;
    size_t bias;
    const size_t *lens;
} msg_src;

static inline const uint8_t *src_next(const msg_src *src, size_t i, const uint8_t **cursor)
{
    if (src->ptrs) return (const uint8_t *)src->ptrs[i] + src->bias;
    const uint8_t *p = *cursor;
    *cursor += src->lens[i];
    return p;
}

/* Canonicalise messages [0, n) into `state`, flushing the output buffer to
 * the hash every 32 KiB.  `count` = messages already in the transcript. */
#define FLUSH_AT (32u << 10)

static int absorb_src(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t count, const msg_src *src,
                      size_t n, int profile)
{
    const uint8_t *cursor = src->data;
    mob_out *o = &ctx->out;
    o->len = 0;
    for (size_t i = 0; i < n; i++) {
        if (count + i > 0) {
            if (mob_out_byte(o, ',')) return set_error(ctx, MOBSTORE_E_NOMEM, i);
        }
        const uint8_t *p = src_next(src, i, &cursor);
        int rc = canon_one(ctx, o, p, src->lens[i], profile);
        if (rc) return set_error(ctx, rc, i);
        if (o->len >= FLUSH_AT) {
            mobstore_sha256_update(state, o->buf, o->len);
            o->len = 0;
        }
    }
    mobstore_sha256_update(state, o->buf, o->len);
    o->len = 0;
    return 0;
}

static int absorb_into(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t count, const char *data,
                       const size_t *lens, size_t n, int profile)
{
    msg_src src = {(const uint8_t *)data, NULL, 0, lens};
    return absorb_src(ctx, state, count, &src, n, profile);
}

void mobstore_transcript_init(mobstore_sha256 *state)
{
    mobstore_sha256_init(state);
    mobstore_sha256_update(state, "[", 1);
}

int mobstore_transcript_absorb(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count,
                               const char *data, const size_t *lens, size_t n, int profile)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (!state || !count || (n && (!data || !lens)) || !valid_profile(profile))
        return set_error(ctx, MOBSTORE_E_ARG, 0);
    mobstore_sha256 work = *state;
    int rc = absorb_into(ctx, &work, *count, data, lens, n, profile);
    if (rc) return rc;
    *state = work;
    *count += n;
    return 0;
}

void mobstore_transcript_hex(const mobstore_sha256 *state, char *out_hex)
{
    mobstore_sha256 c = *state;
    mobstore_sha256_update(&c, "]", 1);
    mobstore_sha256_final_hex(&c, out_hex);
}

/* ---- the pipelined digest ---------------------------------------------
 * Slots [tail, tail + full) (mod PIPE_SLOTS) are queued or being hashed and
 * belong to the hasher; every other slot belongs to the producer, which fills
 * slot `head` and queues it once it holds >= PIPE_CHUNK bytes (a slot grows
 * to fit a message larger than a chunk: the hash is over one byte stream, so
 * where a slot ends does not matter).  A slot leaves the queue (full--) only
 * after it has been hashed, so the producer never writes a slot being read.
 * All shared fields are read and written under `mu`. */

static int g_digest_threads = 2; /* process-wide; accessed atomically */

int mobstore_set_digest_threads(int n)
{
    if (n < 1) n = 1;
    return __atomic_exchange_n(&g_digest_threads, n, __ATOMIC_RELAXED);
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t filled;  /* hasher waits: a slot was queued, or done/stop */
    pthread_cond_t drained; /* producer waits: a slot was hashed */
    mob_out *ring;
    mobstore_sha256 *state;
    unsigned tail, full;
    int done, stop;
} mob_pipe;

static void *pipe_hasher(void *arg)
{
    mob_pipe *pp = arg;
    pthread_mutex_lock(&pp->mu);
    for (;;) {
        while (!pp->full && !pp->done && !pp->stop) pthread_cond_wait(&pp->filled, &pp->mu);
        if (pp->stop || !pp->full) break; /* stop, or done and drained */
        const mob_out *slot = &pp->ring[pp->tail];
        pthread_mutex_unlock(&pp->mu);
        mobstore_sha256_update(pp->state, slot->buf, slot->len);
        pthread_mutex_lock(&pp->mu);
        pp->tail = (pp->tail + 1) % PIPE_SLOTS;
        pp->full--;
        pthread_cond_signal(&pp->drained);
    }
    pthread_mutex_unlock(&pp->mu);
    return NULL;
}

/* Queue slot *head and move to the next free one (waiting for the hasher). */
static void pipe_push(mob_pipe *pp, unsigned *head)
{
    pthread_mutex_lock(&pp->mu);
    pp->full++;
    pthread_cond_signal(&pp->filled);
    while (pp->full == PIPE_SLOTS) pthread_cond_wait(&pp->drained, &pp->mu);
    pthread_mutex_unlock(&pp->mu);
    *head = (*head + 1) % PIPE_SLOTS;
    pp->ring[*head].len = 0;
}

static void pipe_finish(mob_pipe *pp, pthread_t th, int stop)
{
    pthread_mutex_lock(&pp->mu);
    if (stop) pp->stop = 1;
    else pp->done = 1;
    pthread_cond_signal(&pp->filled);
    pthread_mutex_unlock(&pp->mu);
    pthread_join(th, NULL);
    pthread_cond_destroy(&pp->drained);
    pthread_cond_destroy(&pp->filled);
    pthread_mutex_destroy(&pp->mu);
}

/* Returns 1 if the pipeline could not start (caller runs the sequential path
 * on an untouched *state); else 0 or an error code set on ctx, exactly as
 * absorb_into(ctx, state, 0, ...) would. */
static int pipelined_absorb(mobstore_ctx *ctx, mobstore_sha256 *state, const msg_src *src,
                            size_t n, int profile, int *rc_out)
{
    for (int i = 0; i < PIPE_SLOTS; i++) {
        ctx->ring[i].oom = 0;
        ctx->ring[i].len = 0;
        if (mob_out_reserve(&ctx->ring[i], PIPE_CHUNK + (PIPE_CHUNK >> 2))) return 1;
    }
    mob_pipe pp;
    memset(&pp, 0, sizeof pp);
    pp.ring = ctx->ring;
    pp.state = state;
    if (pthread_mutex_init(&pp.mu, NULL)) return 1;
    if (pthread_cond_init(&pp.filled, NULL)) {
        pthread_mutex_destroy(&pp.mu);
        return 1;
    }
    if (pthread_cond_init(&pp.drained, NULL)) {
        pthread_cond_destroy(&pp.filled);
        pthread_mutex_destroy(&pp.mu);
        return 1;
    }
    /* the hasher takes no signals: they stay with the caller's threads */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t th;
    int crc = pthread_create(&th, NULL, pipe_hasher, &pp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (crc) {
        pthread_cond_destroy(&pp.drained);
        pthread_cond_destroy(&pp.filled);
        pthread_mutex_destroy(&pp.mu);
        return 1;
    }

    const uint8_t *cursor = src->data;
    const size_t *lens = src->lens;
    unsigned head = 0;
    mob_out *o = &ctx->ring[head];
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && mob_out_byte(o, ',')) {
            rc = set_error(ctx, MOBSTORE_E_NOMEM, i);
            break;
        }
        const uint8_t *p = src_next(src, i, &cursor);
        int mrc = canon_one(ctx, o, p, lens[i], profile);
        if (mrc) {
            rc = set_error(ctx, mrc, i);
            break;
        }
        if (o->len >= PIPE_CHUNK) {
            pipe_push(&pp, &head);
            o = &ctx->ring[head];
            o->oom = 0;
        }
    }
    if (!rc && o->len) {
        /* the last partial slot: queue it without waiting for a free one */
        pthread_mutex_lock(&pp.mu);
        pp.full++;
        pthread_cond_signal(&pp.filled);
        pthread_mutex_unlock(&pp.mu);
    }
    pipe_finish(&pp, th, rc != 0);
    *rc_out = rc;
    return 0;
}

static int digest_src(mobstore_ctx *ctx, const msg_src *src, size_t n, int profile, char *out_hex)
{
    mobstore_sha256 s;
    mobstore_transcript_init(&s);
    int rc = 0;
    int sequential = 1;
    if (n > 1 && __atomic_load_n(&g_digest_threads, __ATOMIC_RELAXED) > 1) {
        size_t total = 0;
        for (size_t i = 0; i < n && total < PIPE_MIN_INPUT; i++) total += src->lens[i];
        if (total >= PIPE_MIN_INPUT) sequential = pipelined_absorb(ctx, &s, src, n, profile, &rc);
    }
    if (sequential) rc = absorb_src(ctx, &s, 0, src, n, profile);
    if (rc) return rc;
    mobstore_transcript_hex(&s, out_hex);
    return 0;
}

int mobstore_transcript_digest(mobstore_ctx *ctx, const char *data, const size_t *lens, size_t n,
                               int profile, char *out_hex)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (!out_hex || (n && (!data || !lens)) || !valid_profile(profile)) return set_error(ctx, MOBSTORE_E_ARG, 0);
    msg_src src = {(const uint8_t *)data, NULL, 0, lens};
    return digest_src(ctx, &src, n, profile, out_hex);
}

static int valid_ptrs(const char *const *ptrs, size_t bias, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ptrs[i] || (uintptr_t)ptrs[i] > UINTPTR_MAX - bias) return 0;
    return 1;
}

int mobstore_transcript_digest_ptrs(mobstore_ctx *ctx, const char *const *ptrs, size_t bias, const size_t *lens,
                                    size_t n, int profile, char *out_hex)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (!out_hex || (n && (!ptrs || !lens || !valid_ptrs(ptrs, bias, n))) || !valid_profile(profile))
        return set_error(ctx, MOBSTORE_E_ARG, 0);
    msg_src src = {NULL, ptrs, bias, lens};
    return digest_src(ctx, &src, n, profile, out_hex);
}

int mobstore_transcript_absorb_ptrs(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count,
                                    const char *const *ptrs, size_t bias, const size_t *lens, size_t n, int profile)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (!state || !count || (n && (!ptrs || !lens || !valid_ptrs(ptrs, bias, n))) || !valid_profile(profile))
        return set_error(ctx, MOBSTORE_E_ARG, 0);
    msg_src src = {NULL, ptrs, bias, lens};
    mobstore_sha256 work = *state;
    int rc = absorb_src(ctx, &work, *count, &src, n, profile);
    if (rc) return rc;
    *state = work;
    *count += n;
    return 0;
}

/* verify's inner loop: absorb messages and write the digest at each checkpoint count.
 * Unlike absorb, progress is kept on error: *state / *count then cover the messages before
 * the failing one (its index is mobstore_ctx_error_index), and *next_at says how many
 * checkpoints were written. */
int mobstore_transcript_checkpoints(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count,
                                    const char *const *ptrs, size_t bias, const size_t *lens, size_t n,
                                    int profile, const uint64_t *at, size_t n_at, size_t *next_at,
                                    char *hex_out)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (!state || !count || !next_at || (n && (!ptrs || !lens || !valid_ptrs(ptrs, bias, n))) ||
        (n_at && (!at || !hex_out)) || *next_at > n_at || !valid_profile(profile))
        return set_error(ctx, MOBSTORE_E_ARG, 0);
    for (size_t j = *next_at; j + 1 < n_at; j++)
        if (at[j] > at[j + 1]) return set_error(ctx, MOBSTORE_E_ARG, 0);
    mob_out *o = &ctx->out;
    o->len = 0;
    size_t j = *next_at;
    uint64_t c = *count;
    char hex[65];
    int rc = 0;
    for (size_t i = 0;; i++) {
        /* every checkpoint at the current count, before the next message */
        while (j < n_at && at[j] == c) {
            mobstore_sha256_update(state, o->buf, o->len);
            o->len = 0;
            mobstore_transcript_hex(state, hex);
            memcpy(hex_out + 64 * j, hex, 64);
            j++;
        }
        if (i == n || (j < n_at && at[j] < c)) break; /* done, or a checkpoint behind us (caller's order) */
        if (c > 0 && mob_out_byte(o, ',')) {
            rc = set_error(ctx, MOBSTORE_E_NOMEM, i);
            o->len = 0; /* nothing of message i reaches the state */
            break;
        }
        size_t before = o->len;
        int mrc = canon_one(ctx, o, (const uint8_t *)ptrs[i] + bias, lens[i], profile);
        if (mrc) {
            rc = set_error(ctx, mrc, i);
            o->len = before > 0 && c > 0 ? before - 1 : before; /* drop the separator too */
            break;
        }
        c++;
        if (o->len >= FLUSH_AT) {
            mobstore_sha256_update(state, o->buf, o->len);
            o->len = 0;
        }
    }
    mobstore_sha256_update(state, o->buf, o->len);
    o->len = 0;
    *count = c;
    *next_at = j;
    return rc;
}

int mobstore_ctx_error_code(const mobstore_ctx *ctx) { return ctx ? ctx->err : MOBSTORE_E_ARG; }
size_t mobstore_ctx_error_index(const mobstore_ctx *ctx) { return ctx ? ctx->err_index : 0; }
size_t mobstore_ctx_error_offset(const mobstore_ctx *ctx) { return ctx ? ctx->err_off : 0; }
const char *mobstore_ctx_error_text(const mobstore_ctx *ctx) { return ctx ? ctx->err_msg : "no context"; }
