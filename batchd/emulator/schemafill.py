"""Filling a tool's ``input_schema`` from what a text says.

A forced tool call must come back with an input that satisfies the tool's schema: every
required key, the right types, enum members, nested objects and arrays within their
bounds. Values come from the text where a property's name says what it wants (emails,
phones, people, organisations, dates, a summary, a category picked by keyword evidence,
a confidence in [0, 1], a reasoning that cites that evidence); everything else gets the
most neutral valid value, or null where the schema allows it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from batchd.emulator import extract, lexicon
from batchd.emulator.summary import top_sentences

_CONTACT_KEYS = {"name", "full_name", "email", "email_address", "phone", "phone_number", "telephone",
                 "company", "organization", "organisation", "employer", "role", "title", "job_title", "position"}


@dataclass
class Decision:
    """Why an enum value was chosen: for the confidence and reasoning that go with it."""

    value: Any
    terms: list[str]
    score: float
    runner_up: float

    @property
    def confidence(self) -> float:
        if self.score <= 0:
            return 0.35
        margin = (self.score - self.runner_up) / (self.score + 1.0)
        return round(min(0.97, 0.55 + 0.42 * margin + 0.03 * min(self.score, 5) / 5), 2)


@dataclass
class Evidence:
    """A text and the facts drawn from it, computed once and on demand."""

    text: str
    decisions: dict[str, Decision] = field(default_factory=dict)

    @cached_property
    def lower(self) -> str:
        return self.text.lower()

    @cached_property
    def words(self) -> list[str]:
        return extract.words(self.text)

    @cached_property
    def contacts(self) -> list[extract.Contact]:
        return extract.contacts(self.text)

    @cached_property
    def sentences(self) -> list[str]:
        return extract.sentences(self.text)

    @cached_property
    def keywords(self) -> list[str]:
        return extract.keywords(self.text, 8)

    def count(self, term: str) -> int:
        """Occurrences of a stem (word prefix) or, with a space or symbol in it, a phrase."""
        term = term.lower()
        if not term.strip():
            return 0
        if not term.isalpha():
            return self.lower.count(term)
        return sum(1 for w in self.words if w.startswith(term))


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def choose(values: list[Any], evidence: Evidence) -> Decision:
    """The enum value with the most keyword evidence; a "general"-like value, else the
    first, when no value has any."""
    scored = []
    for value in values:
        key = _norm(str(value))
        terms = list(lexicon.CATEGORY_TERMS.get(key, ()))
        terms += [w for w in key.split("_") if len(w) > 2 and w not in lexicon.STOPWORDS and w not in terms]
        hits = [(t.strip(), evidence.count(t)) for t in terms]
        hits = [(t, n) for t, n in hits if n]
        scored.append((sum(math.log2(1 + n) for _, n in hits), value, [t for t, _ in sorted(hits, key=lambda h: -h[1])]))
    ranked = sorted(scored, key=lambda item: -item[0])
    best_score, best, terms = ranked[0] if ranked else (0.0, None, [])
    runner_up = ranked[1][0] if len(ranked) > 1 else 0.0
    if best_score <= 0:
        fallback = next((v for v in values if _norm(str(v)) in lexicon.FALLBACKS), values[0] if values else None)
        return Decision(fallback, [], 0.0, 0.0)
    return Decision(best, terms[:4], best_score, runner_up)


def fill(schema: Any, evidence: Evidence, *, root: Any = None, name: str = "", in_contact: bool = False,
         needed: bool = True) -> Any:
    """A value valid against ``schema`` (a JSON Schema), drawn from ``evidence``; None
    for an optional (not ``needed``) string the text says nothing about."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return _enum(schema["enum"], evidence, name)
    for combo in ("anyOf", "oneOf"):
        if combo in schema:
            options = [_resolve(o, root) for o in schema[combo]]
            real = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
            nullable = len(real) < len(options)
            if not real:
                return None
            value = fill(real[0], evidence, root=root, name=name, in_contact=in_contact)
            return None if value is None and nullable else value
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            part = _resolve(part, root)
            if isinstance(part, dict):
                merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
                merged.setdefault("properties", {}).update(part.get("properties", {}))
                merged.setdefault("required", []).extend(part.get("required", []))
        return fill(merged, evidence, root=root, name=name, in_contact=in_contact)
    types = schema.get("type")
    nullable = isinstance(types, list) and "null" in types
    kind = next((t for t in types if t != "null"), "null") if isinstance(types, list) else types
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        return _object(schema, evidence, root, in_contact)
    if kind == "array":
        return _array(schema, evidence, root, name)
    if kind in ("number", "integer"):
        return _number(schema, evidence, name, kind == "integer")
    if kind == "boolean":
        return bool(schema.get("default", False))
    if kind == "null":
        return None
    value = _string(schema, evidence, name, in_contact)
    if value is None and not nullable and needed:
        value = _placeholder(schema, evidence)
    return value


#: Values for a required string the text says nothing about, valid for its format.
_FORMAT_PLACEHOLDERS = {"date": "1970-01-01", "date-time": "1970-01-01T00:00:00Z", "time": "00:00:00Z",
                        "email": "unknown@example.com", "idn-email": "unknown@example.com",
                        "uri": "https://example.com/", "url": "https://example.com/", "ipv4": "0.0.0.0",
                        "ipv6": "::", "uuid": "00000000-0000-0000-0000-000000000000", "hostname": "example.com"}


def _placeholder(schema: dict[str, Any], evidence: Evidence) -> str:
    if isinstance(schema.get("default"), str):
        return schema["default"]
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        found = _token_matching(pattern, evidence)
        if found is not None:
            return found
    value = _FORMAT_PLACEHOLDERS.get(schema.get("format", ""), "")
    if len(value) < schema.get("minLength", 0):
        value = value or "unknown"
        value += "." * (schema["minLength"] - len(value))
    return value


def _resolve(schema: Any, root: Any) -> Any:
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 32:
        ref = schema["$ref"]
        target: Any = root
        if not ref.startswith("#"):
            return {}
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        schema = target if isinstance(target, dict) else {}
        seen += 1
    return schema


def _enum(values: list[Any], evidence: Evidence, name: str) -> Any:
    decision = choose(values, evidence)
    evidence.decisions.setdefault(name or "value", decision)
    return decision.value


def _object(schema: dict[str, Any], evidence: Evidence, root: Any, in_contact: bool) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    order = sorted(properties, key=lambda key: _fill_order(properties[key], root))
    out: dict[str, Any] = {}
    for key in order:
        value = fill(properties[key], evidence, root=root, name=key, in_contact=in_contact, needed=key in required)
        if key in required or value is not None:
            out[key] = value
    return {key: out[key] for key in properties if key in out}


def _fill_order(schema: Any, root: Any) -> int:
    """Enums first, then numbers, then the rest: confidence and reasoning follow choices."""
    schema = _resolve(schema, root)
    if isinstance(schema, dict) and ("enum" in schema or (schema.get("type") == "array" and "enum" in
                                                           (_resolve(schema.get("items"), root) or {}))):
        return 0
    kind = schema.get("type") if isinstance(schema, dict) else None
    return 1 if kind in ("number", "integer") else 2


def _is_contact_schema(schema: Any, root: Any) -> bool:
    schema = _resolve(schema, root)
    props = schema.get("properties") if isinstance(schema, dict) else None
    return isinstance(props, dict) and len({_norm(k) for k in props} & _CONTACT_KEYS) >= 2


def _array(schema: dict[str, Any], evidence: Evidence, root: Any, name: str) -> list[Any]:
    items = _resolve(schema.get("items") or {}, root)
    low, high = schema.get("minItems", 0), schema.get("maxItems")
    key = _norm(name)
    values: list[Any]
    if _is_contact_schema(items, root):
        values = [_contact(items, c, evidence, root) for c in evidence.contacts]
    elif isinstance(items, dict) and "enum" in items:
        values = _multi_label(items["enum"], evidence, name)
    elif isinstance(items, dict) and items.get("type") in ("string", None) and "properties" not in items:
        values = _strings_for(key, evidence)
        limit = items.get("maxLength")
        values = [v[:limit] if isinstance(limit, int) else v for v in values]
    else:
        values = [fill(items, evidence, root=root, name=name)] if low or items else []
    if high is not None:
        values = values[:high]
    while len(values) < low:
        values.append(fill(items, evidence, root=root, name=name))
    if schema.get("uniqueItems"):
        unique: list[Any] = []
        for v in values:
            if v not in unique:
                unique.append(v)
        values = unique
    return values


def _multi_label(values: list[Any], evidence: Evidence, name: str) -> list[Any]:
    chosen = [v for v in values if choose([v], evidence).score > 0]
    if not chosen:
        decision = choose(values, evidence)
        evidence.decisions.setdefault(name, decision)
        return [decision.value]
    return chosen


def _strings_for(key: str, evidence: Evidence) -> list[str]:
    if "email" in key:
        return extract.emails(evidence.text)
    if "phone" in key or "number" in key:
        return extract.phones(evidence.text)
    if "url" in key or "link" in key or "website" in key:
        return extract.urls(evidence.text)
    if "date" in key:
        return extract.dates(evidence.text)
    if any(k in key for k in ("people", "person", "names", "author", "participant", "attendee")):
        return [n for n, _ in extract.people(evidence.text)]
    if any(k in key for k in ("organi", "compan", "employer", "firm")):
        return [n for n, _ in extract.organisations(evidence.text)]
    if any(k in key for k in ("point", "highlight", "finding", "bullet", "fact", "takeaway", "sentence")):
        return _top_sentences(evidence, 3)
    return evidence.keywords[:5]


def _contact(schema: dict[str, Any], contact: extract.Contact, evidence: Evidence, root: Any) -> dict[str, Any]:
    by_key = {"name": contact.name, "full_name": contact.name, "email": contact.email,
              "email_address": contact.email, "phone": contact.phone, "phone_number": contact.phone,
              "telephone": contact.phone, "company": contact.company, "organization": contact.company,
              "organisation": contact.company, "employer": contact.company, "role": contact.role,
              "title": contact.role, "job_title": contact.role, "position": contact.role}
    out: dict[str, Any] = {}
    required = set(schema.get("required") or [])
    for key, prop in (schema.get("properties") or {}).items():
        norm = _norm(key)
        if norm in by_key:
            prop = _resolve(prop, root)
            value: Any = by_key[norm]
            if value is None and not _allows_null(prop, root):
                value = "" if prop.get("minLength", 0) == 0 else "unknown"
        else:
            value = fill(prop, evidence, root=root, name=key, in_contact=True)
        if key in required or value is not None:
            out[key] = value
    return out


def _allows_null(schema: Any, root: Any) -> bool:
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return True
    types = schema.get("type")
    if types == "null" or (isinstance(types, list) and "null" in types):
        return True
    for combo in ("anyOf", "oneOf"):
        if any(isinstance(o, dict) and _resolve(o, root).get("type") == "null" for o in schema.get(combo, [])):
            return True
    return types is None and not any(k in schema for k in ("anyOf", "oneOf", "enum", "const"))


def _number(schema: dict[str, Any], evidence: Evidence, name: str, integer: bool) -> float | int:
    key = _norm(name)
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    confidence_like = any(k in key for k in ("confidence", "probability", "certainty", "likelihood", "score",
                                             "relevance")) or (low == 0 and high == 1)
    value: float
    if confidence_like:
        decision = next(iter(evidence.decisions.values()), None)
        value = decision.confidence if decision else 0.5
        if high is not None and high > 1:
            value *= high
    elif "count" in key or key.startswith("num"):
        value = len(evidence.contacts) if "contact" in key else len(evidence.words) if "word" in key else 1
    else:
        default = schema.get("default")
        value = default if isinstance(default, (int, float)) else low if low is not None else 0
    step = 1 if integer else 0.01
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + step)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - step)
    return int(math.floor(value + 0.5)) if integer else round(float(value), 2)


def _top_sentences(evidence: Evidence, n: int) -> list[str]:
    return top_sentences(evidence.sentences, n)


def _string(schema: dict[str, Any], evidence: Evidence, name: str, in_contact: bool) -> str | None:
    key = _norm(name)
    fmt = schema.get("format")
    value: str | None
    first = evidence.contacts[0] if evidence.contacts else extract.Contact()
    if fmt == "email" or "email" in key:
        value = next(iter(extract.emails(evidence.text)), None)
    elif "phone" in key or key in ("telephone", "mobile", "fax"):
        value = next(iter(extract.phones(evidence.text)), None)
    elif fmt in ("uri", "url") or key in ("url", "website", "link", "homepage"):
        value = next(iter(extract.urls(evidence.text)), None)
    elif fmt in ("date", "date-time") or key == "date" or key.endswith("_date"):
        value = next(iter(extract.dates(evidence.text)), None)
        if value and fmt == "date-time":
            value += "T00:00:00Z"
    elif key in ("name", "full_name", "person", "contact_name", "author", "sender", "recipient"):
        value = first.name
    elif any(k in key for k in ("company", "organi", "employer", "firm", "vendor", "client")):
        value = first.company or next((n for n, _ in extract.organisations(evidence.text)), None)
    elif key in ("role", "job_title", "position") or (key == "title" and in_contact):
        value = first.role
    elif any(k in key for k in ("reason", "explanation", "rationale", "justification", "why", "comment", "note")):
        value = _reasoning(evidence)
    elif any(k in key for k in ("summary", "description", "abstract", "overview", "gist", "synopsis")):
        value = " ".join(_top_sentences(evidence, 2)) or None
    elif key == "title" or key in ("subject", "heading", "headline"):
        value = evidence.sentences[0][:120] if evidence.sentences else None
    elif key in ("language", "lang", "locale"):
        value = "en"
    elif any(k in key for k in ("keyword", "topic", "tag", "theme")):
        value = evidence.keywords[0] if evidence.keywords else None
    else:
        value = evidence.sentences[0][:200] if evidence.sentences else None
    if value is not None:
        limit = schema.get("maxLength")
        if isinstance(limit, int):
            value = value[:limit]
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                if not re.search(pattern, value):
                    value = _token_matching(pattern, evidence)
            except re.error:
                pass
    return value


def _token_matching(pattern: str, evidence: Evidence) -> str | None:
    """A word of the text that matches ``pattern`` in full, if any."""
    try:
        compiled = re.compile(pattern)
    except re.error:
        return None
    for token in dict.fromkeys(re.findall(r"[^\s,;:()\[\]{}\"']+", evidence.text)):
        if compiled.search(token) and compiled.fullmatch(token.strip(".")):
            return token.strip(".")
    return None


def _reasoning(evidence: Evidence) -> str:
    if not evidence.decisions:
        words = ", ".join(evidence.keywords[:3])
        return f"Based on the text's main terms ({words})." if words else "The text gives little to go on."
    parts = []
    for field_name, decision in evidence.decisions.items():
        if decision.terms:
            cited = ", ".join(f'"{t}"' for t in decision.terms)
            parts.append(f"{field_name} is {decision.value!r} because the text mentions {cited}.")
        else:
            parts.append(f"{field_name} is {decision.value!r}: no keywords point to a more specific value.")
    return " ".join(parts)
