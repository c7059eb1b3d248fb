"""The typed decode: one parsed message through meerkat's model (``model.MODEL``) to the bytes
meerkat's serializer writes for it under a profile. docs/messages.md states these rules in full;
``_native/message.c`` implements the same ones from the same model file.

Decoding and writing happen in one walk. Per type kind:

* struct -- members matched by key (aliases too); an unknown key is dropped (an error under
  ``deny_unknown_fields``, and in a strict decode); fields written in declaration order: a
  missing field takes its default, an ``option`` field's ``null`` is None, skip rules omit
  None / empty lists / default values / empty objects. A ``flatten`` field decodes the members no
  other field took as its tagged enum and writes them in place.
* tagged (internally tagged enum) -- the tag member picks the variant; its struct gets the
  other members; written tag first. A unit variant ignores the other members.
* adjacent -- ``{tag: variant, content: struct}``; other members are ignored.
* enum -- a string, or serde's map form ``{"variant": null}`` (``{"variant": {}}`` too where
  serde buffers the message, i.e. outside notice blocks).
* content_codec -- a string is one text block; exactly one text block is written as a string.
* value_first -- the notice block: read as a serde ``Value`` (a duplicated key keeps its last
  value, everywhere below), then the known variant, or ``{"type":"unknown","summary"?,
  "payload":<the whole block>}`` for a type meerkat does not know.
* legacy_name_or -- the server tool kind: the tagged enum, or a legacy name string.

Duplicate keys: outside notice blocks a known field given twice is an error (serde's
``duplicate_field``) and a duplicated unknown key is ignored; inside them the last one wins.

Profiles: f3 and f2 collapse inline content images to blob ids and erase bookkeeping (the
``digest`` attributes: created_at -> epoch, user/assistant identity cleared, still validated);
an opaque (``raw``) slot is written canonically with its floats parsed twice more under f3,
once more under bare (meerkat-core/src/types.rs:177-204@c7b8518b4, session.rs:422-438@c7b8518b4),
and copied verbatim from the input under f2, whose system rows use the frozen 0.8.10 wire
(meerkat-core/src/session/import_0810.rs:546-590@c7b8518b4).

Strict decode (sessions created with decode="strict"): a key the decode would drop -- an unknown
field or a duplicated key anywhere -- is an error naming it.
"""

from __future__ import annotations

from ..errors import InvalidInputError
from . import scalars
from .jsontext import Obj, loads, step, value, wstr
from .model import MODEL, Type

__all__ = ["canonical_message"]

CONTENT, VALUE, JSON = "content", "value", "json"  # where serde decodes from (module docstring)
_STRICT_UNKNOWN = "unknown field %s (meerkat's typed decode drops it; a decode=\"strict\" session refuses it)"
_STRICT_DUP = "duplicate key %s (meerkat keeps only its last value; a decode=\"strict\" session refuses it)"


class _Ctx:
    __slots__ = ("text", "digest", "passes", "verbatim", "strict")

    def __init__(self, text: str, profile: str, strict: bool) -> None:
        self.text = text
        self.digest = profile != "bare"   # images collapse, bookkeeping erased
        self.verbatim = profile == "f2"   # opaque slots as stored
        self.passes = 2 if profile == "f3" else 1
        self.strict = strict


def _bad(path: str, msg: str):
    raise InvalidInputError("%s: %s" % (path, msg))


def _kind(v) -> str:
    if v is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array",
            Obj: "an object"}[type(v)]


def _expect(path: str, what: str, v):
    _bad(path, "expected %s, found %s" % (what, _kind(v)))


def _one_of(names) -> str:
    return ", ".join(names)


def _no_dups(v, path: str) -> None:
    """Strict decode: no duplicated key anywhere in a Value / opaque slot."""
    t = type(v)
    if t is Obj:
        seen = set()
        for k, _x, _a, _b in v:  # this object's own keys first, then its members in order
            if k in seen:
                _bad(path, _STRICT_DUP % wstr(k))
            seen.add(k)
        for k, x, _a, _b in v:
            _no_dups(x, path + step(k))
    elif t is list:
        for i, x in enumerate(v):
            _no_dups(x, "%s[%d]" % (path, i))


# --------------------------------------------------------------------------- scalars

_U32, _U64 = (1 << 32) - 1, (1 << 64) - 1
_HINT = {"uuid": "32 hex digits, plain, hyphenated, in braces or after urn:uuid:",
         "timestamp": "an RFC 3339 date-time such as 2026-01-31T12:00:00Z",
         "nonblank_string": "must not be empty or blank",
         "prompt_text": "must not be blank, at most 32000 characters",
         "skill_name": "a lowercase slug of a-z, 0-9 and single inner '-'"}
_STRING_SCALARS = {"uuid": scalars.uuid, "nonblank_string": scalars.nonblank, "prompt_text": scalars.prompt_text,
                   "skill_name": scalars.skill_name}


def _scalar(name: str, v, a: int, b: int, path: str, ctx: _Ctx) -> str:
    t = type(v)
    if name == "string":
        if t is not str:
            _expect(path, "a string", v)
        return wstr(v)
    if name == "bool":
        if t is not bool:
            _expect(path, "a boolean", v)
        return "true" if v else "false"
    if name in ("u32", "u64", "u64_nonzero"):
        hi = _U32 if name == "u32" else _U64
        lo = 1 if name == "u64_nonzero" else 0
        if t is not int or not lo <= v <= hi:
            _bad(path, "expected an integer in [%d, %d], found %s" % (lo, hi, v if t is int else _kind(v)))
        return str(v)
    if name == "value":
        if ctx.strict:
            _no_dups(v, path)
        return value(v)
    if name == "raw":
        if ctx.strict:
            _no_dups(v, path)
        if ctx.verbatim:
            return ctx.text[a:b]
        try:
            return value(v, ctx.passes)
        except InvalidInputError:
            _bad(path, "a float in this opaque slot overflows when serde_json parses it again")
    if t is not str:
        _expect(path, "a string", v)
    try:
        if name == "timestamp":
            return scalars.timestamp(v, False)
        return _STRING_SCALARS[name](v)
    except ValueError:
        _bad(path, "not a valid %s: %s (%s)" % (name.replace("_", " "), wstr(v), _HINT[name]))


# --------------------------------------------------------------------------- composite types


def _enum(t: Type, v, path: str, mode: str) -> str:
    tv = type(v)
    if tv is str:
        name = v
    elif tv is Obj:
        members = list(v.last().items()) if mode == VALUE else [(k, (x, a, b)) for k, x, a, b in v]
        if len(members) != 1:
            _bad(path, "expected one of %s, found an object with %d keys" % (_one_of(t.values), len(members)))
        name, (inner, _a, _b) = members[0]
        if not (inner is None or (mode != JSON and type(inner) is Obj and not inner)):
            _bad(path, "expected one of %s, found a map whose value is %s" % (_one_of(t.values), _kind(inner)))
    else:
        _bad(path, "expected one of %s, found %s" % (_one_of(t.values), _kind(v)))
    if name not in t.values:
        _bad(path, "unknown variant %s (expected one of %s)" % (wstr(name), _one_of(t.values)))
    return wstr(name)


def _default(f, t, path: str, ctx: _Ctx, mode: str) -> str:
    if f.list:
        return "[]"
    if t == "string":
        return '""'
    if t == "bool":
        return "false"
    if t.kind == "enum":
        return wstr(t.default)
    return "{" + ",".join(_fields(t, Obj(), path, ctx, mode)) + "}"


def _emit(f, s, path: str, epath: str, ctx: _Ctx, mode: str, parts: list) -> None:
    """Field ``f`` with its value ``s`` = (value, start, end), or None when it is missing: its
    default, the profile steps and the skip rules; appends ``"key":value`` unless skipped.
    ``path`` is the struct's, ``epath`` the value's."""
    ft = f.type
    if s is None:
        if f.option:
            return
        if f.missing == "error":
            _bad(path, "missing field %s" % wstr(f.name))
        if f.missing == "now":  # serde default = message_timestamp_now (types.rs:21-23@c7b8518b4)
            if not (ctx.digest and f.digest == "epoch"):
                _bad(path, "missing field %s: meerkat decodes it as the current time, so this profile has "
                           "no reproducible digest" % wstr(f.name))
            out = scalars.EPOCH
        else:
            out = _default(f, ft, epath, ctx, mode)
    else:
        x, a, b = s
        if x is None and f.option and not f.present_null:
            return
        if f.list:
            if type(x) is not list:
                _expect(epath, "an array", x)
            out = "[" + ",".join(_decode(ft, e, 0, 0, "%s[%d]" % (epath, j), ctx, mode)
                                 for j, e in enumerate(x)) + "]"
        else:
            out = _decode(ft, x, a, b, epath, ctx, mode)
    if ctx.digest and f.digest:
        if f.digest == "clear":
            return
        out = scalars.EPOCH
    rule = f.skip
    if rule != "never" and ((rule == "empty" and out == "[]") or (rule == "empty_object" and out == "{}")
                            or (rule == "default" and out == wstr(ft.default))):
        return
    parts.append(wstr(f.name) + ":" + out)


def _fields(t: Type, obj, path: str, ctx: _Ctx, mode: str, skip: str | None = None) -> list:
    """The members of struct ``t`` decoded from ``obj`` (ignoring key ``skip``, the caller's
    tag), as ``"key":value`` parts in declaration order. ``obj`` may be a list: serde reads a
    struct written as an array positionally (visit_seq)."""
    fields, index = t.fields, t.index
    if type(obj) is list:
        return _positional(t, obj, path, ctx, mode)
    slots = [None] * len(fields)
    rest = Obj() if t.flat else None
    for k, x, a, b in obj:
        if k == skip:
            continue
        i = index.get(k)
        if i is None:
            if rest is not None:
                rest.append((k, x, a, b))
            elif t.deny_unknown:
                _bad(path, "unknown field %s (expected one of %s)" % (wstr(k), _one_of(f.name for f in fields)))
            elif ctx.strict:
                _bad(path, _STRICT_UNKNOWN % wstr(k))
            continue
        if slots[i] is not None:
            if mode != VALUE:
                _bad(path, "duplicate field %s" % wstr(fields[i].name))
            if ctx.strict:
                _bad(path, _STRICT_DUP % wstr(k))
        slots[i] = (x, a, b)
    parts = []
    for i, f in enumerate(fields):
        if f.flatten:
            parts.extend(_tagged_parts(f.type, rest, path, ctx, mode))
        else:
            _emit(f, slots[i], path, path + step(f.name), ctx, mode, parts)
    return parts


def _positional(t: Type, arr: list, path: str, ctx: _Ctx, mode: str, offset: int = 0) -> list:
    """A struct written as a JSON array: element i is field i; a missing trailing element takes
    the field's #[serde(default)], else it is an error; extra elements are an error
    (serde_derive's visit_seq, serde's visit_content_seq). ``offset``: where the struct's
    elements start in the array (1 after a positional tag)."""
    fields = t.fields
    if t.flat:  # serde reads a struct with a flattened field as a map only
        _bad(path, "expected an object, found an array")
    if len(arr) > len(fields):
        _bad(path, "expected at most %d positional fields (%s), found %d"
             % (len(fields), _one_of(f.name for f in fields), len(arr)))
    parts = []
    for i, f in enumerate(fields):
        epath = "%s[%d]" % (path, i + offset)
        if i < len(arr):
            _emit(f, (arr[i], 0, 0), path, epath, ctx, mode, parts)
        elif f.missing in ("default", "now"):
            _emit(f, None, path, epath, ctx, mode, parts)
        else:
            _bad(path, "missing positional field %s (element %d)" % (wstr(f.name), i + offset))
    return parts


def _struct(t: Type, v, path: str, ctx: _Ctx, mode: str, positional: bool = True) -> str:
    """``positional``: the struct may also be written as an array (not for an adjacently tagged
    variant: serde_derive gives those no visit_seq, serde_derive/src/de/struct_.rs:70-75@v1.0.228)."""
    if type(v) is not Obj and not (type(v) is list and not t.flat and positional):
        _expect(path, "an object", v)
    return "{" + ",".join(_fields(t, v, path, ctx, mode)) + "}"


def _present_once(key: str, got: list, path: str, ctx: _Ctx, mode: str) -> None:
    if not got:
        _bad(path, "missing field %s" % wstr(key))
    if len(got) > 1 and (mode != VALUE or ctx.strict):
        _bad(path, ("duplicate field %s" if mode != VALUE else _STRICT_DUP) % wstr(key))


def _pick(t: Type, name, tpath: str, index_ok: bool):
    """The variant of enum ``t`` that tag value ``name`` names: a string, or where serde buffered
    the message (Content) a variant index."""
    if index_ok and type(name) is int and 0 <= name < len(t.variants):
        var = list(t.variants.values())[name]
    else:
        if type(name) is not str:
            _bad(tpath, "expected a %s string (one of %s), found %s" % (t.what, _one_of(t.names), _kind(name)))
        var = t.variants.get(name)
        if var is None:
            _bad(tpath, "unknown %s %s (expected one of %s)" % (t.what, wstr(name), _one_of(t.names)))
    if var.reject:
        _bad(tpath, var.reject)
    return var


def _tagged_parts(t: Type, v, path: str, ctx: _Ctx, mode: str, root: bool = False) -> list:
    """An internally tagged enum's members: the tag first, then its variant's fields."""
    tag = t.tag
    if type(v) is list:  # positional: the tag is the first element (TaggedContentVisitor::visit_seq)
        if not v:
            _bad(path, "missing field %s" % wstr(tag))
        var = _pick(t, v[0], path + "[0]", not root)
        rest = v[1:]
        if var.type is None:
            if rest:
                _bad(path, "expected no positional fields after the tag of %s %s, found %d"
                     % (t.what, wstr(var.name), len(rest)))
            return [wstr(tag) + ":" + wstr(var.name)]
        return [wstr(tag) + ":" + wstr(var.name)] + _positional(var.type, rest, path, ctx, mode, offset=1)
    found = [x for k, x, _a, _b in v if k == tag]
    _present_once(tag, found, path, ctx, mode)
    var = _pick(t, found[-1], path + step(tag), not root)
    head = wstr(tag) + ":" + wstr(var.name)
    if var.type is None:  # unit variant: serde ignores the other members
        if ctx.strict:
            for k, _x, _a, _b in v:
                if k != tag:
                    _bad(path, _STRICT_UNKNOWN % wstr(k))
        return [head]
    return [head] + _fields(var.type, v, path, ctx, mode, skip=tag)


_ABSENT = object()


def _last(obj: Obj, key: str, absent=None):
    """The value of the last member ``key`` of ``obj`` (``absent`` when there is none)."""
    for k, x, _a, _b in reversed(obj):
        if k == key:
            return x
    return absent


def _tagged(t: Type, v, path: str, ctx: _Ctx, mode: str, root: bool = False) -> str:
    if type(v) is not Obj and type(v) is not list:
        _expect(path, "an object", v)
    parts = _tagged_parts(t, v, path, ctx, mode, root)
    if type(v) is Obj and ctx.digest:
        var = _pick(t, _last(v, t.tag), path, not root)
        if var.digest == "collapse_inline_image":
            # meerkat-core/src/session.rs:397-414@c7b8518b4: an image whose (flattened) source is
            # inline becomes its blob reference
            source = var.type.fields[var.type.flat[0]].type
            if _pick(source, _last(v, source.tag), path, True).name == "inline":
                media, data = _last(v, "media_type"), _last(v, "data")
                return '{"type":"image","media_type":%s,"source":"blob","blob_id":"%s"}' % (
                    wstr(media), scalars.content_blob_id(media, data))
    return "{" + ",".join(parts) + "}"


def _adjacent(t: Type, v, path: str, ctx: _Ctx, mode: str) -> str:
    """{tag: variant, content: struct}; serde reads the tag as an enum (a string, or a map with one
    key), or, from an array [tag, content], as an identifier (a string or a variant index)."""
    if type(v) is list:
        if not v:
            _bad(path, "missing field %s" % wstr(t.tag))
        var = _pick(t, v[0], path + "[0]", True)
        if len(v) < 2:
            _bad(path, "missing field %s" % wstr(t.content))
        if len(v) > 2:
            _bad(path, "expected 2 positional fields (%s, %s), found %d" % (t.tag, t.content, len(v)))
        body = _struct(var.type, v[1], path + "[1]", ctx, mode, positional=False)
        return "{%s:%s,%s:%s}" % (wstr(t.tag), wstr(var.name), wstr(t.content), body)
    if type(v) is not Obj:
        _expect(path, "an object", v)
    tags, contents = [], []
    for k, x, _a, _b in v:
        if k == t.tag:
            tags.append(x)
        elif k == t.content:
            contents.append(x)
        elif ctx.strict:
            _bad(path, _STRICT_UNKNOWN % wstr(k))
    _present_once(t.tag, tags, path, ctx, mode)
    name, tpath = tags[-1], path + step(t.tag)
    if type(name) is Obj:  # the enum's map form {"variant": null}
        members = list(name.last().items()) if mode == VALUE else [(k, (x, a, b)) for k, x, a, b in name]
        if len(members) != 1:
            _bad(tpath, "expected a %s string (one of %s), found an object with %d keys"
                 % (t.what, _one_of(t.names), len(members)))
        key, (inner, _a, _b) = members[0]
        if not (inner is None or (mode != JSON and type(inner) is Obj and not inner)):
            _bad(tpath, "expected a %s string (one of %s), found a map whose value is %s"
                 % (t.what, _one_of(t.names), _kind(inner)))
        name = key
    var = _pick(t, name, tpath, False)
    _present_once(t.content, contents, path, ctx, mode)
    body = _struct(var.type, contents[-1], path + step(t.content), ctx, mode, positional=False)
    return "{%s:%s,%s:%s}" % (wstr(t.tag), wstr(var.name), wstr(t.content), body)


def _text_of(item: Type, x, text_variant: str, text_field: str):
    """The text of content block ``x`` when it is a text block (decoded already), else None."""
    if type(x) is Obj:
        tag = _last(x, item.tag)
        text = _last(x, text_field)
    else:  # positional: [tag, text]
        tag, text = x[0], x[1] if len(x) > 1 else None
    if type(tag) is int:
        tag = list(item.variants)[tag]
    return text if tag == text_variant else None


def _codec(t: Type, v, path: str, ctx: _Ctx, mode: str) -> str:
    """content_blocks_serde (meerkat-core/src/types.rs:422-456@c7b8518b4)."""
    if type(v) is str:
        return wstr(v)
    if type(v) is not list:
        _expect(path, "a string or an array of content blocks", v)
    parts = [_decode(t.item, x, 0, 0, "%s[%d]" % (path, i), ctx, mode) for i, x in enumerate(v)]
    if len(v) == 1:
        text = _text_of(t.item, v[0], t.text_variant, t.text_field)
        if text is not None:
            return wstr(text)
    return "[" + ",".join(parts) + "]"


def _value_first(t: Type, v, path: str, ctx: _Ctx, mode: str) -> str:
    """SystemNoticeBlock's Deserialize (meerkat-core/src/types.rs:2112-2145@c7b8518b4): the block
    is read as a serde Value first, so a duplicated key keeps its last value anywhere below."""
    inner = t.inner
    tag = _last(v, inner.tag) if type(v) is Obj else None
    if type(tag) is not str:
        _bad(path, "missing system notice block type (a string %s)" % wstr(inner.tag))
    if tag in inner.variants:
        return _tagged(inner, v, path, ctx, VALUE, root=True)
    if ctx.strict:
        _no_dups(v, path)
    fb = t.fallback
    d = v.last()
    summary = None
    for key in fb["summary_from"]:
        if key in d:
            summary = d[key][0] if type(d[key][0]) is str else None
            break
    head = wstr(inner.tag) + ":" + wstr(fb["variant"])
    if summary is not None:
        head += ',"summary":' + wstr(summary)
    return "{%s,%s:%s}" % (head, wstr(fb["payload"]), value(v))


def _legacy_or(t: Type, v, path: str, ctx: _Ctx, mode: str) -> str:
    """deserialize_server_tool_kind (meerkat-core/src/types.rs:771-786@c7b8518b4)."""
    inner = t.inner
    if type(v) is str:
        name = t.legacy.get(v)
        if name is not None:
            return "{%s:%s}" % (wstr(inner.tag), wstr(name))
        return "{%s:%s,%s:%s}" % (wstr(inner.tag), wstr(t.other["variant"]), wstr(t.other["field"]), wstr(v))
    if type(v) is not Obj and type(v) is not list:
        _expect(path, "a %s object or a legacy name string" % inner.what, v)
    return _tagged(inner, v, path, ctx, mode)


_KIND = {"struct": _struct, "tagged": _tagged, "adjacent": _adjacent, "content_codec": _codec,
         "value_first": _value_first, "legacy_name_or": _legacy_or}


def _decode(t, v, a: int, b: int, path: str, ctx: _Ctx, mode: str) -> str:
    if type(t) is str:
        return _scalar(t, v, a, b, path, ctx)
    if t.kind == "enum":
        return _enum(t, v, path, mode)
    return _KIND[t.kind](t, v, path, ctx, t.context or mode)


# --------------------------------------------------------------------------- entry point


def _f2_rows_shape(v: Obj) -> None:
    """What the 0.8.10 replay reads raw before it decodes a row (collect_released_message_raw_slots_0810,
    meerkat-core/src/session/import_0810.rs:233-335@c7b8518b4): maps of raw values, so each object
    keeps the last of a duplicated key, and the containers of the opaque slots must be objects with
    a string tag (a positional form or a variant index the typed decode would take is refused)."""

    def obj(x, path):
        if type(x) is not Obj:
            _bad(path, "expected an object, found %s (the 0.8.10 replay reads it as a map)" % _kind(x))
        return x

    def field(o, key, path):
        x = _last(o, key, _ABSENT)
        if x is _ABSENT:
            _bad(path, "missing field %s (the 0.8.10 replay reads it raw)" % wstr(key))
        return x

    def string(o, key, path):
        x = field(o, key, path)
        if type(x) is not str:
            _bad(path + step(key), "expected a string, found %s (the 0.8.10 replay reads it raw)" % _kind(x))
        return x

    def array(x, path):
        if type(x) is not list:
            _bad(path, "expected an array, found %s (the 0.8.10 replay reads it raw)" % _kind(x))
        return x

    def content(c, path):
        if type(c) is list:
            for i, b in enumerate(c):
                bp = "%s[%d]" % (path, i)
                if string(obj(b, bp), "type", bp) == "structured":
                    field(b, "data", bp)

    role = string(v, "role", "$")
    if role == "user":
        content(field(v, "content", "$"), "$.content")
    elif role == "block_assistant":
        for i, b in enumerate(array(field(v, "blocks", "$"), "$.blocks")):
            bp = "$.blocks[%d]" % i
            if string(obj(b, bp), "block_type", bp) == "tool_use":
                field(obj(field(b, "data", bp), bp + ".data"), "args", bp + ".data")
    elif role == "tool_results":
        for i, r in enumerate(array(field(v, "results", "$"), "$.results")):
            rp = "$.results[%d]" % i
            content(field(obj(r, rp), "content", rp), rp + ".content")
    elif role == "system_notice":
        blocks = _last(v, "blocks", _ABSENT)
        if blocks is not _ABSENT:
            for i, b in enumerate(array(blocks, "$.blocks")):
                bp = "$.blocks[%d]" % i
                if string(obj(b, bp), "type", bp) in ("comms", "external_event"):
                    c = _last(b, "content", _ABSENT)
                    if c is not _ABSENT:
                        content(c, bp + ".content")
    elif role != "system":
        _bad("$.role", "unknown role %s (expected one of %s)" % (wstr(role), _one_of(MODEL.root.names)))


def canonical_message(data, profile: str, strict: bool = False) -> bytes:
    """Canonical bytes of ONE message (UTF-8 JSON text) under ``profile``."""
    v, text = loads(data)
    ctx = _Ctx(text, profile, strict)
    root = MODEL.root
    if profile == "f2":
        if type(v) is not Obj:
            _expect("$", "a message object", v)
        _f2_rows_shape(v)
        if _last(v, root.tag) == MODEL.replay_variant:  # the frozen 0.8.10 system wire
            return _struct(MODEL.replay_type, v, "$", ctx, JSON).encode("utf-8")
    elif type(v) is not Obj and type(v) is not list:
        _expect("$", "a message object", v)
    return _tagged(root, v, "$", ctx, CONTENT, root=True).encode("utf-8")
