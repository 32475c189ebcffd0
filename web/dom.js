// Small DOM helpers: build elements in code, show messages.

/**
 * An element with properties and children: `h("button", { onclick }, "Go")`. Keys starting with "aria-",
 * "data-" or containing a dash, and `class`/`for`, become attributes; the rest are properties.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class" || key === "for" || key.includes("-") || key === "role") el.setAttribute(key, value);
    else el[key] = value;
  }
  el.append(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
  return el;
}

/** An SVG element with attributes. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  el.append(...children.flat(Infinity).filter(Boolean));
  return el;
}

export const $ = (id) => document.getElementById(id);

/** Shows a message in the page's notice bar (`error` for failures), and clears it after a while. */
export function notify(text, kind = "info") {
  const bar = $("notice");
  bar.textContent = text;
  bar.className = kind;
  clearTimeout(notify.timer);
  if (kind !== "error") notify.timer = setTimeout(() => (bar.textContent = ""), 4000);
}

/** Runs an action from a click; shows its failure instead of leaving an unhandled rejection. */
export function guarded(action) {
  return async (...args) => {
    try {
      await action(...args);
    } catch (err) {
      notify(err.code ? `${err.code}: ${err.message}` : String(err.message ?? err), "error");
    }
  };
}

export const pct = (
  x,
) => (x === undefined || x === null || Number.isNaN(x) ? "–" : `${(x * 100).toFixed(1)}%`);
export const num = (x, digits = 3) => (typeof x === "number" ? x.toFixed(digits) : "–");

/** A duration in seconds, in words a person reads at a glance. */
export function duration(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
