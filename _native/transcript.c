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

#include <stdio.h>
#include <stdlib.h>

struct mobstore_ctx {
    mob_doc doc;
    mob_out out;
    int err;
    size_t err_index;
    size_t err_off;
    char err_text[192];
};

const char *mobstore_canon_spec(void) { return MOBSTORE_CANON_SPEC; }

mobstore_ctx *mobstore_ctx_new(void)
{
    mobstore_ctx *c = calloc(1, sizeof *c);
    return c;
}

void mobstore_ctx_free(mobstore_ctx *ctx)
{
    if (!ctx) return;
    mob_doc_free(&ctx->doc);
    free(ctx->out.buf);
    free(ctx);
}

void mobstore_ctx_trim(mobstore_ctx *ctx)
{
    if (!ctx) return;
    if (ctx->doc.nodes_cap > 65536) mob_doc_free(&ctx->doc);
    if (ctx->out.cap > (1u << 20)) {
        free(ctx->out.buf);
        memset(&ctx->out, 0, sizeof ctx->out);
    }
}

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
    }
    return "error";
}

static int set_error(mobstore_ctx *ctx, int code, size_t index)
{
    ctx->err = code;
    ctx->err_index = index;
    ctx->err_off = ctx->doc.err_off;
    const char *detail = ctx->doc.err_detail;
    if (!detail || code == MOBSTORE_E_ARG) detail = code_text(code);
    if (code == MOBSTORE_E_ARG || code == MOBSTORE_E_NOMEM)
        snprintf(ctx->err_text, sizeof ctx->err_text, "%s", detail);
    else if (strcmp(detail, code_text(code)) == 0)
        snprintf(ctx->err_text, sizeof ctx->err_text, "%s at byte %zu", detail, ctx->err_off);
    else
        snprintf(ctx->err_text, sizeof ctx->err_text, "%s: %s at byte %zu", code_text(code), detail, ctx->err_off);
    return code;
}

static void clear_error(mobstore_ctx *ctx)
{
    ctx->err = 0;
    ctx->err_index = 0;
    ctx->err_off = 0;
    ctx->err_text[0] = 0;
    ctx->out.oom = 0;
}

static int valid_profile(int p)
{
    return p == MOBSTORE_PROFILE_F3 || p == MOBSTORE_PROFILE_F2 || p == MOBSTORE_PROFILE_BARE;
}

int mobstore_canonical(mobstore_ctx *ctx, const char *msg, size_t len, int profile,
                       const char **out, size_t *out_len)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    ctx->doc.err_detail = NULL;
    ctx->doc.err_off = 0;
    if (!out || !out_len || (!msg && len) || !valid_profile(profile)) return set_error(ctx, MOBSTORE_E_ARG, 0);
    ctx->out.len = 0;
    int rc = mob_canonical_message(&ctx->doc, &ctx->out, (const uint8_t *)(msg ? msg : ""), len, profile);
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

/* Canonicalise messages [0, n) into `state`, flushing the output buffer to
 * the hash every 32 KiB.  `count` = messages already in the transcript. */
#define FLUSH_AT (32u << 10)

static int absorb_into(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t count, const char *data,
                       const size_t *lens, size_t n, int profile)
{
    const uint8_t *p = (const uint8_t *)data;
    mob_out *o = &ctx->out;
    o->len = 0;
    for (size_t i = 0; i < n; i++) {
        if (count + i > 0) {
            if (mob_out_byte(o, ',')) return set_error(ctx, MOBSTORE_E_NOMEM, i);
        }
        int rc = mob_canonical_message(&ctx->doc, o, p, lens[i], profile);
        if (rc) return set_error(ctx, rc, i);
        p += lens[i];
        if (o->len >= FLUSH_AT) {
            mobstore_sha256_update(state, o->buf, o->len);
            o->len = 0;
        }
    }
    mobstore_sha256_update(state, o->buf, o->len);
    o->len = 0;
    return 0;
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
    ctx->doc.err_detail = NULL;
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

int mobstore_transcript_digest(mobstore_ctx *ctx, const char *data, const size_t *lens, size_t n,
                               int profile, char *out_hex)
{
    if (!ctx) return MOBSTORE_E_ARG;
    clear_error(ctx);
    ctx->doc.err_detail = NULL;
    if (!out_hex || (n && (!data || !lens)) || !valid_profile(profile)) return set_error(ctx, MOBSTORE_E_ARG, 0);
    mobstore_sha256 s;
    mobstore_transcript_init(&s);
    int rc = absorb_into(ctx, &s, 0, data, lens, n, profile);
    if (rc) return rc;
    mobstore_transcript_hex(&s, out_hex);
    return 0;
}

int mobstore_ctx_error_code(const mobstore_ctx *ctx) { return ctx ? ctx->err : MOBSTORE_E_ARG; }
size_t mobstore_ctx_error_index(const mobstore_ctx *ctx) { return ctx ? ctx->err_index : 0; }
size_t mobstore_ctx_error_offset(const mobstore_ctx *ctx) { return ctx ? ctx->err_off : 0; }
const char *mobstore_ctx_error_text(const mobstore_ctx *ctx) { return ctx ? ctx->err_text : "no context"; }
