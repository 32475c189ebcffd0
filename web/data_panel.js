// 1. Data: datasets, classes as cards with thumbnails and counts, images added by file picker, drag and drop
// or the webcam (hold to record), samples and classes removed, classes and datasets renamed.
import { api, seg } from "./api.js";
import { Camera, holdToRecord } from "./camera.js";
import { $, guarded, h, notify } from "./dom.js";
import { emit, on, selectDataset, state } from "./state.js";

/** Thumbnails shown per class card; the rest are counted. */
const THUMBS_PER_CLASS = 24;
/** Bytes of images per upload request, well under the server's default body limit (32 MiB). */
const CHUNK_BYTES = 4 * 1024 * 1024;

const camera = new Camera($("cameraVideo"));
/** Classes named but without samples yet, per dataset (a class exists on the server once it has one). */
const emptyClasses = new Map();

/** Wires the data panel; call once. */
export function initDataPanel() {
  $("newDatasetForm").addEventListener(
    "submit",
    guarded(async (e) => {
      e.preventDefault();
      const name = $("newDatasetName").value.trim() || "my dataset";
      const created = await api("POST", "/v1/datasets", { name });
      $("newDatasetName").value = "";
      await refreshDatasets(created.id);
      notify(`created dataset “${name}”`);
    }),
  );
  $("datasetSelect").addEventListener("change", () => selectDataset($("datasetSelect").value));
  $("renameDataset").addEventListener("click", () => {
    const current = $("datasetSelect").selectedOptions[0];
    if (!current) return;
    editInline($("datasetSelect"), current.dataset.name, async (name) => {
      await api("PATCH", `/v1/datasets/${state.datasetId}`, { name });
      await refreshDatasets(state.datasetId);
    });
  });
  $("deleteDataset").addEventListener(
    "click",
    guarded(async () => {
      const current = $("datasetSelect").selectedOptions[0];
      if (!current || !confirm(`Delete dataset “${current.dataset.name}” and all its images?`)) return;
      await api("DELETE", `/v1/datasets/${state.datasetId}`);
      await refreshDatasets("");
      notify(`deleted dataset “${current.dataset.name}”`);
    }),
  );
  $("newClassForm").addEventListener("submit", (e) => {
    e.preventDefault();
    const label = $("newClassName").value.trim();
    if (!label || !state.datasetId) return;
    if (!emptyClasses.has(state.datasetId)) emptyClasses.set(state.datasetId, new Set());
    emptyClasses.get(state.datasetId).add(label);
    $("newClassName").value = "";
    renderClasses().then(() =>
      document.querySelector(`[data-label="${CSS.escape(label)}"] input[type=file]`)?.focus()
    );
  });
  $("cameraToggle").addEventListener(
    "click",
    guarded(async () => {
      if (camera.on) camera.stop();
      else await camera.start();
      $("cameraToggle").textContent = camera.on ? "Turn camera off" : "Turn camera on";
      $("cameraToggle").setAttribute("aria-pressed", String(camera.on));
      $("cameraBox").classList.toggle("live", camera.on);
      for (const b of document.querySelectorAll("#classCards .hold")) b.disabled = !camera.on;
    }),
  );
  on("dataset", () => refreshDatasets().catch(reportError));
}

/** The camera, shared with the models panel's "try it". */
export { camera };

const reportError = (err) => notify(`${err.code ?? "error"}: ${err.message}`, "error");

/** Reloads the dataset list, choosing `select` (or keeping the current one), then the class cards. */
export async function refreshDatasets(select) {
  const { datasets } = await api("GET", "/v1/datasets");
  const list = $("datasetSelect");
  const want = select ?? state.datasetId;
  list.replaceChildren(
    ...datasets.map((d) =>
      h("option", { value: d.id, "data-name": d.name }, `${d.name} (${d.sampleCount} images)`)
    ),
  );
  const chosen = datasets.find((d) => d.id === want) ?? datasets.at(-1);
  list.value = chosen?.id ?? "";
  for (const id of ["renameDataset", "deleteDataset", "newClassName"]) $(id).disabled = !chosen;
  if ((chosen?.id ?? "") !== state.datasetId) {
    selectDataset(chosen?.id ?? "");
    return;
  }
  await renderClasses();
}

async function renderClasses() {
  const cards = $("classCards");
  if (!state.datasetId) {
    cards.replaceChildren(
      h("p", { class: "empty" }, "Create a dataset to start: one class per kind of picture."),
    );
    return;
  }
  const id = state.datasetId;
  const { samples } = await api("GET", `/v1/datasets/${id}/samples`);
  const byLabel = new Map();
  for (const s of samples) {
    if (!byLabel.has(s.label)) byLabel.set(s.label, []);
    byLabel.get(s.label).push(s);
  }
  for (const label of emptyClasses.get(id) ?? []) {
    if (byLabel.has(label)) emptyClasses.get(id).delete(label);
    else byLabel.set(label, []);
  }
  if (byLabel.size === 0) {
    cards.replaceChildren(h("p", { class: "empty" }, "No classes yet: name one below, then add its images."));
  } else {
    cards.replaceChildren(...[...byLabel].map(([label, list]) => classCard(id, label, list)));
  }
  emit("datasetContents", { id, counts: Object.fromEntries([...byLabel].map(([l, s]) => [l, s.length])) });
}

function classCard(datasetId, label, samples) {
  const input = h("input", {
    type: "file",
    accept: "image/png,image/jpeg",
    multiple: true,
    class: "visually-hidden",
  });
  input.addEventListener("change", () => {
    upload(label, [...input.files]);
    input.value = "";
  });
  const hold = h("button", {
    type: "button",
    class: "hold",
    disabled: !camera.on,
    title: "Turn the camera on first",
  }, "Hold to record");
  let frames = [];
  let taking = Promise.resolve();
  holdToRecord(hold, {
    onFrame: () => {
      taking = taking.then(() => camera.frame(`webcam-${Date.now()}.jpg`)).then((f) => {
        frames.push(f);
        hold.textContent = `Recording… ${frames.length}`;
      }, reportError);
    },
    onRelease: () =>
      taking.then(() => {
        hold.textContent = "Hold to record";
        const batch = frames;
        frames = [];
        if (batch.length) upload(label, batch);
      }),
  });
  const shown = samples.slice(-THUMBS_PER_CLASS);
  const thumbs = shown.map((s) =>
    h(
      "span",
      { class: "thumb" },
      h("img", {
        src: `/v1/datasets/${datasetId}/samples/${s.id}?size=112`,
        alt: `${label} ${s.id}`,
        loading: "lazy",
        width: 56,
        height: 56,
      }),
      h("button", {
        type: "button",
        class: "remove",
        "aria-label": `remove image ${s.id} from ${label}`,
        title: "remove this image",
        onclick: guarded(async () => {
          await api("DELETE", `/v1/datasets/${datasetId}/samples/${s.id}`);
          await refreshDatasets();
        }),
      }, "×"),
    )
  );
  const more = samples.length > shown.length
    ? h("span", { class: "more" }, `+${samples.length - shown.length} more`)
    : null;
  const title = h("h3", {}, label);
  const card = h(
    "article",
    { class: "card", "data-label": label },
    h(
      "header",
      {},
      title,
      h("span", { class: "count" }, `${samples.length} ${samples.length === 1 ? "image" : "images"}`),
      h("button", {
        type: "button",
        class: "small",
        "aria-label": `rename class ${label}`,
        disabled: samples.length === 0,
        onclick: () =>
          editInline(title, label, async (name) => {
            await api("PATCH", `/v1/datasets/${datasetId}/labels/${seg(label)}`, { name });
            await refreshDatasets();
          }),
      }, "Rename"),
      h("button", {
        type: "button",
        class: "small danger",
        "aria-label": `delete class ${label}`,
        onclick: guarded(async () => {
          if (samples.length === 0) {
            emptyClasses.get(datasetId)?.delete(label);
            return renderClasses();
          }
          if (!confirm(`Delete class “${label}” and its ${samples.length} images?`)) return;
          await api("DELETE", `/v1/datasets/${datasetId}/labels/${seg(label)}`);
          await refreshDatasets();
        }),
      }, "Delete"),
    ),
    h(
      "div",
      { class: "thumbs" },
      thumbs,
      more,
      samples.length ? null : h("p", { class: "empty" }, "No images yet."),
    ),
    h(
      "div",
      { class: "card-actions" },
      h("label", { class: "button" }, input, "Add images…"),
      hold,
      h("span", { class: "hint" }, "or drop images here"),
    ),
  );
  card.addEventListener("dragover", (e) => {
    e.preventDefault();
    card.classList.add("drop");
  });
  card.addEventListener("dragleave", () => card.classList.remove("drop"));
  card.addEventListener("drop", (e) => {
    e.preventDefault();
    card.classList.remove("drop");
    upload(label, [...e.dataTransfer.files]);
  });
  return card;
}

/**
 * Uploads files into a class in their order, a few megabytes per request. An upload is all or nothing on the
 * server, which names the bad sample in `details.index`: that file is reported by name with the reason, and
 * the rest of its request is sent again without it.
 */
async function upload(label, files) {
  if (!files.length) return;
  const datasetId = state.datasetId;
  const status = $("uploadStatus");
  const errors = [];
  let added = 0;
  const refuse = (file, err) =>
    errors.push({ file: file.name, code: err.code, message: err.message.replace(/^samples\[\d+\]: /, "") });
  for (let chunk of chunks(files)) {
    while (chunk.length) {
      const form = new FormData();
      for (const file of chunk) {
        form.append("label", label);
        form.append("image", file, file.name);
      }
      try {
        await api("POST", `/v1/datasets/${datasetId}/samples`, form);
        added += chunk.length;
        chunk = [];
      } catch (err) {
        const index = err.details?.index;
        if (Number.isInteger(index) && index < chunk.length) {
          refuse(chunk[index], err);
          chunk = chunk.filter((_, i) => i !== index);
        } else {
          for (const file of chunk) refuse(file, err);
          chunk = [];
        }
      }
      status.textContent = `uploading to “${label}”: ${added + errors.length} of ${files.length}`;
    }
  }
  status.textContent = `${added} ${added === 1 ? "image" : "images"} added to “${label}”` +
    (errors.length ? `, ${errors.length} refused:` : "");
  $("uploadErrors").replaceChildren(
    ...errors.map((e) => h("li", {}, h("strong", {}, e.file), ` — ${e.message} `, h("code", {}, e.code))),
  );
  await refreshDatasets();
}

/** Files in order, grouped so that each group stays under CHUNK_BYTES (a file larger than that goes alone). */
function chunks(files) {
  const out = [[]];
  let bytes = 0;
  for (const file of files) {
    if (out.at(-1).length && bytes + file.size > CHUNK_BYTES) {
      out.push([]);
      bytes = 0;
    }
    out.at(-1).push(file);
    bytes += file.size;
  }
  return out;
}

/** Swaps `el` for a text field holding `value`; Enter saves through `save(newValue)`, Escape cancels. */
function editInline(el, value, save) {
  const field = h("input", { value, class: "inline-edit", "aria-label": "new name" });
  const done = () => field.replaceWith(el);
  field.addEventListener(
    "keydown",
    guarded(async (e) => {
      if (e.key === "Escape") done();
      if (e.key !== "Enter") return;
      e.preventDefault();
      const name = field.value.trim();
      // The element comes back before saving: what `save` refreshes may be that very element.
      done();
      if (name && name !== value) await save(name);
    }),
  );
  field.addEventListener("blur", () => setTimeout(done, 150));
  el.replaceWith(field);
  field.select();
}
