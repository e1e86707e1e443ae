"""Typed answers (typed_answers.py): the schema goes down each protocol as that service expects
it, the answer is validated into an instance, one retry carries the validator's message, and the
embedded llama-server constrains the packaged base model with a real json_schema grammar."""
from __future__ import annotations

import dataclasses
import json
from typing import TypedDict

import pytest
from pydantic import BaseModel, Field

import inference_magics as im
from inference_magics import api
from inference_magics.notebook import render
from inference_magics.batch import map_rows
from inference_magics.errors import ConfigError
from inference_magics.typed_answers import AnswerInvalid, Schema, columns
from tests.conftest import needs_local


class Paper(BaseModel):
    title: str
    year: int
    peer_reviewed: bool


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Label(TypedDict):
    label: str
    confidence: float


PAPER = '{"title": "Attention", "year": 2017, "peer_reviewed": true}'


def test_every_kind_of_schema_gives_a_json_schema_and_a_validator():
    assert Schema(Paper).parse(PAPER) == Paper(title="Attention", year=2017, peer_reviewed=True)
    assert Schema(Point).parse('{"x": 1, "y": 2}') == Point(1, 2)
    assert Schema(Label).parse('{"label": "spam", "confidence": 0.9}') == {"label": "spam", "confidence": 0.9}
    as_dict = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert Schema(as_dict).parse('```json\n{"n": 3}\n```') == {"n": 3}
    assert Schema(Point).json["required"] == ["x", "y"]


def test_a_mismatch_names_the_field():
    with pytest.raises(ValueError, match="^field year: Input should be a valid integer"):
        Schema(Paper).parse('{"title": "A", "year": "soon", "peer_reviewed": true}')
    with pytest.raises(ValueError, match="^field n: 'x' is not of type 'integer'"):
        Schema({"type": "object", "properties": {"n": {"type": "integer"}}}).parse('{"n": "x"}')
    with pytest.raises(ValueError, match="not valid JSON"):
        Schema(Paper).parse("Sure! Here it is")


def test_what_is_not_a_schema_is_one_line():
    for wrong in (Paper(title="a", year=1, peer_reviewed=True), int, {"type": "objekt"}, {"type": "array"}):
        with pytest.raises(ConfigError):
            Schema(wrong)


# --- on the wire ------------------------------------------------------------------------------
def test_ollama_gets_the_schema_as_format(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(text=PAPER)
    result = im.infer("Describe the paper.", backend="ollama", schema=Paper)
    assert result.parsed == Paper(title="Attention", year=2017, peer_reviewed=True)
    assert ollama_peer.requests_to("/api/chat")[0].body["format"] == Paper.model_json_schema()
    assert "peer_reviewed" in render.result_plain(result) and "{" not in render.result_plain(result).split("—")[0]


def test_claude_gets_structured_output_with_closed_objects(claude):
    claude.set(text=PAPER)
    result = im.infer("Describe the paper.", backend="anthropic", schema=Paper)
    assert result.parsed.year == 2017
    sent = claude.requests_to("/v1/messages")[0].body["output_config"]["format"]
    assert sent["type"] == "json_schema" and sent["schema"]["additionalProperties"] is False


class Review(BaseModel):
    title: str = Field(max_length=80)
    stars: int = Field(ge=1, le=5)
    tags: list[str] = Field(min_length=2)


def test_claude_is_not_sent_the_constraints_its_structured_output_refuses(claude):
    # the API answers 400 "For 'integer' type, property 'minimum' is not supported": the SDK's own
    # transform moves such constraints into the description, and our validation still enforces them
    claude.set(text='{"title": "Good", "stars": 4, "tags": ["a", "b"]}')
    schema = Schema(Review)
    before = json.dumps(schema.json, sort_keys=True)
    result = im.infer("Review it.", backend="anthropic", schema=schema)
    assert result.parsed == Review(title="Good", stars=4, tags=["a", "b"])
    sent = claude.requests_to("/v1/messages")[0].body["output_config"]["format"]["schema"]
    assert sent["additionalProperties"] is False and "minimum" not in sent["properties"]["stars"]
    assert "minimum: 1" in sent["properties"]["stars"]["description"]
    assert json.dumps(schema.json, sort_keys=True) == before  # the caller's schema is not changed
    claude.set(text='{"title": "Good", "stars": 9, "tags": ["a", "b"]}')
    with pytest.raises(AnswerInvalid, match="stars"):  # still enforced here
        im.infer("Review it.", backend="anthropic", schema=schema)


def test_openai_gets_response_format_json_schema(openai_peer, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.url + "/v1")
    openai_peer.set(text='{"x": 3, "y": 4}')
    assert im.infer("A point.", backend="openai", schema=Point).parsed == Point(3, 4)
    sent = openai_peer.requests_to("/v1/chat/completions")[0].body["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "Point", "schema": Schema(Point).json}}


def test_one_retry_with_the_validators_message_then_one_line_with_the_text_kept(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(text='{"title": "A", "year": "soon", "peer_reviewed": true}')
    with pytest.raises(AnswerInvalid, match=r"^the answer does not match Paper: field year: .*after one retry") as e:
        im.infer("Describe the paper.", backend="ollama", schema=Paper)
    assert e.value.result.text.endswith('"year": "soon", "peer_reviewed": true}')
    first, retry = ollama_peer.requests_to("/api/chat")
    assert "field year: Input should be a valid integer" in retry.body["messages"][-1]["content"]
    assert retry.body["messages"][-2] == {"role": "assistant", "content": ollama_peer.knobs["text"]}


def test_a_typed_result_shows_as_a_table_of_fields(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(text='{"title": "<script>alert(1)</script>", "year": 2017, "peer_reviewed": false}')
    html = render.result_html(im.infer("x", backend="ollama", schema=Paper))
    assert "<th style='text-align:left;padding-right:1em'>year</th>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_map_with_a_schema_makes_typed_columns_and_keeps_a_failed_rows_error(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(text=PAPER)
    good = map_rows("Paper: {row}", ["a", "b"], schema=Paper, progress=False).frame()
    assert str(good["year"].dtype) == "Int64" and str(good["peer_reviewed"].dtype) == "boolean"
    assert good["year"].tolist() == [2017, 2017] and good["peer_reviewed"].tolist() == [True, True]
    ollama_peer.set(text='{"title": "A", "year": "soon", "peer_reviewed": true}')
    bad = map_rows("Paper: {row}", ["c"], schema=Paper, progress=False, cache=False).frame()
    assert bad["error"][0].startswith("the answer does not match Paper: field year")
    assert bad["year"].isna().all() and '"soon"' in bad["output"][0]


def test_columns_leave_a_gap_without_turning_ints_into_floats():
    frame = columns([Paper(title="a", year=1, peer_reviewed=True), None], Schema(Paper))
    assert frame["year"].tolist()[0] == 1 and str(frame["year"].dtype) == "Int64" and frame["year"].isna()[1]


# --- the embedded model, with llama-server's real grammar ---------------------------------------
@needs_local
@pytest.mark.warm_local_server
def test_the_embedded_base_model_answers_to_a_schema_through_the_grammar(local_model):
    result = api.infer("Give the title and year of the film Casablanca, and whether it is in colour.",
                       backend="local", schema=Paper, cache=False)
    assert isinstance(result.parsed, Paper)  # the grammar makes a 270M base model write valid, typed JSON
    assert isinstance(result.parsed.year, int) and isinstance(result.parsed.peer_reviewed, bool)


@needs_local
@pytest.mark.warm_local_server
def test_map_with_a_schema_on_the_embedded_model(local_model):
    class Sentiment(BaseModel):
        positive: bool
        stars: int

    frame = map_rows("Review: {row}", ["Loved it, wonderful.", "Terrible, broke at once."], schema=Sentiment,
                     backend="local", progress=False, cache=False).frame()
    assert str(frame["stars"].dtype) == "Int64" and str(frame["positive"].dtype) == "boolean"
    assert frame["error"].isna().all(), frame["error"].tolist()
    assert json.dumps(frame["stars"].tolist())  # plain ints


def test_a_peer_answers_a_schema_with_a_value_that_follows_it(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)  # as a constrained model would: no text knob needed
    assert im.infer("x", backend="ollama", schema=Paper).parsed == Paper(title="word0", year=7, peer_reviewed=True)


# --- a cut answer, a dangling $ref, nullable fields ---------------------------------------
def test_an_answer_cut_at_the_token_limit_is_not_retried_and_names_max_tokens(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(text='{"title": "Attention is all you need and then some more words', tokens=12)
    with pytest.raises(AnswerInvalid, match=r"^the answer was cut at the token limit.*raise --max-tokens") as caught:
        im.infer("Describe the paper.", backend="ollama", schema=Paper, max_tokens=4)
    assert caught.value.result.text.startswith('{"title"')
    assert len(ollama_peer.requests_to("/api/chat")) == 1  # the same limit would cut the retry too


def test_a_dangling_ref_in_a_schema_dict_is_one_line_before_anything_is_sent(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    for ref in ("#/$defs/Missing", "https://example.com/other.json"):
        dangling = {"type": "object", "properties": {"a": {"$ref": ref}}}
        with pytest.raises(ConfigError, match=r"\$ref .* points at nothing in the schema"):
            im.infer("x", backend="ollama", schema=dangling)
    assert ollama_peer.requests_to("/api/chat") == []
    fine = {"type": "object", "$defs": {"N": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/N"}}}
    assert Schema(fine).parse('{"a": 3}') == {"a": 3}


def test_nullable_fields_keep_their_type_in_columns():
    class Row(BaseModel):
        year: int | None
        score: float | None = None
        ok: bool | None = None

    frame = columns([Row(year=2017, score=0.5, ok=True), Row(year=None), None], Schema(Row))
    assert {c: str(t) for c, t in frame.dtypes.items()} == {"year": "Int64", "score": "Float64", "ok": "boolean"}
    assert frame["year"].tolist()[0] == 2017 and frame["year"].isna().tolist() == [False, True, True]
    loose = {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}}
    assert str(columns([{"n": 1}, {"n": None}], Schema(loose))["n"].dtype) == "Int64"
