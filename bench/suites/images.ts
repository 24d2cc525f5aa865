// Issue 4: image operations on a REMOTE registry. A big blob fetched through the service (the
// raw REST route, and the Connect server stream) beside the same blob straight from the upstream
// docker-registry in the same run, with the server's memory sampled while it streams; and the
// sync of many repositories from an upstream, first and again (idempotent).
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RegistryService, type SyncRegistryProgress } from "../../gen/artifact/v1/registry_pb.js";
import { RepositoryService } from "../../gen/artifact/v1/repository_pb.js";
import { TagService } from "../../gen/artifact/v1/tag_pb.js";
import { smallImage, type BuiltImage, type LayerFile } from "../../test/support/oci-images.js";
import { pushImage } from "../../test/support/skopeo.js";
import { cachedLargeImage } from "../big-image.js";
import { backgroundBusyPct, measureCpuOf } from "../cpu.js";
import { median, say, using } from "../lifecycle.js";
import { requirePeers, startPeerRegistry, type PeerRegistry } from "../peer.js";
import type { Settings } from "../settings.js";
import { fmt, table, verdict } from "../report.js";
import { measureRss } from "../rss.js";
import { createRegistry, databaseLabel, profiled, withService, type Service } from "../service.js";
import {
  CONNECT_STREAM_HEADERS,
  GET_BLOB_PATH,
  checkBlobDownload,
  checkConnectStream,
  connectGetBlob,
  curlGet,
  streamProblem,
  transferProblem,
  writeGetBlobRequest,
} from "../transfer.js";
import { fillSyncUpstream } from "../sync-upstream.js";
import { walkUpstream, type Walk } from "../upstream-walk.js";
import type { SuiteRunner } from "./types.js";

const TARGET_RATIO = 0.8;
const TARGET_RSS_MIB = 64;
/** The server's defaults (src/config.ts SYNC_CONCURRENCY, TAG_CONCURRENCY in src/sync/registry-sync.ts). */
const SYNC_CONCURRENCY = 4;
const TAG_CONCURRENCY = 4;

interface BlobRow {
  label: string;
  /** Whose memory the RSS column shows. */
  rssOf: string;
  mbps: number[];
  rssGrowthMiB: number[];
  serverPct: number[];
  upstreamPct: number[];
  machinePct: number[];
  /** Machine CPU in the second before each round, while nothing was sent. */
  background: number[];
  problem?: string;
}

export const runImagesSuite: SuiteRunner = async (s, workDir) => {
  requirePeers("images", "docker-registry", "skopeo", "curl");
  const image = await cachedLargeImage(s.cacheDir, s.blobMiB);
  const layer = image.manifests[0]!.layers[0]!;
  const parts = [
    "## REMOTE registries: a big blob through the service, and sync (issue 4)",
    "",
    `- upstream: Debian's docker-registry (CNCF Distribution 2.8), filesystem storage on the same disk, blobdescriptor cache inmemory, log level warn; the service reads it as a REMOTE registry.`,
    `- blob: the ${s.blobMiB} MiB layer of an image pushed to the upstream with skopeo; ${s.blobRounds} downloads per row with the rows in turn, median shown (range in brackets). MB = 10^6 bytes of the blob. curl (C, body discarded) for the raw GETs and for the Connect stream (binary Connect over HTTP/1.1, the enveloped request sent as is; curl offers no compression); the connect-node client (what a Node user of the typed client runs) once, in a worker process. Checked once per path before timing: status, Content-Length, Docker-Content-Digest and the sha256 of all bytes; for the stream every message decoded (offsets, size_bytes), the bytes hashed and the end-of-stream message free of errors.`,
    `- RSS growth: the highest resident set size during a download (VmHWM reset before it, and /proc sampled every 20 ms) minus the RSS just before it; the largest over the rounds. server CPU and docker-registry CPU: % of one core during the download; busy before: the machine in the half second before it, while nothing was sent (other work on the machine).`,
    `- sync: ${s.syncRepos} repositories × ${s.syncTags} tags (one small image) on a second docker-registry; SyncRegistry called over gRPC and read to its last message; server SYNC_CONCURRENCY=${SYNC_CONCURRENCY} (default). The upstream walk is the floor: the requests a sync sends (catalog, each tag list, a manifest HEAD per tag) from a bare Node client with the same concurrency, answers thrown away.`,
  ];
  let anyFailed = false;
  await using(
    startPeerRegistry,
    (r) => r.stop(),
    async (upstream) => {
      say(`images: pushing the ${s.blobMiB} MiB image to the upstream with skopeo`);
      const pushed = await pushImage(image, upstream, "bench/big", "latest");
      if (pushed !== image.digest) throw new Error(`images: skopeo pushed ${pushed}, expected ${image.digest}`);
      await using(
        startPeerRegistry,
        (r) => r.stop(),
        async (syncUpstream) => {
          const small = await smallImage("bench-sync");
          const repos = Array.from({ length: s.syncRepos }, (_, i) => `sync/r${String(i).padStart(5, "0")}`);
          const tags = Array.from({ length: s.syncTags }, (_, i) => `v${i}`);
          say(`images: filling the sync upstream with ${s.syncRepos} repositories × ${s.syncTags} tags`);
          const filled = await fillSyncUpstream(syncUpstream, small, repos, tags, s.cacheDir);
          parts.push(`- sync upstream: ${filled.how}, in ${filled.seconds.toFixed(1)} s.`);
          for (const kind of s.databases ?? ["postgres"]) {
            await withService(kind, workDir, s, "images", async (svc) => {
              const blobs = await measureBlobs(svc, upstream, layer, s, workDir);
              const sync = await measureSync(svc, syncUpstream, small, s);
              const blobRows = [...blobs.rows, ...(await blobs.cached())];
              const rendered = renderKind(svc, blobRows, sync, s);
              anyFailed ||= rendered.failed;
              parts.push("", rendered.markdown);
            });
          }
        },
      );
    },
  );
  const markdown = parts.join("\n");
  process.stdout.write(`\n${markdown}\n\n`);
  return { markdown, failed: anyFailed };
};

async function measureBlobs(
  svc: Service,
  upstream: PeerRegistry,
  layer: LayerFile,
  s: Settings,
  workDir: string,
): Promise<{ rows: BlobRow[]; cached: () => Promise<BlobRow[]> }> {
  await createRegistry(svc, { name: "upstream", kind: "remote", url: upstream.url });
  const { digest, size } = layer;
  const repository = "upstream/bench/big";
  const direct = `${upstream.url}/v2/bench/big/blobs/${digest}`;
  const rest = `${svc.server.httpUrl}/v1/images/${repository}/blobs/${digest}`;
  const stream = `${svc.server.httpUrl}${GET_BLOB_PATH}`;
  const streamRequest = writeGetBlobRequest(workDir, repository, digest);
  const row = (label: string, rssOf: string): BlobRow => ({
    label,
    rssOf,
    mbps: [],
    rssGrowthMiB: [],
    serverPct: [],
    upstreamPct: [],
    machinePct: [],
    background: [],
  });
  const directRow = row("docker-registry directly: `GET /v2/bench/big/blobs/{digest}`, curl", "docker-registry");
  const restRow = row("service, REST raw route: `GET /v1/images/upstream/bench/big/blobs/{digest}`, curl", "server");
  const connectRow = row("service, Connect server stream `ImageService.GetBlob`, curl (no compression offered)", "server");
  const clientRow = row(
    "service, Connect server stream, connect-node client with its defaults (offers gzip, so the server compresses), one download",
    "server",
  );

  say(`images: ${svc.kind}: checking the blob on each path (status, headers, sha256 of ${size} bytes)`);
  directRow.problem = await checkBlobDownload(direct, digest, size);
  restRow.problem = await checkBlobDownload(rest, digest, size);
  connectRow.problem = await checkConnectStream(svc.server.httpUrl, repository, digest, size);

  const tree = svc.workers > 1;
  const watched = { server: { pid: svc.server.pid, tree }, upstream: { pid: upstream.pid } };
  type Fetch = () => Promise<{ mbps: number; problem?: string }>;
  const measure = async (r: BlobRow, pid: number, slug: string, profile: boolean, fetchIt: Fetch) => {
    r.background.push(await backgroundBusyPct(500));
    const go = () => measureCpuOf(watched, () => measureRss(pid, fetchIt, { tree: tree && pid === svc.server.pid }));
    const { value, pct, machinePct } = profile ? await profiled(svc, s, slug, go) : await go();
    const { value: t, rss } = value;
    r.problem ??= t.problem;
    r.mbps.push(t.mbps);
    r.rssGrowthMiB.push(rss.growthMiB);
    r.serverPct.push(pct.server!);
    r.upstreamPct.push(pct.upstream!);
    r.machinePct.push(machinePct);
    say(
      `  ${slug}: ${fmt(t.mbps, 0)} MB/s, ${r.rssOf} RSS +${fmt(rss.growthMiB, 1)} MiB, server CPU ${fmt(pct.server!, 0)}%, docker-registry CPU ${fmt(pct.upstream!, 0)}%${t.problem ? `, ${t.problem}` : ""}`,
    );
  };
  const rawGet = (url: string) => () => curlGet(url).then((t) => ({ mbps: t.mbps, problem: transferProblem(t, size) }));
  // MB/s of blob bytes: the envelopes and message fields around them are not counted.
  const streamGet = () =>
    curlGet(stream, { method: "POST", headers: CONNECT_STREAM_HEADERS, dataFile: streamRequest }).then((t) => ({
      mbps: size / t.seconds / 1e6,
      problem: transferProblem(t, size, true),
    }));
  for (let round = 1; round <= s.blobRounds; round++) {
    say(`images: ${svc.kind}: blob round ${round}/${s.blobRounds}`);
    const first = round === 1;
    await measure(directRow, upstream.pid, "images-blob-direct", false, rawGet(direct));
    await measure(restRow, svc.server.pid, "images-blob-rest", first, rawGet(rest));
    await measure(connectRow, svc.server.pid, "images-blob-connect", first, streamGet);
  }
  say(`images: ${svc.kind}: the connect-node client, once`);
  await measure(clientRow, svc.server.pid, "images-blob-connect-node", true, () =>
    connectGetBlob({ baseUrl: svc.server.httpUrl, repository, digest, verify: false }).then((r) => ({ mbps: r.mbps, problem: streamProblem(r, digest, size) })),
  );

  // After the sync (whose check counts the catalog's repositories): one pull through /v2/ puts
  // the blob in the pull-through cache, and GetBlob then reads it there.
  const cached = async (): Promise<BlobRow[]> => {
    say(`images: ${svc.kind}: one /v2/ pull-through of the blob, then the same paths from the cache`);
    const pullThrough = await checkBlobDownload(`${svc.server.httpUrl}/v2/${repository}/blobs/${digest}`, digest, size);
    const cachedRestRow = row("service, REST raw route, the blob in the pull-through cache (after one `/v2/` pull)", "server");
    const cachedConnectRow = row("service, Connect server stream, curl, the blob in the pull-through cache", "server");
    cachedRestRow.problem = pullThrough ?? (await checkBlobDownload(rest, digest, size));
    cachedConnectRow.problem = pullThrough ?? (await checkConnectStream(svc.server.httpUrl, repository, digest, size));
    for (let round = 1; round <= s.blobRounds; round++) {
      say(`images: ${svc.kind}: cached blob round ${round}/${s.blobRounds}`);
      const first = round === 1;
      await measure(directRow, upstream.pid, "images-blob-direct", false, rawGet(direct));
      await measure(cachedRestRow, svc.server.pid, "images-blob-rest-cached", first, rawGet(rest));
      await measure(cachedConnectRow, svc.server.pid, "images-blob-connect-cached", first, streamGet);
    }
    return [cachedRestRow, cachedConnectRow];
  };
  return { rows: [directRow, restRow, connectRow, clientRow], cached };
}

interface SyncRun {
  label: string;
  seconds: number;
  last?: SyncRegistryProgress;
  messages: number;
  pct: Record<string, number>;
  problem?: string;
}

async function runSync(svc: Service, registryId: string): Promise<{ last?: SyncRegistryProgress; messages: number }> {
  const client = createClient(RegistryService, createGrpcTransport({ baseUrl: svc.server.grpcUrl }));
  let last: SyncRegistryProgress | undefined;
  let messages = 0;
  for await (const p of client.syncRegistry({ id: registryId })) {
    last = p;
    messages++;
  }
  return { last, messages };
}

async function measureSync(svc: Service, syncUpstream: PeerRegistry, small: BuiltImage, s: Settings): Promise<{ walk: Walk; runs: SyncRun[]; spot?: string }> {
  const registryId = await createRegistry(svc, { name: "mirror", kind: "remote", url: syncUpstream.url });
  const n = s.syncRepos;
  const total = s.syncRepos * s.syncTags;
  say(`images: ${svc.kind}: upstream walk`);
  const walk = await walkUpstream(syncUpstream.url, { repositoryConcurrency: SYNC_CONCURRENCY, tagConcurrency: TAG_CONCURRENCY, pageSize: 1000 });
  if (walk.repositories !== n || walk.tags !== total)
    throw new Error(`images: the sync upstream lists ${walk.repositories} repositories and ${walk.tags} tags, expected ${n} and ${total}`);
  say(`  walk: ${walk.seconds.toFixed(1)} s, ${walk.requests} requests`);
  const watched = {
    server: { pid: svc.server.pid, tree: svc.workers > 1 },
    database: svc.target.postmasterPid ? { pid: svc.target.postmasterPid, tree: true } : undefined,
    upstream: { pid: syncUpstream.pid },
  };
  const runs: SyncRun[] = [];
  for (const label of ["first sync", "re-sync (nothing changed)"]) {
    say(`images: ${svc.kind}: ${label}`);
    const slug = label.startsWith("first") ? "images-sync-first" : "images-resync";
    const { value, pct, seconds } = await profiled(svc, s, slug, () => measureCpuOf(watched, () => runSync(svc, registryId)));
    const last = value.last;
    const want = label.startsWith("first") ? { added: total } : { added: 0 };
    let problem: string | undefined;
    if (!last?.done) problem = "the stream ended without its last (done) message";
    else if (last.repositoriesSynced !== n || last.errors !== 0 || last.tagsAdded !== want.added || last.tagsUpdated !== 0 || last.tagsRemoved !== 0) {
      problem = `synced ${last.repositoriesSynced}/${n} repositories, ${last.tagsAdded} added (expected ${want.added}), ${last.tagsUpdated} updated, ${last.tagsRemoved} removed, ${last.errors} errors`;
    }
    runs.push({ label, seconds, last, messages: value.messages, pct, problem });
    say(`  ${label}: ${seconds.toFixed(1)} s${problem ? `, ${problem}` : ""}`);
  }
  // The catalog must hold what the upstream has: every repository, every tag with the right digest.
  const transport = createGrpcTransport({ baseUrl: svc.server.grpcUrl });
  const tagsPage = await createClient(TagService, transport).listTags({ pageSize: 1000 });
  const reposPage = await createClient(RepositoryService, transport).listRepositories({ pageSize: 1 });
  let spot: string | undefined;
  if (tagsPage.totalSize !== total || reposPage.totalSize !== n)
    spot = `the catalog holds ${reposPage.totalSize} repositories and ${tagsPage.totalSize} tags, expected ${n} and ${total}`;
  else {
    const wrong = tagsPage.tags.find((t) => t.digest !== small.digest || t.mediaType !== small.mediaType);
    if (wrong) spot = `tag ${wrong.name} has ${wrong.digest} (${wrong.mediaType}), expected ${small.digest} (${small.mediaType})`;
  }
  return { walk, runs, spot };
}

function renderKind(svc: Service, rows: BlobRow[], sync: { walk: Walk; runs: SyncRun[]; spot?: string }, s: Settings): { markdown: string; failed: boolean } {
  const direct = rows[0]!;
  const directMbps = direct.problem ? NaN : median(direct.mbps);
  const blobTable = table(
    ["path", "MB/s", "× direct", "RSS growth MiB (whose)", "server CPU", "docker-registry CPU", "machine CPU", "busy before", "check"],
    rows.map((r) => {
      const m = median(r.mbps);
      return [
        r.label,
        r.problem ? "**FAILED**" : `${fmt(m, 0)} (${fmt(Math.min(...r.mbps), 0)}–${fmt(Math.max(...r.mbps), 0)})`,
        r === direct ? "1.00" : fmt(m / directMbps, 2),
        `${fmt(Math.max(...r.rssGrowthMiB), 1)} (${r.rssOf})`,
        `${fmt(median(r.serverPct), 0)}%`,
        `${fmt(median(r.upstreamPct), 0)}%`,
        `${fmt(median(r.machinePct), 0)}%`,
        `${fmt(median(r.background), 0)}%`,
        r.problem ?? "ok",
      ];
    }),
    "lrrrrrrrl",
  );
  // The connect-node client with its defaults (row 3) is shown for what it costs, not judged.
  const verdicts = rows
    .filter((_, i) => i > 0 && i !== 3)
    .map((r) => {
      const x = r.problem ? undefined : median(r.mbps) / directMbps;
      const rss = Math.max(...r.rssGrowthMiB);
      return `${r.label.split(/[:`]/)[0]!.trim()}: ${fmt(x ?? NaN, 2)}× direct — target ≥ ${TARGET_RATIO}×: ${verdict(x === undefined || !Number.isFinite(x) ? undefined : x >= TARGET_RATIO)}; RSS growth ${fmt(rss, 1)} MiB — target < ${TARGET_RSS_MIB} MiB: ${verdict(r.problem ? undefined : rss < TARGET_RSS_MIB)}`;
    });
  const cpuSeconds = (pct: number | undefined, seconds: number) => (pct === undefined ? "–" : fmt((pct / 100) * seconds, 1));
  const walk = sync.walk;
  const syncTable = table(
    [
      "run",
      "seconds",
      "× walk",
      "repositories",
      "tags added / updated / removed",
      "errors",
      "server CPU s",
      "PostgreSQL CPU s",
      "docker-registry CPU s",
      "check",
    ],
    [
      [
        `upstream walk (${walk.requests} requests)`,
        fmt(walk.seconds, 1),
        "1.00",
        String(walk.repositories),
        `${walk.tags} tags seen`,
        "0",
        "–",
        "–",
        "–",
        "ok",
      ],
      ...sync.runs.map((r) => [
        r.label,
        r.problem ? `**FAILED** (${fmt(r.seconds, 1)})` : fmt(r.seconds, 1),
        fmt(r.seconds / walk.seconds, 2),
        String(r.last?.repositoriesSynced ?? "–"),
        r.last ? `${r.last.tagsAdded} / ${r.last.tagsUpdated} / ${r.last.tagsRemoved}` : "–",
        String(r.last?.errors ?? "–"),
        cpuSeconds(r.pct.server, r.seconds),
        cpuSeconds(r.pct.database, r.seconds),
        cpuSeconds(r.pct.upstream, r.seconds),
        r.problem ?? "ok",
      ]),
    ],
    "lrrrrrrrrl",
  );
  const failed = rows.some((r) => r.problem !== undefined) || sync.runs.some((r) => r.problem !== undefined) || sync.spot !== undefined;
  const markdown = [
    `### ${databaseLabel(svc.kind)}`,
    "",
    `- ${svc.target.description}; server LOG_LEVEL=${s.logLevel}.`,
    "",
    `GetBlob of ${s.blobMiB} MiB:`,
    "",
    blobTable,
    "",
    ...verdicts.map((v) => `- ${v}`),
    "",
    `Sync of ${s.syncRepos} repositories × ${s.syncTags} tags:`,
    "",
    syncTable,
    "",
    `- catalog after the syncs: ${sync.spot ?? `${s.syncRepos} repositories and ${s.syncRepos * s.syncTags} tags, digests and media types as upstream — ok`}.`,
  ].join("\n");
  return { markdown, failed };
}
