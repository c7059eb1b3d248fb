/* json_parse.c -- strict JSON parser into a flat node array (mob_doc).
 *
 * Accepts exactly what serde_json's from_slice accepts for one value:
 * strict UTF-8 (overlong forms, surrogate code points, > U+10FFFF and
 * truncated sequences are errors), no raw control characters in strings,
 * valid escapes with paired surrogates, no NaN/Infinity, serde's number
 * grammar and values (numbers.c), nothing after the value, at most 127
 * nested containers (serde_json's counter of 128).  Duplicate keys are kept:
 * what they mean is the typed decode's business (message.c).
 *
 * Errors are reported exactly as the Python reference (engine._canon_py.
 * jsontext) words them: "invalid JSON at byte N ($.path): detail", N the
 * offset of the offending byte, $.path the value being parsed.
 *
 * Speed: strings are scanned 16 bytes at a time (SSE2) for the bytes that
 * need attention -- '"', '\\', controls and non-ASCII.  UTF-8 is validated
 * by one SIMD pass over the whole message; only in a message that fails it
 * is each string run checked, so the error is the first in input order.
 *
 * No recursion: an explicit stack of MOBSTORE_MAX_DEPTH container indices,
 * and the depth check happens before a container is opened, so a
 * 100,000-deep input is rejected at the 128th level.
 *
 * Memory: mob_doc owns its arrays (nodes, arena, scratch, message).  The
 * arena is sized up front (decoded strings <= input), so string pointers into
 * it stay valid; the node array starts at a fraction of its bound and grows
 * geometrically (nodes are addressed by index, never by a kept pointer
 * across a growth).  Buffers are kept for reuse; mob_doc_free releases them.
 */
#define MOBSTORE_CANON_INTERNAL 1
#include "canon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#define MOB_UTF8_SIMD 1
#include <immintrin.h>
#endif

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

/* Node capacity for `nodes` entries, and scratch for key sorting (2 per node). */
static int reserve_nodes(mob_doc *d, size_t nodes)
{
    if (grow((void **)&d->nodes, &d->nodes_cap, nodes, sizeof(mob_node))) return MOBSTORE_E_NOMEM;
    if (grow((void **)&d->scratch, &d->scratch_cap, 2 * d->nodes_cap, sizeof(uint32_t))) return MOBSTORE_E_NOMEM;
    return 0;
}

/* A message of n bytes has at most n/2 + 2 nodes (every node after the
 * first takes >= 2 bytes: a separator and the value); start with a fraction
 * of that and let mob_parse grow the array on demand, so a large message
 * of long strings does not cost 16x its size in nodes.  The arena holds
 * decoded strings, never longer than the input. */
int mob_doc_reserve(mob_doc *d, size_t input_len)
{
    size_t bound = input_len / 2 + 4, start = 256 + input_len / 16;
    if (reserve_nodes(d, start < bound ? start : bound)) return MOBSTORE_E_NOMEM;
    if (grow((void **)&d->arena, &d->arena_cap, input_len + 8, 1)) return MOBSTORE_E_NOMEM;
    return 0;
}

void mob_doc_free(mob_doc *d)
{
    free(d->nodes);
    free(d->arena);
    free(d->scratch);
    free(d->msg.buf);
    memset(d, 0, sizeof *d);
}

int mob_key_cmp(const mob_node *a, const mob_node *b)
{
    if (a->len && b->len && a->v.s[0] != b->v.s[0]) return (int)a->v.s[0] - (int)b->v.s[0];
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->v.s, b->v.s, n);
    if (c) return c;
    return (a->len > b->len) - (a->len < b->len);
}

/* Stable bottom-up merge sort of key node indices idx[0..n) using tmp[0..n). */
static void sort_idx(const mob_node *nodes, uint32_t *idx, uint32_t *tmp, uint32_t n)
{
    /* insertion sort runs of 8, then merge */
    const uint32_t RUN = 8;
    for (uint32_t lo = 0; lo < n; lo += RUN) {
        uint32_t hi = lo + RUN < n ? lo + RUN : n;
        for (uint32_t i = lo + 1; i < hi; i++) {
            uint32_t x = idx[i], j = i;
            while (j > lo && mob_key_cmp(&nodes[idx[j - 1]], &nodes[x]) > 0) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = x;
        }
    }
    uint32_t *src = idx, *dst = tmp;
    for (uint32_t w = RUN; w < n; w *= 2) {
        for (uint32_t lo = 0; lo < n; lo += 2 * w) {
            uint32_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            uint32_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                dst[k++] = mob_key_cmp(&nodes[src[b]], &nodes[src[a]]) < 0 ? src[b++] : src[a++];
            while (a < mid) dst[k++] = src[a++];
            while (b < hi) dst[k++] = src[b++];
        }
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx) memcpy(idx, src, n * sizeof(uint32_t));
}

uint32_t mob_sort_keys(mob_doc *d, uint32_t obj, uint32_t *out)
{
    const mob_node *nodes = d->nodes;
    uint32_t m = nodes[obj].len, i = obj + 1;
    for (uint32_t k = 0; k < m; k++) {
        out[k] = i;
        i = nodes[i + 1].next;
    }
    sort_idx(nodes, out, out + m, m);
    return m;
}

uint32_t mob_distinct_keys(mob_doc *d, uint32_t obj, uint32_t base)
{
    uint32_t m = d->nodes[obj].len;
    if (m < 2) return m;
    uint32_t *idx = d->scratch + base;
    mob_sort_keys(d, obj, idx);
    uint32_t n = 1;
    for (uint32_t k = 1; k < m; k++)
        if (mob_key_cmp(&d->nodes[idx[k - 1]], &d->nodes[idx[k]]) != 0) n++;
    return n;
}

static inline int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int read_hex4(const uint8_t *p, const uint8_t *end, uint32_t *out)
{
    if (end - p < 4) return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = (v << 4) | (uint32_t)h;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static inline int utf8_seq(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    ptrdiff_t left = end - p;
    if (c >= 0xC2 && c <= 0xDF) {
        return (left >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0) return 0; /* surrogate code point */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90) return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

static inline uint8_t *put_utf8(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (uint8_t)cp;
    } else if (cp < 0x800) {
        *o++ = (uint8_t)(0xC0 | (cp >> 6));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (uint8_t)(0xE0 | (cp >> 12));
        *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (uint8_t)(0xF0 | (cp >> 18));
        *o++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* The run of string bytes that need no escape handling, from p: stops at
 * '"', '\\', a control byte (< 0x20) or end; *high is set when the run holds
 * a byte >= 0x80 (it must then be validated as UTF-8).  16 bytes at a time
 * with SSE2 (x86-64 baseline), 8 at a time with SWAR elsewhere; never reads
 * past `end`. */
static inline const uint8_t *scan_run(const uint8_t *p, const uint8_t *end, int *high)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1f);
    __m128i any = _mm_setzero_si128();
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* unsigned v <= 0x1f  <=>  max(v, 0x1f) == 0x1f */
        __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                   _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl));
        unsigned mask = (unsigned)_mm_movemask_epi8(bad);
        if (mask) {
            unsigned before = (unsigned)_mm_movemask_epi8(v) & (mask ^ (mask - 1)); /* bytes up to the stop */
            if (before || _mm_movemask_epi8(any)) *high = 1;
            return p + __builtin_ctz(mask);
        }
        any = _mm_or_si128(any, v);
        p += 16;
    }
    if (_mm_movemask_epi8(any)) *high = 1;
#endif
    while (end - p >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        uint64_t t = ((v & 0x7f7f7f7f7f7f7f7fULL) - 0x2020202020202020ULL) |
                     (((v ^ 0x2222222222222222ULL) & 0x7f7f7f7f7f7f7f7fULL) - 0x0101010101010101ULL) |
                     (((v ^ 0x5c5c5c5c5c5c5c5cULL) & 0x7f7f7f7f7f7f7f7fULL) - 0x0101010101010101ULL);
        if ((t & ~v) & 0x8080808080808080ULL) break; /* a quote, backslash or control byte in these 8 */
        if (v & 0x8080808080808080ULL) *high = 1;
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20) {
        if (*p >= 0x80) *high = 1;
        p++;
    }
    return p;
}

#ifdef MOB_UTF8_SIMD
static const int8_t U8_PREV_HI[16] = {0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
                                      (int8_t)0x80, (int8_t)0x80, (int8_t)0x80, (int8_t)0x80,
                                      0x01, 0x01, 0x0D, 0x31};
static const int8_t U8_PREV_LO[16] = {(int8_t)0x97, (int8_t)0x83, (int8_t)0x83, (int8_t)0x83,
                                      (int8_t)0xA3, (int8_t)0x83, (int8_t)0x83, (int8_t)0x83,
                                      (int8_t)0x83, (int8_t)0x83, (int8_t)0x83, (int8_t)0x83,
                                      (int8_t)0x83, (int8_t)0x8B, (int8_t)0x83, (int8_t)0x83};
static const int8_t U8_CUR_HI[16] = {0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
                                     (int8_t)0x96, (int8_t)0xA6, (int8_t)0xAA, (int8_t)0xAA,
                                     0x01, 0x01, 0x01, 0x01};

/* Error bits (nonzero lanes) of block `cur` given the block before it. */
__attribute__((target("ssse3")))
static inline __m128i utf8_block_errors(__m128i cur, __m128i prev)
{
    const __m128i nib = _mm_set1_epi8(0x0F);
    const __m128i t_ph = _mm_loadu_si128((const __m128i *)U8_PREV_HI);
    const __m128i t_pl = _mm_loadu_si128((const __m128i *)U8_PREV_LO);
    const __m128i t_ch = _mm_loadu_si128((const __m128i *)U8_CUR_HI);
    __m128i prev1 = _mm_alignr_epi8(cur, prev, 15);
    __m128i e = _mm_and_si128(
        _mm_and_si128(_mm_shuffle_epi8(t_ph, _mm_and_si128(_mm_srli_epi16(prev1, 4), nib)),
                      _mm_shuffle_epi8(t_pl, _mm_and_si128(prev1, nib))),
        _mm_shuffle_epi8(t_ch, _mm_and_si128(_mm_srli_epi16(cur, 4), nib)));
    __m128i prev2 = _mm_alignr_epi8(cur, prev, 14), prev3 = _mm_alignr_epi8(cur, prev, 13);
    /* 0x80 where prev2 >= E0 or prev3 >= F0 (saturating subtract keeps the top bit) */
    __m128i need = _mm_and_si128(_mm_or_si128(_mm_subs_epu8(prev2, _mm_set1_epi8(0x60)),
                                              _mm_subs_epu8(prev3, _mm_set1_epi8(0x70))),
                                 _mm_set1_epi8((char)0x80));
    e = _mm_xor_si128(e, need);
    /* C0, C1 and F5..FF never occur in UTF-8 */
    __m128i never = _mm_or_si128(_mm_cmpeq_epi8(_mm_and_si128(cur, _mm_set1_epi8((char)0xFE)),
                                                _mm_set1_epi8((char)0xC0)),
                                 _mm_subs_epu8(cur, _mm_set1_epi8((char)0xF4)));
    return _mm_or_si128(e, never);
}

/* 1 when p[0..n) is valid UTF-8, 0 when not.  Reads only p[0..n).  Works
 * in 64-byte steps so that the all-ASCII shortcut is taken or skipped for
 * long runs at a time (one well-predicted branch per 64 bytes). */
__attribute__((target("ssse3")))
static int utf8_valid_ssse3(const uint8_t *p, size_t n)
{
    /* nonzero where the last 3 bytes of a block start a sequence that runs
     * past it: an all-ASCII block after that is an error */
    const __m128i incomplete_max = _mm_set_epi8((char)0xBF, (char)0xDF, (char)0xEF, (char)0xFF, (char)0xFF,
                                                (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF,
                                                (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF,
                                                (char)0xFF);
    __m128i prev = _mm_setzero_si128(), err = _mm_setzero_si128();
    size_t i = 0;
    while (i < n) {
        __m128i b[4];
        if (n - i >= 64) {
            for (int k = 0; k < 4; k++) b[k] = _mm_loadu_si128((const __m128i *)(p + i + 16 * k));
        } else {
            uint8_t tail[64] = {0};
            memcpy(tail, p + i, n - i);
            for (int k = 0; k < 4; k++) b[k] = _mm_loadu_si128((const __m128i *)(tail + 16 * k));
        }
        __m128i any = _mm_or_si128(_mm_or_si128(b[0], b[1]), _mm_or_si128(b[2], b[3]));
        if (_mm_movemask_epi8(any) == 0) {
            err = _mm_or_si128(err, _mm_subs_epu8(prev, incomplete_max));
        } else {
            err = _mm_or_si128(err, utf8_block_errors(b[0], prev));
            err = _mm_or_si128(err, utf8_block_errors(b[1], b[0]));
            err = _mm_or_si128(err, utf8_block_errors(b[2], b[1]));
            err = _mm_or_si128(err, utf8_block_errors(b[3], b[2]));
        }
        prev = b[3];
        i += 64;
    }
    err = _mm_or_si128(err, _mm_subs_epu8(prev, incomplete_max));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(err, _mm_setzero_si128())) == 0xFFFF;
}

/* The same check 32 bytes at a time with AVX2 (the tables repeat in both
 * 128-bit lanes; prev1..prev3 come from a lane-crossing permute + alignr). */
__attribute__((target("avx2")))
static inline __m256i utf8_block_errors_avx2(__m256i cur, __m256i prev)
{
    const __m256i nib = _mm256_set1_epi8(0x0F);
    const __m256i t_ph = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)U8_PREV_HI));
    const __m256i t_pl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)U8_PREV_LO));
    const __m256i t_ch = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)U8_CUR_HI));
    /* hi lane of prev and lo lane of cur, so alignr sees the 16 bytes before each lane */
    __m256i before = _mm256_permute2x128_si256(prev, cur, 0x21);
    __m256i prev1 = _mm256_alignr_epi8(cur, before, 15);
    __m256i e = _mm256_and_si256(
        _mm256_and_si256(_mm256_shuffle_epi8(t_ph, _mm256_and_si256(_mm256_srli_epi16(prev1, 4), nib)),
                         _mm256_shuffle_epi8(t_pl, _mm256_and_si256(prev1, nib))),
        _mm256_shuffle_epi8(t_ch, _mm256_and_si256(_mm256_srli_epi16(cur, 4), nib)));
    __m256i prev2 = _mm256_alignr_epi8(cur, before, 14), prev3 = _mm256_alignr_epi8(cur, before, 13);
    __m256i need = _mm256_and_si256(_mm256_or_si256(_mm256_subs_epu8(prev2, _mm256_set1_epi8(0x60)),
                                                    _mm256_subs_epu8(prev3, _mm256_set1_epi8(0x70))),
                                    _mm256_set1_epi8((char)0x80));
    e = _mm256_xor_si256(e, need);
    __m256i never = _mm256_or_si256(
        _mm256_cmpeq_epi8(_mm256_and_si256(cur, _mm256_set1_epi8((char)0xFE)), _mm256_set1_epi8((char)0xC0)),
        _mm256_subs_epu8(cur, _mm256_set1_epi8((char)0xF4)));
    return _mm256_or_si256(e, never);
}

/* utf8_valid_ssse3 with AVX2: 1 when p[0..n) is valid UTF-8, else 0. */
__attribute__((target("avx2")))
static int utf8_valid_avx2(const uint8_t *p, size_t n)
{
    const __m256i incomplete_max = _mm256_set_epi8(
        (char)0xBF, (char)0xDF, (char)0xEF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF,
        (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF,
        (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF,
        (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF, (char)0xFF);
    __m256i prev = _mm256_setzero_si256(), err = _mm256_setzero_si256();
    size_t i = 0;
    while (i < n) {
        __m256i b0, b1;
        if (n - i >= 64) {
            b0 = _mm256_loadu_si256((const __m256i *)(p + i));
            b1 = _mm256_loadu_si256((const __m256i *)(p + i + 32));
        } else {
            uint8_t tail[64] = {0};
            memcpy(tail, p + i, n - i);
            b0 = _mm256_loadu_si256((const __m256i *)tail);
            b1 = _mm256_loadu_si256((const __m256i *)(tail + 32));
        }
        if (_mm256_movemask_epi8(_mm256_or_si256(b0, b1)) == 0) {
            err = _mm256_or_si256(err, _mm256_subs_epu8(prev, incomplete_max));
        } else {
            err = _mm256_or_si256(err, utf8_block_errors_avx2(b0, prev));
            err = _mm256_or_si256(err, utf8_block_errors_avx2(b1, b0));
        }
        prev = b1;
        i += 64;
    }
    err = _mm256_or_si256(err, _mm256_subs_epu8(prev, incomplete_max));
    return _mm256_testz_si256(err, err);
}

/* CPU features, detected once: -1 unknown, 0 none, 1 SSSE3, 2 AVX2 (with
 * OS support for the YMM state).  Detection is idempotent; relaxed atomics
 * make threads racing on first use well defined. */
static int utf8_simd = -1;

static int cpu_utf8_simd(void)
{
    int v = __atomic_load_n(&utf8_simd, __ATOMIC_RELAXED);
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx2") ? 2 : __builtin_cpu_supports("ssse3") ? 1 : 0;
        __atomic_store_n(&utf8_simd, v, __ATOMIC_RELAXED);
    }
    return v;
}
#endif


/* The first byte of p[0..n) that does not start a valid UTF-8 sequence, or
 * NULL when the run is valid.  SIMD (AVX2 or SSSE3, picked once at run time)
 * answers "valid" for whole runs; the per-character walk runs when it says no,
 * or on CPUs without either, and finds the exact byte. */
static const uint8_t *utf8_first_invalid(const uint8_t *p, size_t n)
{
#ifdef MOB_UTF8_SIMD
    int simd = cpu_utf8_simd();
    if ((simd == 2 && utf8_valid_avx2(p, n)) || (simd == 1 && utf8_valid_ssse3(p, n))) return NULL;
#endif
    const uint8_t *e = p + n;
    while (p < e) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        int k = utf8_seq(p, e);
        if (!k) return p;
        p += k;
    }
    return NULL;
}

/* A failure inside parse_string: code, offset and a detail argument; the
 * message is written by mob_parse, which knows the path. */
enum { DETAIL_NONE = 0, DETAIL_EOS, DETAIL_CONTROL, DETAIL_UTF8, DETAIL_ESCAPE, DETAIL_UESCAPE, DETAIL_SURROGATE };

typedef struct {
    int code, detail;
    const uint8_t *at;
    uint32_t arg;
} perr;

#define SFAIL(c, d, where, a)  \
    do {                       \
        e->code = (c);         \
        e->detail = (d);       \
        e->at = (where);       \
        e->arg = (a);          \
        return (c);            \
    } while (0)

/* Parse the string whose opening quote is at p into node n; *pp = after the
 * closing quote. */
static int parse_string(mob_doc *d, const uint8_t *p, const uint8_t *end, const uint8_t **pp, mob_node *n,
                        size_t *arena_pos, perr *e, int check_utf8)
{
    const uint8_t *start = ++p, *bad;
    int high = 0;
    p = scan_run(p, end, &high);
    if (high && check_utf8 && (bad = utf8_first_invalid(start, (size_t)(p - start))))
        SFAIL(MOBSTORE_E_UTF8, DETAIL_UTF8, bad, 0);
    if (p >= end) SFAIL(MOBSTORE_E_SYNTAX, DETAIL_EOS, end, 0);
    if (*p == '"') {
        n->escaped = 0;
        n->v.s = start;
        n->len = (uint32_t)(p - start);
        *pp = p + 1;
        return 0;
    }
    if (*p != '\\') SFAIL(MOBSTORE_E_CONTROL, DETAIL_CONTROL, p, *p);
    /* escape found: decode into the arena */
    uint8_t *o0 = d->arena + *arena_pos, *o = o0;
    memcpy(o, start, (size_t)(p - start));
    o += p - start;
    for (;;) {
        uint8_t c = *p;
        if (c == '"') break;
        if (c != '\\') SFAIL(MOBSTORE_E_CONTROL, DETAIL_CONTROL, p, c);
        const uint8_t *esc = p;
        if (end - p < 2) SFAIL(MOBSTORE_E_SYNTAX, DETAIL_EOS, end, 0);
        uint8_t x = p[1];
        p += 2;
        switch (x) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (read_hex4(p, end, &cp)) SFAIL(MOBSTORE_E_ESCAPE, DETAIL_UESCAPE, esc, 0);
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) SFAIL(MOBSTORE_E_ESCAPE, DETAIL_SURROGATE, esc, cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || read_hex4(p + 2, end, &lo) || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    SFAIL(MOBSTORE_E_ESCAPE, DETAIL_SURROGATE, esc, cp);
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o = put_utf8(o, cp);
            break;
        }
        default:
            SFAIL(MOBSTORE_E_ESCAPE, DETAIL_ESCAPE, esc, 0);
        }
        const uint8_t *run = p;
        high = 0;
        p = scan_run(p, end, &high);
        if (high && check_utf8 && (bad = utf8_first_invalid(run, (size_t)(p - run))))
            SFAIL(MOBSTORE_E_UTF8, DETAIL_UTF8, bad, 0);
        memcpy(o, run, (size_t)(p - run));
        o += p - run;
        if (p >= end) SFAIL(MOBSTORE_E_SYNTAX, DETAIL_EOS, end, 0);
    }
    n->escaped = 1;
    n->v.s = o0;
    n->len = (uint32_t)(o - o0);
    *arena_pos += (size_t)(o - o0);
    *pp = p + 1;
    return 0;
}

/* JSON whitespace: SP HT LF CR only. */
static const uint8_t IS_WS[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1};

static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && IS_WS[*p]) p++;
    return p;
}

static int is_ident(const uint8_t *s, uint32_t n)
{
    if (!n) return 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!alpha && !(i && c >= '0' && c <= '9')) return 0;
    }
    return 1;
}

/* One step of a JSON path: ".key" for identifier keys, "[\"key\"]" (serde
 * escapes) for others, "[i]" for array indices. */
int mob_path_key(mob_out *o, const uint8_t *s, uint32_t n, int escaped)
{
    if (is_ident(s, n)) {
        if (mob_out_byte(o, '.')) return MOBSTORE_E_NOMEM;
        return mob_out_bytes(o, s, n);
    }
    if (mob_out_byte(o, '[') || mob_out_string(o, s, n, escaped)) return MOBSTORE_E_NOMEM;
    return mob_out_byte(o, ']');
}

int mob_path_index(mob_out *o, uint64_t i)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "[%llu]", (unsigned long long)i);
    return mob_out_bytes(o, buf, (size_t)n);
}

/* The parse state an error message needs: the container stack, each
 * container's current key node, and whether a member value is being parsed. */
typedef struct {
    uint32_t stack[MOBSTORE_MAX_DEPTH];
    uint32_t key[MOBSTORE_MAX_DEPTH];
    uint8_t invalue[MOBSTORE_MAX_DEPTH];
    int depth;
} pstate;

/* d->msg = "invalid JSON at byte N ($.path): <detail>"; returns code. */
static int syntax_error(mob_doc *d, const pstate *ps, int code, const uint8_t *at, const char *detail, uint32_t arg)
{
    mob_out *m = &d->msg;
    char head[64];
    m->len = 0;
    m->oom = 0;
    d->err = code;
    d->err_off = (size_t)(at - d->input);
    int hn = snprintf(head, sizeof head, "invalid JSON at byte %zu ($", d->err_off);
    if (mob_out_bytes(m, head, (size_t)hn)) goto nomem;
    for (int l = 0; l < ps->depth; l++) {
        if (!ps->invalue[l]) break;
        const mob_node *c = &d->nodes[ps->stack[l]];
        if (c->type == J_ARR) {
            if (mob_path_index(m, c->len - 1)) goto nomem;
        } else {
            const mob_node *k = &d->nodes[ps->key[l]];
            if (mob_path_key(m, k->v.s, k->len, k->escaped)) goto nomem;
        }
    }
    if (mob_out_bytes(m, "): ", 3)) goto nomem;
    char buf[64];
    if (code == MOBSTORE_E_CONTROL) {
        snprintf(buf, sizeof buf, "raw control character U+%04X in a string", (unsigned)arg);
        detail = buf;
    } else if (code == MOBSTORE_E_ESCAPE && arg) {
        snprintf(buf, sizeof buf, "lone surrogate escape \\u%04x", (unsigned)arg);
        detail = buf;
    }
    if (mob_out_cstr(m, detail) || mob_out_byte(m, 0)) goto nomem;
    m->len--;
    return code;
nomem:
    d->err = MOBSTORE_E_NOMEM;
    return MOBSTORE_E_NOMEM;
}

#define FAIL(code, at, detail) return syntax_error(d, &ps, (code), (at), (detail), 0)

static const char *const STRING_DETAIL[] = {
    [DETAIL_EOS] = "end of input inside a string",
    [DETAIL_UTF8] = "invalid UTF-8",
    [DETAIL_ESCAPE] = "invalid escape",
    [DETAIL_UESCAPE] = "invalid \\u escape",
    [DETAIL_CONTROL] = "", [DETAIL_SURROGATE] = "",
};

int mob_parse(mob_doc *d, const uint8_t *input, size_t len)
{
    pstate ps;
    ps.depth = 0;
    size_t arena_pos = 0;
    const uint8_t *p = input, *end = input + len;
    int rc;
    perr e;

    d->input = input;
    d->input_len = len;
    d->count = 0;
    d->err = 0;
    d->err_off = 0;
    if (len >= MOBSTORE_MAX_MESSAGE_BYTES) {
        d->msg.len = 0;
        d->err = MOBSTORE_E_TOO_LARGE;
        if (mob_out_cstr(&d->msg, "message too large") || mob_out_byte(&d->msg, 0)) return MOBSTORE_E_NOMEM;
        return MOBSTORE_E_TOO_LARGE;
    }
    if ((rc = mob_doc_reserve(d, len))) {
        d->err = MOBSTORE_E_NOMEM;
        return MOBSTORE_E_NOMEM;
    }
    mob_node *nodes = d->nodes;
    /* One SIMD pass over the whole message first (measured faster than
     * validating each string run as it is scanned: 4,000 x 1 KiB messages,
     * 4,950 vs 5,395 perf samples of parsing); only when it finds a bad byte
     * are runs checked one by one, to report the first error in input order
     * with its path, as the sequential reference does. */
    int check_utf8 = utf8_first_invalid(input, len) != NULL;

    p = skip_ws(p, end);
    for (;;) {
        /* ---- a value starts at p ---- */
        if (p >= end) FAIL(MOBSTORE_E_SYNTAX, p, "unexpected end of input");
        if (d->count >= d->nodes_cap) {
            if (reserve_nodes(d, (size_t)d->count + 1)) {
                d->err = MOBSTORE_E_NOMEM;
                return MOBSTORE_E_NOMEM;
            }
            nodes = d->nodes;
        }
        uint32_t ni = d->count++;
        mob_node *n = &nodes[ni];
        n->src = (uint32_t)(p - input);
        n->escaped = 0;
        n->len = 0;
        switch (*p) {
        case '{':
        case '[':
            /* serde_json: the 128th nested container fails (127 allowed) */
            if (ps.depth >= MOBSTORE_MAX_DEPTH - 1) FAIL(MOBSTORE_E_DEPTH, p, "nesting deeper than 127 levels");
            n->type = *p == '{' ? J_OBJ : J_ARR;
            ps.stack[ps.depth] = ni;
            ps.invalue[ps.depth] = 0;
            ps.depth++;
            p = skip_ws(p + 1, end);
            if (p < end && *p == (n->type == J_OBJ ? '}' : ']')) {
                ps.depth--;
                n->next = d->count;
                n->src_end = (uint32_t)(p + 1 - input);
                p++;
                break; /* empty container is a finished value */
            }
            n->len = 1;
            if (n->type == J_ARR) {
                ps.invalue[ps.depth - 1] = 1;
                continue; /* first element */
            }
            goto key;
        case '"':
            n->type = J_STR;
            if ((rc = parse_string(d, p, end, &p, n, &arena_pos, &e, check_utf8)))
                return syntax_error(d, &ps, rc, e.at, STRING_DETAIL[e.detail], e.arg);
            n->next = ni + 1;
            n->src_end = (uint32_t)(p - input);
            break;
        case 't':
            if (end - p < 4 || memcmp(p, "true", 4)) FAIL(MOBSTORE_E_SYNTAX, p, "expected a value");
            n->type = J_TRUE;
            p += 4;
            goto scalar_done;
        case 'f':
            if (end - p < 5 || memcmp(p, "false", 5)) FAIL(MOBSTORE_E_SYNTAX, p, "expected a value");
            n->type = J_FALSE;
            p += 5;
            goto scalar_done;
        case 'n':
            if (end - p < 4 || memcmp(p, "null", 4)) FAIL(MOBSTORE_E_SYNTAX, p, "expected a value");
            n->type = J_NULL;
            p += 4;
            goto scalar_done;
        default:
            if (*p == '-' || (*p >= '0' && *p <= '9')) {
                mob_number num;
                const uint8_t *stop = p;
                rc = mob_parse_number(p, end, &stop, &num);
                /* a number followed by a digit, '.', 'e' or 'E' is malformed as a whole */
                if ((!rc || rc == MOBSTORE_E_NUMBER_RANGE) && stop < end &&
                    ((*stop >= '0' && *stop <= '9') || *stop == '.' || *stop == 'e' || *stop == 'E'))
                    rc = MOBSTORE_E_NUMBER;
                if (rc) FAIL(rc, p, rc == MOBSTORE_E_NUMBER_RANGE ? "number out of range" : "invalid number");
                n->type = J_NUM;
                n->numkind = (uint8_t)num.kind;
                if (num.kind == MOB_NUM_U64) n->v.u = num.u;
                else if (num.kind == MOB_NUM_I64) n->v.i = num.i;
                else n->v.f = num.f;
                p = stop;
                goto scalar_done;
            }
            FAIL(MOBSTORE_E_SYNTAX, p, "expected a value");
        }
        goto after_value;
    scalar_done:
        n->next = ni + 1;
        n->src_end = (uint32_t)(p - input);
    after_value:
        /* ---- a value just ended; continue or close containers ---- */
        for (;;) {
            p = skip_ws(p, end);
            if (ps.depth == 0) {
                if (p != end) FAIL(MOBSTORE_E_TRAILING, p, "trailing characters after the JSON value");
                return 0;
            }
            mob_node *top = &nodes[ps.stack[ps.depth - 1]];
            ps.invalue[ps.depth - 1] = 0;
            if (p >= end) FAIL(MOBSTORE_E_SYNTAX, p, "unexpected end of input");
            if (*p == ',') {
                p = skip_ws(p + 1, end);
                top->len++;
                if (top->type == J_ARR) {
                    ps.invalue[ps.depth - 1] = 1;
                    goto next_value;
                }
                goto key;
            }
            if (*p == (top->type == J_OBJ ? '}' : ']')) {
                ps.depth--;
                top->next = d->count;
                top->src_end = (uint32_t)(p + 1 - input);
                p++;
                continue;
            }
            FAIL(MOBSTORE_E_SYNTAX, p, top->type == J_OBJ ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    key : {
        if (p >= end) FAIL(MOBSTORE_E_SYNTAX, p, "unexpected end of input");
        if (*p != '"') FAIL(MOBSTORE_E_SYNTAX, p, "expected an object key");
        if (d->count >= d->nodes_cap) {
            if (reserve_nodes(d, (size_t)d->count + 1)) {
                d->err = MOBSTORE_E_NOMEM;
                return MOBSTORE_E_NOMEM;
            }
            nodes = d->nodes;
        }
        uint32_t ki = d->count++;
        mob_node *k = &nodes[ki];
        k->type = J_STR;
        k->src = (uint32_t)(p - input);
        if ((rc = parse_string(d, p, end, &p, k, &arena_pos, &e, check_utf8)))
            return syntax_error(d, &ps, rc, e.at, STRING_DETAIL[e.detail], e.arg);
        k->next = ki + 1;
        k->src_end = (uint32_t)(p - input);
        p = skip_ws(p, end);
        if (p >= end) FAIL(MOBSTORE_E_SYNTAX, p, "unexpected end of input");
        if (*p != ':') FAIL(MOBSTORE_E_SYNTAX, p, "expected ':'");
        p = skip_ws(p + 1, end);
        ps.key[ps.depth - 1] = ki;
        ps.invalue[ps.depth - 1] = 1;
    }
    next_value:;
    }
}
