"""Embeddings: batched requests, a persistent cache, and vectorised similarity.

    im.embed(texts) -> numpy array (N, D) for a list, (D,) for one string
    im.cosine_similarity(a, b)        vectors or texts
    im.most_similar(query, vectors, k=5) -> [(index, score), ...] best first
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from . import policy, routing, settings as settings_module, telemetry
from .backends import get_backend, not_installed, offering, spec
from .cache import digest
from .errors import BackendError, BackendUnavailable, ConfigError, TextTooLong
from .progress import progress_bar

PROGRESS_FROM = 2_000  # texts; below this a bar would only flicker



@dataclass
class Embedded:
    vectors: np.ndarray  # (N, D) float32
    backend: str
    model: str
    requests: int = 0    # HTTP requests made (0 when everything came from the cache)
    cached: int = 0      # texts served from the cache
    notices: list[str] = field(default_factory=list)

    @property
    def dims(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 and len(self.vectors) else 0


def as_texts(texts) -> tuple[list[str], bool]:
    """(list of texts, whether a single string was given). One clear line for anything else."""
    if texts is None:
        raise ConfigError("nothing to embed (got None) — pass a string or a list of strings.")
    if isinstance(texts, str):
        if not texts.strip():
            raise ConfigError("the text is empty — nothing to embed.")
        return [texts], True
    if hasattr(texts, "tolist") and not isinstance(texts, (list, tuple)):  # pandas Series, numpy array
        texts = texts.tolist()
    try:
        items = list(texts)
    except TypeError:
        raise ConfigError(f"cannot embed a {type(texts).__name__} — pass a string or a list of strings.") from None
    if not items:
        raise ConfigError("the list is empty — nothing to embed.")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ConfigError(f"item {i} is a {type(item).__name__}, not a string — convert the items with str() "
                              "or drop that one.")
        if not item.strip():  # an empty text has no meaning to find (and OpenAI-compatible servers refuse it)
            raise ConfigError(f"item {i} is empty — drop the empty texts (e.g. [t for t in texts if t.strip()]).")
    return items, False


def _route(settings, model, backend) -> routing.Route:
    embedders = offering("embed")
    if backend is None and model is None and spec(settings.default_backend).supports("embed"):
        backend = settings.default_backend
    chosen = routing.decide("", settings, model=model, backend=backend or (embedders[0].name if model is None else None),
                            task="embed")
    if not spec(chosen.backend).supports("embed"):
        names = [s.name for s in embedders]
        raise ConfigError(f"{spec(chosen.backend).label} has no embeddings API — use --backend "
                          f"{', '.join(names[:-1])} or {names[-1]}.")
    return chosen


def run(texts, *, model=None, backend=None, cache=True, progress=None) -> Embedded:
    """Embed texts, from the cache where possible, in as few requests as the batch size allows."""
    items, single = as_texts(texts)
    try:
        return _run(items, single, model, backend, cache, progress)
    except TextTooLong as exc:  # named by its index in the caller's list, not in the batch that was sent
        if exc.position is None or getattr(exc, "text", None) not in items:
            raise
        raise TextTooLong.of(items.index(exc.text), exc.tokens, exc.limit, exc.model, single) from None


def _run(items, single, model, backend, cache, progress) -> Embedded:
    settings = settings_module.load()
    route = _route(settings, model, backend)
    # the one policy, judged with the model: an Ollama `*-cloud` embedding model runs on ollama.com
    for i, text in enumerate(items):
        policy.check(text, route.backend, route.model, settings, what=f"text {i}")
    try:
        return _embed(items, route, settings, cache, progress)
    except BackendUnavailable:
        # the embedded model stands in for an unreachable server, unless the user chose one
        embedded = next(s for s in offering("embed") if s.locality == "always")
        if backend or model or route.backend == embedded.name or embedded.name in not_installed(settings):
            raise
        fallback = routing.Route(embedded.name, routing.model_for(embedded.name, "embed", settings),
                                 f"{spec(route.backend).label} is unreachable, so {embedded.label}", "embed")
        return _embed(items, fallback, settings, cache, progress)


def _vectors(vectors, expected: int, backend: str) -> list[np.ndarray]:
    """The server's vectors, checked: one per text, all numbers, all the same length — else one
    line (a server that answers with fewer, or with text, must not surface as a KeyError)."""
    try:
        arrays = [np.asarray(v, np.float32) for v in vectors]
    except (TypeError, ValueError):
        arrays = None
    if arrays is None or len(arrays) != expected or any(a.ndim != 1 or a.size == 0 for a in arrays) or \
            len({a.size for a in arrays}) > 1:
        raise BackendError(f"{backend} did not answer with one vector of numbers per text (asked for {expected}) — "
                           "check that the model is an embedding model and the server speaks its API.")
    # a NaN (llama-server writes one as null) or an infinity would be cached for good and rank as noise
    if (bad := next((i for i, a in enumerate(arrays) if not np.isfinite(a).all()), None)) is not None:
        raise BackendError(f"{backend} answered with a vector holding NaN or infinity (or null) for text {bad} of "
                           f"this batch — nothing was cached; try another embedding model or check that text.")
    return arrays


def _embed(items, route, settings, use_cache, progress) -> Embedded:
    result = Embedded(np.empty((0, 0), np.float32), route.backend, route.model)
    keys = [digest(t) for t in items]
    from . import response_cache  # INFERENCE_CACHE=on|replay keeps vectors in the portable response cache

    replay = settings.cache == "replay"
    if replay and (problem := response_cache.replay_problem(settings)):  # the file, not the texts
        raise response_cache.embedding_miss(route.backend, route.model, len(set(keys)), problem)
    store = response_cache.embedding_store(settings, use_cache)
    found: dict[bytes, np.ndarray] = {}
    if store is not None:
        blobs, notice = store.get_many(f"embed:{route.backend}", route.model, list(dict.fromkeys(keys)))
        found = {key: np.frombuffer(blob, dtype=np.float32) for key, blob in blobs.items()}
        result.notices += [notice] if notice else []
    if len({v.size for v in found.values()}) > 1:  # vectors of two models under one name: none can be trusted
        if replay:
            raise ConfigError(f"the cache holds vectors of different lengths for {route.backend} · {route.model} "
                              "(the model changed under its name) — re-record them with INFERENCE_CACHE=on.")
        found = {}
    missing = list(dict.fromkeys(t for t, k in zip(items, keys) if k not in found))  # dedupe by content
    from_cache = set(found)
    if missing and replay:  # replay never calls a model
        raise response_cache.embedding_miss(route.backend, route.model, len(missing),
                                            response_cache.replay_problem(settings))
    if missing:
        fresh = _request(missing, route, settings, store, result, progress)
        dims = next(iter(fresh.values())).size
        stale = list(dict.fromkeys(t for t, k in zip(items, keys) if k in found and found[k].size != dims))
        if stale:  # the model behind this name changed (a re-pull, another file): cached vectors are its old ones
            result.notices.append(f"{len(stale)} cached vector(s) for {route.backend} · {route.model} had "
                                  f"{next(found[digest(t)] for t in stale).size} dimensions and the model now "
                                  f"gives {dims}: the model changed under its name, so they were embedded again.")
            fresh.update(_request(stale, route, settings, store, result, None))
            from_cache -= {digest(t) for t in stale}
        found.update(fresh)
    result.cached = sum(1 for k in keys if k in from_cache)
    result.vectors = np.stack([found[k] for k in keys]).astype(np.float32, copy=False)
    result.vectors.flags.writeable = False  # read-only, so most_similar may keep its row norms
    return result



def _request(texts, route, settings, store, result, progress) -> dict[bytes, np.ndarray]:
    """Ask the backend for these texts' vectors, batch by batch, keeping each batch in the store."""
    found: dict[bytes, np.ndarray] = {}
    backend = get_backend(route.backend, settings)
    size = settings.embed_batch_size
    bar = progress_bar(len(texts), progress, label=f"embedding with {route.model}", unit="text",
                       show_from=PROGRESS_FROM)
    try:
        for start in range(0, len(texts), size):
            batch = texts[start:start + size]
            with telemetry.begin("embeddings", route.model, route=route, texts=len(batch)):
                try:
                    vectors = backend.embed(batch, route.model)
                except TextTooLong as exc:
                    exc.text = batch[exc.position] if exc.position is not None else None
                    raise
            result.requests += 1
            fresh = [(digest(t), vector) for t, vector in zip(batch, _vectors(vectors, len(batch), route.backend))]
            found.update(fresh)
            if store is not None and (notice := store.put_many(
                    f"embed:{route.backend}", route.model, [(key, vec.tobytes()) for key, vec in fresh])):
                result.notices.append(notice)
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    return found


def embed(texts, *, model=None, backend=None, cache=True):
    """Vectors for texts: an (N, D) float32 array for a list, a (D,) array for one string."""
    _, single = as_texts(texts)
    vectors = run(texts, model=model, backend=backend, cache=cache).vectors
    return vectors[0] if single else vectors


def _vector(value, **options) -> np.ndarray:
    return embed(value, **options) if isinstance(value, str) else np.asarray(value, np.float32)


def cosine_similarity(a, b, **options) -> float:
    """Cosine similarity of two vectors, or of two texts (embedded first)."""
    x, y = _vector(a, **options), _vector(b, **options)
    if x.shape != y.shape:
        raise ConfigError(f"the vectors differ in length ({x.shape[-1]} and {y.shape[-1]}) — embed both with the "
                          "same model.")
    denominator = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / denominator if denominator else 0.0


_norms: dict[int, np.ndarray] = {}  # id of a read-only matrix -> its row norms, while it lives


def _row_norms(matrix: np.ndarray) -> np.ndarray:
    """Every row's length. For a read-only array that owns its data (what `embed` returns) they
    cannot change, so they are computed once per array: a repeated search then makes one pass
    over the matrix, not two."""
    if matrix.flags.writeable or matrix.base is not None:
        return np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    key = id(matrix)
    norms = _norms.get(key)
    if norms is None:
        norms = _norms[key] = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
        weakref.finalize(matrix, _norms.pop, key, None)
    return norms


def most_similar(query, vectors, k: int = 5) -> list[tuple[int, float]]:
    """The k rows of `vectors` most similar to `query` by cosine: [(index, score), ...], best first.
    Vectorised: one matrix-vector product and a partial sort, whatever the number of rows."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k={k!r} asks for no rows — use a whole number from 1 up (how many of the most similar "
                          "rows to show).")
    try:
        matrix = np.asarray(vectors, np.float32)
        q = np.asarray(query, np.float32)
    except (TypeError, ValueError):
        raise ConfigError("most_similar needs vectors of one length (and a query of numbers) — embed them all with "
                          "the same model.") from None
    if q.ndim == 2 and len(q) == 1:  # im.embed(["query"]) gives a (1, D) array
        q = q[0]
    if q.ndim != 1:
        raise ConfigError(f"the query must be one vector, not an array of shape {q.shape} — pick one row.")
    if matrix.ndim != 2 or not len(matrix):
        raise ConfigError("most_similar needs a non-empty list of vectors.")
    if q.shape[-1] != matrix.shape[1]:
        raise ConfigError(f"the query has {q.shape[-1]} dimensions and the vectors {matrix.shape[1]} — embed both "
                          "with the same model.")
    norms = _row_norms(matrix) * (np.linalg.norm(q) or 1.0)
    scores = (matrix @ q) / np.where(norms == 0, 1.0, norms)
    k = min(int(k), len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(i), float(scores[i])) for i in top]
