/* message.c -- meerkat's typed decode, driven by the model tables.
 *
 * The model is data: engine/meerkat_model.json, turned into the tables of
 * meerkat_model.h (MT types, MF fields, MV variants, and a key matcher per
 * struct and enum) by build_canon.py at build time.  This file interprets
 * them; it knows no meerkat type by name.  The rules are the Python
 * reference's (engine/_canon_py/decode.py, whose docstring lists them per
 * type kind; docs/messages.md states them for users), and so are the error
 * texts, word for word and in the same order of checks:
 *
 *   struct   members matched by key (aliases too); unknown keys dropped
 *            (an error under deny_unknown_fields or in a strict decode); a
 *            known field given twice is an error outside notice blocks;
 *            fields written in declaration order with their defaults and
 *            skip rules; a flatten field decodes the members no other field
 *            took as its tagged enum, in place
 *   tagged   the tag member picks the variant, written tag first
 *   adjacent {tag: variant, content: struct}
 *   enum     a string, or {"variant": null} ({"variant": {}} too outside
 *            notice blocks)
 *   codec    a string is one text block; one text block is written as one
 *   value_first  the notice block: decoded as a serde Value (last duplicate
 *            wins everywhere below), else the fallback "unknown" block
 *   legacy   the server tool kind: the tagged enum or a legacy name
 *
 * Output goes straight into the mob_out buffer; where a rule depends on
 * what was written (skip an empty identity, a one-text-block content, a
 * collapsed image, an erased timestamp) the writer rolls the buffer back.
 * Errors return MOBSTORE_E_SCHEMA (or MOBSTORE_E_NOMEM) with the text in
 * d->msg: "$.path: detail".  Nothing here allocates except through mob_out.
 */
#define MOBSTORE_CANON_INTERNAL 1
#include "canon.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "meerkat_model.h"

/* scalars.c */
size_t mob_timestamp(const uint8_t *s, size_t n, char *out);
int mob_uuid(const uint8_t *s, size_t n, char *out);
int mob_is_blank(const uint8_t *s, size_t n);
size_t mob_utf8_chars(const uint8_t *s, size_t n);
int mob_skill_name_ok(const uint8_t *s, size_t n);
void mob_blob_id(const uint8_t *s, size_t n, const uint8_t *data, size_t dlen, char *out);
/* json_parse.c */
int mob_path_key(mob_out *o, const uint8_t *s, uint32_t n, int escaped);
int mob_path_index(mob_out *o, uint64_t i);

enum { CONTENT = 0, VALUE = 1, JSONMODE = 2 }; /* where serde decodes from (decode.py) */
#define NONE 0xFFFFFFFFu                       /* "no node" */
#define EPOCH "\"1970-01-01T00:00:00Z\""
#define MAX_PATH 256
#define MAXF 16

static const char STRICT_UNKNOWN[] =
    "unknown field %N (meerkat's typed decode drops it; a decode=\"strict\" session refuses it)";
static const char STRICT_DUP[] =
    "duplicate key %N (meerkat keeps only its last value; a decode=\"strict\" session refuses it)";

typedef struct {
    const uint8_t *s; /* key bytes, or NULL for an array index */
    uint32_t n;       /* key length, or the index */
    uint8_t escaped;
} pstep;

typedef struct {
    mob_doc *d;
    mob_out *o;
    int digest;   /* f2, f3: inline images collapse, bookkeeping erased */
    int verbatim; /* f2: opaque slots copied from the input */
    int passes;   /* f3 2, bare 1: float re-parses in opaque slots */
    int strict;
    int erasing;  /* the value being decoded is replaced by the epoch (a f2/f3 created_at) */
    int depth;
    pstep path[MAX_PATH];
} mctx;

/* A filtered view of an object's members: those not matching `skip` (a tag
 * already read) and not taken by the fields of `exclude` (the struct that
 * flattens this view), recursively through `parent`. */
typedef struct mview {
    const char *skip;
    uint32_t skiplen;
    const mtype *exclude;
    const struct mview *parent;
} mview;

/* ------------------------------------------------------------ errors */

static void push_name(mctx *m, const char *s, uint32_t n, int escaped)
{
    if (m->depth < MAX_PATH) m->path[m->depth] = (pstep){(const uint8_t *)s, n, (uint8_t)escaped};
    m->depth++;
}

static void push_index(mctx *m, uint32_t i)
{
    if (m->depth < MAX_PATH) m->path[m->depth] = (pstep){NULL, i, 0};
    m->depth++;
}

static inline void pop(mctx *m) { m->depth--; }

static const char *kind_of(const mob_node *n)
{
    switch (n->type) {
    case J_NULL: return "null";
    case J_FALSE:
    case J_TRUE: return "a boolean";
    case J_NUM: return n->numkind == MOB_NUM_F64 ? "a float" : "an integer";
    case J_STR: return "a string";
    case J_ARR: return "an array";
    }
    return "an object";
}

/* d->msg = "$.path: " + fmt, where %s is a C string, %q a (char *, int)
 * quoted serde-style, %N a string node quoted, %K a node's kind, %V a number
 * node's integer value, %d an int.  Returns MOBSTORE_E_SCHEMA. */
static int fail(mctx *m, const char *fmt, ...)
{
    mob_doc *d = m->d;
    mob_out *e = &d->msg;
    e->len = 0;
    e->oom = 0;
    int bad = mob_out_byte(e, '$');
    for (int i = 0; i < m->depth && i < MAX_PATH && !bad; i++) {
        const pstep *st = &m->path[i];
        bad = st->s ? mob_path_key(e, st->s, st->n, st->escaped) : mob_path_index(e, st->n);
    }
    bad = bad || mob_out_bytes(e, ": ", 2);
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f && !bad; f++) {
        if (*f != '%') {
            bad = mob_out_byte(e, (uint8_t)*f);
            continue;
        }
        char buf[32];
        switch (*++f) {
        case 's': bad = mob_out_cstr(e, va_arg(ap, const char *)); break;
        case 'q': {
            const char *s = va_arg(ap, const char *);
            int n = va_arg(ap, int);
            bad = mob_out_string(e, (const uint8_t *)s, (size_t)n, 1);
            break;
        }
        case 'N': {
            const mob_node *n = &d->nodes[va_arg(ap, uint32_t)];
            bad = mob_out_string(e, n->v.s, n->len, n->escaped);
            break;
        }
        case 'K': bad = mob_out_cstr(e, kind_of(&d->nodes[va_arg(ap, uint32_t)])); break;
        case 'V': {
            const mob_node *n = &d->nodes[va_arg(ap, uint32_t)];
            size_t k = n->numkind == MOB_NUM_U64 ? mob_format_u64(n->v.u, buf) : mob_format_i64(n->v.i, buf);
            bad = mob_out_bytes(e, buf, k);
            break;
        }
        case 'd': bad = mob_out_bytes(e, buf, (size_t)snprintf(buf, sizeof buf, "%d", va_arg(ap, int))); break;
        }
    }
    va_end(ap);
    if (bad || mob_out_byte(e, 0)) {
        d->err = MOBSTORE_E_NOMEM;
        return MOBSTORE_E_NOMEM;
    }
    e->len--;
    d->err = MOBSTORE_E_SCHEMA;
    return MOBSTORE_E_SCHEMA;
}

static int nomem(mctx *m)
{
    m->d->err = MOBSTORE_E_NOMEM;
    return MOBSTORE_E_NOMEM;
}

#define OUT(call)                  \
    do {                           \
        if (call) return nomem(m); \
    } while (0)
#define TRY(call)              \
    do {                       \
        int rc_ = (call);      \
        if (rc_) return rc_;   \
    } while (0)

/* ------------------------------------------------------------ helpers */

static inline const mob_node *N(mctx *m, uint32_t i) { return &m->d->nodes[i]; }

static inline int str_eq(const mob_node *n, const char *s, uint32_t len)
{
    return n->type == J_STR && n->len == len && memcmp(n->v.s, s, len) == 0;
}

static inline int kmatch(const mtype *t, const mob_node *k) { return t->match(k->v.s, k->len); }

static int in_view(const mview *v, const mob_node *k)
{
    for (; v; v = v->parent) {
        if (v->skip && k->len == v->skiplen && memcmp(k->v.s, v->skip, v->skiplen) == 0) return 0;
        if (v->exclude && kmatch(v->exclude, k) >= 0) return 0;
    }
    return 1;
}

#define FOR_MEMBERS(m, obj, key)                                                            \
    for (uint32_t key = (obj) + 1, left_ = (obj) == NONE ? 0 : N(m, obj)->len; left_;        \
         left_--, key = N(m, key + 1)->next)

/* Value node of the last member `name` of obj, or NONE. */
static uint32_t last_member(mctx *m, uint32_t obj, const char *name, uint32_t len)
{
    uint32_t found = NONE;
    FOR_MEMBERS(m, obj, k) if (str_eq(N(m, k), name, len)) found = k + 1;
    return found;
}

static int out_key(mctx *m, const char *name, uint32_t n, int *first)
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

static inline int out_str(mctx *m, uint32_t i)
{
    const mob_node *n = N(m, i);
    return mob_out_string(m->o, n->v.s, n->len, n->escaped);
}

/* Strict decode: no duplicated key anywhere under node v (decode.py _no_dups:
 * the object's own keys first, then its members in order). */
static int no_dups(mctx *m, uint32_t v)
{
    const mob_node *n = N(m, v);
    if (n->type == J_ARR) {
        uint32_t c = v + 1;
        for (uint32_t i = 0; i < n->len; i++) {
            push_index(m, i);
            TRY(no_dups(m, c));
            pop(m);
            c = N(m, c)->next;
        }
    } else if (n->type == J_OBJ && n->len) {
        uint32_t cnt = n->len;
        if (cnt > 1) {
            /* the earliest member whose key occurred before it */
            uint32_t *order = m->d->scratch;
            mob_sort_keys(m->d, v, order);
            uint32_t dup = NONE;
            for (uint32_t k = 1; k < cnt; k++)
                if (mob_key_cmp(N(m, order[k - 1]), N(m, order[k])) == 0 && (dup == NONE || order[k] < dup))
                    dup = order[k] > order[k - 1] ? order[k] : order[k - 1];
            if (dup != NONE) return fail(m, STRICT_DUP, dup);
        }
        FOR_MEMBERS(m, v, k) {
            const mob_node *kn = N(m, k);
            push_name(m, (const char *)kn->v.s, kn->len, kn->escaped);
            TRY(no_dups(m, k + 1));
            pop(m);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ scalars */

static const char *const SCALAR_LABEL[] = {
    [S_UUID] = "uuid", [S_TIMESTAMP] = "timestamp", [S_NONBLANK] = "nonblank string",
    [S_PROMPT_TEXT] = "prompt text", [S_SKILL_NAME] = "skill name",
};
static const char *const SCALAR_HINT[] = {
    [S_UUID] = "32 hex digits, plain, hyphenated, in braces or after urn:uuid:",
    [S_TIMESTAMP] = "an RFC 3339 date-time such as 2026-01-31T12:00:00Z",
    [S_NONBLANK] = "must not be empty or blank",
    [S_PROMPT_TEXT] = "must not be blank, at most 32000 characters",
    [S_SKILL_NAME] = "a lowercase slug of a-z, 0-9 and single inner '-'",
};

static int dec_scalar(mctx *m, int sc, uint32_t v)
{
    const mob_node *n = N(m, v);
    switch (sc) {
    case S_STRING:
        if (n->type != J_STR) return fail(m, "expected a string, found %K", v);
        OUT(out_str(m, v));
        return 0;
    case S_BOOL:
        if (n->type != J_TRUE && n->type != J_FALSE) return fail(m, "expected a boolean, found %K", v);
        OUT(mob_out_cstr(m->o, n->type == J_TRUE ? "true" : "false"));
        return 0;
    case S_U32:
    case S_U64:
    case S_U64_NONZERO: {
        uint64_t hi = sc == S_U32 ? 0xFFFFFFFFull : UINT64_MAX, lo = sc == S_U64_NONZERO;
        const char *range = sc == S_U32 ? "[0, 4294967295]" : sc == S_U64 ? "[0, 18446744073709551615]"
                                                                          : "[1, 18446744073709551615]";
        if (n->type != J_NUM || n->numkind == MOB_NUM_F64)
            return fail(m, "expected an integer in %s, found %K", range, v);
        if (n->numkind == MOB_NUM_I64 || n->v.u < lo || n->v.u > hi)
            return fail(m, "expected an integer in %s, found %V", range, v);
        OUT(mob_out_number(m->o, n));
        return 0;
    }
    case S_VALUE:
        if (m->strict) TRY(no_dups(m, v));
        OUT(mob_out_value(m->o, m->d, v, 0, 0));
        return 0;
    case S_RAW: {
        if (m->strict) TRY(no_dups(m, v));
        if (m->verbatim) {
            OUT(mob_out_bytes(m->o, m->d->input + n->src, n->src_end - n->src));
            return 0;
        }
        int rc = mob_out_value(m->o, m->d, v, m->passes, 0);
        if (rc == MOBSTORE_E_NOMEM) return nomem(m);
        if (rc) return fail(m, "a float in this opaque slot overflows when serde_json parses it again");
        return 0;
    }
    }
    if (n->type != J_STR) return fail(m, "expected a string, found %K", v);
    char buf[48];
    size_t k = 0;
    int ok = 1;
    switch (sc) {
    case S_TIMESTAMP:
        if (m->erasing) { /* emit_field writes the epoch in its place: validate only */
            ok = mob_timestamp(n->v.s, n->len, NULL) != 0;
            if (ok) return 0;
            break;
        }
        ok = (k = mob_timestamp(n->v.s, n->len, buf)) != 0;
        break;
    case S_UUID: ok = mob_uuid(n->v.s, n->len, buf) == 0; k = 38; break;
    case S_NONBLANK: ok = !mob_is_blank(n->v.s, n->len); break;
    case S_PROMPT_TEXT: ok = !mob_is_blank(n->v.s, n->len) && mob_utf8_chars(n->v.s, n->len) <= 32000; break;
    case S_SKILL_NAME: ok = mob_skill_name_ok(n->v.s, n->len); break;
    }
    if (!ok) return fail(m, "not a valid %s: %N (%s)", SCALAR_LABEL[sc], v, SCALAR_HINT[sc]);
    if (k) OUT(mob_out_bytes(m->o, buf, k));
    else OUT(out_str(m, v));
    return 0;
}

/* ------------------------------------------------------------ composites */

static int dec_type(mctx *m, int sc, int ti, uint32_t v, int mode);
static int dec_tagged(mctx *m, const mtype *t, uint32_t v, int mode, int root);
static int dec_fields(mctx *m, const mtype *t, uint32_t obj, const mview *view, int mode, int *first);

static int dec_enum(mctx *m, const mtype *t, uint32_t v, int mode)
{
    const mob_node *n = N(m, v);
    uint32_t name = v;
    if (n->type == J_OBJ) {
        uint32_t count = mode == VALUE ? mob_distinct_keys(m->d, v, 0) : n->len;
        if (count != 1) return fail(m, "expected one of %s, found an object with %d keys", t->expected, (int)count);
        uint32_t inner = NONE;
        FOR_MEMBERS(m, v, k) {
            name = k;
            inner = k + 1; /* the last one: a duplicated key keeps its last value */
        }
        const mob_node *in = N(m, inner);
        if (!(in->type == J_NULL || (mode != JSONMODE && in->type == J_OBJ && in->len == 0)))
            return fail(m, "expected one of %s, found a map whose value is %K", t->expected, inner);
    } else if (n->type != J_STR) {
        return fail(m, "expected one of %s, found %K", t->expected, v);
    }
    if (kmatch(t, N(m, name)) < 0)
        return fail(m, "unknown variant %N (expected one of %s)", name, t->expected);
    OUT(out_str(m, name));
    return 0;
}

/* The bytes written at [from, len) equal s? */
static inline int wrote(const mob_out *o, size_t from, const char *s, size_t n)
{
    return o->len - from == n && memcmp(o->buf + from, s, n) == 0;
}

static int dec_tagged_parts(mctx *m, const mtype *t, uint32_t obj, const mview *view, int mode, int *first,
                            int root, const mvariant **picked);

/* Field f with value node v (NONE: missing): its default, the profile steps
 * and the skip rules, written as ,"key":value unless skipped (decode.py
 * _emit).  The caller pushed the value's path step; the struct's own path is
 * one step up (missing-field errors name it). */
static int emit_field(mctx *m, const mfield *f, uint32_t v, int mode, int *first)
{
    mob_out *o = m->o;
    int was_first = *first;
    size_t mark = o->len;
    if (v == NONE) {
        if (f->option) return 0;
        /* defaults the rules below would write and then take back at once */
        if (f->missing == M_DEFAULT &&
            ((m->digest && f->digest == D_CLEAR) || (f->list && f->skip == K_EMPTY) ||
             (f->scalar == S_TYPE && !f->list && f->skip == K_DEFAULT && MT[f->type].kind == T_ENUM)))
            return 0;
        if (f->missing == M_ERROR) {
            pop(m);
            return fail(m, "missing field %q", f->name, (int)f->nlen);
        }
        OUT(out_key(m, f->name, f->nlen, first));
        if (f->missing == M_NOW) {
            /* serde default = message_timestamp_now (meerkat-core/src/types.rs:21-23@c7b8518b4) */
            if (!(m->digest && f->digest == D_EPOCH)) {
                pop(m);
                return fail(m, "missing field %q: meerkat decodes it as the current time, so this profile "
                               "has no reproducible digest", f->name, (int)f->nlen);
            }
            OUT(mob_out_cstr(o, EPOCH));
        } else if (f->list) {
            OUT(mob_out_bytes(o, "[]", 2));
        } else if (f->scalar == S_STRING) {
            OUT(mob_out_bytes(o, "\"\"", 2));
        } else if (f->scalar == S_BOOL) {
            OUT(mob_out_cstr(o, "false"));
        } else if (MT[f->type].kind == T_ENUM) {
            const mvariant *dv = &MV[MT[f->type].first + MT[f->type].deflt];
            OUT(mob_out_byte(o, '"') || mob_out_bytes(o, dv->name, dv->nlen) || mob_out_byte(o, '"'));
        } else {
            int sub = 1;
            OUT(mob_out_byte(o, '{'));
            TRY(dec_fields(m, &MT[f->type], NONE, NULL, mode, &sub));
            OUT(mob_out_byte(o, '}'));
        }
    } else {
        const mob_node *vn = N(m, v);
        if (vn->type == J_NULL && f->option && !f->present_null) return 0;
        OUT(out_key(m, f->name, f->nlen, first));
        if (f->list) {
            if (vn->type != J_ARR) return fail(m, "expected an array, found %K", v);
            OUT(mob_out_byte(o, '['));
            uint32_t c = v + 1;
            for (uint32_t j = 0; j < vn->len; j++) {
                if (j) OUT(mob_out_byte(o, ','));
                push_index(m, j);
                TRY(dec_type(m, f->scalar, f->type, c, mode));
                pop(m);
                c = N(m, c)->next;
            }
            OUT(mob_out_byte(o, ']'));
        } else if (f->scalar == S_STRING && vn->type == J_STR) { /* the common case, without the dispatch */
            OUT(mob_out_string(o, vn->v.s, vn->len, vn->escaped));
        } else {
            m->erasing = m->digest && f->digest == D_EPOCH;
            int rc = dec_type(m, f->scalar, f->type, v, mode);
            m->erasing = 0;
            if (rc) return rc;
        }
    }
    /* profile steps, then skip rules, on what was just written */
    size_t vstart = mark + (was_first ? 0 : 1) + f->nlen + 3;
    if (m->digest && f->digest == D_CLEAR) {
        o->len = mark;
        *first = was_first;
        return 0;
    }
    if (m->digest && f->digest == D_EPOCH) {
        o->len = vstart;
        OUT(mob_out_cstr(o, EPOCH));
        return 0;
    }
    int skip = 0;
    switch (f->skip) {
    case K_EMPTY: skip = wrote(o, vstart, "[]", 2); break;
    case K_EMPTY_OBJECT: skip = wrote(o, vstart, "{}", 2); break;
    case K_DEFAULT: {
        const mvariant *dv = &MV[MT[f->type].first + MT[f->type].deflt];
        skip = o->len - vstart == (size_t)dv->nlen + 2 && memcmp(o->buf + vstart + 1, dv->name, dv->nlen) == 0;
        break;
    }
    }
    if (skip) {
        o->len = mark;
        *first = was_first;
    }
    return 0;
}

/* A struct written as a JSON array, elements [from, len) of arr: element i
 * is field i, a missing trailing element takes the field's #[serde(default)]
 * (else an error), extra elements are an error (serde_derive's visit_seq).
 * Path indices count from the array's start. */
static int dec_positional(mctx *m, const mtype *t, uint32_t arr, uint32_t from, int mode, int *first)
{
    const mob_node *an = N(m, arr);
    uint32_t n = an->len - from;
    if (t->flat >= 0) return fail(m, "expected an object, found an array");
    if (n > t->count)
        return fail(m, "expected at most %d positional fields (%s), found %d", (int)t->count, t->expected, (int)n);
    uint32_t c = arr + 1;
    for (uint32_t j = 0; j < from; j++) c = N(m, c)->next;
    for (uint32_t i = 0; i < t->count; i++) {
        const mfield *f = &MF[t->first + i];
        if (i < n) {
            push_index(m, i + from);
            TRY(emit_field(m, f, c, mode, first));
            pop(m);
            c = N(m, c)->next;
        } else if (f->missing == M_DEFAULT || f->missing == M_NOW) {
            push_index(m, i + from);
            TRY(emit_field(m, f, NONE, mode, first));
            pop(m);
        } else {
            return fail(m, "missing positional field %q (element %d)", f->name, (int)f->nlen, (int)(i + from));
        }
    }
    return 0;
}

/* The fields of struct t from the members of obj in `view` (or from the
 * array obj, positionally), each as ,"key":value in declaration order. */
static int dec_fields(mctx *m, const mtype *t, uint32_t obj, const mview *view, int mode, int *first)
{
    if (obj != NONE && N(m, obj)->type == J_ARR) return dec_positional(m, t, obj, 0, mode, first);
    uint32_t slot[MAXF];
    for (int i = 0; i < t->count; i++) slot[i] = NONE;
    const mfield *fields = &MF[t->first];
    FOR_MEMBERS(m, obj, k) {
        const mob_node *kn = N(m, k);
        if (!in_view(view, kn)) continue;
        int fi = kmatch(t, kn);
        if (fi < 0) {
            if (t->flat >= 0) continue; /* the flattened enum's, or unknown to it */
            if (t->deny_unknown) return fail(m, "unknown field %N (expected one of %s)", k, t->expected);
            if (m->strict) return fail(m, STRICT_UNKNOWN, k);
            continue;
        }
        if (slot[fi] != NONE) {
            if (mode != VALUE) return fail(m, "duplicate field %q", fields[fi].name, (int)fields[fi].nlen);
            if (m->strict) return fail(m, STRICT_DUP, k);
        }
        slot[fi] = k + 1;
    }
    for (int i = 0; i < t->count; i++) {
        const mfield *f = &fields[i];
        if (f->flatten) {
            mview rest = {NULL, 0, t, view};
            TRY(dec_tagged_parts(m, &MT[f->type], obj, &rest, mode, first, 0, NULL));
            continue;
        }
        push_name(m, f->name, f->nlen, 0);
        TRY(emit_field(m, f, slot[i], mode, first));
        pop(m);
    }
    return 0;
}

/* positional: the struct may also be written as an array (not an adjacently
 * tagged variant: serde_derive gives those no visit_seq,
 * serde_derive/src/de/struct_.rs:70-75@v1.0.228). */
static int dec_struct(mctx *m, const mtype *t, uint32_t v, int mode, int positional)
{
    const mob_node *n = N(m, v);
    if (n->type != J_OBJ && !(n->type == J_ARR && t->flat < 0 && positional))
        return fail(m, "expected an object, found %K", v);
    int first = 1;
    OUT(mob_out_byte(m->o, '{'));
    TRY(dec_fields(m, t, v, NULL, mode, &first));
    OUT(mob_out_byte(m->o, '}'));
    return 0;
}

/* The one member `key` of obj in view: missing, or given twice, fails
 * (decode.py _present_once); *out = its (last) value node. */
static int present_once(mctx *m, uint32_t obj, const mview *view, const char *key, uint32_t klen, int mode,
                        uint32_t *out)
{
    uint32_t found = NONE, count = 0;
    FOR_MEMBERS(m, obj, k) {
        const mob_node *kn = N(m, k);
        if (kn->len == klen && kn->v.s[0] == (uint8_t)key[0] && memcmp(kn->v.s, key, klen) == 0 &&
            in_view(view, kn)) {
            found = k + 1;
            count++;
        }
    }
    if (!count) return fail(m, "missing field %q", key, (int)klen);
    if (count > 1) {
        if (mode != VALUE) return fail(m, "duplicate field %q", key, (int)klen);
        if (m->strict) return fail(m, STRICT_DUP, found - 1);
    }
    *out = found;
    return 0;
}

/* The variant of enum t that tag node v names: a string, or (index_ok: where
 * serde buffered the message) a variant index (decode.py _pick).  The caller
 * pushed the tag's path step. */
static int pick_variant(mctx *m, const mtype *t, uint32_t v, int index_ok, const mvariant **out)
{
    const mob_node *n = N(m, v);
    const mvariant *var;
    if (index_ok && n->type == J_NUM && n->numkind == MOB_NUM_U64 && n->v.u < t->count) {
        var = &MV[t->first + n->v.u];
    } else {
        if (n->type != J_STR)
            return fail(m, "expected a %s string (one of %s), found %K", t->what, t->expected, v);
        int vi = kmatch(t, n);
        if (vi < 0) return fail(m, "unknown %s %N (expected one of %s)", t->what, v, t->expected);
        var = &MV[t->first + vi];
    }
    if (var->reject) return fail(m, "%s", var->reject);
    *out = var;
    return 0;
}

static int out_tag(mctx *m, const mtype *t, const mvariant *var, int *first)
{
    OUT(out_key(m, t->tag, t->taglen, first));
    OUT(mob_out_byte(m->o, '"') || mob_out_bytes(m->o, var->name, var->nlen) || mob_out_byte(m->o, '"'));
    return 0;
}

static int dec_tagged_parts(mctx *m, const mtype *t, uint32_t obj, const mview *view, int mode, int *first,
                            int root, const mvariant **picked)
{
    const mvariant *var;
    const mob_node *on = N(m, obj);
    if (on->type == J_ARR) { /* positional: the tag is the first element (TaggedContentVisitor::visit_seq) */
        if (!on->len) return fail(m, "missing field %q", t->tag, (int)t->taglen);
        push_index(m, 0);
        TRY(pick_variant(m, t, obj + 1, !root, &var));
        pop(m);
        if (picked) *picked = var;
        TRY(out_tag(m, t, var, first));
        if (var->type < 0) {
            if (on->len > 1)
                return fail(m, "expected no positional fields after the tag of %s %q, found %d", t->what, var->name,
                            (int)var->nlen, (int)(on->len - 1));
            return 0;
        }
        return dec_positional(m, &MT[var->type], obj, 1, mode, first);
    }
    uint32_t tv;
    TRY(present_once(m, obj, view, t->tag, t->taglen, mode, &tv));
    push_name(m, t->tag, t->taglen, 0);
    TRY(pick_variant(m, t, tv, !root, &var));
    pop(m);
    if (picked) *picked = var;
    TRY(out_tag(m, t, var, first));
    mview sub = {t->tag, t->taglen, NULL, view};
    if (var->type < 0) { /* unit variant: serde ignores the other members */
        if (m->strict) FOR_MEMBERS(m, obj, k) if (in_view(&sub, N(m, k))) return fail(m, STRICT_UNKNOWN, k);
        return 0;
    }
    return dec_fields(m, &MT[var->type], obj, &sub, mode, first);
}

static int dec_tagged(mctx *m, const mtype *t, uint32_t v, int mode, int root)
{
    const mob_node *n = N(m, v);
    if (n->type != J_OBJ && n->type != J_ARR) return fail(m, "expected an object, found %K", v);
    mob_out *o = m->o;
    size_t start = o->len;
    int first = 1;
    const mvariant *var;
    OUT(mob_out_byte(o, '{'));
    TRY(dec_tagged_parts(m, t, v, NULL, mode, &first, root, &var));
    OUT(mob_out_byte(o, '}'));
    if (var->collapse && m->digest && n->type == J_OBJ) {
        /* an image whose (flattened) source is inline */
        const mtype *src_t = &MT[MF[MT[var->type].first + MT[var->type].flat].type];
        uint32_t src = last_member(m, v, src_t->tag, src_t->taglen);
        const mob_node *sn = N(m, src);
        int vi = sn->type == J_NUM ? (int)sn->v.u : kmatch(src_t, sn); /* validated above */
        const mvariant *sv = &MV[src_t->first + vi];
        if (sv->nlen == 6 && memcmp(sv->name, "inline", 6) == 0) {
            /* meerkat-core/src/session.rs:397-414@c7b8518b4: the block becomes its blob reference */
            uint32_t media = last_member(m, v, "media_type", 10), data = last_member(m, v, "data", 4);
            char id[72]; /* 71 characters + the NUL mob_blob_id writes */
            mob_blob_id(N(m, media)->v.s, N(m, media)->len, N(m, data)->v.s, N(m, data)->len, id);
            o->len = start;
            OUT(mob_out_cstr(o, "{\"type\":\"image\",\"media_type\":"));
            OUT(out_str(m, media));
            OUT(mob_out_cstr(o, ",\"source\":\"blob\",\"blob_id\":\""));
            OUT(mob_out_bytes(o, id, 71));
            OUT(mob_out_bytes(o, "\"}", 2));
        }
    }
    return 0;
}

/* {tag: variant, content: struct}: serde reads the tag as an enum (a string,
 * or a map with one key), or from an array [tag, content] as an identifier (a
 * string or a variant index). */
static int dec_adjacent(mctx *m, const mtype *t, uint32_t v, int mode)
{
    const mob_node *n = N(m, v);
    const mvariant *var;
    uint32_t cv;
    if (n->type == J_ARR) {
        if (!n->len) return fail(m, "missing field %q", t->tag, (int)t->taglen);
        push_index(m, 0);
        TRY(pick_variant(m, t, v + 1, 1, &var));
        pop(m);
        if (n->len < 2) return fail(m, "missing field %q", t->content, (int)t->clen);
        if (n->len > 2)
            return fail(m, "expected 2 positional fields (%s, %s), found %d", t->tag, t->content, (int)n->len);
        cv = N(m, v + 1)->next;
        push_index(m, 1);
    } else {
        if (n->type != J_OBJ) return fail(m, "expected an object, found %K", v);
        if (m->strict)
            FOR_MEMBERS(m, v, k) {
                const mob_node *kn = N(m, k);
                if (!(kn->len == t->taglen && memcmp(kn->v.s, t->tag, t->taglen) == 0) &&
                    !(kn->len == t->clen && memcmp(kn->v.s, t->content, t->clen) == 0))
                    return fail(m, STRICT_UNKNOWN, k);
            }
        uint32_t tv;
        TRY(present_once(m, v, NULL, t->tag, t->taglen, mode, &tv));
        push_name(m, t->tag, t->taglen, 0);
        const mob_node *tn = N(m, tv);
        if (tn->type == J_OBJ) { /* the enum's map form {"variant": null} */
            uint32_t count = mode == VALUE ? mob_distinct_keys(m->d, tv, 0) : tn->len;
            if (count != 1)
                return fail(m, "expected a %s string (one of %s), found an object with %d keys", t->what, t->expected,
                            (int)count);
            uint32_t key = NONE;
            FOR_MEMBERS(m, tv, k) key = k;
            const mob_node *in = N(m, key + 1);
            if (!(in->type == J_NULL || (mode != JSONMODE && in->type == J_OBJ && in->len == 0)))
                return fail(m, "expected a %s string (one of %s), found a map whose value is %K", t->what, t->expected,
                            key + 1);
            tv = key;
        }
        TRY(pick_variant(m, t, tv, 0, &var));
        pop(m);
        TRY(present_once(m, v, NULL, t->content, t->clen, mode, &cv));
        push_name(m, t->content, t->clen, 0);
    }
    mob_out *o = m->o;
    OUT(mob_out_bytes(o, "{\"", 2) || mob_out_bytes(o, t->tag, t->taglen) || mob_out_bytes(o, "\":\"", 3) ||
        mob_out_bytes(o, var->name, var->nlen) || mob_out_bytes(o, "\",\"", 3) ||
        mob_out_bytes(o, t->content, t->clen) || mob_out_bytes(o, "\":", 2));
    TRY(dec_struct(m, &MT[var->type], cv, mode, 0));
    pop(m);
    OUT(mob_out_byte(o, '}'));
    return 0;
}

/* The text node of content block x when it is a text block (already
 * decoded), else NONE. */
static uint32_t text_of(mctx *m, const mtype *item, const mtype *codec, uint32_t x)
{
    const mob_node *xn = N(m, x);
    uint32_t tag, text;
    if (xn->type == J_OBJ) {
        tag = last_member(m, x, item->tag, item->taglen);
        text = last_member(m, x, codec->text_field, codec->tflen);
    } else { /* positional: [tag, text] */
        tag = x + 1;
        text = xn->len > 1 ? N(m, tag)->next : NONE;
    }
    if (tag == NONE || text == NONE) return NONE;
    const mob_node *tn = N(m, tag);
    int vi = tn->type == J_NUM ? (int)tn->v.u : tn->type == J_STR ? kmatch(item, tn) : -1;
    return vi == codec->text_variant ? text : NONE;
}

/* content_blocks_serde (meerkat-core/src/types.rs:422-456@c7b8518b4) */
static int dec_codec(mctx *m, const mtype *t, uint32_t v, int mode)
{
    const mob_node *n = N(m, v);
    if (n->type == J_STR) {
        OUT(out_str(m, v));
        return 0;
    }
    if (n->type != J_ARR) return fail(m, "expected a string or an array of content blocks, found %K", v);
    mob_out *o = m->o;
    size_t start = o->len;
    OUT(mob_out_byte(o, '['));
    uint32_t c = v + 1;
    for (uint32_t j = 0; j < n->len; j++) {
        if (j) OUT(mob_out_byte(o, ','));
        push_index(m, j);
        TRY(dec_type(m, S_TYPE, t->inner, c, mode));
        pop(m);
        c = N(m, c)->next;
    }
    OUT(mob_out_byte(o, ']'));
    if (n->len == 1) {
        uint32_t text = text_of(m, &MT[t->inner], t, v + 1);
        if (text != NONE) {
            o->len = start;
            OUT(out_str(m, text));
        }
    }
    return 0;
}

/* SystemNoticeBlock's Deserialize (meerkat-core/src/types.rs:2112-2145@c7b8518b4):
 * the block is read as a serde Value first (a duplicated key keeps its last
 * value anywhere below). */
static int dec_value_first(mctx *m, const mtype *t, uint32_t v)
{
    const mtype *inner = &MT[t->inner];
    uint32_t tag = N(m, v)->type == J_OBJ ? last_member(m, v, inner->tag, inner->taglen) : NONE;
    if (tag == NONE || N(m, tag)->type != J_STR)
        return fail(m, "missing system notice block type (a string %q)", inner->tag, (int)inner->taglen);
    if (kmatch(inner, N(m, tag)) >= 0) return dec_tagged(m, inner, v, VALUE, 1);
    if (m->strict) TRY(no_dups(m, v));
    mob_out *o = m->o;
    OUT(mob_out_bytes(o, "{\"", 2) || mob_out_bytes(o, inner->tag, inner->taglen) || mob_out_bytes(o, "\":\"", 3) ||
        mob_out_bytes(o, t->other_variant, t->ovlen) || mob_out_byte(o, '"'));
    for (int i = 0; i < t->naux; i++) {
        uint32_t s = last_member(m, v, t->aux[i], (uint32_t)strlen(t->aux[i]));
        if (s != NONE) {
            if (N(m, s)->type == J_STR) {
                OUT(mob_out_cstr(o, ",\"summary\":"));
                OUT(out_str(m, s));
            }
            break;
        }
    }
    OUT(mob_out_bytes(o, ",\"", 2) || mob_out_bytes(o, t->other_field, t->oflen) || mob_out_bytes(o, "\":", 2));
    OUT(mob_out_value(o, m->d, v, 0, 0));
    OUT(mob_out_byte(o, '}'));
    return 0;
}

/* deserialize_server_tool_kind (meerkat-core/src/types.rs:771-786@c7b8518b4) */
static int dec_legacy(mctx *m, const mtype *t, uint32_t v, int mode)
{
    const mtype *inner = &MT[t->inner];
    const mob_node *n = N(m, v);
    mob_out *o = m->o;
    if (n->type == J_STR) {
        OUT(mob_out_bytes(o, "{\"", 2) || mob_out_bytes(o, inner->tag, inner->taglen) || mob_out_bytes(o, "\":", 2));
        for (int i = 0; i < t->naux; i++) {
            const char *name = t->aux[2 * i];
            if (str_eq(n, name, (uint32_t)strlen(name))) {
                OUT(mob_out_byte(o, '"') || mob_out_cstr(o, t->aux[2 * i + 1]) || mob_out_bytes(o, "\"}", 2));
                return 0;
            }
        }
        OUT(mob_out_byte(o, '"') || mob_out_bytes(o, t->other_variant, t->ovlen) || mob_out_bytes(o, "\",\"", 3) ||
            mob_out_bytes(o, t->other_field, t->oflen) || mob_out_bytes(o, "\":", 2));
        OUT(out_str(m, v));
        OUT(mob_out_byte(o, '}'));
        return 0;
    }
    if (n->type != J_OBJ && n->type != J_ARR)
        return fail(m, "expected a %s object or a legacy name string, found %K", inner->what, v);
    return dec_tagged(m, inner, v, mode, 0);
}

static int dec_type(mctx *m, int sc, int ti, uint32_t v, int mode)
{
    if (sc != S_TYPE) return dec_scalar(m, sc, v);
    const mtype *t = &MT[ti];
    if (t->context == X_JSON) mode = JSONMODE;
    switch (t->kind) {
    case T_STRUCT: return dec_struct(m, t, v, mode, 1);
    case T_ENUM: return dec_enum(m, t, v, mode);
    case T_TAGGED: return dec_tagged(m, t, v, mode, 0);
    case T_ADJACENT: return dec_adjacent(m, t, v, mode);
    case T_CODEC: return dec_codec(m, t, v, mode);
    case T_VALUE_FIRST: return dec_value_first(m, t, v);
    case T_LEGACY: return dec_legacy(m, t, v, mode);
    }
    return fail(m, "internal: bad model type");
}

/* ------------------------------------------------------------ f2 replay
 * What the 0.8.10 replay reads raw before it decodes a row
 * (collect_released_message_raw_slots_0810, meerkat-core/src/session/
 * import_0810.rs:233-335@c7b8518b4): maps of raw values (the last of a
 * duplicated key counts), and the containers of the opaque slots must be
 * objects with a string tag.  Same checks and texts as decode.py
 * _f2_rows_shape.  The path is built by hand: these checks run before the
 * typed decode. */

static int f2_obj(mctx *m, uint32_t x)
{
    if (N(m, x)->type != J_OBJ)
        return fail(m, "expected an object, found %K (the 0.8.10 replay reads it as a map)", x);
    return 0;
}

static int f2_field(mctx *m, uint32_t o, const char *key, uint32_t *out)
{
    uint32_t len = (uint32_t)strlen(key);
    *out = last_member(m, o, key, len);
    if (*out == NONE) return fail(m, "missing field %q (the 0.8.10 replay reads it raw)", key, (int)len);
    return 0;
}

static int f2_string(mctx *m, uint32_t o, const char *key, uint32_t *out)
{
    TRY(f2_field(m, o, key, out));
    if (N(m, *out)->type != J_STR) {
        push_name(m, key, (uint32_t)strlen(key), 0);
        return fail(m, "expected a string, found %K (the 0.8.10 replay reads it raw)", *out);
    }
    return 0;
}

static int f2_array(mctx *m, uint32_t x)
{
    if (N(m, x)->type != J_ARR)
        return fail(m, "expected an array, found %K (the 0.8.10 replay reads it raw)", x);
    return 0;
}

static int f2_content(mctx *m, uint32_t c)
{
    const mob_node *cn = N(m, c);
    if (cn->type != J_ARR) return 0;
    uint32_t b = c + 1, x;
    for (uint32_t i = 0; i < cn->len; i++) {
        push_index(m, i);
        TRY(f2_obj(m, b));
        TRY(f2_string(m, b, "type", &x));
        if (str_eq(N(m, x), "structured", 10)) TRY(f2_field(m, b, "data", &x));
        pop(m);
        b = N(m, b)->next;
    }
    return 0;
}

static int f2_rows_shape(mctx *m, const mtype *root)
{
    uint32_t role, x, y;
    TRY(f2_string(m, 0, "role", &role));
    const mob_node *r = N(m, role);
    if (str_eq(r, "user", 4)) {
        TRY(f2_field(m, 0, "content", &x));
        push_name(m, "content", 7, 0);
        TRY(f2_content(m, x));
        pop(m);
    } else if (str_eq(r, "block_assistant", 15)) {
        TRY(f2_field(m, 0, "blocks", &x));
        push_name(m, "blocks", 6, 0);
        TRY(f2_array(m, x));
        uint32_t b = x + 1;
        for (uint32_t i = 0; i < N(m, x)->len; i++) {
            push_index(m, i);
            TRY(f2_obj(m, b));
            TRY(f2_string(m, b, "block_type", &y));
            if (str_eq(N(m, y), "tool_use", 8)) {
                TRY(f2_field(m, b, "data", &y));
                push_name(m, "data", 4, 0);
                TRY(f2_obj(m, y));
                TRY(f2_field(m, y, "args", &y));
                pop(m);
            }
            pop(m);
            b = N(m, b)->next;
        }
        pop(m);
    } else if (str_eq(r, "tool_results", 12)) {
        TRY(f2_field(m, 0, "results", &x));
        push_name(m, "results", 7, 0);
        TRY(f2_array(m, x));
        uint32_t e = x + 1;
        for (uint32_t i = 0; i < N(m, x)->len; i++) {
            push_index(m, i);
            TRY(f2_obj(m, e));
            TRY(f2_field(m, e, "content", &y));
            push_name(m, "content", 7, 0);
            TRY(f2_content(m, y));
            pop(m);
            pop(m);
            e = N(m, e)->next;
        }
        pop(m);
    } else if (str_eq(r, "system_notice", 13)) {
        x = last_member(m, 0, "blocks", 6);
        if (x != NONE) {
            push_name(m, "blocks", 6, 0);
            TRY(f2_array(m, x));
            uint32_t b = x + 1;
            for (uint32_t i = 0; i < N(m, x)->len; i++) {
                push_index(m, i);
                TRY(f2_obj(m, b));
                TRY(f2_string(m, b, "type", &y));
                if (str_eq(N(m, y), "comms", 5) || str_eq(N(m, y), "external_event", 14)) {
                    uint32_t c = last_member(m, b, "content", 7);
                    if (c != NONE) {
                        push_name(m, "content", 7, 0);
                        TRY(f2_content(m, c));
                        pop(m);
                    }
                }
                pop(m);
                b = N(m, b)->next;
            }
            pop(m);
        }
    } else if (!str_eq(r, "system", 6)) {
        push_name(m, "role", 4, 0);
        return fail(m, "unknown role %N (expected one of %s)", role, root->expected);
    }
    return 0;
}

const char *mobstore_model_sha256(void) { return MOB_MODEL_SHA256; }

int mob_canonical_message(mob_doc *d, mob_out *o, const uint8_t *msg, size_t len, int profile)
{
    int rc = mob_parse(d, msg, len);
    if (rc) return rc;
    int p = profile & 0xFF;
    mctx m;
    m.d = d;
    m.o = o;
    m.digest = p != MOBSTORE_PROFILE_BARE;
    m.verbatim = p == MOBSTORE_PROFILE_F2;
    m.passes = p == MOBSTORE_PROFILE_F3 ? 2 : 1;
    m.strict = (profile & MOBSTORE_DECODE_STRICT) != 0;
    m.erasing = 0;
    m.depth = 0;
    const mtype *root = &MT[MOB_MODEL_ROOT];
    if (m.verbatim) {
        if (d->nodes[0].type != J_OBJ) return fail(&m, "expected a message object, found %K", 0u);
        TRY(f2_rows_shape(&m, root));
        /* the last "role" picks the wire (meerkat-core/src/session/import_0810.rs:565-590@c7b8518b4) */
        uint32_t role = last_member(&m, 0, root->tag, root->taglen);
        if (str_eq(N(&m, role), MOB_MODEL_REPLAY_VARIANT, (uint32_t)strlen(MOB_MODEL_REPLAY_VARIANT)))
            return dec_struct(&m, &MT[MOB_MODEL_REPLAY_TYPE], 0, JSONMODE, 1);
    } else if (d->nodes[0].type != J_OBJ && d->nodes[0].type != J_ARR) {
        return fail(&m, "expected a message object, found %K", 0u);
    }
    return dec_tagged(&m, root, 0, CONTENT, 1);
}
