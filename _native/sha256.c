/* sha256.c -- SHA-256 compression (SHA-NI or portable C) and the streaming
 * state used for transcript digests.  See sha256.h for the contract.
 *
 * Written from FIPS 180-4 and Intel's SHA extensions reference (instruction
 * semantics only).  The export format is mobstore's own ("MSS1").
 */
#include "sha256.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define MOBSTORE_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static inline uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

static inline uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Portable compression of nblocks 64-byte blocks at p into h. */
static void compress_portable(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
    uint32_t w[64];
    while (nblocks--) {
        for (int t = 0; t < 16; t++) w[t] = load_be32(p + 4 * t);
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int t = 0; t < 64; t++) {
            uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
            uint32_t ch = (e & f) ^ (~e & g);
            uint32_t t1 = hh + S1 + ch + K256[t] + w[t];
            uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
            uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
            uint32_t t2 = S0 + maj;
            hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
        p += 64;
    }
}

#ifdef MOBSTORE_X86
/* SHA-NI compression.  State lives as ABEF / CDGH lane pairs as the
 * sha256rnds2 instruction expects; each 4-word schedule group W[g] (g >= 4)
 * is msg2(msg1(W[g-4], W[g-3]) + alignr(W[g-1], W[g-2]), W[g-1]). */
__attribute__((target("sha,sse4.1,ssse3")))
static void compress_shani(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);
    __m128i st1 = _mm_loadu_si128((const __m128i *)&h[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);
    st1 = _mm_shuffle_epi32(st1, 0x1B);
    __m128i st0 = _mm_alignr_epi8(tmp, st1, 8);
    st1 = _mm_blend_epi16(st1, tmp, 0xF0);

    while (nblocks--) {
        __m128i save0 = st0, save1 = st1, m, w0, w1, w2, w3;
        w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), bswap);
        w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), bswap);
        w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), bswap);
        w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), bswap);

#define ROUNDS4(W, G)                                                                 \
    m = _mm_add_epi32((W), _mm_loadu_si128((const __m128i *)&K256[4 * (G)]));        \
    st1 = _mm_sha256rnds2_epu32(st1, st0, m);                                         \
    m = _mm_shuffle_epi32(m, 0x0E);                                                   \
    st0 = _mm_sha256rnds2_epu32(st0, st1, m)
#define SCHED(WN, WA, WB, WC, WD) /* WN(=W[g-4]) becomes W[g] */                      \
    WN = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(WA, WB),            \
                                            _mm_alignr_epi8(WD, WC, 4)), WD)

        ROUNDS4(w0, 0); ROUNDS4(w1, 1); ROUNDS4(w2, 2); ROUNDS4(w3, 3);
        for (int g = 4; g < 16; g += 4) {
            SCHED(w0, w0, w1, w2, w3); ROUNDS4(w0, g);
            SCHED(w1, w1, w2, w3, w0); ROUNDS4(w1, g + 1);
            SCHED(w2, w2, w3, w0, w1); ROUNDS4(w2, g + 2);
            SCHED(w3, w3, w0, w1, w2); ROUNDS4(w3, g + 3);
        }
#undef ROUNDS4
#undef SCHED
        st0 = _mm_add_epi32(st0, save0);
        st1 = _mm_add_epi32(st1, save1);
        p += 64;
    }

    tmp = _mm_shuffle_epi32(st0, 0x1B);
    st1 = _mm_shuffle_epi32(st1, 0xB1);
    st0 = _mm_blend_epi16(tmp, st1, 0xF0);
    st1 = _mm_alignr_epi8(st1, tmp, 8);
    _mm_storeu_si128((__m128i *)&h[0], st0);
    _mm_storeu_si128((__m128i *)&h[4], st1);
}

static int cpu_has_shani(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 9)) || !(c & (1u << 19))) return 0; /* SSSE3, SSE4.1 */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1; /* SHA */
}
#endif

typedef void (*compress_fn)(uint32_t h[8], const uint8_t *p, size_t nblocks);

/* -1 unknown, 0 portable, 1 SHA-NI.  Read and written with relaxed atomics:
 * detection is idempotent (threads racing on first use store the same value),
 * and the tests' force_portable switch may flip while a hashing thread left
 * over from a batch is still reading it (either backend gives the same bytes). */
static int backend = -1;
static int forced_portable = 0;

static compress_fn pick(void)
{
    int b = __atomic_load_n(&backend, __ATOMIC_RELAXED);
    if (b < 0) {
#ifdef MOBSTORE_X86
        b = cpu_has_shani();
#else
        b = 0;
#endif
        __atomic_store_n(&backend, b, __ATOMIC_RELAXED);
    }
#ifdef MOBSTORE_X86
    if (b == 1 && !__atomic_load_n(&forced_portable, __ATOMIC_RELAXED)) return compress_shani;
#endif
    return compress_portable;
}

int mobstore_sha256_accelerated(void)
{
    return pick() != compress_portable;
}

void mobstore_sha256_force_portable(int force) { __atomic_store_n(&forced_portable, force ? 1 : 0, __ATOMIC_RELAXED); }

void mobstore_sha256_init(mobstore_sha256 *s)
{
    memcpy(s->h, H0, sizeof H0);
    s->total = 0;
}

void mobstore_sha256_update(mobstore_sha256 *s, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    if (len == 0) return;
    compress_fn fn = pick();
    size_t used = (size_t)(s->total & 63);
    s->total += len;
    if (used) {
        size_t take = 64 - used;
        if (take > len) take = len;
        memcpy(s->buf + used, p, take);
        p += take; len -= take;
        if (used + take < 64) return;
        fn(s->h, s->buf, 1);
    }
    if (len >= 64) {
        size_t n = len / 64;
        fn(s->h, p, n);
        p += n * 64; len -= n * 64;
    }
    if (len) memcpy(s->buf, p, len);
}

void mobstore_sha256_final(const mobstore_sha256 *s, uint8_t out[32])
{
    mobstore_sha256 c = *s;
    uint8_t pad[72];
    size_t used = (size_t)(c.total & 63);
    size_t padlen = (used < 56) ? (56 - used) : (120 - used);
    uint64_t bits = c.total << 3;
    memset(pad, 0, sizeof pad);
    pad[0] = 0x80;
    for (int i = 0; i < 8; i++) pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    mobstore_sha256_update(&c, pad, padlen + 8);
    for (int i = 0; i < 8; i++) store_be32(out + 4 * i, c.h[i]);
}

void mobstore_sha256_final_hex(const mobstore_sha256 *s, char out[65])
{
    static const char hx[] = "0123456789abcdef";
    uint8_t d[32];
    mobstore_sha256_final(s, d);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = 0;
}

size_t mobstore_sha256_export(const mobstore_sha256 *s, uint8_t *out)
{
    size_t tail = (size_t)(s->total & 63);
    memcpy(out, "MSS1", 4);
    for (int i = 0; i < 8; i++) store_be32(out + 4 + 4 * i, s->h[i]);
    for (int i = 0; i < 8; i++) out[36 + i] = (uint8_t)(s->total >> (56 - 8 * i));
    memcpy(out + 44, s->buf, tail);
    return 44 + tail;
}

int mobstore_sha256_import(mobstore_sha256 *s, const uint8_t *data, size_t len)
{
    uint64_t total = 0;
    if (len < 44 || memcmp(data, "MSS1", 4) != 0) return -1;
    for (int i = 0; i < 8; i++) total = (total << 8) | data[36 + i];
    if (len != 44 + (size_t)(total & 63)) return -1;
    for (int i = 0; i < 8; i++) s->h[i] = load_be32(data + 4 + 4 * i);
    s->total = total;
    memcpy(s->buf, data + 44, len - 44);
    return 0;
}
