// npx tsx bench/tls.ts [--db postgres|pglite] [--rounds 3] [--seconds 8] [--blob-mib 512]
//
// What TLS costs on /v2/ (issue 17), in one run on the same machine: the service over cleartext
// and over TLS (two server processes on the same database and content, as replicas would be),
// and Debian's docker-registry (CNCF Distribution 2.8) over TLS with the same certificate (P-256
// ECDSA, made here by test/support/tls.ts).
// - manifest GET by tag: many small requests on 32 keep-alive HTTP/1.1 connections (the Node
//   load worker; wrk cannot take a CA), req/s and server CPU per request;
// - one 512 MiB blob GET with curl over HTTP/1.1 (and over HTTP/2, which curl picks for TLS by
//   default), MB/s.
// Rows run in turn, another order each round; the median round is shown with the range. Every
// answer is checked before it is timed (manifest status and sha256, blob size and sha256).
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { packageRoot } from "../src/paths.js";
import { smallImage, type BuiltImage } from "../test/support/oci-images.js";
import { pushImage } from "../test/support/skopeo.js";
import { TestPki } from "../test/support/tls.js";
import { cachedLargeImage } from "./big-image.js";
import { backgroundBusyPct, measureCpu } from "./cpu.js";
import { openTarget, type DatabaseKind, type DatabaseTarget } from "./databases.js";
import { runNodeWorker, type LoadPlan, type LoadResult } from "./load/index.js";
import { median, say } from "./lifecycle.js";
import { startPeerRegistry, type PeerRegistry } from "./peer.js";
import { startBenchServer, type BenchServer } from "./server-process.js";
import { curlGet, type Transfer } from "./transfer.js";

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    db: { type: "string", default: "postgres" },
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "8" },
    "blob-mib": { type: "string", default: "512" },
    "blob-rounds": { type: "string", default: "3" },
  },
});
const kind = values.db as DatabaseKind;
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const blobMiB = Number(values["blob-mib"]);
const blobRounds = Number(values["blob-rounds"]);
const ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

interface Target {
  label: string;
  /** https://localhost:port or http://127.0.0.1:port */
  url: string;
  /** skopeo's host:port */
  host: string;
  prefix: string;
  pid: number;
  tls: boolean;
  manifest: { rps: number; p99: number; cpuMs: number; background: number }[];
  blob: Record<"1.1" | "2", number[]>;
  problem?: string;
}

const say2 = (line: string) => say(`tls: ${line}`);

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), "artifact-bench-tls-"));
  const pki = TestPki.create();
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(workDir, { recursive: true, force: true }), () => pki.remove()];
  try {
    const ca = pki.ca("Bench CA");
    const cert = pki.issue(ca, { commonName: "localhost", notAfter: new Date(Date.now() + 7 * 24 * 3_600_000) });
    const certDir = pki.certDir(ca);

    const [app, big] = await Promise.all([smallImage("bench-tls"), cachedLargeImage(join(packageRoot, "bench", ".cache"), blobMiB)]);
    // PostgreSQL: one database and content store for both servers (replicas); PGlite belongs to one process.
    const first = await openTarget(kind, workDir);
    cleanups.push(() => first.close());
    const second: DatabaseTarget = kind === "postgres" ? first : await openTarget(kind, workDir);
    if (second !== first) cleanups.push(() => second.close());
    const env = (t: DatabaseTarget) => ({ ...t.env, LOG_LEVEL: "warn", SECRET_KEY: "00".repeat(32), WORKERS: "1" });
    const clear = await startBenchServer({ env: env(first), logFile: join(workDir, "server-clear.log") });
    cleanups.push(() => clear.stop());
    const secure = await startBenchServer({
      env: { ...env(second), TLS_CERT_FILE: cert.certFile, TLS_KEY_FILE: cert.keyFile },
      logFile: join(workDir, "server-tls.log"),
    });
    cleanups.push(() => secure.stop());
    const peer: PeerRegistry = await startPeerRegistry({ tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
    cleanups.push(() => peer.stop());

    const port = (s: BenchServer) => new URL(s.httpUrl).port;
    const target = (label: string, url: string, host: string, prefix: string, pid: number, tls: boolean): Target => ({
      label,
      url,
      host,
      prefix,
      pid,
      tls,
      manifest: [],
      blob: { "1.1": [], "2": [] },
    });
    const targets = [
      target("service, cleartext", clear.httpUrl, `127.0.0.1:${port(clear)}`, "local/", clear.pid, false),
      target("service, TLS", `https://localhost:${port(secure)}`, `localhost:${port(secure)}`, "local/", secure.pid, true),
      target("docker-registry, TLS", `https://localhost:${peer.port}`, `localhost:${peer.port}`, "", peer.pid, true),
    ];
    const curlTls = (t: Target) => (t.tls ? ["--cacert", ca.certFile] : []);

    // Seed: a HOSTED registry on each service database, the small image and the big one everywhere.
    for (const t of targets.slice(0, second === first ? 1 : 2)) {
      await run("curl", [
        "-sS",
        "--fail",
        ...curlTls(t),
        "-H",
        "content-type: application/json",
        "-d",
        '{"name":"local","kind":"REGISTRY_KIND_HOSTED"}',
        `${t.url}/v1/registries`,
      ]);
    }
    for (const t of targets) {
      if (t === targets[1] && second === first) continue; // same database and content as the cleartext server
      say2(`seeding ${t.label}`);
      const opts = t.tls ? { destCertDir: certDir } : {};
      await pushImage(app, { host: t.host }, `${t.prefix}bench/app`, "latest", opts);
      await pushImage(big, { host: t.host }, `${t.prefix}bench/big`, "latest", { ...opts, timeoutMs: 600_000 });
    }
    const layer = big.manifests[0]!.layers[0]!;
    const blobUrl = (t: Target) => `${t.url}/v2/${t.prefix}bench/big/blobs/${layer.digest}`;
    const manifestPath = (t: Target) => `/v2/${t.prefix}bench/app/manifests/latest`;
    for (const t of targets) t.problem = await check(t, app, layer, curlTls(t), manifestPath(t), blobUrl(t));

    for (let round = 1; round <= rounds; round++) {
      for (const t of rotate(targets, round)) {
        if (t.problem) continue;
        const plan: LoadPlan = {
          protocol: "rest",
          baseUrl: t.url,
          method: "GET",
          headers: { Accept: ACCEPT },
          requests: [{ path: manifestPath(t), body: "" }],
          concurrency: 32,
          connections: 32,
          timeoutSeconds: 5,
          warmupSeconds: 2,
          durationSeconds: seconds,
          ca: t.tls ? ca.pem : undefined,
        };
        const background = await backgroundBusyPct();
        const { value, cpu } = await measureCpu(t.pid, undefined, () => runNodeWorker(plan, workDir));
        if (failed(value)) {
          t.problem = `manifest GET: ${value.errors} errors, first: ${value.firstError}`;
          continue;
        }
        // CPU over warm-up and measurement alike; requests of the measured window only, so a slight overestimate, equal for all.
        const cpuMs = ((cpu.serverPct / 100) * 1000) / value.rps;
        t.manifest.push({ rps: value.rps, p99: value.p99Ms, cpuMs, background });
        say2(
          `manifest GET on ${t.label}, round ${round}/${rounds}: ${value.rps.toFixed(0)} req/s, p99 ${value.p99Ms.toFixed(1)} ms, server CPU ${cpu.serverPct.toFixed(0)}% (machine ${background.toFixed(0)}% busy before)`,
        );
      }
    }
    for (let round = 1; round <= blobRounds; round++) {
      for (const t of rotate(targets, round)) {
        for (const version of t.tls ? (["1.1", "2"] as const) : (["1.1"] as const)) {
          if (t.problem) continue;
          const transfer: Transfer = await curlGet(blobUrl(t), { caFile: t.tls ? ca.certFile : undefined, httpVersion: version });
          if (transfer.error || transfer.status !== 200 || transfer.bytes !== layer.size) {
            t.problem = `blob GET over HTTP/${version}: ${transfer.error ?? ""} HTTP ${transfer.status}, ${transfer.bytes} bytes`;
            continue;
          }
          t.blob[version].push(transfer.mbps);
          say2(`blob GET from ${t.label} over HTTP/${version}, round ${round}/${blobRounds}: ${transfer.mbps.toFixed(0)} MB/s`);
        }
      }
    }
    const report = render(targets, kind);
    process.stdout.write(report);
    mkdirSync(join(packageRoot, "bench", "results"), { recursive: true });
    writeFileSync(join(packageRoot, "bench", "results", "tls-latest.md"), report);
    if (targets.some((t) => t.problem)) process.exitCode = 1;
  } finally {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch((err: unknown) => say2(`cleanup: ${String(err)}`));
  }
}

const failed = (r: LoadResult) => r.errors > 0 || r.requests === 0;
const rotate = <T>(list: T[], round: number) => list.map((_, i) => list[(i + round - 1) % list.length]!);

/** The manifest and the blob as each target serves them, byte for byte, before anything is timed. */
async function check(
  t: Target,
  app: BuiltImage,
  layer: { digest: string; size: number },
  tlsArgs: string[],
  manifestPath: string,
  blobUrl: string,
): Promise<string | undefined> {
  const sha = async (args: string[]) => {
    const { stdout } = await run("sh", ["-c", 'curl -sS --fail "$@" | sha256sum', "curl", ...args], { maxBuffer: 1 << 20 });
    return `sha256:${stdout.split(" ")[0]}`;
  };
  try {
    const manifest = await sha([...tlsArgs, "-H", `accept: ${ACCEPT}`, `${t.url}${manifestPath}`]);
    if (manifest !== app.digest) return `manifest GET: body ${manifest}, expected ${app.digest}`;
    const blob = await sha([...tlsArgs, blobUrl]);
    if (blob !== layer.digest) return `blob GET: body ${blob}, expected ${layer.digest}`;
  } catch (err) {
    return `check failed: ${String(err)}`;
  }
  return undefined;
}

function render(targets: Target[], db: DatabaseKind): string {
  const byMedian = (t: Target) => [...t.manifest].sort((a, b) => a.rps - b.rps)[Math.floor((t.manifest.length - 1) / 2)];
  const range = (xs: number[], digits = 0) => (xs.length ? `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}` : "–");
  const [clear, secure, peer] = targets as [Target, Target, Target];
  const ratio = (a: number | undefined, b: number | undefined) => (a && b ? (a / b).toFixed(2) : "–");
  const rps = (t: Target) => byMedian(t)?.rps;
  const mb = (t: Target, v: "1.1" | "2") => (t.blob[v].length ? median(t.blob[v]) : undefined);
  const lines = [
    `# TLS on /v2/ (bench/tls.ts), ${new Date().toISOString().slice(0, 10)}`,
    "",
    `Service on ${db === "postgres" ? "PostgreSQL" : "PGlite"}, one process each (cleartext and TLS), docker-registry (Distribution 2.8) over TLS; P-256 certificate, TLS 1.3 (AES-128-GCM).`,
    `Manifest GET: Node keep-alive client, 32 HTTP/1.1 connections, 2 s warm-up + ${seconds} s, ${rounds} rounds (median, range). Blob: curl, ${blobMiB} MiB, ${blobRounds} downloads (median, range).`,
    "",
    "| target | manifest GET req/s | p99 ms | server CPU ms/req | blob HTTP/1.1 MB/s | blob HTTP/2 MB/s |",
    "|---|--:|--:|--:|--:|--:|",
    ...targets.map((t) => {
      const m = byMedian(t);
      return `| ${t.label} | ${m ? `${m.rps.toFixed(0)} (${range(t.manifest.map((x) => x.rps))})` : "–"} | ${m ? m.p99.toFixed(1) : "–"} | ${m ? m.cpuMs.toFixed(3) : "–"} | ${mb(t, "1.1")?.toFixed(0) ?? "–"} (${range(t.blob["1.1"])}) | ${t.tls ? `${mb(t, "2")?.toFixed(0) ?? "–"} (${range(t.blob["2"])})` : "n/a"} |`;
    }),
    "",
    `- manifest GET: TLS ÷ cleartext **${ratio(rps(secure), rps(clear))}×**; service TLS ÷ docker-registry TLS **${ratio(rps(secure), rps(peer))}×**`,
    `- blob GET (HTTP/1.1): TLS ÷ cleartext **${ratio(mb(secure, "1.1"), mb(clear, "1.1"))}×**; service TLS ÷ docker-registry TLS **${ratio(mb(secure, "1.1"), mb(peer, "1.1"))}×** (HTTP/2: ${ratio(mb(secure, "2"), mb(peer, "2"))}×)`,
    ...targets.filter((t) => t.problem).map((t) => `- **FAILED** ${t.label}: ${t.problem}`),
    "",
  ];
  return lines.join("\n");
}

await main();
