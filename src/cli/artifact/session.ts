// Where the CLI talks to and with which credential: flags, then the environment, then the
// config file that `artifact login` writes. A stored token is only ever sent to the URL it was
// stored for, so `--url` pointing elsewhere never leaks it.
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { usageError } from "./exit.js";

/** The config file: which server is current, and a token per server. */
export interface StoredConfig {
  current?: string;
  servers: Record<string, { token: string; account?: string }>;
}

export interface Session {
  url: string | undefined;
  token: string | undefined;
  /** Where the URL came from, for `whoami` and error messages. */
  urlSource: string;
  /** Where the token came from ("none" when calls are anonymous). */
  tokenSource: string;
}

export interface SessionFlags {
  url?: string;
  tokenFile?: string;
}

/** `$XDG_CONFIG_HOME/artifact/config.json`, or `~/.config/artifact/config.json`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  // The XDG spec says a relative value is invalid and must be ignored.
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), ".config");
  return join(base, "artifact", "config.json");
}

/** A service URL in the one spelling the config file keys on (no trailing slash). */
export function normalizeUrl(text: string, what: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`${what}: ${JSON.stringify(text)} is not a URL; expected e.g. http://localhost:8080`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw usageError(`${what}: ${JSON.stringify(text)} must start with http:// or https://`);
  if (url.username || url.password) throw usageError(`${what}: put no credentials in the URL; use artifact login`);
  if (url.search || url.hash) throw usageError(`${what}: ${JSON.stringify(text)} must have no query or fragment`);
  return url.href.replace(/\/+$/, "");
}

export function readConfig(path = configPath()): StoredConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { servers: {} };
    throw usageError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw usageError(`${path} is not valid JSON; fix it, or delete it and run artifact login again`);
  }
  const config = parsed as Partial<StoredConfig> | null;
  if (typeof config !== "object" || config === null || typeof config.servers !== "object" || config.servers === null) {
    throw usageError(`${path} is not an artifact config file (no "servers"); delete it and run artifact login again`);
  }
  for (const [url, entry] of Object.entries(config.servers)) {
    if (typeof entry?.token !== "string") throw usageError(`${path}: the entry for ${url} has no token; run artifact login ${url} again`);
  }
  return { current: typeof config.current === "string" ? config.current : undefined, servers: config.servers };
}

/** Writes the config readable by its owner only (directory 0700, file 0600), atomically. */
export function writeConfig(config: StoredConfig, path = configPath()): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode does not apply to a directory that already existed.
  chmodSync(dir, 0o700);
  const temp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
    chmodSync(temp, 0o600);
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/** Reads a token from a file: the first line, trimmed; it must be one word. */
export function readTokenFile(path: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw usageError(`${what}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return checkToken(text, `${what} ${path}`);
}

export function checkToken(text: string, where: string): string {
  const token = text.trim();
  if (token === "") throw usageError(`${where}: the token is empty`);
  if (/\s/.test(token)) throw usageError(`${where}: expected one API token (no spaces or several lines)`);
  return token;
}

/**
 * URL: --url, else ARTIFACT_URL, else the config's current server.
 * Token: --token-file, else ARTIFACT_TOKEN, else the token stored for that URL; none: anonymous.
 */
export function resolveSession(flags: SessionFlags, env: NodeJS.ProcessEnv = process.env): Session {
  const path = configPath(env);
  // Read only when needed: flags and the environment work even next to a broken config file.
  let config: StoredConfig | undefined;
  const stored = () => (config ??= readConfig(path));
  let url: string | undefined;
  let urlSource: string;
  if (flags.url !== undefined) {
    url = normalizeUrl(flags.url, "--url");
    urlSource = "--url";
  } else if (env.ARTIFACT_URL) {
    url = normalizeUrl(env.ARTIFACT_URL, "ARTIFACT_URL");
    urlSource = "ARTIFACT_URL";
  } else {
    url = stored().current;
    urlSource = path;
  }
  if (flags.tokenFile !== undefined) {
    return { url, urlSource, token: readTokenFile(flags.tokenFile, "--token-file"), tokenSource: `--token-file ${flags.tokenFile}` };
  }
  if (env.ARTIFACT_TOKEN) return { url, urlSource, token: checkToken(env.ARTIFACT_TOKEN, "ARTIFACT_TOKEN"), tokenSource: "ARTIFACT_TOKEN" };
  const entry = url === undefined ? undefined : stored().servers[url];
  if (entry) return { url, urlSource, token: entry.token, tokenSource: path };
  return { url, urlSource, token: undefined, tokenSource: "none" };
}
