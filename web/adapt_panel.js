// 2. Adapt: method, backbone, epochs and the advanced options; start and cancel; live loss and accuracy
// curves from the job's server-sent events; phase and ETA.
import { api } from "./api.js";
import { lineChart } from "./charts.js";
import { $, duration, guarded, h, notify, pct } from "./dom.js";
import { emit, on, state } from "./state.js";

/** Each method in plain words; the server's own description is shown beside it. */
const PLAIN_WORDS = {
  "daft":
    "Recommended: re-centres the network on your pictures, then trains a new head fast and the rest gently.",
  "ft":
    "Fine-tunes every layer at one rate from a random head: the classic baseline; can forget what it knew.",
  "lp": "Trains only a linear classifier on the frozen features: fastest and safest, but limited.",
  "lp-ft": "A linear probe first, then fine-tuning from it: a strong baseline from the literature.",
  "daft-no-conversion": "DAFT without the re-centring step (to compare: what does the BN conversion add?).",
  "conversion-only":
    "The re-centring step, then plain fine-tuning (to compare: what does the schedule add?).",
};

const PHASES = {
  starting: "starting",
  loading: "loading the images and the backbone",
  bn_conversion: "re-centring the batch norm layers on your images",
  linear_probe: "fitting a linear probe",
  training: "training",
  evaluating: "measuring on the validation images",
  saving: "saving the model",
};

/**
 * Request fields with a control of their own in the form (a bn-refresh's `model` and `source` in the drift
 * panel); the rest of the API's fields go under Advanced.
 */
const MAIN_FIELDS = ["dataset", "backbone", "method", "epochs", "activate", "model", "source"];
const FIELD_NAMES = {
  batchSize: "Batch size",
  lrHead: "Head learning rate",
  lrBackbone: "Backbone learning rate",
  seed: "Seed",
  augment: "Augmentation",
};

let watching = null;
/** The advanced fields: name -> read the value (undefined: leave to the server). */
const advanced = new Map();

/**
 * Wires the adapt panel once `state.info` is known. `request` is the API's AdaptationRequest schema (from
 * /openapi.json): the advanced options are the fields it takes, so the form follows the server.
 */
export function initAdaptPanel(request) {
  const { info } = state;
  buildAdvancedFields(request?.properties ?? {});
  if (!JSON.stringify(request?.properties?.activate ?? {}).includes("force")) {
    $("activateMode").querySelector("option[value=force]")?.remove();
  }
  $("methodChoices").replaceChildren(
    h("legend", {}, "Method"),
    ...info.methods.map((m) =>
      h(
        "label",
        { class: "choice" },
        h("input", { type: "radio", name: "method", value: m.name, checked: m.name === "daft" }),
        h("strong", {}, m.name),
        " ",
        h("span", {}, PLAIN_WORDS[m.name] ?? m.description),
        h("small", {}, m.description),
      )
    ),
  );
  $("backbone").replaceChildren(...info.backbones.map((b) => h("option", { value: b.name }, b.name)));
  const describe =
    () => ($("backboneNote").textContent =
      info.backbones.find((b) => b.name === $("backbone").value)?.description ?? "");
  $("backbone").addEventListener("change", describe);
  $("backbone").value = info.defaultBackbone;
  describe();
  $("startJob").addEventListener("click", guarded(start));
  $("cancelJob").addEventListener(
    "click",
    guarded(async () => {
      if (watching) await api("POST", `/v1/adaptations/${watching.id}/cancel`);
    }),
  );
  on("dataset", () => ($("startJob").disabled = !state.datasetId));
  $("startJob").disabled = !state.datasetId;
}

async function start() {
  if (!state.datasetId) return notify("choose or create a dataset first", "error");
  const body = {
    dataset: state.datasetId,
    backbone: $("backbone").value,
    method: document.querySelector("input[name=method]:checked")?.value ?? "daft",
  };
  if ($("epochs").value.trim() !== "") body.epochs = Number($("epochs").value);
  for (const [name, read] of advanced) {
    const value = read();
    if (value !== undefined) body[name] = value;
  }
  const mode = $("activateMode").value;
  body.activate = mode === "force" ? "force" : mode === "true";
  const job = await api("POST", "/v1/adaptations", body);
  notify(`started ${job.request.method} on ${job.request.backbone}`);
  watch(job);
  emit("jobs");
}

function buildAdvancedFields(properties) {
  const fields = [];
  for (const [name, schema] of Object.entries(properties)) {
    if (MAIN_FIELDS.includes(name)) continue;
    const label = FIELD_NAMES[name] ?? name;
    if (schema.type === "number" || schema.type === "integer") {
      const input = h("input", {
        id: `adv-${name}`,
        type: "number",
        min: schema.minimum,
        max: schema.maximum,
        step: schema.type === "integer" ? 1 : "any",
        placeholder: name === "seed" ? "random" : "method default",
        title: schema.description ?? "",
      });
      advanced.set(name, () => (input.value.trim() === "" ? undefined : Number(input.value)));
      fields.push(h("label", {}, `${label} `, input));
    } else if (schema.type === "boolean" || schema.enum) {
      const choices = schema.enum ?? [true, false];
      const select = h(
        "select",
        { id: `adv-${name}`, title: schema.description ?? "" },
        h("option", { value: "" }, "default"),
        choices.map((c, i) => h("option", { value: String(i) }, String(c))),
      );
      advanced.set(name, () => (select.value === "" ? undefined : choices[Number(select.value)]));
      fields.push(h("label", {}, `${label} `, select));
    } else if (schema.type === "object" && schema.properties) {
      const boxes = Object.entries(schema.properties).filter(([, s]) => s.type === "boolean").map(([key]) => {
        const box = h("input", { type: "checkbox", id: `adv-${name}-${key}` });
        box.indeterminate = true;
        box.addEventListener("change", () => (box.dataset.set = "true"));
        return { key, box };
      });
      advanced.set(name, () => {
        const set = boxes.filter((b) => b.box.dataset.set);
        return set.length ? Object.fromEntries(set.map((b) => [b.key, b.box.checked])) : undefined;
      });
      fields.push(
        h("fieldset", {}, h("legend", {}, label), boxes.map((b) => h("label", {}, b.box, ` ${b.key}`))),
      );
    }
  }
  $("advancedFields").replaceChildren(...fields);
}

/** Follows a job's events: progress, phase, ETA and curves, until its `done` event. */
export function watch(job) {
  watching?.events.close();
  const curves = { stepLoss: [], trainLoss: [], trainAcc: [], valAcc: [], epochs: job.request.epochs ?? 0 };
  const events = new EventSource(`/v1/adaptations/${job.id}/events`);
  watching = { id: job.id, events };
  $("cancelJob").disabled = false;
  $("jobTitle").textContent = `${job.request.method} on ${job.request.backbone}, job ${job.id}`;
  const startedAt = Date.now();
  let firstFraction = null;
  const seed = (j) => {
    curves.trainLoss = [];
    curves.trainAcc = [];
    curves.valAcc = [];
    for (const r of j.history ?? []) addEpoch(curves, r);
  };
  const show = (j, progress) => {
    $("jobProgress").value = progress?.fraction ?? 0;
    const phase = progress ? PHASES[progress.phase] ?? progress.phase : j.status;
    const epoch = progress?.epochs
      ? `, epoch ${Math.min(progress.epoch + 1, progress.epochs)} of ${progress.epochs}`
      : "";
    $("jobPhase").textContent = `${j.status}: ${phase}${epoch}`;
    if (progress?.epochs) curves.epochs = progress.epochs;
    const f = progress?.fraction ?? 0;
    if (firstFraction === null && f > 0) firstFraction = { f, t: Date.now() };
    if (firstFraction && f > firstFraction.f) {
      const rate = (f - firstFraction.f) / (Date.now() - firstFraction.t);
      $("jobEta").textContent = `about ${duration((1 - f) / rate / 1000)} left`;
    } else $("jobEta").textContent = j.status === "queued" ? "waiting for the job ahead" : "";
    drawCurves(curves);
  };
  events.addEventListener("status", (e) => {
    const j = JSON.parse(e.data);
    seed(j);
    show(j, j.progress);
  });
  events.addEventListener("progress", (e) => {
    const { status, progress } = JSON.parse(e.data);
    if (progress.phase === "training" && progress.loss !== undefined && progress.steps) {
      curves.stepLoss.push([progress.epoch + Math.min(progress.step / progress.steps, 1), progress.loss]);
    }
    show({ status }, progress);
  });
  events.addEventListener("epoch", (e) => {
    addEpoch(curves, JSON.parse(e.data).record);
    drawCurves(curves);
  });
  events.addEventListener("done", (e) => {
    events.close();
    watching = null;
    const done = JSON.parse(e.data);
    seed(done);
    drawCurves(curves, true);
    $("cancelJob").disabled = true;
    $("jobProgress").value = done.status === "succeeded" ? 1 : $("jobProgress").value;
    $("jobEta").textContent = `took ${duration((Date.now() - startedAt) / 1000)}`;
    $("jobPhase").textContent = done.status + (done.error ? `: ${done.error.message}` : "");
    emit("jobs");
    emit("models");
    if (done.status === "succeeded") emit("showJob", done.id);
  });
  events.onerror = () => {
    if (events.readyState === EventSource.CLOSED) {
      $("jobPhase").textContent = "lost the connection to the job";
    }
  };
}

function addEpoch(curves, r) {
  curves.trainLoss.push([r.epoch + 1, r.trainLoss]);
  curves.trainAcc.push([r.epoch + 1, r.trainAccuracy]);
  curves.valAcc.push([r.epoch + 1, r.valAccuracy]);
}

function drawCurves(c, finished = false) {
  const last = c.valAcc.at(-1)?.[1];
  if (finished && !c.trainLoss.length && !c.stepLoss.length) {
    $("curves").replaceChildren(
      h(
        "p",
        { class: "note" },
        "This method trains no epochs (it fits a classifier on frozen features), so there are no curves.",
      ),
    );
    return;
  }
  $("curves").replaceChildren(
    lineChart({
      label: "training loss",
      xMax: c.epochs,
      series: [
        { name: "loss per step", points: c.stepLoss, color: "#d9a" },
        { name: "loss per epoch", points: c.trainLoss, color: "#c03" },
      ],
    }),
    lineChart({
      label: "accuracy",
      xMax: c.epochs,
      yRange: [0, 1],
      series: [
        { name: "training accuracy", points: c.trainAcc, color: "#69c", dashed: true },
        {
          name: `validation accuracy${last !== undefined ? ` (${pct(last)})` : ""}`,
          points: c.valAcc,
          color: "#063",
        },
      ],
    }),
  );
}
