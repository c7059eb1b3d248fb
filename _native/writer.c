/* writer.c -- compact serde_json-style output into a reusable buffer.
 *
 * mob_out owns a malloc'd buffer that grows geometrically and is kept
 * between calls (the context frees it).  Every writer returns 0 or
 * MOBSTORE_E_NOMEM; after an allocation failure o->oom stays set.
 *
 * Strings use serde_json's escape table (serde-rs/json src/ser.rs, ESCAPE):
 * \" \\ \b \t \n \f \r, other bytes < 0x20 as \u00xx (lowercase hex);
 * nothing else is escaped.  A string whose source had no escape is copied as is: the parser
 * guarantees it holds no '"', '\\' or control byte.
 */
#define MOBSTORE_CANON_INTERNAL 1
#include "canon.h"

#include <stdlib.h>
#include <string.h>

int mob_out_grow(mob_out *o, size_t need)
{
    if (o->oom) return MOBSTORE_E_NOMEM;
    if (o->cap - o->len >= need) return 0;
    size_t cap = o->cap ? o->cap : 1024;
    while (cap - o->len < need) {
        if (cap > SIZE_MAX / 2) {
            o->oom = 1;
            return MOBSTORE_E_NOMEM;
        }
        cap *= 2;
    }
    uint8_t *b = realloc(o->buf, cap);
    if (!b) {
        o->oom = 1;
        return MOBSTORE_E_NOMEM;
    }
    o->buf = b;
    o->cap = cap;
    return 0;
}

int mob_out_cstr(mob_out *o, const char *s) { return mob_out_bytes(o, s, strlen(s)); }

/* 0: copy; 'u': \u00xx; other: two-char escape \c */
static const uint8_t ESC[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    0, 0, '"', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '\\', 0, 0, 0,
};

int mob_out_string(mob_out *o, const uint8_t *s, size_t n, int escaped)
{
    /* worst case every byte becomes \u00xx */
    size_t need = escaped ? 6 * n + 2 : n + 2;
    if (mob_out_reserve(o, need)) return MOBSTORE_E_NOMEM;
    uint8_t *w = o->buf + o->len;
    *w++ = '"';
    if (!escaped) {
        memcpy(w, s, n);
        w += n;
    } else {
        static const char hx[] = "0123456789abcdef";
        size_t i = 0;
        while (i < n) {
            size_t j = i;
            while (j < n && !ESC[s[j]]) j++;
            memcpy(w, s + i, j - i);
            w += j - i;
            if (j == n) break;
            uint8_t c = s[j], e = ESC[c];
            *w++ = '\\';
            if (e == 'u') {
                *w++ = 'u';
                *w++ = '0';
                *w++ = '0';
                *w++ = (uint8_t)hx[c >> 4];
                *w++ = (uint8_t)hx[c & 15];
            } else {
                *w++ = e;
            }
            i = j + 1;
        }
    }
    *w++ = '"';
    o->len = (size_t)(w - o->buf);
    return 0;
}

int mob_out_number(mob_out *o, const mob_node *n)
{
    if (mob_out_reserve(o, 32)) return MOBSTORE_E_NOMEM;
    char *w = (char *)o->buf + o->len;
    if (n->numkind == MOB_NUM_U64) o->len += mob_format_u64(n->v.u, w);
    else if (n->numkind == MOB_NUM_I64) o->len += mob_format_i64(n->v.i, w);
    else o->len += mob_format_double(n->v.f, w);
    return 0;
}

/* A float as serde_json writes it after `passes` more parse-and-write rounds
 * (its parser is not correctly rounded, so a float can drift,
 * meerkat-core/src/types.rs:177-204@c7b8518b4). */
static int out_float(mob_out *o, double f, int passes)
{
    if (mob_out_reserve(o, 32)) return MOBSTORE_E_NOMEM;
    char *w = (char *)o->buf + o->len;
    int stable;
    size_t n = mob_format_double_stable(f, w, &stable);
    for (int k = 0; k < passes && !stable; k++) {
        mob_number num;
        const uint8_t *stop;
        int rc = mob_parse_number((const uint8_t *)w, (const uint8_t *)w + n, &stop, &num);
        if (rc) return rc; /* MOBSTORE_E_NUMBER_RANGE: the text overflows when read again */
        /* zmij always writes a '.' or an exponent: the token reads back as a float.  When it
         * reads back as the same double, every further round is the same text: stop here. */
        if (memcmp(&num.f, &f, sizeof f) == 0) break;
        f = num.f;
        n = mob_format_double_stable(f, w, &stable);
    }
    o->len += n;
    return 0;
}

/* serde Value output.  Depth is bounded by the parser's MOBSTORE_MAX_DEPTH;
 * `base` is the first free slot of d->scratch, used as a stack of key
 * orders (2 slots per member: the sort needs a second half). */
int mob_out_value(mob_out *o, mob_doc *d, uint32_t i, int passes, uint32_t base)
{
    const mob_node *n = &d->nodes[i];
    int rc;
    switch (n->type) {
    case J_NULL: return mob_out_bytes(o, "null", 4);
    case J_TRUE: return mob_out_bytes(o, "true", 4);
    case J_FALSE: return mob_out_bytes(o, "false", 5);
    case J_NUM:
        if (n->numkind == MOB_NUM_F64) return out_float(o, n->v.f, passes);
        return mob_out_number(o, n);
    case J_STR: return mob_out_string(o, n->v.s, n->len, n->escaped);
    case J_ARR: {
        if (mob_out_byte(o, '[')) return MOBSTORE_E_NOMEM;
        uint32_t c = i + 1;
        for (uint32_t k = 0; k < n->len; k++) {
            if (k && mob_out_byte(o, ',')) return MOBSTORE_E_NOMEM;
            if ((rc = mob_out_value(o, d, c, passes, base))) return rc;
            c = d->nodes[c].next;
        }
        return mob_out_byte(o, ']');
    }
    case J_OBJ: {
        if (mob_out_byte(o, '{')) return MOBSTORE_E_NOMEM;
        uint32_t m = n->len;
        uint32_t *order = d->scratch + base;
        if (m == 1) order[0] = i + 1;
        else mob_sort_keys(d, i, order);
        int first = 1;
        for (uint32_t k = 0; k < m; k++) {
            /* equal keys sort together in input order: a duplicate keeps its last value */
            if (k + 1 < m && mob_key_cmp(&d->nodes[order[k]], &d->nodes[order[k + 1]]) == 0) continue;
            const mob_node *key = &d->nodes[order[k]];
            if (!first && mob_out_byte(o, ',')) return MOBSTORE_E_NOMEM;
            first = 0;
            if (mob_out_string(o, key->v.s, key->len, key->escaped)) return MOBSTORE_E_NOMEM;
            if (mob_out_byte(o, ':')) return MOBSTORE_E_NOMEM;
            if ((rc = mob_out_value(o, d, order[k] + 1, passes, base + 2 * m))) return rc;
        }
        return mob_out_byte(o, '}');
    }
    }
    return 0;
}
