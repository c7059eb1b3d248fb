/* scalars.c -- the scalar types of meerkat's model that decode from a JSON
 * string and are written back re-spelled: timestamps (chrono), UUIDs (uuid),
 * the validated strings (prompt keys, revised prompts, skill names), and the
 * content blob id of a collapsed image.  The same rules as the Python
 * reference engine/_canon_py/scalars.py, which cites its sources.
 *
 * Every function works on caller-owned bytes of valid UTF-8 (the parser
 * checked them), writes into a caller-owned fixed buffer, allocates nothing.
 */
#define MOBSTORE_CANON_INTERNAL 1
#include "canon.h"

#include <string.h>

/* Byte length of the Unicode White_Space character at p (Rust's
 * char::is_whitespace, which str::trim and chrono use), or 0. */
static size_t ws_len(const uint8_t *p, const uint8_t *e)
{
    uint8_t c = p[0];
    if ((c >= 0x09 && c <= 0x0D) || c == 0x20) return 1;
    if (c == 0xC2 && e - p >= 2 && (p[1] == 0x85 || p[1] == 0xA0)) return 2;
    if (e - p < 3) return 0;
    if (c == 0xE1 && p[1] == 0x9A && p[2] == 0x80) return 3;                  /* U+1680 */
    if (c == 0xE2 && p[1] == 0x80 && (p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF))
        return 3;                                                             /* U+2000-200A 2028 2029 202F */
    if (c == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) return 3;                  /* U+205F */
    if (c == 0xE3 && p[1] == 0x80 && p[2] == 0x80) return 3;                  /* U+3000 */
    return 0;
}

static const uint8_t *trim_start(const uint8_t *p, const uint8_t *e)
{
    size_t k;
    while (p < e && (k = ws_len(p, e))) p += k;
    return p;
}

int mob_is_blank(const uint8_t *s, size_t n)
{
    const uint8_t *e = s + n;
    return trim_start(s, e) == e;
}

size_t mob_utf8_chars(const uint8_t *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += (s[i] & 0xC0) != 0x80;
    return c;
}

/* ---------------------------------------------------------------- timestamps
 * chrono 0.4.45's relaxed RFC 3339 parser for DateTime<Utc>, then write_rfc3339
 * with SecondsFormat::AutoSi and 'Z' (see scalars.py for the source lines). */

#define MIN_YEAR (-262143)
#define MAX_YEAR 262142

/* scan::number: at least lo digits, at most hi read; -1 if too few or i64 overflow */
static int ts_number(const uint8_t **pp, const uint8_t *e, int lo, int64_t hi, int64_t *out)
{
    const uint8_t *p = *pp;
    int64_t v = 0, i = 0;
    while (i < hi && p < e && *p >= '0' && *p <= '9') {
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
        p++;
        i++;
    }
    if (i < lo) return -1;
    *pp = p;
    *out = v;
    return 0;
}

static int ts_field(const uint8_t **pp, const uint8_t *e, int64_t lo, int64_t hi, int64_t *out)
{
    const uint8_t *p = trim_start(*pp, e);
    if (ts_number(&p, e, 1, 2, out) || *out < lo || *out > hi) return -1;
    *pp = p;
    return 0;
}

static int ts_literal(const uint8_t **pp, const uint8_t *e, uint8_t c)
{
    const uint8_t *p = trim_start(*pp, e);
    if (p >= e || *p != c) return -1;
    *pp = p + 1;
    return 0;
}

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

static char *put_digits(char *w, uint64_t v, int width)
{
    for (int k = width - 1; k >= 0; k--) {
        w[k] = (char)('0' + v % 10);
        v /= 10;
    }
    return w + width;
}

/* The quoted UTC form chrono writes (write_rfc3339, SecondsFormat::AutoSi, 'Z') of
 * a valid date-time; out >= 48 bytes; returns the length. */
static size_t write_utc(char *out, int64_t y, int mo, int d, int64_t hh, int64_t mi, int64_t ss, int64_t nano)
{
    char *w = out;
    *w++ = '"';
    if (y >= 0 && y <= 9999) {
        w = put_digits(w, (uint64_t)y, 4);
    } else { /* "{:+05}": an explicit sign, at least 4 digits */
        uint64_t a = (uint64_t)(y < 0 ? -y : y);
        int nd = 4;
        for (uint64_t t = a / 10000; t; t /= 10) nd++;
        *w++ = y < 0 ? '-' : '+';
        w = put_digits(w, a, nd);
    }
    *w++ = '-';
    w = put_digits(w, (uint64_t)mo, 2);
    *w++ = '-';
    w = put_digits(w, (uint64_t)d, 2);
    *w++ = 'T';
    w = put_digits(w, (uint64_t)hh, 2);
    *w++ = ':';
    w = put_digits(w, (uint64_t)mi, 2);
    *w++ = ':';
    w = put_digits(w, (uint64_t)ss, 2);
    if (nano) {
        *w++ = '.';
        if (nano % 1000000 == 0) w = put_digits(w, (uint64_t)(nano / 1000000), 3);
        else if (nano % 1000 == 0) w = put_digits(w, (uint64_t)(nano / 1000), 6);
        else w = put_digits(w, (uint64_t)nano, 9);
    }
    *w++ = 'Z';
    *w++ = '"';
    return (size_t)(w - out);
}

static int dig2(const uint8_t *p) { return (p[0] - '0') * 10 + (p[1] - '0'); }

static int all_digits(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9') return 0;
    return 1;
}

/* Validates a timestamp as chrono reads it; when out is non-NULL writes the
 * quoted canonical UTC form into it (>= 48 bytes).  Returns the length
 * written (1 when out is NULL), or 0 when chrono refuses the string.  The
 * common shape "YYYY-MM-DD[Tt ]hh:mm:ss[.f+][Zz]" takes a direct path; every
 * other spelling the general one, which follows chrono's relaxed parser. */
size_t mob_timestamp(const uint8_t *s, size_t n, char *out)
{
    static const uint32_t SCALE[10] = {0, 100000000, 10000000, 1000000, 100000, 10000, 1000, 100, 10, 1};
    static const int MDAYS[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n >= 20 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == 't' || s[10] == ' ') && s[13] == ':' &&
        s[16] == ':' && (s[n - 1] == 'Z' || s[n - 1] == 'z') && all_digits(s, 4) && all_digits(s + 5, 2) &&
        all_digits(s + 8, 2) && all_digits(s + 11, 2) && all_digits(s + 14, 2) && all_digits(s + 17, 2) &&
        (n == 20 || (s[19] == '.' && n >= 22 && all_digits(s + 20, n - 21)))) {
        int64_t y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + dig2(s + 2);
        int mo = dig2(s + 5), d = dig2(s + 8), hh = dig2(s + 11), mi = dig2(s + 14), ss = dig2(s + 17);
        if (mo < 1 || mo > 12 || d < 1 || d > (mo == 2 && is_leap(y) ? 29 : MDAYS[mo - 1]) || hh > 23 || mi > 59 ||
            ss > 60)
            return 0;
        if (!out) return 1;
        int64_t nano = 0;
        size_t nd = n == 20 ? 0 : n - 21;
        for (size_t i = 0; i < nd && i < 9; i++) nano += (int64_t)(s[20 + i] - '0') * SCALE[i + 1];
        return write_utc(out, y, mo, d, hh, mi, ss, nano); /* :60 is written as :60 */
    }
    const uint8_t *p = trim_start(s, s + n), *e = s + n;
    int64_t y, mo, d, hh, mi, ss, v;
    if (p < e && (*p == '-' || *p == '+')) {
        int neg = *p == '-';
        p++;
        if (ts_number(&p, e, 1, INT64_MAX, &y)) return 0;
        if (neg) y = -y;
    } else if (ts_number(&p, e, 1, 4, &y)) {
        return 0;
    }
    if (y < INT32_MIN || y > INT32_MAX) return 0;
    if (ts_literal(&p, e, '-') || ts_field(&p, e, 1, 12, &mo) || ts_literal(&p, e, '-') ||
        ts_field(&p, e, 1, 31, &d))
        return 0;
    if (p >= e || (*p != 'T' && *p != 't' && *p != ' ')) return 0;
    p++;
    if (ts_field(&p, e, 0, 23, &hh) || ts_literal(&p, e, ':') || ts_field(&p, e, 0, 59, &mi) ||
        ts_literal(&p, e, ':') || ts_field(&p, e, 0, 60, &ss))
        return 0;
    int64_t nano = 0;
    if (p < e && *p == '.') {
        const uint8_t *q = p + 1;
        if (ts_number(&q, e, 1, 9, &v)) return 0;
        nano = v * SCALE[q - (p + 1)];
        while (q < e && *q >= '0' && *q <= '9') q++;
        p = q;
    }
    p = trim_start(p, e);
    int64_t off;
    if (e - p >= 3 && (p[0] | 0x20) == 'u' && (p[1] | 0x20) == 't' && (p[2] | 0x20) == 'c') {
        off = 0;
        p += 3;
    } else if (p < e && (*p == 'Z' || *p == 'z')) {
        off = 0;
        p++;
    } else {
        int neg;
        if (p < e && *p == '+') {
            neg = 0;
            p++;
        } else if (p < e && *p == '-') {
            neg = 1;
            p++;
        } else if (e - p >= 3 && p[0] == 0xE2 && p[1] == 0x88 && p[2] == 0x92) { /* U+2212 MINUS SIGN */
            neg = 1;
            p += 3;
        } else {
            return 0;
        }
        if (e - p < 2 || p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') return 0;
        int64_t oh = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        size_t k;
        while (p < e && (*p == ':' || (k = ws_len(p, e)))) p += *p == ':' ? 1 : k;
        if (e - p < 2 || p[0] < '0' || p[0] > '5' || p[1] < '0' || p[1] > '9') return 0;
        int64_t om = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        off = oh * 3600 + om * 60;
        if (neg) off = -off;
    }
    if (trim_start(p, e) != e) return 0;
    /* Parsed::to_datetime */
    if (y < MIN_YEAR || y > MAX_YEAR) return 0;
    if (d > (mo == 2 && is_leap(y) ? 29 : MDAYS[mo - 1])) return 0;
    if (ss == 60) {
        ss = 59;
        nano += 1000000000;
    }
    if (off <= -86400 || off >= 86400) return 0;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = hh * 3600 + mi * 60 + ss - off;
    int64_t q = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    days += q;
    secs -= q * 86400;
    if (days < days_from_civil(MIN_YEAR, 1, 1) || days > days_from_civil(MAX_YEAR, 12, 31)) return 0;
    if (!out) return 1;
    int m2, d2;
    civil_from_days(days, &y, &m2, &d2);
    hh = secs / 3600;
    mi = secs / 60 % 60;
    ss = secs % 60;
    if (nano >= 1000000000) { /* a leap second is written as :60 */
        ss++;
        nano -= 1000000000;
    }
    return write_utc(out, y, m2, d2, hh, mi, ss, nano);
}

/* ---------------------------------------------------------------- UUIDs
 * uuid's Uuid::parse_str: 32 hex digits, the hyphenated form, that form in
 * braces, or "urn:uuid:" + it (hex in either case); written hyphenated and
 * lowercase.  out: 38 bytes (the quoted form).  Returns 0, or -1. */
int mob_uuid(const uint8_t *s, size_t n, char *out)
{
    static const char HEX[] = "0123456789abcdef";
    uint8_t h[32];
    const uint8_t *b = s;
    if (n == 38 && s[0] == '{' && s[37] == '}') {
        b = s + 1;
        n = 36;
    } else if (n == 45 && memcmp(s, "urn:uuid:", 9) == 0) {
        b = s + 9;
        n = 36;
    }
    int k = 0;
    if (n == 32) {
        for (int i = 0; i < 32; i++) h[k++] = b[i];
    } else if (n == 36 && b[8] == '-' && b[13] == '-' && b[18] == '-' && b[23] == '-') {
        for (int i = 0; i < 36; i++)
            if (i != 8 && i != 13 && i != 18 && i != 23) h[k++] = b[i];
    } else {
        return -1;
    }
    char *w = out;
    *w++ = '"';
    for (int i = 0; i < 32; i++) {
        uint8_t c = h[i];
        int x = c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
        if (x < 0) return -1;
        if (i == 8 || i == 12 || i == 16 || i == 20) *w++ = '-';
        *w++ = HEX[x];
    }
    *w = '"';
    return 0;
}

/* SkillName: a lowercase slug [a-z0-9-], no leading, trailing or doubled '-'. */
int mob_skill_name_ok(const uint8_t *s, size_t n)
{
    if (!n || s[0] == '-' || s[n - 1] == '-') return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return 0;
        if (c == '-' && i + 1 < n && s[i + 1] == '-') return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- blob ids */

static uint32_t decode_at(const uint8_t *s, size_t i, size_t *len)
{
    uint8_t c = s[i];
    if (c < 0x80) { *len = 1; return c; }
    if (c < 0xE0) { *len = 2; return ((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F); }
    if (c < 0xF0) {
        *len = 3;
        return ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
    }
    *len = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3F) << 12) |
           ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
}

static int is_unicode_ws(uint32_t c)
{
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* meerkat's content_blob_id: "sha256:" + hex SHA-256 of the media type (up to
 * the first ';', whitespace-trimmed, ASCII-lowercased), a NUL byte and the
 * base64 text (meerkat-core/src/blob.rs:127-135@c7b8518b4).  out: 72 bytes
 * (the 71 characters + a NUL). */
void mob_blob_id(const uint8_t *s, size_t n, const uint8_t *data, size_t dlen, char *out)
{
    size_t start = 0, end;
    const uint8_t *semi = memchr(s, ';', n);
    end = semi ? (size_t)(semi - s) : n;
    while (start < end) {
        size_t l;
        if (!is_unicode_ws(decode_at(s, start, &l))) break;
        start += l;
    }
    while (end > start) { /* step back one UTF-8 char */
        size_t b = end - 1;
        while (b > start && (s[b] & 0xC0) == 0x80) b--;
        size_t l;
        if (!is_unicode_ws(decode_at(s, b, &l))) break;
        end = b;
    }
    mobstore_sha256 h;
    mobstore_sha256_init(&h);
    uint8_t low[64];
    for (size_t i = start; i < end;) {
        size_t k = 0;
        while (i < end && k < sizeof low) {
            uint8_t c = s[i++];
            low[k++] = (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
        }
        mobstore_sha256_update(&h, low, k);
    }
    mobstore_sha256_update(&h, "", 1);
    mobstore_sha256_update(&h, data, dlen);
    memcpy(out, "sha256:", 7);
    mobstore_sha256_final_hex(&h, out + 7);
}
