/* jcs_number.c -- numbers of the jcs profile (RFC 8785, engine/_jcs_py.py rule 4
 * and OUTPUT): correctly rounded decimal -> double parsing and ECMAScript
 * Number::toString output.
 *
 * Parsing (the IEEE double nearest to the exact decimal value, ties to even,
 * for any number of digits and any exponent) takes the first step that can
 * decide:
 *   1. exact fast path (Clinger): <= 19 digits forming w <= 2^53 and a power
 *      of ten 10^|q| <= 10^22, both exact doubles: one IEEE multiply or divide
 *      rounds once, correctly;
 *   2. Eisel-Lemire: w (the first 19 significant digits) times a 128-bit
 *      truncated power of five (jcs_pow5.h) gives the top bits of w * 10^q;
 *      the truncation error is below 2^64 in the 192-bit product, so when the
 *      product and product + 2^64 - 1 agree on the mantissa and rounding bits
 *      the result is certain (for > 19 digits: w and w + 1 must agree);
 *   3. big-integer comparison: the candidate from step 2 is moved by one ulp
 *      at a time until the exact value lies between its two halfway points,
 *      compared exactly as D * 10^E against (2m +- 1) * 2^(e-1) with D the
 *      first 800 significant digits (plus a sticky digit 1 when any later
 *      digit is nonzero: a halfway point between doubles has at most 768
 *      significant digits, so the sticky digit never changes a comparison).
 *
 * Output: the shortest round-trip digits come from mob_format_double
 * (numbers.c, the Schubfach shortest/closest digits) and are laid out per
 * ECMA-262 Number::toString; tests/test_jcs_numbers.py holds both directions
 * to Python's float() and repr() on millions of values.
 *
 * Nothing here allocates; every buffer is caller-owned or on the stack.
 */
#define MOBSTORE_CANON_INTERNAL 1
#include "canon.h"

#include <float.h>
#include <string.h>

#include "jcs_pow5.h"

static inline int is_digit(uint8_t c) { return (uint8_t)(c - '0') < 10; }

/* ------------------------------------------------------------ big integers */

/* Little-endian 64-bit limbs.  Bound: the largest operand compared is
 * M * 5^-E with M < 2^56 and -E <= 1124 (800 + 1 digits ending 323 places
 * below the smallest power of ten that can round to nonzero): < 2^2667; the
 * other side is shifted to the same bit length first.  BIG_LIMBS * 64 = 3072. */
#define BIG_LIMBS 48

typedef struct {
    uint64_t w[BIG_LIMBS];
    int n; /* limbs in use; w[n-1] != 0 unless n == 0 */
} big;

static void big_set(big *a, uint64_t v)
{
    a->w[0] = v;
    a->n = v != 0;
}

/* a = a * k + add; returns -1 if it would not fit (never, by the bound above). */
static int big_muladd(big *a, uint64_t k, uint64_t add)
{
    unsigned __int128 carry = add;
    for (int i = 0; i < a->n; i++) {
        unsigned __int128 t = (unsigned __int128)a->w[i] * k + carry;
        a->w[i] = (uint64_t)t;
        carry = t >> 64;
    }
    if (carry) {
        if (a->n == BIG_LIMBS) return -1;
        a->w[a->n++] = (uint64_t)carry;
    }
    return 0;
}

static int big_mul_pow5(big *a, int64_t e)
{
    static const uint64_t P5_27 = 7450580596923828125ULL; /* 5^27 < 2^64 */
    uint64_t last = 1;
    for (; e >= 27; e -= 27)
        if (big_muladd(a, P5_27, 0)) return -1;
    while (e-- > 0) last *= 5;
    return last == 1 ? 0 : big_muladd(a, last, 0);
}

static int big_bitlen(const big *a)
{
    return a->n ? 64 * (a->n - 1) + (64 - __builtin_clzll(a->w[a->n - 1])) : 0;
}

static int big_shl(big *a, int64_t bits)
{
    if (!a->n || !bits) return 0;
    int64_t limbs = bits / 64, r = bits % 64;
    if (a->n + limbs + 1 > BIG_LIMBS) return -1;
    if (r) {
        a->w[a->n] = 0;
        for (int i = a->n; i > 0; i--) a->w[i] = (a->w[i] << r) | (a->w[i - 1] >> (64 - r));
        a->w[0] <<= r;
        a->n++;
        if (!a->w[a->n - 1]) a->n--;
    }
    if (limbs) {
        memmove(a->w + limbs, a->w, (size_t)a->n * sizeof a->w[0]);
        memset(a->w, 0, (size_t)limbs * sizeof a->w[0]);
        a->n += (int)limbs;
    }
    return 0;
}

static int big_cmp(const big *a, const big *b)
{
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    for (int i = a->n - 1; i >= 0; i--)
        if (a->w[i] != b->w[i]) return a->w[i] < b->w[i] ? -1 : 1;
    return 0;
}

/* sign of D * 10^E - M * 2^K (D > 0, M > 0). */
static int cmp_decimal_dyadic(const big *D, int64_t E, uint64_t M, int64_t K)
{
    big a = *D, b;
    big_set(&b, M);
    /* D*5^E*2^E vs M*2^K, or (E < 0, both sides times 5^-E) D*2^E vs M*5^-E*2^K */
    if (E >= 0) big_mul_pow5(&a, E);
    else big_mul_pow5(&b, -E);
    int64_t la = big_bitlen(&a) + E, lb = big_bitlen(&b) + K;
    if (la != lb) return la < lb ? -1 : 1;
    if (E > K) big_shl(&a, E - K);
    else big_shl(&b, K - E);
    return big_cmp(&a, &b);
}

/* --------------------------------------------------------- Eisel-Lemire */

#define BITS_INF 0x7FF0000000000000ULL

/* w != 0, JCS_POW5_MIN <= q <= JCS_POW5_MAX.  Sets *bits to the double
 * nearest w * 10^q (possibly BITS_INF) and returns 1, or returns 0 when the
 * truncated power leaves the rounding undecided; *bits is then within one
 * ulp (the value truncated instead of rounded). */
static int eisel_lemire(uint64_t w, int q, uint64_t *bits)
{
    int lz = __builtin_clzll(w);
    w <<= lz;
    const uint64_t *t = JCS_POW5[q - JCS_POW5_MIN];
    unsigned __int128 hi = (unsigned __int128)w * t[0], lo = (unsigned __int128)w * t[1];
    unsigned __int128 mid = (uint64_t)hi + (lo >> 64);
    uint64_t l = (uint64_t)lo, m = (uint64_t)mid, h = (uint64_t)(hi >> 64) + (uint64_t)(mid >> 64);
    /* w*10^q = P * 2^G with P = w * 5^q * 2^(127-g) in [2^190, 2^192); the
     * product (h,m,l) is floor-exact when 0 <= q <= 55 (5^q < 2^128), else
     * P is in (hml, hml + 2^64). */
    int exact = q >= 0 && q <= 55;
    int64_t G = (((int64_t)q * 152170) >> 16) - 127 + q - lz;
    int top = (h >> 63) ? 191 : 190;
    int64_t pos = top - 52; /* bit of the mantissa's least significant bit */
    int64_t e_lsb = pos + G;
    if (e_lsb < -1074) {
        pos = -1074 - G;
        e_lsb = -1074;
    }
    if (pos >= 193) { /* below 2^-1075: rounds to zero */
        *bits = 0;
        return 1;
    }
    int s = (int)(pos - 1 - 128); /* the rounding bit's index within h: 9..63 */
    uint64_t x = h >> s;          /* mantissa and rounding bit */
    int certain = 1;
    if (!exact) {
        uint64_t hmax = h + (m == UINT64_MAX && l != 0);
        if (hmax < h || (hmax >> 63) != (h >> 63) || (hmax >> s) != x) certain = 0;
    }
    uint64_t mant = x >> 1;
    if (certain && (x & 1)) {
        /* above halfway unless exact and nothing below the rounding bit: then ties to even */
        uint64_t sticky = exact ? ((h & ((1ULL << s) - 1)) | m | l) : 1;
        if (sticky || (mant & 1)) mant++;
    }
    uint64_t b = ((uint64_t)(e_lsb + 1074) << 52) + mant;
    *bits = b >= BITS_INF ? BITS_INF : b;
    return certain;
}

/* ------------------------------------------------------------- slow path */

#define MAX_DIGITS 800

/* The digits of a token ([p, end): int part, optional '.', fraction; no
 * exponent) with explicit exponent e, as D * 10^E (D: up to MAX_DIGITS
 * significant digits, then a sticky 1). */
static void decimal_of(const uint8_t *p, const uint8_t *end, int64_t e, big *D, int64_t *E)
{
    int64_t dp = 0, k = 0;
    int seen = 0, in_frac = 0, sticky = 0;
    uint64_t chunk = 0, scale = 1;
    big_set(D, 0);
    for (; p < end; p++) {
        if (*p == '.') {
            in_frac = 1;
            continue;
        }
        unsigned d = *p - '0';
        if (!seen) {
            if (d == 0) {
                if (in_frac) dp--;
                continue;
            }
            seen = 1;
        }
        if (!in_frac) dp++;
        if (k < MAX_DIGITS) {
            chunk = chunk * 10 + d;
            scale *= 10;
            k++;
            if (scale == 10000000000000000000ULL) {
                big_muladd(D, scale, chunk);
                chunk = 0;
                scale = 1;
            }
        } else if (d) {
            sticky = 1;
        }
    }
    if (sticky) {
        chunk = chunk * 10 + 1;
        scale *= 10;
        k++;
    }
    if (scale > 1) big_muladd(D, scale, chunk);
    *E = dp + e - k;
}

/* Exact value D*10^E > 0 of the token; start from candidate `bits` (finite
 * or BITS_INF) and step until it is the nearest double.  Returns 0 and sets
 * *bits, or MOBSTORE_E_NUMBER_RANGE when the value rounds to infinity. */
static int nearest_by_comparison(const big *D, int64_t E, uint64_t *bits_io)
{
    uint64_t bits = *bits_io;
    if (bits >= BITS_INF) bits = BITS_INF - 1;
    for (;;) {
        uint64_t be = bits >> 52, frac = bits & ((1ULL << 52) - 1);
        uint64_t m = be ? frac | (1ULL << 52) : frac;
        int64_t e = be ? (int64_t)be - 1075 : -1074;
        int c = cmp_decimal_dyadic(D, E, 2 * m + 1, e - 1);
        if (c > 0 || (c == 0 && (bits & 1))) {
            if (bits == BITS_INF - 1) return MOBSTORE_E_NUMBER_RANGE;
            bits++;
            if (c == 0) break;
            continue;
        }
        if (c == 0 || bits == 0) break;
        c = (frac == 0 && be > 1) ? cmp_decimal_dyadic(D, E, 4 * m - 1, e - 2)
                                  : cmp_decimal_dyadic(D, E, 2 * m - 1, e - 1);
        if (c < 0 || (c == 0 && (bits & 1))) {
            bits--;
            if (c == 0) break;
            continue;
        }
        break;
    }
    *bits_io = bits;
    return 0;
}

/* ------------------------------------------------------------------ parse */

static const double EXACT_P10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

int mob_jcs_number(const uint8_t *p, const uint8_t *end, const uint8_t **stop, double *out)
{
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || !is_digit(*p)) return MOBSTORE_E_NUMBER;
    const uint8_t *digits = p;
    uint64_t w = 0;
    int nd = 0;          /* significant digits in w (<= 19) */
    int truncated = 0;   /* a nonzero significant digit did not fit in w */
    int64_t q = 0;       /* w * 10^q, before the explicit exponent */
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) return MOBSTORE_E_NUMBER; /* leading zero */
    } else {
        for (; p < end && is_digit(*p); p++) {
            if (nd < 19) {
                w = w * 10 + (uint64_t)(*p - '0');
                nd++;
            } else {
                q++;
                truncated |= *p != '0';
            }
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p)) return MOBSTORE_E_NUMBER;
        for (; p < end && is_digit(*p); p++) {
            if (nd < 19) {
                if (nd || *p != '0') {
                    w = w * 10 + (uint64_t)(*p - '0');
                    nd++;
                }
                q--;
            } else {
                truncated |= *p != '0';
            }
        }
    }
    const uint8_t *digits_end = p;
    int64_t e = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= end || !is_digit(*p)) return MOBSTORE_E_NUMBER;
        for (; p < end && is_digit(*p); p++)
            if (e < 10000000000LL) e = e * 10 + (*p - '0'); /* saturates far beyond any double */
        if (eneg) e = -e;
    }
    *stop = p;
    if (w == 0) { /* every digit zero (a nonzero one would be in w) */
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    q += e;
    if (nd + q >= 310) return MOBSTORE_E_NUMBER_RANGE; /* >= 10^309 */
    if (nd + q <= -324) {                               /* < 10^-324 < 2^-1075 */
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    double v;
#if FLT_EVAL_METHOD == 0
    if (!truncated && w <= (1ULL << 53) && q >= -22 && q <= 22) {
        v = q < 0 ? (double)w / EXACT_P10[-q] : (double)w * EXACT_P10[q];
        *out = neg ? -v : v;
        return 0;
    }
#endif
    uint64_t bits, bits_up;
    int certain = eisel_lemire(w, (int)q, &bits);
    if (truncated && certain) certain = eisel_lemire(w + 1, (int)q, &bits_up) && bits_up == bits;
    if (!certain) {
        big D;
        int64_t E;
        decimal_of(digits, digits_end, e, &D, &E);
        if (nearest_by_comparison(&D, E, &bits)) return MOBSTORE_E_NUMBER_RANGE;
    }
    if (bits >= BITS_INF) return MOBSTORE_E_NUMBER_RANGE;
    memcpy(&v, &bits, sizeof v);
    *out = neg ? -v : v;
    return 0;
}

/* ----------------------------------------------------------------- output */

/* ECMAScript Number::toString of finite v into out (>= 32 bytes); returns
 * the length. */
size_t mob_jcs_format_double(double v, char *out)
{
    char *p = out;
    if (v == 0) {
        *p = '0';
        return 1;
    }
    if (v < 0) {
        *p++ = '-';
        v = -v;
    }
    if (v < 9007199254740992.0 && v == (double)(uint64_t)v) /* integers below 2^53: their digits */
        return (size_t)(p - out) + mob_format_u64((uint64_t)v, p);
    /* shortest digits from numbers.c's formatter, whatever its layout: d[.d*][e[+-]d+] */
    char tmp[40], dig[24];
    size_t len = mob_format_double(v, tmp);
    int k = 0, before = 0, point = 0, exp = 0, lead = 1;
    size_t i = 0;
    for (; i < len && tmp[i] != 'e' && tmp[i] != 'E'; i++) {
        if (tmp[i] == '.') {
            point = 1;
            continue;
        }
        if (!point) before++;
        if (lead && tmp[i] == '0') {
            before--; /* a leading zero moves the point left of the first digit */
            continue;
        }
        lead = 0;
        if (k < (int)sizeof dig) dig[k++] = tmp[i];
    }
    if (i < len) {
        int eneg = tmp[++i] == '-';
        if (tmp[i] == '-' || tmp[i] == '+') i++;
        for (; i < len; i++) exp = exp * 10 + (tmp[i] - '0');
        if (eneg) exp = -exp;
    }
    while (k > 1 && dig[k - 1] == '0') k--;
    int n = before + exp; /* value = 0.dig * 10^n */
    if (k <= n && n <= 21) {
        memcpy(p, dig, (size_t)k);
        p += k;
        for (int z = k; z < n; z++) *p++ = '0';
    } else if (0 < n && n <= 21) {
        memcpy(p, dig, (size_t)n);
        p += n;
        *p++ = '.';
        memcpy(p, dig + n, (size_t)(k - n));
        p += k - n;
    } else if (-6 < n && n <= 0) {
        *p++ = '0';
        *p++ = '.';
        for (int z = 0; z < -n; z++) *p++ = '0';
        memcpy(p, dig, (size_t)k);
        p += k;
    } else {
        *p++ = dig[0];
        if (k > 1) {
            *p++ = '.';
            memcpy(p, dig + 1, (size_t)(k - 1));
            p += k - 1;
        }
        int x = n - 1;
        *p++ = 'e';
        *p++ = x > 0 ? '+' : '-';
        p += mob_format_u64((uint64_t)(x > 0 ? x : -x), p);
    }
    return (size_t)(p - out);
}

/* ------------------------------------------------------------ test hooks */

int mobstore_jcs_parse_double(const char *token, size_t len, double *out)
{
    const uint8_t *p = (const uint8_t *)token, *stop = p;
    if (!token || !out) return MOBSTORE_E_ARG;
    int rc = mob_jcs_number(p, p + len, &stop, out);
    if (rc == MOBSTORE_E_NUMBER || stop != p + len) return MOBSTORE_E_NUMBER; /* stop is set unless malformed */
    return rc;
}

size_t mobstore_jcs_parse_doubles(const char *data, const size_t *lens, size_t n, double *out, int *codes)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        codes[i] = mobstore_jcs_parse_double(data, lens[i], out + i);
        bad += codes[i] != 0;
        data += lens[i];
    }
    return bad;
}

size_t mobstore_jcs_format_double(double v, char *out)
{
    if (v != v || v - v != 0) { /* NaN or infinite: not a JCS number */
        out[0] = 0;
        return 0;
    }
    return mob_jcs_format_double(v, out);
}
