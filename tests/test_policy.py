"""One privacy policy for every path (inference_magics/policy.py): the system prompt and chat
history, `--map` rows (refused in their row), experiments, workflows, embeddings (judged with
the model), Message Batches under local-only — and Ollama `*-cloud` models in any spelling are
remote. The Anthropic peer records every request: it must never see the secret."""
import pytest

import inference_magics as im
from inference_magics import cache, experiments, policy, settings, workflows
from inference_magics import message_batches as batch
from inference_magics.backends import is_cloud_model
from inference_magics.notebook.widget import ChatWidget

SECRET = "ghp_Q8vN2kLp7RzX4mWc9TfB1yHs6JdE3gUa0KoI"  # a GitHub token shape
PRIVATE = f"Why does git reject this token? {SECRET}"

CLOUD_SPELLINGS = [
    "gpt-oss:120b-cloud", "GPT-OSS:120B-CLOUD", "gpt-oss:120b-cloud@sha256:" + "ab" * 32, "gpt-oss:cloud",
    "  gpt-oss:120b-cloud  ", "gpt-oss:120b-\u200bcloud", "ｇｐｔ-ｏｓｓ:１２０ｂ-ｃｌｏｕｄ", "qwen3-coder:480b-Cloud",
    "library/deepseek-v3.1:671b-cloud", "kimi-k2:1t-cloud:latest",
]
LOCAL_NAMES = ["llama3.2:3b", "nomic-embed-text:latest", "cloudy-llama:7b", "soundcloud-tagger:1b", "qwen2.5-coder:7b"]


@pytest.fixture
def cloud(peers):
    """A recording cloud: every test here asserts it never saw the secret."""
    ollama, claude = peers
    yield ollama, claude
    assert SECRET not in " ".join(f"{r.path} {r.body}" for r in claude.requests)


def to_claude(claude, path="/v1/messages"):
    return [r for r in claude.requests if r.path == path]


@pytest.mark.parametrize("name", CLOUD_SPELLINGS)
def test_cloud_models_are_remote_in_any_spelling(name):
    assert is_cloud_model(name)


@pytest.mark.parametrize("name", LOCAL_NAMES)
def test_local_names_are_not_cloud_models(name):
    assert not is_cloud_model(name)


@pytest.mark.parametrize("name", CLOUD_SPELLINGS[:7])
def test_a_cloud_spelling_never_gets_a_secret_for_chat_or_embeddings(cloud, name):
    ollama, _ = cloud
    with pytest.raises(im.PrivacyError) as refused:
        im.infer(PRIVATE, model=name)
    assert SECRET not in refused.value.message and "stays on this machine" in refused.value.message
    with pytest.raises(im.PrivacyError, match="text 1"):
        im.embed(["hello", PRIVATE], model=name)
    assert not ollama.requests_to("/api/chat") and not ollama.requests_to("/api/embed")


def test_a_cloud_embedding_model_from_the_settings_refuses_a_secret(monkeypatch, cloud):
    ollama, _ = cloud
    monkeypatch.setenv("OLLAMA_EMBED_MODEL", "Nomic-Embed-Text:CLOUD")
    with pytest.raises(im.PrivacyError, match="text 0 to ollama .*Nomic-Embed-Text:CLOUD"):
        im.embed(PRIVATE)
    assert not ollama.requests_to("/api/embed")
    monkeypatch.setenv("OLLAMA_EMBED_MODEL", "nomic-embed-text:latest")
    assert im.embed(PRIVATE).shape == (768,)  # the same text with a model on this machine


def test_the_system_prompt_and_history_are_judged_with_the_prompt(cloud):
    _, claude = cloud
    with pytest.raises(im.PrivacyError):
        im.infer("Summarize our chat.", system=f"You hold the deploy token {SECRET}.", model="claude-haiku-4.5")
    history = [{"role": "user", "content": PRIVATE}, {"role": "assistant", "content": "Noted."}]
    with pytest.raises(im.PrivacyError):
        im.infer("And now?", messages=history, model="claude-haiku-4.5")
    for content in ([{"type": "text", "text": PRIVATE}],
                    [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": PRIVATE}]}]):
        with pytest.raises(im.PrivacyError):
            im.infer("And now?", messages=[{"role": "user", "content": content}], model="claude-haiku-4.5")
    assert not to_claude(claude)


def test_a_chat_that_switches_to_claude_keeps_its_earlier_secret_local(cloud):
    ollama, claude = cloud
    widget = ChatWidget()
    try:
        widget.ask(PRIVATE, wait=True)  # routed to Ollama: fine
        assert ollama.requests_to("/api/chat")
        widget.ask("/model claude-haiku-4.5")
        widget.ask("What did I just ask?", wait=True)
        errors = [t.text for t in widget.conversation.turns if t.role == "error"]
        assert errors and "refused to send this prompt to anthropic" in errors[-1] and SECRET not in errors[-1]
    finally:
        widget._loader.join(timeout=10)
    assert not to_claude(claude)


def test_a_private_first_row_is_refused_in_its_row_and_the_batch_goes_on(cloud):
    _, claude = cloud
    cache._caches.clear()
    mapped = im.map("Summarize: {row}", [PRIVATE, "the weather today", "the sea"], model="claude-haiku-4.5",
                    progress=False)
    first = mapped.rows[0]
    assert first.output is None and first.error.startswith("refused to send this prompt to anthropic")
    assert SECRET not in first.error
    assert [r.backend for r in mapped.rows[1:]] == ["anthropic", "anthropic"] and mapped.failed == 1
    assert len(to_claude(claude)) == 2


def test_experiment_and_workflows_call_the_policy(cloud, tmp_path):
    _, claude = cloud
    done = experiments.experiment(PRIVATE, ["llama3.2", "claude-haiku-4.5", "GPT-OSS:120B-CLOUD"])
    assert done.runs[0].text and all("refused" in r.error for r in done.runs[1:])
    with pytest.raises(im.PrivacyError):
        workflows.review(f"TOKEN = '{SECRET}'\n", model="claude-haiku-4.5")
    with pytest.raises(im.PrivacyError):
        workflows.summarize(f"Notes.\n\n{PRIVATE}", model="claude-haiku-4.5")
    assert not to_claude(claude)


def test_local_only_sends_no_message_batch_request_at_all(monkeypatch, cloud):
    _, claude = cloud
    cache._caches.clear()
    claude.set(batch_seconds=0.2, tokens=3)
    job = batch.submit("Summarize: {row}", ["the weather"], model="claude-haiku-4.5")
    claude.reset()
    monkeypatch.setenv("INFERENCE_PRIVACY", "local-only")
    with pytest.raises(im.PrivacyError, match="INFERENCE_PRIVACY=local-only: nothing is sent to anthropic"):
        batch.submit("Summarize: {row}", ["the weather"], model="claude-haiku-4.5")
    listed = batch.jobs()
    assert [j["id"] for j in listed] == [job["id"]] and "not polled" in listed[0]["status"]
    with pytest.raises(im.PrivacyError, match="local-only"):
        batch.collect(job["id"])
    assert not claude.requests  # not one request: no submit, no poll, no results


def test_the_policy_names_what_it_found_and_never_the_value(peers):
    current = settings.load()
    with pytest.raises(im.PrivacyError) as refused:
        policy.check(PRIVATE, "anthropic", "claude-haiku-4-5", current, what="row 3")
    message = refused.value.message
    assert message.startswith("refused to send row 3 to anthropic (model claude-haiku-4-5): it contains")
    assert SECRET not in message and "\n" not in message
    policy.check(PRIVATE, "ollama", "llama3.2:3b", current)  # on this machine: allowed
    policy.check("What is the capital of France?", "anthropic", "claude-haiku-4-5", current)
    with pytest.raises(im.PrivacyError):
        policy.check(PRIVATE, "ollama", "gpt-oss:120b-CLOUD", current)
