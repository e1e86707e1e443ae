"""Embeddings over the Ollama wire: batching, the persistent cache, similarity, and bad input."""
import numpy as np
import pytest

import inference_magics as im
from inference_magics import cache, embeddings
from tests.conftest import closed_port

CORPUS = [
    "the cat sat on the mat",
    "stock markets fell sharply today",
    "a recipe for chocolate cake with cream",
    "the dog chased the cat around the garden",
    "interest rates and the stock market",
]


@pytest.fixture
def ollama(monkeypatch, ollama_peer, tmp_path):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    monkeypatch.setenv("INFERENCE_DATA_DIR", str(tmp_path / "data"))
    cache._caches.clear()
    yield ollama_peer
    cache._caches.clear()


def embed_requests(peer):
    return [r for r in peer.requests if r.path == "/api/embed"]


def test_one_text_gives_one_unit_vector_from_the_embed_model(ollama):
    vector = im.embed("hello world")
    assert vector.shape == (768,) and vector.dtype == np.float32
    assert np.allclose(vector, ollama.embedding("hello world", "nomic-embed-text:latest"), atol=1e-6)
    assert embed_requests(ollama)[-1].body["model"] == "nomic-embed-text:latest"
    assert abs(float(np.linalg.norm(vector)) - 1) < 1e-5


def test_a_list_is_batched_not_sent_one_by_one(monkeypatch, ollama):
    monkeypatch.setenv("INFERENCE_EMBED_BATCH_SIZE", "100")
    texts = [f"short text number {i}" for i in range(1000)]
    done = embeddings.run(texts)
    assert done.vectors.shape == (1000, 768) and done.requests == 10 == len(embed_requests(ollama))
    assert all(len(r.body["input"]) == 100 for r in embed_requests(ollama))
    assert np.allclose(done.vectors[7], ollama.embedding(texts[7], "nomic-embed-text:latest"), atol=1e-6)


def test_duplicates_are_sent_once_and_order_is_kept(ollama):
    texts = ["alpha", "beta", "alpha", "gamma", "beta"]
    vectors = im.embed(texts)
    assert sorted(embed_requests(ollama)[-1].body["input"]) == ["alpha", "beta", "gamma"]
    assert np.array_equal(vectors[0], vectors[2]) and np.array_equal(vectors[1], vectors[4])
    assert not np.array_equal(vectors[0], vectors[1])


def test_the_cache_makes_a_second_run_free_and_survives_a_new_kernel(ollama):
    first = embeddings.run(CORPUS)
    assert first.requests == 1 and first.cached == 0
    cache._caches.clear()  # as a new kernel would start, with the same data folder
    second = embeddings.run(CORPUS)
    assert second.requests == 0 and second.cached == 5 and len(embed_requests(ollama)) == 1
    assert np.array_equal(first.vectors, second.vectors)
    partly = embeddings.run(CORPUS + ["something new"])
    assert partly.requests == 1 and partly.cached == 5 and embed_requests(ollama)[-1].body["input"] == ["something new"]
    assert embeddings.run(CORPUS, cache=False).requests == 1


def test_the_cache_is_per_model(ollama):
    embeddings.run(CORPUS)
    other = embeddings.run(CORPUS, model="all-minilm")
    assert other.requests == 1 and other.vectors.shape == (5, 384) and other.model == "all-minilm"


def test_ranking_on_a_hand_made_corpus(ollama):
    vectors = im.embed(CORPUS)
    ranked = im.most_similar(im.embed("a cat on a mat"), vectors, k=3)
    assert ranked[0][0] == 0 and ranked[0][1] > ranked[1][1] >= ranked[2][1]
    assert {i for i, _ in im.most_similar(im.embed("the stock market today"), vectors, k=2)} == {1, 4}
    assert im.cosine_similarity("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0, abs=1e-5)
    assert im.cosine_similarity("the cat", "the cat and the dog") > im.cosine_similarity("the cat", "stock markets")


def test_most_similar_is_exact_on_100k_vectors():
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((100_000, 768)).astype(np.float32)
    query = rng.standard_normal(768).astype(np.float32)
    top = im.most_similar(query, vectors, k=5)
    brute = (vectors @ query) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    assert [i for i, _ in top] == list(np.argsort(-brute)[:5])
    assert [s for _, s in top] == pytest.approx(sorted(brute, reverse=True)[:5], abs=1e-5)


def test_most_similar_by_hand():
    vectors = [[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0], [-1, 0, 0]]
    assert [i for i, _ in im.most_similar([1, 0, 0], vectors, k=4)] == [0, 2, 1, 3]
    assert im.most_similar([1, 0, 0], vectors, k=1)[0] == (0, pytest.approx(1.0))
    with pytest.raises(im.ConfigError, match="the query has 2 dimensions and the vectors 3"):
        im.most_similar([1, 0], vectors)
    assert len(im.most_similar([1, 0, 0], vectors, k=10)) == 4  # more than there are: all of them
    for k in (0, -3):
        with pytest.raises(im.ConfigError, match=f"k={k} asks for no rows"):
            im.most_similar([1, 0, 0], vectors, k=k)


@pytest.mark.parametrize("texts, message", [
    (None, "nothing to embed"),
    ([], "the list is empty"),
    (["ok", 3], "item 1 is a int, not a string"),
    ([None], "item 0 is a NoneType"),
    (42, "cannot embed a int"),
    ("   ", "the text is empty"),
    (["ok", "", "fine"], "item 1 is empty"),
    (["ok", " \n"], "item 1 is empty"),
])
def test_bad_input_is_one_clear_line(ollama, texts, message):
    with pytest.raises(im.ConfigError, match=message):
        im.embed(texts)
    assert not embed_requests(ollama)


def test_a_pandas_series_works(ollama):
    import pandas as pd

    assert im.embed(pd.Series(["one", "two"])).shape == (2, 768)


def test_missing_model_names_the_pull_command(ollama):
    with pytest.raises(im.ModelNotFound, match="`ollama pull mxbai-embed-large`"):
        im.embed("hi", model="mxbai-embed-large")


def test_claude_has_no_embeddings(ollama):
    with pytest.raises(im.ConfigError, match="Claude has no embeddings API"):
        im.embed("hi", backend="anthropic")


def test_ollama_down_without_the_local_model(monkeypatch, ollama):
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(im.BackendUnavailable, match="cannot connect to Ollama"):
        im.embed("hi")


def test_a_remote_openai_server_never_gets_a_secret(monkeypatch, ollama, openai_peer):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.base_url.replace("127.0.0.1", "localhost.localdomain"))
    with pytest.raises(im.PrivacyError, match="text 1 .* a password"):
        im.embed(["fine", "password: hunter2hunter2"], backend="openai", model="nomic-embed-text-v1.5")
    assert not openai_peer.requests_to("/v1/embeddings")


def test_openai_backend_embeds_in_batches(monkeypatch, ollama, openai_peer):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.base_url)
    done = embeddings.run(["one", "two", "three"], backend="openai", model="nomic-embed-text-v1.5")
    assert done.vectors.shape == (3, 768) and done.requests == 1


def test_a_corrupt_cache_does_not_stop_embedding(monkeypatch, ollama, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "cache.sqlite3").write_bytes(b"this is not a database" * 100)
    done = embeddings.run(["hello"])
    assert done.vectors.shape == (1, 768) and any("the cache is off" in n for n in done.notices)
    assert not embeddings.run(["hello"]).notices  # reported once


def test_the_cache_is_owner_only(ollama, tmp_path):
    import stat

    im.embed("private notes")
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "cache.sqlite3").stat().st_mode) == 0o600


def test_vectors_from_embed_are_read_only_and_searches_reuse_their_norms_exactly(ollama_peer, monkeypatch):
    """The norms of a read-only matrix are kept between searches; the ranking is the same as over
    a writable copy (whose norms are computed each time)."""
    import gc

    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    vectors = im.embed(["the cat sat", "stock markets fell", "a kitten napped", "interest rates rose"])
    assert not vectors.flags.writeable
    query = im.embed("a sleeping cat")
    first = im.most_similar(query, vectors, k=4)
    assert id(vectors) in embeddings._norms
    assert im.most_similar(query, vectors, k=4) == first == im.most_similar(query, np.array(vectors), k=4)
    key = id(vectors)
    del vectors
    gc.collect()
    assert key not in embeddings._norms  # forgotten with the array


def test_a_model_changed_under_its_name_is_embedded_again_not_mixed_with_its_old_vectors(ollama):
    """`ollama pull` of a new version (or another GGUF at INFERENCE_LOCAL_EMBED_MODEL's path) keeps the
    name: a cached vector of the old weights must not be stacked with fresh ones of the new."""
    from tests.peers.ollama_peer import DEFAULT_MODELS, model_entry

    assert embeddings.run(["the cat sat", "stock markets"]).vectors.shape == (2, 768)
    others = [m for m in DEFAULT_MODELS if (m if isinstance(m, str) else m["name"]) != "nomic-embed-text:latest"]
    ollama.set(models=others + [model_entry("nomic-embed-text:latest", family="nomic-bert", embedding=True,
                                            embedding_length=1024, digest="f" * 64)])
    done = embeddings.run(["the cat sat", "a new text"])  # one cached (768), one fresh (1024)
    assert done.vectors.shape == (2, 1024) and done.cached == 0
    assert np.allclose(done.vectors[0], ollama.embedding("the cat sat", "nomic-embed-text:latest"), atol=1e-6)
    assert any("changed under its name" in n for n in done.notices)
    assert embeddings.run(["the cat sat"]).vectors.shape == (1, 1024)  # the cache now holds the new vector


def test_a_vector_with_nan_is_one_line_and_never_cached(ollama, monkeypatch):
    from tests.peers import ollama_peer

    real = ollama_peer.unit_vector
    monkeypatch.setattr(ollama_peer, "unit_vector", lambda text, dims: [float("nan")] + real(text, dims)[1:])
    with pytest.raises(im.InferenceError) as failed:
        im.embed(["a text"])
    assert "NaN" in failed.value.message and "\n" not in failed.value.message
    monkeypatch.setattr(ollama_peer, "unit_vector", real)
    assert np.isfinite(im.embed(["a text"])).all()


def test_most_similar_refuses_a_k_below_one_and_takes_a_one_row_query():
    vectors = np.eye(3, dtype=np.float32)
    for k in (0, -2):
        with pytest.raises(im.ConfigError):
            im.most_similar(vectors[0], vectors, k=k)
    assert im.most_similar(vectors[:1], vectors, k=1) == [(0, 1.0)]  # what im.embed(["query"]) returns
    with pytest.raises(im.ConfigError):
        im.most_similar(vectors[0], [[1, 0, 0], [1, 0]], k=1)  # ragged: one line, not numpy's ValueError


def test_a_cache_busy_with_another_kernels_write_is_skipped_once_not_turned_off(ollama, tmp_path):
    import sqlite3

    embeddings.run(["warm"])  # creates the file
    other = sqlite3.connect(tmp_path / "data" / "cache.sqlite3")
    other.execute("BEGIN EXCLUSIVE")  # another kernel in the middle of a long write
    try:
        busy = embeddings.run(["first while busy"])
    finally:
        other.rollback()
        other.close()
    assert any("busy" in n for n in busy.notices) and not any("is off" in n for n in busy.notices)
    embeddings.run(["after"])
    assert embeddings.run(["after"]).requests == 0  # the cache is still on
