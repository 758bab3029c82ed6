"""Facts found in text by patterns: e-mails, phones, people, organisations, roles,
dates, sentences and key words. Heuristics, tuned to letters, signatures and business
documents; they favour leaving a field unknown over inventing it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from batchd.emulator import lexicon

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ \t.-]?)?(?:\(\d{1,5}\)[ \t.-]?)?\d{1,5}(?:[ \t.-]\d{2,5}){1,4}(?![\w-])")
URL = re.compile(r"\bhttps?://[^\s<>\"')\]]+")
ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
TEXT_DATE = re.compile(r"\b(\d{1,2})\s+(January|February|March|April|May|June|July|August|September|October|"
                       r"November|December)\s+(\d{4})\b|\b(January|February|March|April|May|June|July|August|"
                       r"September|October|November|December)\s+(\d{1,2}),?\s+(\d{4})\b")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ'-]+")
_CAP = r"[A-ZÀ-Ö][a-zà-öø-ÿ]+(?:-[A-ZÀ-Ö][a-zà-öø-ÿ]+)?"
_SP = r"[ \t]+"
_TITLES = "|".join(lexicon.NAME_TITLES)
_PERSON = re.compile(rf"\b({_CAP}(?:{_SP}[A-Z]\.)?(?:{_SP}{_CAP}){{1,2}})\b")
_TITLED = re.compile(rf"\b((?:{_TITLES})\.?{_SP}{_CAP}(?:{_SP}{_CAP})?)")
_LABELED = re.compile(rf"(?im)^[ \t]*(?:name|from|contact|attn|attention|signed|by)[ \t]*:[ \t]*({_CAP}(?:{_SP}{_CAP}){{1,2}})")
_ORG_WORD = r"(?:[A-Z][A-Za-z0-9&'.-]*|&|of|and|the|for)"
_ORG_SUFFIX = "|".join(re.escape(s) for s in sorted(lexicon.ORG_SUFFIXES, key=len, reverse=True))
_ORG = re.compile(rf"\b((?:[A-Z][A-Za-z0-9&'.-]*{_SP})(?:{_ORG_WORD}{_SP}){{0,3}}(?:{_ORG_SUFFIX}))(?![A-Za-z])")
_ROLE = re.compile(r"\b((?:(?:Senior|Junior|Chief|Lead|Principal|Associate|Assistant|General|Regional|Managing|"
                   r"Executive|Deputy|Staff|Account|Product|Project|Program|Sales|Marketing|Finance|Financial|Operations|"
                   r"Office|Engineering|Technical|Legal|Support|Customer Success|Software|Data)[ \t]+)*(?:Head of [A-Z][A-Za-z]+(?:[ \t]+[A-Z][A-Za-z]+)?|"
                   + "|".join(re.escape(r) for r in sorted(lexicon.ROLE_WORDS, key=len, reverse=True))
                   + r")(?:[ \t]+(?:of|for)[ \t]+[A-Z][A-Za-z]+(?:[ \t]+[A-Z][A-Za-z]+)?)?)\b")
_ABBREVIATION = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|St|Inc|Ltd|Co|Corp|Jr|Sr|No|Nr|vs|etc|e\.g|i\.e|approx|attn|Attn|ref|Ref|Tel|tel|Fax|fig|Fig|cf|Dept|dept)|\b[A-Z])\.$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


@dataclass
class Contact:
    """A person or an address found in the text; None where the text does not say."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    role: str | None = None


def emails(text: str) -> list[str]:
    """E-mail addresses in order of first appearance."""
    return _unique(m.group(0).rstrip(".") for m in EMAIL.finditer(text))


_NUMERIC_DATE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")


def _local_layout(value: str) -> bool:
    """Without a country code or area parentheses, only common layouts count as phones:
    555-0100, 555-123-4567, 020 7946 0958 (not 2026-31337 or an order number)."""
    groups = re.split(r"[\s.-]+", value)
    if len(groups) == 2:
        return [len(g) for g in groups] == [3, 4]
    return len(groups) >= 3 and 1 <= len(groups[0]) <= 4 and all(2 <= len(g) <= 4 for g in groups[1:])


def phones(text: str) -> list[str]:
    """Phone numbers: 7 to 15 digits in a phone-like layout, dates and plain numbers excluded."""
    found = []
    for match in PHONE.finditer(text):
        value = match.group(0).strip()
        digits = re.sub(r"\D", "", value)
        if not 7 <= len(digits) <= 15 or ISO_DATE.fullmatch(value) or _NUMERIC_DATE.fullmatch(value):
            continue
        if not value.startswith(("+", "(")) and not _local_layout(value):
            continue
        found.append(value)
    return _unique(found)


def urls(text: str) -> list[str]:
    """http(s) URLs without trailing punctuation."""
    return _unique(m.group(0).rstrip(".,;") for m in URL.finditer(text))


def dates(text: str) -> list[str]:
    """Dates written out in the text, as ISO 8601 ``YYYY-MM-DD``, in order of appearance."""
    found: list[tuple[int, str]] = [(m.start(), m.group(0)) for m in ISO_DATE.finditer(text)]
    for m in TEXT_DATE.finditer(text):
        if m.group(1):
            day, month, year = m.group(1), m.group(2), m.group(3)
        else:
            month, day, year = m.group(4), m.group(5), m.group(6)
        found.append((m.start(), f"{year}-{_MONTHS.index(month.lower()) + 1:02d}-{int(day):02d}"))
    return _unique(v for _, v in sorted(found))


def _is_name(candidate: str) -> bool:
    words = [w for w in candidate.replace(".", " ").split() if len(w) > 1]
    if len(words) < 2:
        return False
    return not any(w.lower() in lexicon.NOT_NAME_WORDS or w in lexicon.ORG_SUFFIXES for w in words)


def people(text: str) -> list[tuple[str, int]]:
    """``(name, position)`` of people: titled or labelled names, capitalised pairs whose
    first word is a common first name, and names spelled by e-mail addresses."""
    found: list[tuple[str, int]] = []
    for pattern in (_TITLED, _LABELED):
        for m in pattern.finditer(text):
            name = m.group(1)
            if pattern is _TITLED or _is_name(name):
                found.append((name, m.start(1)))
    for m in _PERSON.finditer(text):
        name = m.group(1)
        if _is_name(name) and name.split()[0].lower() in lexicon.FIRST_NAMES:
            found.append((name, m.start(1)))
    pairs = [(m.group(1), m.start(1)) for m in _PERSON.finditer(text) if _is_name(m.group(1))]
    for match in EMAIL.finditer(text):
        address = match.group(0)
        spelled = name_from_email(address)
        if spelled:
            where = text.lower().find(spelled.lower())
            if where >= 0:
                found.append((text[where:where + len(spelled)], where))
        local = address.split("@", 1)[0].lower()
        for name, pos in pairs:
            just_before = 0 <= match.start() - (pos + len(name)) <= 3
            if just_before or local in {w.lower() for w in name.split()}:
                found.append((name, pos))
    best: dict[str, tuple[str, int]] = {}
    for name, pos in sorted(found, key=lambda item: item[1]):
        key = name.lower()
        if key not in best and not any(key in other for other in best):
            best[key] = (name, pos)
    return sorted(best.values(), key=lambda item: item[1])


def name_from_email(address: str) -> str | None:
    """``jane.doe@x`` -> "Jane Doe"; None when the local part does not spell a name."""
    local = address.split("@", 1)[0]
    parts = [p for p in re.split(r"[._-]", local) if p]
    if len(parts) == 2 and all(p.isalpha() and len(p) > 1 for p in parts):
        return " ".join(p.capitalize() for p in parts)
    return None


def organisations(text: str) -> list[tuple[str, int]]:
    """``(name, position)`` of organisations: capitalised names ending in Inc, Ltd, Bank..."""
    found = []
    for m in _ORG.finditer(text):
        name = re.sub(r"^(?:The|At|From|With|For|Of|And|To|In|By|Dear)\s+", "", m.group(1)).strip()
        if name.split()[0] in lexicon.ORG_SUFFIXES or name.split()[0].lower() in lexicon.NOT_NAME_WORDS - {"bank"}:
            continue
        found.append((name, m.start(1) + m.group(1).find(name)))
    return list({n.lower(): (n, p) for n, p in reversed(found)}.values())[::-1]


_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc", "or", "ne", "go"}


def company_from_domain(address: str, known: list[str]) -> str | None:
    """The organisation an e-mail's domain names: one of ``known`` when it matches."""
    labels = address.rsplit("@", 1)[-1].lower().split(".")
    while len(labels) > 2 and labels[-2] in _SECOND_LEVEL:
        labels.pop()
    stem = labels[-2] if len(labels) >= 2 else labels[0]
    if stem in lexicon.FREE_MAIL:
        return None
    for name in known:
        if re.sub(r"[^a-z0-9]", "", name.lower()).startswith(stem.replace("-", "")):
            return name
    return stem.replace("-", " ").title()


def roles(text: str) -> list[tuple[str, int]]:
    """``(title, position)`` of job titles such as "CFO" or "Head of Engineering"."""
    return [(m.group(1), m.start(1)) for m in _ROLE.finditer(text)]


def contacts(text: str, limit: int = 20) -> list[Contact]:
    """People with what the text says about them nearby, then addresses nobody claims."""
    persons = people(text)
    orgs = organisations(text)
    org_names = [n for n, _ in orgs]
    found_roles = roles(text)
    all_emails = emails(text)
    all_phones = [(p, text.find(p)) for p in phones(text)]
    email_pos = [(e, text.find(e)) for e in all_emails]
    used_emails: set[str] = set()
    used_phones: set[str] = set()
    out: list[Contact] = []
    for i, (name, pos) in enumerate(persons):
        para_start, para_end = _paragraph(text, pos)
        end = persons[i + 1][1] if i + 1 < len(persons) else len(text)
        window_end = min(end, para_end, pos + len(name) + 250)
        previous_end = persons[i - 1][1] + len(persons[i - 1][0]) if i else 0
        start = max(para_start, previous_end, pos - 80)
        contact = Contact(name=name)
        tokens = {t.lower() for t in name.split() if len(t) > 1}
        for address, _ in email_pos:
            local = address.split("@")[0].lower()
            if address not in used_emails and any(t in local for t in tokens):
                contact.email = address
                break
        if contact.email is None:
            contact.email = _nearest(email_pos, pos, start, window_end, used_emails)
        if contact.email:
            used_emails.add(contact.email)
        contact.phone = _nearest(all_phones, pos, pos, window_end, used_phones)
        if contact.phone:
            used_phones.add(contact.phone)
        clause_start, clause_end = _clause(text, pos)
        contact.role = (_role_just_before(text, pos)
                        or _nearest(found_roles, pos, max(start, clause_start), min(window_end, clause_end), set())
                        or _nearest(found_roles, pos, start, window_end, set()))
        contact.company = (_nearest(orgs, pos, max(start, clause_start), min(window_end, clause_end), set())
                           or _nearest(orgs, pos, start, window_end, set()))
        if contact.company is None and contact.email:
            contact.company = company_from_domain(contact.email, org_names)
        out.append(contact)
    for address, pos in email_pos:
        if address in used_emails:
            continue
        phone = _nearest(all_phones, pos, pos - 120, pos + len(address) + 120, used_phones)
        if phone:
            used_phones.add(phone)
        out.append(Contact(name=name_from_email(address), email=address, phone=phone,
                           company=company_from_domain(address, org_names)))
    if not out:
        out.extend(Contact(phone=p) for p, _ in all_phones[:3])
    return out[:limit]


_CLAUSE_END = re.compile(r"\.\s(?=\s*[A-Z])|;\s|,\s+and\s|\n[ \t]*\n")
_ROLE_BEFORE = re.compile(r"\b((?:(?:managing|senior|general|executive|chief|lead|founding)\s+)?(?:" + "|".join(
    re.escape(r) for r in sorted(lexicon.ROLE_WORDS, key=len, reverse=True)) + r"))\s+$", re.I)


def _clause(text: str, pos: int) -> tuple[int, int]:
    """Bounds of the clause around ``pos`` ("X Ltd, represented by its CEO Jane Doe, and
    ..."): what a person is said to be, or to work for, is said there."""
    before = [m.end() for m in _CLAUSE_END.finditer(text, max(0, pos - 300), pos)]
    after = _CLAUSE_END.search(text, pos)
    return (before[-1] if before else 0), (after.start() if after else len(text))


def _role_just_before(text: str, pos: int) -> str | None:
    """"its CEO Jane Doe", "managing partner Daniel Okafor": a title right before a name."""
    match = _ROLE_BEFORE.search(text[max(0, pos - 40):pos])
    return match.group(1) if match else None


def _paragraph(text: str, pos: int) -> tuple[int, int]:
    """Bounds of the blank-line separated block around ``pos``."""
    before = [m.end() for m in re.finditer(r"\n[ \t]*\n", text[:pos])]
    after = re.search(r"\n[ \t]*\n", text[pos:])
    return (before[-1] if before else 0), (pos + after.start() if after else len(text))


def _nearest(items: list[tuple[str, int]], anchor: int, start: int, end: int, used: set[str]) -> str | None:
    best: tuple[int, str] | None = None
    for value, pos in items:
        if start <= pos <= end and value not in used:
            distance = abs(pos - anchor)
            if best is None or distance < best[0]:
                best = (distance, value)
    return best[1] if best else None


_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)]|#+)\s+")


def _is_prose(lines: list[str]) -> bool:
    """Wrapped paragraph lines (joined) rather than a list, a table or a signature."""
    if len(lines) < 2 or any(_LIST_ITEM.match(line) for line in lines):
        return False
    return sum(len(line) for line in lines[:-1]) / (len(lines) - 1) >= 40


def _drop_code_and_tables(text: str) -> str:
    """Code fences and table rows are not prose: summaries should not quote them."""
    kept, fenced = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced or stripped.startswith("|") or (stripped and not re.search(r"[A-Za-z0-9]", stripped)):
            kept.append("")
            continue
        kept.append(line)
    return "\n".join(kept)


def sentences(text: str) -> list[str]:
    """Sentences, and lines that stand alone (headings, list items), in order."""
    out = []
    for block in re.split(r"\n\s*\n", _drop_code_and_tables(text)):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        for part in [" ".join(lines)] if _is_prose(lines) else lines:
            pending = ""
            for sentence in _SENTENCE_END.split(_LIST_ITEM.sub("", part)):
                pending = f"{pending} {sentence}".strip()
                if not _ABBREVIATION.search(pending):
                    if len(pending) > 1:
                        out.append(pending)
                    pending = ""
            if len(pending) > 1:
                out.append(pending)
    return out


def words(text: str) -> list[str]:
    """Lower-cased words of two letters or more."""
    return [w.lower() for w in _WORD.findall(text)]


def keywords(text: str, n: int = 5) -> list[str]:
    """The ``n`` most frequent content words, most frequent first (ties by first use)."""
    all_words = words(text)
    counts = Counter(w for w in all_words if len(w) > 3 and w not in lexicon.STOPWORDS)
    first: dict[str, int] = {}
    for i, w in enumerate(all_words):
        first.setdefault(w, i)
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], first[kv[0]]))[:n]]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
