// 5. Models: the versions with their metrics; activate, roll back, delete, download the tfjs files; and
// try one: drop an image or take one from the webcam, see the top classes as bars.
import { api } from "./api.js";
import { bars } from "./charts.js";
import { $, guarded, h, notify, pct } from "./dom.js";
import { camera } from "./data_panel.js";
import { emit, on } from "./state.js";

let models = [];
let active = null;

/** Wires the models panel. */
export function initModelsPanel() {
  on("models", () => refreshModels().catch(() => {}));
  $("rollBack").addEventListener(
    "click",
    guarded(async () => {
      const previous = previousVersion();
      if (!previous) return;
      await api("POST", `/v1/models/${previous.id}/activate`);
      notify(`rolled back to ${previous.id}`);
      await refreshModels();
    }),
  );
  const drop = $("tryDrop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("drop");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("drop"));
  drop.addEventListener(
    "drop",
    guarded(async (e) => {
      e.preventDefault();
      drop.classList.remove("drop");
      const [file] = e.dataTransfer.files;
      if (file) await predict(file);
    }),
  );
  $("tryFile").addEventListener(
    "change",
    guarded(async () => {
      const [file] = $("tryFile").files;
      $("tryFile").value = "";
      if (file) await predict(file);
    }),
  );
  $("trySnap").addEventListener(
    "click",
    guarded(async () => {
      if (!camera.on) {
        await camera.start();
        $("cameraToggle").textContent = "Turn camera off";
        $("cameraBox").classList.add("live");
        for (const b of document.querySelectorAll("#classCards .hold")) b.disabled = false;
      }
      await predict(await camera.frame("snapshot.jpg"));
    }),
  );
}

// The version before the active one: the newest model created before it.
function previousVersion() {
  const current = models.find((m) => m.id === active);
  if (!current) return undefined;
  return models.find((m) => m.createdAt < current.createdAt);
}

/** Reloads the model list. */
export async function refreshModels() {
  ({ models, active } = await api("GET", "/v1/models"));
  const previous = previousVersion();
  $("rollBack").disabled = !previous;
  $("rollBack").textContent = previous
    ? `Roll back to version ${models.length - models.indexOf(previous)}`
    : "Roll back";
  $("tryModel").replaceChildren(
    h("option", { value: "active" }, active ? "the active model" : "the active model (none yet)"),
    ...models.map((m, i) =>
      h("option", { value: m.id }, `version ${models.length - i} (${m.method}, ${pct(m.valAccuracy)})`)
    ),
  );
  $("modelList").replaceChildren(
    models.length
      ? h(
        "table",
        { class: "models" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["version", "method", "backbone", "dataset", "classes", "val. accuracy", "created", ""].map((t) =>
              h("th", { scope: "col" }, t)
            ),
          ),
        ),
        h("tbody", {}, models.map(modelRow)),
      )
      : h("p", { class: "empty" }, "No models yet: adapt one above."),
  );
}

function modelRow(m, i) {
  const isActive = m.id === active;
  const files = h("span", { class: "files" });
  const download = h("details", {}, h("summary", {}, "Download"), files);
  download.addEventListener(
    "toggle",
    guarded(async () => {
      if (!download.open || files.childElementCount) return;
      const detail = await api("GET", `/v1/models/${m.id}`);
      files.replaceChildren(
        ...detail.files.map((f) =>
          h("a", { href: `/v1/models/${m.id}/tfjs/${f}`, download: `${m.id}-${f}` }, f)
        ),
      );
    }),
  );
  return h(
    "tr",
    { "data-model": m.id, class: isActive ? "active" : "" },
    h("td", {}, `${models.length - i}`, isActive ? h("span", { class: "badge" }, "active") : null),
    h("td", {}, m.method),
    h("td", {}, m.backbone),
    h("td", {}, m.dataset.name),
    h("td", { class: "classes" }, m.classNames.join(", ")),
    h("td", {}, pct(m.valAccuracy)),
    h("td", {}, new Date(m.createdAt).toLocaleString()),
    h(
      "td",
      { class: "actions" },
      h("button", {
        type: "button",
        class: "small",
        disabled: isActive,
        onclick: guarded(async () => {
          await api("POST", `/v1/models/${m.id}/activate`);
          notify(`version ${models.length - i} is active`);
          await refreshModels();
        }),
      }, isActive ? "Active" : "Activate"),
      h("button", {
        type: "button",
        class: "small danger",
        disabled: isActive,
        title: isActive ? "the active model cannot be deleted" : "",
        onclick: guarded(async () => {
          if (!confirm(`Delete version ${models.length - i}?`)) return;
          await api("DELETE", `/v1/models/${m.id}`);
          await refreshModels();
        }),
      }, "Delete"),
      download,
    ),
  );
}

async function predict(file) {
  const form = new FormData();
  form.append("image", file, file.name);
  form.append("topK", "5");
  const { model, predictions: [p] } = await api("POST", `/v1/models/${$("tryModel").value}/predict`, form);
  emit("predicted", model);
  const preview = h("img", { src: URL.createObjectURL(file), alt: "the image asked about", width: 112 });
  preview.onload = () => URL.revokeObjectURL(preview.src);
  $("tryResult").replaceChildren(
    preview,
    h(
      "div",
      {},
      h("p", {}, h("strong", { class: "top-label" }, p.label), ` (${pct(p.score)}) from model ${model}`),
      bars(p.topK.map((t) => ({ label: t.label, value: t.score }))),
    ),
  );
}
