// 6. Drift: does the traffic the active model serves still look like the images it was adapted on? Its drift
// score against the threshold, the per-layer breakdown and the score's history, kept live (the drift events'
// stream, and a poll while the page is visible); and a label-free refresh (bn-refresh) of the active model
// from a dataset's images or from the traffic it served, with the refresh guard's verdict.
import { api } from "./api.js";
import { bars, lineChart } from "./charts.js";
import { $, guarded, h, notify, num, pct } from "./dom.js";
import { emit, on } from "./state.js";

const POLL_MS = 2000;

let activeId = null;
let events = null;
let refreshing = null;

/** Wires the drift panel. */
export function initDriftPanel() {
  for (const name of ["models", "predicted", "dataset", "datasetContents"]) {
    on(name, () => refreshDrift().catch(() => {}));
  }
  $("startRefresh").addEventListener("click", guarded(startRefresh));
  setInterval(() => {
    if (document.visibilityState === "visible") refreshDrift().catch(() => {});
  }, POLL_MS);
}

/** Reloads the active model's drift report and the refresh sources. */
export async function refreshDrift() {
  const { active } = await api("GET", "/v1/models");
  follow(active);
  if (!active) {
    $("driftReport").replaceChildren(
      h("p", { class: "empty" }, "No model is active: activate one to watch its traffic."),
    );
    $("startRefresh").disabled = true;
    return;
  }
  const [report, { datasets }] = await Promise.all([
    api("GET", `/v1/models/${active}/drift`),
    api("GET", "/v1/datasets"),
  ]);
  if (active !== activeId) return; // the active model changed meanwhile; the next refresh shows it
  $("driftReport").replaceChildren(...render(report));
  showSources(report.traffic, datasets);
}

// The drift events of the active model, as they happen: each crossing refreshes the panel at once.
function follow(id) {
  if (id === activeId) return;
  activeId = id;
  events?.close();
  events = null;
  if (!id) return;
  events = new EventSource(`/v1/models/${id}/drift/events`);
  for (const type of ["drift", "recovered"]) {
    events.addEventListener(type, (e) => {
      const event = JSON.parse(e.data);
      notify(
        type === "drift"
          ? `drift: the active model's score reached ${num(event.score)} (threshold ${event.threshold})`
          : `the active model's drift score fell back to ${num(event.score)}`,
        type === "drift" ? "error" : "info",
      );
      refreshDrift().catch(() => {});
    });
  }
}

function render(r) {
  const title = h("p", {}, "Active model ", h("code", {}, r.modelId));
  if (!r.monitored) return [title, h("p", { class: "empty" }, r.message)];
  const state = r.score === null ? "waiting" : r.alert ? "drift" : "ok";
  const headline = h(
    "div",
    { class: `drift-state ${state}`, "data-state": state },
    h("strong", { class: "drift-score" }, r.score === null ? "–" : num(r.score)),
    h(
      "span",
      {},
      state === "waiting"
        ? ` no score yet: the window holds ${r.window.samples} of the ${r.window.minSamples} images it needs`
        : state === "drift"
        ? ` drift: at or over the threshold ${r.threshold}; the images served no longer look like the ` +
          "adaptation images"
        : ` below the threshold ${r.threshold}: the images served look like the adaptation images`,
    ),
  );
  const facts = h(
    "p",
    { class: "note" },
    `window: the last ${r.window.samples} of up to ${r.window.size} images served · mean confidence ` +
      `${pct(r.confidence.window)} (adaptation images: ${pct(r.confidence.reference)})`,
  );
  const out = [title, headline, facts];
  const detail = [];
  if (r.layers.length) {
    const top = Math.max(r.threshold, ...r.layers.map((l) => l.score));
    detail.push(h(
      "div",
      { class: "drift-layers" },
      h("h3", {}, "Per layer"),
      bars(
        r.layers.map((l) => ({
          label: l.layer,
          value: l.score / top,
          note: num(l.score),
          kind: l.score >= r.threshold ? "over" : "",
        })),
        { marker: r.threshold / top, markerLabel: `threshold ${r.threshold}` },
      ),
    ));
  }
  if (r.history.length > 1) {
    const n = r.history.length - 1;
    detail.push(lineChart({
      label: "drift score history",
      xMax: n,
      xLabel: `history (${r.history.length} points)`,
      series: [
        { name: "drift score", points: r.history.map((p, i) => [i, p.score]), color: "#c03" },
        { name: "threshold", points: [[0, r.threshold], [n, r.threshold]], color: "#888", dashed: true },
      ],
    }));
  }
  if (detail.length) out.push(h("div", { class: "side-by-side" }, detail));
  if (r.events.length) {
    out.push(h(
      "ul",
      { class: "drift-events" },
      r.events.slice(-5).reverse().map((e) =>
        h(
          "li",
          {},
          `${new Date(e.at).toLocaleTimeString()}: ${e.type} (score ${
            num(e.score)
          } over ${e.samples} images)`,
        )
      ),
    ));
  }
  return out;
}

// The refresh's sources: the kept traffic, then the datasets that hold images (unlabelled ones first).
function showSources(traffic, datasets) {
  const select = $("refreshSource");
  const chosen = select.value;
  const trafficText = !traffic
    ? "the traffic it served (this server keeps none: start it with --keep-traffic N)"
    : `the traffic it served (${traffic.images} images kept)`;
  const usable = datasets.filter((d) => d.sampleCount > 0).sort((a, b) => b.unlabelled - a.unlabelled);
  select.replaceChildren(
    h("option", { value: "traffic", disabled: !traffic?.images }, trafficText),
    ...usable.map((d) =>
      h(
        "option",
        { value: d.id },
        `dataset ${d.name} (${d.sampleCount} images${d.unlabelled ? `, ${d.unlabelled} unlabelled` : ""})`,
      )
    ),
  );
  const options = [...select.options];
  const keep = options.find((o) => o.value === chosen && !o.disabled);
  select.value = (keep ?? options.find((o) => !o.disabled))?.value ?? "";
  $("startRefresh").disabled = refreshing !== null || select.value === "";
}

async function startRefresh() {
  if (!activeId) return;
  const source = $("refreshSource").value;
  const mode = $("refreshActivate").value;
  const body = {
    method: "bn-refresh",
    model: activeId,
    activate: mode === "force" ? "force" : mode === "true",
    ...(source === "traffic" ? { source: "traffic" } : { dataset: source }),
  };
  const job = await api("POST", "/v1/adaptations", body);
  refreshing = job.id;
  $("startRefresh").disabled = true;
  $("refreshStatus").className = "";
  $("refreshStatus").textContent = `refreshing ${activeId} (job ${job.id})…`;
  const stream = new EventSource(`/v1/adaptations/${job.id}/events`);
  stream.addEventListener("done", (e) => {
    stream.close();
    refreshing = null;
    const done = JSON.parse(e.data);
    $("refreshStatus").replaceChildren(...verdict(done));
    $("refreshStatus").className = `refresh-verdict ${done.metrics?.guard?.verdict ?? done.status}`;
    emit("jobs");
    emit("models");
  });
  stream.onerror = () => {
    if (stream.readyState === EventSource.CLOSED) $("refreshStatus").textContent = "lost the refresh job";
  };
}

function verdict(job) {
  if (job.status !== "succeeded") {
    return [h("strong", {}, `The refresh ${job.status}`), job.error ? `: ${job.error.message}` : ""];
  }
  const { guard } = job.metrics;
  return [
    h("strong", {}, guard.verdict === "ok" ? "Refreshed" : "Refreshed, but held back"),
    ` on ${guard.images} images: ${guard.message}. `,
    job.activated
      ? `The new version ${job.modelId} is active.`
      : job.activationSkipped
      ? `Not activated: ${job.activationSkipped.message}.`
      : `Saved as ${job.modelId}, not activated.`,
  ];
}
