import { parseArgs, type ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * `parseArgs` for a task's command line, with the same manners in every task: `--help` (or `-h`) prints
 * `usage` and exits 0; an unknown option, a missing value or a stray argument prints one line naming it and
 * pointing at `--help`, and exits 2. Every option is strict.
 *
 * @example
 * ```ts
 * import { commandLine } from "./_args.ts";
 * const { values } = commandLine("usage: demo [--n N]", { n: { type: "string", default: "1" } }, ["--n", "3"]);
 * console.assert(values.n === "3");
 * ```
 */
export function commandLine<O extends Options>(
  usage: string,
  options: O,
  args: string[] = Deno.args,
  allowPositionals = false,
) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals,
    });
  } catch (err) {
    const task = usage.match(/deno task [\w:]+/)?.[0] ?? "this task";
    console.error(`error: ${(err as Error).message.split("\n")[0]} (${task} --help lists the options)`);
    Deno.exit(2);
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    Deno.exit(0);
  }
  return parsed;
}

/**
 * A numeric option: undefined when absent, else a finite number, or one line naming the option and exit 2.
 *
 * @example
 * ```ts
 * import { numberOption } from "./_args.ts";
 * console.assert(numberOption("epochs", "8") === 8 && numberOption("epochs", undefined) === undefined);
 * ```
 */
export function numberOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) {
    console.error(`error: --${name} must be a number, got '${value}'`);
    Deno.exit(2);
  }
  return n;
}
