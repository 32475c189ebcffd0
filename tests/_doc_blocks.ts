// The fenced blocks of a Markdown document, as tests/docs_commands.test.ts runs them, and the loose match of
// an output a doc shows against the one a command printed.
//
// A shell block's info string says what the test does with it:
//   ```sh                  run, in order, in one bash session per document (variables carry over), from
//                          the repository root
//   ```sh server           start in the background, as in a second terminal; the test waits for /readyz
//                          to answer 200, and stops it with SIGINT (Ctrl-C) when the next server block
//                          starts or the document ends
//   ```sh skip: <reason>   not run, for the reason given
//   ```<lang> output       right after a run block: what that block prints on stdout
// Any other block (ts, js, text, json without `output`) is not a command and is not run.

/** One fenced block. */
export interface DocBlock {
  /** The info string's first word (`sh`, `json`, ...). */
  lang: string;
  /** The rest of the info string (`server`, `output`, `skip: why`). */
  mode: string;
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
}

/** A shell block to run, with the output the doc shows for it, if any. */
export interface DocCommand {
  kind: "run" | "server";
  code: string;
  line: number;
  expected?: string;
}

export const SHELL_LANGS = new Set(["sh", "bash", "shell", "console", "zsh"]);

/** Every fenced block of a Markdown text (``` fences, not nested). */
export function fencedBlocks(markdown: string): DocBlock[] {
  const lines = markdown.split("\n");
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^(\s*)```(\S*)\s*(.*)$/);
    if (!open) continue;
    const indent = open[1].length;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !/^\s*```\s*$/.test(lines[j])) body.push(lines[j++].slice(indent));
    blocks.push({ lang: open[2], mode: open[3].trim(), code: body.join("\n"), line: i + 1 });
    i = j;
  }
  return blocks;
}

/**
 * The commands of a document, in order, each with the output block that follows it. Throws on a shell block
 * whose mode is unknown or a skip without a reason, and on an output block that follows no run block.
 */
export function docCommands(markdown: string): { commands: DocCommand[]; skipped: DocBlock[] } {
  const commands: DocCommand[] = [];
  const skipped: DocBlock[] = [];
  let last: DocCommand | undefined;
  for (const block of fencedBlocks(markdown)) {
    if (block.mode === "output") {
      if (!last || last.kind !== "run" || last.expected !== undefined) {
        throw new Error(`line ${block.line}: an output block must follow a run block`);
      }
      last.expected = block.code;
      continue;
    }
    last = undefined;
    if (!SHELL_LANGS.has(block.lang)) continue;
    if (block.lang !== "sh") throw new Error(`line ${block.line}: write shell blocks as \`\`\`sh`);
    if (block.mode.startsWith("skip")) {
      if (!/^skip:\s*\S/.test(block.mode)) throw new Error(`line ${block.line}: 'skip:' needs a reason`);
      skipped.push(block);
    } else if (block.mode === "" || block.mode === "server") {
      last = { kind: block.mode === "server" ? "server" : "run", code: block.code, line: block.line };
      commands.push(last);
    } else {
      throw new Error(`line ${block.line}: unknown shell block mode '${block.mode}'`);
    }
  }
  return { commands, skipped };
}

const ID = /\b(ds|job|mdl)_[0-9a-z]{16}\b/g;
const TIMESTAMP = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g;
const FLOAT = /-?\d+\.\d+(e[-+]?\d+)?|-?\d+e[-+]?\d+/g;

/**
 * Whether `actual` matches the output a doc shows, loosely: `...` stands for any text (across lines), ids and
 * timestamps match any of their kind, a number written with a fraction or exponent matches any number, and
 * runs of white space match any white space. Everything else, integers included, must be equal.
 */
export function matchesShownOutput(expected: string, actual: string): boolean {
  const tokens: { at: number; end: number; pattern: string }[] = [];
  const add = (re: RegExp, pattern: (m: RegExpExecArray) => string) => {
    for (const m of expected.matchAll(re)) {
      const at = m.index!, end = at + m[0].length;
      if (!tokens.some((t) => at < t.end && end > t.at)) tokens.push({ at, end, pattern: pattern(m) });
    }
  };
  add(/\.\.\./g, () => "[\\s\\S]*?");
  add(ID, (m) => `${m[1]}_[0-9a-z]{16}`);
  add(TIMESTAMP, () => "\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z");
  add(FLOAT, () => "-?\\d+(?:\\.\\d+)?(?:e[-+]?\\d+)?");
  tokens.sort((a, b) => a.at - b.at);
  const literal = (text: string) =>
    text.split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("\\s+");
  let pattern = "";
  let at = 0;
  for (const t of tokens) {
    pattern += literal(expected.slice(at, t.at)) + t.pattern;
    at = t.end;
  }
  pattern += literal(expected.slice(at));
  return new RegExp(`^\\s*${pattern}\\s*$`).test(actual);
}
