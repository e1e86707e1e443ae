// The chat widget's view. All state lives in the Python model; this file only draws it and
// sends the user's actions back ("send", "stop"). The transcript arrives as HTML rendered (and
// escaped) in Python, so no Markdown library is needed here.
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
    <input class="im-system" type="text" placeholder="System prompt (optional)">
    <div class="im-transcript"></div>
    <div class="im-compose">
      <textarea class="im-input" rows="3"
        placeholder="Message — Shift+Enter or Ctrl+Enter sends · /help lists commands"></textarea>
      <div class="im-buttons">
        <button class="im-send" type="button">Send</button>
        <button class="im-stop" type="button" disabled>Stop</button>
      </div>
    </div>`;
  const $ = (selector) => el.querySelector(selector);
  const select = $(".im-model"), route = $(".im-route"), system = $(".im-system");
  const transcript = $(".im-transcript"), input = $(".im-input"), send = $(".im-send"), stop = $(".im-stop");

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
  function drawTranscript() {
    const atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
    transcript.innerHTML = model.get("transcript_html");
    if (atBottom) transcript.scrollTop = transcript.scrollHeight;
  }
  function drawBusy() {
    const busy = model.get("busy");
    el.dataset.busy = busy ? "true" : "false";
    stop.disabled = !busy;
    send.disabled = busy;
  }
  function drawClosed() {
    if (!model.get("closed")) return;
    for (const part of [".im-header", ".im-compose"]) $(part)?.remove();
    system.remove();
    el.classList.add("im-closed");
  }
  function submit() {
    const text = input.value;
    if (!text.trim() || model.get("busy")) return;
    model.send({ type: "send", text, system: system.value, choice: select.value });
    input.value = "";
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
  system.addEventListener("change", () => { model.set("system", system.value); model.save_changes(); });

  model.on("change:models", drawModels);
  model.on("change:choice", () => { select.value = model.get("choice"); });
  model.on("change:system", () => { system.value = model.get("system"); });
  model.on("change:route", () => { route.textContent = model.get("route"); });
  model.on("change:transcript_html", drawTranscript);
  model.on("change:busy", drawBusy);
  model.on("change:closed", drawClosed);
  drawModels();
  system.value = model.get("system");
  route.textContent = model.get("route");
  drawTranscript();
  drawBusy();
  drawClosed();
}

export default { render };
