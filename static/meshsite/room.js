// Meshsite room client for browsers: protocol version 1 (docs/protocol.md), no dependencies,
// no build step. Import it as an ES module:
//
//   import { RoomClient, registerUiToolkit } from "/static/meshsite/room.js";
//   const room = await RoomClient.connect("ws://localhost:8000/rooms/lobby/ws", token);
//   room.on("messaging.message", (params) => console.log(params.message));
//   const output = await room.invoke("participants", "list", {});
//
// The token is a string, or a function (sync or async) returning one. With a function the client
// asks it again for every reconnect, and shortly before the token expires it asks for a fresh one
// and sends it with `connection.refresh_token`, so the connection never reaches 4408. The function
// gets {reason: "connect" | "refresh"}.

export const PROTOCOL_VERSION = 1;

// Close codes after which reconnecting cannot help (section 1 of the protocol).
const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_FORBIDDEN = 4403;
const CLOSE_TOKEN_EXPIRED = 4408;
const CLOSE_REPLACED = 4409;

const WS_OPEN = 1;
const NAME_RE = /^[a-zA-Z][a-zA-Z0-9_.-]{0,63}$/;

/** A JSON-RPC error: from the server, from a tool's host, or raised locally (timeouts, lost connection). */
export class RpcError extends Error {
  constructor(code, message, data = null) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
  }

  /** `data.type` from the protocol's error table ("timeout", "tool_failed", …), or null. */
  get type() {
    return this.data && typeof this.data === "object" && typeof this.data.type === "string" ? this.data.type : null;
  }

  static fromObject(error) {
    if (!error || typeof error !== "object") return new RpcError(-32603, "malformed error object", { raw: error });
    const code = Number.isInteger(error.code) ? error.code : -32603;
    return new RpcError(code, String(error.message ?? "error"), error.data ?? null);
  }

  toJSON() {
    return { code: this.code, message: this.message, data: this.data };
  }
}

/**
 * The connection is not usable: refused, lost or closed. `closeCode`/`reason` come from the
 * server's `connection.closing` notification when it sent one. Its JSON-RPC code is -32012
 * ("unavailable"): pending requests fail with it when the connection drops.
 */
export class ConnectionError extends RpcError {
  constructor(message, { closeCode = null, reason = "", fatal = false } = {}) {
    super(-32012, message, { type: "unavailable", close_code: closeCode, reason });
    this.name = "ConnectionError";
    this.closeCode = closeCode;
    this.reason = reason;
    this.fatal = fatal;
  }
}

/** Why a hosted call was stopped: `ctx.signal.reason` after a `tools.cancelled`. */
export class CallCancelled extends Error {
  constructor(reason) {
    super(`the call was cancelled (${reason})`);
    this.name = "CallCancelled";
    this.reason = reason;
  }
}

function randomId(prefix) {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function absoluteWsUrl(wsUrl) {
  const base = typeof location !== "undefined" ? location.href : undefined;
  const url = new URL(wsUrl, base);
  if (url.protocol === "http:") url.protocol = "ws:";
  if (url.protocol === "https:") url.protocol = "wss:";
  return url;
}

function describeClose(code, reason) {
  return reason ? `${reason} (close ${code})` : `close ${code}`;
}

export class RoomClient {
  /**
   * @param {string} wsUrl  ws[s]://HOST/rooms/<room>/ws (a relative or http URL is resolved against the page)
   * @param {string|function(): (string|Promise<string>)} token
   * @param {object} [options] reconnect (true), minBackoff / maxBackoff ms (500 / 15000),
   *   openTimeout ms (15000), requestTimeout seconds (30), WebSocket (the global one)
   */
  constructor(wsUrl, token, options = {}) {
    this.wsUrl = wsUrl;
    this.options = {
      reconnect: true,
      minBackoff: 500,
      maxBackoff: 15000,
      openTimeout: 15000,
      requestTimeout: 30,
      WebSocket: globalThis.WebSocket,
      ...options,
    };
    this._token = token;
    /** This connection's Participant record (its id changes on reconnect). */
    this.participant = null;
    /** Every participant present, this one included: Map id → Participant. */
    this.participants = new Map();
    /** Every toolkit this participant may invoke (Toolkit records, built-in and hosted). */
    this.toolkits = [];
    this.room = null;
    this.limits = {};
    /** The last `room.ready` params. */
    this.ready = null;
    /** "idle" | "connecting" | "connected" | "reconnecting" | "closed" */
    this.state = "idle";
    /** The last close: {code, reason}, from `connection.closing` when the server sent one. */
    this.closeInfo = null;

    this._link = null;
    this._nextId = 1;
    this._pending = new Map(); // request id → {resolve, reject, timer}
    this._listeners = new Map(); // method → Set(callback)
    this._hosted = new Map(); // toolkit name → definition (with handlers)
    this._calls = new Map(); // host-side call_id → {controller}
    this._progress = new Map(); // caller-side call_id → onProgress
    this._closing = false;
    this._opening = null;
    this._attempt = 0;
    this._reconnectTimer = null;
    this._refreshTimer = null;
  }

  /** Connects and resolves once `room.ready` arrived. */
  static async connect(wsUrl, token, options = {}) {
    const client = new RoomClient(wsUrl, token, options);
    await client.open();
    return client;
  }

  /** The reason the server gave in its last `connection.closing`, or "". */
  get closeReason() {
    return this.closeInfo ? this.closeInfo.reason || "" : "";
  }

  get connected() {
    return this.state === "connected";
  }

  /** Opens the connection (again, after `close()` or a fatal close). Resolves on `room.ready`. */
  open() {
    if (this._opening) return this._opening;
    if (this.state === "connected") return Promise.resolve(this);
    this._closing = false;
    this._clearReconnect();
    this._setState("connecting");
    this._opening = this._openLink().then(
      () => {
        this._opening = null;
        return this;
      },
      (error) => {
        this._opening = null;
        this._setState("closed", error.closeCode ?? null, error.reason || error.message);
        throw error;
      },
    );
    return this._opening;
  }

  /** Closes for good: no reconnect. Pending requests fail with a ConnectionError. */
  close() {
    this._closing = true;
    this._clearReconnect();
    this._clearRefresh();
    const link = this._link;
    this._link = null;
    if (link) {
      this._dropLink(link, new ConnectionError("the room client was closed", { fatal: true }));
      try {
        link.ws.close(1000);
      } catch {
        // already closing
      }
    }
    if (this.state !== "closed") this._setState("closed", 1000, "closed by the client");
  }

  // -- events ---------------------------------------------------------------------------------

  /**
   * Calls `callback(params, method)` for each notification `method` ("*": all of them). Besides
   * the server's notifications the client emits its own: `connection.state` {state, code, reason},
   * `toolkits.hosted` {toolkit} when one of its toolkits is (re-)registered, and
   * `connection.token_refreshed` {token_expires_at}.
   * Returns a function that removes the callback.
   */
  on(method, callback) {
    if (!this._listeners.has(method)) this._listeners.set(method, new Set());
    this._listeners.get(method).add(callback);
    return () => this.off(method, callback);
  }

  off(method, callback) {
    const set = this._listeners.get(method);
    if (set) set.delete(callback);
  }

  /** Resolves with the params of the next `method` notification that satisfies `predicate`. */
  waitFor(method, predicate = () => true, timeout = 10) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new RpcError(-32004, `no ${method} within ${timeout}s`, { type: "timeout", local: true }));
      }, timeout * 1000);
      const off = this.on(method, (params) => {
        if (!predicate(params)) return;
        clearTimeout(timer);
        off();
        resolve(params);
      });
    });
  }

  _emit(method, params) {
    for (const key of [method, "*"]) {
      const set = this._listeners.get(key);
      if (!set) continue;
      for (const callback of [...set]) {
        try {
          callback(params, method);
        } catch (error) {
          console.error(`meshsite: a ${key} listener failed`, error);
        }
      }
    }
  }

  _setState(state, code = null, reason = "") {
    this.state = state;
    this._emit("connection.state", { state, code, reason });
  }

  // -- requests -------------------------------------------------------------------------------

  /**
   * Sends a request and resolves with its `result`; rejects with an RpcError (ConnectionError
   * when the connection is not there or drops). `timeout` is in seconds.
   */
  request(method, params = {}, { timeout } = {}) {
    const link = this._link;
    if (!link || !link.ready || link.ws.readyState !== WS_OPEN) {
      return Promise.reject(new ConnectionError(`not connected (${this.state})`));
    }
    const id = this._nextId++;
    const seconds = timeout ?? this.options.requestTimeout;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new RpcError(-32004, `no answer to ${method} within ${seconds}s`, { type: "timeout", local: true }));
      }, seconds * 1000);
      this._pending.set(id, { resolve, reject, timer, link });
      try {
        link.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
      } catch (error) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(error instanceof RpcError ? error : new RpcError(-32602, `cannot send ${method}: ${error.message}`));
      }
    });
  }

  /**
   * Invokes `toolkit.tool` and resolves with the tool's `output`.
   * Options: participantId (the host; required for a private toolkit), onBehalfOfId,
   * timeout (seconds, sent to the server), callId, onProgress(progress), signal (an AbortSignal:
   * aborting sends `tools.cancel`, and the call rejects with -32011).
   */
  async invoke(toolkit, tool, args = {}, options = {}) {
    const { participantId, onBehalfOfId, timeout, onProgress, signal } = options;
    const callId = options.callId || randomId("c_");
    const params = { toolkit, tool, arguments: args ?? {}, call_id: callId };
    if (participantId) params.participant_id = participantId;
    if (onBehalfOfId) params.on_behalf_of_id = onBehalfOfId;
    if (timeout != null) params.timeout = timeout;
    const serverTimeout = timeout ?? this.limits.default_timeout ?? 60;
    if (signal && signal.aborted) throw new RpcError(-32011, "the call was cancelled before it started", { type: "cancelled" });
    const onAbort = () => this.cancel(callId).catch(() => {});
    if (onProgress) this._progress.set(callId, onProgress);
    if (signal) signal.addEventListener("abort", onAbort, { once: true });
    try {
      // The server answers by the deadline; the margin only covers a silent network.
      const result = await this.request("tools.invoke", params, { timeout: serverTimeout + 10 });
      return result.output;
    } finally {
      this._progress.delete(callId);
      if (signal) signal.removeEventListener("abort", onAbort);
    }
  }

  /** Cancels a pending invoke by its call_id. */
  cancel(callId) {
    return this.request("tools.cancel", { call_id: callId });
  }

  ping() {
    return this.request("ping", {});
  }

  /** Merges attributes (null deletes a key); resolves with the updated Participant. */
  async setAttributes(attributes) {
    const result = await this.request("participant.set_attributes", { attributes });
    this._putParticipant(result.participant);
    return result.participant;
  }

  sendMessage(to, type, message) {
    return this.invoke("messaging", "send", { to, type, message });
  }

  broadcast(type, message) {
    return this.invoke("messaging", "broadcast", { type, message });
  }

  async listParticipants() {
    return (await this.invoke("participants", "list", {})).participants;
  }

  async listToolkits(participantId = null) {
    const params = participantId ? { participant_id: participantId } : {};
    return (await this.request("toolkits.list", params)).toolkits;
  }

  // -- hosting --------------------------------------------------------------------------------

  /**
   * Registers a toolkit this tab hosts: {name, description, public, tools: [{name, description,
   * input_schema, output_schema, handler(arguments, ctx)}]}. A handler may be async; what it
   * returns is the output; what it throws is answered as an error (-32009 to the caller).
   * `ctx` has callId, caller, onBehalfOf, deadline, signal (aborted on `tools.cancelled`) and
   * progress(value). The toolkit is registered again after every reconnect.
   * Resolves with the server's Toolkit record.
   */
  async registerToolkit(definition) {
    const toolkit = normalizeToolkit(definition);
    if (this._hosted.has(toolkit.name)) throw new Error(`this client already hosts a toolkit named ${toolkit.name}`);
    this._hosted.set(toolkit.name, toolkit);
    try {
      return await this._register(toolkit);
    } catch (error) {
      this._hosted.delete(toolkit.name);
      throw error;
    }
  }

  async unregisterToolkit(name) {
    this._hosted.delete(name);
    const result = await this.request("toolkits.unregister", { name });
    this._dropToolkit(name, this.participant && this.participant.id);
    return result;
  }

  /** Names of the toolkits this client hosts. */
  get hostedToolkits() {
    return [...this._hosted.keys()];
  }

  async _register(toolkit) {
    const result = await this.request("toolkits.register", wireToolkit(toolkit));
    this._putToolkit(result.toolkit);
    // The server tells everyone else (toolkits.changed); this is the host's own counterpart.
    this._emit("toolkits.hosted", { toolkit: result.toolkit });
    return result.toolkit;
  }

  async _restoreToolkits(toolkits) {
    for (const toolkit of toolkits) {
      if (this._hosted.get(toolkit.name) !== toolkit) continue; // unregistered meanwhile
      try {
        await this._register(toolkit);
      } catch (error) {
        console.error(`meshsite: could not register ${toolkit.name} again after reconnecting`, error);
        this._emit("toolkits.restore_failed", { name: toolkit.name, error: error.toJSON ? error.toJSON() : String(error) });
      }
    }
  }

  _handleCall(link, requestId, params) {
    const callId = typeof params.call_id === "string" && params.call_id ? params.call_id : String(requestId);
    const toolkit = this._hosted.get(params.toolkit);
    const tool = toolkit && toolkit.tools.find((t) => t.name === params.tool);
    if (!tool) {
      const what = toolkit ? `tool ${params.toolkit}.${params.tool}` : `toolkit ${params.toolkit}`;
      this._sendOn(link, errorResponse(requestId, -32002, `${what} is not hosted by this participant`, "not_found"));
      return;
    }
    const args = params.arguments ?? {};
    const controller = new AbortController();
    const entry = { controller };
    this._calls.set(callId, entry);
    const ctx = {
      callId,
      toolkit: toolkit.name,
      tool: tool.name,
      caller: params.caller || {},
      onBehalfOf: params.on_behalf_of || null,
      deadline: params.deadline ? new Date(params.deadline) : null,
      traceparent: (params._meta && params._meta.traceparent) || null,
      signal: controller.signal,
      room: this,
      progress: (value) =>
        this._sendOn(link, { jsonrpc: "2.0", method: "tools.progress", params: { call_id: callId, progress: value ?? null } }),
    };
    Promise.resolve()
      .then(() => tool.handler(args, ctx))
      .then(
        (output) => {
          if (controller.signal.aborted) return; // cancelled: the server drops late answers anyway
          this._sendOn(link, { jsonrpc: "2.0", id: requestId, result: output === undefined ? null : output });
        },
        (error) => {
          if (controller.signal.aborted) return;
          const message = (error && error.message) || String(error) || "the tool failed";
          const data = { type: "tool_failed" };
          if (error instanceof RpcError) data.host_error = error.toJSON();
          this._sendOn(link, errorResponse(requestId, -32009, message, "tool_failed", data));
        },
      )
      .finally(() => {
        if (this._calls.get(callId) === entry) this._calls.delete(callId);
      });
  }

  _cancelCall(callId, reason) {
    const entry = this._calls.get(callId);
    if (!entry) return;
    this._calls.delete(callId);
    entry.controller.abort(new CallCancelled(reason || "cancelled"));
  }

  // -- the connection -------------------------------------------------------------------------

  async _openLink() {
    const token = typeof this._token === "function" ? await this._token({ reason: "connect" }) : this._token;
    if (typeof token !== "string" || !token) {
      throw new ConnectionError("no token to connect with", { fatal: true });
    }
    const url = absoluteWsUrl(this.wsUrl);
    url.searchParams.set("token", token);
    // A reconnect names the participant it was, so the server retires it at once (after a server
    // crash it may otherwise linger, holding this tab's toolkit names, until declared lost).
    if (this.participant) url.searchParams.set("replaces", this.participant.id);
    const ws = new this.options.WebSocket(url.toString());
    const link = { ws, ready: false, closing: null, settle: null, abandoned: false, pendingReady: null };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        link.settle = null;
        link.abandoned = true;
        try {
          ws.close();
        } catch {
          // never opened
        }
        reject(new ConnectionError(`no room.ready within ${this.options.openTimeout} ms`));
      }, this.options.openTimeout);
      link.settle = (error) => {
        clearTimeout(timer);
        link.settle = null;
        if (error) reject(error);
        else resolve();
      };
      ws.onmessage = (event) => this._onFrame(link, event.data);
      ws.onclose = (event) => this._onClose(link, event);
      ws.onerror = () => {}; // a close event follows, with what there is to know
    });
  }

  _sendOn(link, message) {
    if (!link || link.ws.readyState !== WS_OPEN) return false;
    try {
      link.ws.send(JSON.stringify(message));
      return true;
    } catch (error) {
      if (message.id !== undefined && "result" in message) {
        // The output could not be serialised: answer an error instead of leaving the caller waiting.
        return this._sendOn(link, errorResponse(message.id, -32009, `the output is not JSON: ${error.message}`, "tool_failed"));
      }
      console.error("meshsite: cannot send a frame", error);
      return false;
    }
  }

  _onFrame(link, data) {
    if (link.abandoned || typeof data !== "string") return; // the protocol only uses text frames
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      console.warn("meshsite: ignoring a frame that is not JSON", data.slice(0, 200));
      return;
    }
    if (!message || typeof message !== "object" || Array.isArray(message)) return;
    if (typeof message.method === "string") {
      const params = message.params && typeof message.params === "object" ? message.params : {};
      if (message.id !== undefined && message.id !== null) this._onRequest(link, message.id, message.method, params);
      else this._onNotification(link, message.method, params);
      return;
    }
    const pending = this._pending.get(message.id);
    if (!pending) return;
    this._pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.error) pending.reject(RpcError.fromObject(message.error));
    else pending.resolve(message.result);
  }

  _onRequest(link, requestId, method, params) {
    if (method === "tools.call") {
      this._handleCall(link, requestId, params);
      return;
    }
    this._sendOn(link, errorResponse(requestId, -32601, `unknown method ${method}`, "method_not_found"));
  }

  _onNotification(link, method, params) {
    switch (method) {
      case "room.snapshot":
        // The rest of a room.ready too large for one frame.
        if (!link.pendingReady) return;
        for (const key of ["participants", "toolkits"]) {
          if (Array.isArray(params[key])) link.pendingReady[key].push(...params[key]);
        }
        if (params.complete !== false) {
          const ready = { ...link.pendingReady, complete: true };
          link.pendingReady = null;
          this._onNotification(link, "room.ready", ready);
        }
        return;
      case "room.ready":
        if (params.complete === false) {
          link.pendingReady = {
            ...params,
            participants: [...(params.participants || [])],
            toolkits: [...(params.toolkits || [])],
          };
          return; // "room.ready" is emitted once, complete
        }
        if (this._closing) {
          // close() was called while this connection was opening.
          link.abandoned = true;
          if (link.settle) link.settle(new ConnectionError("the room client was closed", { fatal: true }));
          link.ws.close(1000);
          return;
        }
        this._loadReady(params);
        link.ready = true;
        this._link = link;
        this._attempt = 0;
        this.closeInfo = null;
        {
          // What this client hosted before: listeners of "connected" may register more.
          const restore = [...this._hosted.values()];
          this._scheduleRefresh(params.token_expires_at);
          this._setState("connected");
          if (link.settle) link.settle(null);
          if (restore.length) this._restoreToolkits(restore);
        }
        break;
      case "connection.closing":
        link.closing = { code: params.code, reason: params.reason || "" };
        this.closeInfo = link.closing;
        break;
      case "participant.joined":
      case "participant.updated":
        if (params.participant) this._putParticipant(params.participant);
        break;
      case "participant.left":
        this.participants.delete(params.participant_id);
        this.toolkits = this.toolkits.filter((t) => t.participant_id !== params.participant_id);
        break;
      case "toolkits.changed":
        if (params.action === "registered" && params.toolkit) this._putToolkit(params.toolkit);
        else if (params.action === "unregistered" && params.toolkit)
          this._dropToolkit(params.toolkit.name, params.toolkit.participant_id);
        break;
      case "tools.cancelled":
        this._cancelCall(params.call_id, params.reason);
        break;
      case "tools.progress": {
        const callback = this._progress.get(params.call_id);
        if (callback) {
          try {
            callback(params.progress);
          } catch (error) {
            console.error("meshsite: an onProgress callback failed", error);
          }
        }
        break;
      }
      default:
        break;
    }
    this._emit(method, params);
  }

  _onClose(link, event) {
    const code = link.closing ? link.closing.code : event.code;
    const reason = link.closing ? link.closing.reason : event.reason || "";
    this.closeInfo = { code, reason };
    const fatal =
      code === CLOSE_UNAUTHORIZED ||
      code === CLOSE_FORBIDDEN ||
      code === CLOSE_REPLACED ||
      (code === CLOSE_TOKEN_EXPIRED && typeof this._token !== "function");
    const error = new ConnectionError(`the connection to the room closed: ${describeClose(code, reason)}`, {
      closeCode: code,
      reason,
      fatal,
    });
    this._dropLink(link, error);
    if (link.ready && this._link === link) this._clearRefresh();
    if (!link.ready) {
      // Still opening: whoever opens it (open() or the reconnect loop) decides.
      if (link.settle) link.settle(error);
      return;
    }
    if (this._link !== link) return; // an old link, or close() already handled it
    this._link = null;
    if (this._closing) return;
    if (fatal || !this.options.reconnect) {
      this._setState("closed", code, reason);
      return;
    }
    this._setState("reconnecting", code, reason);
    this._scheduleReconnect();
  }

  _dropLink(link, error) {
    for (const [id, pending] of this._pending) {
      if (pending.link !== link) continue;
      this._pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    for (const callId of [...this._calls.keys()]) this._cancelCall(callId, "connection lost");
  }

  /**
   * Replaces the connection's token with a newer one for the same project, room, identity and
   * role (`connection.refresh_token`); resolves with the new expiry as a Date.
   */
  async refreshToken(token) {
    const result = await this.request("connection.refresh_token", { token });
    const expiresAt = parseExpiry(result.token_expires_at);
    this._scheduleRefresh(result.token_expires_at);
    this._emit("connection.token_refreshed", { token_expires_at: result.token_expires_at });
    return expiresAt;
  }

  _scheduleRefresh(expiresAt) {
    this._clearRefresh();
    const expiry = parseExpiry(expiresAt);
    if (typeof this._token !== "function" || !expiry) return;
    const lifetime = expiry.getTime() - Date.now();
    // A minute ahead (a fifth of the lifetime for short-lived tokens), never in a busy loop.
    const delay = Math.max(1000, lifetime - Math.min(60_000, lifetime / 5));
    this._refreshTimer = setTimeout(() => this._refresh(expiry), Math.min(delay, 2 ** 31 - 1));
  }

  async _refresh(expiry) {
    this._refreshTimer = null;
    if (!this.connected) return;
    try {
      const token = await this._token({ reason: "refresh" });
      await this.refreshToken(token);
    } catch (error) {
      console.warn("meshsite: could not refresh the token", error);
      // Try again while the old token lasts; after that the server closes with 4408 and the
      // reconnect asks the token function again.
      if (this.connected && expiry.getTime() - Date.now() > 2000) {
        this._refreshTimer = setTimeout(() => this._refresh(expiry), Math.min(10_000, (expiry.getTime() - Date.now()) / 2));
      }
    }
  }

  _clearRefresh() {
    if (this._refreshTimer !== null) clearTimeout(this._refreshTimer);
    this._refreshTimer = null;
  }

  _scheduleReconnect() {
    this._clearReconnect();
    const ceiling = Math.min(this.options.maxBackoff, this.options.minBackoff * 2 ** this._attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2); // jitter spreads a room's reconnects
    this._attempt += 1;
    this._reconnectTimer = setTimeout(async () => {
      this._reconnectTimer = null;
      if (this._closing) return;
      try {
        await this._openLink();
      } catch (error) {
        if (this._closing) return;
        if (error.fatal) {
          this._setState("closed", error.closeCode, error.reason || error.message);
          return;
        }
        this._emit("connection.state", {
          state: "reconnecting",
          code: error.closeCode ?? null,
          reason: error.reason || error.message,
        });
        this._scheduleReconnect();
      }
    }, delay);
  }

  _clearReconnect() {
    if (this._reconnectTimer !== null) clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
  }

  // -- state ----------------------------------------------------------------------------------

  _loadReady(params) {
    this.ready = params;
    this.room = params.room || null;
    this.limits = params.limits || {};
    this.participant = params.participant || null;
    this.participants = new Map((params.participants || []).map((p) => [p.id, p]));
    if (this.participant) this.participants.set(this.participant.id, this.participant);
    this.toolkits = [...(params.toolkits || [])];
  }

  _putParticipant(participant) {
    this.participants.set(participant.id, participant);
    if (this.participant && this.participant.id === participant.id) this.participant = participant;
  }

  _putToolkit(toolkit) {
    this.toolkits = this.toolkits.filter(
      (t) => !(t.name === toolkit.name && (t.participant_id ?? null) === (toolkit.participant_id ?? null)),
    );
    this.toolkits.push(toolkit);
  }

  _dropToolkit(name, participantId) {
    this.toolkits = this.toolkits.filter(
      (t) => !(t.name === name && (t.participant_id ?? null) === (participantId ?? null)),
    );
  }
}

function parseExpiry(value) {
  if (typeof value === "number") return new Date(value * 1000); // unix seconds
  if (typeof value === "string" && value) {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? null : date;
  }
  return null;
}

function errorResponse(id, code, message, type, data = null) {
  return { jsonrpc: "2.0", id, error: { code, message, data: data || { type } } };
}

function normalizeToolkit(definition) {
  if (!definition || typeof definition !== "object") throw new TypeError("a toolkit definition is an object");
  const { name, description = "", tools = [] } = definition;
  if (!NAME_RE.test(name || "")) throw new TypeError(`invalid toolkit name ${JSON.stringify(name)}`);
  if (!Array.isArray(tools)) throw new TypeError("tools must be an array");
  const seen = new Set();
  const normalized = tools.map((tool) => {
    if (!tool || !NAME_RE.test(tool.name || "")) throw new TypeError(`invalid tool name ${JSON.stringify(tool && tool.name)}`);
    if (seen.has(tool.name)) throw new TypeError(`duplicate tool ${tool.name}`);
    seen.add(tool.name);
    if (typeof tool.handler !== "function") throw new TypeError(`tool ${tool.name} has no handler function`);
    return {
      name: tool.name,
      description: tool.description || "",
      input_schema: tool.input_schema || { type: "object" },
      output_schema: tool.output_schema ?? null,
      handler: tool.handler,
    };
  });
  return { name, description, public: definition.public !== false, tools: normalized };
}

function wireToolkit(toolkit) {
  return {
    name: toolkit.name,
    description: toolkit.description,
    public: toolkit.public,
    tools: toolkit.tools.map(({ name, description, input_schema, output_schema }) => ({
      name,
      description,
      input_schema,
      output_schema,
    })),
  };
}

// -- the `ui` toolkit: lets agents reach the person in front of this tab ------------------------

const TOAST_LEVELS = ["info", "success", "warning", "error"];

function el(doc, tag, attributes = {}, ...children) {
  const node = doc.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child);
  }
  return node;
}

function region(root, id, className, attributes) {
  const doc = root.ownerDocument;
  let node = doc.getElementById(id);
  if (!node) {
    node = el(doc, "div", { id, className, ...attributes });
    root.append(node);
  }
  return node;
}

function callerName(ctx) {
  const caller = ctx.onBehalfOf || ctx.caller || {};
  return caller.name || caller.identity || "someone";
}

/**
 * Registers the PRIVATE toolkit `ui` on `room`, rendering into `rootElement`:
 * `ui.show_toast {message, level?}` → {"shown": true} and
 * `ui.ask_user {question, choices?, schema?}` → {"answer": …} once the person answers (declining
 * fails the call). A `schema` (JSON Schema of an object) asks with a form, when the page passes
 * `renderForm(schema, {prefix})` → `{element, read() → {value, errors}}`; the answer is the
 * filled-in object. With `pickFile(file, ctx)` → a file reference (the page stores the file), the
 * toolkit also has `ui.ask_user_file {question, accept?}` → {"file": reference}.
 * Resolves with the server's Toolkit record.
 */
export function registerUiToolkit(room, rootElement, { toastMs = 10000, renderForm = null, pickFile = null } = {}) {
  const doc = rootElement.ownerDocument;
  const toasts = region(rootElement, "ui-toasts", "mesh-toasts", { role: "region", "aria-label": "Notifications" });
  const dialogs = region(rootElement, "ui-dialogs", "mesh-dialogs", { role: "region", "aria-label": "Questions" });

  function showToast(args, ctx) {
    const level = TOAST_LEVELS.includes(args.level) ? args.level : "info";
    const dismiss = el(doc, "button", { type: "button", className: "mesh-toast-dismiss", text: "Dismiss" });
    const toast = el(
      doc,
      "div",
      {
        className: `mesh-toast mesh-toast-${level}`,
        role: level === "error" || level === "warning" ? "alert" : "status",
        "data-level": level,
        "data-call-id": ctx.callId,
      },
      el(doc, "p", { className: "mesh-toast-message", text: args.message }),
      el(doc, "p", { className: "mesh-toast-from", text: `from ${callerName(ctx)}` }),
      dismiss,
    );
    const remove = () => toast.remove();
    dismiss.addEventListener("click", remove);
    if (toastMs > 0 && level !== "error") setTimeout(remove, toastMs);
    toasts.prepend(toast);
    return { shown: true };
  }

  function askUser(args, ctx) {
    return new Promise((resolve, reject) => {
      const key = ctx.callId.replace(/[^a-zA-Z0-9_-]/g, "_");
      const questionId = `ask-${key}-question`;
      const dialog = el(doc, "section", {
        className: "mesh-ask",
        role: "dialog",
        "aria-labelledby": questionId,
        "data-call-id": ctx.callId,
      });
      const finish = (error, answer) => {
        dialog.remove();
        ctx.signal.removeEventListener("abort", onAbort);
        if (error) reject(error);
        else resolve({ answer });
      };
      const onAbort = () => finish(ctx.signal.reason || new CallCancelled("cancelled"));
      ctx.signal.addEventListener("abort", onAbort, { once: true });

      dialog.append(
        el(doc, "p", { className: "mesh-ask-from", text: `${callerName(ctx)} asks:` }),
        el(doc, "p", { className: "mesh-ask-question", id: questionId, text: args.question }),
      );
      let focus;
      if (args.schema && renderForm) {
        const form = renderForm(args.schema, { prefix: `ask-${key}` });
        const formEl = el(
          doc,
          "form",
          { className: "mesh-ask-schema", novalidate: true },
          form.element,
          el(doc, "div", { className: "actions" }, el(doc, "button", { type: "submit", className: "mesh-ask-submit", text: "Send" })),
        );
        formEl.addEventListener("submit", (event) => {
          event.preventDefault();
          const { value, errors } = form.read();
          if (!errors.length) finish(null, value ?? {});
        });
        dialog.append(formEl);
        focus = formEl.querySelector("input, select, textarea");
      } else if (args.schema) {
        finish(new Error("this client cannot show forms"));
        return;
      } else if (Array.isArray(args.choices) && args.choices.length) {
        const group = el(doc, "div", { className: "mesh-ask-choices", role: "group", "aria-labelledby": questionId });
        for (const choice of args.choices) {
          const button = el(doc, "button", { type: "button", className: "mesh-ask-choice", text: choice });
          button.addEventListener("click", () => finish(null, choice));
          group.append(button);
          focus = focus || button;
        }
        dialog.append(group);
      } else {
        const inputId = `ask-${key}-input`;
        const input = el(doc, "input", { type: "text", id: inputId, className: "mesh-ask-input", autocomplete: "off" });
        const form = el(
          doc,
          "form",
          { className: "mesh-ask-form" },
          el(doc, "label", { for: inputId, text: "Your answer" }),
          input,
          el(doc, "button", { type: "submit", className: "mesh-ask-submit", text: "Answer" }),
        );
        form.addEventListener("submit", (event) => {
          event.preventDefault();
          finish(null, input.value);
        });
        dialog.append(form);
        focus = input;
      }
      const decline = el(doc, "button", { type: "button", className: "mesh-ask-decline", text: "Decline" });
      decline.addEventListener("click", () => finish(new Error("the person declined to answer")));
      dialog.append(decline);
      dialogs.append(dialog);
      if (focus) focus.focus();
    });
  }

  return room.registerToolkit({
    name: "ui",
    description: "Reach the person using this browser tab: notifications and questions.",
    public: false,
    tools: [
      {
        name: "show_toast",
        description: "Show a short notification to the person.",
        input_schema: {
          type: "object",
          properties: {
            message: { type: "string", minLength: 1, maxLength: 2000 },
            level: { type: "string", enum: TOAST_LEVELS, default: "info" },
          },
          required: ["message"],
          additionalProperties: false,
          examples: [{ message: "Hello from the Studio", level: "info" }],
        },
        output_schema: {
          type: "object",
          properties: { shown: { type: "boolean" } },
          required: ["shown"],
        },
        handler: showToast,
      },
      {
        name: "ask_user",
        description: "Ask the person a question; answers with their choice or text. Fails if they decline.",
        input_schema: {
          type: "object",
          properties: {
            question: { type: "string", minLength: 1, maxLength: 2000 },
            choices: {
              type: "array",
              items: { type: "string", minLength: 1, maxLength: 200 },
              minItems: 1,
              maxItems: 20,
            },
            schema: {
              type: "object",
              description: "A JSON Schema of an object: the person fills in a form and the answer is that object.",
            },
          },
          required: ["question"],
          additionalProperties: false,
          examples: [{ question: "Shall I go ahead?", choices: ["Yes", "No"] }],
        },
        output_schema: {
          type: "object",
          properties: { answer: { type: ["string", "object"] } },
          required: ["answer"],
        },
        handler: askUser,
      },
      ...(pickFile ? [askUserFileTool()] : []),
    ],
  });

  // `ui.ask_user_file`: the person picks a file; `pickFile` stores it and gives its reference.
  function askUserFileTool() {
    const handler = (args, ctx) =>
      new Promise((resolve, reject) => {
        const key = ctx.callId.replace(/[^a-zA-Z0-9_-]/g, "_");
        const questionId = `ask-${key}-question`;
        const inputId = `ask-${key}-file`;
        const dialog = el(doc, "section", { className: "mesh-ask mesh-ask-file", role: "dialog", "aria-labelledby": questionId, "data-call-id": ctx.callId });
        const input = el(doc, "input", { type: "file", id: inputId, className: "mesh-ask-input", accept: args.accept || null });
        const status = el(doc, "p", { className: "mesh-ask-status", role: "status" });
        const upload = el(doc, "button", { type: "submit", className: "mesh-ask-submit", text: "Upload" });
        const form = el(doc, "form", { className: "mesh-ask-form" }, el(doc, "label", { for: inputId, text: "File" }), input, upload);
        const decline = el(doc, "button", { type: "button", className: "mesh-ask-decline", text: "Decline" });
        const finish = (error, file) => {
          dialog.remove();
          ctx.signal.removeEventListener("abort", onAbort);
          if (error) reject(error);
          else resolve({ file });
        };
        const onAbort = () => finish(ctx.signal.reason || new CallCancelled("cancelled"));
        ctx.signal.addEventListener("abort", onAbort, { once: true });
        form.addEventListener("submit", async (event) => {
          event.preventDefault();
          const file = input.files && input.files[0];
          if (!file) {
            status.textContent = "Choose a file first.";
            return;
          }
          upload.disabled = true;
          status.textContent = `Uploading ${file.name}…`;
          try {
            const reference = await pickFile(file, ctx);
            if (!ctx.signal.aborted) finish(null, reference);
          } catch (error) {
            // The person may try again (another file, a retry) or decline.
            status.textContent = `Upload failed: ${error.message}`;
            upload.disabled = false;
          }
        });
        decline.addEventListener("click", () => finish(new Error("the person declined to answer")));
        dialog.append(
          el(doc, "p", { className: "mesh-ask-from", text: `${callerName(ctx)} asks:` }),
          el(doc, "p", { className: "mesh-ask-question", id: questionId, text: args.question }),
          form,
          status,
          decline,
        );
        dialogs.append(dialog);
        input.focus();
      });
    return {
      name: "ask_user_file",
      description: "Ask the person for a file; it is stored in the room's storage and the answer is its reference. Fails if they decline.",
      input_schema: {
        type: "object",
        properties: {
          question: { type: "string", minLength: 1, maxLength: 2000 },
          accept: { type: "string", maxLength: 200, description: "File types to offer, as in <input accept>: '.csv,image/*'." },
        },
        required: ["question"],
        additionalProperties: false,
        examples: [{ question: "Which file should I read?" }],
      },
      output_schema: { type: "object", properties: { file: { type: "object" } }, required: ["file"] },
      handler,
    };
  }
}
