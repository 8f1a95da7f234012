// The room page's Agents panel: the agents present and the services that can be called in
// (`agents.list`), each with its title, description and schemas; "Call into this room"
// (`agents.call`), "Ask" a TaskRunner through a form made from its input schema (`agents.ask`),
// and "Stop" a service's running agent (Studio's stop endpoint, which stops its dispatch).
import { h } from "./studio-dom.js";
import { schemaForm } from "./studio-schema-form.js";

const ASK_TIMEOUT_S = 120;

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function describe(error) {
  return `${error.message}${error.code ? ` (${error.code})` : ""}`;
}

/** Mounts the panel on `client`; returns `{refresh}`. */
export function mountAgents(client) {
  const panel = document.getElementById("agents-panel");
  const list = document.getElementById("agents");
  const empty = document.getElementById("agents-empty");
  const errorEl = document.getElementById("agents-error");
  const openAsks = new Map(); // agent name → its open ask form (kept across refreshes)
  let timer = null;
  let generation = 0;

  function showError(message) {
    errorEl.textContent = message;
    errorEl.hidden = !message;
  }

  function schemaDetails(label, schema) {
    if (!schema) return null;
    return h("details", { className: "agent-schema" }, h("summary", { text: label }), h("pre", { className: "result", text: JSON.stringify(schema, null, 2) }));
  }

  function askBox(agent) {
    const key = agent.name.replace(/[^a-zA-Z0-9_-]/g, "_");
    const form = schemaForm(agent.input_schema || { type: "object" }, { prefix: `agent-${key}` });
    const result = h("pre", { className: "result agent-result", "data-status": "idle", "aria-live": "polite", text: "" });
    result.hidden = true;
    const submit = h("button", { type: "submit", text: `Ask ${agent.title || agent.name}` });
    const box = h("form", { className: "agent-ask", novalidate: true, "aria-label": `Ask ${agent.name}` }, form.element, h("div", { className: "actions" }, submit), result);
    box.addEventListener("submit", async (event) => {
      event.preventDefault();
      const { value, errors } = form.read();
      result.hidden = false;
      if (errors.length) {
        result.dataset.status = "error";
        result.textContent = `Check the form: ${errors.map((e) => `${e.path} ${e.message}`).join("; ")}`;
        return;
      }
      submit.disabled = true;
      result.dataset.status = "pending";
      result.textContent = `Asking ${agent.name}…`;
      try {
        const answer = await client.invoke("agents", "ask", { agent: agent.name, arguments: value ?? {}, timeout: ASK_TIMEOUT_S }, {
          onProgress: (progress) => {
            result.textContent = JSON.stringify({ progress }, null, 2);
          },
        });
        result.dataset.status = "ok";
        result.textContent = JSON.stringify(answer, null, 2);
      } catch (error) {
        result.dataset.status = "error";
        result.textContent = `Failed: ${describe(error)}`;
      } finally {
        submit.disabled = false;
      }
    });
    return box;
  }

  async function call(agent, button) {
    button.disabled = true;
    showError("");
    try {
      await client.invoke("agents", "call", { name: agent.name });
    } catch (error) {
      showError(`Could not call ${agent.name} into the room: ${describe(error)}`);
    } finally {
      button.disabled = false;
      refreshSoon(0);
    }
  }

  async function stop(agent, button) {
    button.disabled = true;
    showError("");
    try {
      const response = await fetch(panel.dataset.stopUrl.replace("NAME", encodeURIComponent(agent.name)), {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      });
      const body = await response.json().catch(() => null);
      if (!response.ok) throw new Error((body && body.error && body.error.message) || `HTTP ${response.status}`);
    } catch (error) {
      showError(`Could not stop ${agent.name}: ${error.message}`);
      button.disabled = false;
    }
  }

  function render(agents) {
    list.replaceChildren(
      ...agents.map((agent) => {
        const buttons = [];
        if (agent.callable && (!agent.present || agent.allow_multiple)) {
          const button = h("button", { type: "button", className: "secondary", text: "Call into this room" });
          button.addEventListener("click", () => call(agent, button));
          buttons.push(button);
        }
        if (agent.present && agent.input_schema) {
          const button = h("button", { type: "button", className: "secondary", "aria-expanded": String(openAsks.has(agent.name)), text: "Ask…" });
          button.addEventListener("click", () => {
            if (openAsks.has(agent.name)) openAsks.delete(agent.name);
            else openAsks.set(agent.name, askBox(agent));
            render(agents);
          });
          buttons.push(button);
        }
        if (agent.present && agent.callable) {
          const button = h("button", { type: "button", className: "secondary danger", text: "Stop" });
          button.addEventListener("click", () => stop(agent, button));
          buttons.push(button);
        }
        if (!agent.present) openAsks.delete(agent.name);
        return h(
          "li",
          { className: "agent", "data-agent": agent.name, "data-present": String(Boolean(agent.present)) },
          h(
            "div",
            { className: "agent-head" },
            h("strong", { className: "agent-title", text: agent.title || agent.name }),
            agent.title ? h("code", { className: "muted", text: agent.name }) : null,
            h("span", { className: `badge ${agent.present ? "status-ok" : ""}`, text: agent.present ? "present" : "not in the room" }),
            agent.kind ? h("span", { className: "badge", text: agent.kind }) : null,
          ),
          agent.description ? h("p", { className: "description", text: agent.description }) : null,
          schemaDetails("Input schema", agent.input_schema),
          schemaDetails("Output schema", agent.output_schema),
          buttons.length ? h("div", { className: "actions" }, ...buttons) : null,
          openAsks.get(agent.name) || null,
        );
      }),
    );
    document.getElementById("agent-count").textContent = String(agents.length);
    empty.hidden = agents.length > 0;
  }

  async function refresh() {
    const mine = ++generation;
    try {
      const { agents } = await client.invoke("agents", "list", {});
      if (mine === generation) render(agents || []);
      showError("");
    } catch (error) {
      if (mine === generation) showError(`Could not list the agents: ${describe(error)}`);
    }
  }

  function refreshSoon(delay = 250) {
    clearTimeout(timer);
    timer = setTimeout(refresh, delay);
  }

  document.getElementById("agents-refresh").addEventListener("click", () => refreshSoon(0));
  client.on("connection.state", ({ state }) => {
    if (state === "connected") refreshSoon(0);
  });
  for (const method of ["participant.joined", "participant.left", "participant.updated"]) client.on(method, () => refreshSoon());
  return { refresh };
}
