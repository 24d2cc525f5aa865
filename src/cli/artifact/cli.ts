// The shape of a command, its arguments and its help. Help is generated from the same option
// table the parser uses, so the two cannot drift apart.
import { parseArgs } from "node:util";
import type { ArtifactClient } from "../../client/node.js";
import { usageError, type ExitStatus } from "./exit.js";
import type { OutputFormat } from "./output.js";
import type { Resolver } from "./resolve.js";
import type { Session } from "./session.js";

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** Placeholder in help, e.g. "<text>" (string options). */
  value?: string;
  description: string;
  /** Boolean that also takes `--no-<name>` (help shows `--[no-]name`). */
  negatable?: boolean;
  /** What is wrong with a string value, checked before any call (undefined: nothing). */
  check?: (value: string) => string | undefined;
}

export interface Args {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface Context {
  format: OutputFormat;
  /** Where the calls go and with which credential (flags, environment, config file). */
  session(): Session;
  /** The typed client for the session; a usage error when no URL is known. */
  client(): ArtifactClient;
  /** A client for another URL and token (`artifact login` checks a token before storing it). */
  connect(url: string, token: string | undefined): ArtifactClient;
  resolver(): Resolver;
  /** Results: stdout. */
  print(text: string): void;
  /** Progress, warnings and hints: stderr, one line each. */
  note(line: string): void;
  stdin: NodeJS.ReadStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

export interface Leaf {
  name: string;
  /** Positional arguments for help and arity checks: `<x>` required, `[<x>]` optional, a trailing `...` any number. */
  args: string[];
  summary: string;
  /** Paragraphs after the usage line. */
  description: string;
  options?: Record<string, OptionSpec>;
  /** Formats `--output` may pick (default table and json). */
  outputs?: OutputFormat[];
  examples?: string[];
  run(ctx: Context, args: Args): Promise<ExitStatus | void>;
}

export interface Group {
  name: string;
  summary: string;
  subcommands: Leaf[];
  /** The subcommand run when none is named (`artifact registries` lists them). */
  default?: string;
}

export type Command = Leaf | Group;

export const isGroup = (c: Command): c is Group => "subcommands" in c;

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: { type: "string", value: "<url>", description: "the service, e.g. http://localhost:8080 (else ARTIFACT_URL, else the login's)" },
  "token-file": { type: "string", value: "<file>", description: "an API token in a file (else ARTIFACT_TOKEN, else the login's)" },
  output: { type: "string", short: "o", value: "<format>", description: "table (default) or json" },
  help: { type: "boolean", short: "h", description: "print help" },
};

/** Options a command may take, as parseArgs wants them. */
function parserOptions(specs: Record<string, OptionSpec>) {
  return Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, s.short ? { type: s.type, short: s.short } : { type: s.type }]));
}

/** The arguments before the command: global options only. */
export function splitGlobal(argv: string[]): { global: string[]; rest: string[] } {
  let i = 0;
  while (i < argv.length) {
    const a = argv[i]!;
    if (a === "--" || !a.startsWith("-") || a === "-") break;
    const name = a.startsWith("--") ? a.slice(2) : Object.entries(GLOBAL_OPTIONS).find(([, s]) => `-${s.short}` === a)?.[0];
    const takesValue = name !== undefined && !name.includes("=") && GLOBAL_OPTIONS[name]?.type === "string";
    i += takesValue ? 2 : 1;
  }
  return { global: argv.slice(0, i), rest: argv.slice(i) };
}

export function parse(argv: string[], specs: Record<string, OptionSpec>, path: string): Args {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: parserOptions(specs), strict: true, allowPositionals: true, allowNegative: true });
    for (const [name, value] of Object.entries(values)) {
      if (value === false && !specs[name]?.negatable) throw new TypeError(`Unknown option '--no-${name}'`);
    }
    return { values, positionals };
  } catch (err) {
    // parseArgs says "Unknown option '--x'. To specify a positional argument starting with a '-'…".
    const what = (err as Error).message.replace(/\. To specify a positional argument.*$/s, "");
    throw usageError(`${what.charAt(0).toLowerCase()}${what.slice(1)} (see ${path} --help)`);
  }
}

/** Every option's own check, before the command talks to anyone. */
export function checkOptions(args: Args, specs: Record<string, OptionSpec>): void {
  for (const [name, value] of Object.entries(args.values)) {
    const problem = typeof value === "string" ? specs[name]?.check?.(value) : undefined;
    if (problem) throw usageError(`--${name} ${JSON.stringify(value)}: ${problem}`);
  }
}

/** A leaf's own options over the global ones: a command may give a global name its own meaning (`registries create --url`). */
export function leafOptions(leaf: Leaf): Record<string, OptionSpec> {
  return { ...GLOBAL_OPTIONS, ...leaf.options };
}

export function checkArity(path: string, leaf: Leaf, positionals: string[]): void {
  const required = leaf.args.filter((a) => !a.startsWith("[")).length;
  const variadic = leaf.args.some((a) => a.endsWith("..."));
  if (positionals.length < required) throw usageError(`missing ${leaf.args.slice(positionals.length, required).join(" ")} (see ${path} --help)`);
  if (!variadic && positionals.length > leaf.args.length) {
    throw usageError(`unexpected argument ${JSON.stringify(positionals[leaf.args.length])} (see ${path} --help)`);
  }
}

/** Everything on stdin (a secret piped in), without the one line break `echo` adds. */
export async function readStdin(ctx: Context): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

export const str = (args: Args, name: string) => args.values[name] as string | undefined;
export const bool = (args: Args, name: string) => args.values[name] as boolean | undefined;

function optionLines(specs: Record<string, OptionSpec>): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const long = s.negatable ? `--[no-]${name}` : `--${name}`;
    return [`${s.short ? `-${s.short}, ` : "    "}${long}${s.value ? ` ${s.value}` : ""}`, s.description] as const;
  });
  const w = Math.max(...rows.map(([flag]) => flag.length));
  return rows.map(([flag, text]) => `  ${flag.padEnd(w)}  ${text}`).join("\n");
}

export function leafHelp(path: string, leaf: Leaf): string {
  const outputs = leaf.outputs ?? ["table", "json"];
  const parts = [`Usage: ${path}${leaf.args.length ? ` ${leaf.args.join(" ")}` : ""} [options]`, "", leaf.description.trim()];
  if (leaf.options && Object.keys(leaf.options).length) parts.push("", "Options:", optionLines(leaf.options));
  parts.push(
    "",
    `Output (-o): ${outputs.join(", ")}.`,
    "Global options: --url <url>, --token-file <file>, -o/--output <format>, -h/--help; exit statuses: see artifact --help.",
  );
  if (leaf.examples?.length) parts.push("", "Examples:", ...leaf.examples.map((e) => `  ${e}`));
  return parts.join("\n") + "\n";
}

export function groupHelp(group: Group): string {
  const w = Math.max(...group.subcommands.map((s) => s.name.length));
  return (
    [
      `Usage: artifact ${group.name} <command> [options]`,
      "",
      group.summary,
      "",
      "Commands:",
      ...group.subcommands.map((s) => `  ${s.name.padEnd(w)}  ${s.summary}${s.name === group.default ? ` (the default)` : ""}`),
      "",
      `Run artifact ${group.name} <command> --help for a command's arguments and options.`,
    ].join("\n") + "\n"
  );
}
