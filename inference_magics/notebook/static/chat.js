// The chat widget's view. All state lives in the Python model; this file only draws it and
// sends the user's actions back ("send", "stop", "regenerate"). The transcript arrives as HTML
// rendered (and escaped) in Python by inference_magics/untrusted.py, so no Markdown library is
// needed here; this file only adds buttons around it (Copy and Insert as cell on code blocks,
// Regenerate and Edit on the last exchange).

// "Insert as cell" reaches the notebook through the widget manager that JupyterLab and Notebook 7
// give every widget model: its `context` is the open document, whose shared model inserts cells.
// The cell that holds this chat is the code cell whose output is this very view. Where there is
// no such document (VS Code, a viewer), the code goes to the clipboard instead. The code is only
// ever data: it becomes a cell's source, never run here.
const VIEW_MIME = "application/vnd.jupyter.widget-view+json";

async function chatCellIndex(notebook, manager, el) {
  const cells = notebook.sharedModel.cells;
  for (let index = 0; index < cells.length; index++) {
    for (const output of cells[index].cell_type === "code" ? cells[index].outputs : []) {
      const id = output.data && output.data[VIEW_MIME] && output.data[VIEW_MIME].model_id;
      const widget = id && await manager.get_model(id).catch(() => null);
      for (const view of Object.values((widget && widget.views) || {})) {
        const shown = await view.catch(() => null);
        if (shown && (shown.el === el || shown.el.contains(el))) return index;
      }
    }
  }
  return -1;
}

// the notebook documents that may hold this chat: the widget manager's, then (where the page
// exposes the app, as JupyterLab's --expose-app-in-browser does) the current notebook's
function notebooksFor(model, el) {
  const found = [];
  const manager = model.widget_manager;
  if (manager && manager.context && manager.context.model) found.push([manager.context.model, manager]);
  const current = window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.shell.currentWidget;
  if (current && current.context && current.context.model && current.node.contains(el) && manager) {
    found.push([current.context.model, manager]);
  }
  return found;
}

async function insertBelowChat(model, el, source) {
  for (const [notebook, manager] of notebooksFor(model, el)) {
    const index = await chatCellIndex(notebook, manager, el).catch(() => -1);
    if (index >= 0) {
      notebook.sharedModel.insertCell(index + 1, { cell_type: "code", source, metadata: {} });
      return true;
    }
  }
  return false;
}

// Model output is untrusted. Python already made it inert; this second check holds even if it did
// not: the HTML is parsed in an inert <template> (nothing runs, nothing loads), then only known
// tags and attributes are kept, and only http(s)/mailto links stay live, opening in a new tab.
const ALLOWED_TAGS = new Set(["A", "B", "BLOCKQUOTE", "BR", "CODE", "DEL", "DETAILS", "DIV", "EM", "H1", "H2", "H3",
  "H4", "H5", "H6", "HR", "I", "LI", "OL", "P", "PRE", "S", "SPAN", "STRONG", "SUMMARY", "TABLE", "TBODY", "TD",
  "TH", "THEAD", "TR", "UL"]);
const ALLOWED_ATTRIBUTES = new Set(["class", "href", "title", "start", "style", "target", "rel"]);
const LIVE_LINK = /^(https?:\/\/|mailto:)/i;
// inline styles may not fetch anything (url(), image-set) nor move out of the transcript (position)
const UNSAFE_STYLE = /url\s*\(|image|expression|@import|position|\\/i;

function inert(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  const walker = document.createTreeWalker(template.content, NodeFilter.SHOW_ELEMENT);
  const elements = [];
  while (walker.nextNode()) elements.push(walker.currentNode);
  for (const node of elements) {
    if (!ALLOWED_TAGS.has(node.tagName)) {
      node.replaceWith(document.createTextNode(node.textContent || ""));
      continue;
    }
    for (const attribute of Array.from(node.attributes)) {
      const name = attribute.name.toLowerCase();
      if (!ALLOWED_ATTRIBUTES.has(name) || (name === "style" && UNSAFE_STYLE.test(attribute.value))) {
        node.removeAttribute(attribute.name);
      }
    }
    if (node.tagName === "A") {
      if (LIVE_LINK.test((node.getAttribute("href") || "").trim())) {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer");
      } else {
        node.removeAttribute("href");
      }
    }
  }
  return template.content;
}
function render({ model, el }) {
  el.classList.add("im-chat");
  // keys typed here belong to the chat, not to JupyterLab's shortcuts (Shift+Enter runs a cell)
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  el.setAttribute("data-p-suppress-shortcuts", "true");
  el.innerHTML = `
    <div class="im-header">
      <select class="im-model" title="model"></select>
      <span class="im-route"></span>
    </div>
    <input class="im-system" type="text" placeholder="System prompt (optional)" aria-label="system prompt">
    <div class="im-transcript"></div>
    <div class="im-unanswered" role="status"></div>
    <div class="im-compose">
      <textarea class="im-input" rows="2"
        placeholder="Message — Shift+Enter or Ctrl+Enter sends · /help lists commands"></textarea>
      <div class="im-buttons">
        <button class="im-send" type="button">Send</button>
        <button class="im-stop" type="button" disabled>Stop</button>
      </div>
    </div>`;
  const $ = (selector) => el.querySelector(selector);
  const select = $(".im-model"), route = $(".im-route"), system = $(".im-system");
  const notice = $(".im-unanswered"), transcript = $(".im-transcript"), input = $(".im-input"), send = $(".im-send"), stop = $(".im-stop");

  function drawModels() {
    select.innerHTML = "";
    for (const option of model.get("models")) {
      const item = document.createElement("option");
      item.value = option.value;
      item.textContent = option.label;
      select.appendChild(item);
    }
    select.value = model.get("choice");
  }
  function button(label, title, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.title = title;
    b.addEventListener("click", onClick);
    return b;
  }
  async function copy(text) {  // whether the text reached the clipboard
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      const area = document.createElement("textarea");  // pages without the clipboard API
      area.value = text;
      el.appendChild(area);
      area.select();
      const copied = document.execCommand("copy");
      area.remove();
      return copied;
    }
  }
  function flash(b, text, label) {
    b.textContent = text;
    setTimeout(() => { b.textContent = label; }, 2500);
  }
  async function insert(pre, b) {
    const source = pre.textContent.replace(/\n$/, "");  // the block's text exactly, without the fence's last newline
    if (await insertBelowChat(model, el, source).catch(() => false)) {
      flash(b, "Inserted below", "Insert as cell");
    } else {
      flash(b, await copy(source) ? "Copied — paste it into a new cell" : "Could not copy — select the code",
            "Insert as cell");
    }
  }
  function addTools() {
    for (const pre of transcript.querySelectorAll(".im-body pre")) {
      const box = document.createElement("div");
      box.className = "im-code";
      pre.replaceWith(box);
      const tools = document.createElement("div");  // a bar above the code: its language, then the buttons
      tools.className = "im-code-tools";
      const language = document.createElement("span");
      language.className = "im-code-language";
      const named = pre.querySelector("code[class^='language-']");
      language.textContent = named ? named.className.slice("language-".length, 40) : "";
      tools.appendChild(language);
      box.append(tools, pre);
      const copyButton = button("Copy", "copy this code", () => copy(pre.textContent).then(
        (copied) => flash(copyButton, copied ? "Copied" : "Could not copy", "Copy")));
      const insertButton = button("Insert as cell", "put this code in a new cell below the chat (not run)",
        () => insert(pre, insertButton));
      insertButton.classList.add("im-insert");
      tools.append(copyButton, insertButton);
    }
    if (model.get("busy") || model.get("closed")) return;
    const users = transcript.querySelectorAll(".im-user"), answers = transcript.querySelectorAll(".im-assistant");
    const lastUser = users[users.length - 1], lastAnswer = answers[answers.length - 1];
    if (lastAnswer && lastUser && lastUser.compareDocumentPosition(lastAnswer) & Node.DOCUMENT_POSITION_FOLLOWING) {
      const tools = document.createElement("div");
      tools.className = "im-turn-tools";
      tools.appendChild(button("↻ Regenerate", "ask again for the last message", () => model.send({ type: "regenerate" })));
      lastAnswer.appendChild(tools);
    }
    if (lastUser) {
      const tools = document.createElement("div");
      tools.className = "im-turn-tools";
      tools.appendChild(button("✎ Edit", "edit the last message and send it again",
        () => model.send({ type: "edit" })));  // the kernel answers with the text (never kept in synced state)
      lastUser.appendChild(tools);
    }
  }
  function drawTranscript() {
    const atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
    transcript.replaceChildren(inert(model.get("transcript_html")));
    addTools();
    if (atBottom) transcript.scrollTop = transcript.scrollHeight;
  }
  function drawBusy() {
    const busy = model.get("busy");
    el.dataset.busy = busy ? "true" : "false";
    stop.disabled = !busy;
    send.disabled = busy;
    drawTranscript();  // the last exchange's buttons come and go with the busy state
  }
  function drawClosed() {
    if (!model.get("closed")) return;
    for (const part of [".im-header", ".im-compose"]) $(part)?.remove();
    system.remove();
    el.classList.add("im-closed");
  }
  let editing = false;  // the next send replaces the last message and its answer
  // A sent message always changes the transcript. If it has not after a while, the kernel is busy
  // running a cell, or this is a saved copy of a chat (a reopened notebook) with no kernel side:
  // say so, and give the text back.
  let unanswered = null, givenBack = null;
  function heard() {
    clearTimeout(unanswered);
    unanswered = null;
    notice.textContent = "";
    if (givenBack !== null && input.value === givenBack) input.value = "";  // it did arrive: not twice
    givenBack = null;
  }
  function submit() {
    const text = input.value;
    if (!text.trim() || model.get("busy")) return;
    model.send({ type: "send", text, system: system.value, choice: select.value, replace_last: editing });
    input.value = "";
    editing = false;
    clearTimeout(unanswered);
    unanswered = setTimeout(() => {
      notice.textContent = "No reply from the kernel yet: it is busy running a cell, or this chat is a saved copy "
        + "(run its cell to start a live one).";
      if (!input.value) input.value = givenBack = text;
    }, 5000);
  }

  input.addEventListener("keydown", (event) => {
    event.stopPropagation();
    if (event.key === "Enter" && (event.shiftKey || event.ctrlKey)) {
      event.preventDefault();
      submit();
    }
  });
  send.addEventListener("click", submit);
  stop.addEventListener("click", () => model.send({ type: "stop" }));
  select.addEventListener("change", () => { model.set("choice", select.value); model.save_changes(); });
  system.addEventListener("change", () => model.send({ type: "system", text: system.value }));
  model.on("msg:custom", (message) => {
    if (message.type === "edit") {
      // a draft being typed is not lost: it stays below the message put back
      const draft = input.value.trim() && input.value !== message.text ? "\n\n" + input.value : "";
      input.value = message.text + draft;
      editing = true;
      input.focus();
    }
  });

  model.on("change:models", drawModels);
  model.on("change:choice", () => { select.value = model.get("choice"); });
  model.on("change:system_shown", () => { system.value = model.get("system_shown"); });
  model.on("change:route", () => { route.textContent = model.get("route"); });
  model.on("change:transcript_html", () => { heard(); drawTranscript(); });
  model.on("change:busy", () => { heard(); drawBusy(); });
  model.on("change:closed", () => { heard(); drawClosed(); });  // /exit adds no turn
  drawModels();
  system.value = model.get("system_shown");
  route.textContent = model.get("route");
  drawTranscript();
  drawBusy();
  drawClosed();
}

export default { render };
