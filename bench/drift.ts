/**
 * The drift benchmark (docs/DRIFT.md): on a corruption shift, (1) how well the drift score separates
 * windows of in-distribution (ID) traffic from windows of shifted (OOD) traffic, per window size and per
 * choice of watched statistics, and (2) the OOD accuracy of a DAFT model before and after a `bn-refresh`
 * (AdaBN) on 16 to 256 unlabelled OOD images, over seeds. Also the serving cost of the monitor.
 *
 *   deno task bench:drift [--shift mnist-corrupted] [--backbone tiny] [--seeds 3] [--shots 10] [--epochs 10]
 *     [--test-per-class 60] [--windows 50] [--cost-backbone tiny] [--cost-requests 400] [--json out.json]
 *
 * Every image a score or an accuracy is measured on is disjoint from the images the model was adapted on;
 * the OOD images refreshed on are disjoint from the OOD images accuracy is measured on.
 */
import * as tf from "@tensorflow/tfjs";
import { commandLine } from "../cli/_args.ts";
import { adapt } from "../src/adapt/adapt.ts";
import type { AdaptedModel, ImageStatistics } from "../src/adapt/adapted_model.ts";
import { refreshBatchNorm } from "../src/adapt/bn_refresh.ts";
import { type DriftReference, MomentSums } from "../src/adapt/drift_reference.ts";
import { driftScore } from "../src/adapt/drift_score.ts";
import { initBackend } from "../src/backend/init_backend.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { seededRandom } from "../src/data/random.ts";
import { type ShiftName, SHIFTS } from "../src/data/shifts.ts";
import { takePerClass } from "../src/data/take_per_class.ts";
import { InferencePlan } from "../src/model/inference_plan.ts";
import { loadBackbone } from "../src/model/registry.ts";
import { auroc } from "./_auroc.ts";
import { measureServingCost, type ServingCost } from "./_drift_serving_cost.ts";

const USAGE = `usage: deno task bench:drift [options]

Drift-score separation of ID and shifted traffic, and OOD accuracy before and after a bn-refresh.

  --shift NAME --backbone NAME --seeds N --shots N --epochs N --test-per-class N --windows N
  --cost-backbone NAME --cost-requests N --json FILE`;

/** Window sizes the detection part scores. */
export const WINDOW_SIZES = [16, 32, 64, 128, 256];
/** Refresh set sizes (unlabelled OOD images). */
export const REFRESH_SIZES = [16, 32, 64, 128, 256];
/** OOD images set aside for refreshing (the rest are the OOD test set). */
const REFRESH_POOL = 256;

/** Which statistics a score variant reads. */
export type Variant = "all" | "stages" | "features" | "confidence";
const VARIANTS: Variant[] = ["all", "stages", "features", "confidence"];

interface Rows {
  statistics: ImageStatistics;
  groups?: string[];
}

// Per-image statistics of a whole set, in batches of 64.
async function statisticsOf(model: AdaptedModel, x: tf.Tensor4D): Promise<ImageStatistics> {
  const parts: ImageStatistics[] = [];
  for (let start = 0; start < x.shape[0]; start += 64) {
    const batch = x.slice([start, 0, 0, 0], [Math.min(64, x.shape[0] - start), -1, -1, -1]);
    parts.push((await model.predictObserved(batch, 1, 64)).statistics);
    batch.dispose();
  }
  const width = parts[0].width;
  const rows = new Float32Array(parts.reduce((a, p) => a + p.rows.length, 0));
  const confidence = new Float32Array(x.shape[0]);
  let r = 0, c = 0;
  for (const p of parts) {
    rows.set(p.rows, r);
    confidence.set(p.confidence, c);
    r += p.rows.length;
    c += p.confidence.length;
  }
  return { layers: parts[0].layers, width, rows, confidence };
}

// The score of one window (image indices into `rows`) under a variant.
function windowScore(reference: DriftReference, rows: ImageStatistics, ix: number[], variant: Variant) {
  const sums = new MomentSums(rows.layers);
  for (const i of ix) sums.add(rows.rows.subarray(i * rows.width, (i + 1) * rows.width), rows.confidence[i]);
  if (variant === "confidence") return reference.confidence - sums.confidence();
  // The feature layer is the last watched one; the others are the stage inputs.
  const keep = (_: unknown, i: number) =>
    variant === "all" || (variant === "features") === (i === rows.layers.length - 1);
  const ref = { ...reference, layers: reference.layers.filter(keep) };
  return driftScore(ref, sums.moments().filter(keep)).score;
}

// `count` windows of `size` distinct indices drawn from `pool`.
function windows(pool: number[], size: number, count: number, random: () => number): number[][] {
  if (size > pool.length) throw new RangeError(`a window of ${size} from a pool of ${pool.length}`);
  return Array.from({ length: count }, () => {
    const a = [...pool];
    for (let i = 0; i < size; i++) {
      const j = i + Math.floor(random() * (a.length - i));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a.slice(0, size);
  });
}

const quantile = (xs: number[], q: number) => {
  const s = xs.toSorted((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

/** One seed's detection figures: per variant and window size, AUROC and the score distributions. */
export interface DetectionRecord {
  seed: number;
  variant: Variant;
  window: number;
  auroc: number;
  idMean: number;
  idP95: number;
  oodMean: number;
  /** AUROC per corruption (windows of one corruption only), at this window size. */
  byGroup?: Record<string, number>;
}

/** A refresh on one corruption's images, scored on that corruption's OOD test images. */
export interface SingleRefreshRecord {
  seed: number;
  corruption: string;
  images: number;
  before: number;
  after: number;
}

/** One seed's refresh figures. */
export interface RefreshRecord {
  seed: number;
  /** 0: the adapted model before any refresh. */
  images: number;
  oodAccuracy: number;
  idAccuracy: number;
  oodByGroup: Record<string, number>;
  seconds: number;
}

async function accuracyOf(model: tf.LayersModel, x: tf.Tensor4D, labels: number[], groups?: string[]) {
  const plan = InferencePlan.build(model);
  const predicted = tf.tidy(() => tf.argMax(plan.run(x, 64)[0], 1));
  const p = await predicted.data();
  predicted.dispose();
  plan.dispose();
  const acc = (keep: (i: number) => boolean) => {
    let hit = 0, n = 0;
    labels.forEach((y, i) => {
      if (!keep(i)) return;
      n++;
      if (p[i] === y) hit++;
    });
    return hit / Math.max(n, 1);
  };
  const byGroup: Record<string, number> = {};
  for (const g of new Set(groups ?? [])) byGroup[g] = acc((i) => groups![i] === g);
  return { accuracy: acc(() => true), byGroup };
}

async function main() {
  const { values } = commandLine(USAGE, {
    shift: { type: "string", default: "mnist-corrupted" },
    backbone: { type: "string", default: "tiny" },
    seeds: { type: "string", default: "3" },
    shots: { type: "string", default: "10" },
    epochs: { type: "string", default: "10" },
    "test-per-class": { type: "string", default: "60" },
    windows: { type: "string", default: "50" },
    "cost-backbone": { type: "string", default: "tiny" },
    "cost-requests": { type: "string", default: "400" },
    json: { type: "string" },
  });
  const started = performance.now();
  const backend = await initBackend("auto");
  const shift = values.shift as ShiftName;
  const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => i);
  const shots = Number(values.shots), perWindow = Number(values.windows);
  const testPerClass = Number(values["test-per-class"]);
  if (testPerClass * 10 < REFRESH_POOL + Math.max(...WINDOW_SIZES)) {
    throw new RangeError(
      `--test-per-class ${testPerClass}: the OOD set must hold the refresh pool and a window`,
    );
  }
  const splits = await SHIFTS[shift].load({ poolPerClass: shots, validationPerClass: 1, testPerClass });
  const probe = await loadBackbone({ name: values.backbone! });
  const input = probe.input;
  probe.model.dispose();
  const idX = imagesToTensor(splits.idTest.images, input);
  const oodAll = imagesToTensor(splits.oodTest.images, input);
  const oodRefreshX = oodAll.slice([0, 0, 0, 0], [REFRESH_POOL, -1, -1, -1]);
  const oodX = oodAll.slice([REFRESH_POOL, 0, 0, 0], [-1, -1, -1, -1]);
  const oodLabels = splits.oodTest.labels.slice(REFRESH_POOL);
  const oodGroups = splits.oodGroups?.slice(REFRESH_POOL);
  oodAll.dispose();
  console.error(
    `[drift] ${shift} on ${values.backbone} (${backend.name}): ${idX.shape[0]} ID test, ${
      oodX.shape[0]
    } OOD ` +
      `test, ${REFRESH_POOL} OOD refresh pool; ${shots}-shot DAFT, seeds ${seeds.join(",")}`,
  );

  const detection: DetectionRecord[] = [];
  const refresh: RefreshRecord[] = [];
  const single: SingleRefreshRecord[] = [];
  for (const seed of seeds) {
    const train = takePerClass(splits.trainPool, shots, seed);
    const trainX = imagesToTensor(train.images, input);
    const backbone = await loadBackbone({ name: values.backbone! });
    const t0 = performance.now();
    const model = await adapt(backbone, {
      images: trainX,
      labels: train.labels,
      classNames: train.classNames,
    }, {
      seed,
      epochs: Number(values.epochs),
    });
    trainX.dispose();
    console.error(`[drift] seed ${seed}: adapted in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const reference = model.metadata.driftReference!;

    // Detection: windows of ID test traffic against windows of OOD test traffic.
    const id: Rows = { statistics: await statisticsOf(model, idX) };
    const ood: Rows = { statistics: await statisticsOf(model, oodX), groups: oodGroups };
    console.error(
      `[drift] seed ${seed}: statistics at ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    const random = seededRandom(1000 + seed);
    const idIx = Array.from({ length: idX.shape[0] }, (_, i) => i);
    const oodIx = Array.from({ length: oodX.shape[0] }, (_, i) => i);
    for (const size of WINDOW_SIZES) {
      const idWindows = windows(idIx, size, perWindow, random);
      const oodWindows = windows(oodIx, size, perWindow, random);
      for (const variant of VARIANTS) {
        const idScores = idWindows.map((w) => windowScore(reference, id.statistics, w, variant));
        const oodScores = oodWindows.map((w) => windowScore(reference, ood.statistics, w, variant));
        const record: DetectionRecord = {
          seed,
          variant,
          window: size,
          auroc: auroc(oodScores, idScores),
          idMean: idScores.reduce((a, b) => a + b, 0) / idScores.length,
          idP95: quantile(idScores, 0.95),
          oodMean: oodScores.reduce((a, b) => a + b, 0) / oodScores.length,
        };
        if (oodGroups && size <= 64) {
          record.byGroup = {};
          for (const g of new Set(oodGroups)) {
            const pool = oodIx.filter((i) => oodGroups[i] === g);
            const gw = windows(pool, Math.min(size, pool.length), perWindow, random);
            record.byGroup[g] = auroc(
              gw.map((w) => windowScore(reference, ood.statistics, w, variant)),
              idScores,
            );
          }
        }
        detection.push(record);
      }
    }

    console.error(
      `[drift] seed ${seed}: detection scored at ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    // Refresh: the adapted model, then AdaBN on n unlabelled OOD images from the refresh pool.
    const classifier = model.classifier;
    const before = classifier.getWeights().map((w) => w.clone());
    const score = async (images: number, seconds: number) => {
      const o = await accuracyOf(classifier, oodX, oodLabels, oodGroups);
      const i = await accuracyOf(classifier, idX, splits.idTest.labels);
      refresh.push({
        seed,
        images,
        oodAccuracy: o.accuracy,
        idAccuracy: i.accuracy,
        oodByGroup: o.byGroup,
        seconds,
      });
    };
    await score(0, 0);
    const order = windows(
      Array.from({ length: REFRESH_POOL }, (_, i) => i),
      REFRESH_POOL,
      1,
      seededRandom(seed),
    )[0];
    for (const n of REFRESH_SIZES) {
      const x = tf.gather(oodRefreshX, order.slice(0, n)) as tf.Tensor4D;
      const t = performance.now();
      await refreshBatchNorm(classifier, x, 32);
      const seconds = (performance.now() - t) / 1000;
      x.dispose();
      await score(n, seconds);
      classifier.setWeights(before);
    }
    // One corruption at a time: refresh on that corruption's images of the pool, score on its test images.
    if (oodGroups) {
      const poolGroups = splits.oodGroups!.slice(0, REFRESH_POOL);
      for (const g of new Set(oodGroups)) {
        const ix = poolGroups.flatMap((h, i) => (h === g ? [i] : []));
        const testIx = oodGroups.flatMap((h, i) => (h === g ? [i] : []));
        const testX = tf.gather(oodX, testIx) as tf.Tensor4D;
        const labels = testIx.map((i) => oodLabels[i]);
        const beforeAcc = (await accuracyOf(classifier, testX, labels)).accuracy;
        const x = tf.gather(oodRefreshX, ix) as tf.Tensor4D;
        await refreshBatchNorm(classifier, x, 32);
        x.dispose();
        const afterAcc = (await accuracyOf(classifier, testX, labels)).accuracy;
        testX.dispose();
        classifier.setWeights(before);
        single.push({ seed, corruption: g, images: ix.length, before: beforeAcc, after: afterAcc });
      }
    }
    tf.dispose(before);
    model.dispose();
    const last = refresh.filter((r) => r.seed === seed);
    console.error(
      `[drift] seed ${seed}: OOD accuracy ${
        last.map((r) => `${r.images}:${r.oodAccuracy.toFixed(3)}`).join(" ")
      }`,
    );
  }
  tf.dispose([idX, oodX, oodRefreshX]);

  const cost: ServingCost[] = [];
  for (const name of new Set([values.backbone!, values["cost-backbone"]!])) {
    cost.push(await measureServingCost(name, Number(values["cost-requests"])));
    console.error(`[drift] serving cost on ${name}: ${JSON.stringify(cost.at(-1))}`);
  }
  const seconds = (performance.now() - started) / 1000;
  const report = {
    shift,
    backbone: values.backbone,
    backend: backend.name,
    shots,
    seeds,
    detection,
    refresh,
    single,
    cost,
    seconds,
  };
  if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(report, null, 2));
  console.log(markdown(report));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / Math.max(xs.length - 1, 1));
};
const pm = (xs: number[], digits = 3) => `${mean(xs).toFixed(digits)} ± ${std(xs).toFixed(digits)}`;

/** The report as Markdown tables (means ± std over seeds). */
export function markdown(
  r: {
    shift: string;
    backbone?: string;
    detection: DetectionRecord[];
    refresh: RefreshRecord[];
    single: SingleRefreshRecord[];
    cost: ServingCost[];
    seconds: number;
  },
): string {
  const out: string[] = [];
  out.push(`### Detection: AUROC of OOD vs ID windows (${r.shift}, ${r.backbone})`, "");
  out.push(`| statistics | ${WINDOW_SIZES.map((w) => `w=${w}`).join(" | ")} |`);
  out.push(`| --- | ${WINDOW_SIZES.map(() => "---").join(" | ")} |`);
  for (const v of VARIANTS) {
    const cells = WINDOW_SIZES.map((w) =>
      pm(r.detection.filter((d) => d.variant === v && d.window === w).map((d) => d.auroc))
    );
    out.push(`| ${v} | ${cells.join(" | ")} |`);
  }
  out.push("", "### Drift score (`all`): ID mean, ID 95th percentile, OOD mean", "");
  out.push("| window | ID mean | ID p95 | OOD mean |", "| --- | --- | --- | --- |");
  for (const w of WINDOW_SIZES) {
    const rows = r.detection.filter((d) => d.variant === "all" && d.window === w);
    out.push(
      `| ${w} | ${pm(rows.map((d) => d.idMean))} | ${pm(rows.map((d) => d.idP95))} | ${
        pm(rows.map((d) => d.oodMean))
      } |`,
    );
  }
  const grouped = r.detection.filter((d) => d.byGroup && d.window === 64);
  if (grouped.length) {
    const groups = Object.keys(grouped[0].byGroup!);
    out.push("", "### AUROC per corruption at w=64", "");
    out.push(`| statistics | ${groups.join(" | ")} |`, `| --- | ${groups.map(() => "---").join(" | ")} |`);
    for (const v of VARIANTS) {
      const rows = grouped.filter((d) => d.variant === v);
      out.push(
        `| ${v} | ${groups.map((g) => mean(rows.map((d) => d.byGroup![g])).toFixed(2)).join(" | ")} |`,
      );
    }
  }
  out.push("", "### bn-refresh: accuracy after AdaBN on n unlabelled OOD images", "");
  out.push("| n | OOD accuracy | ID accuracy | refresh s |", "| --- | --- | --- | --- |");
  for (const n of [0, ...REFRESH_SIZES]) {
    const rows = r.refresh.filter((x) => x.images === n);
    out.push(
      `| ${n === 0 ? "0 (adapted)" : n} | ${pm(rows.map((x) => x.oodAccuracy))} | ${
        pm(rows.map((x) => x.idAccuracy))
      } | ${n ? mean(rows.map((x) => x.seconds)).toFixed(2) : "—"} |`,
    );
  }
  const groups = Object.keys(r.refresh[0]?.oodByGroup ?? {});
  if (groups.length) {
    out.push("", "### OOD accuracy per corruption, before and after a refresh on 256 images", "");
    out.push(`| n | ${groups.join(" | ")} |`, `| --- | ${groups.map(() => "---").join(" | ")} |`);
    for (const n of [0, 256]) {
      const rows = r.refresh.filter((x) => x.images === n);
      out.push(
        `| ${n} | ${groups.map((g) => mean(rows.map((x) => x.oodByGroup[g])).toFixed(3)).join(" | ")} |`,
      );
    }
  }
  if (r.single.length) {
    const gs = [...new Set(r.single.map((x) => x.corruption))];
    out.push(
      "",
      "### One corruption at a time: OOD accuracy on it before and after a refresh on its pool images",
      "",
    );
    out.push("| corruption | refresh images | before | after |", "| --- | --- | --- | --- |");
    for (const g of gs) {
      const rows = r.single.filter((x) => x.corruption === g);
      out.push(
        `| ${g} | ${rows[0].images} | ${pm(rows.map((x) => x.before))} | ${pm(rows.map((x) => x.after))} |`,
      );
    }
  }
  out.push("", "### Serving cost of the monitor (PredictionService, one image per request, median ms)", "");
  out.push(
    "| backbone | latency off | latency on | latency overhead | cycle off | cycle on | cycle overhead |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  );
  const over = (on: number, off: number) => `${(100 * (on / off - 1)).toFixed(1)}%`;
  for (const c of r.cost) {
    out.push(
      `| ${c.backbone} | ${c.offMs.toFixed(2)} | ${c.onMs.toFixed(2)} | ${over(c.onMs, c.offMs)} | ` +
        `${c.offCycleMs.toFixed(2)} | ${c.onCycleMs.toFixed(2)} | ${over(c.onCycleMs, c.offCycleMs)} |`,
    );
  }
  out.push("", `Run time: ${r.seconds.toFixed(0)} s.`);
  return out.join("\n");
}

if (import.meta.main) await main();
