/**
 * `deno task predict --model <dir> [--top-k 3] [--json] <image files...>`: classifies images with an adapted
 * model and prints a table, one row per image (or JSON with --json).
 */
import { AdaptedModel } from "../src/adapt/adapted_model.ts";
import { initBackend } from "../src/backend/init_backend.ts";
import { decodeImage } from "../src/data/image.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { RuntimeError } from "../src/errors.ts";
import { commandLine, numberOption } from "./_args.ts";
import { table } from "./_terminal.ts";

const USAGE = `usage: deno task predict --model <dir> [options] <image files...>

Classifies images (JPEG, PNG, WebP, GIF, AVIF, TIFF) with a model written by 'deno task adapt' and prints one row per image: the file,
the predicted label, its score (softmax probability) and the top-k labels with their scores.

  --model DIR     the adapted model's directory (model.json, weights.bin, metadata.json)
  --top-k N       how many labels to list per image (default 3)
  --json          print JSON instead of a table
  --backend NAME  auto | webgpu | wasm | cpu (default auto)`;

try {
  const { values, positionals } = commandLine(
    USAGE,
    {
      model: { type: "string" },
      "top-k": { type: "string", default: "3" },
      backend: { type: "string", default: "auto" },
      json: { type: "boolean", default: false },
    },
    Deno.args,
    true,
  );
  if (!values.model || positionals.length === 0) {
    console.error("error: --model and at least one image file are required (deno task predict --help)");
    Deno.exit(2);
  }
  const topK = numberOption("top-k", values["top-k"])!;
  if (!Number.isInteger(topK) || topK < 1) {
    console.error(`error: --top-k must be a whole number from 1, got '${values["top-k"]}'`);
    Deno.exit(2);
  }
  await initBackend(values.backend as "auto");
  const model = await AdaptedModel.load(values.model);
  const images = [];
  for (const file of positionals) {
    try {
      images.push(await decodeImage(await Deno.readFile(file)));
    } catch (err) {
      if (err instanceof RuntimeError) throw new RuntimeError(err.kind, err.code, `${file}: ${err.message}`);
      throw new RuntimeError("not_found", "file_not_found", `${file}: ${(err as Error).message}`);
    }
  }
  const x = imagesToTensor(images, model.metadata.input);
  const predictions = await model.predict(x, topK);
  x.dispose();
  if (values.json) {
    console.log(JSON.stringify(positionals.map((file, i) => ({ file, ...predictions[i] })), null, 2));
  } else {
    console.log(
      table(
        ["file", "label", "score", `top ${topK}`],
        predictions.map((p, i) => [
          positionals[i],
          p.label,
          p.score.toFixed(4),
          p.topK.map((t) => `${t.label}:${t.score.toFixed(3)}`).join(" "),
        ]),
      ).trimEnd(),
    );
  }
  model.dispose();
} catch (err) {
  if (!(err instanceof RuntimeError)) throw err;
  console.error(`error [${err.code}]: ${err.message}`);
  Deno.exit(1);
}
