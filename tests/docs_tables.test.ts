// The tables of the docs that restate the code: the configuration settings (README.md and docs/API.md) and the
// error codes the server can answer with (docs/API.md). A setting or a code added without its row fails here.
import assert from "node:assert/strict";
import { CONFIG_SETTINGS } from "../src/config.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const read = (file: string) => Deno.readTextFileSync(`${ROOT}${file}`);

/** The rows of the first Markdown table after `heading` whose header starts with `first`. */
function tableRows(markdown: string, first: string, heading = ""): string[][] {
  const lines = markdown.slice(markdown.indexOf(heading)).split("\n");
  const start = lines.findIndex((l) => new RegExp(`^\\|\\s*${first}\\s*\\|`).test(l));
  assert.ok(start >= 0, `no table starting with '${first}'`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim().replaceAll("\\|", "|")));
  }
  return rows;
}

Deno.test("the configuration tables of README.md and docs/API.md list every setting as src/config.ts has it", () => {
  const expected = CONFIG_SETTINGS.map((s) => [
    `\`${s.flag}\``,
    `\`${s.env}\``,
    s.default ? `\`${s.default}\`` : "—",
    s.description,
  ]);
  for (const doc of ["README.md", "docs/API.md"]) {
    assert.deepEqual(tableRows(read(doc), "flag", "## Configuration"), expected, doc);
  }
});

// Codes that cannot reach an HTTP client, each with the reason.
const NOT_HTTP: Record<string, string> = {
  invalid_config: "a configuration mistake stops the server at start, on stderr",
  data_dir_in_use: "a second server on the same data directory stops at start, on stderr",
  dataset_missing: "the benchmark and test data set readers (src/data)",
  invalid_blend: "the benchmark data shifts (src/data)",
  invalid_corruption: "the benchmark data shifts (src/data)",
  invalid_subset: "the benchmark data set readers (src/data)",
  too_few_examples: "the benchmark data shifts (src/data)",
  empty_class_folder: "the CLI's image folders (readImageFolder)",
  image_folder_missing: "the CLI's image folders (readImageFolder)",
  no_class_folders: "the CLI's image folders (readImageFolder)",
  not_a_directory: "the CLI's image folders (readImageFolder)",
  unknown_backend: "the backend policy is validated with the configuration",
  webgpu_unavailable: "backend bring-up: the server does not become ready, and /readyz says why",
  wasm_unavailable: "backend bring-up: the server does not become ready, and /readyz says why",
  unknown_method: "the API validates the method against the same list first (422)",
  invalid_hyperparameter: "the API validates the same hyperparameters, more strictly, first (422)",
  not_found: "Hono raises no 404 of its own on these routes; an unknown route is route_not_found",
  shape_mismatch: "library contract: the runtime always passes matching shapes",
  plan_disposed: "library contract: a model is disposed only after its last prediction",
  unsupported_model: "library contract: only registered backbones are adapted over HTTP",
  invalid_input: "library contract: images are decoded before they are resized",
  invalid_input_size: "library contract: the registry's input size is valid",
  unknown_layer: "library contract: the registry's feature layers exist",
  invalid_thumbnail_size: "the API validates the thumbnail size (16 to 512) first (422)",
};

function codesInSource(): Set<string> {
  const codes = new Set<string>();
  const patterns = [
    /"(?:invalid|not_found|forbidden|conflict|too_large|unsupported|busy|unavailable|upstream|internal)",\s*"([a-z_]+)"/g,
    /\bcode: "([a-z_]+)"/g,
    /\bfail\(\s*"([a-z_]+)"/g,
    /errorBody\(\s*"([a-z_]+)"/g,
    /^\s*\d{3}: "([a-z_]+)",$/gm,
  ];
  for (const dir of ["src", "routes"]) {
    const walk = (path: string) => {
      for (const entry of Deno.readDirSync(path)) {
        const full = `${path}/${entry.name}`;
        if (entry.isDirectory) walk(full);
        else if (entry.name.endsWith(".ts")) {
          const text = Deno.readTextFileSync(full);
          for (const re of patterns) for (const m of text.matchAll(re)) codes.add(m[1]);
        }
      }
    };
    walk(`${ROOT}${dir}`);
  }
  return codes;
}

Deno.test("docs/API.md's error section names every code the server can answer with", () => {
  const api = read("docs/API.md");
  const errors = api.slice(api.indexOf("## Errors"), api.indexOf("## Security"));
  const codes = codesInSource();
  assert.ok(
    codes.has("unknown_field") && codes.has("worker_crashed") && codes.has("uri_too_long"),
    "the scan works",
  );
  const missing = [...codes].filter((c) => !(c in NOT_HTTP) && !errors.includes(`\`${c}\``));
  assert.deepEqual(missing, [], "codes the error section of docs/API.md does not name");
  const stale = Object.keys(NOT_HTTP).filter((c) => !codes.has(c));
  assert.deepEqual(stale, [], "codes listed as not reaching HTTP that no source raises any more");
});
