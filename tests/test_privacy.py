"""A private prompt never leaves the machine — through every entry point, with routing on and off,
and nothing at all leaves under INFERENCE_PRIVACY=local-only. The Anthropic peer records every
request it receives; it must have received none of these."""
import pytest

import inference_magics as im
from inference_magics import experiments, workflows
from inference_magics.notebook.widget import ChatWidget

SECRETS = [
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    "use the token ghp_abcdefghijklmnopqrstuvwxyz0123456789 to push",
    "the admin password is Tr0ub4dor&3xyz",
    "charge it to 5555 5555 5555 4444, exp 10/28",
    "AWS key AKIAZ4XQ7PLM2VB8KRTA with secret",
    "connect to postgres://app:s3cr3t-pass@db.internal/prod",
]


def cloud_requests(claude):
    return [r for r in claude.requests if r.path == "/v1/messages"]


@pytest.fixture(params=["true", "false"], ids=["routing-on", "routing-off"])
def routing(request, monkeypatch, peers):
    monkeypatch.setenv("INFERENCE_ENABLE_ROUTING", request.param)
    monkeypatch.setenv("INFERENCE_DEFAULT_BACKEND", "anthropic")  # the cloud is the default, even so
    return peers


@pytest.mark.parametrize("secret", SECRETS)
def test_infer_keeps_secrets_local(routing, secret):
    ollama, claude = routing
    assert im.infer(f"Explain this: {secret}").backend == "ollama"
    for how in (dict(backend="anthropic"), dict(model="claude-haiku-4.5")):
        with pytest.raises(im.PrivacyError):
            im.infer(f"Explain this: {secret}", **how)
    assert not cloud_requests(claude)


def test_chat_keeps_secrets_local(routing):
    _, claude = routing
    widget = ChatWidget("claude-haiku-4.5")
    for secret in SECRETS:
        widget.ask(f"remember this: {secret}", wait=True)
    assert all("refused to send" in t.text for t in widget.conversation.turns if t.role == "error")
    widget._loader.join(timeout=10)
    assert not cloud_requests(claude)


def test_experiment_keeps_secrets_local(routing):
    ollama, claude = routing
    for secret in SECRETS[:3]:
        done = experiments.experiment(f"Explain: {secret}", ["llama3.2", "claude-haiku-4.5", "sonnet"])
        assert done.runs[0].text and all("refused" in r.error for r in done.runs[1:])
    assert not cloud_requests(claude)


def test_summaries_and_reviews_keep_secrets_local(routing):
    _, claude = routing
    with pytest.raises(im.PrivacyError):
        workflows.summarize(f"Meeting notes. {SECRETS[2]}", model="claude-haiku-4.5")
    with pytest.raises(im.PrivacyError):
        workflows.review(f"KEY = '{SECRETS[1]}'", model="claude-haiku-4.5")
    assert not cloud_requests(claude)


def test_local_only_sends_nothing_to_the_cloud_whatever_the_flags(monkeypatch, peers):
    ollama, claude = peers
    monkeypatch.setenv("INFERENCE_PRIVACY", "local-only")
    assert im.infer("Design a distributed system architecture for payments.").backend == "ollama"
    assert "INFERENCE_PRIVACY=local-only" in im.route("hello").reason
    for how in (dict(backend="anthropic"), dict(model="claude-opus-4.5"), dict(model="haiku")):
        with pytest.raises(im.PrivacyError, match="local-only"):
            im.infer("hello", **how)
    widget = ChatWidget("claude-haiku-4.5")
    widget.ask("hello", wait=True)
    widget._loader.join(timeout=10)
    assert "local-only" in widget.conversation.turns[-1].text
    done = experiments.experiment("hello", ["llama3.2", "claude-haiku-4.5"])
    assert done.runs[0].text and "local-only" in done.runs[1].error
    assert {m.backend for m in im.models()} == {"ollama"} and set(im.health()) == {"ollama"}
    with pytest.raises(im.PrivacyError):
        im.models("anthropic")
    assert not claude.requests  # not one request of any kind: no model list, no health check


def test_the_mode_is_shown_by_explain_and_health(monkeypatch, peers):
    monkeypatch.setenv("INFERENCE_PRIVACY", "local-only")
    from inference_magics import settings
    from inference_magics.notebook import tables

    assert "local-only" in im.route("hello").reason
    shown = tables.health_bundle(im.health(), settings.load().privacy)
    assert "privacy: local-only" in shown["text/plain"]
