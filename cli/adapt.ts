/**
 * `deno task adapt --data <folder> [--method daft] [--backbone mobilenetv2-imagenet] --out <dir>`:
 * adapts a backbone to a folder with one sub-folder of images per class (JPEG, PNG, WebP, GIF, AVIF, TIFF), shows progress, prints a
 * summary and writes the adapted model (tfjs artifacts + metadata.json) to --out.
 */
import * as tf from "@tensorflow/tfjs";
import { adapt } from "../src/adapt/adapt.ts";
import { METHOD_NAMES } from "../src/adapt/methods.ts";
import { initBackend } from "../src/backend/init_backend.ts";
import { readImageFolder } from "../src/data/folder.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { RuntimeError } from "../src/errors.ts";
import { DEFAULT_BACKBONE, loadBackbone } from "../src/model/registry.ts";
import { commandLine, numberOption } from "./_args.ts";
import { progressReporter, table } from "./_terminal.ts";

const USAGE = `usage: deno task adapt --data <folder> --out <dir> [options]

Adapts a pretrained backbone to a folder of labelled images and writes the adapted model (model.json,
weights.bin, metadata.json) to --out. Progress goes to stderr, the report to stdout.

  --data DIR           one sub-folder per class, JPEG, PNG, WebP, GIF, AVIF or TIFF images inside
  --out DIR            where to write the adapted model
  --method NAME        ${METHOD_NAMES.join(" | ")} (default daft)
  --backbone NAME      mobilenetv2-imagenet | tiny | path (default ${DEFAULT_BACKBONE})
  --backbone-path DIR  with --backbone path: a tfjs LayersModel directory
  --feature-layer NAME with --backbone path: the layer to take features from
  --epochs N --batch-size N --lr-head X --lr-backbone X --seed N
  --min-steps N        train at least N SGD steps: small sets get more epochs (default 60; 0: exactly --epochs)
  --augment LIST       comma list of crop, flip (default none)
  --backend NAME       auto | webgpu | wasm | cpu (default auto)`;

async function main() {
  const { values } = commandLine(USAGE, {
    data: { type: "string" },
    out: { type: "string" },
    method: { type: "string", default: "daft" },
    backbone: { type: "string", default: DEFAULT_BACKBONE },
    "backbone-path": { type: "string" },
    "feature-layer": { type: "string" },
    epochs: { type: "string" },
    "batch-size": { type: "string" },
    "min-steps": { type: "string" },
    "lr-head": { type: "string" },
    "lr-backbone": { type: "string" },
    seed: { type: "string" },
    augment: { type: "string", default: "" },
    backend: { type: "string", default: "auto" },
  });
  if (!values.data || !values.out) {
    console.error(`error: --data and --out are required (deno task adapt --help lists the options)`);
    Deno.exit(2);
  }
  const num = (name: "epochs" | "min-steps" | "batch-size" | "lr-head" | "lr-backbone" | "seed") =>
    numberOption(name, values[name]);
  // A zero rate leaves that part untrained (a zero head predicts 1/K for every class): refused, as by the API.
  const positive = (name: "lr-head" | "lr-backbone") => {
    const v = num(name);
    if (v !== undefined && !(v > 0)) {
      console.error(`error: --${name} must be a positive number, got '${values[name]}'`);
      Deno.exit(2);
    }
    return v;
  };
  const hyper = {
    epochs: num("epochs"),
    minSteps: num("min-steps"),
    batchSize: num("batch-size"),
    lrHead: positive("lr-head"),
    lrBackbone: positive("lr-backbone"),
    seed: num("seed"),
  };
  const augment = new Set(values.augment.split(",").filter(Boolean));
  for (const a of augment) {
    if (a !== "crop" && a !== "flip") {
      throw new RuntimeError("invalid", "invalid_augment", `unknown augmentation '${a}'; use crop, flip`);
    }
  }

  const info = await initBackend(values.backend as "auto");
  console.error(
    `backend: ${info.name}${info.adapter.available ? ` (adapter: ${info.adapter.description})` : ""}`,
  );
  const backbone = await loadBackbone({
    name: values.backbone,
    path: values["backbone-path"],
    featureLayer: values["feature-layer"],
  });
  const folder = await readImageFolder(values.data);
  const images = imagesToTensor(folder.images, backbone.input);
  console.error(
    `data: ${folder.images.length} images in ${folder.classNames.length} classes from ${values.data}`,
  );

  const started = performance.now();
  const model = await adapt(backbone, { images, labels: folder.labels, classNames: folder.classNames }, {
    method: values.method as "daft",
    ...hyper,
    augment: { crop: augment.has("crop"), flip: augment.has("flip") },
    onProgress: progressReporter(started),
  });
  images.dispose();
  await model.save(values.out);
  const m = model.metadata.metrics;
  if (Deno.stderr.isTerminal()) console.error("");
  console.log(table(
    ["epoch", "train loss", "train acc", "val acc", "lr head", "lr backbone", "s"],
    m.history.map((h) => [
      h.epoch + 1,
      h.trainLoss.toFixed(4),
      h.trainAccuracy.toFixed(3),
      h.valAccuracy.toFixed(3),
      h.lrHead.toExponential(2),
      h.lrBackbone.toExponential(2),
      h.seconds.toFixed(1),
    ]),
  ));
  console.log(table(["summary", ""], [
    ["method", model.metadata.method],
    ["backbone", `${model.metadata.backbone.name} (${backbone.provenance.featureLayer})`],
    [
      "val accuracy (kept epoch)",
      `${m.valAccuracy.toFixed(3)} (epoch ${
        m.bestEpoch + 1
      } of ${m.history.length}, ${model.metadata.hyperparameters.selection})`,
    ],
    ["linear-probe baseline, same split", m.baseline.valAccuracy.toFixed(3)],
    ["verdict", `${m.guard.verdict}: ${m.guard.message}`],
    [
      "feature cosine (mean ± std)",
      `${m.distortion.cosineMean.toFixed(4)} ± ${m.distortion.cosineStd.toFixed(4)}`,
    ],
    ["feature L2 (mean ± std)", `${m.distortion.l2Mean.toFixed(4)} ± ${m.distortion.l2Std.toFixed(4)}`],
    [
      "BN conversion",
      model.metadata.bnConversion
        ? `${model.metadata.bnConversion.layersConverted} layers, max |Δ output| ${
          model.metadata.bnConversion.maxAbsOutputDiff.toExponential(2)
        }`
        : "none",
    ],
    ["samples (train / val)", `${m.trainSamples} / ${m.valSamples}`],
    ["time", `${m.seconds.toFixed(1)} s on ${tf.getBackend()}`],
    ["saved to", values.out],
  ]));
  console.log(
    table(
      ["class", "val accuracy", "baseline val accuracy"],
      Object.entries(m.validation.perClassAccuracy).map(([k, v]) => [
        k,
        v.toFixed(3),
        (m.baseline.validation.perClassAccuracy[k] ?? NaN).toFixed(3),
      ]),
    ),
  );
  if (m.guard.verdict !== "ok") {
    console.error(
      `warning: ${m.guard.message.replace(/: not activated$/, "")}; the server would not activate this model`,
    );
  }
  model.dispose();
}

try {
  await main();
} catch (err) {
  if (err instanceof RuntimeError) {
    console.error(`${Deno.stderr.isTerminal() ? "\n" : ""}error [${err.code}]: ${err.message}`);
    Deno.exit(1);
  }
  throw err;
}
