// What the panels share: the server's info, the chosen dataset, and a few events between panels.

const listeners = new Map();

/** Shared state; `datasetId` is remembered in this browser. */
export const state = {
  info: null,
  datasetId: localStorage.getItem("daft-dataset") ?? "",
};

/** Chooses the dataset every panel works on, and tells them. */
export function selectDataset(id) {
  state.datasetId = id ?? "";
  if (id) localStorage.setItem("daft-dataset", id);
  else localStorage.removeItem("daft-dataset");
  emit("dataset", state.datasetId);
}

/** Calls `fn` on every later `emit(name, ...)`. Names: dataset, datasetContents, jobs, models, predicted, showJob. */
export function on(name, fn) {
  if (!listeners.has(name)) listeners.set(name, []);
  listeners.get(name).push(fn);
}

export function emit(name, ...args) {
  for (const fn of listeners.get(name) ?? []) fn(...args);
}
