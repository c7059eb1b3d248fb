/* canon.h -- mobstore's native canonical serializer + transcript digest.
 *
 * The part between BEGIN CDEF / END CDEF is the public API and is fed to
 * cffi verbatim (build_canon.py), so it stays plain C declarations.
 *
 * Input: one meerkat message as JSON text.  Output: the bytes meerkat's
 * serializer writes for it after its typed decode (docs/messages.md), for a
 * profile (docs/profiles.md):
 *   f3   typed decode + inline images collapsed to blob ids + opaque slots
 *        key-sorted with their floats parsed twice more + created_at erased +
 *        user/block_assistant identity dropped
 *   f2   meerkat 0.8.10's replay: as f3 but opaque slots copied verbatim from
 *        the input and system rows in the frozen 0.8.10 wire
 *   bare the typed decode alone, opaque slots parsed once more (plain hex digest)
 *   jcs  any JSON object, RFC 8785 canonical form (jcs.c; engine/_jcs_py.py
 *        is its spec): no meerkat model, correctly rounded numbers
 * The typed model is data (engine/meerkat_model.json), compiled into tables at
 * build time; mobstore_model_sha256() says which model file a build carries.
 *
 * Limits: serde_json's depth counter MOBSTORE_MAX_DEPTH = 128 fails when it
 * reaches 0, so at most 127 arrays/objects nest (the message object = 1);
 * message size < MOBSTORE_MAX_MESSAGE_BYTES.
 * Errors never crash or leak; the context keeps the first error's code,
 * message index, byte offset and text (mobstore_ctx_error*).
 */
#ifndef MOBSTORE_CANON_H
#define MOBSTORE_CANON_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

/* Bump whenever output bytes or the ABI change: Python refuses a stale build. */
#define MOBSTORE_CANON_SPEC "mobstore-canon-5"

/* BEGIN CDEF */
#define MOBSTORE_PROFILE_BARE 0
#define MOBSTORE_PROFILE_F2 2
#define MOBSTORE_PROFILE_F3 3
#define MOBSTORE_PROFILE_JCS 74 /* 'J': away from meerkat's numbered profiles */
/* OR-ed into a profile argument: refuse any key the typed decode would drop
 * (an unknown field, a duplicated key) instead of dropping it. */
#define MOBSTORE_DECODE_STRICT 256

#define MOBSTORE_MAX_DEPTH 128
#define MOBSTORE_MAX_MESSAGE_BYTES 2147483647
#define MOBSTORE_JCS_MAX_DEPTH 127 /* jcs: nested arrays/objects, the top-level object included */

/* Result codes (0 = success).  Every nonzero code except NOMEM and ARG means
 * "the input is not an acceptable message" (InvalidInputError in Python). */
#define MOBSTORE_OK 0
#define MOBSTORE_E_UTF8 1          /* invalid UTF-8 (overlong, surrogate, truncated, > U+10FFFF) */
#define MOBSTORE_E_SYNTAX 2        /* not JSON: unexpected byte or end of input */
#define MOBSTORE_E_NUMBER 3        /* malformed number (leading zero, missing digits, ...) */
#define MOBSTORE_E_NUMBER_RANGE 4  /* number overflows to +-infinity */
#define MOBSTORE_E_DEPTH 5         /* more than MOBSTORE_MAX_DEPTH - 1 nested containers */
#define MOBSTORE_E_DUPLICATE_KEY 6 /* jcs: the same name twice in one object (meerkat profiles keep duplicates) */
#define MOBSTORE_E_ESCAPE 7        /* bad escape or lone surrogate \u escape */
#define MOBSTORE_E_CONTROL 8       /* raw control character (< 0x20) in a string */
#define MOBSTORE_E_TRAILING 9      /* non-whitespace after the JSON value */
#define MOBSTORE_E_SCHEMA 10       /* valid JSON, refused by the typed decode (type/field/variant) */
#define MOBSTORE_E_TOO_LARGE 11    /* message >= MOBSTORE_MAX_MESSAGE_BYTES */
#define MOBSTORE_E_NOMEM 12        /* allocation failed (MemoryError) */
#define MOBSTORE_E_ARG 13          /* bad argument: unknown profile, NULL pointer */
#define MOBSTORE_E_NOT_OBJECT 14   /* jcs: the message is not a JSON object */

typedef struct mobstore_ctx mobstore_ctx;

/* The spec id compiled into this build (MOBSTORE_CANON_SPEC); static string. */
const char *mobstore_canon_spec(void);

/* Hex SHA-256 of the model file (engine/meerkat_model.json) this build's
 * tables were generated from; static string. */
const char *mobstore_model_sha256(void);

/* A reusable work context: parse tree, string arena, output buffer.
 * Allocate once per thread and reuse; buffers grow to the largest message
 * seen and are kept.  Returns NULL when out of memory.  Not thread-safe:
 * one context must not be used by two threads at once. */
mobstore_ctx *mobstore_ctx_new(void);

/* Free the context and every buffer it owns.  NULL is a no-op. */
void mobstore_ctx_free(mobstore_ctx *ctx);

/* Drop buffers above a small size (keeps the context usable). */
void mobstore_ctx_trim(mobstore_ctx *ctx);

/* Canonicalise one message (msg[0..len), caller-owned, not NUL-terminated)
 * for `profile`.  On success returns 0 and sets *out / *out_len to bytes
 * owned by ctx, valid until the next call on ctx.  On error returns a code
 * above; *out is set to NULL. */
int mobstore_canonical(mobstore_ctx *ctx, const char *msg, size_t len, int profile,
                       const char **out, size_t *out_len);

/* SHA-256 of one message's canonical bytes (no "[...]" framing) into out32
 * (caller-owned, 32 bytes).  Errors as mobstore_canonical; MOBSTORE_E_ARG for a
 * NULL out32.  out32 is written only on success. */
int mobstore_message_sha256(mobstore_ctx *ctx, const char *msg, size_t len, int profile, uint8_t *out32);

/* Transcript digest of n messages stored back to back in data (lens[i] bytes
 * each; caller-owned).  Hashes "[" + c(m0) + "," + ... + "]" and writes
 * 64 lowercase hex chars + NUL into out_hex (65 bytes, caller-owned); the
 * "sha256:" prefix is the caller's business.  Returns 0 or an error code;
 * the failing message index is mobstore_ctx_error_index(). */
int mobstore_transcript_digest(mobstore_ctx *ctx, const char *data, const size_t *lens,
                               size_t n, int profile, char *out_hex);

/* Threads a transcript call (digest, absorb, checkpoints) may use, process-wide:
 * 1 = always sequential; >= 2 (default 2) = a batch of >= 512 KiB of input
 * is hashed on the context's hashing thread while the caller canonicalises
 * (same bytes, same result and errors; never waits long for that thread, see
 * hashpipe.c).  n < 1 counts as 1.  Returns the previous value. */
int mobstore_set_digest_threads(int n);
/* Tests only: MOB_PIPE_TEST_* bits; any nonzero mode pipelines every batch
 * over the threshold (1 without a hashing thread, 2 with 512-byte slots and no
 * threshold, 4 with a hashing thread that sleeps before each slot, 8 nothing
 * else); 0 = normal. */
void mobstore_pipe_test_mode(int mode);
/* Tests and tuning: slots of ctx's batches hashed by the hashing thread (out[0]), by
 * the caller (out[1]), and times the caller stopped waiting for the thread (out[2]). */
void mobstore_ctx_pipe_stats(mobstore_ctx *ctx, uint64_t *out3);

/* Streaming transcript state: a SHA-256 state that has absorbed "[" and
 * `count` canonical messages joined by ",".  absorb adds n more messages
 * (layout as above) all-or-nothing: on any error *state and *count are
 * unchanged.  Returns 0 or an error code. */
void mobstore_transcript_init(mobstore_sha256 *state);
int mobstore_transcript_absorb(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count,
                               const char *data, const size_t *lens, size_t n, int profile);

/* Hex digest of the transcript so far (appends "]" to a copy; *state is not
 * changed).  out_hex: 65 bytes, caller-owned. */
void mobstore_transcript_hex(const mobstore_sha256 *state, char *out_hex);

/* The same without joining the messages first: message i is the lens[i] bytes at
 * ptrs[i] + bias (bias lets a caller pass object addresses plus the constant offset of
 * their data, e.g. CPython bytes objects).  Results and errors as the calls above. */
int mobstore_transcript_digest_ptrs(mobstore_ctx *ctx, const char *const *ptrs, size_t bias,
                                    const size_t *lens, size_t n, int profile, char *out_hex);
int mobstore_transcript_absorb_ptrs(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count,
                                    const char *const *ptrs, size_t bias, const size_t *lens,
                                    size_t n, int profile);

/* verify in one call per chunk: absorb n messages (as _ptrs above) into *state / *count and,
 * each time the running count equals at[j] (at ascending; j from *next_at), write the
 * transcript digest at that point as 64 hex chars at hex_out + 64*j (no NUL).  On return
 * *next_at = checkpoints written.  On a bad message returns its error (index =
 * mobstore_ctx_error_index) with *state / *count covering the messages before it. */
int mobstore_transcript_checkpoints(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count,
                                    const char *const *ptrs, size_t bias, const size_t *lens, size_t n,
                                    int profile, const uint64_t *at, size_t n_at, size_t *next_at,
                                    char *hex_out);

/* The same calls over objects: message i is the Py_ssize_t-sized length at
 * objs[i] + size_off followed by the bytes at objs[i] + data_off (a CPython
 * bytes object: the caller passes a tuple's item array, so no per-message
 * lengths or addresses are built; the layout is checked by the caller).  A
 * negative length is MOBSTORE_E_ARG. */
int mobstore_transcript_digest_objs(mobstore_ctx *ctx, const char *const *objs, size_t n, size_t data_off,
                                    size_t size_off, int profile, char *out_hex);
int mobstore_transcript_absorb_objs(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count,
                                    const char *const *objs, size_t n, size_t data_off, size_t size_off,
                                    int profile);
int mobstore_transcript_checkpoints_objs(mobstore_ctx *ctx, mobstore_sha256 *state, uint64_t *count,
                                         const char *const *objs, size_t n, size_t data_off, size_t size_off,
                                         int profile, const uint64_t *at, size_t n_at, size_t *next_at,
                                         char *hex_out);

/* Details of the last error on ctx: code, message index within a batch (0
 * for single calls), byte offset within that message (syntax errors), and a
 * NUL-terminated description naming the JSON path, the field and what was
 * allowed, exactly as the Python reference words it (owned by ctx, valid
 * until the next call on ctx). */
int mobstore_ctx_error_code(const mobstore_ctx *ctx);
size_t mobstore_ctx_error_index(const mobstore_ctx *ctx);
size_t mobstore_ctx_error_offset(const mobstore_ctx *ctx);
const char *mobstore_ctx_error_text(const mobstore_ctx *ctx);

/* Test hooks around the primitives (used by the differential tests).
 * mobstore_format_double: shortest serde/zmij text of a finite v into out
 * (>= 32 bytes), returns length; non-finite v writes "null".
 * mobstore_parse_double: serde's inexact parse of a number token; returns 0
 * and sets *out, or an error code. */
size_t mobstore_format_double(double v, char *out);
int mobstore_parse_double(const char *token, size_t len, double *out);
/* jcs numbers (jcs_number.c).  mobstore_jcs_parse_double: the correctly
 * rounded double of one whole number token; 0, MOBSTORE_E_NUMBER (not a JSON
 * number) or MOBSTORE_E_NUMBER_RANGE (rounds to infinity).  ..._doubles: n
 * tokens back to back (lens[i] bytes each) into out[i] / codes[i] (caller-owned
 * arrays of n), returns how many failed.  mobstore_jcs_format_double:
 * ECMAScript Number::toString of v into out (>= 32 bytes), returns its length
 * (0 for NaN/infinity). */
int mobstore_jcs_parse_double(const char *token, size_t len, double *out);
size_t mobstore_jcs_parse_doubles(const char *data, const size_t *lens, size_t n, double *out, int *codes);
size_t mobstore_jcs_format_double(double v, char *out);
/* END CDEF */

#ifdef MOBSTORE_CANON_INTERNAL
#include <string.h>
/* ---- shared between the .c files of _native/, not part of the ABI ---- */

enum { MOB_NUM_U64 = 1, MOB_NUM_I64 = 2, MOB_NUM_F64 = 3 };

typedef struct {
    int kind;
    uint64_t u;
    int64_t i;
    double f;
} mob_number;

/* numbers.c */
int mob_parse_number(const uint8_t *p, const uint8_t *end, const uint8_t **stop, mob_number *out);
size_t mob_format_u64(uint64_t v, char *out);   /* out >= 20 bytes */
size_t mob_format_i64(int64_t v, char *out);    /* out >= 21 bytes */
size_t mob_format_double(double v, char *out);  /* finite v; out >= 32 bytes */
/* The same, and (stable not NULL) *stable = 1 when serde_json is known to read
 * the text back as v itself (so further parse-and-write rounds change nothing). */
size_t mob_format_double_stable(double v, char *out, int *stable);

/* writer.c: a growable output buffer. */
typedef struct {
    uint8_t *buf;
    size_t len;
    size_t cap;
    int oom;
} mob_out;

int mob_out_grow(mob_out *o, size_t need);
static inline int mob_out_reserve(mob_out *o, size_t n)
{
    return (o->cap - o->len >= n) ? 0 : mob_out_grow(o, n);
}
static inline int mob_out_bytes(mob_out *o, const void *p, size_t n)
{
    if (mob_out_reserve(o, n)) return MOBSTORE_E_NOMEM;
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}
static inline int mob_out_byte(mob_out *o, uint8_t c)
{
    if (mob_out_reserve(o, 1)) return MOBSTORE_E_NOMEM;
    o->buf[o->len++] = c;
    return 0;
}
int mob_out_cstr(mob_out *o, const char *s);
int mob_out_string(mob_out *o, const uint8_t *s, size_t n, int escaped); /* quoted, serde escapes */

/* json_parse.c: the parse tree.  Nodes live in one array in document order;
 * a container's children follow it (object: key string node, then value
 * subtree, per member) and `next` is the index just past its subtree.
 * Duplicate keys are kept (what they mean is the typed decode's business). */
enum { J_NULL = 0, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct {
    uint8_t type;
    uint8_t numkind;   /* J_NUM: MOB_NUM_* */
    uint8_t escaped;   /* J_STR: decoded bytes live in the arena (may need escaping on output) */
    uint8_t pad;
    uint32_t len;      /* J_STR: decoded length; J_ARR/J_OBJ: element/member count */
    uint32_t next;     /* index of the first node after this subtree */
    uint32_t src;      /* offset of the value's first byte in the input */
    uint32_t src_end;  /* offset just past the value */
    uint32_t pad2;
    union {
        const uint8_t *s; /* J_STR: decoded bytes (input or arena) */
        uint64_t u;
        int64_t i;
        double f;
    } v;
} mob_node;

typedef struct {
    mob_node *nodes;
    size_t nodes_cap;
    uint8_t *arena;      /* decoded strings with escapes */
    size_t arena_cap;
    uint32_t *scratch;   /* key sorting: 2 slots per node */
    size_t scratch_cap;
    const uint8_t *input;
    size_t input_len;
    uint32_t count;      /* nodes used */
    int err;             /* MOBSTORE_E_* of the last failure */
    size_t err_off;      /* its byte offset (syntax errors) */
    mob_out msg;         /* its full text (NUL-terminated): "invalid JSON at byte N ($.path): ..."
                          * or "$.path: ..."; owned, grows, freed by mob_doc_free */
} mob_doc;

int mob_doc_reserve(mob_doc *d, size_t input_len);
int mob_parse(mob_doc *d, const uint8_t *input, size_t len);
void mob_doc_free(mob_doc *d);
/* Key node indices of object `obj` into out[0..m), sorted by UTF-8 bytes,
 * stable (equal keys stay in input order); out needs 2*m slots.  Returns m. */
uint32_t mob_sort_keys(mob_doc *d, uint32_t obj, uint32_t *out);
int mob_key_cmp(const mob_node *a, const mob_node *b);
/* Number of distinct keys of object `obj` (sorts into d->scratch + base). */
uint32_t mob_distinct_keys(mob_doc *d, uint32_t obj, uint32_t base);

/* writer.c: serde Value output of the subtree at node i: object keys sorted
 * by UTF-8 bytes, a duplicated key keeping its last value; each float is
 * written, parsed again with serde's parser and written again `passes` more
 * times (opaque slots).  Returns 0, MOBSTORE_E_NOMEM, or
 * MOBSTORE_E_NUMBER_RANGE when a re-parse overflows.  d->scratch from slot
 * `base` on is used for key orders. */
int mob_out_value(mob_out *o, mob_doc *d, uint32_t i, int passes, uint32_t base);
int mob_out_number(mob_out *o, const mob_node *n);

/* message.c: the typed decode.  `profile` is a MOBSTORE_PROFILE_* value,
 * optionally | MOBSTORE_DECODE_STRICT. */
int mob_canonical_message(mob_doc *d, mob_out *o, const uint8_t *msg, size_t len, int profile);

/* hashpipe.c: hashing a batch's canonical stream on a second thread (the
 * producer writes into mob_pipe_out, calls mob_pipe_after_message after each
 * message and mob_pipe_end at the end; checkpoints with mob_pipe_mark). */
typedef struct mob_pipe mob_pipe;
enum { MOB_PIPE_TEST_NO_WORKER = 1, MOB_PIPE_TEST_TINY = 2, MOB_PIPE_TEST_SLOW_WORKER = 4, MOB_PIPE_TEST_FORCE = 8 };
void mob_pipe_set_test_mode(int mode);
mob_pipe *mob_pipe_begin(mob_pipe **cache, const mobstore_sha256 *st, char *hex_out);
mob_out *mob_pipe_out(mob_pipe *p);
int mob_pipe_mark(mob_pipe *p, size_t j);
int mob_pipe_after_message(mob_pipe *p);
int mob_pipe_end(mob_pipe *p, mobstore_sha256 *st); /* the worker's share, % */
void mob_pipe_stats(mob_pipe *p, uint64_t out[3]);
void mob_pipe_release(mob_pipe *p);
void mob_pipe_trim(mob_pipe *p);
size_t mob_pipe_chunk(const mob_pipe *p);

/* jcs.c: the jcs profile's own parse state (allocated on first use). */
#define MOBSTORE_JCS_KEY_SHOWN 24 /* bytes of a duplicated name quoted in its error */
typedef struct mob_jcs mob_jcs;
mob_jcs *mob_jcs_new(void);          /* NULL when out of memory */
void mob_jcs_free(mob_jcs *j);       /* NULL is a no-op */
void mob_jcs_trim(mob_jcs *j);       /* drop large buffers */
/* Append the canonical bytes of msg[0..len) to o; 0 or MOBSTORE_E_* with the
 * byte offset and detail text (owned by j, or NULL) of the error below. */
int mob_jcs_message(mob_jcs *j, mob_out *o, const uint8_t *msg, size_t len);
size_t mob_jcs_error_offset(const mob_jcs *j);
const char *mob_jcs_error_detail(const mob_jcs *j);

/* jcs_number.c */
int mob_jcs_number(const uint8_t *p, const uint8_t *end, const uint8_t **stop, double *out);
size_t mob_jcs_format_double(double v, char *out); /* finite v; out >= 32 bytes */

/* The model tables (generated from engine/meerkat_model.json by
 * build_canon.py into meerkat_model.h, included by message.c only). */
enum { S_TYPE = 0, S_STRING, S_BOOL, S_U32, S_U64, S_U64_NONZERO, S_UUID, S_TIMESTAMP, S_VALUE, S_RAW,
       S_NONBLANK, S_PROMPT_TEXT, S_SKILL_NAME };
enum { T_STRUCT = 0, T_ENUM, T_TAGGED, T_ADJACENT, T_CODEC, T_VALUE_FIRST, T_LEGACY };
enum { M_ERROR = 0, M_NONE, M_DEFAULT, M_NOW };
enum { K_NEVER = 0, K_NONE, K_EMPTY, K_DEFAULT, K_EMPTY_OBJECT };
enum { D_NONE = 0, D_EPOCH, D_CLEAR };
enum { X_INHERIT = 0, X_JSON };

typedef struct {
    const char *name;        /* the JSON key */
    uint8_t nlen;
    uint8_t scalar;          /* S_*; S_TYPE: a model type, MT[type] */
    int16_t type;
    uint8_t list, option, present_null, flatten;
    uint8_t missing, skip, digest; /* M_*, K_*, D_* */
} mfield;

typedef struct {
    const char *name;        /* variant (or enum value) */
    uint8_t nlen;
    int16_t type;            /* MT index of its struct, -1 for a unit variant */
    const char *reject;      /* non-NULL: meerkat refuses this variant, with this reason */
    uint8_t collapse;        /* f2/f3: an inline image becomes its blob reference */
} mvariant;

typedef struct {
    uint8_t kind, deny_unknown, context;
    int8_t flat;             /* struct: index of its flattened field, or -1 */
    uint16_t first, count;   /* struct: MF[first..]; enum/tagged/adjacent: MV[first..] */
    int (*match)(const uint8_t *k, uint32_t n); /* key or variant name -> index, or -1 */
    const char *what;        /* "assistant block type", for messages */
    const char *tag; uint8_t taglen;
    const char *content; uint8_t clen;
    int16_t inner;           /* codec: item type; value_first / legacy: the tagged enum */
    int16_t deflt;           /* enum: index of the default value, or -1 */
    const char *expected;    /* the names a message lists as allowed */
    const char *const *aux;  /* value_first: summary keys; legacy: (name, variant) pairs */
    uint8_t naux;
    int8_t text_variant;     /* codec: the text block's variant index */
    const char *text_field; uint8_t tflen;
    const char *other_variant; uint8_t ovlen; /* value_first: "unknown"; legacy: "provider_native" */
    const char *other_field; uint8_t oflen;   /* value_first: "payload"; legacy: "name" */
} mtype;

#endif /* MOBSTORE_CANON_INTERNAL */

#endif
