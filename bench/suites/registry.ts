// Issue 5: the service's /v2/ (HOSTED registry) beside Debian's docker-registry (CNCF
// Distribution 2.8) in the same run, with the same images: manifest GET by tag and tags/list under
// load (wrk), a big blob GET (curl), a skopeo push of a big image, and memory while several
// clients pull the blob at once. The service on PostgreSQL (the targets apply) and PGlite.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { MediaType, smallImage, type BuiltImage } from "../../test/support/oci-images.js";
import { seedRepositories } from "../../test/support/registry-seed.js";
import { pushImage } from "../../test/support/skopeo.js";
import { cachedLargeImage } from "../big-image.js";
import { timeLayoutCopy } from "../push-floor.js";
import { backgroundBusyPct, measureCpuOf, type Watched } from "../cpu.js";
import { median, say, using } from "../lifecycle.js";
import { runLoad, type LoadPlan, type LoadResult } from "../load/index.js";
import { requirePeers, startPeerRegistry, type PeerRegistry } from "../peer.js";
import { failed, fmt, table, verdict } from "../report.js";
import { measureRss } from "../rss.js";
import { createRegistry, profiled, withService, type Service } from "../service.js";
import type { Settings } from "../settings.js";
import type { DatabaseKind } from "../databases.js";
import { checkBlobDownload, curlGet, curlMany, transferProblem } from "../transfer.js";
import type { SuiteRunner } from "./types.js";

/** What a client asking for an OCI image sends. */
const ACCEPT_OCI = `${MediaType.ociManifest}, ${MediaType.ociIndex}`;
const TARGETS = { manifest: 5, tags: 5, blob: 0.9, push: 1, rssMiB: 100 };
/** Shorter rows than the other suites: 3 targets × 2 calls × 3 rounds, and the whole run should stay near 15 minutes. */
const loadSeconds = (s: Settings) => s.durationSeconds ?? 6;

interface Target {
  label: string;
  url: string;
  host: string;
  /** Registry name in front of the repository: "" for docker-registry, "local/" for the service. */
  prefix: string;
  pid: number;
  /** CPU and memory of pid's whole process tree (the service's cluster primary and workers). */
  tree?: boolean;
  svc?: Service;
  watched: Watched;
  r: Results;
}

interface LoadRun {
  result: LoadResult;
  serverPct: number;
  /** PostgreSQL's processes, when it runs here. */
  dbPct?: number;
  machinePct: number;
  background: number;
}

interface Results {
  push: { seconds: number[]; rssGrowthMiB: number[]; serverPct: number[]; problem?: string };
  manifest: { runs: LoadRun[]; problem?: string };
  tags: { runs: LoadRun[]; problem?: string };
  blob: { mbps: number[]; rssGrowthMiB: number[]; serverPct: number[]; problem?: string };
  many: { mbps: number; seconds: number; rssGrowthMiB: number; serverPct: number; problem?: string };
}

const emptyResults = (): Results => ({
  push: { seconds: [], rssGrowthMiB: [], serverPct: [] },
  manifest: { runs: [] },
  tags: { runs: [] },
  blob: { mbps: [], rssGrowthMiB: [], serverPct: [] },
  many: { mbps: NaN, seconds: NaN, rssGrowthMiB: NaN, serverPct: NaN },
});

/** Starts one service per database kind, all running at once, then runs `body` with them. */
function withServices<R>(kinds: DatabaseKind[], workDir: string, s: Settings, body: (services: Service[]) => Promise<R>): Promise<R> {
  if (kinds.length === 0) return body([]);
  return withService(kinds[0]!, workDir, s, "registry", (svc) => withServices(kinds.slice(1), workDir, s, (rest) => body([svc, ...rest])));
}

export const runRegistrySuite: SuiteRunner = async (s, workDir) => {
  requirePeers("registry", "docker-registry", "skopeo", "curl");
  const big = await cachedLargeImage(s.cacheDir, s.blobMiB);
  const app = await smallImage("bench-registry");
  const rounds = s.rounds ?? 3;
  const kinds = s.databases ?? ["postgres", "pglite"];
  return using(
    startPeerRegistry,
    (p) => p.stop(),
    (peer) =>
      withServices(kinds, workDir, s, async (services) => {
        const targets: Target[] = [peerTarget(peer), ...services.map(serviceTarget)];
        for (const t of targets) if (t.svc) await createRegistry(t.svc, { name: "local", kind: "hosted" });
        const floor = await measurePush(targets, big, s, workDir);
        await seedSmall(targets, app, s);
        for (const kind of ["manifest", "tags"] as const) await measureLoad(kind, targets, s, rounds, workDir);
        await measureBlob(targets, big, s);
        await measureMany(targets, big, s);
        const markdown = render(targets, s, rounds, floor);
        process.stdout.write(`\n${markdown}\n\n`);
        return { markdown, failed: floor.problem !== undefined || targets.some((t) => anyProblem(t.r)) };
      }),
  );
};

function peerTarget(peer: PeerRegistry): Target {
  return { label: "docker-registry", url: peer.url, host: peer.host, prefix: "", pid: peer.pid, watched: { server: { pid: peer.pid } }, r: emptyResults() };
}

function serviceTarget(svc: Service): Target {
  return {
    label: svc.label,
    url: svc.server.httpUrl,
    host: svc.host,
    prefix: "local/",
    pid: svc.server.pid,
    svc,
    tree: svc.workers > 1,
    watched: {
      server: { pid: svc.server.pid, tree: svc.workers > 1 },
      database: svc.target.postmasterPid ? { pid: svc.target.postmasterPid, tree: true } : undefined,
    },
    r: emptyResults(),
  };
}

/** Each round visits the targets in another order, so neither always goes first (disk writeback, caches). */
const rotated = <T>(items: T[], round: number) => items.map((_, i) => items[(i + round) % items.length]!);

async function withProfile<T>(t: Target, s: Settings, slug: string, during: () => Promise<T>): Promise<T> {
  return t.svc ? profiled(t.svc, s, slug, during) : during();
}

/** The push rows, and each round the floor: skopeo copying the image into an OCI layout (its seconds, or the failure). */
async function measurePush(targets: Target[], big: BuiltImage, s: Settings, workDir: string): Promise<{ seconds: number[]; problem?: string }> {
  const floor: { seconds: number[]; problem?: string } = { seconds: [] };
  for (let round = 1; round <= s.pushRounds; round++) {
    execFileSync("sync");
    say(`registry: floor: skopeo copy of the ${s.blobMiB} MiB image into an OCI layout, round ${round}/${s.pushRounds}`);
    try {
      floor.seconds.push(await timeLayoutCopy(big, `${workDir}/push-floor-${round}`));
      say(`  ${fmt(floor.seconds.at(-1)!, 2)} s`);
    } catch (err) {
      floor.problem ??= String(err).split("\n")[0];
    }
    for (const t of rotated(targets, round)) {
      // Every push starts with nothing dirty in the page cache: the previous push's writeback
      // must not slow this one (the service fsyncs its blobs, docker-registry does not).
      execFileSync("sync");
      say(`registry: push ${s.blobMiB} MiB to ${t.label} with skopeo, round ${round}/${s.pushRounds}`);
      const repo = `${t.prefix}bench/big-${round}`;
      const go = () =>
        measureCpuOf(t.watched, () =>
          measureRss(
            t.pid,
            async () => {
              const t0 = performance.now();
              const digest = await pushImage(big, { host: t.host }, repo, "latest", { timeoutMs: 600_000 });
              return { digest, seconds: (performance.now() - t0) / 1000 };
            },
            { tree: t.tree },
          ),
        );
      try {
        const { value, pct } = round === 1 ? await withProfile(t, s, "registry-push", go) : await go();
        const { value: pushed, rss } = value;
        if (pushed.digest !== big.digest) t.r.push.problem ??= `skopeo pushed ${pushed.digest}, expected ${big.digest}`;
        t.r.push.seconds.push(pushed.seconds);
        t.r.push.rssGrowthMiB.push(rss.growthMiB);
        t.r.push.serverPct.push(pct.server!);
        say(`  ${fmt(pushed.seconds, 2)} s, RSS +${fmt(rss.growthMiB, 1)} MiB, CPU ${fmt(pct.server!, 0)}%`);
      } catch (err) {
        t.r.push.problem ??= String(err).split("\n")[0];
        say(`  FAILED: ${String(err)}`);
      }
    }
  }
  return floor;
}

/** The image behind the manifest GETs, and a repository of many tags; the same on every target. */
async function seedSmall(targets: Target[], app: BuiltImage, s: Settings): Promise<void> {
  const tagNames = Array.from({ length: s.listTags }, (_, i) => `v${String(i).padStart(4, "0")}`);
  for (const t of targets) {
    say(`registry: seeding ${t.label}: ${t.prefix}bench/app:latest and ${s.listTags} tags in ${t.prefix}bench/tags`);
    const target = { url: t.url, authHeaders: async () => ({}) };
    await pushImage(app, { host: t.host }, `${t.prefix}bench/app`, "latest");
    await seedRepositories(target, app, { repos: [`${t.prefix}bench/tags`], tags: tagNames });
  }
  // The answers, checked once on every target before anything is timed.
  const expected = [...tagNames].sort();
  for (const t of targets) {
    const m = await fetch(`${t.url}/v2/${t.prefix}bench/app/manifests/latest`, { headers: { accept: ACCEPT_OCI } });
    const body = Buffer.from(await m.arrayBuffer());
    const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
    if (m.status !== 200 || m.headers.get("docker-content-digest") !== app.digest || digest !== app.digest || m.headers.get("content-type") !== app.mediaType) {
      t.r.manifest.problem = `GET manifest: HTTP ${m.status}, Docker-Content-Digest ${m.headers.get("docker-content-digest")}, Content-Type ${m.headers.get("content-type")}, body ${digest}; expected ${app.digest} (${app.mediaType})`;
    }
    const l = await fetch(`${t.url}/v2/${t.prefix}bench/tags/tags/list`);
    const text = await l.text();
    let got: string[] = [];
    try {
      got = ((JSON.parse(text) as { tags?: string[] }).tags ?? []).sort();
    } catch {
      // reported below
    }
    if (l.status !== 200 || JSON.stringify(got) !== JSON.stringify(expected)) {
      t.r.tags.problem = `tags/list: HTTP ${l.status}, ${got.length} tags${l.headers.get("link") ? " and a Link to more" : ""}; expected exactly the ${expected.length} pushed`;
    }
  }
}

async function measureLoad(kind: "manifest" | "tags", targets: Target[], s: Settings, rounds: number, workDir: string): Promise<void> {
  for (let round = 1; round <= rounds; round++) {
    for (const t of rotated(targets, round)) {
      const result = kind === "manifest" ? t.r.manifest : t.r.tags;
      const path = kind === "manifest" ? `/v2/${t.prefix}bench/app/manifests/latest` : `/v2/${t.prefix}bench/tags/tags/list`;
      const plan: LoadPlan = {
        protocol: "rest",
        baseUrl: t.url,
        method: "GET",
        headers: kind === "manifest" ? { Accept: ACCEPT_OCI } : {},
        requests: [{ path, body: "" }],
        concurrency: 32,
        connections: 32,
        timeoutSeconds: s.timeoutSeconds,
        warmupSeconds: s.warmupSeconds,
        durationSeconds: loadSeconds(s),
        threads: 2,
      };
      const background = await backgroundBusyPct();
      say(
        `registry: ${kind === "manifest" ? "GET manifest by tag" : "tags/list"} on ${t.label}, round ${round}/${rounds} (machine ${fmt(background, 0)}% busy before)`,
      );
      const go = () => measureCpuOf(t.watched, () => runLoad(plan, workDir, s.client));
      const { value, pct, machinePct } = round === 1 ? await withProfile(t, s, `registry-${kind}`, go) : await go();
      result.runs.push({ result: value, serverPct: pct.server!, dbPct: pct.database, machinePct, background });
      say(
        `  ${failed(value) ? `FAILED (${value.firstError})` : `${fmt(value.rps, 0)} req/s`}, p99 ${fmt(value.p99Ms, 2)} ms, server CPU ${fmt(pct.server!, 0)}%`,
      );
    }
  }
}

async function measureBlob(targets: Target[], big: BuiltImage, s: Settings): Promise<void> {
  const layer = big.manifests[0]!.layers[0]!;
  const url = (t: Target) => `${t.url}/v2/${t.prefix}bench/big-1/blobs/${layer.digest}`;
  for (const t of targets) t.r.blob.problem = (await checkBlobDownload(url(t), layer.digest, layer.size)) ?? (t.r.push.problem ? "the push failed" : undefined);
  for (let round = 1; round <= s.blobRounds; round++) {
    for (const t of rotated(targets, round)) {
      const go = () => measureCpuOf(t.watched, () => measureRss(t.pid, () => curlGet(url(t)), { tree: t.tree }));
      const { value, pct } = round === 1 ? await withProfile(t, s, "registry-blob", go) : await go();
      const { value: transfer, rss } = value;
      t.r.blob.problem ??= transferProblem(transfer, layer.size);
      t.r.blob.mbps.push(transfer.mbps);
      t.r.blob.rssGrowthMiB.push(rss.growthMiB);
      t.r.blob.serverPct.push(pct.server!);
      say(`registry: blob GET from ${t.label}, round ${round}/${s.blobRounds}: ${fmt(transfer.mbps, 0)} MB/s, RSS +${fmt(rss.growthMiB, 1)} MiB`);
    }
  }
}

async function measureMany(targets: Target[], big: BuiltImage, s: Settings): Promise<void> {
  const layer = big.manifests[0]!.layers[0]!;
  for (const t of targets) {
    const url = `${t.url}/v2/${t.prefix}bench/big-1/blobs/${layer.digest}`;
    const go = () => measureCpuOf(t.watched, () => measureRss(t.pid, () => curlMany(url, s.blobClients), { tree: t.tree }));
    const { value, pct } = await withProfile(t, s, "registry-blob-many", go);
    const { value: many, rss } = value;
    const problem = many.transfers.map((x) => transferProblem(x, layer.size)).find((p) => p !== undefined);
    t.r.many = { mbps: many.mbps, seconds: many.seconds, rssGrowthMiB: rss.growthMiB, serverPct: pct.server!, problem };
    say(
      `registry: ${s.blobClients} clients pulling the blob from ${t.label}: ${fmt(many.mbps, 0)} MB/s in all, RSS +${fmt(rss.growthMiB, 1)} MiB${problem ? `, ${problem}` : ""}`,
    );
  }
}

// ---- report ------------------------------------------------------------------------------------

const medianRun = (runs: LoadRun[]): LoadRun | undefined => [...runs].sort((a, b) => a.result.rps - b.result.rps)[Math.floor((runs.length - 1) / 2)];
const loadFailed = (x: { runs: LoadRun[]; problem?: string }) => x.problem !== undefined || x.runs.length === 0 || x.runs.some((r) => failed(r.result));

function anyProblem(r: Results): boolean {
  return r.push.problem !== undefined || r.blob.problem !== undefined || r.many.problem !== undefined || loadFailed(r.manifest) || loadFailed(r.tags);
}

interface Figure {
  value: number;
  /** Shown instead of the value when the row failed. */
  failed: boolean;
  text: string;
}

function render(targets: Target[], s: Settings, rounds: number, floor: { seconds: number[]; problem?: string }): string {
  const peer = targets[0]!;
  const services = targets.slice(1);
  const loadFigure = (x: { runs: LoadRun[]; problem?: string }): Figure => {
    const m = medianRun(x.runs);
    const bad = loadFailed(x) || !m;
    const spread =
      x.runs.length > 1 ? ` (${fmt(Math.min(...x.runs.map((r) => r.result.rps)), 0)}–${fmt(Math.max(...x.runs.map((r) => r.result.rps)), 0)})` : "";
    return { value: m?.result.rps ?? NaN, failed: bad, text: m ? `${fmt(m.result.rps, 0)}${spread}, p99 ${fmt(m.result.p99Ms, 1)} ms` : "–" };
  };
  const rows: { measure: string; of: (t: Target) => Figure; higherIsBetter: boolean; target: string; met: (ratio: number, t: Target) => boolean }[] = [
    {
      measure: "GET manifest by tag, req/s (32 connections)",
      of: (t) => loadFigure(t.r.manifest),
      higherIsBetter: true,
      target: `≥ ${TARGETS.manifest}×`,
      met: (x) => x >= TARGETS.manifest,
    },
    {
      measure: `tags/list of ${s.listTags} tags, req/s (32 connections)`,
      of: (t) => loadFigure(t.r.tags),
      higherIsBetter: true,
      target: `≥ ${TARGETS.tags}×`,
      met: (x) => x >= TARGETS.tags,
    },
    {
      measure: `GET blob ${s.blobMiB} MiB, MB/s (one client)`,
      of: (t) => {
        const m = median(t.r.blob.mbps);
        return {
          value: m,
          failed: t.r.blob.problem !== undefined,
          text: `${fmt(m, 0)} (${fmt(Math.min(...t.r.blob.mbps), 0)}–${fmt(Math.max(...t.r.blob.mbps), 0)})`,
        };
      },
      higherIsBetter: true,
      target: `≥ ${TARGETS.blob}×`,
      met: (x) => x >= TARGETS.blob,
    },
    {
      measure: `skopeo push of a ${s.blobMiB} MiB image, seconds`,
      of: (t) => {
        const m = median(t.r.push.seconds);
        return {
          value: m,
          failed: t.r.push.problem !== undefined || t.r.push.seconds.length === 0,
          text: `${fmt(m, 2)} (${fmt(Math.min(...t.r.push.seconds), 2)}–${fmt(Math.max(...t.r.push.seconds), 2)})`,
        };
      },
      higherIsBetter: false,
      target: `≤ ${TARGETS.push}× the time`,
      met: (x) => x <= TARGETS.push,
    },
    {
      measure: `GET blob by ${s.blobClients} clients at once, MB/s in all`,
      of: (t) => ({ value: t.r.many.mbps, failed: t.r.many.problem !== undefined, text: `${fmt(t.r.many.mbps, 0)}` }),
      higherIsBetter: true,
      target: "(none)",
      met: () => true,
    },
    {
      measure: `RSS growth serving ${s.blobClients} clients, MiB`,
      of: (t) => ({ value: t.r.many.rssGrowthMiB, failed: t.r.many.problem !== undefined, text: `${fmt(t.r.many.rssGrowthMiB, 1)}` }),
      higherIsBetter: false,
      target: `< ${TARGETS.rssMiB} MiB`,
      met: (_x, t) => t.r.many.rssGrowthMiB < TARGETS.rssMiB,
    },
  ];
  const header = [
    "measure",
    peer.label,
    ...services.flatMap((t) => [t.label, "× docker-registry"]),
    "target",
    ...services.filter((t) => t.svc?.kind === "postgres").map(() => "PostgreSQL"),
  ];
  const body = rows.map((row) => {
    const p = row.of(peer);
    const cells = [row.measure, p.failed ? "**FAILED**" : p.text];
    const verdicts: string[] = [];
    for (const t of services) {
      const f = row.of(t);
      const ratio = f.value / p.value;
      cells.push(f.failed ? "**FAILED**" : f.text, f.failed || p.failed ? "–" : fmt(ratio, 2));
      if (t.svc?.kind === "postgres")
        verdicts.push(row.target === "(none)" ? "–" : verdict(f.failed || p.failed || !Number.isFinite(ratio) ? undefined : row.met(ratio, t)));
    }
    return [...cells, row.target, ...verdicts];
  });

  const detail: string[][] = [];
  for (const t of targets) {
    for (const [what, x] of [
      ["GET manifest by tag", t.r.manifest],
      [`tags/list (${s.listTags})`, t.r.tags],
    ] as const) {
      const m = medianRun(x.runs);
      if (!m) continue;
      const ms = (pct: number) => fmt((pct / 100 / m.result.rps) * 1000, 3);
      const cpu = m.dbPct === undefined ? ms(m.serverPct) : `${ms(m.serverPct)} + ${ms(m.dbPct)}`;
      detail.push([
        t.label,
        what,
        loadFailed(x) ? "**FAILED**" : fmt(m.result.rps, 0),
        fmt(m.result.p50Ms, 2),
        fmt(m.result.p99Ms, 2),
        String(x.runs.reduce((n, r) => n + r.result.errors, 0)),
        cpu,
        `${fmt(m.serverPct, 0)}%`,
        `${fmt(m.machinePct, 0)}%`,
        `${fmt(m.background, 0)}%`,
      ]);
    }
    detail.push([
      t.label,
      `GET blob ${s.blobMiB} MiB`,
      t.r.blob.problem ? "**FAILED**" : `${fmt(median(t.r.blob.mbps), 0)} MB/s`,
      "",
      "",
      "",
      "",
      `${fmt(median(t.r.blob.serverPct), 0)}%`,
      "",
      "",
    ]);
    detail.push([
      t.label,
      `skopeo push ${s.blobMiB} MiB`,
      t.r.push.problem ? "**FAILED**" : `${fmt(median(t.r.push.seconds), 2)} s`,
      "",
      "",
      "",
      "",
      `${fmt(median(t.r.push.serverPct), 0)}%`,
      "",
      "",
    ]);
  }
  const problems = targets.flatMap((t) =>
    (
      [
        ["push", t.r.push.problem],
        ["manifest GET", t.r.manifest.problem ?? t.r.manifest.runs.find((r) => failed(r.result))?.result.firstError],
        ["tags/list", t.r.tags.problem ?? t.r.tags.runs.find((r) => failed(r.result))?.result.firstError],
        ["blob GET", t.r.blob.problem],
        [`${s.blobClients} clients`, t.r.many.problem],
      ] as const
    )
      .filter(([, p]) => p !== undefined)
      .map(([what, p]) => `- ${t.label}, ${what}: ${p}`),
  );

  return [
    "## HOSTED registry: /v2/ beside docker-registry (issue 5)",
    "",
    "- docker-registry: Debian's CNCF Distribution 2.8, filesystem storage on the same disk as the service's DATA_DIR, blobdescriptor cache inmemory (Debian's default config), log level warn, no access log. The service: HOSTED registry `local`, content on the filesystem driver (it fsyncs each blob; docker-registry does not), LOG_LEVEL=" +
      s.logLevel +
      " (a log line per request, to a file).",
    `- same images on every registry: a small OCI image (\`bench/app:latest\`), ${s.listTags} tags on it (\`bench/tags\`, seeded by manifest PUTs), and a ${s.blobMiB} MiB single-layer image pushed by skopeo (\`bench/big-N\`); on the service the names start with \`local/\`. Answers checked before timing: manifest status, Content-Type, Docker-Content-Digest and the sha256 of the body; tags/list exactly the ${s.listTags} tags; the blob's status, Content-Length, Docker-Content-Digest and sha256; skopeo's pushed digest.`,
    `- manifest GET (Accept: OCI manifest and index) and tags/list: wrk, 2 threads, 32 connections, ${s.warmupSeconds} s warm-up + ${loadSeconds(s)} s; ${rounds} rounds with the registries in turn (another order each round), the median round shown (range in brackets). Blob GET: curl, ${s.blobRounds} downloads each, median (range). Push: skopeo copy from the OCI layout, ${s.pushRounds} pushes each into a new repository after \`sync\`, median (range). ${s.blobClients} clients: ${s.blobClients} curl downloads at once, bytes of all ÷ wall time. RSS growth: the highest RSS while serving (VmHWM reset before, and sampled) minus the RSS before.`,
    "- × docker-registry divides the service's figure by docker-registry's; for push it is the ratio of the times (≤ 1 means no slower). Targets apply on PostgreSQL.",
    "",
    table(header, body, "l" + "r".repeat(header.length - 1)),
    "",
    `Push floor in the same run (skopeo copy of the same image from its OCI layout into a new OCI layout: skopeo's own work, no network, no registry, no fsync): ${
      floor.problem
        ? `**FAILED** (${floor.problem})`
        : `${fmt(median(floor.seconds), 2)} s (${fmt(Math.min(...floor.seconds), 2)}–${fmt(Math.max(...floor.seconds), 2)}); push ÷ floor: ${targets
            .map((t) => `${t.label} ${t.r.push.seconds.length ? fmt(median(t.r.push.seconds) / median(floor.seconds), 2) : "–"}`)
            .join(", ")}`
    }.`,
    "",
    "Per registry (median rounds): CPU ms/request is the registry process's CPU time per request (for the service: the Node process + PostgreSQL's processes). registry CPU: % of one core (docker-registry is Go and uses both cores; the service's JavaScript runs on one thread). busy before: the machine in the second before the row, while the bench sent nothing (other work on the machine).",
    "",
    table(
      ["registry", "measure", "req/s", "p50 ms", "p99 ms", "errors", "CPU ms/request (+ PostgreSQL)", "registry CPU", "machine CPU", "busy before"],
      detail,
      "llrrrrrrrr",
    ),
    ...(problems.length > 0 ? ["", "Failed (these figures are not results):", ...problems] : []),
  ].join("\n");
}
