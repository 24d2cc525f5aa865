// Every command, in the order `artifact --help` lists them.
import { isGroup, type Command } from "./cli.js";
import { login, logout, whoami } from "./commands/auth.js";
import { namespaces, repos, tags } from "./commands/catalog.js";
import { gc } from "./commands/gc.js";
import { inspect } from "./commands/inspect.js";
import { registries } from "./commands/registries.js";
import { retention } from "./commands/retention.js";
import { rules } from "./commands/rules.js";
import { tag, untag } from "./commands/tag.js";
import { tokens } from "./commands/tokens.js";
import { events, webhooks } from "./commands/webhooks.js";
import { EXIT_HELP } from "./exit.js";

export const COMMANDS: Command[] = [
  login,
  logout,
  whoami,
  registries,
  namespaces,
  repos,
  tags,
  inspect,
  tag,
  untag,
  rules,
  retention,
  webhooks,
  events,
  gc,
  tokens,
];

export function topHelp(): string {
  const rows = COMMANDS.map((c) => [isGroup(c) ? `${c.name} [${c.subcommands.map((s) => s.name).join("|")}]` : c.name, c.summary] as const);
  const w = Math.max(...rows.map(([name]) => name.length));
  return `Usage: artifact [global options] <command> [arguments] [options]

The command line of Artifact Service: registries, namespaces, repositories, tags and images, by name.

Commands:
${rows.map(([name, summary]) => `  ${name.padEnd(w)}  ${summary}`).join("\n")}

Run artifact <command> --help (or artifact help <command>) for its arguments and options.

Global options (before the command, or after it unless the command gives the name its own meaning):
  --url <url>          the service, e.g. http://localhost:8080
  --token-file <file>  an API token in a file
  -o, --output <fmt>   table (default: aligned columns, sizes and times for people) or json
                       (stable field names for scripts); artifact registries sync and events watch also ndjson
  -h, --help           print help

Where calls go, first found wins:
  URL:   --url, then ARTIFACT_URL, then the current service of the config file
  token: --token-file, then ARTIFACT_TOKEN, then the token stored for that URL by artifact login
         (a stored token is only sent to the URL it was stored for); none: anonymous calls
Config file: $XDG_CONFIG_HOME/artifact/config.json, else ~/.config/artifact/config.json (mode 0600).

${EXIT_HELP}
`;
}
