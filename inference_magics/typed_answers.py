"""Typed answers: `im.infer(..., schema=X)` and `%%infer --schema NAME`.

X is a pydantic model class, a dataclass, a TypedDict (validated through a pydantic TypeAdapter)
or a JSON-schema dict (validated with `jsonschema`). The schema goes down to the backend, which
constrains the answer natively (Ollama `format`, Claude structured output, OpenAI-compatible
`response_format`, llama-server's grammar); the answer is validated here. When it does not match,
one retry goes back with the validator's message; after that, one line naming the field, with
the raw text kept in `.text`.
"""
from __future__ import annotations

import dataclasses
import json
import re

from .errors import BackendError, ConfigError

RETRY_PROMPT = ("That answer does not match the required JSON schema: {problem}. Answer again with only the JSON "
                "object, matching the schema exactly.")


class AnswerInvalid(BackendError):
    """The answer did not match the schema, also after one retry (its text is in `.result.text`)."""


class Schema:
    """One schema: the JSON schema sent to the backend, and the validator for the answer."""

    def __init__(self, spec):
        self.spec = spec
        if isinstance(spec, dict):
            self.name = str(spec.get("title") or "schema")
            self._check_dict(spec)
            self.json = spec
            self._adapter = None
            return
        if not isinstance(spec, type):
            raise ConfigError(f"schema must be a pydantic model class, a dataclass, a TypedDict or a JSON-schema dict, "
                              f"not {type(spec).__name__} — e.g. schema=Paper where `class Paper(BaseModel): ...`.")
        from pydantic import PydanticSchemaGenerationError, TypeAdapter

        self.name = spec.__name__
        try:
            self._adapter = TypeAdapter(_for_pydantic(spec))
            self.json = self._adapter.json_schema()
        except (PydanticSchemaGenerationError, TypeError) as exc:
            raise ConfigError(f"cannot make a JSON schema from {spec.__name__} ({str(exc).splitlines()[0][:160]}) — "
                              "use a pydantic model, a dataclass or a TypedDict of plain types.") from None
        if self.json.get("type") != "object":
            raise ConfigError(f"{spec.__name__} is not a record with fields (its schema is {self.json.get('type')!r}) "
                              "— use a pydantic model, a dataclass or a TypedDict.")

    @staticmethod
    def _check_dict(spec: dict) -> None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(spec)
        except SchemaError as exc:
            raise ConfigError(f"the schema dict is not a valid JSON schema ({exc.message[:160]}) — fix it, or pass a "
                              "pydantic model class.") from None
        if spec.get("type") != "object":
            raise ConfigError("the schema dict must describe an object (\"type\": \"object\" with \"properties\").")
        from referencing import Registry
        from referencing.exceptions import Unresolvable
        from referencing.jsonschema import DRAFT202012

        resolver = Registry().resolver_with_root(DRAFT202012.create_resource(spec))  # every $ref points inside it
        for ref in _refs(spec):
            try:
                resolver.lookup(ref)
            except Unresolvable:
                raise ConfigError(f"the schema dict's $ref {ref[:100]!r} points at nothing in the schema — define it "
                                  "under \"$defs\" (references to other files are not fetched).") from None

    @property
    def fields(self) -> dict:
        """{field name: its JSON schema} in declaration order."""
        return dict(self.json.get("properties") or {})

    def parse(self, text: str):
        """The validated instance; raises ValueError with one line naming the field."""
        raw = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", text or "")  # tolerate a fenced answer
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"the answer is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") \
                from None
        if self._adapter is None:
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import best_match

            error = best_match(Draft202012Validator(self.json).iter_errors(value))
            if error is not None:
                where = ".".join(str(p) for p in error.absolute_path) or "the answer"
                raise ValueError(f"field {where}: {error.message[:200]}")
            return value
        from pydantic import ValidationError

        try:
            return self._adapter.validate_python(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the answer"
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise ValueError(f"field {where}: {first['msg']}{more}") from None


def _refs(value) -> list[str]:
    """Every `$ref` string in a schema (nested anywhere)."""
    if isinstance(value, dict):
        own = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return own + [r for item in value.values() for r in _refs(item)]
    if isinstance(value, list):
        return [r for item in value for r in _refs(item)]
    return []


def _for_pydantic(spec):
    """pydantic reads a `typing.TypedDict` only from Python 3.12: before that, the same fields as a
    `typing_extensions.TypedDict` (which it reads everywhere)."""
    import sys
    import typing

    if sys.version_info >= (3, 12) or not typing.is_typeddict(spec) or type(spec).__module__ != "typing":
        return spec
    import typing_extensions

    remade = typing_extensions.TypedDict(spec.__name__, typing.get_type_hints(spec), total=spec.__total__)
    remade.__module__ = spec.__module__
    return remade


def as_fields(value) -> dict:
    """A parsed instance as {field: value}: a pydantic model, a dataclass, a dict (TypedDict, schema dict)."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return dict(value) if isinstance(value, dict) else {"value": value}


def fields_html(value) -> str:
    """A parsed object as a small table of fields (values escaped: they are the model's text)."""
    from .untrusted import escape

    rows = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{escape(name)}</th>"
                   f"<td style='text-align:left'>{escape(_shown(v))}</td></tr>" for name, v in as_fields(value).items())
    return f"<table style='overflow-wrap:anywhere'><tbody>{rows}</tbody></table>"


def fields_plain(value) -> str:
    items = as_fields(value)
    width = max((len(str(k)) for k in items), default=0)
    return "\n".join(f"{str(name).ljust(width)}  {_shown(v)}" for name, v in items.items())


def _shown(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


# JSON-schema types -> pandas nullable dtypes: a failed row leaves a gap without turning ints into floats
_DTYPES = {"integer": "Int64", "number": "Float64", "boolean": "boolean", "string": "string"}


def _scalar_type(field_schema) -> str | None:
    """A field's JSON type, seeing through "nullable" (`int | None` is anyOf [integer, null])."""
    if not isinstance(field_schema, dict):
        return None
    kind = field_schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return kinds[0] if len(kinds) == 1 else None
    if kind is None and isinstance(field_schema.get("anyOf"), list):
        kinds = [k for k in field_schema["anyOf"] if not (isinstance(k, dict) and k.get("type") == "null")]
        return _scalar_type(kinds[0]) if len(kinds) == 1 else None
    return kind if isinstance(kind, str) else None


def columns(parsed: list, schema: "Schema"):
    """One typed DataFrame column per field (ints stay ints, bools stay bools); a row that failed
    (None) is empty in every field."""
    import pandas

    names = list(schema.fields)
    records = [as_fields(p) if p is not None else {} for p in parsed]
    frame = pandas.DataFrame([{n: r.get(n) for n in names} for r in records], columns=names)
    for name, field_schema in schema.fields.items():
        dtype = _DTYPES.get(_scalar_type(field_schema))
        if dtype:
            try:
                frame[name] = frame[name].astype(dtype)
            except (TypeError, ValueError):
                pass  # a value of another type slipped through (a dict schema's loose field): kept as objects
    return frame


class TypedStream:
    """Duck-types api.Stream for the cell: stream an answer constrained by the schema, validate
    it, and retry once with the validator's message when it does not match."""

    def __init__(self, prompt: str, schema, **options):
        from . import api

        self.schema = schema if isinstance(schema, Schema) else Schema(schema)
        if options.get("format") not in (None, "json"):
            raise ConfigError("--format does not apply with a schema (the schema already asks for JSON).")
        options.pop("format", None)
        self._prompt, self._options = prompt, options
        self._running = api.Stream(prompt, schema=self.schema.json, **options)
        self.route = self._running.route
        require(self.route, "schema")

    @property
    def result(self):
        return self._running.result

    def close(self) -> None:
        self._running.close()

    def each(self, on_text, on_thinking=None, on_waiting=None):
        from . import api

        result = self._running.each(on_text, on_thinking, on_waiting)
        problem = self._validate(result)
        if problem is None:
            return result
        if result.stop_reason in api.CUT_STOPS:  # asking again with the same limit is cut again: said, not retried
            result.error = f"the answer was cut at the token limit before it was complete JSON ({problem})"
            error = AnswerInvalid(f"{result.error} — raise --max-tokens (max_tokens=); the raw text is kept in .text.")
            error.result = result
            raise error
        first_text, first = result.text, result
        on_text(f"\n\n*(did not match {self.schema.name}: {problem} — asking again once)*\n\n")
        earlier = tuple(self._options.get("messages") or ()) + (
            {"role": "user", "content": self._prompt}, {"role": "assistant", "content": first_text})
        options = {**self._options, "messages": earlier, "backend": self.route.backend, "model": self.route.model}
        self._running = api.Stream(RETRY_PROMPT.format(problem=problem), schema=self.schema.json, **options)
        result = self._running.each(on_text, on_thinking, on_waiting)
        _count_both(first, result)  # the cell's usage and cost are both requests' (the history has each)
        again = self._validate(result)
        if again is None:
            result.notices.append(f"the first answer did not match {self.schema.name} ({problem}); asked again once")
            return result
        result.error = f"the answer does not match {self.schema.name}: {again}"
        error = AnswerInvalid(f"{result.error}, also after one retry — the raw text is kept in .text; try a larger "
                              "model or loosen the schema.")
        error.result = result
        raise error

    def _validate(self, result) -> str | None:
        result.options["schema"] = self.schema.name
        try:
            result.parsed = self.schema.parse(result.text)
        except ValueError as exc:
            result.parsed = None
            return str(exc)
        return None


def require(route, capability: str) -> None:
    """One line, before anything is sent, when the chosen backend cannot do this at all."""
    from .backends import spec

    backend = spec(route.backend)
    if not backend.supports(capability, route.model):
        what = {"schema": "constrain an answer to a schema", "tools": "call tools"}[capability]
        raise ConfigError(f"{backend.label} cannot {what} — choose another backend "
                          "(--backend) or model.")


def _count_both(first, second) -> None:
    """The retry's Result carries the usage and cost of both requests, as a tool loop's does."""
    second.usage = first.usage + second.usage
    if first.cost_usd is not None and second.cost_usd is not None:
        second.cost_usd = first.cost_usd + second.cost_usd
