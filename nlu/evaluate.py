"""Scores an :class:`nlu.types.Nlu` on the held-out split and writes the report.

Scoring rules (the same for Rasa and the keyword matcher):

- **Intent accuracy** over every example. A request outside the 12 categories may come out as
  ``lapor`` + ``lainnya`` or as ``di_luar_topik``: both count as right for ``lapor/lainnya`` and
  for ``di_luar_topik`` examples (the "strict" figure does not allow the swap).
- **Category accuracy** over the ``lapor/<code>`` examples: right when the intent is ``lapor`` and
  the category is ``<code>`` (or, for ``lainnya``, the intent is ``di_luar_topik``). A report read
  as another intent is wrong and shows up in the confusion matrix as "bukan lapor".
- **Entities**: exact (type, start, end) matches against the annotated spans.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from PIL import Image, ImageDraw, ImageFont

from nlu.client import CATEGORIES
from nlu.types import INTENTS, Nlu, Understanding

HOLDOUT = Path(__file__).resolve().parent / "eval" / "holdout.yml"
NOT_LAPOR = "bukan lapor"

_SPAN = re.compile(r"\[([^\]]+)\](?:\((\w+)(?::[^)]*)?\)|\{\"entity\":\s*\"(\w+)\"[^}]*\})")


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    category: str | None
    entities: tuple[tuple[str, int, int], ...] = ()


def parse_example(raw: str) -> tuple[str, tuple[tuple[str, int, int], ...]]:
    """Strip Rasa's ``[span](entity)`` markup; return the text and the (entity, start, end)s."""
    out: list[str] = []
    spans: list[tuple[str, int, int]] = []
    pos = 0
    length = 0
    for m in _SPAN.finditer(raw):
        out.append(raw[pos : m.start()])
        length += m.start() - pos
        span_text = m.group(1)
        spans.append((m.group(2) or m.group(3), length, length + len(span_text)))
        out.append(span_text)
        length += len(span_text)
        pos = m.end()
    out.append(raw[pos:])
    return "".join(out), tuple(spans)


def load_holdout(path: Path = HOLDOUT) -> list[Example]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    examples: list[Example] = []
    for block in doc.get("nlu", []) or []:
        label = block.get("intent")
        if not label:
            continue
        intent, _, category = str(label).partition("/")
        for line in str(block.get("examples", "")).splitlines():
            line = line.strip()
            if line.startswith("- "):
                text, spans = parse_example(line[2:].strip())
                examples.append(Example(text, intent, category or None, spans))
    return examples


@dataclass
class Scores:
    name: str
    n: int = 0
    intent_ok: int = 0
    intent_ok_strict: int = 0
    lapor_n: int = 0
    category_ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    # (gold category, predicted category or NOT_LAPOR)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    intent_confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    entity_tp: Counter[str] = field(default_factory=Counter)
    entity_fp: Counter[str] = field(default_factory=Counter)
    entity_fn: Counter[str] = field(default_factory=Counter)
    # overlap: a gold span found by any predicted span of its type that overlaps it, and back
    entity_gold_hit: Counter[str] = field(default_factory=Counter)
    entity_pred_hit: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    # per report: (category confidence, right) — how far the engine's thresholds can be trusted
    calibration: list[tuple[float, bool]] = field(default_factory=list)

    def band(self, low: float, high: float = 1.01) -> tuple[float, float, int]:
        """Share of reports whose category confidence is in [low, high), their accuracy, n."""
        inside = [ok for conf, ok in self.calibration if low <= conf < high]
        total = len(self.calibration)
        share = len(inside) / total if total else 0.0
        return share, (sum(inside) / len(inside) if inside else 0.0), len(inside)

    @property
    def intent_accuracy(self) -> float:
        return self.intent_ok / self.n if self.n else 0.0

    @property
    def intent_accuracy_strict(self) -> float:
        return self.intent_ok_strict / self.n if self.n else 0.0

    @property
    def category_accuracy(self) -> float:
        return self.category_ok / self.lapor_n if self.lapor_n else 0.0

    def latency(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def per_category(self) -> dict[str, tuple[float, float, float, int]]:
        """code -> (precision, recall, F1, support)."""
        out: dict[str, tuple[float, float, float, int]] = {}
        for code in CATEGORIES:
            tp = self.confusion[(code, code)]
            predicted = sum(n for (_, p), n in self.confusion.items() if p == code)
            support = sum(n for (g, _), n in self.confusion.items() if g == code)
            precision = tp / predicted if predicted else 0.0
            recall = tp / support if support else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            out[code] = (precision, recall, f1, support)
        return out

    def macro_f1(self) -> float:
        rows = [f1 for (_, _, f1, support) in self.per_category().values() if support]
        return statistics.fmean(rows) if rows else 0.0

    def entity_scores(self) -> dict[str, tuple[float, float, float, float, int]]:
        """entity -> (exact precision, exact recall, exact F1, overlap F1, support)."""
        out: dict[str, tuple[float, float, float, float, int]] = {}
        for name in sorted(set(self.entity_tp) | set(self.entity_fn) | set(self.entity_fp)):
            tp, fp, fn = self.entity_tp[name], self.entity_fp[name], self.entity_fn[name]
            gold, predicted = tp + fn, tp + fp
            p = tp / predicted if predicted else 0.0
            r = tp / gold if gold else 0.0
            op = self.entity_pred_hit[name] / predicted if predicted else 0.0
            orc = self.entity_gold_hit[name] / gold if gold else 0.0
            out[name] = (p, r, _f1(p, r), _f1(op, orc), gold)
        return out


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score_one(s: Scores, ex: Example, u: Understanding) -> None:
    s.n += 1
    s.intent_confusion[(ex.intent, u.intent)] += 1
    out_of_scope = {ex.category, ex.intent} & {"lainnya", "di_luar_topik"}
    predicted_oos = u.intent == "di_luar_topik" or (u.intent == "lapor" and u.category == "lainnya")
    strict = u.intent == ex.intent
    s.intent_ok_strict += strict
    s.intent_ok += strict or bool(out_of_scope and predicted_oos)
    if ex.intent == "lapor" and ex.category:
        s.lapor_n += 1
        if u.intent == "lapor" and u.category:
            predicted = u.category
        elif ex.category == "lainnya" and u.intent == "di_luar_topik":
            predicted = "lainnya"
        else:
            predicted = NOT_LAPOR
        s.confusion[(ex.category, predicted)] += 1
        s.category_ok += predicted == ex.category
        confidence = u.category_confidence if u.intent == "lapor" else 0.0
        s.calibration.append((confidence, predicted == ex.category))
    gold = Counter((name, a, b) for name, a, b in ex.entities)
    got = Counter(
        (e.entity, e.start, e.end) for e in u.entities if e.start is not None and e.end is not None
    )
    for key, n in (gold & got).items():
        s.entity_tp[key[0]] += n
    for key, n in (got - gold).items():
        s.entity_fp[key[0]] += n
    for key, n in (gold - got).items():
        s.entity_fn[key[0]] += n
    for name, a, b in ex.entities:
        s.entity_gold_hit[name] += any(n == name and x < b and a < y for n, x, y in got)
    for name, a, b in got.elements():
        s.entity_pred_hit[name] += any(n == name and x < b and a < y for n, x, y in ex.entities)


async def evaluate(name: str, nlu: Nlu, examples: Sequence[Example]) -> Scores:
    s = Scores(name)
    for ex in examples:
        started = time.perf_counter()
        u = await nlu.parse(ex.text)
        s.latencies_ms.append((time.perf_counter() - started) * 1000)
        s.sources[u.source] += 1
        score_one(s, ex, u)
    return s


# ---- report ----------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def render_markdown(
    main: Scores,
    others: Iterable[Scores],
    *,
    holdout: Path,
    train_note: str,
    png_name: str,
) -> str:
    others = list(others)
    lines = [
        "# Kanal NLU evaluation",
        "",
        f"Held-out split: `{holdout.name}` ({main.n} messages, {main.lapor_n} reports), "
        "written separately from the training data and never trained on.",
        f"Model: {train_note}",
        "",
        "## Headline",
        "",
        "| NLU | intent acc. | intent acc. (strict) | category acc. | category macro-F1 |"
        " p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in (main, *others):
        lines.append(
            f"| {s.name} | {_pct(s.intent_accuracy)} | {_pct(s.intent_accuracy_strict)} | "
            f"{_pct(s.category_accuracy)} | {s.macro_f1():.3f} | {s.latency(0.5):.1f} | "
            f"{s.latency(0.99):.1f} |"
        )
    lines += [
        "",
        "## Calibration: what the engine does with the category",
        "",
        "The engine takes a category without asking at confidence ≥ 0.6, asks the citizen to "
        "confirm it at ≥ 0.3, and shows the 12-item menu below that.",
        "",
        "| NLU | trusted: share | trusted: accuracy | confirmed: share | confirmed: accuracy |"
        " menu: share |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in (main, *others):
        t_share, t_acc, _ = s.band(0.6)
        c_share, c_acc, _ = s.band(0.3, 0.6)
        m_share, _, _ = s.band(-1.0, 0.3)
        lines.append(
            f"| {s.name} | {_pct(t_share)} | {_pct(t_acc)} | {_pct(c_share)} | {_pct(c_acc)} | "
            f"{_pct(m_share)} |"
        )
    lines += [
        "",
        "Intent accuracy lets `lapor/lainnya` and `di_luar_topik` stand for each other (a request "
        "outside the 12 categories may come out as either); strict does not. Category accuracy is "
        "over reports only. Latency is per message through the client the bots use.",
        "",
        f"## Per category ({main.name})",
        "",
        "| category | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for code, (p, r, f1, n) in main.per_category().items():
        lines.append(f"| `{code}` | {p:.3f} | {r:.3f} | {f1:.3f} | {n} |")
    lines += ["", f"![confusion matrix]({png_name})", "", "## Confusion matrix (rows: truth)", ""]
    cols = [*CATEGORIES, NOT_LAPOR]
    lines.append("| | " + " | ".join(_short(c) for c in cols) + " |")
    lines.append("|---" * (len(cols) + 1) + "|")
    for gold in CATEGORIES:
        cells = [str(main.confusion[(gold, c)] or "·") for c in cols]
        lines.append(f"| `{gold}` | " + " | ".join(cells) + " |")
    lines += ["", f"## Per intent ({main.name})", "", "| intent | right | of | read as |"]
    lines.append("|---|---:|---:|---|")
    for intent in INTENTS:
        row = {p: n for (g, p), n in main.intent_confusion.items() if g == intent}
        total = sum(row.values())
        if not total:
            continue
        wrong = ", ".join(f"{p} ×{n}" for p, n in sorted(row.items()) if p != intent)
        lines.append(f"| `{intent}` | {row.get(intent, 0)} | {total} | {wrong or '—'} |")
    ents = main.entity_scores()
    if ents:
        lines += ["", f"## Entities ({main.name})", ""]
        lines += [
            "| entity | precision | recall | F1 | F1, overlapping span | support |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, (p, r, f1, of1, n) in ents.items():
            lines.append(f"| `{name}` | {p:.3f} | {r:.3f} | {f1:.3f} | {of1:.3f} | {n} |")
        lines += [
            "",
            "Precision, recall and F1 count exact spans; the overlap F1 counts a span as found "
            'when a predicted span of the same type overlaps it ("gang Kramat" for '
            '"gang Kramat Lontar").',
        ]
    lines += [
        "",
        f"## Latency ({main.name})",
        "",
        f"p50 {main.latency(0.5):.1f} ms, p95 {main.latency(0.95):.1f} ms, "
        f"p99 {main.latency(0.99):.1f} ms, max {max(main.latencies_ms, default=0):.1f} ms "
        f"over {len(main.latencies_ms)} sequential parses; answered by "
        + ", ".join(f"{k} ×{v}" for k, v in sorted(main.sources.items()))
        + ".",
        "",
    ]
    return "\n".join(lines)


def _short(code: str) -> str:
    return {"fasilitas_umum": "fasum", "lalu_lintas": "lalin", "parkir_liar": "parkir"}.get(
        code, code.replace("_", " ")
    )


def render_confusion_png(s: Scores, path: Path) -> None:
    """A heat-map of the category confusion matrix (rows: truth, columns: prediction)."""
    cols = [*CATEGORIES, NOT_LAPOR]
    cell, left, top = 44, 150, 150
    width, height = left + cell * len(cols) + 20, top + cell * len(CATEGORIES) + 50
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    small = ImageFont.load_default(size=12)
    draw.text(
        (10, 10),
        f"{s.name}: category confusion ({s.lapor_n} reports, acc. {_pct(s.category_accuracy)})",
        fill="black",
        font=font,
    )
    draw.text((10, top - 40), "rows: truth", fill="gray", font=small)
    draw.text((10, top - 22), "columns: prediction", fill="gray", font=small)
    for j, col in enumerate(cols):
        label = Image.new("RGBA", (top - 30, 16), (255, 255, 255, 0))
        ImageDraw.Draw(label).text((0, 0), _short(col), fill="black", font=small)
        rotated = label.rotate(90, expand=True)
        img.paste(rotated, (left + j * cell + cell // 2 - 8, 28), rotated)
    for i, gold in enumerate(CATEGORIES):
        y = top + i * cell
        draw.text((10, y + cell // 2 - 7), _short(gold), fill="black", font=small)
        support = sum(s.confusion[(gold, c)] for c in cols) or 1
        for j, col in enumerate(cols):
            x = left + j * cell
            n = s.confusion[(gold, col)]
            share = n / support
            if gold == col:
                color = (int(255 - 200 * share), int(255 - 90 * share), int(255 - 200 * share))
            else:
                color = (255, int(255 - 200 * share), int(255 - 200 * share))
            draw.rectangle((x, y, x + cell - 2, y + cell - 2), fill=color, outline=(220, 220, 220))
            if n:
                draw.text((x + cell // 2 - 6, y + cell // 2 - 7), str(n), fill="black", font=font)
    img.save(path, format="PNG")


__all__ = [
    "HOLDOUT",
    "Example",
    "Scores",
    "evaluate",
    "load_holdout",
    "parse_example",
    "render_confusion_png",
    "render_markdown",
    "score_one",
]
