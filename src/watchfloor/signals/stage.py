"""The signals stage of the pipeline: runs after matching, on matched posts only.

    match ──► SignalStage.for_post(post) ──► score (pipeline/scoring.py) ──► persist
                     └─ observe_alert(...) ──► close_windows(watermark) ──► spikes

It never changes *which* posts match, with one documented exception: a post that
declares no language gets one from :meth:`SignalStage.filter_languages` when a watch
with ``lang:`` (or a language list) is about to be evaluated on it — lazily, through
the matcher's ``detect_language`` hook, so posts no such watch looks at cost nothing.

One stage serves every pipeline of a store in a process (:func:`stage_for`), so the
near-duplicate groups and burst baselines see all sources together. Thread-safe: each
pipeline runs its batches in a worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from watchfloor.model import Post, PostKey, PostSignals, Spike, Watch, utcnow
from watchfloor.pickling import pickled_by_fields
from watchfloor.pipeline.scoring import score_hit
from watchfloor.signals.bursts import BurstDetector, BurstSettings
from watchfloor.signals.language import MIN_FILTER_CONFIDENCE, LanguageGuess, LanguageIdentifier
from watchfloor.signals.near_duplicates import NearDuplicateIndex
from watchfloor.signals.sentiment import SentimentAnalyzer
from watchfloor.signals.toxicity import load_classifier

if TYPE_CHECKING:
    from concurrent.futures import Future

    from watchfloor.signals.text_process import TextItem, TextResult, TextSignalProcess
    from watchfloor.store import IngestBatch

__all__ = ["SignalStage", "TextSignals", "post_key_text", "stage_for"]

log = logging.getLogger(__name__)

WARM_START_POSTS = 20_000  # newest stored signatures read back into the near-duplicate index
_LANG_CACHE = 4_096


def post_key_text(post: Post) -> str:
    """A post's key as one string (``platform|native_id|version``), for the near-duplicate index."""
    return f"{post.platform}|{post.native_id}|{post.version}"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class TextSignals:
    """The signals of one text, as ``watchfloor signals score`` prints them."""

    language: str | None
    language_confidence: float | None
    sentiment: float | None
    toxicity: float | None
    threat: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "language_confidence": self.language_confidence,
            "sentiment": self.sentiment,
            "toxicity": self.toxicity,
            "threat": self.threat,
        }


@dataclass(slots=True)
class SignalCosts:
    """Counts and seconds spent per signal (read by bench/signals.py and tests)."""

    calls: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds


def english(declared: str | None, guess: LanguageGuess | None) -> bool:
    """Whether the English-only signals apply: a confident guess decides, else what the post declared."""
    if guess is not None and guess.confidence >= MIN_FILTER_CONFIDENCE:
        return guess.code == "en"
    if declared:
        return declared.lower().replace("_", "-").split("-")[0] == "en"
    return guess is not None and guess.code == "en"


class SignalStage:
    """Language, sentiment, toxicity, threat, near-duplicate group and bursts for matched posts."""

    def __init__(
        self,
        *,
        languages: LanguageIdentifier | None = None,
        sentiment: SentimentAnalyzer | None = None,
        near_duplicates: NearDuplicateIndex | None = None,
        bursts: BurstDetector | None = None,
        burst_settings: BurstSettings | None = None,
    ) -> None:
        self.languages = languages or LanguageIdentifier()
        self.sentiment = sentiment or SentimentAnalyzer()
        self.near_duplicates = near_duplicates or NearDuplicateIndex()
        self.bursts = bursts or BurstDetector(burst_settings)
        self.costs = SignalCosts()
        self.lazy_language_calls = 0  # identifications asked for by the matcher (posts without language)
        self._guesses: OrderedDict[str, LanguageGuess | None] = OrderedDict()
        self._lock = threading.Lock()
        self._warmed = False
        self._store: weakref.ref[Any] | None = None
        self.texts: TextSignalProcess | None = None  # per-text signals in a helper process, if started

    # ------------------------------------------------------------------ helper process
    def offload_texts(self) -> TextSignalProcess:
        """From now on, compute the per-text signals in a helper process (signals/text_process.py),
        started now; :meth:`prepare` hands each batch's texts to it."""
        with self._lock:
            if self.texts is None:
                from watchfloor.signals.text_process import TextSignalProcess

                self.texts = TextSignalProcess()
                self.texts.start()
            return self.texts

    def close_helper(self) -> None:
        """Stop the helper process (texts are computed in-process from then on)."""
        with self._lock:
            texts, self.texts = self.texts, None
        if texts is not None:
            texts.close()

    def prepare(self, batch: IngestBatch) -> PendingTexts | None:
        """Hand the texts of ``batch``'s matched posts to the helper process, if there is one;
        :meth:`annotate` picks the results up. None: nothing to hand over."""
        texts = self.texts
        if texts is None or not batch.posts:
            return None
        keys: list[PostKey] = []
        items: list[TextItem] = []
        seen: set[PostKey] = set()
        for post in batch.posts:
            key = post.key
            if key not in seen:
                seen.add(key)
                keys.append(key)
                items.append((post.text, _declared(post)))
        return PendingTexts(keys, texts.submit_texts(items))

    # ------------------------------------------------------------------ language
    def _guess(self, text: str) -> LanguageGuess | None:
        with self._lock:
            if text in self._guesses:
                return self._guesses[text]
        started = time.perf_counter()
        guess = self.languages.identify(text)
        self.costs.add("language", time.perf_counter() - started)
        with self._lock:
            self._guesses[text] = guess
            while len(self._guesses) > _LANG_CACHE:
                self._guesses.popitem(last=False)
        return guess

    def filter_languages(self, post: Post) -> tuple[str, ...]:
        """The matcher's ``detect_language`` hook: a confident language for a post that declares none."""
        self.lazy_language_calls += 1
        guess = self._guess(post.text)
        if guess is None or guess.confidence < MIN_FILTER_CONFIDENCE:
            return ()
        return (guess.code,)

    # ------------------------------------------------------------------ one text
    def text_signals(self, text: str, declared: str | None = None) -> TextSignals:
        guess = self._guess(text)
        sentiment = toxicity = threat = None
        if english(declared, guess):
            started = time.perf_counter()
            sentiment = self.sentiment.compound(text)
            self.costs.add("sentiment", time.perf_counter() - started)
            started = time.perf_counter()
            scores = load_classifier().scores(text)
            self.costs.add("toxicity+threat", time.perf_counter() - started)
            toxicity, threat = scores.toxicity, scores.threat
        return TextSignals(
            language=guess.code if guess else None,
            language_confidence=guess.confidence if guess else None,
            sentiment=sentiment,
            toxicity=toxicity,
            threat=threat,
        )

    # ------------------------------------------------------------------ pipeline
    def warm(self, signatures: Iterable[tuple[str, bytes, str]]) -> int:
        """Restore (post key, MinHash bytes, group) triples, oldest first; returns how many."""
        n = 0
        for key, data, group in signatures:
            if data:
                self.near_duplicates.add_signature(key, self.near_duplicates.from_bytes(data), group)
                n += 1
        self._warmed = True
        return n

    @property
    def warmed(self) -> bool:
        return self._warmed

    def for_post(self, post: Post, now: datetime | None = None, computed: TextResult | None = None) -> PostSignals:
        """Every per-post signal of a matched post; ``computed``: its per-text signals and
        signature, as the helper process computed them."""
        if computed is None:
            text = self.text_signals(post.text, _declared(post))
            started = time.perf_counter()
            signature = self.near_duplicates.signature(post.text)
        else:
            started = time.perf_counter()
            text, raw = computed
            signature = None if raw is None else self.near_duplicates.from_bytes(raw)
        group = self.near_duplicates.add_signature(post_key_text(post), signature)
        self.costs.add("near_duplicates", time.perf_counter() - started)
        return PostSignals(
            post=post.key,
            computed_at=now or utcnow(),
            lang=text.language,
            lang_confidence=text.language_confidence,
            sentiment=text.sentiment,
            toxicity=text.toxicity,
            threat=text.threat,
            near_duplicate_group=group,
            minhash=b"" if signature is None else self.near_duplicates.to_bytes(signature),
        )

    def observe_alert(self, watch_id: int, terms: Iterable[str], at: datetime, now: datetime) -> None:
        started = time.perf_counter()
        self.bursts.observe(watch_id, terms, min(at, now))
        self.costs.add("bursts", time.perf_counter() - started)

    def close_windows(self, watermark: datetime | None, now: datetime) -> list[Spike]:
        if watermark is None:
            return []
        return self.bursts.close(min(watermark, now), now)

    def annotate(
        self, batch: IngestBatch, watches: dict[int, Watch], now: datetime, pending: PendingTexts | None = None
    ) -> None:
        """Add the signals of ``batch``'s matched posts, rescore its alerts with them, count
        the alerts for bursts and add the spikes of the windows this batch closed.

        Called by the pipeline after matching, before the batch is committed, one batch at a
        time in stream order; ``pending`` is what :meth:`prepare` handed to the helper
        process for this batch (waited for here; computed here if the helper failed). It
        adds to the batch; it never removes a post or an alert.
        """
        if not self._warmed:
            self._warm_from_store()
        computed: dict[PostKey, TextResult] = {}
        if pending is not None and self.texts is not None:
            results = self.texts.results(pending.future)
            if results is not None:
                computed = dict(zip(pending.keys, results, strict=True))
        by_key: dict[PostKey, PostSignals] = {}
        created: dict[PostKey, datetime] = {}
        for post in batch.posts:
            key = post.key  # a new PostKey on every read: build and hash it once per post
            created[key] = post.created_at  # the last copy's, as before
            if key not in by_key:
                by_key[key] = self.for_post(post, now, computed.get(key))
        batch.signals.extend(by_key.values())
        for i, alert in enumerate(batch.alerts):
            watch = watches.get(alert.watch_id)
            if watch is not None:
                score, explained = score_hit(watch, alert.explanation, by_key.get(alert.post))
                batch.alerts[i] = alert.rescored(score, explained)
            terms = [h.term for h in alert.explanation.hits if h.kind != "filter"]
            self.observe_alert(alert.watch_id, terms, created.get(alert.post, now), now)
        batch.spikes.extend(self.close_windows(batch.last_event_at, now))

    def _warm_from_store(self) -> None:
        store = self._store() if self._store is not None else None
        self._warmed = True
        if store is None:
            return
        try:
            restored = self.warm(store.recent_signatures(WARM_START_POSTS))
        except Exception:  # a store without the signals schema, or busy: start cold
            log.exception("cannot restore the near-duplicate index; starting empty")
            return
        log.info("near-duplicate index restored with %d stored posts", restored)


@dataclass(frozen=True, slots=True)
class PendingTexts:
    """The texts of one batch's matched posts, handed to the helper process."""

    keys: list[PostKey]
    future: Future[list[TextResult]] | None  # None: the helper could not take them


def _declared(post: Post) -> str | None:
    return post.lang or (post.langs[0] if post.langs else None)


_STAGES: weakref.WeakKeyDictionary[object, SignalStage] = weakref.WeakKeyDictionary()
_STAGES_LOCK = threading.Lock()


def stage_for(store: object) -> SignalStage:
    """The one :class:`SignalStage` of ``store`` in this process (created on first use)."""
    with _STAGES_LOCK:
        stage = _STAGES.get(store)
        if stage is None:
            stage = _STAGES[store] = SignalStage()
            stage._store = weakref.ref(store)
        return stage
