// 4. Compare: the jobs on the chosen dataset, and the ticked ones side by side (accuracy against the
// baseline, distortion, time, per-class accuracy, confusion).
import { api } from "./api.js";
import { bars, confusionHeatmap } from "./charts.js";
import { $, duration, guarded, h, num, pct } from "./dom.js";
import { emit, on, state } from "./state.js";
import { verdictOf } from "./verdict.js";

/** Job ids ticked for comparison; until the user ticks one, the newest two that succeeded. */
let ticked = null;
let userTicked = false;

/** Wires the compare panel. */
export function initComparePanel() {
  on("jobs", () => refreshJobs().catch(() => {}));
  on("dataset", () => {
    ticked = null;
    userTicked = false;
    refreshJobs().catch(() => {});
  });
}

/** Reloads the jobs on the chosen dataset. */
export async function refreshJobs() {
  const { adaptations } = await api("GET", "/v1/adaptations");
  const jobs = adaptations.filter((j) => j.request.dataset === state.datasetId);
  if (!userTicked) {
    ticked = new Set(jobs.filter((j) => j.status === "succeeded").slice(0, 2).map((j) => j.id));
  }
  $("jobList").replaceChildren(
    jobs.length
      ? h(
        "table",
        { class: "jobs" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["compare", "method", "backbone", "status", "val. accuracy", "started", ""].map((t) =>
              h("th", { scope: "col" }, t)
            ),
          ),
        ),
        h("tbody", {}, jobs.map(jobRow)),
      )
      : h("p", { class: "empty" }, "No jobs on this dataset yet."),
  );
  const chosen = jobs.filter((j) => ticked.has(j.id) && j.status === "succeeded").reverse();
  $("comparison").replaceChildren(
    chosen.length >= 2
      ? h("div", { class: "side-by-side" }, chosen.map(column))
      : h("p", { class: "empty" }, "Tick two or more finished jobs to see them side by side."),
  );
}

function jobRow(job) {
  const box = h("input", {
    type: "checkbox",
    checked: ticked.has(job.id),
    disabled: job.status !== "succeeded",
    "aria-label": `compare job ${job.id}`,
    onchange: () => {
      userTicked = true;
      if (box.checked) ticked.add(job.id);
      else ticked.delete(job.id);
      refreshJobs();
    },
  });
  return h(
    "tr",
    { "data-job": job.id },
    h("td", {}, box),
    h("td", {}, job.request.method),
    h("td", {}, job.request.backbone),
    h("td", {}, job.status),
    h("td", {}, pct(job.metrics?.valAccuracy)),
    h("td", {}, new Date(job.createdAt).toLocaleTimeString()),
    h(
      "td",
      {},
      job.status === "succeeded"
        ? h("button", {
          type: "button",
          class: "small",
          onclick: guarded(() => {
            emit("showJob", job.id);
            $("resultsSection").scrollIntoView();
          }),
        }, "Results")
        : null,
      ["failed", "cancelled"].includes(job.status)
        ? h("button", {
          type: "button",
          class: "small",
          onclick: guarded(async () => {
            await api("POST", `/v1/adaptations/${job.id}/retry`);
            emit("jobs");
          }),
        }, "Retry")
        : null,
    ),
  );
}

function column(job) {
  const m = job.metrics;
  const v = verdictOf(job);
  const chance = m.guard?.chance ?? 1 / m.classNames.length;
  const rows = [
    ["validation accuracy", pct(m.valAccuracy)],
    ["linear-probe baseline", pct(m.baseline?.valAccuracy)],
    ["feature distortion (cosine)", num(m.distortion?.cosineMean)],
    ["BN layers converted", String(m.bnConversion?.layersConverted ?? 0)],
    ["epochs", String(m.history.length)],
    ["time", duration(m.seconds)],
  ];
  return h(
    "article",
    { class: "compare-column", "data-job": job.id },
    h("h3", {}, job.request.method, h("small", {}, ` ${job.request.backbone}`)),
    h(
      "p",
      { class: `verdict-chip ${v.kind}` },
      { ok: "good", at_chance: "at chance", below_baseline: "below baseline" }[v.kind] ?? v.kind,
    ),
    h("dl", {}, rows.map(([k, val]) => [h("dt", {}, k), h("dd", {}, val)])),
    bars(m.classNames.map((c) => ({ label: c, value: m.validation.perClassAccuracy[c] ?? 0 })), {
      marker: chance,
    }),
    confusionHeatmap(m.validation.confusion, m.classNames),
  );
}
