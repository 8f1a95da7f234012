// Forms from JSON Schema, for the tool invoker and for `ui.ask_user` forms.
//
// A small renderer of our own (no build step, no dependency): objects (nested), arrays (add and
// remove items), enums, strings (with formats), numbers and integers with bounds, booleans, `const`,
// defaults, titles, descriptions and `examples` as pre-fill. Local `$ref`s (`#/$defs/…`) are
// followed a few levels deep. Whatever it cannot render as fields (anyOf/oneOf, untyped values,
// deeper recursion) becomes a JSON text field for that part only, so any schema stays usable.
// The browser's answer is checked here for a clear message; the server validates it again.

import { h } from "./studio-dom.js";

const MAX_DEPTH = 12;
const FORMAT_INPUT = { email: "email", uri: "url", date: "date", "date-time": "datetime-local", time: "time" };

/** The value a form starts with: the schema's first example, else its default, else undefined. */
export function initialValue(schema) {
  if (!schema || typeof schema !== "object") return undefined;
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
  if ("default" in schema) return schema.default;
  return undefined;
}

function schemaType(schema) {
  if (!schema || typeof schema !== "object") return null;
  if (Array.isArray(schema.enum)) return "enum";
  if ("const" in schema) return "const";
  let type = schema.type;
  if (Array.isArray(type)) type = type.filter((t) => t !== "null").length === 1 ? type.find((t) => t !== "null") : null;
  if (!type && schema.properties) type = "object";
  if (!type && schema.items) type = "array";
  return ["object", "array", "string", "number", "integer", "boolean"].includes(type) ? type : null;
}

function resolve(schema, root, depth) {
  let current = schema;
  for (let hops = 0; current && typeof current.$ref === "string" && hops < 8; hops++) {
    const match = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(current.$ref);
    const target = match && root && root[match[1]] && root[match[1]][decodeURIComponent(match[2])];
    if (!target || depth > MAX_DEPTH) return null;
    current = { ...target, ...Object.fromEntries(Object.entries(current).filter(([k]) => k !== "$ref")) };
  }
  return current;
}

function domId(prefix, path) {
  return `${prefix}-${path.map((p) => String(p).replace(/[^a-zA-Z0-9_-]/g, "_")).join("-") || "root"}`;
}

function pathText(path) {
  return path.length ? path.map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("").replace(/^\./, "") : "(the value)";
}

function isEmpty(value) {
  return value === undefined;
}

/** Adds an error message under an editor's field and to the form's list. */
function report(errors, errorEl, path, message, control) {
  errors.push({ path: pathText(path), message });
  if (errorEl) {
    errorEl.textContent = message;
    errorEl.hidden = false;
  }
  if (control) control.setAttribute("aria-invalid", "true");
}

function clearError(errorEl, control) {
  if (errorEl) {
    errorEl.textContent = "";
    errorEl.hidden = true;
  }
  if (control) control.removeAttribute("aria-invalid");
}

/**
 * An editor for `schema` at `path`: `{element, read(errors) → value|undefined, write(value)}`.
 * `label` names the field; `required` says whether the parent object requires it.
 */
function editorFor(schema, ctx, path, { label, required }) {
  const resolved = resolve(schema, ctx.root, path.length);
  let type = path.length > MAX_DEPTH ? null : schemaType(resolved);
  // A free-form object (no properties listed) is edited as JSON: there are no fields to draw.
  if (type === "object" && !Object.keys(resolved.properties || {}).length) type = null;
  const id = domId(ctx.prefix, path);
  const title = (resolved && resolved.title) || label;
  const description = resolved && typeof resolved.description === "string" ? resolved.description : "";
  const help = description ? h("p", { className: "sf-help", id: `${id}-help`, text: description }) : null;
  const errorEl = h("p", { className: "sf-error error", id: `${id}-error`, hidden: true });
  const describedBy = [help ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(" ");
  const labelEl = (forId) =>
    h("label", { for: forId, className: "sf-label" }, title || "Value", required ? h("span", { className: "sf-required", text: " *", title: "required", "aria-hidden": "true" }) : null);

  if (type === "object") return objectEditor(resolved, ctx, path, { title, help, errorEl, required, id });
  if (type === "array") return arrayEditor(resolved, ctx, path, { title, help, errorEl, required, id });

  let control;
  let read;
  let write;
  if (type === "enum") {
    const options = resolved.enum;
    control = h("select", { id, "aria-describedby": describedBy });
    if (!required || !options.length) control.append(h("option", { value: "", text: "(not set)" }));
    options.forEach((option, index) => control.append(h("option", { value: String(index), text: typeof option === "string" ? option : JSON.stringify(option) })));
    read = () => (control.value === "" ? undefined : options[Number(control.value)]);
    write = (value) => {
      const index = options.findIndex((o) => JSON.stringify(o) === JSON.stringify(value));
      control.value = index >= 0 ? String(index) : "";
    };
  } else if (type === "const") {
    control = h("input", { id, type: "text", readonly: true, value: JSON.stringify(resolved.const), "aria-describedby": describedBy });
    read = () => resolved.const;
    write = () => {};
  } else if (type === "boolean" && (required || "default" in resolved)) {
    control = h("input", { id, type: "checkbox", "aria-describedby": describedBy });
    read = () => control.checked;
    write = (value) => {
      control.checked = value === true;
    };
    const element = h("div", { className: "sf-field sf-boolean", "data-path": pathText(path) }, control, labelEl(id), help, errorEl);
    return { element, read: () => read(), write: (v) => write(v) };
  } else if (type === "boolean") {
    control = h("select", { id, "aria-describedby": describedBy }, h("option", { value: "", text: "(not set)" }), h("option", { value: "true", text: "true" }), h("option", { value: "false", text: "false" }));
    read = () => (control.value === "" ? undefined : control.value === "true");
    write = (value) => {
      control.value = value === true ? "true" : value === false ? "false" : "";
    };
  } else if (type === "number" || type === "integer") {
    const bounds = {};
    if (typeof resolved.minimum === "number") bounds.min = resolved.minimum;
    if (typeof resolved.maximum === "number") bounds.max = resolved.maximum;
    control = h("input", { id, type: "number", step: type === "integer" ? (resolved.multipleOf || 1) : resolved.multipleOf || "any", ...bounds, "aria-describedby": describedBy });
    read = (errors) => {
      if (control.value.trim() === "") {
        if (control.validity.badInput) report(errors, errorEl, path, "is not a number", control);
        return undefined;
      }
      const value = Number(control.value);
      const problem = numberProblem(resolved, type, value);
      if (problem) report(errors, errorEl, path, problem, control);
      return value;
    };
    write = (value) => {
      control.value = typeof value === "number" ? String(value) : "";
    };
  } else if (type === "string") {
    const long = (resolved.maxLength || 0) > 200 || resolved.format === "textarea" || (resolved["x-widget"] === "textarea");
    const limits = {};
    if (typeof resolved.maxLength === "number") limits.maxlength = resolved.maxLength;
    control = long
      ? h("textarea", { id, rows: 3, ...limits, "aria-describedby": describedBy })
      : h("input", { id, type: FORMAT_INPUT[resolved.format] === "email" ? "email" : "text", autocomplete: "off", ...limits, "aria-describedby": describedBy });
    if (resolved.format && !long) control.setAttribute("placeholder", resolved.format);
    read = (errors) => {
      const value = control.value;
      // An empty field is a value left out (for a required one: "is required"); the JSON view
      // can still send "" where a schema allows it.
      if (value === "") return undefined;
      const problem = stringProblem(resolved, value);
      if (problem) report(errors, errorEl, path, problem, control);
      return value;
    };
    write = (value) => {
      control.value = typeof value === "string" ? value : "";
    };
  } else {
    // Anything else (anyOf, oneOf, no type): JSON text for this part.
    control = h("textarea", { id, rows: 3, spellcheck: "false", className: "sf-json", "aria-describedby": describedBy });
    read = (errors) => {
      const text = control.value.trim();
      if (!text) return undefined;
      try {
        return JSON.parse(text);
      } catch (error) {
        report(errors, errorEl, path, `is not valid JSON: ${error.message}`, control);
        return undefined;
      }
    };
    write = (value) => {
      control.value = value === undefined ? "" : JSON.stringify(value, null, 2);
    };
  }
  if (required) control.setAttribute("aria-required", "true");
  // An error stays until the field is edited again.
  control.addEventListener("input", () => clearError(errorEl, control));
  const element = h(
    "div",
    { className: `sf-field sf-${type || "json"}`, "data-path": pathText(path) },
    labelEl(id),
    type ? null : h("span", { className: "sf-hint muted", text: " (JSON)" }),
    control,
    help,
    errorEl,
  );
  return {
    element,
    read(errors) {
      clearError(errorEl, control);
      const value = read(errors);
      if (isEmpty(value) && required && type !== "const") report(errors, errorEl, path, "is required", control);
      return value;
    },
    write,
  };
}

function numberProblem(schema, type, value) {
  if (!Number.isFinite(value)) return "is not a number";
  if (type === "integer" && !Number.isInteger(value)) return "must be a whole number";
  if (typeof schema.minimum === "number" && value < schema.minimum) return `must be at least ${schema.minimum}`;
  if (typeof schema.maximum === "number" && value > schema.maximum) return `must be at most ${schema.maximum}`;
  if (typeof schema.exclusiveMinimum === "number" && value <= schema.exclusiveMinimum) return `must be more than ${schema.exclusiveMinimum}`;
  if (typeof schema.exclusiveMaximum === "number" && value >= schema.exclusiveMaximum) return `must be less than ${schema.exclusiveMaximum}`;
  return null;
}

function stringProblem(schema, value) {
  const length = [...value].length;
  if (typeof schema.minLength === "number" && length < schema.minLength) return schema.minLength === 1 ? "must not be empty" : `must be at least ${schema.minLength} characters`;
  if (typeof schema.maxLength === "number" && length > schema.maxLength) return `must be at most ${schema.maxLength} characters`;
  if (typeof schema.pattern === "string") {
    try {
      if (!new RegExp(schema.pattern, "u").test(value)) return `must match ${schema.pattern}`;
    } catch {
      // A pattern this browser cannot compile is left to the server.
    }
  }
  return null;
}

function objectEditor(schema, ctx, path, { title, help, errorEl, required, id }) {
  const requiredNames = new Set(Array.isArray(schema.required) ? schema.required : []);
  const children = Object.entries(schema.properties || {}).map(([name, property]) => [
    name,
    editorFor(property, ctx, [...path, name], { label: name, required: requiredNames.has(name) }),
  ]);
  // Properties beyond the listed ones (additionalProperties) are left to the JSON view.
  const body = [...children.map(([, editor]) => editor.element), errorEl];
  const element = path.length
    ? h("fieldset", { className: "sf-object", "data-path": pathText(path), id }, h("legend", { text: title || "Object" }, ...(required ? [h("span", { className: "sf-required", text: " *", "aria-hidden": "true" })] : [])), help, ...body)
    : h("div", { className: "sf-object sf-root", id }, help, ...body);
  return {
    element,
    read(errors) {
      clearError(errorEl);
      const value = {};
      for (const [name, editor] of children) {
        const child = editor.read(errors);
        if (!isEmpty(child)) value[name] = child;
      }
      // An optional nested object left blank is left out rather than sent as {}.
      if (path.length && !required && !Object.keys(value).length) return undefined;
      return value;
    },
    write(value) {
      const object = value && typeof value === "object" && !Array.isArray(value) ? value : {};
      for (const [name, editor] of children) editor.write(name in object ? object[name] : initialValue(resolve(schema.properties[name], ctx.root, 0)));
    },
  };
}

function arrayEditor(schema, ctx, path, { title, help, errorEl, required, id }) {
  const itemSchema = Array.isArray(schema.items) ? {} : schema.items || {};
  const list = h("ol", { className: "sf-items", "aria-label": `Items of ${title || "the list"}` });
  const addButton = h("button", { type: "button", className: "secondary sf-add", text: `Add ${title ? `to ${title}` : "item"}` });
  let items = [];
  let serial = 0;
  const renumber = () => {
    items.forEach((item, index) => {
      // Each item's own label (or legend) says which one it is: "tags 2".
      const labelNode = item.editor.element.querySelector(":scope > .sf-label, :scope > legend");
      if (labelNode && labelNode.firstChild) labelNode.firstChild.textContent = `${title || "Item"} ${index + 1}`;
      item.remove.setAttribute("aria-label", `Remove item ${index + 1} of ${title || "the list"}`);
    });
    addButton.disabled = typeof schema.maxItems === "number" && items.length >= schema.maxItems;
  };
  const add = (value) => {
    const key = serial++;
    const editor = editorFor(itemSchema, ctx, [...path, key], { label: title || "Item", required: true });
    const remove = h("button", { type: "button", className: "secondary sf-remove", text: "Remove" });
    const row = h("li", { className: "sf-item" }, editor.element, remove);
    const item = { editor, remove, row };
    remove.addEventListener("click", () => {
      items = items.filter((i) => i !== item);
      row.remove();
      renumber();
    });
    items.push(item);
    list.append(row);
    editor.write(value === undefined ? initialValue(resolve(itemSchema, ctx.root, 0)) : value);
    renumber();
    return item;
  };
  addButton.addEventListener("click", () => {
    const item = add(undefined);
    const first = item.row.querySelector("input, select, textarea");
    if (first) first.focus();
  });
  const element = h(
    "fieldset",
    { className: "sf-array", "data-path": pathText(path), id },
    h("legend", { text: title || "List" }, ...(required ? [h("span", { className: "sf-required", text: " *", "aria-hidden": "true" })] : [])),
    help,
    list,
    addButton,
    errorEl,
  );
  return {
    element,
    read(errors) {
      clearError(errorEl);
      const value = items.map((item) => item.editor.read(errors)).map((v) => (v === undefined ? null : v));
      if (!value.length && !required) return undefined;
      if (typeof schema.minItems === "number" && value.length < schema.minItems) report(errors, errorEl, path, `needs at least ${schema.minItems} item(s)`);
      if (typeof schema.maxItems === "number" && value.length > schema.maxItems) report(errors, errorEl, path, `takes at most ${schema.maxItems} item(s)`);
      return value;
    },
    write(value) {
      items = [];
      list.replaceChildren();
      if (Array.isArray(value)) value.forEach((v) => add(v));
      renumber();
    },
  };
}

/**
 * Renders a form for `schema` into a new element. Returns `{element, read(), write(value)}`:
 * `read({quiet})` → `{value, errors: [{path, message}]}` (errors are shown beside their fields unless quiet),
 * `write(value)` fills the fields. `prefix` keeps element ids unique on the page. The form starts
 * from `value` if given, else from the schema's first example or default.
 */
export function schemaForm(schema, { prefix = "sf", value } = {}) {
  const root = schema && typeof schema === "object" ? schema : {};
  const ctx = { prefix, root };
  const editor = editorFor(root, ctx, [], { label: "", required: true });
  const element = h("div", { className: "schema-form" }, editor.element);
  const start = value !== undefined ? value : initialValue(root);
  editor.write(start === undefined && schemaType(root) === "object" ? {} : start);
  return {
    element,
    read({ quiet = false } = {}) {
      const errors = [];
      const result = editor.read(errors);
      if (quiet) {
        // Reading to copy the value elsewhere (the JSON view) is not a submit: show no errors.
        for (const node of element.querySelectorAll(".sf-error")) node.hidden = true;
        for (const node of element.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
      }
      return { value: result, errors };
    },
    write: (v) => editor.write(v),
  };
}
