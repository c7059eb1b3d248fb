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
 * Each type is described by a table of fields (name, kind, presence).
 * write_struct()/write_tagged() write TYPED objects (declaration order);
 * write_pass() writes PASS-THROUGH objects (validated, but keys in input
 * order, no defaults added, present nulls kept) where the shared vectors
 * show meerkat's bytes keep the producer's order (identity, prompt_version,
 * render_metadata, provider meta, notice blocks, peer).  The rules mirror
 * the engine._canon_py docstring, the reference, byte for byte.
 * Validation failures return MOBSTORE_E_SCHEMA with the offending node's
 * byte offset.  Nothing here allocates except through the mob_out buffer;
 * the public entry points (contexts, errors, transcripts) are in transcript.c.
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
    K_U64_NZ,   /* integer >= 1 */
    K_U32,      /* non-negative integer < 2^32 */
    K_BOOL,
    K_TS,       /* RFC 3339 timestamp (created_at) */
    K_VALUE,    /* serde_json::Value: any JSON, keys sorted */
    K_OPAQUE,   /* RawValue slot: profile decides */
    K_CONTENT,  /* Vec<ContentBlock> with the string codec */
    K_BLOCKLIST,/* Vec<ContentBlock> without the codec (notice content) */
    K_BLOCKS,   /* array of objects written by fn */
    K_STRS,     /* array of strings */
    K_STRUCT,   /* object written by fn */
    K_FN,       /* any JSON, fn checks and writes it */
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
    P_NOTDEF,   /* enum with a default variant `def`: absent or == def -> omitted, null -> error */
    P_IDENT,    /* identity struct: absent -> omitted, null -> error; dropped in f2/f3 */
};

typedef struct mfield mfield;
typedef int (*obj_fn)(mctx *m, uint32_t node);

struct mfield {
    const char *name;
    uint8_t nlen;             /* strlen(name) */
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

static inline int key_is_n(const mob_node *k, const char *name, size_t n)
{
    /* length and first byte reject almost every mismatch without a call */
    return k->len == n && (n == 0 || (k->v.s[0] == (uint8_t)name[0] && memcmp(k->v.s, name, n) == 0));
}

static inline int key_is(const mob_node *k, const char *name) { return key_is_n(k, name, strlen(name)); }

static inline int str_is(const mob_node *s, const char *name) { return key_is(s, name); }

/* Find member `name` of object obj; returns value index or 0. */
static uint32_t member_n(mob_doc *d, uint32_t obj, const char *name, size_t n)
{
    const mob_node *nodes = d->nodes;
    uint32_t i = obj + 1;
    for (uint32_t k = 0; k < nodes[obj].len; k++) {
        if (key_is_n(&nodes[i], name, n)) return i + 1;
        i = nodes[i + 1].next;
    }
    return 0;
}

static inline uint32_t member(mob_doc *d, uint32_t obj, const char *name)
{
    return member_n(d, obj, name, strlen(name));
}

static int out_lit(mctx *m, const char *s) { return mob_out_bytes(m->o, s, strlen(s)); }

/* ,"name": (comma unless first) */
static int out_key_n(mctx *m, const char *name, size_t n, int *first)
{
    mob_out *o = m->o;
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

static inline int out_key(mctx *m, const char *name, int *first) { return out_key_n(m, name, strlen(name), first); }

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
    /* Python datetime rules (the reference): years 0001-9999, no leap second */
    if (Y < 1 || Mo < 1 || Mo > 12 || D < 1 || D > days_in_month(Y, Mo) || h > 23 || mi > 59 || sec > 59)
        return -1;

    int64_t t = days_from_civil(Y, Mo, D) * 86400 + h * 3600 + mi * 60 + sec;
    t -= (int64_t)sign * (oh * 3600 + om * 60);
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t rem = t - days * 86400;
    int64_t yy;
    int mm, dd;
    civil_from_days(days, &yy, &mm, &dd);
    if (yy < 1 || yy > 9999) return -1; /* outside years 0001-9999 UTC */
    if (m->profile != MOBSTORE_PROFILE_BARE) /* FORMAT.md §1.4 step 3 */
        return out_lit(m, "\"1970-01-01T00:00:00Z\"") ? MOBSTORE_E_NOMEM : 0;
    char buf[48];
    int hh = (int)(rem / 3600), mn = (int)(rem % 3600 / 60), ss = (int)(rem % 60);
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
    return mob_out_bytes(m->o, buf, (size_t)(w - buf)) ? MOBSTORE_E_NOMEM : 0;
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
            if (key_is_n(&nodes[i], fields[f].name, fields[f].nlen)) {
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
                if (fd->kind == K_TS) {
                    /* missing created_at decodes as now(): f2/f3 erase it
                     * to the epoch, bare omits it (seed-era rows had none) */
                    if (m->profile == MOBSTORE_PROFILE_BARE) continue;
                    OUT(out_key_n(m, fd->name, fd->nlen, first));
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
                OUT(out_key_n(m, fd->name, fd->nlen, first));
                OUT(out_lit(m, fd->def));
                continue;
            }
            break;
        case P_NONEMPTY:
            if (!v) continue;
            if (nodes[v].type == J_ARR && nodes[v].len == 0) continue;
            break;
        case P_NOTDEF:
            if (!v) continue;
            if (nodes[v].type == J_STR && str_is(&nodes[v], fd->def)) continue;
            break;
        case P_IDENT: {
            /* a non-Option struct: absent is fine, null is not; validated
             * always, written only in bare (FORMAT.md §1.4 step 3) */
            if (!v) continue;
            if (nodes[v].type != J_OBJ) return schema_err(m, v, "identity must be an object");
            if (m->profile == MOBSTORE_PROFILE_BARE) break;
            size_t mark = m->o->len;
            int rc = fd->fn(m, v);
            if (rc) return rc;
            m->o->len = mark;
            continue;
        }
        }
        OUT(out_key_n(m, fd->name, fd->nlen, first));
        int rc = write_field_value(m, fd, v);
        if (rc) return rc;
    }
    /* unknown keys, input order, compact form */
    i = obj + 1;
    for (uint32_t k = 0; k < nodes[obj].len; k++) {
        int known = 0;
        for (int f = 0; f < nf; f++)
            if (key_is_n(&nodes[i], fields[f].name, fields[f].nlen)) {
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

/* Pass-through struct (_canon_py rule 2 "PASS"): validated like a typed
 * struct, but written as parsed -- keys in input order, no defaults added,
 * a present null of an optional field written as null, unknown keys
 * compact.  Tag fields appear in `fields` as plain K_STR. */
static int write_pass(mctx *m, uint32_t obj, const mfield *fields, int nf)
{
    mob_doc *d = m->d;
    const mob_node *nodes = d->nodes;
    if (nodes[obj].type != J_OBJ) return schema_err(m, obj, "expected an object");
    for (int f = 0; f < nf; f++)
        if (fields[f].presence == P_REQ && !member_n(d, obj, fields[f].name, fields[f].nlen))
            return schema_err(m, obj, "missing required field");
    OUT(mob_out_byte(m->o, '{'));
    uint32_t i = obj + 1;
    for (uint32_t k = 0; k < nodes[obj].len; k++) {
        uint32_t v = i + 1;
        if (k) OUT(mob_out_byte(m->o, ','));
        OUT(out_str_node(m, i));
        OUT(mob_out_byte(m->o, ':'));
        const mfield *fd = NULL;
        for (int f = 0; f < nf; f++)
            if (key_is_n(&nodes[i], fields[f].name, fields[f].nlen)) {
                fd = &fields[f];
                break;
            }
        if (!fd) {
            OUT(mob_out_compact(m->o, d, v));
        } else if (nodes[v].type == J_NULL && (fd->presence == P_OPT || fd->presence == P_OPTV)) {
            OUT(out_lit(m, "null"));
        } else if (fd->presence == P_NONEMPTY && nodes[v].type != J_ARR) {
            return schema_err(m, v, "expected an array");
        } else {
            int rc = write_field_value(m, fd, v);
            if (rc) return rc;
        }
        i = nodes[v].next;
    }
    OUT(mob_out_byte(m->o, '}'));
    return 0;
}

static int w_pass_any(mctx *m, uint32_t v) { return write_pass(m, v, NULL, 0); }

static int in_enum(const mob_node *s, const char *const *vals)
{
    for (; *vals; vals++)
        if (str_is(s, *vals)) return 1;
    return 0;
}

static int write_content(mctx *m, uint32_t v, int codec);

static int write_field_value(mctx *m, const mfield *f, uint32_t v)
{
    mob_doc *d = m->d;
    const mob_node *n = &d->nodes[v];
    switch (f->kind) {
    case K_STR:
        if (n->type != J_STR) return schema_err(m, v, "expected a string");
        OUT(out_str_node(m, v));
        return 0;
    case K_ENUM:
        if (n->type != J_STR) return schema_err(m, v, "expected a string");
        if (!in_enum(n, f->enums)) return schema_err(m, v, "unknown variant");
        OUT(out_str_node(m, v));
        return 0;
    case K_U64:
    case K_U64_NZ:
    case K_U32:
        if (n->type != J_NUM || n->numkind != MOB_NUM_U64) return schema_err(m, v, "expected a non-negative integer");
        if (f->kind == K_U64_NZ && n->v.u == 0) return schema_err(m, v, "integer must be >= 1");
        if (f->kind == K_U32 && n->v.u > 0xFFFFFFFFu) return schema_err(m, v, "integer out of range");
        OUT(mob_out_number(m->o, n));
        return 0;
    case K_BOOL:
        if (n->type != J_TRUE && n->type != J_FALSE) return schema_err(m, v, "expected a boolean");
        OUT(out_lit(m, n->type == J_TRUE ? "true" : "false"));
        return 0;
    case K_TS: {
        if (n->type != J_STR) return schema_err(m, v, "expected a timestamp string");
        int rc = write_timestamp(m, n);
        if (rc == MOBSTORE_E_NOMEM) return nomem(m);
        if (rc) return schema_err(m, v, "invalid RFC 3339 timestamp");
        return 0;
    }
    case K_VALUE:
        OUT(mob_out_value(m->o, d, v));
        return 0;
    case K_OPAQUE:
        if (m->profile == MOBSTORE_PROFILE_F3) {
            OUT(mob_out_value(m->o, d, v));
        } else {
            OUT(mob_out_bytes(m->o, d->input + n->src, n->src_end - n->src));
        }
        return 0;
    case K_CONTENT:
        return write_content(m, v, 1);
    case K_BLOCKLIST:
        return write_content(m, v, 0);
    case K_BLOCKS:
    case K_STRS: {
        if (n->type != J_ARR) return schema_err(m, v, "expected an array");
        OUT(mob_out_byte(m->o, '['));
        uint32_t c = v + 1;
        for (uint32_t k = 0; k < n->len; k++) {
            if (k) OUT(mob_out_byte(m->o, ','));
            if (f->kind == K_STRS) {
                if (d->nodes[c].type != J_STR) return schema_err(m, c, "expected a string");
                OUT(out_str_node(m, c));
            } else {
                if (d->nodes[c].type != J_OBJ) return schema_err(m, c, "expected an object");
                int rc = f->fn(m, c);
                if (rc) return rc;
            }
            c = d->nodes[c].next;
        }
        OUT(mob_out_byte(m->o, ']'));
        return 0;
    }
    case K_STRUCT:
        if (n->type != J_OBJ) return schema_err(m, v, "expected an object");
        return f->fn(m, v);
    case K_FN:
        return f->fn(m, v);
    }
    return schema_err(m, v, "internal: bad field kind");
}

#define NF(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define F_(name, kind, pres) {name, sizeof(name) - 1, kind, pres, 0, 0, 0}
#define FE(name, pres, enums) {name, sizeof(name) - 1, K_ENUM, pres, enums, 0, 0}
#define FS(name, kind, pres, fn) {name, sizeof(name) - 1, kind, pres, 0, fn, 0}
#define FD(name, kind, def) {name, sizeof(name) - 1, kind, P_DEF, 0, 0, def}
#define FX(name, kind, pres, enums, def) {name, sizeof(name) - 1, kind, pres, enums, 0, def}

/* Read the string tag `tag` of object v into *t; 0 or error. */
static int get_tag(mctx *m, uint32_t v, const char *tag, uint32_t *t)
{
    *t = member(m->d, v, tag);
    if (!*t) return schema_err(m, v, "missing tag field");
    if (m->d->nodes[*t].type != J_STR) return schema_err(m, *t, "tag must be a string");
    return 0;
}

/* --------------------------------------------------------- content blocks */

static int w_skill_key(mctx *m, uint32_t v)
{
    static const mfield F[] = {F_("source_uuid", K_STR, P_REQ), F_("skill_name", K_STR, P_REQ)};
    return write_struct(m, v, F, NF(F));
}

/* ContentBlock, internally tagged by "type" (types.rs ContentBlock). */
static int w_content_block(mctx *m, uint32_t v)
{
    mob_doc *d = m->d;
    uint32_t t;
    int rc = get_tag(m, v, "type", &t);
    if (rc) return rc;
    const mob_node *tn = &d->nodes[t];
    if (str_is(tn, "text")) {
        static const mfield F[] = {F_("type", K_TAG, P_REQ), F_("text", K_STR, P_REQ)};
        return write_tagged(m, v, "type", t, F, NF(F));
    }
    if (str_is(tn, "image")) {
        static const mfield INLINE[] = {
            F_("type", K_TAG, P_REQ), F_("media_type", K_STR, P_REQ),
            F_("source", K_STR, P_REQ), F_("data", K_STR, P_REQ),
        };
        static const mfield BLOB[] = {
            F_("type", K_TAG, P_REQ), F_("media_type", K_STR, P_REQ),
            F_("source", K_STR, P_REQ), F_("blob_id", K_STR, P_REQ),
        };
        uint32_t src;
        if ((rc = get_tag(m, v, "source", &src))) return rc;
        if (str_is(&d->nodes[src], "blob")) return write_tagged(m, v, "type", t, BLOB, NF(BLOB));
        if (!str_is(&d->nodes[src], "inline")) return schema_err(m, src, "unknown image source");
        if (m->profile == MOBSTORE_PROFILE_BARE) return write_tagged(m, v, "type", t, INLINE, NF(INLINE));
        /* f2/f3 step 1: inline image -> blob reference (FORMAT.md §1.4) */
        uint32_t mt = member(d, v, "media_type"), data = member(d, v, "data");
        if (!mt) return schema_err(m, v, "image media_type missing");
        if (d->nodes[mt].type != J_STR) return schema_err(m, mt, "expected a string");
        if (!data) return schema_err(m, v, "image data missing");
        if (d->nodes[data].type != J_STR) return schema_err(m, data, "expected a string");
        OUT(out_lit(m, "{\"type\":\"image\",\"media_type\":"));
        OUT(out_str_node(m, mt));
        OUT(out_lit(m, ",\"source\":\"blob\",\"blob_id\":"));
        if ((rc = write_blob_id(m, &d->nodes[mt], &d->nodes[data]))) return rc;
        /* the collapsed block is a new object: unknown keys are dropped */
        OUT(mob_out_byte(m->o, '}'));
        return 0;
    }
    if (str_is(tn, "video")) {
        static const mfield INLINE[] = {
            F_("type", K_TAG, P_REQ), F_("media_type", K_STR, P_REQ), F_("duration_ms", K_U64, P_REQ),
            F_("source", K_STR, P_REQ), F_("data", K_STR, P_REQ),
        };
        static const mfield URI[] = {
            F_("type", K_TAG, P_REQ), F_("media_type", K_STR, P_REQ), F_("duration_ms", K_U64, P_REQ),
            F_("source", K_STR, P_REQ), F_("uri", K_STR, P_REQ),
        };
        uint32_t src;
        if ((rc = get_tag(m, v, "source", &src))) return rc;
        if (str_is(&d->nodes[src], "inline")) return write_tagged(m, v, "type", t, INLINE, NF(INLINE));
        if (str_is(&d->nodes[src], "uri")) return write_tagged(m, v, "type", t, URI, NF(URI));
        return schema_err(m, src, "unknown video source");
    }
    if (str_is(tn, "structured")) {
        static const mfield F[] = {F_("type", K_TAG, P_REQ), F_("data", K_OPAQUE, P_REQ)};
        return write_tagged(m, v, "type", t, F, NF(F));
    }
    if (str_is(tn, "skill_context")) {
        static const mfield F[] = {
            F_("type", K_TAG, P_REQ), FS("skill_key", K_STRUCT, P_REQ, w_skill_key), F_("text", K_STR, P_REQ),
        };
        return write_tagged(m, v, "type", t, F, NF(F));
    }
    return schema_err(m, t, "unknown content block type");
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
    if (n->type != J_ARR)
        return schema_err(m, v, codec ? "content must be a string or an array of blocks" : "expected an array of blocks");
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

/* ------------------------------------------------------- assistant blocks */

/* ProviderMeta, internally tagged by "provider" (types.rs ProviderMeta). */
static int w_provider_meta(mctx *m, uint32_t v)
{
    uint32_t t;
    int rc = get_tag(m, v, "provider", &t);
    if (rc) return rc;
    const mob_node *tn = &m->d->nodes[t];
    if (str_is(tn, "anthropic")) {
        static const mfield F[] = {F_("signature", K_STR, P_REQ), F_("provider", K_STR, P_REQ)};
        return write_pass(m, v, F, NF(F));
    }
    if (str_is(tn, "anthropic_redacted")) {
        static const mfield F[] = {F_("data", K_STR, P_REQ), F_("provider", K_STR, P_REQ)};
        return write_pass(m, v, F, NF(F));
    }
    if (str_is(tn, "anthropic_compaction")) {
        static const mfield F[] = {F_("content", K_STR, P_REQ), F_("provider", K_STR, P_REQ)};
        return write_pass(m, v, F, NF(F));
    }
    if (str_is(tn, "gemini")) {
        static const mfield F[] = {F_("thoughtSignature", K_STR, P_REQ), F_("provider", K_STR, P_REQ)};
        return write_pass(m, v, F, NF(F));
    }
    if (str_is(tn, "open_ai")) {
        static const mfield F[] = {
            F_("id", K_STR, P_REQ), F_("encrypted_content", K_STR, P_OPT), F_("phase", K_STR, P_OPT),
            F_("response_id", K_STR, P_OPT), F_("provider", K_STR, P_REQ),
        };
        return write_pass(m, v, F, NF(F));
    }
    if (str_is(tn, "open_ai_response")) {
        static const mfield F[] = {F_("response_id", K_STR, P_REQ), F_("provider", K_STR, P_REQ)};
        return write_pass(m, v, F, NF(F));
    }
    return schema_err(m, t, "unknown provider");
}

static const char *const SERVER_TOOL_KINDS[] = {"web_search", "google_search", NULL};

/* ServerToolKind: {"kind":"web_search"} | {"kind":"google_search"} |
 * {"kind":"provider_native","name":...}; a legacy plain string maps by
 * name (types.rs deserialize_server_tool_kind). */
static int w_server_tool_kind(mctx *m, uint32_t v)
{
    mob_doc *d = m->d;
    const mob_node *n = &d->nodes[v];
    if (n->type == J_STR) {
        if (in_enum(n, SERVER_TOOL_KINDS)) {
            OUT(out_lit(m, "{\"kind\":"));
            OUT(out_str_node(m, v));
            OUT(mob_out_byte(m->o, '}'));
        } else {
            OUT(out_lit(m, "{\"kind\":\"provider_native\",\"name\":"));
            OUT(out_str_node(m, v));
            OUT(mob_out_byte(m->o, '}'));
        }
        return 0;
    }
    if (n->type != J_OBJ) return schema_err(m, v, "server tool kind must be an object or string");
    uint32_t t;
    int rc = get_tag(m, v, "kind", &t);
    if (rc) return rc;
    if (in_enum(&d->nodes[t], SERVER_TOOL_KINDS)) {
        static const mfield F[] = {F_("kind", K_TAG, P_REQ)};
        return write_tagged(m, v, "kind", t, F, NF(F));
    }
    if (str_is(&d->nodes[t], "provider_native")) {
        static const mfield F[] = {F_("kind", K_TAG, P_REQ), F_("name", K_STR, P_REQ)};
        return write_tagged(m, v, "kind", t, F, NF(F));
    }
    return schema_err(m, t, "unknown server tool kind");
}

static int w_blob_ref(mctx *m, uint32_t v)
{
    static const mfield F[] = {F_("blob_id", K_STR, P_REQ), F_("media_type", K_STR, P_REQ)};
    return write_struct(m, v, F, NF(F));
}

static const char *const TRANSCRIPT_SOURCES[] = {"spoken", NULL};

/* The "data" object of an assistant block of type `bt`. */
static int w_assistant_data(mctx *m, uint32_t bt, uint32_t v)
{
    const mob_node *tn = &m->d->nodes[bt];
    if (m->d->nodes[v].type != J_OBJ) return schema_err(m, v, "assistant block data must be an object");
    if (str_is(tn, "text")) {
        static const mfield F[] = {F_("text", K_STR, P_REQ), FS("meta", K_STRUCT, P_OPT, w_provider_meta)};
        return write_struct(m, v, F, NF(F));
    }
    if (str_is(tn, "transcript")) {
        static const mfield F[] = {
            F_("text", K_STR, P_REQ), FE("source", P_REQ, TRANSCRIPT_SOURCES),
            FS("meta", K_STRUCT, P_OPT, w_provider_meta),
        };
        return write_struct(m, v, F, NF(F));
    }
    if (str_is(tn, "reasoning")) {
        static const mfield F[] = {FD("text", K_STR, "\"\""), FS("meta", K_STRUCT, P_OPT, w_provider_meta)};
        return write_struct(m, v, F, NF(F));
    }
    if (str_is(tn, "tool_use")) {
        static const mfield F[] = {
            F_("id", K_STR, P_REQ), F_("name", K_STR, P_REQ), F_("args", K_OPAQUE, P_REQ),
            FS("meta", K_STRUCT, P_OPT, w_provider_meta),
        };
        return write_struct(m, v, F, NF(F));
    }
    if (str_is(tn, "server_tool_content")) {
        /* `kind` also accepted under its serde alias `name` */
        static const mfield F[] = {
            F_("id", K_STR, P_OPT), FS("kind", K_FN, P_REQ, w_server_tool_kind),
            F_("content", K_VALUE, P_REQ), FS("meta", K_STRUCT, P_OPT, w_provider_meta),
        };
        static const mfield FA[] = {
            F_("id", K_STR, P_OPT), FS("name", K_FN, P_REQ, w_server_tool_kind),
            F_("content", K_VALUE, P_REQ), FS("meta", K_STRUCT, P_OPT, w_provider_meta),
        };
        uint32_t kind = member(m->d, v, "kind"), alias = member(m->d, v, "name");
        if (kind && alias) return schema_err(m, alias, "duplicate field `kind`");
        if (!alias) return write_struct(m, v, F, NF(F));
        /* write under the canonical key: reuse FA but rename on output */
        {
            int first = 1;
            OUT(mob_out_byte(m->o, '{'));
            uint32_t id = member(m->d, v, "id");
            if (id && m->d->nodes[id].type != J_NULL) {
                if (m->d->nodes[id].type != J_STR) return schema_err(m, id, "expected a string");
                OUT(out_key(m, "id", &first));
                OUT(out_str_node(m, id));
            }
            OUT(out_key(m, "kind", &first));
            int rc = w_server_tool_kind(m, alias);
            if (rc) return rc;
            static const mfield REST[] = {
                F_("id", K_SKIP, P_OPT), F_("name", K_SKIP, P_REQ),
                F_("content", K_VALUE, P_REQ), FS("meta", K_STRUCT, P_OPT, w_provider_meta),
            };
            (void)FA;
            if ((rc = write_fields(m, v, REST, NF(REST), &first))) return rc;
            OUT(mob_out_byte(m->o, '}'));
            return 0;
        }
    }
    if (str_is(tn, "image")) {
        static const mfield F[] = {
            F_("image_id", K_STR, P_REQ), FS("blob_ref", K_STRUCT, P_REQ, w_blob_ref),
            F_("media_type", K_STR, P_REQ), F_("width", K_U32, P_REQ), F_("height", K_U32, P_REQ),
            FS("revised_prompt", K_STRUCT, P_REQ, w_pass_any), FS("meta", K_STRUCT, P_REQ, w_pass_any),
        };
        return write_struct(m, v, F, NF(F));
    }
    return schema_err(m, bt, "unknown assistant block type");
}

/* AssistantBlock, adjacently tagged {"block_type": T, "data": {...}}. */
static int w_assistant_block(mctx *m, uint32_t v)
{
    uint32_t bt;
    int rc = get_tag(m, v, "block_type", &bt);
    if (rc) return rc;
    uint32_t data = member(m->d, v, "data");
    if (!data) return schema_err(m, v, "assistant block without data");
    static const mfield F[] = {F_("block_type", K_TAG, P_REQ), F_("data", K_SKIP, P_REQ)};
    int first = 0;
    OUT(out_lit(m, "{\"block_type\":"));
    OUT(out_str_node(m, bt));
    OUT(out_lit(m, ",\"data\":"));
    if ((rc = w_assistant_data(m, bt, data))) return rc;
    if ((rc = write_fields(m, v, F, NF(F), &first))) return rc;
    OUT(mob_out_byte(m->o, '}'));
    return 0;
}

/* ---------------------------------------------------------- notice blocks */

static const char *const DIRECTIONS[] = {"incoming", "outgoing", "internal", NULL};

static int w_peer(mctx *m, uint32_t v)
{
    static const mfield F[] = {F_("id", K_STR, P_REQ), F_("display_name", K_STR, P_OPT)};
    return write_pass(m, v, F, NF(F));
}

/* SystemNoticeBlock, tagged by "type"; an unrecognised type becomes
 * {"type":"unknown","summary"?:..., "payload": <whole object>} (types.rs
 * SystemNoticeBlock::unknown_from_value). */
static int w_notice_block(mctx *m, uint32_t v)
{
    mob_doc *d = m->d;
    uint32_t t = member(d, v, "type");
    if (!t) return schema_err(m, v, "missing system notice block type");
    const mob_node *tn = &d->nodes[t];
    if (tn->type == J_STR) {
        if (str_is(tn, "comms")) {
            static const mfield F[] = {
                F_("type", K_STR, P_REQ), F_("kind", K_STR, P_REQ), FE("direction", P_REQ, DIRECTIONS),
                FS("peer", K_STRUCT, P_OPT, w_peer), F_("sender_taint", K_STR, P_OPT),
                F_("request_id", K_STR, P_OPT), F_("intent", K_STR, P_OPT), F_("status", K_STR, P_OPT),
                F_("summary", K_STR, P_OPT), F_("payload", K_VALUE, P_OPTV),
                F_("content", K_BLOCKLIST, P_NONEMPTY),
            };
            return write_pass(m, v, F, NF(F));
        }
        if (str_is(tn, "external_event")) {
            static const mfield F[] = {
                F_("type", K_STR, P_REQ), F_("source", K_STR, P_REQ), F_("event_type", K_STR, P_REQ),
                F_("summary", K_STR, P_OPT), F_("body", K_STR, P_OPT), F_("payload", K_VALUE, P_OPTV),
                F_("content", K_BLOCKLIST, P_NONEMPTY),
            };
            return write_pass(m, v, F, NF(F));
        }
        if (str_is(tn, "tool_config")) {
            static const mfield F[] = {F_("type", K_STR, P_REQ), F_("payload", K_VALUE, P_REQ)};
            return write_pass(m, v, F, NF(F));
        }
        if (str_is(tn, "mcp")) {
            static const mfield F[] = {
                F_("type", K_STR, P_REQ), F_("server_id", K_STR, P_OPT), F_("operation", K_STR, P_OPT),
                F_("phase", K_STR, P_OPT), FD("persisted", K_BOOL, "false"), F_("detail", K_STR, P_OPT),
                F_("pending_sources", K_STRS, P_NONEMPTY),
            };
            return write_pass(m, v, F, NF(F));
        }
        if (str_is(tn, "background_job")) {
            static const mfield F[] = {
                F_("type", K_STR, P_REQ), F_("job_id", K_STR, P_REQ), F_("display_name", K_STR, P_OPT),
                F_("status", K_STR, P_REQ), F_("detail", K_STR, P_OPT),
            };
            return write_pass(m, v, F, NF(F));
        }
        if (str_is(tn, "auth")) {
            static const mfield F[] = {
                F_("type", K_STR, P_REQ), F_("state", K_STR, P_REQ), F_("binding", K_STR, P_OPT),
                F_("detail", K_STR, P_OPT),
            };
            return write_pass(m, v, F, NF(F));
        }
        if (str_is(tn, "runtime_notice")) {
            static const mfield F[] = {
                F_("type", K_STR, P_REQ), F_("category", K_STR, P_REQ), F_("detail", K_STR, P_OPT),
                F_("payload", K_VALUE, P_OPTV),
            };
            return write_pass(m, v, F, NF(F));
        }
        if (str_is(tn, "unknown")) {
            static const mfield F[] = {
                F_("type", K_STR, P_REQ), F_("summary", K_STR, P_OPT), F_("payload", K_VALUE, P_OPTV),
            };
            return write_pass(m, v, F, NF(F));
        }
    } else {
        return schema_err(m, t, "system notice block type must be a string");
    }
    /* unrecognised type: summary = first string among summary/body/detail */
    OUT(out_lit(m, "{\"type\":\"unknown\""));
    static const char *const SUMMARY_KEYS[] = {"summary", "body", "detail"};
    for (int k = 0; k < 3; k++) {
        uint32_t s = member(d, v, SUMMARY_KEYS[k]);
        if (s) {
            if (d->nodes[s].type == J_STR) {
                OUT(out_lit(m, ",\"summary\":"));
                OUT(out_str_node(m, s));
            }
            break;
        }
    }
    OUT(out_lit(m, ",\"payload\":"));
    OUT(mob_out_value(m->o, d, v));
    OUT(mob_out_byte(m->o, '}'));
    return 0;
}

/* --------------------------------------------------------------- messages */

static const char *const NOTICE_KINDS[] = {
    "generic", "comms", "external_event", "mcp_pending", "mcp", "background_job",
    "tool_scope", "tool_scope_warning", "auth_reauth_required", NULL,
};
static const char *const STOP_REASONS[] = {
    "end_turn", "tool_use", "max_tokens", "stop_sequence", "content_filter", "cancelled", NULL,
};
static const char *const MUTATION_KINDS[] = {
    "unspecified", "direct_mutation", "explicit_build", "default_build", "wasm_default_build",
    "runtime_context_append", "runtime_steer_cleanup", NULL,
};
static const char *const SALIENCES[] = {"background", "normal", "important", "urgent", NULL};
static const char *const TRANSCRIPT_ROLES[] = {"conversational", "compaction_summary", "injected_context", NULL};

static int w_system_identity(mctx *m, uint32_t v)
{
    static const mfield F[] = {F_("source", K_STR, P_OPT), F_("idempotency_key", K_STR, P_OPT)};
    return write_pass(m, v, F, NF(F));
}

static int w_prompt_version(mctx *m, uint32_t v)
{
    static const mfield F[] = {F_("key", K_STR, P_REQ), F_("version", K_U64_NZ, P_REQ)};
    return write_pass(m, v, F, NF(F));
}

static int w_message_identity(mctx *m, uint32_t v)
{
    static const mfield F[] = {
        F_("interaction_id", K_STR, P_OPT), F_("run_id", K_STR, P_OPT), F_("objective_id", K_STR, P_OPT),
    };
    return write_pass(m, v, F, NF(F));
}

static int w_render_metadata(mctx *m, uint32_t v)
{
    /* class: any string -- the shared vectors use values outside RenderClass */
    static const mfield F[] = {F_("class", K_STR, P_REQ), FX("salience", K_ENUM, P_DEF, SALIENCES, "\"normal\"")};
    return write_pass(m, v, F, NF(F));
}

static int w_tool_result(mctx *m, uint32_t v)
{
    static const mfield F[] = {
        F_("tool_use_id", K_STR, P_REQ), F_("content", K_CONTENT, P_REQ), FD("is_error", K_BOOL, "false"),
    };
    return write_struct(m, v, F, NF(F));
}

static int w_tool_call(mctx *m, uint32_t v)
{
    static const mfield F[] = {F_("id", K_STR, P_REQ), F_("name", K_STR, P_REQ), F_("args", K_VALUE, P_REQ)};
    return write_struct(m, v, F, NF(F));
}

static int w_message(mctx *m, uint32_t v)
{
    mob_doc *d = m->d;
    if (d->nodes[v].type != J_OBJ) return schema_err(m, v, "a message must be a JSON object");
    uint32_t r;
    int rc = get_tag(m, v, "role", &r);
    if (rc) return rc;
    const mob_node *rn = &d->nodes[r];
    if (str_is(rn, "system")) {
        /* mutation_kind: the 0.7.x-0.8.10 field (gone at HEAD), between content
         * and created_at, omitted when unspecified; real 0.7.28 f2 heads hash it */
        static const mfield F[] = {
            F_("role", K_TAG, P_REQ), F_("content", K_STR, P_REQ),
            FX("mutation_kind", K_ENUM, P_NOTDEF, MUTATION_KINDS, "unspecified"), F_("created_at", K_TS, P_REQ),
            FS("identity", K_STRUCT, P_OPT, w_system_identity),
            FS("prompt_version", K_STRUCT, P_OPT, w_prompt_version),
        };
        return write_tagged(m, v, "role", r, F, NF(F));
    }
    if (str_is(rn, "system_notice")) {
        static const mfield F[] = {
            F_("role", K_TAG, P_REQ), FE("kind", P_REQ, NOTICE_KINDS), F_("body", K_STR, P_OPT),
            FS("blocks", K_BLOCKS, P_NONEMPTY, w_notice_block), F_("created_at", K_TS, P_REQ),
        };
        return write_tagged(m, v, "role", r, F, NF(F));
    }
    if (str_is(rn, "user")) {
        static const mfield F[] = {
            F_("role", K_TAG, P_REQ), F_("content", K_CONTENT, P_REQ),
            FS("render_metadata", K_STRUCT, P_OPT, w_render_metadata),
            FS("identity", K_STRUCT, P_IDENT, w_message_identity),
            FX("transcript_role", K_ENUM, P_NOTDEF, TRANSCRIPT_ROLES, "conversational"),
            F_("created_at", K_TS, P_REQ),
        };
        return write_tagged(m, v, "role", r, F, NF(F));
    }
    if (str_is(rn, "block_assistant")) {
        static const mfield F[] = {
            F_("role", K_TAG, P_REQ), FS("blocks", K_BLOCKS, P_REQ, w_assistant_block),
            FE("stop_reason", P_REQ, STOP_REASONS), FS("identity", K_STRUCT, P_IDENT, w_message_identity),
            F_("created_at", K_TS, P_REQ),
        };
        return write_tagged(m, v, "role", r, F, NF(F));
    }
    if (str_is(rn, "tool_results")) {
        static const mfield F[] = {
            F_("role", K_TAG, P_REQ), FS("results", K_BLOCKS, P_REQ, w_tool_result), F_("created_at", K_TS, P_REQ),
        };
        return write_tagged(m, v, "role", r, F, NF(F));
    }
    if (str_is(rn, "assistant")) { /* legacy, seed era (FORMAT.md §1.2) */
        static const mfield F[] = {
            F_("role", K_TAG, P_REQ), F_("content", K_STR, P_REQ),
            FS("tool_calls", K_BLOCKS, P_REQ, w_tool_call), F_("stop_reason", K_ENUM, P_REQ),
            F_("usage", K_VALUE, P_REQ),
        };
        (void)F;
    }
    return schema_err(m, r, "unknown message role");
}

int mob_canonical_message(mob_doc *d, mob_out *o, const uint8_t *msg, size_t len, int profile)
{
    int rc = mob_parse(d, msg, len);
    if (rc) return rc;
    mctx m = {d, o, profile};
    return w_message(&m, 0);
}
