"""A deterministic Ollama server (native /api/...) for tests; wire facts per
/work/shared/reference/ollama-api.md (server v0.12.6, plus v0.30 `capabilities` in /api/tags)."""
import functools
import hashlib
import json
import re
import math
import random
import time
import zlib

from .base import (COMMON_KNOBS, BaseHandler, Peer, count_words, planned_calls, reply_tokens, results_reply,
                   split_tokens)

MODEL_ERROR = "an error was encountered while running the model"
BUSY = "server busy, please try again.  maximum pending requests exceeded"
# what a *-cloud model gets from a server not signed in to ollama.com (server/cloud_proxy.go)
SIGNIN_URL = "https://ollama.com/connect?name=peer&key=c3NoLWVkMjU1MTkgQUFBQUMzTnphQzFsWkRJMU5URTVBQUFBSQ"
HTML_500 = ("<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
            "<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n")
CHAT_CAPS, EMBED_CAPS = ["completion", "tools"], ["embedding"]
CLOUD_HOST = "https://ollama.com:443"  # where a cloud model's requests go (server/cloud_proxy.go)


# Request fields the handlers read, with the Go types that decoding enforces.
FIELD_TYPES = {"model": ((str,), "string"), "name": ((str,), "string"),
               "prompt": ((str,), "string"), "system": ((str,), "string"),
               "messages": ((list,), "[]api.Message"), "options": ((dict,), "map[string]interface {}"),
               "stream": ((bool,), "bool"), "raw": ((bool,), "bool"), "images": ((list,), "[]api.ImageData"),
               "dimensions": ((int,), "int")}


def go_kind(v):
    """How Go's decoder names a JSON value's kind in its errors."""
    return {list: "array", dict: "object", str: "string", bool: "bool"}.get(type(v), "number")


def base64_problem(text):
    """Where Go's standard base64 decoder stops on `text` (an offset), or None when it decodes."""
    import base64, binascii
    try:
        base64.b64decode(text, validate=True)
        return None
    except binascii.Error:
        alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
        return next((i for i, ch in enumerate(text) if ch not in alphabet), len(text) - len(text) % 4)


def full_name(name):
    """'llama3.2' -> 'llama3.2:latest' (the tag Ollama assumes)."""
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def model_entry(name, *, family="llama", parameter_size="8.0B", quantization_level="Q4_K_M",
                size=4920753328, modified_at="2025-09-30T11:02:17.3056-07:00", embedding=None,
                context_length=None, embedding_length=None, digest=None, thinking=False, vision=False,
                remote_model=None, remote_host=CLOUD_HOST):
    """One /api/tags entry. The `models` knob takes these dicts or bare names. A `*-cloud` model,
    or one made FROM it (remote_model= the cloud model's own name, e.g. `ollama cp
    gpt-oss:120b-cloud big`), is forwarded: it carries remote_model and remote_host (api/types.go)."""
    name = full_name(name)
    if embedding is None:
        embedding = "embed" in name or "minilm" in name
    tag = name.rsplit(":", 1)[1]
    if remote_model is None and (tag == "cloud" or tag.endswith("-cloud")):
        remote_model = name.rsplit(":", 1)[0] + ("" if tag == "cloud" else ":" + tag[:-len("-cloud")])
    remote = {"remote_model": remote_model, "remote_host": remote_host} if remote_model else {}
    return {
        "name": name, "model": name, **remote, "modified_at": modified_at, "size": size,
        # same blob for every tag of a model, no "sha256:" prefix
        "digest": digest or hashlib.sha256(name.split(":")[0].encode()).hexdigest(),
        "details": {"parent_model": "", "format": "gguf", "family": family, "families": [family],
                    "parameter_size": parameter_size, "quantization_level": quantization_level,
                    "context_length": context_length or (2048 if embedding else 131072),
                    "embedding_length": embedding_length or (384 if "minilm" in name else 768
                                                             if embedding else 4096)},
        "capabilities": list(EMBED_CAPS if embedding else CHAT_CAPS) + (["thinking"] if thinking else [])
                        + (["vision"] if vision else []),
    }


_LLAMA_DIGEST = "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72"
# Most recently modified first, as /api/tags lists them; host offset, variable fraction digits.
DEFAULT_MODELS = (
    model_entry("llama3.2:latest", family="llama", parameter_size="3.2B", size=2019393189,
                modified_at="2025-10-20T17:37:44.706015396-07:00", digest=_LLAMA_DIGEST,
                embedding_length=3072),
    model_entry("llama3.2:3b", family="llama", parameter_size="3.2B", size=2019393189,
                modified_at="2025-10-20T17:37:41.5512-07:00", digest=_LLAMA_DIGEST,
                embedding_length=3072),
    model_entry("qwen2.5-coder:7b", family="qwen2", parameter_size="7.6B", size=4683087332,
                modified_at="2025-10-18T09:12:03.51247711-07:00", context_length=32768,
                embedding_length=3584),
    model_entry("qwen3:4b", family="qwen3", parameter_size="4.0B", size=2497293918,
                modified_at="2025-10-12T10:03:55.0177-07:00", context_length=40960,
                embedding_length=2560, thinking=True),
    model_entry("nomic-embed-text:latest", family="nomic-bert", parameter_size="137M",
                quantization_level="F16", size=274302450,
                modified_at="2025-10-02T14:20:51.90853-07:00", embedding_length=768),
    model_entry("all-minilm:latest", family="bert", parameter_size="23M",
                quantization_level="F16", size=45960996,
                modified_at="2025-09-27T08:44:10.0041-07:00", context_length=512,
                embedding_length=384),
)


def rfc3339(ns=None, utc=True, plus_s=0):
    """Go's RFC3339Nano: trailing zeros of the fraction trimmed; UTC 'Z' or the host offset."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 10**9)
    secs += plus_s
    tm = time.gmtime(secs) if utc else time.localtime(secs)
    frac_s = f"{frac:09d}".rstrip("0")
    off = 0 if utc else tm.tm_gmtoff
    zone = "Z" if off == 0 else "%s%02d:%02d" % ("+-"[off < 0], abs(off) // 3600, abs(off) % 3600 // 60)
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + ("." + frac_s if frac_s else "") + zone


@functools.lru_cache(maxsize=65536)
def _word_vector(word, dims):
    rng = random.Random(hashlib.sha256(f"{dims}:{word}".encode()).digest())
    return [rng.gauss(0.0, 1.0) for _ in range(dims)]


def unit_vector(text, dims):
    """Deterministic L2-normalised vector: the normalised sum of one fixed random vector per word
    (a bag of words). Like a real embedding model, texts that share words come out similar, so
    ranking can be tested on a hand-made corpus; identical texts give identical vectors."""
    words = re.findall(r"[a-z0-9]+", text.lower()) or [text]
    total = [0.0] * dims
    for word in words:
        for i, x in enumerate(_word_vector(word, dims)):
            total[i] += x
    norm = math.sqrt(sum(x * x for x in total)) or 1.0
    return [x / norm for x in total]


def embedding_dims(entry):
    return entry["details"]["embedding_length"] if "embedding" in entry["capabilities"] else 768


def context_ids(*texts):
    """Stand-in token ids for generate's deprecated `context` array."""
    return [zlib.crc32(w.encode()) % 128000 for t in texts for w in t.split()]


class OllamaHandler(BaseHandler):
    JSON_CTYPE = "application/json; charset=utf-8"
    GARBAGE = '{"model":"llama3.2","created_at":"2025-10-26T17:15:24.0977\n'  # a cut-off line
    ROUTES = {
        "/": (("GET", "HEAD"), "root"), "/api/version": (("GET", "HEAD"), "version"),
        "/api/tags": (("GET", "HEAD"), "tags"), "/api/ps": (("GET",), "ps"),
        "/api/show": (("POST",), "show"), "/api/chat": (("POST",), "chat"),
        "/api/generate": (("POST",), "generate"), "/api/embed": (("POST",), "embed"),
        "/api/embeddings": (("POST",), "embeddings"),
    }
    TYPES = {"chat": "ChatRequest", "generate": "GenerateRequest", "embed": "EmbedRequest",
             "embeddings": "EmbeddingRequest", "show": "ShowRequest"}

    @staticmethod
    def dumps(obj):
        # Go's encoding/json: compact, raw UTF-8, with <, >, & escaped.
        s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")

    def error(self, status, message):
        self.send_json(status, {"error": message})

    def handle_request(self):
        methods, name = self.ROUTES.get(self.route, (None, None))
        if methods is None:  # gin's plain-text defaults
            return self.send_body(404, "404 page not found", "text/plain")
        if self.command not in methods:
            return self.send_body(405, "405 method not allowed", "text/plain")
        self.fault = self.peer._take_fault(self.route)
        if self.network_fault("http_500_html", HTML_500):  # http_500_html: a proxy in front of Ollama failing
            return
        if self.fault == "busy_503":
            return self.error(503, BUSY)
        if self.fault == "rate_limited_429":  # what a *-cloud model answers past the account's usage
            return self.error(429, "too many requests")
        if self.fault == "unauthorized_401":  # a *-cloud model on a server not signed in to ollama.com
            return self.send_json(401, {"error": "unauthorized", "signin_url": SIGNIN_URL})
        if name in self.TYPES and (body := self.json_body(self.TYPES[name])) is None:
            return
        getattr(self, "route_" + name)(*([body] if name in self.TYPES else []))

    def json_body(self, type_name):
        """Decode as gin's ShouldBindJSON would; on failure answer 400 and return None."""
        raw = self.raw_body.strip()
        if not raw:
            return self.error(400, "missing request body")
        if raw == b"null":
            return {}
        if self.body is None:   # approximate Go's decoder text at the offending character
            text = raw.decode(errors="replace")
            try:
                json.loads(text)
                pos = len(text)
            except ValueError as e:
                pos = getattr(e, "pos", len(text))
            msg = ("unexpected EOF" if pos >= len(text)
                   else f"invalid character '{text[pos]}' looking for beginning of value")
            return self.error(400, msg)
        if not isinstance(self.body, dict):
            return self.error(400, f"json: cannot unmarshal {go_kind(self.body)} into Go value of "
                                   f"type api.{type_name}")
        for key, (types, go_type) in FIELD_TYPES.items():
            v = self.body.get(key)
            wrong = not isinstance(v, types) or (isinstance(v, bool) and bool not in types)
            if v is not None and wrong:
                return self.error(400, f"json: cannot unmarshal {go_kind(v)} into Go struct field "
                                       f"{type_name}.{key} of type {go_type}")
        for m in self.body.get("messages") or []:
            if not isinstance(m, dict):
                return self.error(400, f"json: cannot unmarshal {go_kind(m)} into Go struct field "
                                       f"{type_name}.messages of type api.Message")
            if m.get("content") is not None and not isinstance(m["content"], str):
                return self.error(400, f"json: cannot unmarshal {go_kind(m['content'])} into Go "
                                       f"struct field {type_name}.messages.content of type string")
            for image in m.get("images") or []:   # []api.ImageData: base64 strings, decoded by Go
                if not isinstance(image, str):
                    return self.error(400, f"json: cannot unmarshal {go_kind(image)} into Go struct field "
                                           f"{type_name}.messages.images of type api.ImageData")
                if (bad := base64_problem(image)) is not None:
                    return self.error(400, f"illegal base64 data at input byte {bad}")
        return self.body

    def nonstream_fault(self):
        """Mid-stream faults on a one-shot reply: what a failing server would do instead."""
        if self.fault == "error_mid_stream":
            self.error(500, self.knobs["error_text"])
        elif self.fault == "drop_mid_stream":
            self.drop()
        elif self.fault == "malformed_line":
            self.send_body(200, self.GARBAGE, self.JSON_CTYPE)
        else:
            return False
        return True

    # -- simple routes ----------------------------------------------------------
    def route_root(self):
        self.send_body(200, "Ollama is running", "text/plain; charset=utf-8")

    def route_version(self):
        self.send_json(200, {"version": self.knobs["version"]})

    def route_tags(self):
        self.send_json(200, {"models": self.peer.models()})

    def route_ps(self):
        out = []
        for entry, loaded_ns in self.peer._loaded_models():
            details = {k: v for k, v in entry["details"].items()
                       if k not in ("context_length", "embedding_length")}
            out.append({"name": entry["name"], "model": entry["name"], "size": entry["size"],
                        "digest": entry["digest"], "details": details,
                        "expires_at": rfc3339(loaded_ns, utc=False, plus_s=300),
                        "size_vram": entry["size"],
                        "context_length": (entry["details"]["context_length"]
                                           if "embedding" in entry["capabilities"] else 4096)})
        self.send_json(200, {"models": out})

    def route_show(self, body):
        name = body.get("model") or body.get("name") or ""
        if not name:
            return self.error(400, "model is required")
        m = self.peer.find_model(name)
        if m is None:
            return self.error(404, f"model '{full_name(name)}' not found")
        self.send_json(200, show_response(m))

    # -- generation -------------------------------------------------------------
    def check_model(self, body, name, what):
        """Shared chat/generate checks; returns the entry or None after answering."""
        m = self.peer.find_model(name) if name else None
        if m is None:
            return self.error(404, f"model '{name}' not found")
        if "completion" not in m["capabilities"]:
            return self.error(400, f'"{name}" does not support {what}')
        if body.get("think") not in (None, False) and "thinking" not in m["capabilities"]:
            return self.error(400, f'"{name}" does not support thinking')
        if body.get("tools") and "tools" not in m["capabilities"]:
            return self.error(400, f"registry.ollama.ai/library/{m['name']} does not support tools")
        return m

    def load_reply(self, body, name, m, part):
        unload = body.get("keep_alive") in (0, "0", "0s")
        if self.peer._mark_loaded(m, unload) and not unload:
            self.pause(self.knobs["load_delay"])   # loading is what this request is for
        self.send_json(200, {"model": name, "created_at": rfc3339(), **part,
                             "done_reason": "unload" if unload else "load", "done": True})

    def route_chat(self, body):
        name = body.get("model") or ""
        if not name:
            return self.error(400, "model is required")
        if (m := self.check_model(body, name, "chat")) is None:
            return
        msgs = [x for x in body.get("messages") or [] if isinstance(x, dict)]
        if not msgs:
            return self.load_reply(body, name, m, {"message": {"role": "assistant", "content": ""}})
        cold = self.peer._mark_loaded(m)
        self.reply(body, name, count_words(*(x.get("content") for x in msgs)), chat=True, cold=cold)

    def route_generate(self, body):
        name = body.get("model") or ""
        if (m := self.check_model(body, name, "generate")) is None:
            return
        prompt = body.get("prompt") or ""
        if not prompt and not body.get("images"):
            return self.load_reply(body, name, m, {"response": ""})
        cold = self.peer._mark_loaded(m)
        self.reply(body, name, count_words(body.get("system"), prompt), chat=False, cold=cold)

    def reply(self, body, name, prompt_count, chat, cold=False):
        k = self.knobs
        tokens = reply_tokens(k, json_mode=bool(body.get("format")), schema=body.get("format"))
        if k["echo"]:  # answer with the prompt itself, so concurrent streams can be told apart
            asked = (body.get("messages") or [{}])[-1].get("content", "") if chat else body.get("prompt", "")
            tokens = split_tokens(f"echo: {asked}")
        msgs = [m for m in body.get("messages") or [] if isinstance(m, dict)] if chat else []
        after_results = bool(msgs) and msgs[-1].get("role") == "tool"
        if after_results:   # the results since the last assistant turn
            tail = []
            for m in reversed(msgs):
                if m.get("role") != "tool":
                    break
                tail.insert(0, str(m.get("content", "")))
            tokens = results_reply(tail)
        offered = {t["function"].get("name"): t["function"].get("parameters") for t in body.get("tools") or []
                   if isinstance(t, dict) and isinstance(t.get("function"), dict)}
        calls = planned_calls(k, offered, after_results)
        if calls:   # a tool-calling turn: no text, one chunk with the calls (arguments as objects)
            tokens = []
        limit = (body.get("options") or {}).get("num_predict")
        reason = "stop"
        if isinstance(limit, int) and 0 < limit < len(tokens):
            tokens, reason = tokens[:limit], "length"
        loading = time.perf_counter_ns()  # load_duration counts the load alone, not a slow network before it
        if cold and k["load_delay"]:  # the model was not in memory: it loads first
            self.pause(k["load_delay"])
        self.t_load = time.perf_counter_ns()
        slow = self.fault == "slow_headers"   # its delay was spent before the status line

        def obj(text, **final):
            part = {"message": {"role": "assistant", "content": text}} if chat else {"response": text}
            return {"model": name, "created_at": rfc3339(), **part, "done": bool(final), **final}

        def final(n):
            end = time.perf_counter_ns()
            first = self.t_first or end
            f = {"done_reason": reason}
            if not chat and not body.get("raw"):
                f["context"] = context_ids(body.get("system") or "", body.get("prompt") or "",
                                           "".join(tokens[:n]))
            metrics = {"total_duration": end - self.t0, "load_duration": max(1, self.t_load - loading),
                       "prompt_eval_count": max(1, prompt_count),
                       "prompt_eval_duration": first - self.t_load,
                       "eval_count": n, "eval_duration": end - first}
            f.update((key, v) for key, v in metrics.items() if v)  # Go omits zero values
            return f

        thinks = chat and "thinking" in (self.peer.find_model(name) or {}).get("capabilities", ()) \
            and body.get("think") is not False  # on by default for thinking models since v0.12.4
        stream = body.get("stream")
        if stream is False:
            if self.nonstream_fault():
                return
            if tokens:   # the generation still takes its time
                self.pause(0 if slow else k["first_token_delay"])
                self.t_first = time.perf_counter_ns()
                self.pause(k["token_delay"] * (len(tokens) - 1))
            whole = obj("".join(tokens), **final(len(tokens)))
            if calls:
                whole["message"]["tool_calls"] = [
                    {"id": f"call_{self.peer._new_call_id()}",
                     "function": {"index": i, "name": c["name"], "arguments": c["arguments"]}}
                    for i, c in enumerate(calls)]
            if thinks:
                whole["message"]["thinking"] = k["thinking"]
            return self.send_json(200, whole)

        if self.raw_stream("application/x-ndjson"):
            return
        if self.fault == "error_mid_stream" and k["fault_after"] == 0 and not (thinks or calls) \
                and version_tuple(k["version"]) >= (0, 12, 6):
            # since v0.12.6 an error before the first byte is a real status with a JSON body; only
            # an error after output started is a 200 stream ending in an error line (routes.go)
            self.pause(0 if slow else k["first_token_delay"])
            return self.error(500, k["error_text"])

        def write_stream():   # stream: absent/null means true on the server
            self.start_stream("application/x-ndjson")
            line = lambda o: self.write_chunk(self.dumps(o) + "\n")
            for piece in split_tokens(k["thinking"]) if thinks else ():
                self.pause(k["token_delay"])
                line({"model": name, "created_at": rfc3339(),
                      "message": {"role": "assistant", "content": "", "thinking": piece}, "done": False})
            if calls:
                line({"model": name, "created_at": rfc3339(), "message": {
                    "role": "assistant", "content": "", "tool_calls": [
                        {"id": f"call_{self.peer._new_call_id()}",
                         "function": {"index": i, "name": c["name"], "arguments": c["arguments"]}}
                        for i, c in enumerate(calls)]}, "done": False})
            n, fault = self.token_loop(tokens, lambda t: line(obj(t)), skip_first_delay=slow)
            if fault == "error_mid_stream":   # status stays 200, no done line
                line({"error": k["error_text"]})
                return self.end_stream()
            if fault == "drop_mid_stream":
                return self.drop()
            line(obj("", **final(n)))
            self.finish_stream()

        self.run_stream(write_stream)

    # -- embeddings ---------------------------------------------------------------
    def embed_model(self, body):
        name = body.get("model") or ""
        if not name:
            return self.error(400, "model is required")
        m = self.peer.find_model(name)
        if m is None:
            return self.error(404, f'model "{name}" not found, try pulling it first')
        return m

    def route_embed(self, body):
        if (m := self.embed_model(body)) is None:
            return
        inp = body.get("input")
        if isinstance(inp, str):
            texts = [inp] if inp else []
        elif isinstance(inp, list) and all(isinstance(t, str) for t in inp):
            texts = inp
        elif inp is None:
            texts = []
        else:
            return self.error(400, "invalid input type")
        self.peer._mark_loaded(m)
        if not texts:   # only loads the model
            return self.send_json(200, {"model": body["model"], "embeddings": []})
        if self.nonstream_fault():
            return
        dims = embedding_dims(m)
        if isinstance(body.get("dimensions"), int) and 0 < body["dimensions"] < dims:
            dims = body["dimensions"]
        vecs = [unit_vector(t, dims) for t in texts]
        now = time.perf_counter_ns()
        self.send_json(200, {"model": body["model"], "embeddings": vecs,
                             "total_duration": max(1, now - self.t0),
                             "load_duration": max(1, (now - self.t0) // 10),
                             "prompt_eval_count": sum(max(1, count_words(t)) for t in texts)})

    def route_embeddings(self, body):   # legacy: one vector, not normalised
        if (m := self.embed_model(body)) is None:
            return
        prompt = body.get("prompt") or ""
        self.peer._mark_loaded(m)
        if prompt and self.nonstream_fault():
            return
        scale = 8 + zlib.crc32(prompt.encode()) % 1000 / 100
        vec = [x * scale for x in unit_vector(prompt, embedding_dims(m))] if prompt else []
        self.send_json(200, {"embedding": vec})


def show_response(m):
    d, fam = m["details"], m["details"]["family"]
    embed = "embedding" in m["capabilities"]
    size = d["parameter_size"]
    params = int(float(size[:-1]) * (1e9 if size.endswith("B") else 1e6))
    template = "{{ .Prompt }}" if embed else (
        "<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>"
        "{{ range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
        "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n")
    parameters = (f"num_ctx                        {d['context_length']}" if embed else
                  'stop                           "<|start_header_id|>"\n'
                  'stop                           "<|end_header_id|>"\n'
                  'stop                           "<|eot_id|>"')
    license_ = "Apache License\nVersion 2.0, January 2004\n..."
    return {
        "license": license_,
        "modelfile": (f'# Modelfile generated by "ollama show"\n# To build a new Modelfile based on '
                      f'this, replace FROM with:\n# FROM {m["name"]}\n\nFROM /root/.ollama/models/'
                      f'blobs/sha256-{m["digest"]}\nTEMPLATE """{template}"""\n'
                      + "".join(f"PARAMETER {p}\n" for p in parameters.splitlines())
                      + f'LICENSE """{license_}"""\n'),
        "parameters": parameters,
        "template": template,
        "details": {k: v for k, v in d.items() if k not in ("context_length", "embedding_length")},
        "model_info": {   # GGUF keys; token arrays are empty without verbose
            "general.architecture": fam, "general.file_type": 1 if embed else 15,
            "general.parameter_count": params, "general.quantization_version": 2,
            f"{fam}.block_count": 12 if embed else 28,
            f"{fam}.context_length": d["context_length"],
            f"{fam}.embedding_length": d["embedding_length"],
            "tokenizer.ggml.model": "bert" if embed else "gpt2",
            "tokenizer.ggml.tokens": [], "tokenizer.ggml.token_type": [],
        },
        "tensors": [
            {"name": "token_embd.weight", "type": "F16" if embed else "Q4_K",
             "shape": [d["embedding_length"], 30522 if embed else 128256]},
            {"name": "output_norm.weight", "type": "F32", "shape": [d["embedding_length"]]},
        ],
        "capabilities": list(m["capabilities"]),
        "modified_at": m["modified_at"],
        **{k: m[k] for k in ("remote_model", "remote_host") if k in m},  # a forwarded model (routes.go)
    }


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


class OllamaPeer(Peer):
    """Ollama on 127.0.0.1. Extra knobs: models (entries or names), version, fault_paths, thinking
    (what a thinking model streams first), echo, error_text (the message of a failed generation),
    load_delay (a model's first generation since start/reset/unload loads it first)."""

    KNOBS = {**COMMON_KNOBS, "models": DEFAULT_MODELS, "version": "0.12.6",
             "thinking": "Let me think this through step by step.",
             "echo": False, "error_text": MODEL_ERROR,   # the message of a failed generation
             "load_delay": 0.0,   # seconds a generation waits while a model not in memory loads (in load_duration)
             "fault_paths": ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings")}
    FAULTS = ("error_mid_stream", "drop_mid_stream", "malformed_line", "http_500_html",
              "busy_503", "rate_limited_429", "unauthorized_401", "hang", "slow_headers")
    Handler = OllamaHandler

    def _new_call_id(self):
        with self._lock:
            self._calls_made = getattr(self, "_calls_made", 0) + 1
            return f"{self._calls_made:08x}"

    def _clear(self):
        super()._clear()
        self._loaded = {}   # name -> time loaded (ns), for /api/ps

    def models(self):
        """The /api/tags entries for the current `models` knob."""
        return [m if isinstance(m, dict) else model_entry(m) for m in self.knobs["models"]]

    def find_model(self, name):
        full = full_name(name)
        return next((m for m in self.models() if m["name"] == full), None)

    def embedding(self, text, model="nomic-embed-text"):
        """The vector /api/embed returns for text on model."""
        return unit_vector(text, embedding_dims(self.find_model(model)))

    @property
    def embed_texts(self):
        """Every text sent to /api/embed or /api/embeddings, in order."""
        out = []
        for r in self.requests:
            b = r.body if isinstance(r.body, dict) else {}
            if r.path == "/api/embed":
                inp = b.get("input")
                out += [inp] if isinstance(inp, str) and inp else inp if isinstance(inp, list) else []
            elif r.path == "/api/embeddings" and b.get("prompt"):
                out.append(b["prompt"])
        return out

    def _mark_loaded(self, entry, unload=False):
        """Returns whether the model was not in memory before (a load)."""
        with self._lock:
            cold = entry["name"] not in self._loaded
            if unload:
                self._loaded.pop(entry["name"], None)
            else:
                self._loaded[entry["name"]] = time.time_ns()
            return cold

    def _loaded_models(self):
        with self._lock:
            loaded = dict(self._loaded)
        return [(m, loaded[m["name"]]) for m in self.models() if m["name"] in loaded]
