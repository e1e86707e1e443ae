"""inference_magics: local and cloud language models in Jupyter.

`%load_ext inference_magics` registers the magics. Loading imports no SDK and touches no
network: the API and the backends are imported on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"

_API = {
    "route": "api", "infer": "api", "stream": "api", "Result": "api", "Stream": "api",
    "Route": "routing",
    "embed": "embeddings", "cosine_similarity": "embeddings", "most_similar": "embeddings",
    "provenance": "answer_provenance:read", "models": "catalog", "health": "catalog", "recall": "history", "ChatWidget": "notebook.widget",
    "review": "workflows", "summarize": "workflows", "experiment": "experiments", "map": "batch:map_rows", "ModelInfo": "backends.base", "Health": "backends.base",
    "InferenceError": "errors", "InferenceInterrupted": "errors", "ConfigError": "errors", "PrivacyError": "errors",
    "BackendUnavailable": "errors", "ModelNotFound": "errors", "AuthenticationFailed": "errors",
    "RateLimited": "errors", "BackendError": "errors",
}
__all__ = sorted(_API) + ["load_ipython_extension", "__version__"]


def __getattr__(name: str):
    if name in _API:
        import importlib

        module, _, attribute = _API[name].partition(":")
        return getattr(importlib.import_module(f".{module}", __name__), attribute or name)
    raise AttributeError(f"module 'inference_magics' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    from .notebook import load_ipython_extension as load  # the IPython layer lives apart

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .notebook import unload_ipython_extension as unload

    unload(ipython)
