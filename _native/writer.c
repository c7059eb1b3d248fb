/* writer.c -- compact serde_json-style output into a reusable buffer.
 *
 * mob_out owns a malloc'd buffer that grows geometrically and is kept
 * between calls (the context frees it).  Every writer returns 0 or
 * MOBSTORE_E_NOMEM; after an allocation failure o->oom stays set.
 *
 * Strings use serde_json's escape table (FORMAT.md §2.3): \" \\ \b \t \n
 * \f \r, other bytes < 0x20 as \u00xx (lowercase hex); nothing else is
 * escaped.  A string whose source had no escape is copied as is: the parser
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

int mob_out_bytes(mob_out *o, const void *p, size_t n)
{
    if (mob_out_reserve(o, n)) return MOBSTORE_E_NOMEM;
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

int mob_out_byte(mob_out *o, uint8_t c)
{
    if (mob_out_reserve(o, 1)) return MOBSTORE_E_NOMEM;
    o->buf[o->len++] = c;
    return 0;
}

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

/* Shared recursion for Value (sorted) and compact (input order) output.
 * Depth is bounded by the parser's MOBSTORE_MAX_DEPTH.  `sbase` is the
 * first free slot of d->scratch, used as a stack of key orders. */
static int out_tree(mob_out *o, mob_doc *d, uint32_t i, int sorted, uint32_t sbase)
{
    const mob_node *n = &d->nodes[i];
    switch (n->type) {
    case J_NULL: return mob_out_bytes(o, "null", 4);
    case J_TRUE: return mob_out_bytes(o, "true", 4);
    case J_FALSE: return mob_out_bytes(o, "false", 5);
    case J_NUM: return mob_out_number(o, n);
    case J_STR: return mob_out_string(o, n->v.s, n->len, n->escaped);
    case J_ARR: {
        if (mob_out_byte(o, '[')) return MOBSTORE_E_NOMEM;
        uint32_t c = i + 1;
        for (uint32_t k = 0; k < n->len; k++) {
            if (k && mob_out_byte(o, ',')) return MOBSTORE_E_NOMEM;
            if (out_tree(o, d, c, sorted, sbase)) return MOBSTORE_E_NOMEM;
            c = d->nodes[c].next;
        }
        return mob_out_byte(o, ']');
    }
    case J_OBJ: {
        if (mob_out_byte(o, '{')) return MOBSTORE_E_NOMEM;
        uint32_t m = n->len;
        if (sorted && m > 1) {
            uint32_t *order = d->scratch + sbase;
            mob_sort_keys(d, i, order);
            for (uint32_t k = 0; k < m; k++) {
                const mob_node *key = &d->nodes[order[k]];
                if (k && mob_out_byte(o, ',')) return MOBSTORE_E_NOMEM;
                if (mob_out_string(o, key->v.s, key->len, key->escaped)) return MOBSTORE_E_NOMEM;
                if (mob_out_byte(o, ':')) return MOBSTORE_E_NOMEM;
                if (out_tree(o, d, order[k] + 1, sorted, sbase + m)) return MOBSTORE_E_NOMEM;
            }
        } else {
            uint32_t c = i + 1;
            for (uint32_t k = 0; k < m; k++) {
                const mob_node *key = &d->nodes[c];
                if (k && mob_out_byte(o, ',')) return MOBSTORE_E_NOMEM;
                if (mob_out_string(o, key->v.s, key->len, key->escaped)) return MOBSTORE_E_NOMEM;
                if (mob_out_byte(o, ':')) return MOBSTORE_E_NOMEM;
                if (out_tree(o, d, c + 1, sorted, sbase)) return MOBSTORE_E_NOMEM;
                c = d->nodes[c + 1].next;
            }
        }
        return mob_out_byte(o, '}');
    }
    }
    return 0;
}

int mob_out_value(mob_out *o, mob_doc *d, uint32_t i)
{
    return out_tree(o, d, i, 1, 0);
}

int mob_out_compact(mob_out *o, mob_doc *d, uint32_t i)
{
    return out_tree(o, d, i, 0, 0);
}
