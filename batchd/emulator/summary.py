"""The extractive summary: a heading and the sentences that carry the text's main words.

Frequency-based sentence scoring (Luhn, 1958) is crude but deterministic, fast enough for
100,000 requests, and its output reads like a summary of *this* document, which is what
an offline run needs to show.
"""

from __future__ import annotations

from collections import Counter

from batchd.emulator import extract, lexicon


def _content_words(sentence: str) -> list[str]:
    return [w for w in extract.words(sentence) if len(w) > 2 and w not in lexicon.STOPWORDS]


def top_sentences(sentences: list[str], n: int) -> list[str]:
    """The ``n`` best sentences, in their original order."""
    if len(sentences) <= n:
        return list(sentences)
    bags = [_content_words(s) for s in sentences]
    freq = Counter(w for bag in bags for w in bag)
    candidates = [i for i, bag in enumerate(bags)
                  if len(bag) >= 4 and len(sentences[i].split()) >= 6 and sentences[i][-1:] in ".!?:;)\"'"]
    candidates = candidates or [i for i, bag in enumerate(bags) if len(bag) >= 2] or list(range(len(sentences)))
    scores = {}
    for i in candidates:
        bag = bags[i]
        score = sum(freq[w] for w in set(bag)) / (len(bag) ** 0.5 if bag else 1)
        if len(sentences[i]) > 300:
            score *= 300 / len(sentences[i])
        scores[i] = score * (1.25 if i == candidates[0] else 1.0)
    best = sorted(candidates, key=lambda i: (-scores[i], i))[:n]
    return [sentences[i] for i in sorted(best)]


def bullet_count(sentence_count: int) -> int:
    """Three points for a note, more for a long document, never more than seven."""
    return min(7, 3 + sentence_count // 25)


def summarize(subject: str, images: list[str], unreadable: list[str]) -> str:
    """Markdown: ``## Summary``, bullet points, and the key terms."""
    sentences = extract.sentences(subject)
    points = top_sentences(sentences, bullet_count(len(sentences)))
    lines = ["## Summary", ""]
    lines += [f"- {p}" for p in points]
    lines += [f"- The input includes {d}; this offline emulator does not look at images, so it cannot say "
              f"what the picture shows." for d in images]
    lines += [f"- The input includes {d}." for d in unreadable]
    if not points and not images and not unreadable:
        lines.append("- The input contains no text to summarize.")
    terms = extract.keywords(subject, 5)
    if terms and len(sentences) > 1:
        lines += ["", f"**Key terms:** {', '.join(terms)}"]
    return "\n".join(lines) + "\n"
