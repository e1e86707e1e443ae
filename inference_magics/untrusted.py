"""Model and server text is untrusted: this is the one place where it becomes display output.

An answer, its thinking, a model name or an error text can be written by an attacker (a prompt
injection in a summarized document, a hostile OpenAI-compatible server, a model pulled from
anywhere). JupyterLab does not sanitize the outputs of a running session, nor those of a notebook
it signed when saving, so whatever we publish must already be inert:

- Markdown becomes HTML with raw HTML *disabled*: nothing the model wrote becomes a tag.
- Only absolute http, https and mailto links are live, and they open in a new tab with
  rel="noopener noreferrer"; any other link stays as its text.
- Images never load: a remote image becomes a link with its alt text; a data: image stays text.
- Labels (model names, notices, errors) are escaped, never parsed as Markdown.
- Every wrapper is marked for MathJax to skip (NO_MATH): JupyterLab typesets text/html outputs,
  and MathJax's own safe mode keeps `$\\href{file:///…}{…}$` and `$\\href{/api/…}{…}$` as live links.
- Prose wraps anywhere (a 30,000-character line cannot widen the page); code blocks scroll in
  their own box. Our markup styles itself inline with JupyterLab's --jp-* variables: no <style>.

markdown-it-py is imported on first use, so `%load_ext` stays light.
"""
from __future__ import annotations

import html
import re
import threading

LIVE_SCHEMES = ("http", "https", "mailto")
LINK_REL = "noopener noreferrer"

# A notebook opened fresh (untrusted: a clone, a download) has its HTML outputs sanitized by
# JupyterLab, which drops every declaration holding var(...) and unknown values (overflow-wrap:
# anywhere). So each style says first what survives that and reads in both themes (opacity on the
# inherited text colour, a translucent grey, a literal orange), then the theme variable that a
# trusted or live output uses (the later declaration wins where both are kept).
PROSE_STYLE = "word-wrap:break-word;overflow-wrap:anywhere;max-width:100%"
# MathJax 3 (JupyterLab 4, Notebook 7) skips a subtree with class mathjax_ignore, MathJax 2 one with tex2jax_ignore
NO_MATH = "mathjax_ignore tex2jax_ignore"
CODE_BLOCK_STYLE = ("overflow-x:auto;max-width:100%;white-space:pre;overflow-wrap:normal;"
                    "background:rgba(128,128,128,0.12);"
                    "background:var(--jp-cell-editor-background,#f7f7f7);padding:6px 8px;border-radius:4px")
# quiet in every theme: the body colour at 70% (light 6:1, dark 9:1 against the cell), smaller
NOTE_STYLE = "opacity:0.7;font-size:var(--jp-content-font-size0,0.85em);margin-top:4px"
# a notice's text in the body colour (JupyterLab's light warn orange reads at 3.8:1, under WCAG AA),
# marked by a bar in the warn colour, so it reads in every theme
WARN_STYLE = ("color:var(--jp-ui-font-color1,#212121);font-size:var(--jp-content-font-size0,0.85em);"
              "border-left:3px solid #e08600;border-left:3px solid var(--jp-warn-color0,#b25400);"
              "padding-left:6px;margin-top:2px")
THINKING_STYLE = ("opacity:0.75;border-left:3px solid rgba(128,128,128,0.4);"
                  "border-left:3px solid var(--jp-border-color2,#e0e0e0);padding-left:8px;margin-bottom:6px")


def _ordered_list_open(self, tokens, idx, options, env):
    """An answer line such as "31077. We have..." is a list starting at 31077: JupyterLab's list
    indent (2em) fits two digits, so a longer marker was cut at the output's left edge."""
    start = tokens[idx].attrGet("start")
    digits = len(str(start)) if start is not None else 1
    if digits >= 3:
        tokens[idx].attrSet("style", f"padding-left:{0.6 * digits + 1:.1f}em")  # em: the sanitizer drops ch
    return self.renderToken(tokens, idx, options, env)


_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
_CUT_OFF_HEADING = re.compile(r"(?:^|\n)[ ]{0,3}#{1,6}[ \t]*$")
_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")  # a list may go on after a blank line
_REFERENCE = re.compile(r"^[ ]{0,3}\[[^\]]+\]:", re.MULTILINE)  # defined anywhere, used anywhere

_lock = threading.Lock()
_renderer = None


def escape(text) -> str:
    """Text for an HTML element or attribute: no tag, no entity, no attribute break-out."""
    return html.escape("" if text is None else str(text), quote=True)


def is_live_link(url: str) -> bool:
    """Only absolute http(s) and mailto URLs become links; relative ones (which would reach
    Jupyter's own server) and every other scheme (javascript:, data:, vbscript:, file:) do not."""
    match = _SCHEME.match(url.strip())
    if not match or match.group(1).lower() not in LIVE_SCHEMES:
        return False
    return match.group(1).lower() == "mailto" or url.strip()[match.end():].startswith("//")


def _link_open(self, tokens, idx, options, env):
    env["link_depth"] = env.get("link_depth", 0) + 1  # inline tokens render in order: an image can tell
    token = tokens[idx]
    token.attrSet("target", "_blank")
    token.attrSet("rel", LINK_REL)
    return self.renderToken(tokens, idx, options, env)


def _link_close(self, tokens, idx, options, env):
    env["link_depth"] = env.get("link_depth", 1) - 1
    return self.renderToken(tokens, idx, options, env)


def _image(self, tokens, idx, options, env):
    """An image never loads by itself: it becomes a link to it, labelled with its alt text."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children, options, env)
    src = token.attrGet("src") or ""
    label = escape(f"🖼 {alt}" if alt else f"🖼 {src}")
    if not is_live_link(src) or env.get("link_depth", 0) > 0:  # no link inside a link
        return label
    title = token.attrGet("title")
    title_attr = f' title="{escape(title)}"' if title else ""
    return f'<a href="{escape(src)}" target="_blank" rel="{LINK_REL}"{title_attr}>{label}</a>'


def _code_box(rendered: str) -> str:
    return rendered.replace("<pre>", f'<pre style="{CODE_BLOCK_STYLE}">', 1)


# Pygments token classes -> JupyterLab's editor palette, as inline colours (no stylesheet needed,
# and the colours follow the theme): "k" keyword, "s*" strings, "c*" comments, "m*" numbers...
_TOKEN_COLOURS = {
    **dict.fromkeys(("k", "kn", "kd", "kr", "kc", "kt", "ow"), "keyword"),
    **dict.fromkeys(("s", "s1", "s2", "sd", "sb", "sa", "se", "sh", "si", "sx", "sr", "ss", "sc"), "string"),
    **dict.fromkeys(("c", "c1", "cm", "ch", "cs", "cp", "cpf"), "comment"),
    **dict.fromkeys(("m", "mi", "mf", "mh", "mo", "mb", "il"), "number"),
    **dict.fromkeys(("nf", "fm", "nc", "nn"), "def"),
    **dict.fromkeys(("nb", "bp"), "builtin"),
    "o": "operator", "nd": "meta", "nv": "variable-2", "vi": "variable-2",
}
_TOKEN_SPAN = re.compile(r'<span class="([\w-]+)">')


def _highlight(code: str, language: str, _attrs) -> str:
    """A fenced block in a language Pygments knows, as coloured spans (its output is escaped text
    and spans; the class names become our fixed inline colours); '' leaves it plain."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    name = (language or "").strip()
    try:
        lexer = get_lexer_by_name(name, stripnl=False) if name else None  # keep the block's text exact
    except ClassNotFound:
        return ""
    if lexer is None:
        return ""
    spans = highlight(code, lexer, HtmlFormatter(nowrap=True))
    return _TOKEN_SPAN.sub(lambda m: f'<span style="color:var(--jp-mirror-editor-{_TOKEN_COLOURS[m[1]]}-color)">'
                           if m[1] in _TOKEN_COLOURS else "<span>", spans)


def _make_renderer():
    from markdown_it import MarkdownIt
    from markdown_it.renderer import RendererHTML

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False,
                                   "highlight": _highlight}).enable("table")
    md.validateLink = is_live_link  # a link that fails stays as its Markdown text
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    md.add_render_rule("image", _image)
    md.add_render_rule("ordered_list_open", _ordered_list_open)
    md.add_render_rule("fence", lambda self, *a: _code_box(RendererHTML.fence(self, *a)))
    md.add_render_rule("code_block", lambda self, *a: _code_box(RendererHTML.code_block(self, *a)))
    md.add_render_rule("table_open", lambda self, *a: '<div style="overflow-x:auto;max-width:100%">'
                       + self.renderToken(*a))
    md.add_render_rule("table_close", lambda self, *a: self.renderToken(*a) + "</div>\n")
    return md


def ready() -> bool:
    """Whether the renderer is built (its first use imports markdown-it: ~0.1 s, once)."""
    return _renderer is not None


def warm_up() -> None:
    """Build the renderer in the background (e.g. while a request waits for its first token)."""
    if _renderer is None:
        threading.Thread(target=markdown_html, args=("",), name="markdown-warm-up", daemon=True).start()


def markdown_html(text: str) -> str:
    """Untrusted Markdown as an inert HTML fragment (headings, lists, emphasis, tables, code blocks
    with their `language-x` class; live links only to http, https and mailto; no images)."""
    global _renderer
    if _renderer is None:
        with _lock:
            if _renderer is None:
                _renderer = _make_renderer()
    return _renderer.render(text or "")


def without_cut_off_heading(text: str) -> str:
    """A stream cut right after `###` would show an empty heading: drop that last line."""
    return _CUT_OFF_HEADING.sub("", text) if text.rstrip(" \t").endswith("#") else text


def code_html(code: str, language: str = "") -> str:
    """A code block we build ourselves (e.g. parsed JSON), without going through Markdown."""
    lang = f' class="language-{escape(language)}"' if language else ""
    return f'<pre style="{CODE_BLOCK_STYLE}"><code{lang}>{escape(code)}</code></pre>'


def note_html(text: str, *, warn: bool = False) -> str:
    """A footer or notice line: escaped text, never Markdown."""
    return f'<div style="{WARN_STYLE if warn else NOTE_STYLE}">{escape(text)}</div>'


def prose(inner_html: str) -> str:
    """Our wrapper around any fragment: wraps long lines inside the output."""
    return f'<div class="im-output {NO_MATH}" style="{PROSE_STYLE}">{inner_html}</div>'


def bundle(inner_html: str, plain: str) -> dict:
    """A display bundle: inert HTML for notebooks, the plain text for everything else."""
    return {"text/html": prose(inner_html), "text/plain": plain}


class StreamingMarkdown:
    """Renders a growing answer for the intermediate draws of a stream, through the same renderer.

    Blocks that can no longer change — everything before a blank line that is outside a code fence
    and followed by an unindented line that does not go on a list — are rendered once and kept;
    each draw renders only the rest, so a long answer is not rendered again at every draw. The
    result equals a full render unless the text defines link references (`exact()`); the final
    view then renders the whole text again. Safety does not depend on where the cut falls: every
    piece goes through markdown_html."""

    def __init__(self):
        self._last = ""          # the text of the last draw
        self._source = ""        # the prefix already rendered
        self._html = ""
        self._in_fence = ""      # the fence marker open at the end of the scanned lines, or ""
        self._blank_before = False
        self._scanned = 0        # how far lines have been scanned (always a line start)
        self._cut = 0            # the last safe cut found

    @staticmethod
    def exact(text: str) -> bool:
        """Whether rendering `text` in cached blocks gives what one full render gives: always, but
        for link reference definitions (which apply to blocks before them)."""
        return "]:" not in text or not _REFERENCE.search(text)  # the substring test is ~40x cheaper

    def render(self, text: str) -> str:
        if not text.startswith(self._last[:self._scanned]):
            self.__init__()  # not a continuation of the last text: start over
        self._last = text
        text = without_cut_off_heading(text)
        self._scan(text)
        if self._cut > len(self._source):
            self._html += markdown_html(text[len(self._source):self._cut])
            self._source = text[:self._cut]
        return self._html + markdown_html(text[len(self._source):])

    def _scan(self, text: str) -> None:
        """Find the last safe cut among the complete lines not scanned yet."""
        position = self._scanned
        while (end := text.find("\n", position)) >= 0:
            line = text[position:end]
            fence = _FENCE.match(line)
            if self._in_fence:
                marker = fence.group(1) if fence else ""
                if marker[:1] == self._in_fence[0] and len(marker) >= len(self._in_fence) \
                        and not line.strip().strip(marker[0]):
                    self._in_fence = ""
            elif not line.strip():
                self._blank_before = True
            else:
                if self._blank_before and not line[0].isspace() and not _LIST_ITEM.match(line):
                    self._cut = position
                self._blank_before = False
                if fence:
                    self._in_fence = fence.group(1)
            position = end + 1
        self._scanned = position
