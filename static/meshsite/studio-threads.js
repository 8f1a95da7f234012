// Threads on the Studio room page: the room's thread list, one thread's history kept live from
// the room's notifications, a composer, and the live preview of a ChatBot's turn (`threads.turn`:
// thinking, streaming text, tool-call cards, an Interrupt button). Everything a participant wrote
// is put in the page with textContent, never as HTML.
import { h } from "./studio-dom.js";

const THREAD_ID_RE = /^t_[0-9a-f]{16}$/;
const HISTORY_PAGE = 200;
// How long a finished turn's preview waits for its message before the thread is read again.
const ENDED_GRACE_MS = 5000;
const STATUS_LABELS = {
  pending: "pending",
  awaiting_approval: "awaiting approval",
  running: "running…",
  ok: "ok",
  error: "error",
  refused: "refused",
  cancelled: "cancelled",
};

/** Up to two letters for an avatar: "Ada Lovelace" → "AL", "studio-admin" → "SA", "bob" → "BO". */
export function initials(name) {
  const words = String(name || "?")
    .split(/[\s._@-]+/)
    .filter(Boolean);
  if (!words.length) return "?";
  const letters = words.length > 1 ? words[0][0] + words[1][0] : words[0].slice(0, 2);
  return letters.toUpperCase();
}

function hue(text) {
  let hash = 0;
  for (const char of String(text)) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return hash % 360;
}

function avatar(who) {
  const label = who.name || who.identity || "?";
  const node = h("span", { className: "avatar", "aria-hidden": "true", text: initials(label) });
  node.style.setProperty("--avatar-hue", String(hue(who.identity || label)));
  return node;
}

function json(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    return String(value);
  }
  if (text === undefined) return String(value);
  return text.length > 80 ? JSON.stringify(value, null, 2) : text;
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const today = new Date().toDateString() === date.toDateString();
  return today
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false })
    : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short", hour12: false });
}

function errorText(error) {
  const code = error && error.code != null ? ` (${error.code})` : "";
  return `${(error && error.message) || String(error)}${code}`;
}

/** A tool call as a card: `toolkit.tool`, status, arguments, progress, result or error, approver. */
export function toolCard(call) {
  const status = call.status || "pending";
  const name = call.toolkit && call.tool ? `${call.toolkit}.${call.tool}` : call.name || "tool";
  const rows = [];
  const row = (label, value, className) =>
    rows.push(h("dt", { text: label }), h("dd", { className }, h("pre", { text: json(value) })));
  if (call.arguments !== undefined) row("Arguments", call.arguments, "tool-arguments");
  if (call.progress !== undefined && call.progress !== null && !["ok", "error"].includes(status))
    row("Progress", call.progress, "tool-progress");
  if (call.result !== undefined && status === "ok") row("Result", call.result, "tool-result");
  if (call.error !== undefined && call.error !== null && status !== "ok") {
    rows.push(
      h("dt", { text: "Error" }),
      h("dd", { className: "tool-error" }, typeof call.error === "string" ? call.error : json(call.error)),
    );
  }
  return h(
    "div",
    { className: "tool-card", "data-call-id": call.call_id || "", "data-status": status },
    h(
      "div",
      { className: "tool-card-head" },
      h("span", { className: "tool-icon", "aria-hidden": "true", text: "⚙" }),
      h("code", { className: "tool-name", text: name }),
      h("span", { className: `badge tool-status status-${status}`, text: STATUS_LABELS[status] || status }),
      call.approved_by ? h("span", { className: "approved-by", text: `approved by ${call.approved_by}` }) : null,
    ),
    rows.length ? h("dl", { className: "tool-details" }, ...rows) : null,
  );
}

function partNode(part, files) {
  if (!part || typeof part !== "object") return null;
  if (part.type === "text") return part.text ? h("div", { className: "part-text", text: part.text }) : null;
  if (part.type === "tool_call") return toolCard(part);
  if (part.type === "attachment") {
    const size = Number.isInteger(part.size) ? ` · ${part.size} bytes` : "";
    let open = null;
    if (files && files.download) {
      // The files API wants the tab's token, so a plain link cannot fetch it: fetch, then save.
      open = h("button", { type: "button", className: "link attachment-open", text: "Download" });
      open.addEventListener("click", () => files.download(part).catch((error) => alert(`Download failed: ${error.message}`)));
    }
    return h(
      "div",
      { className: "part-attachment", "data-path": part.path },
      h("span", { "aria-hidden": "true", text: "📎 " }),
      h("strong", { text: part.name || part.path }),
      h("span", { className: "muted", text: `${part.mime_type ? ` · ${part.mime_type}` : ""}${size}` }),
      h("code", { className: "attachment-path", text: part.path }),
      open,
    );
  }
  return h("pre", { className: "part-unknown", text: json(part) });
}

function authorLine(who, { mine, time, extra } = {}) {
  const name = who.name || who.identity || who.participant_id || who.id || "someone";
  return h(
    "div",
    { className: "message-head" },
    h("strong", { className: "author", text: name }),
    who.name && who.identity && who.name !== who.identity ? h("span", { className: "identity", text: who.identity }) : null,
    who.role ? h("span", { className: `badge role role-${who.role}`, text: who.role }) : null,
    mine ? h("span", { className: "badge you", text: "you" }) : null,
    time ? h("time", { text: time }) : null,
    extra || null,
  );
}

/**
 * Mounts the threads panel on `client` (a connected or connecting RoomClient). The elements are
 * the template's (templates/studio/room.html); `pageSize` is how many threads a page lists.
 */
export function mountThreads(client, { pageSize = 20, files = null } = {}) {
  const $ = (id) => document.getElementById(id);
  const listEl = $("thread-list");
  const moreButton = $("threads-more");
  const threadsError = $("threads-error");
  const historyEl = $("thread-history");
  const conversation = $("conversation");
  const titleEl = $("conversation-title");
  const metaEl = $("conversation-meta");
  const placeholder = $("conversation-placeholder");
  const composerInput = $("composer-input");
  const composerButton = $("composer-post");
  const conversationError = $("conversation-error");

  const threads = new Map(); // id → thread record
  let order = []; // thread ids, most recently active first
  let nextCursor = null;
  let listLoading = false;
  let selected = null; // the selected thread's id
  let messages = new Map(); // seq → message of the selected thread
  let loadGeneration = 0;
  let loading = false;
  const unread = new Map(); // thread id → count of messages that arrived while it was not shown
  const turns = new Map(); // turn id → live turn
  const doneTurns = new Set();
  let connectedOnce = false;

  // -- the thread list ---------------------------------------------------------------------------

  function putThread(record, { top = false } = {}) {
    if (!record || !record.id) return;
    threads.set(record.id, { ...(threads.get(record.id) || {}), ...record });
    if (top) order = [record.id, ...order.filter((id) => id !== record.id)];
    else if (!order.includes(record.id)) order.push(record.id);
  }

  function liveTurnIn(threadId) {
    for (const turn of turns.values()) if (turn.threadId === threadId && !turn.ended) return turn;
    return null;
  }

  function renderList() {
    listEl.replaceChildren(
      ...order
        .filter((id) => threads.has(id))
        .map((id) => {
          const t = threads.get(id);
          const count = unread.get(id) || 0;
          const live = liveTurnIn(id);
          const button = h(
            "button",
            {
              type: "button",
              className: "thread-item",
              title: t.title || "Untitled thread",
              "aria-current": id === selected ? "true" : null,
            },
            h("span", { className: "thread-title", text: t.title || "Untitled thread" }),
            h(
              "span",
              { className: "thread-meta" },
              h("span", { text: `${t.last_seq || 0} ${t.last_seq === 1 ? "post" : "posts"} · ${when(t.updated_at)}` }),
              live ? h("span", { className: "badge live", text: "answering" }) : null,
              count ? h("span", { className: "badge unread", text: `${count} new` }) : null,
            ),
          );
          button.addEventListener("click", () => select(id));
          return h("li", { "data-thread-id": id, "data-title": t.title || "" }, button);
        }),
    );
    $("thread-count").textContent = String(order.length) + (nextCursor ? "+" : "");
    $("threads-empty").hidden = order.length > 0 || listLoading;
    moreButton.hidden = !nextCursor;
  }

  function showListError(error) {
    threadsError.textContent = error ? `Threads: ${errorText(error)}` : "";
    threadsError.hidden = !error;
  }

  async function loadThreads({ reset = false } = {}) {
    if (listLoading) return;
    listLoading = true;
    moreButton.disabled = true;
    try {
      const args = { limit: pageSize };
      if (!reset && nextCursor) args.cursor = nextCursor;
      const page = await client.invoke("threads", "list", args);
      if (reset) {
        const keep = selected && threads.get(selected);
        threads.clear();
        order = [];
        if (keep && !page.threads.some((t) => t.id === selected)) putThread(keep);
      }
      for (const record of page.threads) putThread(record);
      nextCursor = page.next_cursor;
      showListError(null);
    } catch (error) {
      showListError(error);
    } finally {
      listLoading = false;
      moreButton.disabled = false;
      renderList();
    }
  }

  moreButton.addEventListener("click", () => loadThreads());

  $("new-thread").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("new-thread-title");
    const title = input.value.trim();
    const button = $("new-thread-button");
    button.disabled = true;
    try {
      const { thread } = await client.invoke("threads", "create", title ? { title } : {});
      putThread(thread, { top: true });
      input.value = "";
      showListError(null);
      await select(thread.id);
      composerInput.focus();
    } catch (error) {
      showListError(error);
    } finally {
      button.disabled = false;
      renderList();
    }
  });

  // -- the selected thread -----------------------------------------------------------------------

  function nearBottom() {
    return historyEl.scrollHeight - historyEl.scrollTop - historyEl.clientHeight < 48;
  }

  function keepScrolled(wasAtBottom) {
    if (wasAtBottom) historyEl.scrollTop = historyEl.scrollHeight;
  }

  function messageNode(message) {
    const author = message.author || {};
    const mine = Boolean(client.participant && author.identity === client.participant.identity);
    const parts = (message.parts || []).map((part) => partNode(part, files)).filter(Boolean);
    // A turn's message with tool calls links to the turn's trace (the server finds it from the
    // thread's usage recorded before this message: see studio/views/traces.py).
    const findTrace = document.getElementById("room").dataset.traceFindUrl;
    const traced = findTrace && (message.parts || []).some((p) => p && p.type === "tool_call");
    const traceLink = traced
      ? h("a", {
          className: "trace-link",
          href: `${findTrace}?${new URLSearchParams({ thread: selected || "", before: message.created_at || "" })}`,
          text: "trace",
          title: "The calls of this turn, as a waterfall",
        })
      : null;
    return h(
      "li",
      {
        className: `thread-message${mine ? " mine" : ""}`,
        "data-seq": message.seq,
        "data-author": author.identity || "",
        "data-role": author.role || "",
      },
      avatar(author),
      h(
        "div",
        { className: "message-body" },
        authorLine(author, { mine, time: when(message.created_at), extra: traceLink }),
        ...(parts.length ? parts : [h("div", { className: "part-text muted", text: "(empty)" })]),
      ),
    );
  }

  function putMessage(message) {
    if (!message || !Number.isInteger(message.seq)) return;
    const wasAtBottom = nearBottom();
    messages.set(message.seq, message);
    const node = messageNode(message);
    const existing = historyEl.querySelector(`li[data-seq="${message.seq}"]`);
    if (existing) existing.replaceWith(node);
    else {
      const after = [...historyEl.children].find(
        (li) => li.dataset.turnId !== undefined || Number(li.dataset.seq) > message.seq,
      );
      historyEl.insertBefore(node, after || null);
    }
    keepScrolled(wasAtBottom);
  }

  function renderHeader() {
    const thread = selected && threads.get(selected);
    conversation.dataset.state = selected ? (loading ? "loading" : "open") : "none";
    conversation.dataset.threadId = selected || "";
    placeholder.hidden = Boolean(selected);
    if (!selected) {
      titleEl.textContent = "No thread selected";
      metaEl.textContent = "";
    } else {
      titleEl.textContent = (thread && thread.title) || "Untitled thread";
      const by = thread && thread.created_by ? `started by ${thread.created_by}` : "";
      metaEl.replaceChildren(
        ...[
          by ? h("span", { text: `${by} · ` }) : null,
          h("code", { text: selected }),
          loading ? h("span", { className: "loading", text: " · loading history…" }) : null,
        ].filter(Boolean),
      );
    }
    const usable = Boolean(selected) && client.state === "connected";
    composerInput.disabled = !usable;
    composerButton.disabled = !usable;
    if (fileInput) fileInput.disabled = !usable;
  }

  function showConversationError(error, prefix = "") {
    conversationError.textContent = error ? `${prefix}${errorText(error)}` : "";
    conversationError.hidden = !error;
  }

  function setUrl(threadId, push) {
    const url = new URL(window.location.href);
    if (threadId) url.searchParams.set("thread", threadId);
    else url.searchParams.delete("thread");
    if (url.href === window.location.href) return;
    if (push) window.history.pushState({ thread: threadId }, "", url);
    else window.history.replaceState({ thread: threadId }, "", url);
  }

  /** Reads the selected thread after `since` (every page) into the history; the messages read,
   * or null when another thread was selected meanwhile. */
  async function readHistory(threadId, generation, since) {
    const read = [];
    let more = true;
    while (more) {
      const page = await client.invoke("threads", "get", { thread_id: threadId, since_seq: since, limit: HISTORY_PAGE });
      if (generation !== loadGeneration) return null;
      putThread(page.thread);
      for (const message of page.messages) putMessage(message);
      read.push(...page.messages);
      since = page.next_since_seq;
      more = page.more;
    }
    return read;
  }

  async function select(threadId, { push = true } = {}) {
    if (threadId && !THREAD_ID_RE.test(threadId)) threadId = null;
    if (threadId === selected && !loading && historyEl.childElementCount) return;
    selected = threadId;
    messages = new Map();
    historyEl.replaceChildren();
    showConversationError(null);
    setUrl(threadId, push);
    const generation = ++loadGeneration;
    if (!threadId) {
      loading = false;
      renderHeader();
      renderList();
      return;
    }
    unread.delete(threadId);
    loading = true;
    renderHeader();
    renderList();
    try {
      const read = await readHistory(threadId, generation, 0);
      if (!read) return;
      loading = false;
      for (const turn of turns.values()) if (turn.threadId === threadId) renderTurn(turn);
      historyEl.scrollTop = historyEl.scrollHeight;
    } catch (error) {
      if (generation !== loadGeneration) return;
      loading = false;
      if (error && error.code === -32002) {
        showConversationError(null);
        selected = null;
        setUrl(null, false);
        conversationError.textContent = `There is no thread ${threadId} in this room (deleted?).`;
        conversationError.hidden = false;
      } else {
        showConversationError(error, "Could not read the thread: ");
      }
    }
    renderHeader();
    renderList();
  }

  /** After a reconnect: what the selected thread got meanwhile. A message there from an agent
   * whose turn was live ended that turn. */
  async function catchUp() {
    if (!selected || loading) return;
    const generation = loadGeneration;
    const threadId = selected;
    const since = Math.max(0, ...messages.keys());
    try {
      const read = (await readHistory(threadId, generation, since)) || [];
      for (const message of read) finishTurnsOf(threadId, message.author || {});
    } catch (error) {
      if (generation === loadGeneration) showConversationError(error, "Could not read the thread: ");
    }
    renderHeader();
  }

  window.addEventListener("popstate", () => {
    const threadId = new URL(window.location.href).searchParams.get("thread");
    select(threadId, { push: false });
  });

  // -- the composer ------------------------------------------------------------------------------

  // Files picked for the next post: uploaded to the room's storage when it is posted.
  const fileInput = $("composer-file");
  const pendingList = $("composer-attachments");
  let pending = [];

  function renderPending() {
    if (!pendingList) return;
    pendingList.replaceChildren(
      ...pending.map((file, index) => {
        const remove = h("button", { type: "button", className: "link", text: "remove", "aria-label": `Do not attach ${file.name}` });
        remove.addEventListener("click", () => {
          pending = pending.filter((_, i) => i !== index);
          renderPending();
        });
        return h("li", { "data-name": file.name }, h("span", { text: `📎 ${file.name} (${file.size} bytes) ` }), remove);
      }),
    );
  }

  if (fileInput && files) {
    fileInput.addEventListener("change", () => {
      pending = [...pending, ...fileInput.files];
      fileInput.value = "";
      renderPending();
    });
  }

  async function post() {
    const text = composerInput.value;
    if (!selected || (!text.trim() && !pending.length)) return;
    const threadId = selected;
    composerButton.disabled = true;
    composerInput.disabled = true;
    try {
      const parts = text.trim() ? [{ type: "text", text }] : [];
      for (const file of pending) {
        const stored = await files.upload(file, threadId);
        parts.push({ type: "attachment", path: stored.path, name: file.name, mime_type: stored.content_type, size: stored.size });
      }
      const { message } = await client.invoke("threads", "post", { thread_id: threadId, parts });
      composerInput.value = "";
      pending = [];
      renderPending();
      showConversationError(null);
      if (threadId === selected) putMessage(message);
    } catch (error) {
      showConversationError(error, "Not posted: ");
    } finally {
      renderHeader();
      composerInput.focus();
    }
  }

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    post();
  });
  composerInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      post();
    }
  });

  // -- live turns (threads.turn) -----------------------------------------------------------------

  function turnFor(params) {
    let turn = turns.get(params.turn_id);
    if (!turn) {
      turn = {
        id: params.turn_id,
        threadId: params.thread_id,
        from: params.from || {},
        text: "",
        calls: new Map(),
        phase: "thinking",
        ended: false,
        status: null,
        error: null,
        interrupting: false,
      };
      turns.set(turn.id, turn);
    }
    return turn;
  }

  function interruptTarget(turn) {
    // The bot hosts a toolkit named after itself with the tool `interrupt`.
    const hosted = client.toolkits.find(
      (t) => t.participant_id === turn.from.id && (t.tools || []).some((tool) => tool.name === "interrupt"),
    );
    return hosted ? { toolkit: hosted.name, participantId: hosted.participant_id } : { toolkit: turn.from.identity };
  }

  async function interrupt(turn) {
    turn.interrupting = true;
    renderTurn(turn);
    const { toolkit, participantId } = interruptTarget(turn);
    try {
      await client.invoke(toolkit, "interrupt", { thread_id: turn.threadId }, { participantId });
    } catch (error) {
      turn.interrupting = false;
      showConversationError(error, "Could not interrupt: ");
      renderTurn(turn);
    }
  }

  function turnNode(turn) {
    const thinking = !turn.ended && turn.phase === "thinking";
    const status = turn.ended
      ? h("span", { className: `badge turn-status turn-${turn.status}`, text: turn.status || "ended" })
      : h("span", { className: "badge turn-status turn-live", text: "live" });
    let stop = null;
    if (!turn.ended) {
      stop = h("button", {
        type: "button",
        className: "secondary interrupt",
        text: turn.interrupting ? "Interrupting…" : "Interrupt",
        disabled: turn.interrupting,
        title: `Stop ${turn.from.name || turn.from.identity}'s answer (what it said is kept)`,
      });
      stop.addEventListener("click", () => interrupt(turn));
    }
    return h(
      "li",
      {
        className: `thread-message live${thinking ? " thinking" : ""}`,
        "data-turn-id": turn.id,
        "data-author": turn.from.identity || "",
        "data-role": turn.from.role || "",
        "aria-busy": turn.ended ? null : "true",
      },
      avatar(turn.from),
      h(
        "div",
        { className: "message-body" },
        authorLine(turn.from, { extra: status }),
        turn.text ? h("div", { className: "part-text streaming", text: turn.text }) : null,
        ...[...turn.calls.values()].map(toolCard),
        thinking
          ? h(
              "div",
              { className: "thinking-indicator", role: "status" },
              h("span", { className: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")),
              h("span", { text: turn.calls.size ? "Thinking about the results…" : "Thinking…" }),
            )
          : null,
        turn.error ? h("div", { className: "error", text: turn.error }) : null,
        stop ? h("div", { className: "turn-actions" }, stop) : null,
      ),
    );
  }

  function renderTurn(turn) {
    if (turn.threadId !== selected || loading) return;
    const wasAtBottom = nearBottom();
    const existing = historyEl.querySelector(`li[data-turn-id="${CSS.escape(turn.id)}"]`);
    if (doneTurns.has(turn.id)) {
      if (existing) existing.remove();
      return;
    }
    const node = turnNode(turn);
    if (existing) existing.replaceWith(node);
    else historyEl.append(node);
    keepScrolled(wasAtBottom);
  }

  /** Removes a turn's preview; a done turn's late events are ignored, a forgotten one's are not. */
  function finishTurn(turn, { done = true } = {}) {
    if (done) doneTurns.add(turn.id);
    turns.delete(turn.id);
    clearTimeout(turn.graceTimer);
    const node = historyEl.querySelector(`li[data-turn-id="${CSS.escape(turn.id)}"]`);
    if (node) node.remove();
    renderList();
  }

  function finishTurnsOf(threadId, author) {
    for (const turn of [...turns.values()]) {
      if (turn.threadId === threadId && (turn.from.id === author.participant_id || turn.from.identity === author.identity))
        finishTurn(turn);
    }
  }

  client.on("threads.turn", (params) => {
    if (!params || typeof params.turn_id !== "string" || doneTurns.has(params.turn_id)) return;
    const turn = turnFor(params);
    const data = params.data || {};
    const wasLive = !turn.ended;
    switch (params.event) {
      case "started":
        turn.phase = "thinking";
        break;
      case "text":
        turn.text += typeof data.text === "string" ? data.text : "";
        turn.phase = "text";
        break;
      case "tool_call_started": {
        const call = turn.calls.get(data.call_id) || { call_id: data.call_id, status: "pending" };
        // The model's function name is `<toolkit>__<tool>` until the call runs and says which.
        if (data.name) call.name = String(data.name).replace(/^([A-Za-z][\w-]*?)__(.+)$/, "$1.$2");
        if (data.toolkit) Object.assign(call, { toolkit: data.toolkit, tool: data.tool, status: "running" });
        if (data.arguments !== undefined) call.arguments = data.arguments;
        turn.calls.set(data.call_id, call);
        turn.phase = "tools";
        break;
      }
      case "tool_call_progress": {
        const call = turn.calls.get(data.call_id);
        if (call) call.progress = data.progress;
        break;
      }
      case "tool_call_ended": {
        const call = turn.calls.get(data.call_id) || { call_id: data.call_id };
        call.status = data.status || "ok";
        turn.calls.set(data.call_id, call);
        const open = [...turn.calls.values()].some((c) => c.status === "pending" || c.status === "running");
        if (!open) turn.phase = "thinking";
        break;
      }
      case "ended":
        turn.ended = true;
        turn.status = data.status || "ok";
        // Its message was posted before this event: if it does not show up, read the thread again.
        turn.graceTimer = setTimeout(() => {
          if (!turns.has(turn.id)) return;
          finishTurn(turn);
          if (turn.threadId === selected) catchUp();
        }, ENDED_GRACE_MS);
        break;
      case "error":
        turn.error = typeof data.message === "string" ? data.message : "the turn failed";
        break;
      default:
        break;
    }
    renderTurn(turn);
    if (wasLive !== !turn.ended || params.event === "started") renderList();
  });

  // -- the room's thread notifications -----------------------------------------------------------

  client.on("threads.created", (params) => {
    if (!params || !params.thread || threads.has(params.thread.id)) return;
    putThread(params.thread, { top: true });
    renderList();
  });

  client.on("threads.message", async (params) => {
    const message = params && params.message;
    if (!message) return;
    const threadId = params.thread_id;
    // The turn's message replaces its live preview.
    finishTurnsOf(threadId, message.author || {});
    if (threadId === selected) putMessage(message);
    else unread.set(threadId, (unread.get(threadId) || 0) + 1);
    const known = threads.get(threadId);
    if (known) {
      putThread(
        { ...known, last_seq: Math.max(known.last_seq || 0, message.seq), updated_at: message.created_at || known.updated_at },
        { top: true },
      );
      if (threadId === selected) renderHeader();
    } else {
      // A thread beyond the pages listed so far: its record, to list it on top.
      try {
        const page = await client.invoke("threads", "get", { thread_id: threadId, since_seq: message.seq, limit: 1 });
        putThread(page.thread, { top: true });
      } catch {
        return; // deleted meanwhile, or not readable
      }
    }
    renderList();
  });

  client.on("threads.message_updated", (params) => {
    if (params && params.thread_id === selected && params.message) putMessage(params.message);
  });

  client.on("threads.deleted", (params) => {
    const threadId = params && params.thread_id;
    if (!threadId) return;
    threads.delete(threadId);
    order = order.filter((id) => id !== threadId);
    unread.delete(threadId);
    if (threadId === selected) {
      select(null, { push: false });
      conversationError.textContent = "This thread was deleted.";
      conversationError.hidden = false;
    }
    renderList();
  });

  client.on("connection.state", ({ state }) => {
    renderHeader();
    if (state !== "connected") return;
    if (!connectedOnce) {
      connectedOnce = true;
      loadThreads({ reset: true });
      const fromUrl = new URL(window.location.href).searchParams.get("thread");
      if (fromUrl) select(fromUrl, { push: false });
    } else {
      // Notifications may have been missed while the connection was down. Turns elsewhere show
      // again with their next event; the selected thread's end when their message is read.
      for (const turn of [...turns.values()]) if (turn.threadId !== selected) finishTurn(turn, { done: false });
      loadThreads({ reset: true });
      catchUp();
    }
  });

  renderHeader();
  renderList();
  return { select, loadThreads, turns };
}
