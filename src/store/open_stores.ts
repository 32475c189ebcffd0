import { join } from "node:path";
import { DatasetStore, type DatasetStoreOptions } from "./dataset_store.ts";
import { ModelStore } from "./model_store.ts";

/** The dataset and model stores under one data directory. */
export interface Stores {
  dataDir: string;
  datasets: DatasetStore;
  models: ModelStore;
}

/**
 * Opens the stores under `dataDir` (`datasets/`, `models/`; the job store is the jobs' own), creating what is missing.
 *
 * @example
 * ```ts
 * import { openStores } from "./open_stores.ts";
 * const stores = await openStores(await Deno.makeTempDir(), { maxSamplesPerDataset: 100 });
 * console.assert(stores.datasets.maxSamplesPerDataset === 100);
 * ```
 */
export async function openStores(
  dataDir: string,
  options: DatasetStoreOptions = {},
): Promise<Stores> {
  return {
    dataDir,
    datasets: await DatasetStore.open(join(dataDir, "datasets"), options),
    models: await ModelStore.open(join(dataDir, "models")),
  };
}
