"""The alert score: a documented weighted sum of the match and the signals, shown on
every alert (its explanation's score parts) and published in the transparency report.

    score = 0.45 * severity_weight      the watch's severity: 0.25 / 0.5 / 0.75 / 1.0
          + 0.35 * match_strength       distinct query parts that matched, over 3, capped at 1
          + 0.10 * toxicity             0..1, English texts only (docs/signals.md)
          + 0.10 * threat               0..1, English texts only (docs/signals.md)

Every part is between 0 and its weight, so the score is between 0 and 1. A signal that
was not computed (a text that is not English, a post scored before signals existed)
adds nothing and is left out of the parts: it neither raises nor lowers the alert.
Language, sentiment and the near-duplicate group are shown beside an alert but carry no
weight. Spikes are aggregate alerts of their own and do not enter a post's score.

A score only orders the queue. It never decides anything about a person: every action
on an alert is a named person's, with recorded reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

from watchfloor.model import Explanation, PostSignals, Watch

SEVERITY_FACTOR = 0.45
MATCH_FACTOR = 0.35
TOXICITY_FACTOR = 0.10
THREAT_FACTOR = 0.10
MATCH_SATURATION = 3


@dataclass(frozen=True, slots=True)
class ScorePart:
    name: str
    weight: float
    what: str


#: The formula as data, for the transparency report and the docs (weights sum to 1).
SCORE_FORMULA: tuple[ScorePart, ...] = (
    ScorePart("severity", SEVERITY_FACTOR, "the watch's severity: low 0.25, medium 0.5, high 0.75, urgent 1"),
    ScorePart("match", MATCH_FACTOR, f"distinct query parts that matched / {MATCH_SATURATION}, at most 1"),
    ScorePart("toxicity", TOXICITY_FACTOR, "offensive-language score of the text, 0..1 (English only)"),
    ScorePart("threat", THREAT_FACTOR, "targeted-hate score of the text, 0..1 (English only)"),
)


def score_hit(watch: Watch, explanation: Explanation, signals: PostSignals | None = None) -> tuple[float, Explanation]:
    """Return the score and the explanation with its score parts filled in."""
    parts_matched = len({h.term for h in explanation.hits if h.kind != "filter"})
    parts = [
        ("severity", SEVERITY_FACTOR * watch.severity.weight),
        ("match", MATCH_FACTOR * min(1.0, parts_matched / MATCH_SATURATION)),
    ]
    if signals is not None and signals.toxicity is not None:
        parts.append(("toxicity", TOXICITY_FACTOR * min(1.0, max(0.0, signals.toxicity))))
    if signals is not None and signals.threat is not None:
        parts.append(("threat", THREAT_FACTOR * min(1.0, max(0.0, signals.threat))))
    rounded = tuple((name, round(value, 4)) for name, value in parts)
    return round(sum(value for _, value in parts), 4), Explanation(hits=explanation.hits, score_parts=rounded)
