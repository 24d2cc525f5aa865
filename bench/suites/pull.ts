// Issue 16, target 1: cold pull-through of a big layer. The service (a REMOTE registry) and a
// second docker-registry configured as a pull-through cache (`proxy: remoteurl:`) front the same
// upstream docker-registry; every cold row gets a fresh cache (a new service process with a new
// DATA_DIR and a new database; a new docker-registry proxy with new storage). Warm rows read the
// blob again from the instance that just cached it.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { blobDataPath } from "../../test/support/distribution.js";
import { pushImage } from "../../test/support/skopeo.js";
import { cachedLargeImage } from "../big-image.js";
import { backgroundBusyPct, measureCpuOf } from "../cpu.js";
import { createDatabase, openTarget, type DatabaseKind, type DatabaseTarget } from "../databases.js";
import { median, say, tail, using } from "../lifecycle.js";
import { requirePeers, startPeerRegistry, type PeerRegistry } from "../peer.js";
import { fmt, table, verdict } from "../report.js";
import { createRegistry, databaseLabel, profiled, type Service } from "../service.js";
import { startBenchServer } from "../server-process.js";
import type { PullPath, Settings } from "../settings.js";
import { CONNECT_STREAM_HEADERS, GET_BLOB_PATH, checkBlobDownload, checkConnectStream, curlGet, transferProblem, writeGetBlobRequest } from "../transfer.js";
import type { SuiteRunner } from "./types.js";

const TARGET_RATIO = 1.0;
const REPOSITORY = "bench/big";

interface Row {
  label: string;
  mbps: number[];
  serverPct: number[];
  upstreamPct: number[];
  proxyPct: number[];
  machinePct: number[];
  background: number[];
  /** CPU-seconds of the cache (the service or the proxy) plus the upstream, for the whole pull. */
  cpuSeconds: number[];
  problem?: string;
}

const newRow = (label: string): Row => ({ label, mbps: [], serverPct: [], upstreamPct: [], proxyPct: [], machinePct: [], background: [], cpuSeconds: [] });

/** A cache that has never seen the blob: the service, or docker-registry as a proxy. */
interface Fresh {
  kind: "service" | "peer";
  /** GET URL of the blob (the Connect row POSTs to the service's base URL instead). */
  url: string;
  svc?: Service;
  peer?: PeerRegistry;
  /** Resolves once the blob is in the cache's storage (a commit may follow the response). */
  cached(): Promise<void>;
  stop(): Promise<void>;
}

export const runPullSuite: SuiteRunner = async (s, workDir) => {
  requirePeers("pull", "docker-registry", "skopeo", "curl");
  const image = await cachedLargeImage(s.cacheDir, s.blobMiB);
  const layer = image.manifests[0]!.layers[0]!;
  const rounds = s.rounds ?? 3;
  const parts = [
    "## Cold pull-through of a big layer (issue 16, target 1)",
    "",
    `- upstream: Debian's docker-registry (CNCF Distribution 2.8), filesystem storage, the ${s.blobMiB} MiB layer pushed with skopeo once. peer: a second docker-registry with \`proxy: remoteurl:\` the upstream (filesystem storage on the same disk, blobdescriptor cache inmemory, log level warn). service: one process, a REMOTE registry with the upstream's URL.`,
    `- every cold row starts a fresh cache: a new docker-registry proxy with new storage, or a new service process with a new DATA_DIR and a new database (PostgreSQL: a new database in one cluster). Warm rows read the blob again from the instance that cached it in the cold row just before (once its storage holds the blob). ${rounds} rounds, the rows' order rotated each round; median round (range).`,
    `- client: curl, body discarded (\`GET /v2/${REPOSITORY}/blobs/{digest}\`; REST \`GET /v1/images/upstream/${REPOSITORY}/blobs/{digest}\`; Connect \`ImageService.GetBlob\` as binary Connect over HTTP/1.1, no compression offered; MB/s of blob bytes). Checked before timing, on fresh caches of their own: every path cold and warm with status, Content-Length, Docker-Content-Digest and the sha256 of every byte (the stream: every message decoded, the end-of-stream message read). Timed downloads are checked by status and byte count; a response cut short (the service cuts it on a digest mismatch) fails the row.`,
    `- CPU: % of one core during the download (server: the service process; upstream and proxy: the two docker-registry processes); busy before: the machine in the half second before the row, while nothing was sent.`,
  ];
  let anyFailed = false;
  await using(
    () => startPeerRegistry(),
    (r) => r.stop(),
    async (upstream) => {
      say(`pull: pushing the ${s.blobMiB} MiB image to the upstream with skopeo`);
      const pushed = await pushImage(image, upstream, REPOSITORY, "latest");
      if (pushed !== image.digest) throw new Error(`pull: skopeo pushed ${pushed}, expected ${image.digest}`);
      for (const kind of s.databases ?? ["postgres"]) {
        await using(
          () => openTarget(kind, workDir),
          (t) => t.close(),
          async (target) => {
            const rendered = await measureKind(kind, target, upstream, layer, s, workDir, rounds);
            anyFailed ||= rendered.failed;
            parts.push("", rendered.markdown);
          },
        );
      }
    },
  );
  const markdown = parts.join("\n");
  process.stdout.write(`\n${markdown}\n\n`);
  return { markdown, failed: anyFailed };
};

async function measureKind(
  kind: DatabaseKind,
  target: DatabaseTarget,
  upstream: PeerRegistry,
  layer: { digest: string; size: number },
  s: Settings,
  workDir: string,
  rounds: number,
): Promise<{ markdown: string; failed: boolean }> {
  const { digest, size } = layer;
  let serial = 0;
  const requestFile = writeGetBlobRequest(workDir, `upstream/${REPOSITORY}`, digest);

  const freshService = async (): Promise<Fresh> => {
    const n = ++serial;
    const dataDir = mkdtempSync(join(workDir, `pull-data-${n}-`));
    const env: Record<string, string> = { ...target.env, DATA_DIR: dataDir };
    let dropDatabase = async () => {};
    if (kind === "postgres") {
      const database = await createDatabase(target, `bench_pull_${process.pid}_${n}`);
      env.DATABASE_URL = database.url;
      dropDatabase = () => database.drop();
    }
    const logFile = join(workDir, `server-pull-${kind}-${n}.log`);
    const server = await startBenchServer({
      env: { ...env, LOG_LEVEL: s.logLevel, DB_POOL_MAX: s.poolMax, SECRET_KEY: "00".repeat(32), WORKERS: "1" },
      logFile,
    }).catch(async (err: unknown) => {
      await dropDatabase();
      throw err;
    });
    const svc: Service = { kind, label: `service, ${databaseLabel(kind)}`, workers: 1, server, target, host: server.httpUrl.slice(7), logFile };
    await createRegistry(svc, { name: "upstream", kind: "remote", url: upstream.url });
    const hex = digest.slice("sha256:".length);
    const stored = join(dataDir, "blobs", "sha256", hex.slice(0, 2), hex);
    return {
      kind: "service",
      url: `${server.httpUrl}/v2/upstream/${REPOSITORY}/blobs/${digest}`,
      svc,
      cached: () => until(() => existsSync(stored), `the service's cache (log: ${tail(logFile, 5)})`),
      async stop() {
        await server.stop();
        await dropDatabase();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  };
  const freshPeer = async (): Promise<Fresh> => {
    const peer = await startPeerRegistry({ proxy: { remoteUrl: upstream.url } });
    return {
      kind: "peer",
      url: `${peer.url}/v2/${REPOSITORY}/blobs/${digest}`,
      peer,
      cached: () => until(() => existsSync(blobDataPath(peer.storageDir, digest)), "docker-registry's proxy storage"),
      stop: () => peer.stop(),
    };
  };

  const rows: Record<PullPath | "peerWarm" | "v2Warm", Row> = {
    peer: newRow("docker-registry as a proxy, cold: `GET /v2/…/blobs/{digest}`"),
    v2: newRow("service, cold: `GET /v2/upstream/…/blobs/{digest}`"),
    rest: newRow("service, cold: REST raw route `GET /v1/images/upstream/…/blobs/{digest}`"),
    connect: newRow("service, cold: Connect `ImageService.GetBlob` (server stream)"),
    peerWarm: newRow("docker-registry as a proxy, warm (blob in its storage)"),
    v2Warm: newRow("service, warm: `/v2/` (blob in the pull-through cache)"),
  };
  const restUrl = (f: Fresh) => `${f.svc!.server.httpUrl}/v1/images/upstream/${REPOSITORY}/blobs/${digest}`;
  const fresh = (path: PullPath) => (path === "peer" ? freshPeer() : freshService());

  // ---- checked, untimed: every path cold and warm on caches of their own ----
  say(`pull: ${kind}: checking every path cold and warm (sha256 of ${size} bytes each)`);
  for (const path of s.pullPaths) {
    await using(
      () => fresh(path),
      (f) => f.stop(),
      async (f) => {
        const check = async () =>
          path === "connect"
            ? checkConnectStream(f.svc!.server.httpUrl, `upstream/${REPOSITORY}`, digest, size)
            : checkBlobDownload(path === "rest" ? restUrl(f) : f.url, digest, size);
        rows[path].problem = await check();
        if (rows[path].problem) return;
        await f.cached();
        const warm = path === "peer" ? rows.peerWarm : path === "v2" ? rows.v2Warm : undefined;
        const again = await check();
        if (warm) warm.problem = again;
        else if (again) rows[path].problem = `read again from the cache: ${again}`;
      },
    );
  }

  const watched = (f: Fresh, proxyPid?: number) => ({
    server: f.svc ? { pid: f.svc.server.pid } : undefined,
    upstream: { pid: upstream.pid },
    proxy: f.peer ? { pid: f.peer.pid } : proxyPid ? { pid: proxyPid } : undefined,
  });
  const download = async (path: PullPath, f: Fresh) => {
    if (path === "connect") {
      const t = await curlGet(`${f.svc!.server.httpUrl}${GET_BLOB_PATH}`, { method: "POST", headers: CONNECT_STREAM_HEADERS, dataFile: requestFile });
      return { mbps: size / t.seconds / 1e6, problem: transferProblem(t, size, true) };
    }
    const t = await curlGet(path === "rest" ? restUrl(f) : f.url);
    return { mbps: t.mbps, problem: transferProblem(t, size) };
  };
  const measure = async (row: Row, f: Fresh, slug: string, profile: boolean, get: () => Promise<{ mbps: number; problem?: string }>) => {
    row.background.push(await backgroundBusyPct(500));
    const go = () => measureCpuOf(watched(f), get);
    const { value, pct, machinePct, seconds } = profile && f.svc ? await profiled(f.svc, s, slug, go) : await go();
    row.cpuSeconds.push((((pct.server ?? pct.proxy ?? 0) + (pct.upstream ?? 0)) / 100) * seconds);
    row.problem ??= value.problem;
    row.mbps.push(value.mbps);
    row.serverPct.push(pct.server ?? NaN);
    row.upstreamPct.push(pct.upstream ?? NaN);
    row.proxyPct.push(pct.proxy ?? NaN);
    row.machinePct.push(machinePct);
    say(
      `  ${slug}: ${fmt(value.mbps, 0)} MB/s, ${fmt(row.cpuSeconds.at(-1)!, 2)} CPU-s, server ${fmt(pct.server ?? NaN, 0)}%, upstream ${fmt(pct.upstream!, 0)}%, proxy ${fmt(pct.proxy ?? NaN, 0)}%, machine ${fmt(machinePct, 0)}%${value.problem ? `, ${value.problem}` : ""}`,
    );
  };

  const order: PullPath[] = s.pullPaths;
  for (let round = 1; round <= rounds; round++) {
    say(`pull: ${kind}: round ${round}/${rounds}`);
    const turn = order.map((_, i) => order[(i + round - 1) % order.length]!);
    for (const path of turn) {
      await using(
        () => fresh(path),
        (f) => f.stop(),
        async (f) => {
          await measure(rows[path], f, `pull-${path}-cold`, round === 1, () => download(path, f));
          if (path !== "peer" && path !== "v2") return;
          await f.cached();
          for (let i = 0; i < s.warmReads; i++)
            await measure(path === "peer" ? rows.peerWarm : rows.v2Warm, f, `pull-${path}-warm`, round === 1 && i === 0, () => download(path, f));
        },
      );
    }
  }
  return render(kind, target, rows, s);
}

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`pull: the blob did not reach ${what} within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // The file is placed before the database commit that publishes it; give that a moment.
  await new Promise((resolve) => setTimeout(resolve, 200));
}

function render(
  kind: DatabaseKind,
  target: DatabaseTarget,
  rows: Record<PullPath | "peerWarm" | "v2Warm", Row>,
  s: Settings,
): { markdown: string; failed: boolean } {
  const value = (r: Row) => (r.problem ? NaN : median(r.mbps));
  const peerCold = value(rows.peer);
  const peerWarm = value(rows.peerWarm);
  const list: [Row, number][] = [
    [rows.peer, peerCold],
    [rows.v2, peerCold],
    [rows.rest, peerCold],
    [rows.connect, peerCold],
    [rows.peerWarm, peerWarm],
    [rows.v2Warm, peerWarm],
  ];
  const pct = (xs: number[]) => `${fmt(median(xs), 0)}%`;
  const body = table(
    [
      "path",
      "MB/s",
      "× peer (same temperature)",
      "CPU-s per pull, cache + upstream",
      "server CPU",
      "upstream CPU",
      "proxy CPU",
      "machine CPU",
      "busy before",
      "check",
    ],
    list.map(([r, peer]) => [
      r.label,
      r.problem ? "**FAILED**" : `${fmt(median(r.mbps), 0)} (${fmt(Math.min(...r.mbps), 0)}–${fmt(Math.max(...r.mbps), 0)})`,
      fmt(value(r) / peer, 2),
      r.cpuSeconds.length ? `${fmt(median(r.cpuSeconds), 2)} (${fmt(Math.min(...r.cpuSeconds), 2)}–${fmt(Math.max(...r.cpuSeconds), 2)})` : "–",
      pct(r.serverPct),
      pct(r.upstreamPct),
      pct(r.proxyPct),
      pct(r.machinePct),
      pct(r.background),
      r.problem ?? "ok",
    ]),
    "lrrrrrrrrl",
  );
  const ratio = value(rows.v2) / peerCold;
  const failed = Object.values(rows).some((r) => r.problem !== undefined);
  const markdown = [
    `### ${databaseLabel(kind)}`,
    "",
    `- ${target.description}; server LOG_LEVEL=${s.logLevel}.`,
    "",
    body,
    "",
    `- cold \`/v2/\` pull-through: ${fmt(ratio, 2)}× docker-registry's proxy — target ≥ ${TARGET_RATIO}×: ${verdict(Number.isFinite(ratio) ? ratio >= TARGET_RATIO : undefined)}`,
  ].join("\n");
  return { markdown, failed };
}
