// 3. Results of one finished job: the verdict, accuracy against the linear-probe baseline and chance,
// per-class accuracy, the confusion matrix as a heat map, feature distortion and the BN conversion report.
import { api } from "./api.js";
import { bars, confusionHeatmap } from "./charts.js";
import { $, duration, guarded, h, num, pct } from "./dom.js";
import { on } from "./state.js";
import { verdictOf } from "./verdict.js";

/** Wires the results panel: it shows the job named by every `showJob` event. */
export function initResultsPanel() {
  on(
    "showJob",
    guarded(async (id) => {
      const job = await api("GET", `/v1/adaptations/${id}`);
      $("results").replaceChildren(...resultsOf(job));
    }),
  );
}

/** The verdict banner of a job. */
export function verdictBanner(job) {
  const v = verdictOf(job);
  return h(
    "div",
    { class: `verdict ${v.kind}`, role: "status" },
    h("strong", {}, v.headline),
    v.detail ? h("p", { class: "note" }, v.detail) : null,
    v.activation ? h("p", {}, v.activation) : null,
    v.estimated && job.status === "succeeded"
      ? h("p", { class: "note" }, "(judged by the console: this server reports no guard verdict)")
      : null,
  );
}

/** Every part of a job's results, as elements. */
export function resultsOf(job) {
  const title = h(
    "h3",
    {},
    `${job.request.method} on ${job.request.backbone} — ${job.dataset?.name ?? job.request.dataset}`,
  );
  if (job.status !== "succeeded" || !job.metrics) return [title, verdictBanner(job)];
  const m = job.metrics;
  const classes = m.classNames;
  const chance = m.guard?.chance ?? 1 / classes.length;
  const base = m.baseline;
  const overall = [{ label: `model (${job.request.method})`, value: m.valAccuracy }];
  if (base) overall.push({ label: "linear probe", value: base.valAccuracy, kind: "baseline" });
  const perClass = classes.flatMap((c) => [
    { label: c, value: m.validation.perClassAccuracy[c] ?? 0 },
    ...(base?.validation?.perClassAccuracy
      ? [{ label: `${c} (LP)`, value: base.validation.perClassAccuracy[c] ?? 0, kind: "baseline" }]
      : []),
  ]);
  return [
    title,
    verdictBanner(job),
    h(
      "div",
      { class: "grid" },
      h(
        "section",
        {},
        h("h4", {}, "Validation accuracy"),
        bars(overall, { marker: chance, markerLabel: `chance ${pct(chance)}` }),
        h(
          "p",
          { class: "note" },
          `The line marks chance (${pct(chance)}). ${m.valSamples} held-out images; best epoch ${
            m.bestEpoch + 1
          }.`,
        ),
        h("h4", {}, "Per class"),
        bars(perClass, { marker: chance }),
      ),
      h(
        "section",
        {},
        h("h4", {}, "Confusion matrix"),
        confusionHeatmap(m.validation.confusion, classes),
        h(
          "p",
          { class: "note" },
          "Rows: the true class; columns: what the model said. A good model fills the diagonal.",
        ),
        base?.validation?.confusion
          ? h(
            "details",
            {},
            h("summary", {}, "The linear probe's confusion matrix"),
            confusionHeatmap(base.validation.confusion, classes),
          )
          : null,
      ),
      h("section", {}, h("h4", {}, "Feature distortion"), distortionOf(m.distortion)),
      h("section", {}, h("h4", {}, "BN conversion"), bnReportOf(m.bnConversion)),
    ),
    h(
      "p",
      { class: "note" },
      `${m.trainSamples} training and ${m.valSamples} validation images; ${m.history.length} epochs in ${
        duration(m.seconds)
      }. Model ${job.modelId ?? "–"}.`,
    ),
  ];
}

function distortionOf(d) {
  if (!d) return h("p", {}, "Not measured.");
  return h(
    "div",
    {},
    bars([{
      label: "cosine similarity",
      value: d.cosineMean,
      note: `${num(d.cosineMean)} ± ${num(d.cosineStd)}`,
    }]),
    h(
      "p",
      { class: "note" },
      `How much the backbone's features moved from the pretrained ones on ${d.samples} images: cosine 1 means unchanged. L2 distance ${
        num(d.l2Mean)
      } ± ${num(d.l2Std)}.`,
    ),
  );
}

function bnReportOf(r) {
  if (!r) return h("p", {}, "This method keeps the pretrained batch-norm statistics (no conversion).");
  const top = [...r.layers].sort((a, b) => b.meanShift - a.meanShift).slice(0, 6);
  const max = Math.max(...top.map((l) => l.meanShift), 1e-9);
  return h(
    "div",
    {},
    h(
      "p",
      {},
      `${r.layersConverted} layers re-centred on ${r.calibrationSamples} of your images; outputs unchanged to ${
        r.maxAbsOutputDiff.toExponential(1)
      } (checked on ${r.checkedSamples}).`,
    ),
    h(
      "p",
      { class: "note" },
      "Where your images sit furthest from the pretraining data (mean shift; variance ratio):",
    ),
    bars(
      top.map((l) => ({
        label: l.name,
        value: l.meanShift / max,
        note: `${num(l.meanShift, 2)}; ×${num(l.varianceRatio, 2)}`,
      })),
    ),
  );
}
