// Every shell block of README.md and docs/*.md runs here as a reader would paste it, and prints what the doc
// shows (tests/_doc_blocks.ts has the conventions and the loose match). What the test changes, so that runs
// cannot collide with each other or with a server already on the machine: a server block listens on a free
// port (the doc's port is rewritten in that block's flags and in every later block's URLs) and keeps its data
// in a fresh directory (DATA_DIR, or the block's --data-dir under a temporary directory); `/tmp/` in any
// block is a fresh temporary directory. Nothing else is rewritten.
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { type DocCommand, docCommands, fencedBlocks, matchesShownOutput } from "./_doc_blocks.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DOCS = ["README.md", ...[...Deno.readDirSync(`${ROOT}docs`)].map((e) => `docs/${e.name}`)]
  .filter((f) => f.endsWith(".md")).sort();
const DEFAULT_PORT = 8787;
const DOC_TIMEOUT_MS = 8 * 60_000;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

interface Outcome {
  command: DocCommand;
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a document's commands in one bash session; returns each run block's output and exit status, with the
 * output the doc shows rewritten as its command was.
 */
async function runDoc(commands: DocCommand[]): Promise<{ outcomes: Outcome[]; log: string }> {
  const tmp = await Deno.makeTempDir({ prefix: "daft-docs-" });
  await Deno.mkdir(`${tmp}/tmp`);
  const ports = new Map<number, number>();
  const rewrite = (code: string) => {
    let out = code.replaceAll("/tmp/", `${tmp}/tmp/`);
    for (const [from, to] of ports) {
      out = out.replace(
        new RegExp(`\\b(localhost|127\\.0\\.0\\.1|0\\.0\\.0\\.0):${from}\\b`, "g"),
        `$1:${to}`,
      );
    }
    return out;
  };
  const script = [
    "set -u",
    `cd '${ROOT}'`,
    "SERVER=",
    'stop_server() { if [ -n "$SERVER" ]; then kill -INT -- -$SERVER 2>/dev/null; wait $SERVER; SERVER=; fi; }',
    "trap stop_server EXIT",
    "wait_ready() { for i in $(seq 1 900); do curl -sf -o /dev/null http://127.0.0.1:$1/readyz && return 0; " +
    "kill -0 $SERVER 2>/dev/null || return 1; sleep 0.2; done; return 1; }",
  ];
  // The outputs a doc shows get the same rewriting as its commands (a path under /tmp/, a port).
  const shown = new Map<number, string>();
  commands.forEach((command, i) => {
    if (command.kind === "server") {
      const docPort = Number(command.code.match(/--port[ =](\d+)/)?.[1] ?? DEFAULT_PORT);
      const port = freePort();
      ports.set(docPort, port);
      const code = rewrite(command.code).replace(/--port([ =])\d+/, `--port$1${port}`);
      Deno.writeTextFileSync(`${tmp}/block-${i}.sh`, code);
      script.push(
        "stop_server",
        `PORT=${port} DATA_DIR='${tmp}/data' setsid bash '${tmp}/block-${i}.sh' > '${tmp}/server-${i}.log' 2>&1 &`,
        "SERVER=$!",
        `wait_ready ${port} || { echo "the server of line ${command.line} did not become ready" >&2; exit 97; }`,
      );
    } else {
      Deno.writeTextFileSync(`${tmp}/block-${i}.sh`, rewrite(command.code));
      if (command.expected !== undefined) shown.set(i, rewrite(command.expected));
      script.push(
        `printf '\\036block ${i}\\036'`,
        `{ source '${tmp}/block-${i}.sh'; } 2> '${tmp}/block-${i}.err'`,
        `printf '\\036end ${i} %d\\036' $?`,
      );
    }
  });
  const child = new Deno.Command("bash", {
    args: ["-c", script.join("\n")],
    stdout: "piped",
    stderr: "piped",
    env: { PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH")}`, NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGTERM"), DOC_TIMEOUT_MS);
  const result = await child.output();
  clearTimeout(timer);
  const stdout = new TextDecoder().decode(result.stdout);
  const outcomes: Outcome[] = [];
  // deno-lint-ignore no-control-regex -- the markers the script prints between blocks
  for (const m of stdout.matchAll(/\x1eblock (\d+)\x1e([\s\S]*?)\x1eend \1 (\d+)\x1e/g)) {
    const i = Number(m[1]);
    outcomes.push({
      command: { ...commands[i], expected: shown.get(i) },
      status: Number(m[3]),
      stdout: m[2],
      stderr: await Deno.readTextFile(`${tmp}/block-${i}.err`),
    });
  }
  let log = new TextDecoder().decode(result.stderr);
  for await (const entry of Deno.readDir(tmp)) {
    if (entry.name.startsWith("server-")) {
      log += `\n--- ${entry.name}\n${await Deno.readTextFile(`${tmp}/${entry.name}`)}`;
    }
  }
  await Deno.remove(tmp, { recursive: true });
  return { outcomes, log };
}

for (const doc of DOCS) {
  const markdown = Deno.readTextFileSync(`${ROOT}${doc}`);
  const { commands, skipped } = docCommands(markdown);
  if (commands.length === 0) continue;
  Deno.test(`every command in ${doc} runs as pasted and prints what the doc shows`, async () => {
    const { outcomes, log } = await runDoc(commands);
    const runs = commands.filter((c) => c.kind === "run");
    assert.equal(
      outcomes.length,
      runs.length,
      `only ${outcomes.length} of ${runs.length} blocks ran:\n${log}`,
    );
    // Every block's failure at once: one run of the document shows all that drifted.
    const failures: string[] = [];
    for (const { command, status, stdout, stderr } of outcomes) {
      const where = `${doc}:${command.line}`;
      if (status !== 0) {
        failures.push(`${where} exited ${status}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`);
      } else if (command.expected !== undefined && !matchesShownOutput(command.expected, stdout)) {
        failures.push(
          `${where} printed what the doc does not show\n--- the doc\n${command.expected}\n--- printed\n${stdout}` +
            `\n--- stderr\n${stderr}`,
        );
      }
    }
    assert.equal(failures.length, 0, failures.join("\n\n"));
    assert.ok(skipped.every((b) => b.mode.length > "skip: ".length));
  });
}

Deno.test("every shell block in the docs is run, or skipped with a reason", () => {
  for (const doc of DOCS) {
    const markdown = Deno.readTextFileSync(`${ROOT}${doc}`);
    docCommands(markdown); // throws on an unmarked mode, a skip without a reason, a stray output block
    for (const block of fencedBlocks(markdown)) {
      assert.ok(
        block.mode !== "output" || block.lang === "text",
        `${doc}:${block.line}: write outputs as \`\`\`text output (deno fmt reformats json blocks)`,
      );
      if (block.lang === "text") {
        assert.doesNotMatch(
          block.code,
          /^\s*(deno|curl|npx) /m,
          `${doc}:${block.line}: a command in a text block`,
        );
      }
    }
  }
});

Deno.test("the loose match takes ids, timings and float noise, and nothing else", () => {
  const shown = '{"id":"job_0mx3iadov7ykyjt7","valAccuracy":0.75,"epochs":8,"at":"2026-11-30T16:52:23.119Z"}';
  assert.ok(
    matchesShownOutput(
      shown,
      '{"id":"job_0aaaaaaaaaaaaaaa","valAccuracy":1,"epochs":8,"at":"2027-01-01T00:00:00.000Z"}',
    ),
  );
  assert.ok(!matchesShownOutput(shown, shown.replace('"epochs":8', '"epochs":9')));
  assert.ok(!matchesShownOutput(shown, shown.replace("job_", "mdl_")));
  assert.ok(matchesShownOutput("a ... z", "a b\nc z"));
  assert.ok(matchesShownOutput("epoch  loss\n1      0.5", "epoch loss\n1   12.25"));
  assert.ok(!matchesShownOutput("label 7", "label 1"));
});
