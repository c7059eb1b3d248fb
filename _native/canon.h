/* canon.h -- mobstore's native canonical serializer + transcript digest.
 *
 * The part between BEGIN CDEF / END CDEF is the public API and is fed to
 * cffi verbatim (build_canon.py), so it stays plain C declarations.
 *
 * Input: one meerkat message as JSON text (FORMAT.md §1).  Output: its
 * canonical bytes for a profile (FORMAT.md §1.4, §2.1):
 *   f3   typed re-serialisation + images collapsed + opaque slots key-sorted
 *        + created_at erased + user/block_assistant identity dropped
 *   f2   same, opaque slots copied verbatim from the input
 *   bare typed re-serialisation only (plain hex digest)
 *   jcs  any JSON object, RFC 8785 canonical form (jcs.c; engine/_jcs_py.py
 *        is its spec): no meerkat model, correctly rounded numbers
 *
 * Limits: serde_json's depth counter MOBSTORE_MAX_DEPTH = 128 fails when it
 * reaches 0, so at most 127 arrays/objects nest (the message object = 1);
 * message size < MOBSTORE_MAX_MESSAGE_BYTES.
 * Errors never crash or leak; the context keeps the first error's code,
 * message index and byte offset (mobstore_ctx_error*).
 */
#ifndef MOBSTORE_CANON_H
#define MOBSTORE_CANON_H

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

/* Bump whenever output bytes or the ABI change: Python refuses a stale build. */
#define MOBSTORE_CANON_SPEC "mobstore-canon-4"

/* BEGIN CDEF */
#define MOBSTORE_PROFILE_BARE 0
#define MOBSTORE_PROFILE_F2 2
#define MOBSTORE_PROFILE_F3 3
#define MOBSTORE_PROFILE_JCS 74 /* 'J': away from meerkat's numbered profiles */

#define MOBSTORE_MAX_DEPTH 128
#define MOBSTORE_MAX_MESSAGE_BYTES 2147483647
#define MOBSTORE_JCS_MAX_DEPTH 127 /* jcs: nested arrays/objects, the top-level object included */

/* Result codes (0 = success).  Every nonzero code except NOMEM and ARG means
 * "the input is not an acceptable message" (InvalidInputError in Python). */
#define MOBSTORE_OK 0
#define MOBSTORE_E_UTF8 1          /* invalid UTF-8 (overlong, surrogate, truncated, > U+10FFFF) */
#define MOBSTORE_E_SYNTAX 2        /* not JSON: unexpected byte or end of input */
#define MOBSTORE_E_NUMBER 3        /* malformed number (leading zero, missing digits, NaN, ...) */
#define MOBSTORE_E_NUMBER_RANGE 4  /* number overflows to +-infinity */
#define MOBSTORE_E_DEPTH 5         /* more than MOBSTORE_MAX_DEPTH - 1 nested containers */
#define MOBSTORE_E_DUPLICATE_KEY 6 /* the same key twice in one object */
#define MOBSTORE_E_ESCAPE 7        /* bad escape or lone surrogate \u escape */
#define MOBSTORE_E_CONTROL 8       /* raw control character (< 0x20) in a string */
#define MOBSTORE_E_TRAILING 9      /* non-whitespace after the JSON value */
#define MOBSTORE_E_SCHEMA 10       /* valid JSON, not a valid message (type/field/variant) */
#define MOBSTORE_E_TOO_LARGE 11    /* message >= MOBSTORE_MAX_MESSAGE_BYTES */
#define MOBSTORE_E_NOMEM 12        /* allocation failed (MemoryError) */
#define MOBSTORE_E_ARG 13          /* bad argument: unknown profile, NULL pointer */
#define MOBSTORE_E_NOT_OBJECT 14   /* jcs: the message is not a JSON object */

typedef struct mobstore_ctx mobstore_ctx;

/* The spec id compiled into this build (MOBSTORE_CANON_SPEC); static string. */
const char *mobstore_canon_spec(void);

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

/* Threads mobstore_transcript_digest may use, process-wide: 1 = always
 * sequential; >= 2 (default 2) = a batch of >= 1 MiB of input is hashed on
 * one extra short-lived thread while the caller canonicalises (same bytes,
 * same result and errors).  n < 1 counts as 1.  Returns the previous value. */
int mobstore_set_digest_threads(int n);

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

/* Details of the last error on ctx: code, message index within a batch (0
 * for single calls), byte offset within that message, and a NUL-terminated
 * description (owned by ctx, valid until the next call). */
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

/* json_parse.c: the parse tree.  Nodes live in one array in document order;
 * a container's children follow it (object: key string node, then value
 * subtree, per member) and `next` is the index just past its subtree. */
enum { J_NULL = 0, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct {
    uint8_t type;
    uint8_t numkind;   /* J_NUM: MOB_NUM_* */
    uint8_t escaped;   /* J_STR: decoded bytes live in the arena */
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
    uint32_t *scratch;   /* key sorting */
    size_t scratch_cap;
    const uint8_t *input;
    size_t input_len;
    uint32_t count;      /* nodes used */
    int utf8_ok;         /* mob_parse: whole input checked valid UTF-8 up front */
    int err;             /* MOBSTORE_E_* */
    size_t err_off;
    const char *err_detail;
} mob_doc;

int mob_doc_reserve(mob_doc *d, size_t input_len);
int mob_parse(mob_doc *d, const uint8_t *input, size_t len);
void mob_doc_free(mob_doc *d);
/* Sort the member key nodes of object `obj` by UTF-8 bytes into d->scratch
 * starting at `base`; returns the number of members (indices of key nodes). */
int mob_sort_keys(mob_doc *d, uint32_t obj, uint32_t *out);
int mob_key_cmp(const mob_node *a, const mob_node *b);

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
int mob_out_bytes(mob_out *o, const void *p, size_t n);
int mob_out_byte(mob_out *o, uint8_t c);
int mob_out_string(mob_out *o, const uint8_t *s, size_t n, int escaped); /* quoted, serde escapes */
int mob_out_number(mob_out *o, const mob_node *n);
/* Serde Value form of the subtree at node i: objects key-sorted. */
int mob_out_value(mob_out *o, mob_doc *d, uint32_t i);
/* Compact form keeping object member order (numbers/strings normalised). */
int mob_out_compact(mob_out *o, mob_doc *d, uint32_t i);

/* message.c */
int mob_canonical_message(mob_doc *d, mob_out *o, const uint8_t *msg, size_t len, int profile);

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

#endif /* MOBSTORE_CANON_INTERNAL */

#endif
