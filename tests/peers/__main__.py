"""Run the peers until SIGTERM/SIGINT:  python -m tests.peers [--ollama-port P] ..."""
import argparse
import signal
import sys
import threading

from . import AnthropicPeer, OllamaPeer, OpenAIPeer


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.peers", description=__doc__)
    ap.add_argument("--ollama-port", type=int, default=0, help="0 = a free port (default)")
    ap.add_argument("--anthropic-port", type=int, default=0, help="0 = a free port (default)")
    ap.add_argument("--openai-port", type=int, default=0, help="0 = a free port (default)")
    ap.add_argument("--tokens", type=int, default=12)
    ap.add_argument("--token-delay", type=float, default=0.0)
    ap.add_argument("--first-token-delay", type=float, default=0.0)
    ap.add_argument("--api-key", default=AnthropicPeer.KNOBS["api_key"])
    args = ap.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):   # exit cleanly, no KeyboardInterrupt traceback
        signal.signal(sig, lambda *_: stop.set())

    knobs = {"tokens": args.tokens, "token_delay": args.token_delay,
             "first_token_delay": args.first_token_delay}
    ollama = OllamaPeer(port=args.ollama_port, **knobs).start()
    anthropic = AnthropicPeer(port=args.anthropic_port, api_key=args.api_key, **knobs).start()
    openai = OpenAIPeer(port=args.openai_port, **knobs).start()
    print(f"ollama peer: {ollama.url}")
    print(f"anthropic peer: {anthropic.url} (api key {anthropic.api_key})", flush=True)
    print(f"openai peer: {openai.base_url}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        ollama.stop()
        anthropic.stop()
        openai.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
