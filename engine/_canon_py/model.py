"""meerkat's typed message model, loaded from ``engine/meerkat_model.json`` and checked.

The JSON file is the one description of the model (docs/messages.md says how to read it); the C
build generates its tables from the same file. This module turns it into ``Type`` / ``Field``
objects for the reference decoder and refuses a file that does not follow the format, so a
mistake in a model update fails at import with the type and field named.
"""

from __future__ import annotations

import hashlib
import json
import os

MODEL_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "meerkat_model.json")

SCALARS = frozenset(("string", "bool", "u32", "u64", "u64_nonzero", "uuid", "timestamp", "value", "raw",
                     "nonblank_string", "prompt_text", "skill_name"))
KINDS = frozenset(("struct", "enum", "tagged", "adjacent", "content_codec", "value_first", "legacy_name_or"))
_FIELD_KEYS = frozenset(("name", "type", "list", "option", "missing", "skip", "present_null", "alias", "flatten",
                         "digest", "src"))
_MISSING = frozenset(("error", "none", "default", "now"))
_SKIP = frozenset(("never", "none", "empty", "default", "empty_object"))
_DIGEST = frozenset(("epoch", "clear"))


class ModelError(ValueError):
    """The model file does not follow its format."""


class Field:
    __slots__ = ("name", "type", "list", "option", "missing", "skip", "present_null", "alias", "flatten", "digest")

    def __init__(self, owner: str, d: dict) -> None:
        where = "%s.%s" % (owner, d.get("name"))
        extra = set(d) - _FIELD_KEYS
        if extra:
            raise ModelError("%s: unknown attribute(s) %s" % (where, sorted(extra)))
        self.name = d["name"]
        self.type = d["type"]  # resolved to a Type or scalar name by Model
        self.list = bool(d.get("list", False))
        self.option = bool(d.get("option", False))
        self.missing = d.get("missing", "none" if self.option else "error")
        self.skip = d.get("skip", "never")
        self.present_null = bool(d.get("present_null", False))
        self.alias = tuple(d.get("alias", ()))
        self.flatten = bool(d.get("flatten", False))
        self.digest = d.get("digest")
        if self.missing not in _MISSING or self.skip not in _SKIP or (self.digest and self.digest not in _DIGEST):
            raise ModelError("%s: bad missing/skip/digest value" % where)
        if self.option and self.missing not in ("none", "default"):
            # "default": #[serde(default)] (also fills a missing positional element); "none": an Option
            # without it (None only when missing from a map)
            raise ModelError("%s: an option field is None when missing" % where)
        if self.present_null and not (self.option and self.type == "value"):
            raise ModelError("%s: present_null is for Option<Value> fields" % where)
        if self.missing == "now" and self.type != "timestamp":
            raise ModelError("%s: only a timestamp can default to now" % where)


class Variant:
    __slots__ = ("name", "type", "reject", "digest")

    def __init__(self, d: dict) -> None:
        self.name = d["name"]
        self.type = d.get("type")
        self.reject = d.get("reject")
        self.digest = d.get("digest")


class Type:
    __slots__ = ("name", "kind", "fields", "index", "deny_unknown", "flat", "context", "values", "default", "tag",
                 "content", "what", "variants", "names", "item", "text_variant", "text_field", "inner", "fallback",
                 "legacy", "other")

    def __init__(self, name: str, d: dict) -> None:
        self.name = name
        self.kind = d.get("kind")
        if self.kind not in KINDS:
            raise ModelError("%s: unknown kind %r" % (name, self.kind))
        self.what = d.get("what", "variant")
        self.context = d.get("context")
        if self.kind == "struct":
            self.fields = [Field(name, f) for f in d["fields"]]
            self.deny_unknown = bool(d.get("deny_unknown_fields", False))
            self.index = {}
            for i, f in enumerate(self.fields):
                for key in (f.name,) + f.alias:
                    if key in self.index:
                        raise ModelError("%s: key %r twice" % (name, key))
                    if not f.flatten:
                        self.index[key] = i
            self.flat = [i for i, f in enumerate(self.fields) if f.flatten]
            if len(self.flat) > 1:
                raise ModelError("%s: at most one flattened field" % name)
        elif self.kind == "enum":
            self.values = list(d["values"])
            self.default = d.get("default")
            if self.default is not None and self.default not in self.values:
                raise ModelError("%s: default %r is not a value" % (name, self.default))
        elif self.kind in ("tagged", "adjacent"):
            self.tag = d["tag"]
            self.content = d.get("content")
            if (self.kind == "adjacent") != (self.content is not None):
                raise ModelError("%s: an adjacent enum (only) has a content key" % name)
            self.variants = {}
            for v in d["variants"]:
                var = Variant(v)
                if var.name in self.variants:
                    raise ModelError("%s: variant %r twice" % (name, var.name))
                self.variants[var.name] = var
            # the variants meerkat accepts, for error messages
            self.names = [v.name for v in self.variants.values() if not v.reject]
        elif self.kind == "content_codec":
            self.item = d["item"]
            self.text_variant = d["text_variant"]
            self.text_field = d["text_field"]
        elif self.kind == "value_first":
            self.inner = d["type"]
            self.fallback = d["fallback"]
        elif self.kind == "legacy_name_or":
            self.inner = d["type"]
            self.legacy = dict(d["names"])
            self.other = d["other"]


class Model:
    """All types of one model file, references resolved."""

    def __init__(self, doc: dict, digest: str) -> None:
        if doc.get("format") != 1:
            raise ModelError("unsupported model format %r" % doc.get("format"))
        self.digest = digest
        self.meerkat = doc["meerkat"]
        self.types = {name: Type(name, d) for name, d in doc["types"].items()}
        self.root = self._ref(doc["root"], "root")
        r = doc["replay_0810"]
        self.replay_variant = r["variant"]
        self.replay_type = self._ref(r["type"], "replay_0810")
        for t in self.types.values():
            self._resolve(t)

    def _ref(self, name: str, where: str):
        if name in SCALARS:
            return name
        if name not in self.types:
            raise ModelError("%s: unknown type %r" % (where, name))
        return self.types[name]

    def _resolve(self, t: Type) -> None:
        n = t.name
        if t.kind == "struct":
            for f in t.fields:
                f.type = self._ref(f.type, "%s.%s" % (n, f.name))
                if f.flatten and (not isinstance(f.type, Type) or f.type.kind != "tagged"):
                    raise ModelError("%s.%s: only a tagged enum can be flattened" % (n, f.name))
                if f.missing == "default" and not f.option and f.type in ("uuid", "timestamp", "value", "raw", "u64_nonzero",
                                                         "nonblank_string", "prompt_text", "skill_name",
                                                         "u32", "u64") and not f.list:
                    raise ModelError("%s.%s: no default for %s" % (n, f.name, f.type))
                if f.missing == "default" and isinstance(f.type, Type) and not f.list and not f.option:
                    if f.type.kind == "enum" and f.type.default is None:
                        raise ModelError("%s.%s: enum %s has no default" % (n, f.name, f.type.name))
                    if f.type.kind not in ("enum", "struct"):
                        raise ModelError("%s.%s: no default for a %s" % (n, f.name, f.type.kind))
        elif t.kind in ("tagged", "adjacent"):
            for v in t.variants.values():
                if v.type is not None:
                    v.type = self._ref(v.type, "%s.%s" % (n, v.name))
                    if not isinstance(v.type, Type) or v.type.kind != "struct":
                        raise ModelError("%s.%s: a variant carries a struct" % (n, v.name))
                elif t.kind == "adjacent" and not v.reject:
                    raise ModelError("%s.%s: adjacent variants carry a struct" % (n, v.name))
        elif t.kind == "content_codec":
            t.item = self._ref(t.item, n)
        elif t.kind in ("value_first", "legacy_name_or"):
            t.inner = self._ref(t.inner, n)
            if not isinstance(t.inner, Type) or t.inner.kind != "tagged":
                raise ModelError("%s: wraps a tagged enum" % n)


def load(path: str = MODEL_PATH) -> Model:
    with open(path, "rb") as f:
        raw = f.read()
    return Model(json.loads(raw), hashlib.sha256(raw).hexdigest())


MODEL = load()
