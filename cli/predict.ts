/**
 * `deno task predict --model <dir> [--top-k 3] <image files...>`: classifies images with an adapted model
 * and prints one line per image (or JSON with --json).
 */
import { parseArgs } from "node:util";
import { AdaptedModel } from "../src/adapt/adapted_model.ts";
import { initBackend } from "../src/backend/init_backend.ts";
import { decodeImage } from "../src/data/image.ts";
import { imagesToTensor } from "../src/data/input_spec.ts";
import { RuntimeError } from "../src/errors.ts";

try {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      "top-k": { type: "string", default: "3" },
      backend: { type: "string", default: "auto" },
      json: { type: "boolean", default: false },
    },
  });
  if (!values.model || positionals.length === 0) {
    console.log("usage: deno task predict --model <dir> [--top-k 3] [--json] <image files...>");
    Deno.exit(2);
  }
  await initBackend(values.backend as "auto");
  const model = await AdaptedModel.load(values.model);
  const images = [];
  for (const file of positionals) {
    try {
      images.push(decodeImage(await Deno.readFile(file)));
    } catch (err) {
      if (err instanceof RuntimeError) throw new RuntimeError(err.kind, err.code, `${file}: ${err.message}`);
      throw new RuntimeError("not_found", "file_not_found", `${file}: ${(err as Error).message}`);
    }
  }
  const x = imagesToTensor(images, model.metadata.input);
  const predictions = await model.predict(x, Number(values["top-k"]));
  x.dispose();
  if (values.json) {
    console.log(JSON.stringify(positionals.map((file, i) => ({ file, ...predictions[i] })), null, 2));
  } else {
    predictions.forEach((p, i) =>
      console.log(
        `${positionals[i]}\t${p.label}\t${p.score.toFixed(4)}\t${
          p.topK.map((t) => `${t.label}:${t.score.toFixed(3)}`).join(" ")
        }`,
      )
    );
  }
  model.dispose();
} catch (err) {
  if (!(err instanceof RuntimeError)) throw err;
  console.error(`error [${err.code}]: ${err.message}`);
  Deno.exit(1);
}
