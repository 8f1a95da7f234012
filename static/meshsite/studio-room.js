// The Studio room page: the signed-in person as a participant of the room, with the room's
// threads (conversations with people and agents), participants, toolkits, a tool invoker, a chat
// and the live event log. It hosts the private `ui` toolkit, so agents can show this person
// toasts and ask them questions.
import { RoomClient, registerUiToolkit } from "./room.js";
import { mountThreads } from "./studio-threads.js";
import { mountAgents } from "./studio-agents.js";
import { h } from "./studio-dom.js";
import { schemaForm } from "./studio-schema-form.js";

const MAX_EVENTS = 200;
const root = document.getElementById("room");
const $ = (id) => document.getElementById(id);

function compact(value, limit = 400) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return text && text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

function clock(date = new Date()) {
  return date.toLocaleTimeString([], { hour12: false });
}

// -- the token: the one this page was rendered with, then fresh ones from the page itself --------

let token = root.dataset.token;

function tokenExpiresAt(jwt) {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).exp * 1000;
  } catch {
    return 0;
  }
}

async function currentToken({ reason } = {}) {
  if (reason !== "refresh" && tokenExpiresAt(token) - Date.now() > 30_000) return token;
  // The page mints a token for the signed-in person whenever it is rendered.
  const response = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.getElementById("room") && page.getElementById("room").dataset.token;
  if (!response.ok || !fresh) throw new Error("cannot get a fresh token: reload the page to sign in again");
  token = fresh;
  return token;
}

const client = new RoomClient(root.dataset.wsUrl, currentToken);
window.meshsiteRoom = client; // for the browser console

// -- agents present and callable (studio-agents.js); the threads panel is mounted further down,
// after the room-storage helpers its attachments use --------------------------------------------

window.meshsiteAgents = mountAgents(client);

// -- connection status --------------------------------------------------------------------------

const statusEl = $("status");
const reconnectButton = $("reconnect");

function renderStatus({ state, code, reason }) {
  statusEl.dataset.state = state;
  reconnectButton.hidden = state !== "closed";
  if (state === "connected" && client.participant) {
    root.dataset.participantId = client.participant.id;
    statusEl.textContent = `Connected as ${client.participant.identity} (${client.participant.id})`;
  } else if (state === "connecting") {
    statusEl.textContent = "Connecting…";
  } else if (state === "reconnecting") {
    statusEl.textContent = `Reconnecting… (${reason || "connection lost"}${code ? `, close ${code}` : ""})`;
  } else if (state === "closed") {
    delete root.dataset.participantId;
    statusEl.textContent = `Disconnected: ${reason || "connection closed"}${code ? ` (close ${code})` : ""}`;
  }
}

reconnectButton.addEventListener("click", () => {
  client.open().catch(() => {}); // the status line shows why
});

// -- participants -------------------------------------------------------------------------------

function renderParticipants() {
  const list = $("participants");
  const me = client.participant && client.participant.id;
  const people = [...client.participants.values()].sort((a, b) =>
    a.id === me ? -1 : b.id === me ? 1 : String(a.joined_at).localeCompare(String(b.joined_at)),
  );
  list.replaceChildren(
    ...people.map((p) => {
      const attributes = p.attributes && Object.keys(p.attributes).length ? p.attributes : null;
      return h(
        "li",
        { className: "participant", "data-participant-id": p.id, "data-identity": p.identity, "data-role": p.role },
        h("span", { className: "name", text: p.name || p.identity }),
        p.name && p.name !== p.identity ? h("span", { className: "identity", text: p.identity }) : null,
        h("span", { className: `badge role role-${p.role}`, text: p.role }),
        p.id === me ? h("span", { className: "badge you", text: "you" }) : null,
        h("code", { className: "participant-id", text: p.id }),
        attributes ? h("code", { className: "attributes", text: compact(attributes) }) : null,
      );
    }),
  );
  $("participant-count").textContent = String(people.length);
}

// -- toolkits -----------------------------------------------------------------------------------

function toolkitKey(t) {
  return `${t.name}@${t.participant_id || ""}`;
}

function hostLabel(t) {
  if (!t.participant_id) return "built-in";
  if (client.participant && t.participant_id === client.participant.id) return "hosted by you";
  const host = client.participants.get(t.participant_id);
  return `hosted by ${(host && host.identity) || t.participant_identity || t.participant_id}`;
}

function sortedToolkits() {
  return [...client.toolkits].sort(
    (a, b) => Number(Boolean(a.participant_id)) - Number(Boolean(b.participant_id)) || a.name.localeCompare(b.name),
  );
}

function renderToolkits() {
  const toolkits = sortedToolkits();
  $("toolkits").replaceChildren(
    ...toolkits.map((t) =>
      h(
        "li",
        { className: "toolkit", "data-toolkit": t.name, "data-host": t.participant_id || "" },
        h(
          "div",
          { className: "toolkit-head" },
          h("strong", { className: "toolkit-name", text: t.name }),
          h("span", { className: `badge ${t.participant_id ? "hosted" : "builtin"}`, text: hostLabel(t) }),
          t.public === false ? h("span", { className: "badge private", text: "private" }) : null,
        ),
        t.description ? h("p", { className: "description", text: t.description }) : null,
        h(
          "ul",
          { className: "tools", "aria-label": `Tools of ${t.name}` },
          ...(t.tools || []).map((tool) => {
            // A chip opens its tool in the invoker.
            // A link (not a button: its name would clash with the page's buttons, "send" or "post").
            const chip = h("a", { href: "#invoker", className: "tool-chip", title: tool.description || `Open ${t.name}.${tool.name} in the invoker` }, h("code", { text: tool.name }));
            chip.addEventListener("click", (event) => {
              event.preventDefault();
              openInInvoker(t, tool.name);
            });
            return h("li", { className: "tool" }, chip);
          }),
        ),
      ),
    ),
  );
  $("toolkit-count").textContent = String(toolkits.length);
  renderInvokerChoices();
}

// -- the tool invoker ---------------------------------------------------------------------------

const toolkitSelect = $("invoke-toolkit");
const toolSelect = $("invoke-tool");
const targetSelect = $("invoke-target");
const argsInput = $("invoke-args");
const resultEl = $("invoke-result");
const invokeButton = $("invoke-button");
const cancelButton = $("invoke-cancel");
let toolkitsSignature = "";
let targetsSignature = "";
let running = null; // the AbortController of the call in flight

function selectedToolkit() {
  return client.toolkits.find((t) => toolkitKey(t) === toolkitSelect.value) || null;
}

function selectedTool() {
  const toolkit = selectedToolkit();
  return (toolkit && (toolkit.tools || []).find((t) => t.name === toolSelect.value)) || null;
}

const formBox = $("invoke-form");
const jsonBox = $("invoke-json");
let argsForm = null; // the schema form of the selected tool

function argsMode() {
  return document.querySelector('input[name="args-mode"]:checked').value;
}

/** Switching views carries the arguments over: form → JSON as text, JSON → form when it parses. */
function setArgsMode(mode) {
  if (mode === "json" && argsForm) {
    argsInput.value = JSON.stringify(argsForm.read({ quiet: true }).value ?? {}, null, 2);
  } else if (mode === "form" && argsForm) {
    try {
      argsForm.write(JSON.parse(argsInput.value.trim() || "{}"));
    } catch (error) {
      showResult("error", `The JSON view does not parse, so the form kept its values: ${error.message}`);
    }
  }
  formBox.hidden = mode !== "form";
  jsonBox.hidden = mode !== "json";
}

for (const radio of document.querySelectorAll('input[name="args-mode"]')) {
  radio.addEventListener("change", () => setArgsMode(radio.value));
}

function openInInvoker(toolkit, toolName) {
  toolkitSelect.value = toolkitKey(toolkit);
  onToolkitChosen();
  toolSelect.value = toolName;
  onToolChosen();
  $("invoker").scrollIntoView({ block: "nearest" });
  const first = (argsMode() === "form" ? formBox : jsonBox).querySelector("input, select, textarea");
  (first || toolSelect).focus();
}

function renderInvokerChoices() {
  const toolkits = sortedToolkits();
  const signature = toolkits.map((t) => `${toolkitKey(t)}:${(t.tools || []).map((x) => x.name).join(",")}`).join("|");
  if (signature !== toolkitsSignature) {
    toolkitsSignature = signature;
    const previous = toolkitSelect.value;
    toolkitSelect.replaceChildren(
      ...toolkits.map((t) =>
        h("option", {
          value: toolkitKey(t),
          text: t.participant_id ? `${t.name} (${t.public === false ? "private, " : ""}${hostLabel(t)})` : t.name,
        }),
      ),
    );
    if (toolkits.some((t) => toolkitKey(t) === previous)) toolkitSelect.value = previous;
    if (toolkitSelect.value !== previous) onToolkitChosen();
    else renderTools(false);
  }
  renderTargets();
}

function renderTargets() {
  const me = client.participant && client.participant.id;
  const people = [...client.participants.values()];
  const signature = people.map((p) => p.id).join("|") + `/${me}`;
  if (signature === targetsSignature) return;
  targetsSignature = signature;
  const previous = targetSelect.value;
  targetSelect.replaceChildren(
    h("option", { value: "", text: "none (built-in or public toolkit)" }),
    ...people.map((p) => h("option", { value: p.id, text: `${p.identity}${p.id === me ? " (you)" : ""} · ${p.id}` })),
  );
  if (people.some((p) => p.id === previous)) targetSelect.value = previous;
}

function renderTools(prefill) {
  const toolkit = selectedToolkit();
  const previous = toolSelect.value;
  const tools = (toolkit && toolkit.tools) || [];
  toolSelect.replaceChildren(...tools.map((t) => h("option", { value: t.name, text: t.name })));
  if (tools.some((t) => t.name === previous)) toolSelect.value = previous;
  if (prefill || toolSelect.value !== previous) onToolChosen();
}

function onToolkitChosen() {
  const toolkit = selectedToolkit();
  renderTargets();
  targetSelect.value = (toolkit && toolkit.participant_id) || "";
  renderTools(true);
}

function onToolChosen() {
  const tool = selectedTool();
  $("invoke-description").textContent = (tool && tool.description) || "";
  $("invoke-schema-text").textContent = tool ? JSON.stringify(tool.input_schema, null, 2) : "";
  argsForm = tool ? schemaForm(tool.input_schema, { prefix: "invoke-arg" }) : null;
  formBox.replaceChildren(...(argsForm ? [argsForm.element] : []));
  argsInput.value = JSON.stringify(argsForm ? argsForm.read({ quiet: true }).value ?? {} : {}, null, 2);
}

function showResult(status, value) {
  resultEl.dataset.status = status;
  resultEl.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

toolkitSelect.addEventListener("change", onToolkitChosen);
toolSelect.addEventListener("change", onToolChosen);

$("invoker").addEventListener("submit", async (event) => {
  event.preventDefault();
  const toolkit = selectedToolkit();
  const tool = selectedTool();
  if (!toolkit || !tool) {
    showResult("error", "Choose a toolkit and a tool first.");
    return;
  }
  let args;
  if (argsMode() === "form" && argsForm) {
    const { value, errors } = argsForm.read();
    if (errors.length) {
      showResult("error", `Check the form: ${errors.map((e) => `${e.path} ${e.message}`).join("; ")}`);
      return;
    }
    args = value ?? {};
  } else {
    try {
      args = JSON.parse(argsInput.value.trim() || "{}");
    } catch (error) {
      showResult("error", `The arguments are not valid JSON: ${error.message}`);
      return;
    }
  }
  running = new AbortController();
  invokeButton.disabled = true;
  cancelButton.disabled = false;
  showResult("pending", `Invoking ${toolkit.name}.${tool.name}…`);
  try {
    const output = await client.invoke(toolkit.name, tool.name, args, {
      participantId: targetSelect.value || undefined,
      signal: running.signal,
      onProgress: (progress) => showResult("pending", { progress }),
    });
    showResult("ok", output);
  } catch (error) {
    showResult("error", { error: { code: error.code ?? null, message: error.message, data: error.data ?? null } });
  } finally {
    running = null;
    invokeButton.disabled = false;
    cancelButton.disabled = true;
  }
});

cancelButton.addEventListener("click", () => {
  if (running) running.abort();
});

// -- chat ---------------------------------------------------------------------------------------

/** The chat's "To": everyone, or one of the others present (kept when they stay). */
function renderChatTargets() {
  const select = $("chat-to");
  const previous = select.value;
  const me = client.participant && client.participant.id;
  const others = [...client.participants.values()].filter((p) => p.id !== me);
  select.replaceChildren(
    h("option", { value: "", text: "everyone" }),
    ...others.map((p) => h("option", { value: p.id, text: `${p.name || p.identity} (${p.id.slice(-6)})` })),
  );
  if (others.some((p) => p.id === previous)) select.value = previous;
}

function addChat(from, text, { mine = false, direct = false } = {}) {
  const log = $("chat-log");
  log.append(
    h(
      "li",
      { className: `chat-message${mine ? " mine" : ""}${direct ? " direct" : ""}`, "data-from": from.identity || "" },
      h("time", { text: clock() }),
      h("strong", { className: "from", text: mine ? "you" : from.name || from.identity || from.id }),
      direct ? h("span", { className: "badge private", text: mine ? "direct" : "to you" }) : null,
      h("span", { className: "text", text }),
    ),
  );
  log.scrollTop = log.scrollHeight;
}

client.on("messaging.message", (params) => {
  if (params.type !== "chat") return;
  const message = params.message;
  const text = message && typeof message === "object" && typeof message.text === "string" ? message.text : compact(message);
  addChat(params.from || {}, text, { direct: Boolean(params.to) });
});

$("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("chat-input");
  const errorEl = $("chat-error");
  const text = input.value.trim();
  if (!text) return;
  errorEl.hidden = true;
  const to = $("chat-to").value;
  try {
    // To one participant (`messaging.send`) or to everyone (`messaging.broadcast`).
    if (to) await client.sendMessage(to, "chat", { text });
    else await client.broadcast("chat", { text });
    addChat(client.participant || {}, text, { mine: true, direct: Boolean(to) });
    input.value = "";
  } catch (error) {
    errorEl.textContent = `Not sent: ${error.message}`;
    errorEl.hidden = false;
  }
});

// -- the event log ------------------------------------------------------------------------------

client.on("*", (params, method) => {
  const log = $("events");
  const local = (method.startsWith("connection.") && method !== "connection.closing") || method === "toolkits.hosted";
  const details = h(
    "details",
    {},
    h(
      "summary",
      {},
      h("time", { text: clock() }),
      h("code", { className: "method", text: method }),
      h("span", { className: "params", text: compact(params, 160) }),
    ),
  );
  // The whole notification, pretty-printed, only when someone opens it.
  details.addEventListener("toggle", () => {
    if (details.open && !details.querySelector("pre")) details.append(h("pre", { text: JSON.stringify(params, null, 2) }));
  });
  log.prepend(h("li", { className: `event${local ? " local" : ""}`, "data-method": method }, details));
  while (log.childElementCount > MAX_EVENTS) log.lastElementChild.remove();
});

// -- wiring -------------------------------------------------------------------------------------

client.on("connection.state", (params) => {
  renderStatus(params);
  renderParticipants();
  renderToolkits();
});
for (const method of ["room.ready", "participant.joined", "participant.updated", "participant.left"]) {
  client.on(method, () => {
    renderChatTargets();
    renderParticipants();
    renderToolkits();
  });
}
client.on("toolkits.changed", renderToolkits);
client.on("toolkits.hosted", renderToolkits);

// -- room storage (the files API), for `ui.ask_user_file` and thread attachments --------------

function safeFileName(name) {
  return name.replace(/[^a-zA-Z0-9._-]/g, "_").replace(/^[.]+/, "") || "file";
}

function fileUrl(path) {
  return `${root.dataset.filesUrl}${path.split("/").map(encodeURIComponent).join("/")}`;
}

/** PUTs `file` at `path` with the tab's token; resolves with the stored file's record. */
async function putFile(file, path) {
  const response = await fetch(fileUrl(path), {
    method: "PUT",
    headers: { Authorization: `Bearer ${await currentToken()}`, "Content-Type": file.type || "application/octet-stream" },
    body: file,
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    // an error page, not JSON: the status says enough
  }
  if (!response.ok) throw new Error((body && body.error && body.error.message) || `HTTP ${response.status}`);
  return body.file;
}

// A person's token may write under users/<identity>/ only (rooms/grants.py).
const userFolder = () => `users/${client.participant.identity}`;

/** Stores a file the person picked for `ui.ask_user_file`; its reference is the answer. */
async function storeFile(file, ctx) {
  const path = `${userFolder()}/uploads/${ctx.callId.replace(/[^a-zA-Z0-9_-]/g, "_")}-${safeFileName(file.name)}`;
  return { name: file.name, ...(await putFile(file, path)) };
}

const threadFiles = root.dataset.filesUrl
  ? {
      upload(file, threadId) {
        const unique = Math.random().toString(16).slice(2, 10);
        return putFile(file, `${userFolder()}/attachments/${threadId}/${unique}-${safeFileName(file.name)}`);
      },
      async download(part) {
        const response = await fetch(fileUrl(part.path), { headers: { Authorization: `Bearer ${await currentToken()}` } });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const url = URL.createObjectURL(await response.blob());
        const link = h("a", { href: url, download: part.name || part.path.split("/").pop() });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
      },
    }
  : null;

window.meshsiteThreads = mountThreads(client, { files: threadFiles });

// The `ui` toolkit is registered on the first connection; the client registers it again on
// every later one by itself.
let uiRegistering = false;
client.on("connection.state", async ({ state }) => {
  if (state !== "connected" || uiRegistering || client.hostedToolkits.includes("ui")) return;
  uiRegistering = true;
  try {
    await registerUiToolkit(client, root, { renderForm: schemaForm, pickFile: root.dataset.filesUrl ? storeFile : null });
  } catch (error) {
    console.error("meshsite: could not register the ui toolkit", error);
  } finally {
    uiRegistering = false;
  }
});

// Until the first connection succeeds, keep trying (a server restarting, say) unless refused.
async function start(attempt = 0) {
  try {
    await client.open();
  } catch (error) {
    if (error.fatal) return;
    setTimeout(() => {
      if (client.state === "closed") start(attempt + 1);
    }, Math.min(15_000, 500 * 2 ** attempt));
  }
}
start();
