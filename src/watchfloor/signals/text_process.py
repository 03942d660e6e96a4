"""The per-text signals of matched posts, computed in a helper process.

The signal stage's per-text work — language, sentiment, toxicity and threat, and the
MinHash signature — is pure: a text gives the same result in any process. It is also the
largest cost of a matched post (≈ 0.5 ms), and in the embedded deployment it runs under
the interpreter lock of the pipeline, whose one core is the bottleneck
(docs/performance.md). With a :class:`TextSignalProcess`, one helper process does it on
another core while the pipeline normalises and matches the next batch; the stateful rest
(near-duplicate groups, burst counts, rescoring) stays in the pipeline, in batch order
(:meth:`watchfloor.signals.stage.SignalStage.annotate`).

- The helper is a :class:`~watchfloor.helper_process.HelperProcess`: spawned, gone when its
  parent is, replaced when it dies. If it dies or cannot start, those texts are computed by
  the pipeline's own stage instead (the same code, so the same results, only slower), a
  warning is logged, and a new helper is started for the next batch. Nothing is lost and
  nothing waits forever: a batch waits at most ``timeout_s`` for its texts.
- The results are those of :meth:`SignalStage.text_signals` and
  :meth:`NearDuplicateIndex.signature`, run by the helper itself
  (tests/signals/test_text_process.py compares the two ways).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING

from watchfloor.helper_process import HelperProcess

if TYPE_CHECKING:
    from watchfloor.signals.stage import SignalStage, TextSignals

__all__ = ["TextItem", "TextResult", "TextSignalProcess", "compute_texts"]

TextItem = tuple[str, "str | None"]  # (text, the language the post declares)
TextResult = tuple["TextSignals", "bytes | None"]  # (its signals, its MinHash signature as bytes)

_helper_stage: SignalStage | None = None  # in the helper process: the models, loaded once


def compute_texts(items: list[TextItem]) -> list[TextResult]:
    """The per-text signals of ``items``, in order (what the helper runs)."""
    global _helper_stage
    if _helper_stage is None:
        from watchfloor.signals.stage import SignalStage

        _helper_stage = SignalStage()
    stage = _helper_stage
    index = stage.near_duplicates
    out: list[TextResult] = []
    for text, declared in items:
        signature = index.signature(text)
        out.append((stage.text_signals(text, declared), None if signature is None else index.to_bytes(signature)))
    return out


def _warm_up() -> None:
    from watchfloor.pipeline import gc_pauses

    compute_texts([("warm up", "en")])  # loads the models
    gc_pauses.tune_for_streaming()  # as in the pipeline's process: no collector pauses in the results
    gc_pauses.settle()  # and the models, loaded, are frozen


class TextSignalProcess(HelperProcess):
    """One helper process for the per-text signals; thread-safe."""

    def __init__(self, *, timeout_s: float = 30.0) -> None:
        super().__init__("text-signal helper", timeout_s=timeout_s, warm_up=_warm_up)

    def submit_texts(self, items: list[TextItem]) -> Future[list[TextResult]] | None:
        """Hand ``items`` to the helper; None when it cannot take them (compute them here)."""
        return self.submit(compute_texts, items)

    def results(self, future: Future[list[TextResult]] | None) -> list[TextResult] | None:
        """The results of :meth:`submit_texts`, or None when the helper failed: the caller
        computes them itself (with the same code, so with the same results)."""
        return self.result(future)
