/* jcs.c -- the jcs profile: RFC 8785 canonical bytes of any JSON object.
 *
 * The byte-level rules, their order and every error message are those of
 * engine/_jcs_py.py (its docstring is the spec; the differential tests hold
 * this file to it).  In short: strict UTF-8 over the whole input first
 * (16 bytes at a time with SSSE3 when the CPU has it), then one pass builds
 * a flat node array (document order; a container's
 * children follow it and `next` is the index past its subtree), sorting each
 * object's member names by UTF-16 code units when it closes -- where a
 * duplicate name is an error -- and a second pass writes the canonical form.
 * Numbers: jcs_number.c (correctly rounded in, ECMAScript out).
 *
 * Limits: MOBSTORE_JCS_MAX_DEPTH nested containers (the top-level object
 * counts), messages < MOBSTORE_MAX_MESSAGE_BYTES (32-bit offsets).  No
 * recursion.  Memory: mob_jcs owns its node array, decoded-string arena and
 * sorted-name arrays; they grow to the largest message seen and are kept
 * (mob_jcs_trim drops large ones), so steady state allocates nothing.
 */
#define MOBSTORE_CANON_INTERNAL 1
#include "canon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { JN_NULL, JN_FALSE, JN_TRUE, JN_NUM, JN_STR, JN_ARR, JN_OBJ };

typedef struct {
    uint8_t type;
    uint8_t special;  /* JN_STR: v.s holds decoded bytes with '"', '\\' or < 0x20 (escaped on output) */
    uint8_t pad0;
    uint8_t pad;
    uint32_t len;     /* JN_STR: decoded length; JN_ARR/JN_OBJ: members */
    uint32_t next;    /* index of the first node after this subtree */
    uint32_t src;     /* offset of the value's first byte (a name's opening quote) */
    uint32_t sorted;  /* JN_OBJ: its name nodes in output order start at order[sorted] */
    uint32_t pad2;
    union {
        const uint8_t *s;
        double f;
    } v;
} jnode;

struct mob_jcs {
    jnode *nodes;
    size_t nodes_cap;
    uint8_t *arena; /* decoded strings that had escapes; never longer than the input */
    size_t arena_cap;
    uint32_t *order; /* per object, its name node indices sorted */
    size_t order_cap;
    uint32_t *tmp; /* merge sort scratch */
    size_t tmp_cap;
    size_t err_off;
    const char *err_detail;
    char detail[200];
};

mob_jcs *mob_jcs_new(void) { return calloc(1, sizeof(mob_jcs)); }

void mob_jcs_free(mob_jcs *j)
{
    if (!j) return;
    free(j->nodes);
    free(j->arena);
    free(j->order);
    free(j->tmp);
    free(j);
}

void mob_jcs_trim(mob_jcs *j)
{
    if (!j) return;
    if (j->nodes_cap > 65536) {
        free(j->nodes);
        free(j->order);
        free(j->tmp);
        j->nodes = NULL;
        j->order = j->tmp = NULL;
        j->nodes_cap = j->order_cap = j->tmp_cap = 0;
    }
    if (j->arena_cap > (1u << 20)) {
        free(j->arena);
        j->arena = NULL;
        j->arena_cap = 0;
    }
}

size_t mob_jcs_error_offset(const mob_jcs *j) { return j->err_off; }
const char *mob_jcs_error_detail(const mob_jcs *j) { return j->err_detail; }

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (*cap >= need) return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return MOBSTORE_E_NOMEM;
    *p = q;
    *cap = n;
    return 0;
}

/* ------------------------------------------------------------------ UTF-8 */

/* Length (2..4) of the valid UTF-8 sequence at s (s[0] >= 0x80, s < end), or 0. */
static inline size_t utf8_seq(const uint8_t *s, const uint8_t *end)
{
    uint8_t c = s[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F; /* <= U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - s) <= need) return 0; /* truncated */
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k <= need; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    return need + 1;
}

/* Offset of the first byte of the first invalid sequence, or n. */
static size_t utf8_invalid_at(const uint8_t *s, size_t n)
{
    size_t i = 0;
    for (;;) {
#if defined(__SSE2__)
        while (i + 16 <= n) {
            int mask = _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(s + i)));
            if (mask) {
                i += (size_t)__builtin_ctz((unsigned)mask);
                break;
            }
            i += 16;
        }
#endif
        while (i < n && s[i] < 0x80) i++;
        if (i >= n) return n;
        size_t k = utf8_seq(s + i, s + n);
        if (!k) return i;
        i += k;
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <tmmintrin.h>
#define JCS_SSSE3 1

/* UTF-8 validation 16 bytes at a time (SSSE3), by classifying each byte
 * with the one before it: three 16-entry tables, indexed by the high and low
 * nibble of the previous byte and the high nibble of this one, hold one bit
 * per kind of error; their AND is nonzero exactly where a pair is wrong:
 *   0x01 a lead byte (C0..FF) not followed by a continuation (80..BF)
 *   0x02 a continuation after an ASCII byte
 *   0x04 E0 80..9F (overlong 3-byte)       0x10 ED A0..BF (a surrogate)
 *   0x08 F4..FF 90..BF (above U+10FFFF)    0x20 C0/C1 + continuation (overlong)
 *   0x40 F0 80..8F (overlong 4-byte) and F5..FF 80..8F
 *   0x80 two continuations in a row: right only as the 3rd/4th byte of a
 *        sequence, i.e. where the byte two back is >= E0 or three back >= F0;
 *        XOR with that condition flags both "missing" and "extra" ones.
 * Returns 1 if all of s[0..n) up to the last complete block is valid, and
 * sets *done to where the scalar check must resume (a sequence start). */
__attribute__((target("ssse3"))) static int utf8_blocks_ssse3(const uint8_t *s, size_t n, size_t *done)
{
    const __m128i t1 = _mm_setr_epi8(0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* prev hi 0..7: ASCII */
                                     (char)0x80, (char)0x80, (char)0x80, (char)0x80, /* 8..B: continuation */
                                     0x21, 0x01, 0x15, 0x49);                       /* C, D, E, F: leads */
    const __m128i t2 = _mm_setr_epi8((char)0xE7, (char)0xA3, (char)0x83, (char)0x83, /* prev lo 0..3 */
                                     (char)0x8B, (char)0xCB, (char)0xCB, (char)0xCB, /* 4..7 */
                                     (char)0xCB, (char)0xCB, (char)0xCB, (char)0xCB, /* 8..B */
                                     (char)0xCB, (char)0xDB, (char)0xCB, (char)0xCB); /* C..F */
    const __m128i t3 = _mm_setr_epi8(0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, /* cur hi 0..7 */
                                     (char)0xE6, (char)0xAE, (char)0xBA, (char)0xBA, /* 8, 9, A, B */
                                     0x01, 0x01, 0x01, 0x01);                        /* C..F */
    const __m128i nib = _mm_set1_epi8(0x0F);
    /* last bytes of a block that still expect continuations in the next one */
    const __m128i incomplete = _mm_setr_epi8((char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF,
                                             (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF,
                                             (char)0xFF, (char)0xFF, (char)0xFF, (char)0xEF, (char)0xDF,
                                             (char)0xBF);
    __m128i prev = _mm_setzero_si128(), err = _mm_setzero_si128(), prev_inc = _mm_setzero_si128();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i cur = _mm_loadu_si128((const __m128i *)(s + i));
        if (!_mm_movemask_epi8(cur)) { /* ASCII: only an unfinished sequence before it can be wrong */
            err = _mm_or_si128(err, prev_inc);
            prev = cur;
            prev_inc = _mm_setzero_si128();
            continue;
        }
        __m128i p1 = _mm_alignr_epi8(cur, prev, 15);
        __m128i lookup = _mm_and_si128(
            _mm_and_si128(_mm_shuffle_epi8(t1, _mm_and_si128(_mm_srli_epi16(p1, 4), nib)),
                          _mm_shuffle_epi8(t2, _mm_and_si128(p1, nib))),
            _mm_shuffle_epi8(t3, _mm_and_si128(_mm_srli_epi16(cur, 4), nib)));
        __m128i p2 = _mm_alignr_epi8(cur, prev, 14), p3 = _mm_alignr_epi8(cur, prev, 13);
        __m128i third = _mm_subs_epu8(p2, _mm_set1_epi8((char)(0xE0 - 0x80)));
        __m128i fourth = _mm_subs_epu8(p3, _mm_set1_epi8((char)(0xF0 - 0x80)));
        __m128i must = _mm_and_si128(_mm_or_si128(third, fourth), _mm_set1_epi8((char)0x80));
        err = _mm_or_si128(err, _mm_xor_si128(lookup, must));
        prev_inc = _mm_subs_epu8(cur, incomplete);
        prev = cur;
    }
    /* resume at a sequence start within the last 3 bytes checked (or at i) */
    size_t j = i >= 3 ? i - 3 : 0;
    while (j < i && (s[j] & 0xC0) == 0x80) j++;
    *done = j;
    __m128i zero = _mm_setzero_si128();
    return _mm_movemask_epi8(_mm_cmpeq_epi8(err, zero)) == 0xFFFF;
}

static int g_ssse3 = -1; /* detected once */

static int have_ssse3(void)
{
    int v = __atomic_load_n(&g_ssse3, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("ssse3") ? 1 : 0;
        __atomic_store_n(&g_ssse3, v, __ATOMIC_RELAXED);
    }
    return v;
}
#endif

/* Offset of the first invalid UTF-8 sequence in s[0..n), or n. */
static size_t utf8_check(const uint8_t *s, size_t n)
{
#if defined(JCS_SSSE3)
    if (n >= 64 && have_ssse3()) {
        size_t done;
        if (!utf8_blocks_ssse3(s, n, &done)) return utf8_invalid_at(s, n); /* where exactly */
        size_t bad = utf8_invalid_at(s + done, n - done);
        return bad == n - done ? n : done + bad;
    }
#endif
    return utf8_invalid_at(s, n);
}

/* ------------------------------------------------------------- the parse */

typedef struct {
    mob_jcs *j;
    const uint8_t *in, *end;
    uint32_t count; /* nodes used */
    uint32_t order_len;
    size_t arena_len;
} parser;

static int fail(parser *ps, int code, const uint8_t *at, const char *detail)
{
    ps->j->err_off = (size_t)(at - ps->in);
    ps->j->err_detail = detail;
    return code;
}

static int fail_eof(parser *ps) { return fail(ps, MOBSTORE_E_SYNTAX, ps->end, "unexpected end of input"); }

static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

static int grow_nodes(parser *ps)
{
    mob_jcs *j = ps->j;
    return grow((void **)&j->nodes, &j->nodes_cap, (size_t)ps->count + 1, sizeof(jnode));
}

static inline int new_node(parser *ps, uint8_t type, const uint8_t *at, uint32_t *idx)
{
    mob_jcs *j = ps->j;
    if (__builtin_expect(ps->count >= j->nodes_cap, 0) && grow_nodes(ps)) return MOBSTORE_E_NOMEM;
    jnode *n = &j->nodes[ps->count];
    n->type = type;
    n->special = 0;
    n->len = 0;
    n->src = (uint32_t)(at - ps->in);
    n->next = ps->count + 1;
    *idx = ps->count++;
    return 0;
}

static inline int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The \uXXXX at p (p[0] == '\\', p[1] == 'u') into *cp; 0 or an error (set). */
static int hex4(parser *ps, const uint8_t *p, int *cp)
{
    int v = 0;
    for (int k = 2; k < 6; k++) {
        if (p + k >= ps->end) return fail_eof(ps);
        int h = hexval(p[k]);
        if (h < 0) return fail(ps, MOBSTORE_E_ESCAPE, p, NULL);
        v = v * 16 + h;
    }
    *cp = v;
    return 0;
}

/* Position of the first '"', '\\' or byte < 0x20 in [p, end), or end (the
 * input's UTF-8 was checked before parsing). */
static inline const uint8_t *scan_string(const uint8_t *p, const uint8_t *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1F);
    while (p + 16 <= end) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                   _mm_cmpeq_epi8(_mm_min_epu8(x, ctl), x));
        int mask = _mm_movemask_epi8(hit);
        if (mask) return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20) p++;
    return p;
}

static inline int short_canonical(uint8_t e)
{
    return e == '"' || e == '\\' || e == 'n' || e == 't' || e == 'r' || e == 'b' || e == 'f';
}

/* A value string's body from p: the position of its closing quote when every
 * escape in it is a short canonical one (\" \\ \n \t \r \b \f), which then
 * stay as they are; else the position of the first byte the general path
 * must look at (a control byte, another escape, or the end).  Escapes are
 * walked bit by bit within each 16-byte block instead of restarting the scan
 * after each one (JSON held in a string value is full of \"). */
static inline const uint8_t *scan_value(const uint8_t *p, const uint8_t *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1F);
    while (p + 16 <= end) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                         _mm_cmpeq_epi8(_mm_min_epu8(x, ctl), x)));
        const uint8_t *next = p + 16;
        while (m) {
            unsigned k = (unsigned)__builtin_ctz(m);
            const uint8_t *c = p + k;
            if (*c != '\\' || c + 1 >= end || !short_canonical(c[1])) return c;
            if (k == 15) { /* the escaped character opens the next block */
                next = c + 2;
                break;
            }
            m &= ~(3u << k); /* the backslash and the character it escapes */
        }
        p = next;
    }
#endif
    while (p < end && *p != '"') {
        if (*p == '\\') {
            if (p + 1 >= end || !short_canonical(p[1])) return p;
            p += 2;
        } else if (*p < 0x20) {
            return p;
        } else {
            p++;
        }
    }
    return p;
}

static int lone_surrogate(parser *ps, const uint8_t *at, int cp)
{
    snprintf(ps->j->detail, sizeof ps->j->detail, "lone surrogate \\u%04x", (unsigned)cp);
    return fail(ps, MOBSTORE_E_ESCAPE, at, ps->j->detail);
}

/* The escape at p (p[0] == '\\'): its code point (a surrogate pair combined)
 * into *cp, its length in bytes into *len, and whether it is spelled as the
 * output spells that character (\" \\ \b \f \n \r \t, or \u00xx in
 * lowercase for the other controls).  0 or an error (set). */
static int escape_at(parser *ps, const uint8_t *p, int *cp, int *len, int *canonical)
{
    int rc;
    if (p + 1 >= ps->end) return fail_eof(ps);
    *len = 2;
    *canonical = 1;
    switch (p[1]) {
    case '"': *cp = '"'; return 0;
    case '\\': *cp = '\\'; return 0;
    case 'b': *cp = '\b'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'n': *cp = '\n'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 't': *cp = '\t'; return 0;
    case '/': *cp = '/'; *canonical = 0; return 0;
    case 'u': break;
    default: return fail(ps, MOBSTORE_E_ESCAPE, p, NULL);
    }
    int v, lo;
    if ((rc = hex4(ps, p, &v))) return rc;
    *len = 6;
    if (v >= 0xD800 && v <= 0xDBFF) {
        const uint8_t *q = p + 6;
        if (!(q + 2 <= ps->end && q[0] == '\\' && q[1] == 'u')) return lone_surrogate(ps, p, v);
        if ((rc = hex4(ps, q, &lo))) return rc;
        if (lo < 0xDC00 || lo > 0xDFFF) return lone_surrogate(ps, p, v);
        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        *len = 12;
    } else if (v >= 0xDC00 && v <= 0xDFFF) {
        return lone_surrogate(ps, p, v);
    }
    *cp = v;
    *canonical = v < 0x20 && v != '\b' && v != '\t' && v != '\n' && v != '\f' && v != '\r' &&
                 !(p[5] >= 'A' && p[5] <= 'F');
    return 0;
}

/* The string whose opening quote is at *pp; on success *pp is past the
 * closing quote.  A value whose escapes are all spelled canonically keeps
 * its input bytes as its output; names (compared decoded) and values with
 * other escapes are decoded into the arena and escaped again on output. */
static int parse_string(parser *ps, const uint8_t **pp, uint32_t *idx, int name)
{
    const uint8_t *open = *pp, *p = open + 1, *end = ps->end;
    int rc = new_node(ps, JN_STR, open, idx);
    if (rc) return rc;
    const uint8_t *q;
    int cp, n, canon;
    if (!name) {
        q = scan_value(p, end);
        if (q < end && *q == '"') goto verbatim;
        /* something else: check every escape from the start; all canonical -> still verbatim */
        q = scan_string(p, end);
        int all = 1;
        const uint8_t *r = q;
        while (r < end && *r == '\\') {
            if ((rc = escape_at(ps, r, &cp, &n, &canon))) return rc;
            all &= canon;
            r = scan_string(r + n, end);
        }
        if (all) q = r; /* else decode below, from the first escape */
    } else {
        q = scan_string(p, end);
    }
    if (q >= end) return fail_eof(ps);
    if (*q == '"') { /* no escape, or only canonical ones in a value: the input bytes are the output */
    verbatim:;
        jnode *nd = &ps->j->nodes[*idx];
        nd->v.s = p;
        nd->len = (uint32_t)(q - p);
        *pp = q + 1;
        return 0;
    }
    if (*q != '\\') return fail(ps, MOBSTORE_E_CONTROL, q, NULL);
    uint8_t *base = ps->j->arena + ps->arena_len, *w = base;
    int special = 0;
    for (;;) {
        memcpy(w, p, (size_t)(q - p));
        w += q - p;
        p = q;
        if (p >= end) return fail_eof(ps);
        if (*p == '"') break;
        if (*p != '\\') return fail(ps, MOBSTORE_E_CONTROL, p, NULL);
        if ((rc = escape_at(ps, p, &cp, &n, &canon))) return rc;
        p += n;
        if (cp < 0x80) {
            special |= cp < 0x20 || cp == '"' || cp == '\\';
            *w++ = (uint8_t)cp;
        } else if (cp < 0x800) {
            *w++ = (uint8_t)(0xC0 | (cp >> 6));
            *w++ = (uint8_t)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *w++ = (uint8_t)(0xE0 | (cp >> 12));
            *w++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            *w++ = (uint8_t)(0x80 | (cp & 0x3F));
        } else {
            *w++ = (uint8_t)(0xF0 | (cp >> 18));
            *w++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
            *w++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            *w++ = (uint8_t)(0x80 | (cp & 0x3F));
        }
        q = scan_string(p, end);
    }
    jnode *nd = &ps->j->nodes[*idx];
    nd->special = (uint8_t)special;
    nd->v.s = base;
    nd->len = (uint32_t)(w - base);
    ps->arena_len += (size_t)(w - base);
    *pp = p + 1;
    return 0;
}

/* UTF-16 code-unit order of two valid UTF-8 strings.  Byte order equals
 * code-point order; the two differ only where a character of U+E000..U+FFFF
 * (lead byte EE/EF) meets one above U+FFFF (F0..F4, a surrogate pair in
 * UTF-16, so first): at the first differing byte both are lead bytes, and
 * moving EE/EF above F4 gives UTF-16 order. */
static int name_cmp(const jnode *a, const jnode *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    const uint8_t *x = a->v.s, *y = b->v.s;
    size_t i = 0;
    while (i < n && x[i] == y[i]) i++;
    if (i == n) return (a->len > b->len) - (a->len < b->len);
    unsigned u = x[i], v = y[i];
    if (u >= 0xEE && v >= 0xEE) {
        if (u <= 0xEF) u += 0x10;
        if (v <= 0xEF) v += 0x10;
    }
    return (int)u - (int)v;
}

static void merge_sort(const jnode *nodes, uint32_t *a, uint32_t *tmp, uint32_t n)
{
    if (n <= 12) { /* insertion sort: stable, best for the usual few names */
        for (uint32_t i = 1; i < n; i++) {
            uint32_t k = a[i], m = i;
            while (m > 0 && name_cmp(&nodes[a[m - 1]], &nodes[k]) > 0) {
                a[m] = a[m - 1];
                m--;
            }
            a[m] = k;
        }
        return;
    }
    uint32_t h = n / 2;
    merge_sort(nodes, a, tmp, h);
    merge_sort(nodes, a + h, tmp, n - h);
    if (name_cmp(&nodes[a[h - 1]], &nodes[a[h]]) <= 0) return;
    memcpy(tmp, a, h * sizeof *a);
    uint32_t i = 0, k = h, o = 0;
    while (i < h && k < n) a[o++] = name_cmp(&nodes[a[k]], &nodes[tmp[i]]) < 0 ? a[k++] : tmp[i++];
    while (i < h) a[o++] = tmp[i++];
}

/* Append `raw` (UTF-8, n bytes) as an output string to buf (>= 6n + 3 bytes). */
static size_t write_escaped(char *buf, const uint8_t *raw, size_t n);

static int duplicate(parser *ps, const jnode *a, const jnode *b)
{
    size_t n = a->len;
    const char *more = "";
    if (n > MOBSTORE_JCS_KEY_SHOWN) {
        n = MOBSTORE_JCS_KEY_SHOWN;
        while ((a->v.s[n] & 0xC0) == 0x80) n--; /* a character boundary */
        more = "...";
    }
    char *d = ps->j->detail;
    size_t len = write_escaped(d, a->v.s, n);
    memcpy(d + len, more, strlen(more) + 1);
    return fail(ps, MOBSTORE_E_DUPLICATE_KEY, ps->in + (a->src > b->src ? a->src : b->src), d);
}

/* Sort the names of object `obj` (members complete) into order[]. */
static int close_object(parser *ps, uint32_t obj)
{
    mob_jcs *j = ps->j;
    uint32_t n = j->nodes[obj].len;
    j->nodes[obj].sorted = ps->order_len;
    if (!n) return 0;
    if (grow((void **)&j->order, &j->order_cap, (size_t)ps->order_len + n, sizeof(uint32_t))) return MOBSTORE_E_NOMEM;
    uint32_t *a = j->order + ps->order_len;
    uint32_t k = obj + 1;
    for (uint32_t i = 0; i < n; i++) {
        a[i] = k;
        k = j->nodes[k + 1].next;
    }
    ps->order_len += n;
    if (n > 12 && grow((void **)&j->tmp, &j->tmp_cap, n, sizeof(uint32_t))) return MOBSTORE_E_NOMEM;
    merge_sort(j->nodes, a, j->tmp, n);
    for (uint32_t i = 1; i < n; i++) {
        const jnode *x = &j->nodes[a[i - 1]], *y = &j->nodes[a[i]];
        if (x->len == y->len && memcmp(x->v.s, y->v.s, x->len) == 0) return duplicate(ps, x, y);
    }
    return 0;
}

static int starts(const uint8_t *p, const uint8_t *end, const char *lit, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

/* A name at p ("name" ws ':' ws); *pp moves to the member's value. */
static int parse_name(parser *ps, const uint8_t **pp)
{
    const uint8_t *p = *pp, *end = ps->end;
    if (p >= end) return fail_eof(ps);
    if (*p != '"') return fail(ps, MOBSTORE_E_SYNTAX, p, "expected a string key");
    uint32_t idx;
    int rc = parse_string(ps, &p, &idx, 1);
    if (rc) return rc;
    p = skip_ws(p, end);
    if (p >= end) return fail_eof(ps);
    if (*p != ':') return fail(ps, MOBSTORE_E_SYNTAX, p, "expected ':'");
    p = skip_ws(p + 1, end);
    if (p >= end) return fail_eof(ps);
    *pp = p;
    return 0;
}

static int parse(parser *ps)
{
    const uint8_t *p = skip_ws(ps->in, ps->end), *end = ps->end;
    uint32_t stack[MOBSTORE_JCS_MAX_DEPTH];
    int depth = 0;
    int rc;
    uint32_t idx;
    if (p >= end) return fail_eof(ps);
    if (*p != '{') return fail(ps, MOBSTORE_E_NOT_OBJECT, p, NULL);
    for (;;) {
        /* p starts a value */
        uint8_t c = *p;
        if (c == '{' || c == '[') {
            if (depth >= MOBSTORE_JCS_MAX_DEPTH) return fail(ps, MOBSTORE_E_DEPTH, p, NULL);
            if ((rc = new_node(ps, c == '{' ? JN_OBJ : JN_ARR, p, &idx))) return rc;
            const uint8_t *q = skip_ws(p + 1, end);
            if (q < end && *q == (c == '{' ? '}' : ']')) {
                ps->j->nodes[idx].sorted = ps->order_len;
                p = q + 1;
            } else {
                stack[depth++] = idx;
                p = q;
                if (c == '{') {
                    if ((rc = parse_name(ps, &p))) return rc;
                } else if (p >= end) {
                    return fail_eof(ps);
                }
                continue;
            }
        } else if (c == '"') {
            if ((rc = parse_string(ps, &p, &idx, 0))) return rc;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if ((rc = new_node(ps, JN_NUM, p, &idx))) return rc;
            const uint8_t *stop = p;
            rc = mob_jcs_number(p, end, &stop, &ps->j->nodes[idx].v.f);
            if (rc) {
                const char *why = rc == MOBSTORE_E_NUMBER && starts(p, end, "-Infinity", 9) ? "NaN/Infinity are not JSON" : NULL;
                return fail(ps, rc, p, why);
            }
            p = stop;
        } else if (starts(p, end, "true", 4)) {
            if ((rc = new_node(ps, JN_TRUE, p, &idx))) return rc;
            p += 4;
        } else if (starts(p, end, "false", 5)) {
            if ((rc = new_node(ps, JN_FALSE, p, &idx))) return rc;
            p += 5;
        } else if (starts(p, end, "null", 4)) {
            if ((rc = new_node(ps, JN_NULL, p, &idx))) return rc;
            p += 4;
        } else if (starts(p, end, "NaN", 3) || starts(p, end, "Infinity", 8)) {
            return fail(ps, MOBSTORE_E_NUMBER, p, "NaN/Infinity are not JSON");
        } else {
            return fail(ps, MOBSTORE_E_SYNTAX, p, "unexpected character");
        }
        /* a complete value: count it in its container, closing those that end here */
        for (;;) {
            if (!depth) {
                p = skip_ws(p, end);
                if (p < end) return fail(ps, MOBSTORE_E_TRAILING, p, NULL);
                return 0;
            }
            uint32_t top = stack[depth - 1];
            jnode *t = &ps->j->nodes[top];
            int obj = t->type == JN_OBJ;
            t->len++;
            p = skip_ws(p, end);
            if (p >= end) return fail_eof(ps);
            if (*p == ',') {
                p = skip_ws(p + 1, end);
                if (obj) {
                    if ((rc = parse_name(ps, &p))) return rc;
                } else if (p >= end) {
                    return fail_eof(ps);
                }
                break;
            }
            if (*p == (obj ? '}' : ']')) {
                p++;
                depth--;
                ps->j->nodes[top].next = ps->count;
                if (obj && (rc = close_object(ps, top))) return rc;
                continue;
            }
            return fail(ps, MOBSTORE_E_SYNTAX, p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
}

/* ------------------------------------------------------------ the output */

static const char HEX[] = "0123456789abcdef";

static size_t write_escaped(char *buf, const uint8_t *raw, size_t n)
{
    char *w = buf;
    *w++ = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = raw[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *w++ = (char)c;
            continue;
        }
        *w++ = '\\';
        switch (c) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '\b': *w++ = 'b'; break;
        case '\f': *w++ = 'f'; break;
        case '\n': *w++ = 'n'; break;
        case '\r': *w++ = 'r'; break;
        case '\t': *w++ = 't'; break;
        default:
            *w++ = 'u';
            *w++ = '0';
            *w++ = '0';
            *w++ = HEX[c >> 4];
            *w++ = HEX[c & 15];
        }
    }
    *w++ = '"';
    return (size_t)(w - buf);
}

static int out_string(mob_out *o, const jnode *n)
{
    if (!n->special) {
        if (mob_out_reserve(o, (size_t)n->len + 2)) return MOBSTORE_E_NOMEM;
        uint8_t *w = o->buf + o->len;
        w[0] = '"';
        memcpy(w + 1, n->v.s, n->len);
        w[n->len + 1] = '"';
        o->len += (size_t)n->len + 2;
        return 0;
    }
    /* escapes needed: in runs, so the reservation stays near the string's size */
    const uint8_t *s = n->v.s, *end = s + n->len;
    if (mob_out_byte(o, '"')) return MOBSTORE_E_NOMEM;
    while (s < end) {
        const uint8_t *q = scan_string(s, end);
        if (mob_out_bytes(o, s, (size_t)(q - s))) return MOBSTORE_E_NOMEM;
        if (q >= end) break;
        if (mob_out_reserve(o, 8)) return MOBSTORE_E_NOMEM;
        size_t len = write_escaped((char *)o->buf + o->len, q, 1); /* '"' + escape + '"' */
        memmove(o->buf + o->len, o->buf + o->len + 1, len - 2);    /* drop the quotes */
        o->len += len - 2;
        s = q + 1;
    }
    return mob_out_byte(o, '"');
}

static int out_scalar(mob_out *o, const jnode *n)
{
    switch (n->type) {
    case JN_NULL: return mob_out_bytes(o, "null", 4);
    case JN_TRUE: return mob_out_bytes(o, "true", 4);
    case JN_FALSE: return mob_out_bytes(o, "false", 5);
    case JN_NUM:
        if (mob_out_reserve(o, 32)) return MOBSTORE_E_NOMEM;
        o->len += mob_jcs_format_double(n->v.f, (char *)o->buf + o->len);
        return 0;
    default: return out_string(o, n);
    }
}

typedef struct {
    uint32_t node, i, child;
} frame;

static inline int put1(mob_out *o, uint8_t c)
{
    if (__builtin_expect(o->len < o->cap, 1)) {
        o->buf[o->len++] = c;
        return 0;
    }
    return mob_out_byte(o, c);
}

static int emit(mob_jcs *j, mob_out *o)
{
    frame st[MOBSTORE_JCS_MAX_DEPTH];
    int depth = 0;
    const jnode *nodes = j->nodes;
    uint32_t v = 0; /* the top-level object */
    for (;;) {
        const jnode *n = &nodes[v];
        if (n->type == JN_OBJ || n->type == JN_ARR) {
            int obj = n->type == JN_OBJ;
            if (!n->len) {
                if (mob_out_bytes(o, obj ? "{}" : "[]", 2)) return MOBSTORE_E_NOMEM;
            } else {
                if (put1(o, obj ? '{' : '[')) return MOBSTORE_E_NOMEM;
                st[depth].node = v;
                st[depth].i = 0;
                st[depth].child = v + 1;
                depth++;
            }
        } else if (out_scalar(o, n)) {
            return MOBSTORE_E_NOMEM;
        }
        /* the next value to write, closing finished containers */
        for (;;) {
            if (!depth) return o->oom ? MOBSTORE_E_NOMEM : 0;
            frame *f = &st[depth - 1];
            const jnode *c = &nodes[f->node];
            if (f->i == c->len) {
                if (put1(o, c->type == JN_OBJ ? '}' : ']')) return MOBSTORE_E_NOMEM;
                depth--;
                continue;
            }
            if (f->i && put1(o, ',')) return MOBSTORE_E_NOMEM;
            if (c->type == JN_OBJ) {
                uint32_t name = j->order[c->sorted + f->i];
                if (out_string(o, &nodes[name]) || put1(o, ':')) return MOBSTORE_E_NOMEM;
                v = name + 1;
            } else {
                v = f->child;
                f->child = nodes[v].next;
            }
            f->i++;
            break;
        }
    }
}

int mob_jcs_message(mob_jcs *j, mob_out *o, const uint8_t *msg, size_t len)
{
    j->err_off = 0;
    j->err_detail = NULL;
    if (len >= MOBSTORE_MAX_MESSAGE_BYTES) return MOBSTORE_E_TOO_LARGE;
    size_t bad = utf8_check(msg, len);
    if (bad < len) {
        j->err_off = bad;
        return MOBSTORE_E_UTF8;
    }
    if (grow((void **)&j->arena, &j->arena_cap, len + 8, 1)) return MOBSTORE_E_NOMEM;
    parser ps = {j, msg, msg + len, 0, 0, 0};
    int rc = parse(&ps);
    if (rc) return rc;
    return emit(j, o);
}
