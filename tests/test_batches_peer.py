"""The Anthropic peer's Message Batches API, proven with the official SDK's
client.messages.batches.create / retrieve / list / cancel / delete / results."""
import json
import time

import anthropic
import httpx
import httpx2
import pytest

from tests.peers import AnthropicPeer

USER = [{"role": "user", "content": "Say something short"}]
VERSION = {"anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def ant():
    with AnthropicPeer() as peer:
        yield peer


@pytest.fixture(autouse=True)
def _fresh(ant):
    ant.reset()


@pytest.fixture
def ac(ant):
    return anthropic.Anthropic(base_url=ant.url, api_key=ant.api_key, max_retries=0, timeout=10)


def req(custom_id, model="claude-haiku-4-5", **params):
    return {"custom_id": custom_id,
            "params": {"model": model, "max_tokens": 100, "messages": USER, **params}}


def wait_ended(ac, batch_id, timeout=5.0):
    deadline = time.monotonic() + timeout
    while (b := ac.messages.batches.retrieve(batch_id)).processing_status != "ended":
        assert time.monotonic() < deadline, f"batch still {b.processing_status}"
        time.sleep(0.05)
    return b


def test_batch_lifecycle_and_results(ant, ac):
    ant.set(batch_seconds=0.3)
    t0 = time.monotonic()
    batch = ac.messages.batches.create(requests=[
        req("first"), req("second", model="claude-nope"), req("third", model="claude-opus-4-6")])
    assert batch.type == "message_batch" and batch.id.startswith("msgbatch_01")
    assert batch.processing_status == "in_progress" and batch.ended_at is None
    assert batch.results_url is None and batch.cancel_initiated_at is None
    assert batch.archived_at is None
    assert batch.request_counts.model_dump() == {"processing": 3, "succeeded": 0, "errored": 0,
                                                 "canceled": 0, "expired": 0}
    assert (batch.expires_at - batch.created_at).total_seconds() == 24 * 3600
    assert batch.created_at.utcoffset().total_seconds() == 0
    # Still processing: the SDK refuses to fetch results, and so does the API.
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        ac.messages.batches.results(batch.id)
    r = httpx.get(f"{ant.url}/v1/messages/batches/{batch.id}/results",
                  headers={"x-api-key": ant.api_key, **VERSION})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"

    ended = wait_ended(ac, batch.id)
    assert time.monotonic() - t0 >= 0.3
    assert ended.ended_at is not None and ended.ended_at >= ended.created_at
    assert ended.results_url == f"{ant.url}/v1/messages/batches/{batch.id}/results"
    assert ended.request_counts.model_dump() == {"processing": 0, "succeeded": 2, "errored": 1,
                                                 "canceled": 0, "expired": 0}

    results = list(ac.messages.batches.results(batch.id))
    assert [r.custom_id for r in results] == ["first", "second", "third"]
    assert [r.result.type for r in results] == ["succeeded", "errored", "succeeded"]
    first, second, third = (r.result for r in results)
    assert first.message.content[0].text == ant.expected_text() == third.message.content[0].text
    assert first.message.model == "claude-haiku-4-5-20251001"   # alias resolved, as /v1/messages
    assert third.message.model == "claude-opus-4-6" and first.message.stop_reason == "end_turn"
    assert first.message.usage.output_tokens == 12 and first.message.id != third.message.id
    assert second.error.type == "error"
    assert second.error.error.type == "invalid_request_error"
    assert second.error.error.message == "model: claude-nope"

    # The SDK downloaded the results_url, with the client's credentials and Accept header.
    dl = ant.requests_to(f"/v1/messages/batches/{batch.id}/results")[-1]
    assert dl.method == "GET" and dl.headers["accept"] == "application/binary"
    assert dl.headers["authorization"] == f"Bearer {ant.api_key}"
    assert ant.requests_to("/v1/messages/batches", "POST")[0].body["requests"][1]["custom_id"] \
        == "second"
    state = ant.batches[batch.id]
    assert state.status == "ended" and [r["custom_id"] for r in state.requests] == \
        ["first", "second", "third"]


def test_results_wire_format_and_params_errors(ant, ac):
    ant.set(tokens=3)
    batch = ac.messages.batches.create(requests=[
        req("ok", max_tokens=2), req("no-max", max_tokens=None),
        {"custom_id": "no-max-2", "params": {"model": "claude-opus-4-6", "messages": USER}}])
    wait_ended(ac, batch.id)
    r = httpx.get(f"{ant.url}/v1/messages/batches/{batch.id}/results",
                  headers={"x-api-key": ant.api_key, **VERSION})
    assert r.status_code == 200 and r.headers["content-type"] == "application/binary"
    lines = r.text.split("\n")
    assert lines[-1] == "" and len(lines) == 4
    ok, bad, bad2 = (json.loads(x) for x in lines[:-1])
    assert ok["result"]["type"] == "succeeded"
    msg = ok["result"]["message"]
    assert msg["content"] == [{"type": "text", "text": ant.expected_text(2)}]
    assert msg["stop_reason"] == "max_tokens" and msg["usage"]["output_tokens"] == 2
    assert bad["result"] == {"type": "errored", "error": {"type": "error", "error": {
        "type": "invalid_request_error", "message": "max_tokens: Input should be a valid integer"}}}
    assert bad2["result"]["error"]["error"]["message"] == "max_tokens: Field required"


def test_list_paginates_newest_first(ant, ac):
    ids = [ac.messages.batches.create(requests=[req(f"r{i}")]).id for i in range(3)]
    assert [b.id for b in ac.messages.batches.list(limit=1)] == ids[::-1]
    queries = [r.query for r in ant.requests_to("/v1/messages/batches", "GET")]
    assert queries == [{"limit": "1"}, {"limit": "1", "after_id": ids[2]},
                       {"limit": "1", "after_id": ids[1]}]
    page = ac.messages.batches.list(limit=1)
    assert page.has_more and page.first_id == page.last_id == ids[2]
    last = ac.messages.batches.list(limit=2, after_id=ids[1])
    assert [b.id for b in last.data] == [ids[0]] and not last.has_more
    before = ac.messages.batches.list(limit=5, before_id=ids[0])
    assert [b.id for b in before.data] == [ids[2], ids[1]] and not before.has_more
    assert all(b.processing_status == "ended" for b in ac.messages.batches.list().data)
    with pytest.raises(anthropic.BadRequestError):
        ac.messages.batches.list(limit=0)


def test_cancel_before_end(ant, ac):
    ant.set(batch_seconds=60)
    batch = ac.messages.batches.create(requests=[req("a"), req("b")])
    canceling = ac.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    assert canceling.request_counts.processing == 2 and canceling.results_url is None
    ended = wait_ended(ac, batch.id)
    assert ended.request_counts.model_dump() == {"processing": 0, "succeeded": 0, "errored": 0,
                                                 "canceled": 2, "expired": 0}
    assert ended.cancel_initiated_at <= ended.ended_at
    results = list(ac.messages.batches.results(batch.id))
    assert [(r.custom_id, r.result.type) for r in results] == [("a", "canceled"), ("b", "canceled")]
    with pytest.raises(anthropic.BadRequestError):   # an ended batch cannot be canceled
        ac.messages.batches.cancel(batch.id)


def test_cancel_midway_keeps_finished_requests(ant, ac):
    ant.set(batch_seconds=1.0, cancel_seconds=0.1)
    batch = ac.messages.batches.create(requests=[req(f"r{i}") for i in range(4)])
    time.sleep(0.5)   # about half the requests have finished
    assert ac.messages.batches.cancel(batch.id).processing_status == "canceling"
    assert ac.messages.batches.retrieve(batch.id).processing_status == "canceling"
    counts = wait_ended(ac, batch.id).request_counts
    assert counts.succeeded + counts.canceled == 4 and 1 <= counts.succeeded <= 3
    types = [r.result.type for r in ac.messages.batches.results(batch.id)]
    assert types == ["succeeded"] * counts.succeeded + ["canceled"] * counts.canceled


def test_delete(ant, ac):
    ant.set(batch_seconds=60)
    batch = ac.messages.batches.create(requests=[req("a")])
    with pytest.raises(anthropic.BadRequestError):   # still processing
        ac.messages.batches.delete(batch.id)
    ac.messages.batches.cancel(batch.id)
    wait_ended(ac, batch.id)
    gone = ac.messages.batches.delete(batch.id)
    assert (gone.id, gone.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        ac.messages.batches.retrieve(batch.id)
    assert batch.id not in ant.batches


def test_unknown_id_and_create_validation(ant, ac):
    for call in (ac.messages.batches.retrieve, ac.messages.batches.cancel,
                 ac.messages.batches.results):
        with pytest.raises(anthropic.NotFoundError) as ei:
            call("msgbatch_nope")
        assert ei.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as ei:
        ac.messages.batches.create(requests=[])
    assert ei.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError) as ei:
        ac.messages.batches.create(requests=[req("same"), req("same")])
    assert "custom_id" in ei.value.body["error"]["message"]
    for bad in ([{"custom_id": "x"}], [{"custom_id": "has space", "params": {}}],
                [{"custom_id": "x" * 65, "params": {}}], [{"custom_id": "x", "params": "p"}]):
        with pytest.raises(anthropic.BadRequestError):
            ac.messages.batches.create(requests=bad)
    assert ant.batches == {}


def test_auth_and_version_rules(ant):
    bad = anthropic.Anthropic(base_url=ant.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.batches.create(requests=[req("a")])
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.batches.list()
    r = httpx.post(ant.url + "/v1/messages/batches", json={"requests": [req("a")]},
                   headers={"x-api-key": ant.api_key})
    assert r.status_code == 400 and "anthropic-version" in r.json()["error"]["message"]
    r = httpx.post(ant.url + "/v1/messages/batches", json={"requests": [req("a")]},
                   headers={"x-api-key": ant.api_key, **VERSION})
    assert r.status_code == 200 and r.headers["request-id"].startswith("req_")
    assert list(r.json()) == ["id", "type", "processing_status", "request_counts", "ended_at",
                              "created_at", "expires_at", "cancel_initiated_at", "results_url",
                              "archived_at"]
    assert httpx.put(ant.url + "/v1/messages/batches", headers={"x-api-key": ant.api_key,
                                                                **VERSION}).status_code == 405


def test_results_download_faults_and_reset(ant, ac):
    batch = ac.messages.batches.create(requests=[req(f"r{i}") for i in range(4)])
    wait_ended(ac, batch.id)
    ant.set(fault="drop_mid_stream", fault_after=2,
            fault_paths=(f"/v1/messages/batches/{batch.id}/results",))
    lines = []
    with pytest.raises(httpx.HTTPError):   # on the wire: two whole lines, then the cut
        with httpx.stream("GET", f"{ant.url}/v1/messages/batches/{batch.id}/results",
                          headers={"x-api-key": ant.api_key, **VERSION}) as r:
            lines.extend(r.iter_lines())
    assert [json.loads(x)["custom_id"] for x in lines] == ["r0", "r1"]
    got = []
    with pytest.raises((anthropic.APIError, httpx2.HTTPError)):
        for r in ac.messages.batches.results(batch.id):
            got.append(r.custom_id)
    # The SDK reads in 64-byte pieces and loses a piece still buffered when the connection dies.
    assert got in (["r0"], ["r0", "r1"])
    assert ac.messages.create(model="claude-opus-4-6", max_tokens=5, messages=USER).content
    ant.reset()
    assert ant.batches == {} and ant.knobs["batch_seconds"] == 0.0
    with pytest.raises(anthropic.NotFoundError):
        ac.messages.batches.retrieve(batch.id)
