"""An independent all-MiniLM-L6-v2: the BERT forward pass in plain NumPy over the packaged
safetensors weights, with its own WordPiece tokenizer (BERT's basic tokenizer, then greedy
longest-match-first sub-words), mean pooling and L2 normalisation — sentence-transformers' recipe.
It shares nothing with llama.cpp, so agreeing with it checks our GGUF conversion end to end."""
from __future__ import annotations

import json
import unicodedata
import zipfile
from pathlib import Path

import numpy as np


class MiniLM:
    def __init__(self, model_zip: Path):
        from safetensors.numpy import load

        with zipfile.ZipFile(model_zip) as archive:
            self.config = json.loads(archive.read("config.json"))
            self.vocab = json.loads(archive.read("tokenizer.json"))["model"]["vocab"]
            self.weights = {k: v.astype(np.float64) for k, v in load(archive.read("model.safetensors")).items()}

    # --- WordPiece (lower-cased, uncased BERT) ---------------------------------------------------
    def _basic_tokens(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")  # accents stripped
        words, current = [], []
        for char in text:
            if char.isspace() or unicodedata.category(char).startswith("C"):
                words.append("".join(current)), current.clear()
            elif self._is_punctuation(char) or 0x4E00 <= ord(char) <= 0x9FFF:
                words.append("".join(current)), current.clear(), words.append(char)
            else:
                current.append(char)
        words.append("".join(current))
        return [w for w in words if w]

    @staticmethod
    def _is_punctuation(char: str) -> bool:
        code = ord(char)
        return 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126 or \
            unicodedata.category(char).startswith("P")

    def tokenize(self, text: str) -> list[int]:
        ids = [self.vocab["[CLS]"]]
        for word in self._basic_tokens(text):
            pieces, start = [], 0
            while start < len(word):
                end = len(word)
                while end > start and (("##" if start else "") + word[start:end]) not in self.vocab:
                    end -= 1
                if end == start:
                    pieces = [self.vocab["[UNK]"]]
                    break
                pieces.append(self.vocab[("##" if start else "") + word[start:end]])
                start = end
            ids += pieces
        return ids + [self.vocab["[SEP]"]]

    # --- the encoder ---------------------------------------------------------------------------------
    @staticmethod
    def _layer_norm(x, weight, bias, eps):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * weight + bias

    @staticmethod
    def _gelu(x):  # BERT's exact (erf) GELU
        from math import erf, sqrt

        return 0.5 * x * (1 + np.vectorize(erf)(x / sqrt(2)))

    def embed(self, text: str) -> np.ndarray:
        w, c = self.weights, self.config
        eps, heads = c["layer_norm_eps"], c["num_attention_heads"]
        ids = self.tokenize(text)
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:len(ids)]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        n, d = x.shape
        size = d // heads
        for i in range(c["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def dense(name, h):
                return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q, k, v = (dense(f"attention.self.{m}", x).reshape(n, heads, size).transpose(1, 0, 2)
                       for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(size)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attended = (scores / scores.sum(-1, keepdims=True)) @ v
            attended = attended.transpose(1, 0, 2).reshape(n, d)
            x = self._layer_norm(x + dense("attention.output.dense", attended),
                                 w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            hidden = self._gelu(dense("intermediate.dense", x))
            x = self._layer_norm(x + dense("output.dense", hidden), w[p + "output.LayerNorm.weight"],
                                 w[p + "output.LayerNorm.bias"], eps)
        pooled = x.mean(0)
        return pooled / np.linalg.norm(pooled)
