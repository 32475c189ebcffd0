// The console's entry: the token field, the server's status, then each panel.
import { api, savedToken, saveToken } from "./api.js";
import { initAdaptPanel, watch } from "./adapt_panel.js";
import { initComparePanel, refreshJobs } from "./compare_panel.js";
import { initDataPanel, refreshDatasets } from "./data_panel.js";
import { $, notify } from "./dom.js";
import { initDriftPanel, refreshDrift } from "./drift_panel.js";
import { initModelsPanel, refreshModels } from "./models_panel.js";
import { initResultsPanel } from "./results_panel.js";
import { emit, state } from "./state.js";

const token = $("token");
token.value = savedToken();
token.addEventListener("change", () => {
  saveToken(token.value.trim());
  notify(token.value ? "token saved in this browser" : "token forgotten");
});

async function refreshStatus() {
  const info = await api("GET", "/v1/info");
  const b = info.backend;
  $("status").textContent = `${info.ready ? "ready" : "starting…"} · backend ${b.name ?? "–"}` +
    (b.adapter && b.name === "webgpu" ? ` (${b.adapter})` : "") + ` · v${info.version}`;
  $("status").className = info.ready ? "ok" : "";
  if (!info.ready) setTimeout(() => refreshStatus().catch(() => {}), 1000);
  return info;
}

try {
  state.info = await refreshStatus();
  initDataPanel();
  const openapi = await fetch("/openapi.json").then((r) => r.json());
  initAdaptPanel(openapi.components?.schemas?.AdaptationRequest);
  initResultsPanel();
  initComparePanel();
  initModelsPanel();
  initDriftPanel();
  await refreshDatasets();
  await Promise.all([refreshJobs(), refreshModels(), refreshDrift()]);
  // A job still running (from before a reload) is followed again; otherwise the newest result is shown.
  const { adaptations } = await api("GET", "/v1/adaptations");
  const mine = adaptations.filter((j) => j.request.dataset === state.datasetId);
  const live = mine.find((j) => j.status === "running" || j.status === "queued");
  if (live) watch(live);
  const finished = mine.find((j) => j.status === "succeeded");
  if (finished) emit("showJob", finished.id);
  document.body.dataset.ready = "true";
} catch (err) {
  notify(`${err.code ?? "error"}: ${err.message}`, "error");
}
