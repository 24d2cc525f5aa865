// The dispatcher: argv → command → exit status, with its streams and environment given, so the
// process wrapper (main.ts) stays a few lines and tests can drive help and usage in-process.
import { createArtifactClient, type ArtifactClient } from "../../client/node.js";
import {
  bool,
  checkArity,
  checkOptions,
  groupHelp,
  isGroup,
  leafHelp,
  leafOptions,
  parse,
  splitGlobal,
  str,
  GLOBAL_OPTIONS,
  type Context,
  type Leaf,
} from "./cli.js";
import { COMMANDS, topHelp } from "./commands.js";
import { describeError, EXIT, usageError, type ExitStatus } from "./exit.js";
import type { OutputFormat } from "./output.js";
import { Resolver } from "./resolve.js";
import { resolveSession, type Session } from "./session.js";

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  env: NodeJS.ProcessEnv;
}

function connect(url: string, token: string | undefined): ArtifactClient {
  return createArtifactClient(url, { token, useBinaryFormat: true });
}

async function dispatch(argv: string[], io: Io, state: { session?: Session }): Promise<ExitStatus> {
  const { global: globalArgv, rest } = splitGlobal(argv);
  const globals = parse(globalArgv, GLOBAL_OPTIONS, "artifact");
  const [name, ...afterName] = rest;
  if (name === undefined) {
    if (bool(globals, "help")) {
      io.stdout.write(topHelp());
      return EXIT.ok;
    }
    io.stderr.write(topHelp());
    return EXIT.usage;
  }
  if (name === "help") return dispatch([...afterName, "--help"], io, state);
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw usageError(`unknown command ${JSON.stringify(name)}; artifact --help lists the commands`);

  let leaf: Leaf;
  let path = `artifact ${command.name}`;
  let leafArgv = afterName;
  if (isGroup(command)) {
    const [sub, ...afterSub] = afterName;
    const named = sub === undefined || sub.startsWith("-") ? undefined : command.subcommands.find((s) => s.name === sub);
    const list = command.subcommands.map((s) => s.name).join(", ");
    if (named) {
      leaf = named;
      leafArgv = afterSub;
    } else if (sub !== undefined && !sub.startsWith("-")) {
      throw usageError(`unknown command ${JSON.stringify(sub)} of artifact ${command.name} (${list})`);
    } else if (bool(globals, "help") || afterName.some((a) => a === "--help" || a === "-h")) {
      io.stdout.write(groupHelp(command));
      return EXIT.ok;
    } else if (command.default) {
      leaf = command.subcommands.find((s) => s.name === command.default)!;
    } else {
      throw usageError(`name a command of artifact ${command.name} (${list})`);
    }
    path += ` ${leaf.name}`;
  } else {
    leaf = command;
  }

  const specs = leafOptions(leaf);
  const args = parse(leafArgv, specs, path);
  if (bool(globals, "help") || bool(args, "help")) {
    io.stdout.write(leafHelp(path, leaf));
    return EXIT.ok;
  }
  checkArity(path, leaf, args.positionals);
  checkOptions(args, specs);
  // Globals given before the command, unless the command gave the same name its own meaning.
  const global = (key: string) => (leaf.options?.[key] ? str(globals, key) : (str(args, key) ?? str(globals, key)));
  const format = (global("output") ?? "table") as OutputFormat;
  const outputs = leaf.outputs ?? ["table", "json"];
  if (!outputs.includes(format)) throw usageError(`--output ${JSON.stringify(format)}: ${path} prints ${outputs.join(" or ")}`);

  const session = () => (state.session ??= resolveSession({ url: global("url"), tokenFile: global("token-file") }, io.env));
  let client: ArtifactClient | undefined;
  let resolver: Resolver | undefined;
  const ctx: Context = {
    format,
    session,
    client() {
      const { url, token } = session();
      if (url === undefined) throw usageError("no service URL: run artifact login <url>, or pass --url or set ARTIFACT_URL");
      return (client ??= connect(url, token));
    },
    connect,
    resolver: () => (resolver ??= new Resolver(ctx.client())),
    print: (text) => io.stdout.write(text),
    note: (line) => io.stderr.write(`${line}\n`),
    stdin: io.stdin,
    stderr: io.stderr,
    env: io.env,
  };
  return (await leaf.run(ctx, args)) ?? EXIT.ok;
}

/** Runs one command line; errors end as one `artifact: …` line on stderr and their exit status. */
export async function runCli(argv: string[], io: Io): Promise<ExitStatus> {
  const state: { session?: Session } = {};
  try {
    return await dispatch(argv, io, state);
  } catch (err) {
    const { message, status } = describeError(err, state.session?.url);
    io.stderr.write(`artifact: ${message}\n`);
    return status;
  }
}
