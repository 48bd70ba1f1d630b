"""Scoring rules and report of `kanal nlu eval`, on hand-made answers (no server needed)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from nlu.evaluate import (
    HOLDOUT,
    NOT_LAPOR,
    Example,
    Scores,
    load_holdout,
    parse_example,
    render_confusion_png,
    render_markdown,
    score_one,
)
from nlu.types import Entity, Understanding


def test_annotations_become_spans() -> None:
    text, spans = parse_example(
        'sampah di [gang Mawar](lokasi) kel. [Kwitang]{"entity": "kelurahan"} nilai [lima](rating)'
    )
    assert text == "sampah di gang Mawar kel. Kwitang nilai lima"
    assert [(name, text[a:b]) for name, a, b in spans] == [
        ("lokasi", "gang Mawar"),
        ("kelurahan", "Kwitang"),
        ("rating", "lima"),
    ]


def test_holdout_is_readable_and_covers_every_category() -> None:
    examples = load_holdout(HOLDOUT)
    assert {e.category for e in examples if e.intent == "lapor"} >= {"sampah", "lainnya"}
    assert all("[" not in e.text for e in examples)


def test_scoring_rules() -> None:
    s = Scores("x")
    # right category
    score_one(s, Example("a", "lapor", "banjir"), Understanding("lapor", 0.9, "banjir", 0.8))
    # a request outside the categories may come out as di_luar_topik, and the other way round
    score_one(s, Example("b", "lapor", "lainnya"), Understanding("di_luar_topik", 0.9))
    score_one(s, Example("c", "di_luar_topik", None), Understanding("lapor", 0.9, "lainnya", 0.7))
    # a report read as another intent is wrong
    score_one(s, Example("d", "lapor", "pohon"), Understanding("salam", 0.9))
    assert (s.n, s.intent_ok, s.intent_ok_strict) == (4, 3, 1)
    assert (s.lapor_n, s.category_ok) == (3, 2)
    assert s.confusion[("pohon", NOT_LAPOR)] == 1
    assert s.per_category()["banjir"] == (1.0, 1.0, 1.0, 1)


def test_entity_scores_exact_and_overlapping() -> None:
    s = Scores("x")
    ex = Example("gang Kramat Lontar", "lapor", "sampah", (("lokasi", 0, 18),))
    u = Understanding("lapor", 1, "sampah", 1, (Entity("lokasi", "gang Kramat", 0, 11),))
    score_one(s, ex, u)
    p, r, f1, overlap_f1, support = s.entity_scores()["lokasi"]
    assert (p, r, f1, overlap_f1, support) == (0.0, 0.0, 0.0, 1.0, 1)


def test_report_and_png(tmp_path: Path) -> None:
    s = Scores("Rasa")
    score_one(s, Example("a", "lapor", "banjir"), Understanding("lapor", 0.9, "banjir", 0.8))
    s.latencies_ms = [5.0, 7.0, 30.0]
    md = render_markdown(s, [], holdout=HOLDOUT, train_note="m", png_name="c.png")
    assert "| `banjir` | 1.000 | 1.000 | 1.000 | 1 |" in md and "![confusion matrix](c.png)" in md
    render_confusion_png(s, tmp_path / "c.png")
    with Image.open(tmp_path / "c.png") as img:
        assert img.format == "PNG" and img.width > 500
