// Debian's skopeo as an independent registry client, isolated from the machine on every call:
// - its blob-info cache (which remembers where blobs were seen and makes skopeo try cross-repository
//   mounts and blob substitutions) lives in a fresh private dir: as root containers/image always
//   uses /var/lib/containers/cache, unless `_CONTAINERS_ROOTLESS_UID` is set, in which case it uses
//   $XDG_DATA_HOME/containers/cache — so we set both;
// - registries.conf, policy.json, registries.d, auth files, HOME and TMPDIR are private too, so no
//   mirror, short-name alias or stored credential of the machine applies;
// - credentials travel in per-call auth files, never on the command line (no secrets in `ps` or errors);
//   a call without credentials signs in as the test server's admin (ADMIN_CREDS; skopeo sends them
//   only when a registry asks, so a registry without auth sees none); `null` means anonymous;
// - docker:// references must name a loopback host: tests never touch the network.
// --preserve-digests is the default for copy: without it skopeo may recompress or substitute layers
// and the manifest digest changes.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { BuiltImage } from "./oci-images.js";
import { peerBin } from "./peers.js";
import { ADMIN_CREDS } from "./credentials.js";
import type { Credentials } from "./token-server.js";

const run = promisify(execFile);

/** A registry skopeo can talk to: a Distribution from distribution.ts, or the service under test. */
export interface RegistryEndpoint {
  /** host:port, loopback only. */
  host: string;
  /** Default: the test server's admin (skopeo sends it only when asked); null: anonymous. */
  credentials?: Credentials | null;
}

export interface SkopeoOptions {
  /** Kill skopeo after this long (default 120 s). */
  timeoutMs?: number;
  /** Share one blob-info cache dir across calls (default: a fresh, empty one per call). */
  blobInfoCacheDir?: string;
  /** Passes --debug; the log is in the thrown error or in the result's stderr. */
  debug?: boolean;
}

export interface CopyOptions extends SkopeoOptions {
  srcCreds?: Credentials | null;
  destCreds?: Credentials | null;
  /** Default true: keep manifests and layers byte for byte. */
  preserveDigests?: boolean;
  /** Copy every image of an index / manifest list (needed for multi-platform sources). */
  all?: boolean;
  /** Convert the manifest (implies preserveDigests false). */
  format?: "oci" | "v2s2";
  retryTimes?: number;
  extraArgs?: string[];
  /**
   * TLS with verification on: a directory with the CA as `ca.crt` (and `client.cert`/`client.key`
   * for mutual TLS), as docker's certs.d (test/support/tls.ts `certDir`). Without it, docker://
   * hosts are spoken to without TLS verification (cleartext test servers).
   */
  srcCertDir?: string;
  destCertDir?: string;
}

export interface SkopeoResult {
  stdout: string;
  stderr: string;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/;

/** The registry host of a docker:// reference, or undefined for other transports. */
function dockerHost(ref: string): string | undefined {
  if (!ref.startsWith("docker://")) return undefined;
  const host = ref.slice("docker://".length).split("/")[0]!;
  if (!LOOPBACK.test(host)) throw new Error(`skopeo: refusing non-loopback registry ${host} in ${ref}: tests never use the network`);
  return host;
}

/** Credentials of a call: given, the admin's (undefined), or none (null: anonymous). */
export type CallCredentials = Credentials | null | undefined;

function authFile(host: string | undefined, given: CallCredentials): string {
  const auths: Record<string, { auth: string }> = {};
  const creds = given === undefined ? ADMIN_CREDS : given;
  if (host && creds) auths[host] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString("base64") };
  return JSON.stringify({ auths });
}

/** Runs skopeo with a private environment; `prepare` writes per-call files into the private dir and
 * returns the remaining arguments; `finish` reads what skopeo left there before the dir is removed. */
async function skopeo(
  args: string[],
  opts: SkopeoOptions,
  prepare: (dir: string) => Promise<string[]>,
  finish: (dir: string) => Promise<string> = async () => "",
): Promise<SkopeoResult & { finished: string }> {
  const dir = mkdtempSync(join(tmpdir(), "artifact-skopeo-"));
  try {
    for (const d of ["tmp", "data", "config", "run", "registries.d"]) mkdirSync(join(dir, d));
    await writeFile(join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
    await writeFile(join(dir, "registries.conf"), 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n');
    await writeFile(join(dir, "auth.json"), authFile(undefined, undefined));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      LANG: "C.UTF-8",
      HOME: dir,
      TMPDIR: join(dir, "tmp"),
      XDG_DATA_HOME: opts.blobInfoCacheDir ?? join(dir, "data"),
      XDG_CONFIG_HOME: join(dir, "config"),
      XDG_RUNTIME_DIR: join(dir, "run"),
      _CONTAINERS_ROOTLESS_UID: String(process.getuid?.() || 4242),
      CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
      REGISTRY_AUTH_FILE: join(dir, "auth.json"),
    };
    const prepared = await prepare(dir);
    const full = [
      "--policy",
      join(dir, "policy.json"),
      "--registries.d",
      join(dir, "registries.d"),
      "--tmpdir",
      join(dir, "tmp"),
      ...(opts.debug ? ["--debug"] : []),
      ...args,
      ...prepared,
    ];
    try {
      const { stdout, stderr } = await run(peerBin("skopeo"), full, {
        env,
        timeout: opts.timeoutMs ?? 120_000,
        killSignal: "SIGKILL",
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
      });
      return { stdout, stderr, finished: await finish(dir) };
    } catch (err) {
      const e = err as { stderr?: string; killed?: boolean; code?: unknown };
      const why = e.killed ? `timed out after ${opts.timeoutMs ?? 120_000} ms` : `exit ${String(e.code)}`;
      throw new Error(`skopeo ${[...args, ...prepared].join(" ")}: ${why}\n${e.stderr ?? String(err)}`, { cause: err });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `docker://host/repo:tag` or `docker://host/repo@sha256:…` */
export function dockerRef(registry: RegistryEndpoint | string, repo: string, reference = "latest"): string {
  const host = typeof registry === "string" ? registry : registry.host;
  return `docker://${host}/${repo}${reference.includes(":") ? "@" : ":"}${reference}`;
}

/** skopeo copy; returns the manifest digest written (--digestfile). */
export async function skopeoCopy(src: string, dest: string, opts: CopyOptions = {}): Promise<SkopeoResult & { digest: string }> {
  const srcHost = dockerHost(src);
  const destHost = dockerHost(dest);
  const preserve = opts.format ? false : (opts.preserveDigests ?? true);
  const { stdout, stderr, finished } = await skopeo(
    ["copy", "--quiet"],
    opts,
    async (dir) => {
      await writeFile(join(dir, "src-auth.json"), authFile(srcHost, opts.srcCreds));
      await writeFile(join(dir, "dest-auth.json"), authFile(destHost, opts.destCreds));
      return [
        "--src-authfile",
        join(dir, "src-auth.json"),
        "--dest-authfile",
        join(dir, "dest-auth.json"),
        ...(srcHost ? (opts.srcCertDir ? ["--src-cert-dir", opts.srcCertDir] : ["--src-tls-verify=false"]) : []),
        ...(destHost ? (opts.destCertDir ? ["--dest-cert-dir", opts.destCertDir] : ["--dest-tls-verify=false"]) : []),
        ...(preserve ? ["--preserve-digests"] : []),
        ...(opts.all ? ["--all"] : []),
        ...(opts.format ? ["--format", opts.format] : []),
        ...(opts.retryTimes !== undefined ? ["--retry-times", String(opts.retryTimes)] : []),
        "--digestfile",
        join(dir, "digest"),
        ...(opts.extraArgs ?? []),
        src,
        dest,
      ];
    },
    (dir) => readFile(join(dir, "digest"), "utf8").then((d) => d.trim()),
  );
  return { stdout, stderr, digest: finished };
}

/** Like skopeo(), for commands that take one image reference and one set of credentials. */
function single(command: string[], ref: string, creds: CallCredentials, opts: SkopeoOptions, after: string[] = []): Promise<SkopeoResult> {
  const host = dockerHost(ref);
  return skopeo(command, opts, async (dir) => {
    await writeFile(join(dir, "ref-auth.json"), authFile(host, creds));
    return ["--authfile", join(dir, "ref-auth.json"), ...(host ? ["--tls-verify=false"] : []), ...after, ref];
  });
}

/** The manifest bytes exactly as served (skopeo inspect --raw). */
export async function skopeoInspectRaw(ref: string, opts: SkopeoOptions & { creds?: Credentials | null } = {}): Promise<Buffer> {
  const { stdout } = await single(["inspect", "--raw"], ref, opts.creds, opts);
  return Buffer.from(stdout);
}

/** skopeo inspect (without listing tags): Digest, Layers, Architecture, Os… */
export async function skopeoInspect(
  ref: string,
  opts: SkopeoOptions & { creds?: Credentials | null } = {},
): Promise<Record<string, unknown> & { Digest: string; Layers: string[] }> {
  const { stdout } = await single(["inspect", "--no-tags"], ref, opts.creds, opts);
  return JSON.parse(stdout) as Record<string, unknown> & { Digest: string; Layers: string[] };
}

/** Tags of a repository: `ref` is docker://host/repo (no tag). */
export async function skopeoListTags(ref: string, opts: SkopeoOptions & { creds?: Credentials | null } = {}): Promise<string[]> {
  const { stdout } = await single(["list-tags"], ref, opts.creds, opts);
  return (JSON.parse(stdout) as { Tags: string[] | null }).Tags ?? [];
}

/** Deletes a manifest (by tag: skopeo resolves it and deletes the digest, untagging every tag of it). */
export async function skopeoDelete(ref: string, opts: SkopeoOptions & { creds?: Credentials | null } = {}): Promise<void> {
  await single(["delete"], ref, opts.creds, opts);
}

/** Pushes a built image to `registry` as repo:tag (with --all for indexes); returns the pushed digest. */
export async function pushImage(image: BuiltImage, registry: RegistryEndpoint, repo: string, tag = image.tag, opts: CopyOptions = {}): Promise<string> {
  const isIndex = image.manifests.length > 1 || image.digest !== image.manifests[0]?.digest;
  const { digest } = await skopeoCopy(image.ref, dockerRef(registry, repo, tag), { all: isIndex, destCreds: registry.credentials, ...opts });
  return digest;
}

/**
 * Pulls repo:reference from `registry` into a new local directory: an OCI layout (`oci:`), or for
 * Docker media types skopeo's `dir:` (an OCI layout cannot hold them without conversion).
 * Returns the directory and the skopeo reference to it.
 */
export async function pullImage(
  registry: RegistryEndpoint,
  repo: string,
  reference: string,
  into: { dir: string; transport: "oci" | "dir" },
  opts: CopyOptions = {},
): Promise<{ ref: string; digest: string }> {
  const dest = into.transport === "oci" ? `oci:${into.dir}:pulled` : `dir:${into.dir}`;
  const { digest } = await skopeoCopy(dockerRef(registry, repo, reference), dest, { srcCreds: registry.credentials, ...opts });
  return { ref: dest, digest };
}
