"""The router is pure: a table of prompts and the backend/model each must get."""
import pytest

from inference_magics.errors import ConfigError, PrivacyError
from inference_magics.routing import canonical_model, decide
from inference_magics.settings import Secret, Settings

WITH_KEY = Settings(anthropic_api_key=Secret("sk-ant-routing-test-key-000"))
NO_KEY = Settings()
ROUTING_OFF = Settings(anthropic_api_key=Secret("sk-ant-routing-test-key-000"), enable_routing=False)
CLOUD_DEFAULT = Settings(anthropic_api_key=Secret("sk-ant-routing-test-key-000"), default_backend="anthropic")

GENERAL, CODE = "llama3.2:latest", "qwen2.5-coder:7b"

# (prompt, settings, expected backend, expected model)
TABLE = [
    # plain prompts go to the default backend and its default model
    ("What is the capital of France?", WITH_KEY, "ollama", GENERAL),
    ("Write a haiku about autumn leaves.", WITH_KEY, "ollama", GENERAL),
    ("Summarize the plot of Hamlet in three sentences.", WITH_KEY, "ollama", GENERAL),
    ("Translate 'good morning' into Spanish.", NO_KEY, "ollama", GENERAL),
    ("Give me five names for a bakery.", CLOUD_DEFAULT, "anthropic", "sonnet"),
    ("Explain what a rainbow is to a child.", ROUTING_OFF, "ollama", GENERAL),
    # code in the prompt, or a code task, picks the code model
    ("def add(a, b):\n    return a - b\n\nWhat is wrong here?", WITH_KEY, "ollama", CODE),
    ("Please review this code:\n```python\nprint('hi')\n```", WITH_KEY, "ollama", CODE),
    ("Refactor this loop to use a list comprehension.", WITH_KEY, "ollama", CODE),
    ("Write a Python function that reverses a string.", WITH_KEY, "ollama", CODE),
    ("SELECT name FROM users WHERE id = 3;", WITH_KEY, "ollama", CODE),
    ("Why does my JavaScript promise never resolve?", WITH_KEY, "ollama", CODE),
    ("I get this traceback when I import pandas, help me debug it", WITH_KEY, "ollama", CODE),
    ("for (int i = 0; i < n; i++) {\n  sum += a[i];\n}", NO_KEY, "ollama", CODE),
    # complex reasoning goes to Claude when a key is configured
    ("Design a distributed system architecture for a global payments platform.", WITH_KEY, "anthropic", "sonnet"),
    ("Prove that the square root of 2 is irrational.", WITH_KEY, "anthropic", "sonnet"),
    ("Write a multi-step plan to migrate our monolith to services.", WITH_KEY, "anthropic", "sonnet"),
    ("Give a research-grade analysis of transformer scaling laws.", WITH_KEY, "anthropic", "sonnet"),
    ("What are the trade-offs between Raft and Paxos?", WITH_KEY, "anthropic", "sonnet"),
    ("Do an in-depth analysis of this market entry strategy.", WITH_KEY, "anthropic", "sonnet"),
    ("Derive the closed form of the Fibonacci sequence.", WITH_KEY, "anthropic", "sonnet"),
    ("Sketch the system design for a URL shortener that scales.", WITH_KEY, "anthropic", "sonnet"),
    # ... but not without a key, and not with routing off
    ("Design a distributed system architecture for a global payments platform.", NO_KEY, "ollama", GENERAL),
    ("Prove that the square root of 2 is irrational.", NO_KEY, "ollama", GENERAL),
    ("Prove that the square root of 2 is irrational.", ROUTING_OFF, "ollama", GENERAL),
    # privacy words keep the prompt local, even over complexity
    ("This is confidential: summarize our Q3 numbers.", WITH_KEY, "ollama", GENERAL),
    ("Proprietary design doc follows; design a distributed system architecture from it.", WITH_KEY, "ollama", GENERAL),
    ("Internal only — draft a memo about the reorg.", WITH_KEY, "ollama", GENERAL),
    ("Under NDA: what do you think of this plan?", WITH_KEY, "ollama", GENERAL),
    ("Please process this locally, it contains personal data.", CLOUD_DEFAULT, "ollama", GENERAL),
    ("Don't send this anywhere: rewrite my diary entry.", CLOUD_DEFAULT, "ollama", GENERAL),
    ("Keep it offline and explain the theorem of Pythagoras with a proof.", WITH_KEY, "ollama", GENERAL),
    # secrets keep the prompt local always, even with routing off and a cloud default
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nWhat is this?", CLOUD_DEFAULT, "ollama", GENERAL),
    ("My key is sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAA, is it valid?", CLOUD_DEFAULT, "ollama", GENERAL),
    ("Use token ghp_abcdefghijklmnopqrstuvwxyz0123456789 for the API", ROUTING_OFF, "ollama", GENERAL),
    ("The password is Tr0ub4dor&3 — make it stronger.", CLOUD_DEFAULT, "ollama", GENERAL),
    ("Connect with postgres://admin:s3cretpw@db.internal:5432/prod and explain the error", CLOUD_DEFAULT, "ollama", GENERAL),
    ("AWS says AKIAZ4XQ7PLM2VB8KRTA is not authorized; what policy do I need?", CLOUD_DEFAULT, "ollama", GENERAL),
    ("Customer SSN 123-45-6789 must be masked; write the rule.", CLOUD_DEFAULT, "ollama", GENERAL),
    ("Charge card 4111 1111 1111 1111 expires 12/29", CLOUD_DEFAULT, "ollama", GENERAL),
    ("Design a distributed system architecture; api_key = 'abcd1234efgh5678ijkl'", WITH_KEY, "ollama", GENERAL),
    # numbers that are not card numbers do not trigger the guard
    ("The order id is 1234567890123 and it shipped late.", CLOUD_DEFAULT, "anthropic", "sonnet"),
]


@pytest.mark.parametrize("prompt, settings, backend, model", TABLE)
def test_routing_table(prompt, settings, backend, model):
    route = decide(prompt, settings)
    assert (route.backend, route.model) == (backend, model), route.reason
    assert route.reason and "\n" not in route.reason


def test_table_is_large_enough():
    assert len(TABLE) >= 40


@pytest.mark.parametrize("name, expected", [
    ("claude-sonnet-4.5", "claude-sonnet-4-5"), ("claude-opus-4.5", "claude-opus-4-5"),
    ("claude-haiku-4", "claude-haiku-4-5"), ("claude-haiku-4.5", "claude-haiku-4-5"),
    ("Sonnet", "sonnet"), ("opus", "opus"), ("claude-haiku", "haiku"), ("claude-sonnet-4-6", "claude-sonnet-4-6"),
    ("llama3.2:3b", "llama3.2:3b"), ("qwen2.5-coder:7b", "qwen2.5-coder:7b"),
])
def test_model_aliases(name, expected):
    assert canonical_model(name) == expected


def test_model_name_decides_backend():
    assert decide("hello", WITH_KEY, model="claude-sonnet-4.5").backend == "anthropic"
    assert decide("hello", WITH_KEY, model="claude-sonnet-4.5").model == "claude-sonnet-4-5"
    assert decide("hello", WITH_KEY, model="haiku").backend == "anthropic"
    assert decide("hello", WITH_KEY, model="mistral:7b") == decide("hello", WITH_KEY, model="mistral:7b")
    assert decide("hello", WITH_KEY, model="mistral:7b").backend == "ollama"
    assert decide("prove it", WITH_KEY, model="llama3.2:3b").backend == "ollama"  # the model beats keywords


def test_explicit_backend_wins():
    route = decide("Prove Fermat's little theorem", WITH_KEY, backend="ollama")
    assert (route.backend, route.explicit) == ("ollama", True)
    assert decide("hello", WITH_KEY, backend="anthropic").model == "sonnet"
    assert decide("def f(): pass", WITH_KEY, backend="ollama").model == CODE


@pytest.mark.parametrize("prompt, settings", [
    ("my password: hunter2hunter2", WITH_KEY),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", ROUTING_OFF),
    ("This is confidential", WITH_KEY),
])
@pytest.mark.parametrize("how", [dict(backend="anthropic"), dict(model="claude-sonnet-4.5"), dict(model="opus")])
def test_private_prompt_never_goes_to_the_cloud_even_when_asked(prompt, settings, how):
    with pytest.raises(PrivacyError) as err:
        decide(prompt, settings, **how)
    assert "stays on this machine" in err.value.message
    assert "hunter2" not in err.value.message  # the refusal never repeats the secret


def test_routing_off_lets_privacy_words_through_but_not_secrets():
    assert decide("This is confidential", ROUTING_OFF, backend="anthropic").backend == "anthropic"
    with pytest.raises(PrivacyError):
        decide("password=hunter2hunter2", ROUTING_OFF, backend="anthropic")


def test_task_picks_the_model_within_ollama():
    assert decide("hi", NO_KEY, task="chat").model == "llama3.2:3b"
    assert decide("hi", NO_KEY, task="code").model == CODE
    assert decide("hi", NO_KEY, task="embed").model == "nomic-embed-text:latest"
    custom = Settings(ollama_default_model="mistral:7b", ollama_code_model="codellama:13b")
    assert decide("hi", custom).model == "mistral:7b"
    assert decide("import os", custom).model == "codellama:13b"


def test_fallback_only_where_privacy_allows():
    down, no_local = frozenset({"ollama"}), frozenset({"ollama", "local"})
    moved = decide("What is the capital of France?", WITH_KEY, unavailable=no_local)
    assert moved.backend == "anthropic" and "Ollama is unreachable, so Claude" in moved.reason
    assert decide("This is confidential", WITH_KEY, unavailable=no_local).backend == "ollama"  # nowhere private to go
    assert decide("password: hunter2hunter2", WITH_KEY, unavailable=no_local).backend == "ollama"
    assert decide("What is the capital of France?", NO_KEY, unavailable=no_local).backend == "ollama"  # no key, no cloud
    assert decide("hi", CLOUD_DEFAULT, unavailable=frozenset({"anthropic"})).backend == "ollama"
    # the embedded model takes private prompts, and everything when there is no key
    private = decide("This is confidential", WITH_KEY, unavailable=down)
    assert private.backend == "local" and "so the embedded local model" in private.reason
    assert decide("What is the capital of France?", NO_KEY, unavailable=down).backend == "local"
    assert decide("What is the capital of France?", WITH_KEY, unavailable=down).backend == "anthropic"


def test_local_and_openai_backends():
    assert decide("hi", WITH_KEY, model="/models/mistral-7b.Q4_K_M.gguf").backend == "local"
    assert decide("hi", Settings(default_backend="local")).model == "gemma-3-270m"
    assert decide("hi", Settings(default_backend="openai")).model == "default"
    on_this_machine = Settings(default_backend="openai", openai_base_url="http://127.0.0.1:8080/v1")
    elsewhere = Settings(default_backend="openai", openai_base_url="https://api.example.com/v1")
    assert decide("This is confidential", on_this_machine).backend == "openai"
    assert decide("This is confidential", elsewhere).backend == "ollama"
    assert decide("This is confidential", Settings(default_backend="local")).backend == "local"
    with pytest.raises(PrivacyError):
        decide("password: hunter2hunter2", elsewhere, backend="openai")
    assert decide("password: hunter2hunter2", on_this_machine, backend="openai").backend == "openai"


@pytest.mark.parametrize("kwargs, text", [
    (dict(backend="foo"), "unknown backend 'foo'"),
    (dict(model="  "), "model name is empty"),
    (dict(task="poetry"), "unknown task"),
])
def test_bad_choices_are_one_line_errors(kwargs, text):
    with pytest.raises(ConfigError) as err:
        decide("hi", WITH_KEY, **kwargs)
    assert text in err.value.message and "\n" not in err.value.message


LOCAL_ONLY = Settings(anthropic_api_key=Secret("sk-ant-routing-test-key-000"), privacy="local-only",
                      default_backend="anthropic")


@pytest.mark.parametrize("prompt", ["Design a distributed system architecture", "hello", "Prove it"])
def test_local_only_never_routes_to_the_cloud(prompt):
    route = decide(prompt, LOCAL_ONLY)
    assert route.backend == "ollama" and "INFERENCE_PRIVACY=local-only" in route.reason
    assert decide(prompt, LOCAL_ONLY, unavailable=frozenset({"ollama"})).backend == "local"
    assert decide(prompt, LOCAL_ONLY, unavailable=frozenset({"ollama", "local"})).backend == "ollama"


@pytest.mark.parametrize("how", [dict(backend="anthropic"), dict(model="claude-haiku-4.5"), dict(model="sonnet")])
def test_local_only_refuses_an_explicit_cloud_choice(how):
    with pytest.raises(PrivacyError, match="INFERENCE_PRIVACY=local-only: nothing is sent to anthropic"):
        decide("hello", LOCAL_ONLY, **how)
    elsewhere = Settings(privacy="local-only", openai_base_url="https://api.example.com/v1")
    with pytest.raises(PrivacyError):
        decide("hello", elsewhere, backend="openai")
    assert decide("hello", LOCAL_ONLY, backend="ollama").backend == "ollama"


@pytest.mark.parametrize("text, found", [
    ("DB_PASSWORD=hunter2hunter2", "a password"),
    ("POSTGRES_PASSWORD: s3cr3tpass", "a password"),
    ('{"user": "ada", "password": "correct-horse"}', "a password"),
    ("password: 'Tr0ub4dor&3'", "a password"),
    ("my password is swordfish42", "a password"),
    ('"api_key": "abcd1234efgh5678ijkl9012"', "a secret or token assignment"),
    ("AWS_SECRET_ACCESS_KEY=Zk8pQ2vN7rT4xW9bL1mC6yH3sD5fJ0gA/uE+oR2i", "a secret or token assignment"),
    ("MY_SERVICE_TOKEN=0123456789abcdef0123", "a secret or token assignment"),
    ("client_secret = 'Zm9vYmFyYmF6cXV4cXV1eA=='", "a secret or token assignment"),
])
def test_secret_shapes_from_config_files_are_caught(text, found):
    from inference_magics.privacy import find_secret

    assert find_secret(text).detail == found


@pytest.mark.parametrize("text", [
    "password = ********", "Enter your password: ", "password_reset_url = /reset", "the token count is 512",
    "password=${DB_PASSWORD}", "def check_password(pw): return len(pw) > 8",
])
def test_things_that_only_look_like_secrets(text):
    from inference_magics.privacy import find_secret

    assert find_secret(text) is None, find_secret(text)


def test_locality_is_decided_by_address_and_model_not_by_name():
    from inference_magics.backends import keeps_data_local

    assert keeps_data_local("ollama", Settings(ollama_base_url="http://127.0.0.1:11434"))
    assert keeps_data_local("ollama", Settings(ollama_base_url="http://localhost:11434"))
    assert keeps_data_local("ollama", Settings(ollama_base_url="http://[::1]:11434"))
    assert not keeps_data_local("ollama", Settings(ollama_base_url="https://ollama.com:443"))
    assert not keeps_data_local("ollama", Settings(ollama_base_url="http://gpu-box:11434"))
    assert not keeps_data_local("ollama", Settings(), model="gpt-oss:120b-cloud")
    assert not keeps_data_local("openai", Settings(openai_base_url="https://127.example.net/v1"))
    assert keeps_data_local("openai", Settings(openai_base_url="http://127.0.0.2:8080/v1"))


def test_a_private_prompt_never_goes_to_a_remote_ollama_or_a_cloud_model():
    remote = Settings(ollama_base_url="https://ollama.com:443", privacy="local-only")
    route = decide("my password is hunter2hunter2", remote)
    assert route.backend == "local" and "not on this machine" in route.reason
    with pytest.raises(PrivacyError, match="is not on it"):
        decide("my password is hunter2hunter2", remote, unavailable=frozenset({"local"}))
    with pytest.raises(PrivacyError):
        decide("my password is hunter2hunter2", Settings(), model="gpt-oss:120b-cloud")
    cloud_default = Settings(ollama_default_model="gpt-oss:120b-cloud")
    assert decide("This is confidential", cloud_default).backend == "local"
    with pytest.raises(PrivacyError):
        decide("hello", Settings(privacy="local-only"), model="qwen3-coder:480b-cloud")
