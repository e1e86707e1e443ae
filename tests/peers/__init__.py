"""Protocol-faithful test peers: local HTTP servers speaking the Ollama API, the Anthropic
Messages API and the OpenAI-compatible API (standard library only). See tests/test_peers.py and
tests/test_openai_peer.py for what they guarantee."""
from .anthropic_peer import AnthropicPeer
from .base import Recorded
from .ollama_peer import OllamaPeer
from .openai_peer import OpenAIPeer

__all__ = ["AnthropicPeer", "OllamaPeer", "OpenAIPeer", "Recorded"]
