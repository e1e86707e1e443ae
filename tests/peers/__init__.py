"""Protocol-faithful test peers: local HTTP servers speaking the Ollama API and the Anthropic
Messages API (standard library only). See tests/test_peers.py for what they guarantee."""
from .anthropic_peer import AnthropicPeer
from .base import Recorded
from .ollama_peer import OllamaPeer

__all__ = ["AnthropicPeer", "OllamaPeer", "Recorded"]
