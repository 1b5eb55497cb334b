// The page: a chat in a session with a build or model, its settings beside it.
// Each reply streams in; its `pml` report gives the cited sources (shown under it)
// and how the prompt was spent (the context panel).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { settings: null, session: null, controller: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

function newSessionName() {
  const stamp = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return `web-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

// Messages ---------------------------------------------------------------------------

function addMessage(role, text = "") {
  $("empty").hidden = true;
  const body = el("div", { class: "body" });
  const node = el("div", { class: `message ${role}` }, el("div", { class: "who" }, role === "user" ? "you" : "reply"), body);
  if (role === "user") body.textContent = text;
  else body.innerHTML = renderMarkdown(text);
  $("messages").append(node);
  node.scrollIntoView({ block: "end" });
  return node;
}

function addNote(node, text) {
  node.append(el("div", { class: "note" }, text));
}

function showSources(node, sources) {
  if (!sources || !sources.length) return;
  const list = el("div", { class: "sources" });
  for (const s of sources) {
    const where = `chunk ${s.chunk}` + (s.page ? ` · p. ${s.page}` : "");
    const score = typeof s.score === "number" ? ` · ${s.score.toFixed(2)}` : "";
    list.append(el("details", { class: "source" },
      el("summary", {}, `[${s.number}] ${s.document} · ${where}${score}`), el("p", {}, s.text)));
  }
  node.append(list);
}

function showContext(context) {
  const rows = context.sections.filter((s) => s.tokens || s.kept || s.dropped);
  const table = el("table");
  for (const s of rows) {
    const items = s.name === "template" ? "" : s.dropped ? `${s.kept} of ${s.kept + s.dropped}` : String(s.kept);
    table.append(el("tr", {}, el("td", {}, s.name), el("td", { class: "n" }, items), el("td", { class: "n" }, String(s.tokens))));
  }
  table.append(el("tr", { class: "total" }, el("td", {}, "total"), el("td"),
    el("td", { class: "n" }, `${context.total_tokens} / ${context.budget}`)));
  const bar = el("div", { class: "bar", title: "the prompt's share of the budget, section by section" });
  for (const s of rows) if (s.tokens > 0) bar.append(el("span", { style: `width:${(100 * s.tokens) / context.budget}%`, title: `${s.name}: ${s.tokens}` }));
  const notes = [el("p", { class: "hint" }, `budget = num_ctx ${context.num_ctx} − max_new_tokens ${context.max_new_tokens} (room kept for the reply)`)];
  if (context.left_out_turns.length) notes.push(el("p", { class: "hint" }, `turns left out: ${context.left_out_turns.map((i) => `#${i}`).join(", ")}`));
  if (context.kept_turns.length) notes.push(el("p", { class: "hint" }, `turns sent: ${context.kept_turns.map((i) => `#${i}`).join(", ")}`));
  $("context").replaceChildren(table, bar, ...notes);
}

// Lists: models, sessions, knowledge bases --------------------------------------------

async function loadModels() {
  const models = (await api.get("/v1/models")).data;
  const order = { build: 0, model: 1, "model+adapter": 2 };
  models.sort((a, b) => order[a.kind] - order[b.kind]);
  $("model").replaceChildren(...models.map((m) => el("option", { value: m.id }, `${m.id}${m.kind === "build" ? "" : `  (${m.kind})`}`)));
}

async function loadSettings() {
  const settings = await api.get(`/pml/settings?model=${encodeURIComponent($("model").value)}`);
  state.settings = settings;
  $("system").value = settings.system || "";
  const chosen = Object.fromEntries(settings.styles.map((s) => (typeof s === "string" ? [s, {}] : Object.entries(s)[0])));
  const boxes = Object.entries(settings.styles_known).map(([name, template]) => {
    const fields = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    const box = el("input", { type: "checkbox", value: name, "data-style": name });
    box.checked = name in chosen;
    const label = el("label", { title: template }, box, name);
    for (const field of fields) {
      const input = el("input", { type: "text", placeholder: field, "data-field": field, class: "style-field" });
      input.value = (chosen[name] || {})[field] || "";
      label.append(input);
    }
    return label;
  });
  $("styles").replaceChildren(...boxes);
  await loadKnowledge(settings.knowledge);
}

async function loadKnowledge(checked) {
  const keep = checked || [...document.querySelectorAll("#kb-list input:checked")].map((b) => b.value);
  const bases = (await api.get("/pml/knowledge")).data;
  $("kb-list").replaceChildren(...bases.map((b) => {
    const box = el("input", { type: "checkbox", value: b.name });
    box.checked = keep.includes(b.name);
    return el("li", {}, el("label", { title: `${b.documents} documents, ${b.chunks} chunks` }, box, b.name,
      el("small", {}, ` ${b.documents} doc${b.documents === 1 ? "" : "s"}`)));
  }));
}

async function loadSessions() {
  const sessions = (await api.get("/pml/sessions")).data;
  $("sessions").replaceChildren(...sessions.map((s) => {
    const item = el("li", { "data-session": s.name, onclick: () => openSession(s.name) }, s.name, el("small", {}, `${s.turns}`));
    if (s.name === state.session) item.classList.add("active");
    return item;
  }));
}

async function openSession(name) {
  const session = await api.get(`/pml/sessions/${encodeURIComponent(name)}`);
  state.session = name;
  if (session.build && [...$("model").options].some((o) => o.value === session.build) && $("model").value !== session.build) {
    $("model").value = session.build;
    await loadSettings();
  }
  $("messages").replaceChildren($("empty"));
  $("empty").hidden = session.turns.length > 0;
  for (const turn of session.turns) {
    addMessage("user", turn.user);
    const reply = addMessage("assistant", turn.reply);
    if (turn.status !== "complete") addNote(reply, turn.status);
  }
  await loadSessions();
}

function newChat() {
  state.session = newSessionName();
  $("messages").replaceChildren($("empty"));
  $("empty").hidden = false;
  loadSessions().catch((e) => showError(e.message));
}

// Sending ------------------------------------------------------------------------------

function chosenStyles() {
  return [...document.querySelectorAll("#styles input[data-style]:checked")].map((box) => {
    const fields = [...box.parentElement.querySelectorAll("input[data-field]")];
    if (!fields.length) return box.value;
    return { [box.value]: Object.fromEntries(fields.map((f) => [f.dataset.field, f.value.trim()])) };
  });
}

function requestBody(text) {
  const messages = [];
  const system = $("system").value.trim();
  if (system !== (state.settings.system || "").trim()) messages.push({ role: "system", content: system });
  messages.push({ role: "user", content: text });
  const pml = {
    session: state.session,
    knowledge: [...document.querySelectorAll("#kb-list input:checked")].map((b) => b.value),
    styles: chosenStyles(),
  };
  const body = { model: $("model").value, messages, pml };
  if ($("max-tokens").value) body.max_tokens = Number($("max-tokens").value);
  if ($("temperature").value) body.temperature = Number($("temperature").value);
  if ($("num-ctx").value) pml.num_ctx = Number($("num-ctx").value);
  return body;
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("prompt").disabled = busy;
}

async function send(event) {
  event.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || state.controller) return;
  showError("");
  $("prompt").value = "";
  addMessage("user", text);
  const reply = addMessage("assistant");
  const body = reply.querySelector(".body");
  let written = "";
  state.controller = new AbortController();
  setBusy(true);
  try {
    await api.streamChat(requestBody(text), {
      signal: state.controller.signal,
      onDelta: (piece) => {
        written += piece;
        body.innerHTML = renderMarkdown(written);
        reply.scrollIntoView({ block: "end" });
      },
      onChunk: (chunk) => {
        if (!chunk.pml) return;
        showSources(reply, chunk.pml.sources);
        showContext(chunk.pml.context);
      },
    });
    reply.dataset.done = "complete";
  } catch (error) {
    if (error.name === "AbortError") {
      addNote(reply, "stopped");
      reply.dataset.done = "stopped";
    } else {
      reply.dataset.done = "error";
      showError(error.message);
      if (error.status === 401) $("api-key").focus();
    }
  } finally {
    state.controller = null;
    setBusy(false);
    $("prompt").focus();
    loadSessions().catch(() => {});
  }
}

async function upload(event) {
  event.preventDefault();
  const file = $("upload-file").files[0];
  const base = $("kb-name").value.trim();
  if (!file || !base) return showError("choose a file and a knowledge base name to upload into");
  $("upload-status").textContent = `uploading ${file.name}…`;
  try {
    const done = await api.upload(base, file);
    $("upload-status").textContent = `${done.document}: ${done.status}, ${done.chunks} chunk${done.chunks === 1 ? "" : "s"} in ${done.knowledge_base}`;
    const checked = [...document.querySelectorAll("#kb-list input:checked")].map((b) => b.value);
    await loadKnowledge([...new Set([...checked, base])]);
    $("upload-file").value = "";
  } catch (error) {
    $("upload-status").textContent = "";
    showError(error.message);
  }
}

// The composer stays disabled until the model, its settings and a session are there:
// a message sent earlier would go without a session and its reply be cleared by newChat.
async function start() {
  $("api-key").value = api.key;
  $("prompt").disabled = $("send").disabled = true;
  try {
    await loadModels();
    await loadSettings();
    newChat();
  } catch (error) {
    showError(error.status === 401 ? "This server needs an API key: type it in the sidebar." : error.message);
  } finally {
    $("prompt").disabled = $("send").disabled = false;
  }
}

$("api-key").addEventListener("change", () => { api.setKey($("api-key").value); showError(""); start(); });
$("composer").addEventListener("submit", send);
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) send(e);
});
$("stop").addEventListener("click", () => state.controller && state.controller.abort());
$("new-chat").addEventListener("click", newChat);
$("model").addEventListener("change", () => loadSettings().catch((e) => showError(e.message)));
$("upload-form").addEventListener("submit", upload);
start();
