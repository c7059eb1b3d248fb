/* message.c -- meerkat's typed message model and the f3/f2/bare profiles.
 *
 * Re-serialises a parsed message the way meerkat's serde derive would
 * (FORMAT.md §1.1-1.3): the tag first, known fields in struct declaration
 * order, then any unknown keys in input order (mobstore keeps them rather
 * than silently dropping them), the content codec (one plain text block is
 * written as a string), `is_error` always written, serde `Value` fields with
 * keys sorted by UTF-8 bytes.  Profile steps (FORMAT.md §1.4):
 *   f3: inline images -> blob ids, opaque slots (tool_use args, structured
 *       data) re-encoded key-sorted, created_at -> epoch, identity dropped
 *       for user / block_assistant;
 *   f2: as f3 but opaque slots copied verbatim from the input;
 *   bare: typed form only.
 *
 * Each type is described by a table of fields (name, kind, presence);
 * write_struct() walks it.  Validation failures return MOBSTORE_E_SCHEMA
 * with the offending node's byte offset.  Nothing here allocates except
 * through the mob_out buffer.
 */
#define MOBSTORE_CANON_INTERNAL 1
#include "canon.h"

#include <string.h>

typedef struct {
    mob_doc *d;
    mob_out *o;
    int profile;
} mctx;

/* field kinds */
enum {
    K_STR,      /* string */
    K_ENUM,     /* string from a closed list */
    K_U64,      /* non-negative integer */
    K_U32,      /* non-negative integer < 2^32 */
    K_BOOL,
    K_TS,       /* RFC 3339 timestamp (created_at) */
    K_VALUE,    /* serde_json::Value: any JSON, keys sorted */
    K_OPAQUE,   /* RawValue slot: profile decides */
    K_CONTENT,  /* Vec<ContentBlock> with the string codec */
    K_BLOCKS,   /* array of objects written by fn */
    K_STRS,     /* array of strings */
    K_STRUCT,   /* object written by fn */
    K_TAG,      /* the enum tag field: value already validated, written by caller */
    K_SKIP,     /* known but not written here (excluded from unknown keys) */
};

/* presence */
enum {
    P_REQ,      /* must be present (null only where the kind allows it) */
    P_OPT,      /* Option<T>: absent or null -> omitted */
    P_OPTV,     /* Option<Value>: absent -> omitted, null kept */
    P_DEF,      /* #[serde(default)]: absent -> default literal, always written */
    P_NONEMPTY, /* Vec skipped when empty: absent or [] -> omitted */
    P_IDENT,    /* identity struct: omitted when absent/empty; dropped in f2/f3 */
};

typedef struct mfield mfield;
typedef int (*obj_fn)(mctx *m, uint32_t node);

struct mfield {
    const char *name;
    uint8_t kind;
    uint8_t presence;
    const char *const *enums; /* K_ENUM */
    obj_fn fn;                /* K_BLOCKS / K_STRUCT */
    const char *def;          /* P_DEF: literal JSON written when absent */
};

#define MAXF 16

static int schema_err(mctx *m, uint32_t node, const char *detail)
{
    mob_doc *d = m->d;
    d->err = MOBSTORE_E_SCHEMA;
    d->err_off = node < d->count ? d->nodes[node].src : 0;
    d->err_detail = detail;
    return MOBSTORE_E_SCHEMA;
}

static int nomem(mctx *m)
{
    m->d->err = MOBSTORE_E_NOMEM;
    m->d->err_detail = "out of memory";
    return MOBSTORE_E_NOMEM;
}

#define OUT(call)                             \
    do {                                      \
        if (call) return nomem(m);            \
    } while (0)

static inline int key_is(const mob_node *k, const char *name)
{
    size_t n = strlen(name);
    return k->len == n && memcmp(k->v.s, name, n) == 0;
}

static inline int str_is(const mob_node *s, const char *name) { return key_is(s, name); }

/* Find member `name` of object obj; returns value index or 0. */
static uint32_t member(mob_doc *d, uint32_t obj, const char *name)
{
    const mob_node *nodes = d->nodes;
    uint32_t i = obj + 1;
    for (uint32_t k = 0; k < nodes[obj].len; k++) {
        if (key_is(&nodes[i], name)) return i + 1;
        i = nodes[i + 1].next;
    }
    return 0;
}

static int out_lit(mctx *m, const char *s) { return mob_out_bytes(m->o, s, strlen(s)); }

/* ,"name": (comma unless first) */
static int out_key(mctx *m, const char *name, int *first)
{
    mob_out *o = m->o;
    size_t n = strlen(name);
    if (mob_out_reserve(o, n + 4)) return MOBSTORE_E_NOMEM;
    if (!*first) o->buf[o->len++] = ',';
    *first = 0;
    o->buf[o->len++] = '"';
    memcpy(o->buf + o->len, name, n);
    o->len += n;
    o->buf[o->len++] = '"';
    o->buf[o->len++] = ':';
    return 0;
}

static int out_str_node(mctx *m, uint32_t i)
{
    const mob_node *n = &m->d->nodes[i];
    return mob_out_string(m->o, n->v.s, n->len, n->escaped);
}

/* ------------------------------------------------------------ timestamps */

static int digits(const uint8_t *s, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 0;
}

static int days_in_month(int y, int mo)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return dm[mo - 1];
}

/* days since 1970-01-01 of a proleptic Gregorian date */
static int64_t days_from_civil(int64_t y, int m, int d)
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
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yy + (*m <= 2);
}

/* Parse an RFC 3339 date-time (chrono's relaxed FromStr subset: 'T', 't' or
 * ' ' separator, optional fraction (digits past 9 ignored), 'Z', 'z' or
 * +-HH:MM offset) and write it as chrono serialises DateTime<Utc>: UTC,
 * 'Z', fraction of 0/3/6/9 digits.  Returns 0 or -1 when invalid. */
static int write_timestamp(mctx *m, const mob_node *s)
{
    const uint8_t *p = s->v.s;
    size_t n = s->len;
    int Y, Mo, D, h, mi, sec, oh = 0, om = 0, sign = 0;
    uint32_t nanos = 0;
    if (n < 20) return -1;
    if (digits(p, 4, &Y) || p[4] != '-' || digits(p + 5, 2, &Mo) || p[7] != '-' || digits(p + 8, 2, &D))
        return -1;
    if (p[10] != 'T' && p[10] != 't' && p[10] != ' ') return -1;
    if (digits(p + 11, 2, &h) || p[13] != ':' || digits(p + 14, 2, &mi) || p[16] != ':' ||
        digits(p + 17, 2, &sec))
        return -1;
    size_t i = 19;
    if (i < n && p[i] == '.') {
        i++;
        size_t st = i;
        uint32_t scale = 100000000;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            if (i - st < 9) {
                nanos += (uint32_t)(p[i] - '0') * scale;
                scale /= 10;
            }
            i++;
        }
        if (i == st) return -1;
    }
    if (i >= n) return -1;
    if ((p[i] == 'Z' || p[i] == 'z') && i + 1 == n) {
        sign = 0;
    } else if ((p[i] == '+' || p[i] == '-') && i + 6 == n && p[i + 3] == ':') {
        sign = p[i] == '+' ? 1 : -1;
        if (digits(p + i + 1, 2, &oh) || digits(p + i + 4, 2, &om) || oh > 23 || om > 59) return -1;
    } else {
        return -1;
    }
    if (Mo < 1 || Mo > 12 || D < 1 || D > days_in_month(Y, Mo) || h > 23 || mi > 59 || sec > 60) return -1;
    if (sec == 60) { /* leap second: chrono keeps it as second 59 + 1e9 ns */
        sec = 59;
        nanos += 1000000000u;
    }
    if (m->profile != MOBSTORE_PROFILE_BARE) return out_lit(m, "\"1970-01-01T00:00:00Z\"") ? nomem(m) : 0;

    int64_t t = days_from_civil(Y, Mo, D) * 86400 + h * 3600 + mi * 60 + sec;
    t -= (int64_t)sign * (oh * 3600 + om * 60);
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t rem = t - days * 86400;
    int64_t yy;
    int mm, dd;
    civil_from_days(days, &yy, &mm, &dd);
    if (yy < 0 || yy > 9999) return -1; /* chrono would print a signed year */
    char buf[48];
    int hh = (int)(rem / 3600), mn = (int)(rem % 3600 / 60), ss = (int)(rem % 60);
    if (nanos >= 1000000000u) {
        ss += 1; /* displayed as :60 */
        nanos -= 1000000000u;
    }
    char *w = buf;
    *w++ = '"';
    w[0] = (char)('0' + yy / 1000); w[1] = (char)('0' + yy / 100 % 10);
    w[2] = (char)('0' + yy / 10 % 10); w[3] = (char)('0' + yy % 10); w[4] = '-';
    w[5] = (char)('0' + mm / 10); w[6] = (char)('0' + mm % 10); w[7] = '-';
    w[8] = (char)('0' + dd / 10); w[9] = (char)('0' + dd % 10); w[10] = 'T';
    w[11] = (char)('0' + hh / 10); w[12] = (char)('0' + hh % 10); w[13] = ':';
    w[14] = (char)('0' + mn / 10); w[15] = (char)('0' + mn % 10); w[16] = ':';
    w[17] = (char)('0' + ss / 10); w[18] = (char)('0' + ss % 10);
    w += 19;
    if (nanos) {
        int nd = nanos % 1000000 == 0 ? 3 : nanos % 1000 == 0 ? 6 : 9;
        uint32_t v = nd == 3 ? nanos / 1000000 : nd == 6 ? nanos / 1000 : nanos;
        *w++ = '.';
        for (int k = nd - 1; k >= 0; k--) {
            w[k] = (char)('0' + v % 10);
            v /= 10;
        }
        w += nd;
    }
    *w++ = 'Z';
    *w++ = '"';
    return mob_out_bytes(m->o, buf, (size_t)(w - buf)) ? nomem(m) : 0;
}

/* ---------------------------------------------------------------- images */

static int is_unicode_ws(uint32_t c)
{
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

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

/* blob id = "sha256:" + hex(SHA-256(M || 0x00 || data)), M = media type up
 * to the first ';', Unicode-whitespace trimmed (Rust str::trim), ASCII
 * lowercased (FORMAT.md §1.4 step 1). */
static int write_blob_id(mctx *m, const mob_node *media, const mob_node *data)
{
    const uint8_t *s = media->v.s;
    size_t n = media->len, start = 0, end;
    const uint8_t *semi = memchr(s, ';', n);
    end = semi ? (size_t)(semi - s) : n;
    while (start < end) {
        size_t l;
        uint32_t c = decode_at(s, start, &l);
        if (!is_unicode_ws(c)) break;
        start += l;
    }
    while (end > start) { /* step back one UTF-8 char */
        size_t b = end - 1;
        while (b > start && (s[b] & 0xC0) == 0x80) b--;
        size_t l;
        uint32_t c = decode_at(s, b, &l);
        if (!is_unicode_ws(c)) break;
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
    mobstore_sha256_update(&h, data->v.s, data->len);
    char hex[65];
    mobstore_sha256_final_hex(&h, hex);
    OUT(out_lit(m, "\"sha256:"));
    OUT(mob_out_bytes(m->o, hex, 64));
    OUT(mob_out_byte(m->o, '"'));
    return 0;
}

/* ------------------------------------------------------------ struct core */

static int write_field_value(mctx *m, const mfield *f, uint32_t v);

/* Write the members of object `obj` described by fields[0..nf) (in table
 * order), then unknown members in input order.  The opening '{' and any tag
 * are written by the caller; *first says whether a comma is needed.  Does
 * not write the closing '}'. */
static int write_fields(mctx *m, uint32_t obj, const mfield *fields, int nf, int *first)
{
    mob_doc *d = m->d;
    uint32_t vals[MAXF];
    memset(vals, 0, sizeof vals);
    const mob_node *nodes = d->nodes;
    uint32_t i = obj + 1;
    for (uint32_t k = 0; k < nodes[obj].len; k++) {
        for (int f = 0; f < nf; f++)
            if (key_is(&nodes[i], fields[f].name)) {
                vals[f] = i + 1;
                break;
            }
        i = nodes[i + 1].next;
    }
    for (int f = 0; f < nf; f++) {
        const mfield *fd = &fields[f];
        uint32_t v = vals[f];
        int is_null = v && nodes[v].type == J_NULL;
        if (fd->kind == K_TAG || fd->kind == K_SKIP) continue; /* written by the caller */
        switch (fd->presence) {
        case P_REQ:
            if (!v) {
                if (fd->kind == K_TS && m->profile != MOBSTORE_PROFILE_BARE) {
                    /* missing created_at decodes as now(); f2/f3 erase it */
                    OUT(out_key(m, fd->name, first));
                    OUT(out_lit(m, "\"1970-01-01T00:00:00Z\""));
                    continue;
                }
                return schema_err(m, obj, "missing required field");
            }
            break;
        case P_OPT:
            if (!v || is_null) continue;
            break;
        case P_OPTV:
            if (!v) continue;
            break;
        case P_DEF:
            if (!v) {
                OUT(out_key(m, fd->name, first));
                OUT(out_lit(m, fd->def));
                continue;
            }
            break;
        case P_NONEMPTY:
            if (!v) continue;
            if (nodes[v].type == J_ARR && nodes[v].len == 0) continue;
            break;
        case P_IDENT: {
            if (!v || is_null) continue;
            if (nodes[v].type != J_OBJ) return schema_err(m, v, "identity must be an object");
            /* validate, then decide: dropped in f2/f3, omitted when empty */
            size_t mark = m->o->len;
            int rc = fd->fn(m, v);
            if (rc) return rc;
            int empty = m->o->len - mark == 2; /* "{}" */
            m->o->len = mark;
            if (empty || m->profile != MOBSTORE_PROFILE_BARE) continue;
            break;
        }
        }
        OUT(out_key(m, fd->name, first));
        int rc = write_field_value(m, fd, v);
        if (rc) return rc;
    }
    /* unknown keys, input order, compact form */
    i = obj + 1;
    for (uint32_t k = 0; k < nodes[obj].len; k++) {
        int known = 0;
        for (int f = 0; f < nf; f++)
            if (key_is(&nodes[i], fields[f].name)) {
                known = 1;
                break;
            }
        if (!known) {
            if (!*first) OUT(mob_out_byte(m->o, ','));
            *first = 0;
            OUT(out_str_node(m, i));
            OUT(mob_out_byte(m->o, ':'));
            OUT(mob_out_compact(m->o, d, i + 1));
        }
        i = nodes[i + 1].next;
    }
    return 0;
}

/* A whole struct without a tag: { fields } */
static int write_struct(mctx *m, uint32_t obj, const mfield *fields, int nf)
{
    if (m->d->nodes[obj].type != J_OBJ) return schema_err(m, obj, "expected an object");
    int first = 1;
    OUT(mob_out_byte(m->o, '{'));
    int rc = write_fields(m, obj, fields, nf, &first);
    if (rc) return rc;
    OUT(mob_out_byte(m->o, '}'));
    return 0;
}

/* Internally tagged: {"<tag>":"<variant>", fields}; variant validated by caller. */
static int write_tagged(mctx *m, uint32_t obj, const char *tag, uint32_t tagval, const mfield *fields, int nf)
{
    int first = 0;
    OUT(mob_out_byte(m->o, '{'));
    OUT(mob_out_byte(m->o, '"'));
    OUT(out_lit(m, tag));
    OUT(out_lit(m, "\":"));
    OUT(out_str_node(m, tagval));
    int rc = write_fields(m, obj, fields, nf, &first);
    if (rc) return rc;
    OUT(mob_out_byte(m->o, '}'));
    return 0;
}

static int in_enum(const mob_node *s, const char *const *vals)
{
    for (; *vals; vals++)
        if (str_is(s, *vals)) return 1;
    return 0;
}

/* True when node c is a content block that the codec writes as a plain
 * string: {"type":"text","text":<string>} and nothing else. */
static int is_plain_text_block(mob_doc *d, uint32_t c)
{
    const mob_node *n = &d->nodes[c];
    if (n->type != J_OBJ || n->len != 2) return 0;
    uint32_t t = member(d, c, "type"), x = member(d, c, "text");
    return t && x && d->nodes[t].type == J_STR && str_is(&d->nodes[t], "text") && d->nodes[x].type == J_STR;
}

/* Vec<ContentBlock>; codec = content_blocks_serde (string form accepted on
 * input; exactly one plain text block written as a string). */
static int write_content(mctx *m, uint32_t v, int codec)
{
    mob_doc *d = m->d;
    const mob_node *n = &d->nodes[v];
    if (codec && n->type == J_STR) {
        OUT(out_str_node(m, v));
        return 0;
    }
    if (n->type != J_ARR) return schema_err(m, v, codec ? "content must be a string or an array of blocks" : "expected an array of blocks");
    if (codec && n->len == 1 && is_plain_text_block(d, v + 1)) {
        OUT(out_str_node(m, member(d, v + 1, "text")));
        return 0;
    }
    OUT(mob_out_byte(m->o, '['));
    uint32_t c = v + 1;
    for (uint32_t k = 0; k < n->len; k++) {
        if (k) OUT(mob_out_byte(m->o, ','));
        if (d->nodes[c].type != J_OBJ) return schema_err(m, c, "content block must be an object");
        int rc = w_content_block(m, c);
        if (rc) return rc;
        c = d->nodes[c].next;
    }
    OUT(mob_out_byte(m->o, ']'));
    return 0;
}
