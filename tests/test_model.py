"""The copies the pipeline makes of an alert keep every field but the ones they change."""

from __future__ import annotations

from dataclasses import fields

from watchfloor.model import Alert, Explanation, TermHit


def an_alert_of_sentinels() -> tuple[Alert, dict[str, object]]:
    """An alert whose every field holds its own object (a field added later included)."""
    values: dict[str, object] = {f.name: object() for f in fields(Alert)}
    return Alert(**values), values  # type: ignore[arg-type]


def test_rescored_changes_the_score_and_explanation_only() -> None:
    alert, values = an_alert_of_sentinels()
    explanation = Explanation(hits=(TermHit("flood", "term", ((0, 5),)),), score_parts=(("severity", 0.5),))
    copy = alert.rescored(0.75, explanation)
    for f in fields(Alert):
        expected = {"score": 0.75, "explanation": explanation}.get(f.name, values[f.name])
        assert getattr(copy, f.name) is expected, f.name


def test_with_id_changes_the_id_only() -> None:
    alert, values = an_alert_of_sentinels()
    copy = alert.with_id(42)
    for f in fields(Alert):
        assert getattr(copy, f.name) == (42 if f.name == "id" else values[f.name]), f.name
