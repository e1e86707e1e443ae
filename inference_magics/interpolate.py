"""`{name}` in a prompt becomes the notebook variable of that name, exactly once.

Only a brace pair around a plain name (optionally `.attr` or `[index]` after it) is a field, so
code full of braces passes through untouched: `{"a": {"b": 1}}`, `{k: v for ...}`, `${HOME}`.
A name the notebook does not define stays as written. `{{name}}` writes a literal `{name}`.
The result is never interpolated again (IPython's own `{}`/`$` expansion is switched off).
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import ConfigError

_PATH = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[-?\d+\])*"
_FIELD = re.compile(r"\{\{(" + _PATH + r")\}\}|\{(" + _PATH + r")\}")
_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[(-?\d+)\]")
MAX_VALUE_CHARS = 1_000_000

_MISSING = object()


def _lookup(path: str, namespace: dict):
    name = re.match(r"[A-Za-z_]\w*", path).group(0)
    value = namespace.get(name, _MISSING)
    for step in _STEP.finditer(path, len(name)):
        if value is _MISSING:
            break
        attr, index = step.groups()
        try:
            if attr and isinstance(value, Mapping):  # {row.title} for a dict row
                value = value[attr]
            else:
                value = getattr(value, attr) if attr else value[int(index)]
        except (AttributeError, LookupError, TypeError):
            value = _MISSING
        except Exception as exc:  # a user property or __getitem__ may raise anything
            raise ConfigError(f"could not put {{{path}}} into the prompt: reading {step.group(0)} raised "
                              f"{type(exc).__name__}: {_one_line(exc)} — fix it, or pass a plain value.") from None
    return value


def _one_line(exc: Exception) -> str:
    try:
        return " ".join(str(exc).split())[:200]
    except Exception:  # even its message may be broken
        return "(no message)"


def _as_text(path: str, value) -> str:
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception as exc:  # a user object's __str__ may raise anything
        raise ConfigError(f"could not put {{{path}}} into the prompt: str() of it raised "
                          f"{type(exc).__name__}: {_one_line(exc)} — pass a string instead.") from None
    if len(text) > MAX_VALUE_CHARS:
        raise ConfigError(f"{{{path}}} is {len(text):,} characters — too long for a prompt (limit "
                          f"{MAX_VALUE_CHARS:,}); pass a slice or a summary of it.")
    return wire_safe(text)


def wire_safe(text: str) -> str:
    """Lone surrogates (from undecodable bytes, or pasted) cannot be sent as UTF-8 JSON: each
    becomes a visible `?`. Any other text comes back unchanged (and fast: no copy)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _rendered(render, path: str, value) -> str:
    try:
        return render(path, value)
    except ConfigError:
        raise
    except Exception as exc:  # a user object's len/str/indexing may raise anything
        raise ConfigError(f"could not put {{{path}}} into the prompt: rendering it raised "
                          f"{type(exc).__name__}: {_one_line(exc)} — pass a plain value.") from None


def unresolved(template: str, namespace: dict) -> list[str]:
    """The `{path}` fields of `template` that this namespace leaves as written."""
    return [path for escaped, path in _FIELD.findall(template) if path and _lookup(path, namespace) is _MISSING]


def interpolate(template: str, namespace: dict, render=None) -> str:
    """`render(path, value) -> str`, when given, turns an object into text for a model
    (object_context.Renderer.render: DataFrames, arrays, long lists within a budget) instead of str()."""
    def field(match: re.Match) -> str:
        escaped, path = match.groups()
        if escaped is not None:
            return "{" + escaped + "}"
        value = _lookup(path, namespace)
        if value is _MISSING:
            return match.group(0)
        return _as_text(path, value if render is None else _rendered(render, path, value))

    return _FIELD.sub(field, template)
