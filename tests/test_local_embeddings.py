"""The embedded backend's embedding model for real: all-MiniLM-L6-v2 (Ollama's `all-minilm`),
converted to GGUF by us and served by llama-server. Its vectors are checked against two references
that share nothing with our code path: the values Ollama's API documentation prints for all-minilm,
and a pure-NumPy BERT forward pass over the packaged weights (tests/minilm_reference.py)."""
import numpy as np
import pytest

import inference_magics as im
from inference_magics.backends import minilm_gguf
from tests.conftest import needs_local

pytestmark = [needs_local, pytest.mark.usefixtures("local_model"), pytest.mark.warm_local_server]

# Ollama's API docs (POST /api/embed, model all-minilm): the first ten values of each vector
OLLAMA_DOCS = {
    "Why is the sky blue?": [0.010071029, -0.0017594862, 0.05007221, 0.04692972, 0.054916814,
                             0.008599704, 0.105441414, -0.025878139, 0.12958129, 0.031952348],
    "Why is the grass green?": [-0.0098027075, 0.06042469, 0.025257962, -0.006364387, 0.07272725,
                                0.017194884, 0.09032035, -0.051705178, 0.09951512, 0.09072481],
}
SENTENCES = ["Why is the sky blue?", "The cat sat on the mat.", "Stock markets fell sharply after the announcement.",
             "Unbelievably, naïve café-goers paid 3.50 € for coffee!", "def fibonacci(n): return n if n < 2 else n"]


@pytest.fixture(scope="module")
def reference():
    from tests.minilm_reference import MiniLM

    return MiniLM(minilm_gguf.model_zip())


def test_the_default_local_embedding_model_matches_ollamas_all_minilm():
    """Property: 384 dimensions, unit length, and the values Ollama documents for all-minilm (to the
    precision of its F16 weights)."""
    vectors = im.embed(list(OLLAMA_DOCS), backend="local")
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    for vector, expected in zip(vectors, OLLAMA_DOCS.values()):
        assert np.allclose(vector[:10], expected, atol=2e-3), (vector[:10], expected)


def test_vectors_match_an_independent_numpy_bert(reference):
    """Property: for varied text (punctuation, accents, numbers, code) every vector has cosine ≥ 0.999
    with the NumPy forward pass — same tokens, same pooling, same normalisation."""
    vectors = im.embed(SENTENCES, backend="local")
    for sentence, vector in zip(SENTENCES, vectors):
        assert float(vector @ reference.embed(sentence)) >= 0.999, sentence


def test_semantic_neighbours_are_right():
    """Property: a query's nearest document is the one on its topic (a real sentence model; the
    chat model's hidden states got this wrong)."""
    docs = ["Garbage collection frees memory that a program no longer uses.",
            "Index funds spread your savings across many companies at low cost.",
            "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
            "The striker scored twice in the second half."]
    queries = {"saving money and investing": 1, "how plants make food": 2, "a football match": 3,
               "memory management in programming languages": 0}
    d = im.embed(docs, backend="local")
    q = im.embed(list(queries), backend="local")
    assert [int(i) for i in (q @ d.T).argmax(1)] == list(queries.values())


def test_models_lists_it_as_an_embedding_model():
    """Property: %models' data lists the embedding model with kind 'embed', marked as the default for embeddings."""
    listing = im.models("local")
    embed = [m for m in listing if m.kind == "embed"]
    assert [m.name for m in embed] == ["all-minilm-l6-v2"]
    assert "embeddings" in embed[0].default_for and embed[0].size > 20_000_000
