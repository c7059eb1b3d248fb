/* transcript.c -- the public C API of canon.h: reusable contexts, error
 * reporting, one message (canonical bytes or their SHA-256) and whole or
 * streamed transcripts ("[" + canonical messages joined by "," + "]").
 *
 * A mobstore_ctx owns the parse tree (mob_doc) and the output buffer
 * (mob_out) and is reused across calls, so steady state allocates nothing.
 * One context per thread: the Python side calls these without the GIL.
 *
 * Every transcript call (digest, absorb, checkpoints) is one loop, run_batch:
 * canonicalise each message into the stream "[" + c(m0) + "," + ...,
 * recording the digest at checkpoint counts on the way.  A batch of at least
 * PIPE_MIN_INPUT bytes hashes on the context's hashing thread (hashpipe.c)
 * while this thread canonicalises; a smaller one, or with threads = 1, hashes
 * here every FLUSH_AT bytes.
 */
#define _GNU_SOURCE 1 /* sched_getaffinity, CPU_COUNT */
#define MOBSTORE_CANON_INTERNAL 1
#include "canon.h"

#include <string.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct mobstore_ctx {
    mob_doc doc;
    mob_out out;
    mob_pipe *pipe;           /* the hashing thread and its slots: made on first large batch */
    double pipe_rate[2];      /* large batches: measured ns per input byte, sequential / pipelined (0: none yet) */
    unsigned pipe_batches;    /* large batches so far */
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
    mob_pipe_release(ctx->pipe);
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
    mob_pipe_trim(ctx->pipe);
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

/* Where a batch's messages are: back to back in `data` (ptrs NULL), or
 * message i at ptrs[i] + bias, its length lens[i] or (lens NULL) the
 * Py_ssize_t at ptrs[i] + size_off (the caller's own buffers, e.g. Python
 * bytes objects: no join, no arrays built per call). */
typedef struct {
    const uint8_t *data;
    const char *const *ptrs;
    size_t bias;
    const size_t *lens;
    size_t size_off;
} msg_src;

static inline size_t src_len(const msg_src *src, size_t i)
{
    if (src->lens) return src->lens[i];
    ptrdiff_t n;
    memcpy(&n, src->ptrs[i] + src->size_off, sizeof n);
    return (size_t)n; /* >= 0: checked by valid_objs */
}

static inline const uint8_t *src_next(const msg_src *src, size_t i, const uint8_t **cursor, size_t len)
{
    if (src->ptrs) return (const uint8_t *)src->ptrs[i] + src->bias;
    const uint8_t *p = *cursor;
    *cursor += len;
    return p;
}

/* Below this many input bytes a batch hashes on the calling thread: the
 * handoffs and the tail left to hash after the last message cost more than
 * the overlap gains (4,000 x 1 KiB f3 with an idle second core: see the
 * commit that set it). */
#define PIPE_MIN_INPUT (512u << 10)
/* Sequential: the output buffer is hashed every FLUSH_AT bytes (stays in L2). */
#define FLUSH_AT (32u << 10)

static int g_digest_threads = 2; /* process-wide; accessed atomically */

int mobstore_set_digest_threads(int n)
{
    if (n < 1) n = 1;
    return __atomic_exchange_n(&g_digest_threads, n, __ATOMIC_RELAXED);
}

static int g_pipe_test; /* MOB_PIPE_TEST_* (tests only) */

void mobstore_pipe_test_mode(int mode)
{
    __atomic_store_n(&g_pipe_test, mode, __ATOMIC_RELAXED);
    mob_pipe_set_test_mode(mode);
}

/* Checkpoints of one batch: at[j] ascending from *next (n_at 0: none). */
typedef struct {
    const uint64_t *at;
    size_t n_at;
    size_t next;
    char *hex_out;
} ckpts;

/* A large batch (>= min_input bytes, threads allowed, more than one CPU to
 * run on) is pipelined when that has been the faster way for this context:
 * each large batch measures its ns per input byte, kept per way as a moving
 * average; the faster way is taken, and every PIPE_PROBE-th batch the other
 * one, so a change in the machine's load (the other core busy or free again)
 * is seen.  Returns 0 (too small), 1 (large, sequential), 2 (large, pipelined). */
#define PIPE_PROBE 8

static int pick_way(mobstore_ctx *ctx, const msg_src *src, size_t n, size_t min_input, int forced)
{
    if (n < 2 || __atomic_load_n(&g_digest_threads, __ATOMIC_RELAXED) < 2) return 0;
    size_t total = 0;
    for (size_t i = 0; i < n && total < min_input; i++) total += src_len(src, i);
    if (total < min_input) return 0;
    if (forced) return 2;
    cpu_set_t cpus;
    if (sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) < 2) return 1; /* one core: no overlap */
    unsigned k = ctx->pipe_batches++;
    double seq = ctx->pipe_rate[0], par = ctx->pipe_rate[1];
    if (par == 0) return 2;
    if (seq == 0) return 1;
    int best = par <= seq ? 2 : 1;
    return k % PIPE_PROBE == PIPE_PROBE - 1 ? 3 - best : best;
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void record_way(mobstore_ctx *ctx, int way, double ns, size_t bytes)
{
    if (!bytes) return;
    double r = ns / (double)bytes, *slot = &ctx->pipe_rate[way - 1];
    *slot = *slot == 0 ? r : 0.75 * *slot + 0.25 * r;
}

void mobstore_ctx_pipe_stats(mobstore_ctx *ctx, uint64_t *out3)
{
    if (!ctx || !out3) return;
    mob_pipe_stats(ctx->pipe, out3);
}

/* Canonicalise messages [0, n) of src into the stream *state (which holds *count
 * messages), recording checkpoint digests.  On a bad message: its error is set
 * (index i) and *state / *count / ck->next cover the messages before it. */
static int run_batch(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count, const msg_src *src, size_t n,
                     int profile, ckpts *ck)
{
    const uint8_t *cursor = src->data;
    size_t j = ck->next;
    uint64_t c = *count;
    int rc = 0;
    mob_pipe *pp = NULL;
    mob_out *o = &ctx->out;
    int test = __atomic_load_n(&g_pipe_test, __ATOMIC_RELAXED);
    int way = pick_way(ctx, src, n, (test & MOB_PIPE_TEST_TINY) ? 1 : PIPE_MIN_INPUT, test != 0);
    double t0 = way ? now_ns() : 0;
    if (way == 2 && (pp = mob_pipe_begin(&ctx->pipe, state, ck->hex_out)))
        o = mob_pipe_out(pp);
    else
        o->len = 0;
    size_t bytes = 0;
    for (size_t i = 0;; i++) {
        /* every checkpoint at the current count, before the next message */
        while (j < ck->n_at && ck->at[j] == c) {
            if (pp) {
                if (mob_pipe_mark(pp, j)) {
                    rc = set_error(ctx, MOBSTORE_E_NOMEM, i);
                    goto done;
                }
            } else {
                char hex[65];
                mobstore_sha256_update(state, o->buf, o->len);
                o->len = 0;
                mobstore_transcript_hex(state, hex);
                memcpy(ck->hex_out + 64 * j, hex, 64);
            }
            j++;
        }
        if (i == n || (j < ck->n_at && ck->at[j] < c)) break; /* done, or a checkpoint behind us (caller's order) */
        size_t len = src_len(src, i);
        const uint8_t *p = src_next(src, i, &cursor, len);
        bytes += len;
        size_t before = o->len;
        if (c > 0 && mob_out_byte(o, ',')) {
            rc = set_error(ctx, MOBSTORE_E_NOMEM, i);
            o->len = before; /* nothing of message i reaches the state */
            break;
        }
        int mrc = canon_one(ctx, o, p, len, profile);
        if (mrc) {
            rc = set_error(ctx, mrc, i);
            o->len = before; /* drop the separator too */
            break;
        }
        c++;
        if (pp) {
            if (mob_pipe_after_message(pp)) {
                rc = set_error(ctx, MOBSTORE_E_NOMEM, i + 1);
                goto done;
            }
            o = mob_pipe_out(pp);
        } else if (o->len >= FLUSH_AT) {
            mobstore_sha256_update(state, o->buf, o->len);
            o->len = 0;
        }
    }
done:
    if (pp) {
        mob_pipe_end(pp, state);
    } else {
        mobstore_sha256_update(state, o->buf, o->len);
        o->len = 0;
    }
    if (way && !rc) record_way(ctx, pp ? 2 : 1, now_ns() - t0, bytes);
    *count = c;
    ck->next = j;
    return rc;
}

static int digest_src(mobstore_ctx *ctx, const msg_src *src, size_t n, int profile, char *out_hex)
{
    mobstore_sha256 s;
    mobstore_transcript_init(&s);
    uint64_t count = 0;
    ckpts none = {NULL, 0, 0, NULL};
    int rc = run_batch(ctx, &s, &count, src, n, profile, &none);
    if (rc) return rc;
    mobstore_transcript_hex(&s, out_hex);
    return 0;
}

/* absorb: all-or-nothing (a copy of the state is worked on). */
static int absorb_src(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count, const msg_src *src, size_t n,
                      int profile)
{
    mobstore_sha256 work = *state;
    uint64_t c = *count;
    ckpts none = {NULL, 0, 0, NULL};
    int rc = run_batch(ctx, &work, &c, src, n, profile, &none);
    if (rc) return rc;
    *state = work;
    *count = c;
    return 0;
}

static int checkpoints_src(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count, const msg_src *src, size_t n,
                           int profile, const uint64_t *at, size_t n_at, size_t *next_at, char *hex_out)
{
    for (size_t j = *next_at; j + 1 < n_at; j++)
        if (at[j] > at[j + 1]) return set_error(ctx, MOBSTORE_E_ARG, 0);
    ckpts ck = {at, n_at, *next_at, hex_out};
    int rc = run_batch(ctx, state, count, src, n, profile, &ck);
    *next_at = ck.next;
    return rc;
}

void mobstore_transcript_init(mobstore_sha256 *state)
{
    mobstore_sha256_init(state);
    mobstore_sha256_update(state, "[", 1);
}

void mobstore_transcript_hex(const mobstore_sha256 *state, char *out_hex)
{
    mobstore_sha256 c = *state;
    mobstore_sha256_update(&c, "]", 1);
    mobstore_sha256_final_hex(&c, out_hex);
}

int mobstore_transcript_absorb(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count,
                               const char *data, const size_t *lens, size_t n, int profile)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (!state || !count || (n && (!data || !lens)) || !valid_profile(profile))
        return set_error(ctx, MOBSTORE_E_ARG, 0);
    msg_src src = {(const uint8_t *)data, NULL, 0, lens, 0};
    return absorb_src(ctx, state, count, &src, n, profile);
}

int mobstore_transcript_digest(mobstore_ctx *ctx, const char *data, const size_t *lens, size_t n,
                               int profile, char *out_hex)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (!out_hex || (n && (!data || !lens)) || !valid_profile(profile)) return set_error(ctx, MOBSTORE_E_ARG, 0);
    msg_src src = {(const uint8_t *)data, NULL, 0, lens, 0};
    return digest_src(ctx, &src, n, profile, out_hex);
}

static int valid_ptrs(const char *const *ptrs, size_t bias, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ptrs[i] || (uintptr_t)ptrs[i] > UINTPTR_MAX - bias) return 0;
    return 1;
}

/* objs[i] non-NULL, both offsets addressable, the length >= 0 and its bytes in range. */
static int valid_objs(const char *const *objs, size_t n, size_t data_off, size_t size_off)
{
    if (!objs && n) return 0;
    if (size_off > 4096 || data_off > 4096) return 0; /* an object header, not an arbitrary offset */
    for (size_t i = 0; i < n; i++) {
        uintptr_t a = (uintptr_t)objs[i];
        if (!a || a > UINTPTR_MAX - 8192) return 0;
        ptrdiff_t len;
        memcpy(&len, objs[i] + size_off, sizeof len);
        if (len < 0 || (size_t)len > UINTPTR_MAX - (a + data_off)) return 0;
    }
    return 1;
}

int mobstore_transcript_digest_ptrs(mobstore_ctx *ctx, const char *const *ptrs, size_t bias, const size_t *lens,
                                    size_t n, int profile, char *out_hex)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (!out_hex || (n && (!ptrs || !lens || !valid_ptrs(ptrs, bias, n))) || !valid_profile(profile))
        return set_error(ctx, MOBSTORE_E_ARG, 0);
    msg_src src = {NULL, ptrs, bias, lens, 0};
    return digest_src(ctx, &src, n, profile, out_hex);
}

int mobstore_transcript_absorb_ptrs(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count,
                                    const char *const *ptrs, size_t bias, const size_t *lens, size_t n, int profile)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (!state || !count || (n && (!ptrs || !lens || !valid_ptrs(ptrs, bias, n))) || !valid_profile(profile))
        return set_error(ctx, MOBSTORE_E_ARG, 0);
    msg_src src = {NULL, ptrs, bias, lens, 0};
    return absorb_src(ctx, state, count, &src, n, profile);
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
    msg_src src = {NULL, ptrs, bias, lens, 0};
    return checkpoints_src(ctx, state, count, &src, n, profile, at, n_at, next_at, hex_out);
}

int mobstore_transcript_digest_objs(mobstore_ctx *ctx, const char *const *objs, size_t n, size_t data_off,
                                    size_t size_off, int profile, char *out_hex)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (!out_hex || !valid_objs(objs, n, data_off, size_off) || !valid_profile(profile))
        return set_error(ctx, MOBSTORE_E_ARG, 0);
    msg_src src = {NULL, objs, data_off, NULL, size_off};
    return digest_src(ctx, &src, n, profile, out_hex);
}

int mobstore_transcript_absorb_objs(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count,
                                    const char *const *objs, size_t n, size_t data_off, size_t size_off,
                                    int profile)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (!state || !count || !valid_objs(objs, n, data_off, size_off) || !valid_profile(profile))
        return set_error(ctx, MOBSTORE_E_ARG, 0);
    msg_src src = {NULL, objs, data_off, NULL, size_off};
    return absorb_src(ctx, state, count, &src, n, profile);
}

int mobstore_transcript_checkpoints_objs(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count,
                                         const char *const *objs, size_t n, size_t data_off, size_t size_off,
                                         int profile, const uint64_t *at, size_t n_at, size_t *next_at,
                                         char *hex_out)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (!state || !count || !next_at || !valid_objs(objs, n, data_off, size_off) || (n_at && (!at || !hex_out)) ||
        *next_at > n_at || !valid_profile(profile))
        return set_error(ctx, MOBSTORE_E_ARG, 0);
    msg_src src = {NULL, objs, data_off, NULL, size_off};
    return checkpoints_src(ctx, state, count, &src, n, profile, at, n_at, next_at, hex_out);
}

int mobstore_ctx_error_code(const mobstore_ctx *ctx) { return ctx ? ctx->err : MOBSTORE_E_ARG; }
size_t mobstore_ctx_error_index(const mobstore_ctx *ctx) { return ctx ? ctx->err_index : 0; }
size_t mobstore_ctx_error_offset(const mobstore_ctx *ctx) { return ctx ? ctx->err_off : 0; }
const char *mobstore_ctx_error_text(const mobstore_ctx *ctx) { return ctx ? ctx->err_msg : "no context"; }
