"""The keyword matcher: a small naive-Bayes classifier built from the Rasa training data.

It serves when Rasa is not configured, unreachable or slow. It reads the same ``nlu/data/*.yml``
the Rasa model is trained on (``lapor/<category>`` retrieval intents give the category), so
both learn from one source. Typos are mapped to the nearest known word with rapidfuzz.
A few rules sit in front of it: tracking numbers, ratings and emergencies.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import yaml
from rapidfuzz import fuzz, process

from nlu.normalize import normalize
from nlu.types import Entity, Understanding

DATA_DIR = Path(__file__).resolve().parent / "data"
# Training files the keyword matcher does not learn from. It spots emergencies by pattern; and
# trained on the 3,000 long reports it read more categories right (92 % on eval/realistic.yml
# against 80 %) but took a thank-you ("terima kasih min, sampahnya sudah diangkut") or spam for
# a report, so it keeps to nlu.yml's short examples until that is solved.
RASA_ONLY = frozenset({"emergencies.yml", "reports.yml"})

_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
_TRACKING = re.compile(r"(?<!\d)(\d{5,10})(?!\d)")
_STATUS_WORDS = re.compile(r"\b(cek|cék|status|lacak|track|nomor|no|laporan|tiket)\b", re.I)
# Words that make an emergency word hypothetical or past: "rawan begal", "bahaya kebakaran",
# "sebelum terjadi kecelakaan", "demam berdarah". Then the classifier decides, not the rule.
_HEDGE = re.compile(
    r"\b(rawan|bahaya|berbahaya|membahayakan|sebelum|takut|khawatir|bisa|berpotensi|potensi|"
    r"demam|dbd|nanti|sering|pernah|kemarin|lalu|bekas|sisa|mencegah|cegah|hindari)\b"
)
_RATING = re.compile(
    r"^\s*(?:nilai|rating|bintang|skor)?\s*([1-5])\s*(?:bintang|/5|dari 5)?\s*$", re.I
)
_EMERGENCY = re.compile(
    r"\b(kebakaran|terbakar|kobaran api|kecelakaan|tabrakan|begal|dibegal|perampok\w*|"
    r"dirampok|penjambretan|dijambret|penusukan|ditusuk|tawuran|tenggelam|hanyut|pingsan|"
    r"tidak sadarkan diri|sekarat|berdarah|penculikan|diculik|pembunuhan|bunuh diri|"
    r"korsleting|meledak|ledakan|darurat|emergency|sos)\b",
    re.I,
)


def strip_annotations(example: str) -> str:
    return _ANNOTATION.sub(r"\1", example)


def load_examples(paths: Iterable[Path]) -> list[tuple[str, str]]:
    """(text, label) pairs from Rasa NLU YAML files; labels like ``salam`` or ``lapor/banjir``."""
    pairs: list[tuple[str, str]] = []
    for path in paths:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in doc.get("nlu", []) or []:
            label = block.get("intent")
            if not label:
                continue
            for line in str(block.get("examples", "")).splitlines():
                line = line.strip()
                if line.startswith("- "):
                    pairs.append((strip_annotations(line[2:].strip()), str(label)))
    return pairs


def _features(words: Sequence[str]) -> list[str]:
    return [*words, *(f"{a}_{b}" for a, b in itertools.pairwise(words))]


class KeywordMatcher:
    """Multinomial naive Bayes over words and word pairs, with coverage-scaled confidence."""

    def __init__(self, examples: Iterable[tuple[str, str]], alpha: float = 0.05) -> None:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        docs: Counter[str] = Counter()
        for text, label in examples:
            docs[label] += 1
            counts[label].update(_features(normalize(text).split()))
        if not docs:
            raise ValueError("no training examples")
        self.labels = sorted(docs)
        self.vocab = sorted({f for c in counts.values() for f in c})
        self._words = [w for w in self.vocab if "_" not in w and len(w) > 3]
        vsize = len(self.vocab)
        # Uniform priors: a big class (many examples) must not win short, ambiguous messages.
        self._prior = {lab: -math.log(len(self.labels)) for lab in self.labels}
        self._loglik: dict[str, dict[str, float]] = {}
        self._unseen: dict[str, float] = {}
        for lab in self.labels:
            total = sum(counts[lab].values()) + alpha * vsize
            self._loglik[lab] = {f: math.log((n + alpha) / total) for f, n in counts[lab].items()}
            self._unseen[lab] = math.log(alpha / total)
        self._known = set(self.vocab)
        self.salient = _salient(counts)
        self._fix = lru_cache(maxsize=20000)(self._fix_uncached)

    @classmethod
    def from_data_dir(cls, data_dir: Path = DATA_DIR) -> KeywordMatcher:
        paths = [p for p in sorted(data_dir.glob("*.yml")) if p.name not in RASA_ONLY]
        return cls(load_examples(paths))

    def _fix_uncached(self, word: str) -> str | None:
        if word in self._known:
            return word
        if len(word) < 4 or word.isdigit():
            return None
        hit = process.extractOne(word, self._words, scorer=fuzz.ratio, score_cutoff=84)
        return None if hit is None else str(hit[0])

    def featurize(self, text: str) -> tuple[list[str], float]:
        """Known features of a text (typos mapped) and the share of its words the model knows."""
        raw = normalize(text).split()
        fixed = [self._fix(w) for w in raw]
        words = [w for w in fixed if w]
        coverage = len(words) / len(raw) if raw else 0.0
        return [f for f in _features(words) if f in self._known], coverage

    def scores(self, text: str) -> tuple[dict[str, float], float]:
        """Posterior per label and the share of words the model knows."""
        feats, coverage = self.featurize(text)
        return self._posterior(feats), coverage

    def _posterior(self, feats: list[str]) -> dict[str, float]:
        logp = {
            lab: self._prior[lab] + sum(self._loglik[lab].get(f, self._unseen[lab]) for f in feats)
            for lab in self.labels
        }
        top = max(logp.values())
        exp = {lab: math.exp(v - top) for lab, v in logp.items()}
        z = sum(exp.values())
        return {lab: v / z for lab, v in exp.items()}

    def parse(self, text: str) -> Understanding:
        entities = _entities(text)
        norm = normalize(text)
        if _EMERGENCY.search(norm) and not _HEDGE.search(norm):
            return Understanding("darurat", 0.95, entities=entities)
        if entities and entities[0].entity == "nomor_laporan" and _STATUS_WORDS.search(text):
            return Understanding("cek_status", 0.95, entities=entities)
        rating = _RATING.match(text)
        if rating:
            ents = (Entity("rating", rating.group(1)),)
            return Understanding("nilai", 0.9, entities=ents)
        feats, coverage = self.featurize(text)
        post = self._posterior(feats)
        if coverage == 0.0:
            return Understanding("di_luar_topik", 0.0, entities=entities)
        scale = math.sqrt(coverage)
        intents: dict[str, float] = defaultdict(float)
        cats: dict[str, float] = {}
        for lab, p in post.items():
            intent, _, cat = lab.partition("/")
            intents[intent] += p
            if intent == "lapor" and cat:
                cats[cat] = p
        intent = max(intents, key=lambda k: intents[k])
        top = max(post, key=lambda k: post[k])
        if len(norm.split()) <= 4 and not top.startswith("lapor/"):
            # "terima kasih" alone is no report, though the twelve report labels together
            # outweigh it (many letters end with it): a short message takes its best label
            intent = top
        category, cat_conf = None, 0.0
        if cats:
            lapor_total = sum(cats.values()) or 1.0
            best = max(cats, key=lambda k: cats[k])
            category, cat_conf = best, cats[best] / lapor_total * scale
            # Trust a category only on words that point at it; generic words ("sudah lama",
            # "tolong pak") must lead to a confirmation or the menu, not a guess.
            evidence = {self.salient[f] for f in feats if f in self.salient}
            if category not in evidence:
                if evidence:
                    category = max(evidence, key=lambda k: cats.get(k, 0.0))
                    cat_conf = min(cats.get(category, 0.0) / lapor_total * scale + 0.3, 0.5)
                else:
                    cat_conf = min(cat_conf, 0.25)
        if intent != "lapor" and intent != "di_luar_topik":
            category, cat_conf = (category, cat_conf) if intents["lapor"] > 0.2 else (None, 0.0)
        return Understanding(
            intent,
            round(intents[intent] * scale, 4),
            category=category,
            category_confidence=round(cat_conf, 4),
            entities=entities,
        )


def _salient(
    counts: dict[str, Counter[str]], min_count: int = 3, min_share: float = 0.6
) -> dict[str, str]:
    """Features that point at one report category: seen ≥ min_count times, mostly in it."""
    per_feature: dict[str, Counter[str]] = defaultdict(Counter)
    for lab, counter in counts.items():
        intent, _, cat = lab.partition("/")
        if intent != "lapor" or not cat:
            continue
        for feat, n in counter.items():
            per_feature[feat][cat] += n
    salient: dict[str, str] = {}
    for feat, by_cat in per_feature.items():
        cat, n = by_cat.most_common(1)[0]
        if n >= min_count and n / sum(by_cat.values()) >= min_share:
            salient[feat] = cat
    return salient


def _entities(text: str) -> tuple[Entity, ...]:
    m = _TRACKING.search(text)
    if m:
        return (Entity("nomor_laporan", m.group(1), m.start(1), m.end(1)),)
    return ()


class FallbackNlu:
    """The :class:`nlu.types.Nlu` protocol over :class:`KeywordMatcher`."""

    def __init__(self, matcher: KeywordMatcher | None = None) -> None:
        self.matcher = matcher or KeywordMatcher.from_data_dir()

    async def parse(self, text: str) -> Understanding:
        return self.matcher.parse(text)


__all__ = ["FallbackNlu", "KeywordMatcher", "load_examples", "strip_annotations"]
