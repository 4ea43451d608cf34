"""The answer caches as decorators of a ``Consultant``: ``ExactCache(SimilarCache(Panel))``.

- ``ExactCache``: the same prompt (as it left, after redaction) with the same task type, mode and depth, from the
  same tenant and user, gets the stored consultation.
- ``SimilarCache``: a prompt that is the same question spelled differently (``similarity``) gets the stored
  consultation of the prompt it matches. Off unless ``cache.similar_enabled``.

Every key starts with the tenant and holds the user: no look-up can reach another tenant's (or user's) answers.
Only consultations that pass the task's confidence gate are stored, and only for questions without session history.
A hit is marked ``cached``; nothing is called upstream.
"""

from __future__ import annotations

import json

from .cache import Backend, digest, digest_off_loop
from .config import Settings
from .consult import Consultant, Consultation, Question
from .metrics import Metrics
from .similarity import MAX_CHARS, SimilarIndex


class AnswerStore:
    """Consultations by exact key, in the shared backend."""

    def __init__(self, backend: Backend, settings: Settings, metrics: Metrics) -> None:
        self.backend = backend
        self.settings = settings
        self.metrics = metrics

    @staticmethod
    async def key(question: Question) -> str:
        return f"{question.tenant}:exact:{await digest_off_loop(question.owner, question.scope, question.prompt)}"

    async def get(self, key: str) -> Consultation | None:
        raw = await self.backend.get(key)
        return None if raw is None else Consultation.from_json(json.loads(raw))

    async def put(self, key: str, question: Question, result: Consultation) -> None:
        if result.confidence < self.settings.min_confidence.get(question.task_type, 0.7):
            return
        raw = json.dumps(result.to_json(), ensure_ascii=False).encode()
        await self.backend.set(key, raw, self.settings.cache.ttl_s)


class ExactCache:
    def __init__(self, inner: Consultant, store: AnswerStore) -> None:
        self.inner = inner
        self.store = store

    async def consult(self, question: Question) -> Consultation:
        if not question.cacheable:
            return await self.inner.consult(question)
        key = await self.store.key(question)
        hit = await self.store.get(key)
        self.store.metrics.cache("exact", hit is not None)
        if hit is not None:
            return hit
        result = await self.inner.consult(question)
        if not result.cached:
            await self.store.put(key, question, result)
        return result


class SimilarCache:
    def __init__(self, inner: Consultant, store: AnswerStore, index: SimilarIndex) -> None:
        self.inner = inner
        self.store = store
        self.index = index

    async def consult(self, question: Question) -> Consultation:
        if not question.cacheable:
            return await self.inner.consult(question)
        space = f"{question.tenant}\x1f{digest(question.owner, question.scope)}"
        found = self.index.find(space, question.prompt)
        hit = await self.store.get(found) if found is not None else None
        self.store.metrics.cache("similar", hit is not None)
        if hit is not None:
            return hit
        result = await self.inner.consult(question)
        if len(question.prompt) <= MAX_CHARS:  # the index holds short questions only
            self.index.add(space, question.prompt, await self.store.key(question))
        return result


def build_consultant(
    panel: Consultant, backend: Backend, settings: Settings, metrics: Metrics, index: SimilarIndex | None
) -> Consultant:
    """The panel behind the caches that the configuration turns on."""
    if not settings.cache.enabled:
        return panel
    store = AnswerStore(backend, settings, metrics)
    inner: Consultant = panel
    if settings.cache.similar_enabled and index is not None:
        inner = SimilarCache(inner, store, index)
    return ExactCache(inner, store)
