// Issue 16, target 2: /v2/ reads of a HOSTED registry served from memory. Manifest GET and HEAD,
// by tag and by digest, and tags/list of 1,000 tags, on the service (PostgreSQL; --workers N)
// beside Debian's docker-registry with the same images, and beside a bare `node:http` hello world
// in its own process (the ceiling of one Node process), all loaded the same way (wrk, 32
// connections) in the same run. Then the consistency bound: a second server process on the same
// PostgreSQL, a tag moved through the first, the time until the second serves the new digest.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { MediaType, smallImage, type BuiltImage } from "../../test/support/oci-images.js";
import { seedRepositories } from "../../test/support/registry-seed.js";
import { pushImage } from "../../test/support/skopeo.js";
import { backgroundBusyPct, measureCpuOf, type Watched } from "../cpu.js";
import { startHelloWorld, type HelloWorld } from "../hello-world.js";
import { median, say, using } from "../lifecycle.js";
import { runLoad, type LoadPlan, type LoadResult } from "../load/index.js";
import { requirePeers, startPeerRegistry, type PeerRegistry } from "../peer.js";
import { failed, fmt, table, verdict } from "../report.js";
import { createRegistry, profiled, withService, type Service } from "../service.js";
import { startBenchServer } from "../server-process.js";
import type { Settings } from "../settings.js";
import type { SuiteRunner } from "./types.js";

const ACCEPT_OCI = `${MediaType.ociManifest}, ${MediaType.ociIndex}`;
const TARGETS = { peer: 10, hello: 0.3 };
const loadSeconds = (s: Settings) => s.durationSeconds ?? 6;
/** Tag moves timed for the cross-process bound. */
const MOVES = 20;

type RowKind = "hello" | "hello-head" | "get-tag" | "head-tag" | "get-digest" | "head-digest" | "tags";
const ROW_LABELS: Record<RowKind, string> = {
  hello: "hello world (fixed body)",
  "hello-head": "hello world, HEAD",
  "get-tag": "GET manifest by tag",
  "head-tag": "HEAD manifest by tag",
  "get-digest": "GET manifest by digest",
  "head-digest": "HEAD manifest by digest",
  tags: "tags/list",
};
const REGISTRY_ROWS: RowKind[] = ["get-tag", "head-tag", "get-digest", "head-digest", "tags"];
const requestOfMethod = (row: RowKind) => (row === "hello-head" || row === "head-tag" || row === "head-digest" ? "HEAD" : "GET");

interface Target {
  label: string;
  url: string;
  host: string;
  prefix: string;
  watched: Watched;
  svc?: Service;
  rows: RowKind[];
  runs: Map<RowKind, Run[]>;
  problems: Map<RowKind, string>;
}

interface Run {
  result: LoadResult;
  serverPct: number;
  dbPct?: number;
  machinePct: number;
  background: number;
}

interface Request {
  method: string;
  path: string;
  headers: Record<string, string>;
}

function requestOf(t: Target, row: RowKind, app: BuiltImage): Request {
  const repo = `/v2/${t.prefix}bench/app/manifests/`;
  switch (row) {
    case "hello":
      return { method: "GET", path: "/", headers: {} };
    case "hello-head":
      return { method: "HEAD", path: "/", headers: {} };
    case "get-tag":
      return { method: "GET", path: `${repo}latest`, headers: { Accept: ACCEPT_OCI } };
    case "head-tag":
      return { method: "HEAD", path: `${repo}latest`, headers: { Accept: ACCEPT_OCI } };
    case "get-digest":
      return { method: "GET", path: `${repo}${app.digest}`, headers: { Accept: ACCEPT_OCI } };
    case "head-digest":
      return { method: "HEAD", path: `${repo}${app.digest}`, headers: { Accept: ACCEPT_OCI } };
    case "tags":
      return { method: "GET", path: `/v2/${t.prefix}bench/tags/tags/list`, headers: {} };
  }
}

/** One request, checked byte for byte: undefined when the answer is right, else what is wrong. */
async function check(t: Target, row: RowKind, app: BuiltImage, hello: HelloWorld, tagNames: string[]): Promise<string | undefined> {
  const r = requestOf(t, row, app);
  const res = await fetch(`${t.url}${r.path}`, { method: r.method, headers: r.headers });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) return `HTTP ${res.status}`;
  if (row === "hello") return body.equals(hello.body) ? undefined : "the body is not the fixed one";
  if (row === "hello-head")
    return body.length === 0 && res.headers.get("content-length") === String(hello.body.length) ? undefined : "HEAD: a body, or the wrong length";
  if (row === "tags") {
    let got: string[];
    try {
      got = ((JSON.parse(body.toString()) as { tags?: string[] }).tags ?? []).sort();
    } catch {
      return "tags/list is not JSON";
    }
    return JSON.stringify(got) === JSON.stringify(tagNames) ? undefined : `tags/list has ${got.length} tags, not exactly the ${tagNames.length} pushed`;
  }
  const digest = res.headers.get("docker-content-digest");
  const type = res.headers.get("content-type");
  if (digest !== app.digest || type !== app.mediaType)
    return `Docker-Content-Digest ${digest}, Content-Type ${type}; expected ${app.digest} (${app.mediaType})`;
  if (r.method === "HEAD") {
    return body.length === 0 && res.headers.get("content-length") === String(app.size)
      ? undefined
      : `HEAD: ${body.length} body bytes, Content-Length ${res.headers.get("content-length")}`;
  }
  const actual = `sha256:${createHash("sha256").update(body).digest("hex")}`;
  return actual === app.digest ? undefined : `the body's digest is ${actual}`;
}

export const runHotSuite: SuiteRunner = async (s, workDir) => {
  requirePeers("hot", "docker-registry", "skopeo");
  const app = await smallImage("bench-hot");
  const other = await smallImage("bench-hot-other");
  const rounds = s.rounds ?? 3;
  const kinds = s.databases ?? ["postgres"];
  const tagNames = Array.from({ length: s.listTags }, (_, i) => `v${String(i).padStart(4, "0")}`).sort();
  return using(
    () => startHelloWorld(Buffer.alloc(app.size, "x")),
    (h) => h.stop(),
    (hello) =>
      using(
        startPeerRegistry,
        (p) => p.stop(),
        (peer) =>
          withServices(kinds, workDir, s, async (services) => {
            const targets: Target[] = [helloTarget(hello), peerTarget(peer), ...services.map(serviceTarget)];
            for (const t of targets.slice(1)) {
              if (t.svc) await createRegistry(t.svc, { name: "local", kind: "hosted" });
              say(`hot: seeding ${t.label}`);
              await pushImage(app, { host: t.host }, `${t.prefix}bench/app`, "latest");
              await pushImage(other, { host: t.host }, `${t.prefix}bench/app`, "other");
              await seedRepositories({ url: t.url, authHeaders: async () => ({}) }, app, { repos: [`${t.prefix}bench/tags`], tags: tagNames });
            }
            for (const t of targets) {
              for (const row of t.rows) {
                const problem = await check(t, row, app, hello, tagNames);
                if (problem) t.problems.set(row, problem);
              }
            }
            for (let round = 1; round <= rounds; round++) {
              for (const row of ["hello", "hello-head", ...REGISTRY_ROWS] as RowKind[]) {
                for (const t of rotated(targets, round)) if (t.rows.includes(row)) await measure(t, row, app, s, round, rounds, workDir);
              }
            }
            const bounds: Bound[] = [];
            for (const svc of services) if (svc.kind === "postgres") bounds.push(await measureBound(svc, app, other, workDir));
            const markdown = render(targets, bounds, s, rounds);
            process.stdout.write(`\n${markdown}\n\n`);
            const anyFailed = targets.some((t) => t.problems.size > 0 || [...t.runs.values()].some((runs) => runs.some((r) => failed(r.result))));
            return { markdown, failed: anyFailed || bounds.some((b) => b.problem !== undefined) };
          }),
      ),
  );
};

function withServices<R>(kinds: Settings["databases"] & object, workDir: string, s: Settings, body: (services: Service[]) => Promise<R>): Promise<R> {
  if (kinds.length === 0) return body([]);
  return withService(kinds[0]!, workDir, s, "hot", (svc) => withServices(kinds.slice(1), workDir, s, (rest) => body([svc, ...rest])));
}

const base = (label: string, url: string, prefix: string, watched: Watched, rows: RowKind[], svc?: Service): Target => ({
  label,
  url,
  host: url.replace(/^http:\/\//, ""),
  prefix,
  watched,
  svc,
  rows,
  runs: new Map(),
  problems: new Map(),
});

const helloTarget = (h: HelloWorld) => base("node:http hello world", h.url, "", { server: { pid: h.pid } }, ["hello", "hello-head"]);
const peerTarget = (p: PeerRegistry) => base("docker-registry", p.url, "", { server: { pid: p.pid } }, REGISTRY_ROWS);
const serviceTarget = (svc: Service) =>
  base(
    svc.label,
    svc.server.httpUrl,
    "local/",
    {
      server: { pid: svc.server.pid, tree: svc.workers > 1 },
      database: svc.target.postmasterPid ? { pid: svc.target.postmasterPid, tree: true } : undefined,
    },
    REGISTRY_ROWS,
    svc,
  );

const rotated = <T>(items: T[], round: number) => items.map((_, i) => items[(i + round) % items.length]!);

async function measure(t: Target, row: RowKind, app: BuiltImage, s: Settings, round: number, rounds: number, workDir: string): Promise<void> {
  const r = requestOf(t, row, app);
  const plan: LoadPlan = {
    protocol: "rest",
    baseUrl: t.url,
    method: r.method,
    headers: r.headers,
    requests: [{ path: r.path, body: "" }],
    concurrency: 32,
    connections: 32,
    timeoutSeconds: s.timeoutSeconds,
    warmupSeconds: s.warmupSeconds,
    durationSeconds: loadSeconds(s),
    threads: 2,
  };
  const background = await backgroundBusyPct();
  say(`hot: ${ROW_LABELS[row]} on ${t.label}, round ${round}/${rounds} (machine ${fmt(background, 0)}% busy before)`);
  // wrk waits for a HEAD answer's body (its parser is never told there is none): HEAD rows, and
  // the hello world's HEAD row they are compared with, use the Node load worker.
  const go = () => measureCpuOf(t.watched, () => runLoad(plan, workDir, r.method === "HEAD" ? "node" : s.client));
  const { value, pct, machinePct } = round === 1 && t.svc ? await profiled(t.svc, s, `hot-${row}`, go) : await go();
  const runs = t.runs.get(row) ?? [];
  runs.push({ result: value, serverPct: pct.server!, dbPct: pct.database, machinePct, background });
  t.runs.set(row, runs);
  say(`  ${failed(value) ? `FAILED (${value.firstError})` : `${fmt(value.rps, 0)} req/s`}, p99 ${fmt(value.p99Ms, 2)} ms, server CPU ${fmt(pct.server!, 0)}%`);
}

interface Bound {
  label: string;
  workers: number;
  /** ms from the tag move's response to the other process's first answer with the new digest. */
  ms: number[];
  /** The other process's first read after the move already had the new digest. */
  immediate: number;
  problem?: string;
}

/**
 * A second server process on the same database; the tag `moving` is moved back and forth through
 * the first, and the second is asked (one request after another) until it serves the new digest.
 * Before each move the second has the old digest cached (read twice).
 */
async function measureBound(svc: Service, a: BuiltImage, b: BuiltImage, workDir: string): Promise<Bound> {
  const bound: Bound = { label: `${svc.label}, a second process`, workers: svc.workers, ms: [], immediate: 0 };
  return using(
    () => startBenchServer({ env: { ...svc.target.env, LOG_LEVEL: "warn", SECRET_KEY: "00".repeat(32) }, logFile: join(workDir, "server-hot-second.log") }),
    (second) => second.stop(),
    async (second) => {
      const path = "/v2/local/bench/app/manifests/moving";
      const digestOn = async (url: string) =>
        (await fetch(`${url}${path}`, { method: "HEAD", headers: { accept: ACCEPT_OCI } })).headers.get("docker-content-digest");
      const move = async (image: BuiltImage) => {
        const res = await fetch(`${svc.server.httpUrl}${path}`, { method: "PUT", headers: { "content-type": image.mediaType }, body: image.bytes });
        if (res.status !== 201) throw new Error(`PUT manifest: HTTP ${res.status}`);
      };
      await move(a);
      say(`hot: the consistency bound, ${MOVES} tag moves through one process, read on another`);
      for (let i = 0; i < MOVES; i++) {
        const [from, to] = i % 2 === 0 ? [a, b] : [b, a];
        const deadline = performance.now() + 10_000;
        while ((await digestOn(second.httpUrl)) !== from.digest) {
          if (performance.now() > deadline) return { ...bound, problem: "the second process never served the tag's previous digest" };
        }
        await digestOn(second.httpUrl); // now from memory
        await move(to);
        const moved = performance.now();
        // One process: the next read must see the move. Workers: the next read may land on another worker (then the notice decides).
        if (svc.workers === 1 && (await digestOn(svc.server.httpUrl)) !== to.digest)
          return { ...bound, problem: "the process that took the move did not serve it next" };
        let first = true;
        for (;;) {
          const seen = await digestOn(second.httpUrl);
          if (seen === to.digest) break;
          first = false;
          if (performance.now() - moved > 10_000) return { ...bound, problem: "the second process did not serve the moved tag within 10 s" };
        }
        bound.ms.push(performance.now() - moved);
        if (first) bound.immediate++;
      }
      say(`  median ${fmt(median(bound.ms), 2)} ms, max ${fmt(Math.max(...bound.ms), 2)} ms`);
      return bound;
    },
  );
}

// ---- report ------------------------------------------------------------------------------------

const medianRun = (runs: Run[] | undefined): Run | undefined =>
  runs ? [...runs].sort((a, b) => a.result.rps - b.result.rps)[Math.floor((runs.length - 1) / 2)] : undefined;

function render(targets: Target[], bounds: Bound[], s: Settings, rounds: number): string {
  const hello = targets[0]!;
  const peer = targets[1]!;
  const services = targets.slice(2);
  const helloRow = (row: RowKind): RowKind => (requestOfMethod(row) === "HEAD" ? "hello-head" : "hello");
  const helloRps = (row: RowKind) => medianRun(hello.runs.get(helloRow(row)))?.result.rps ?? NaN;
  const bad = (t: Target, row: RowKind) => t.problems.has(row) || !t.runs.get(row)?.length || t.runs.get(row)!.some((r) => failed(r.result));
  const figure = (t: Target, row: RowKind) => {
    const runs = t.runs.get(row) ?? [];
    const m = medianRun(runs);
    if (!m || bad(t, row)) return "**FAILED**";
    const rps = runs.map((r) => r.result.rps);
    return `${fmt(m.result.rps, 0)} (${fmt(Math.min(...rps), 0)}–${fmt(Math.max(...rps), 0)})`;
  };
  const header = [
    "measure",
    peer.label,
    ...services.flatMap((t) => [t.label, "× docker-registry", "× hello world", "by CPU/request: × docker-registry, × hello world"]),
    "targets (≥ 10×, ≥ 0.3×)",
  ];
  /** CPU ms per request of the median round (process tree + PostgreSQL). */
  const cpuPerRequest = (t: Target, row: RowKind) => {
    const m = medianRun(t.runs.get(row));
    return m ? ((m.serverPct + (m.dbPct ?? 0)) / 100 / m.result.rps) * 1000 : NaN;
  };
  const body = REGISTRY_ROWS.map((row) => {
    const p = medianRun(peer.runs.get(row))?.result.rps ?? NaN;
    const cells = [row === "tags" ? `tags/list of ${s.listTags} tags, req/s` : `${ROW_LABELS[row]}, req/s`, figure(peer, row)];
    const verdicts: string[] = [];
    for (const t of services) {
      const v = medianRun(t.runs.get(row))?.result.rps ?? NaN;
      const ok = !bad(t, row) && !bad(peer, row);
      const helloOk = !bad(hello, helloRow(row));
      cells.push(
        figure(t, row),
        ok ? fmt(v / p, 2) : "–",
        ok && helloOk ? fmt(v / helloRps(row), 2) : "–",
        ok && helloOk
          ? `${fmt(cpuPerRequest(peer, row) / cpuPerRequest(t, row), 1)}, ${fmt(cpuPerRequest(hello, helloRow(row)) / cpuPerRequest(t, row), 2)}`
          : "–",
      );
      const vsPeer = ok ? v / p >= TARGETS.peer : undefined;
      const vsHello = row === "tags" ? true : ok && helloOk ? v / helloRps(row) >= TARGETS.hello : undefined;
      verdicts.push(`${t.label}: ${verdict(vsPeer === undefined || vsHello === undefined ? undefined : vsPeer && vsHello)}`);
    }
    return [...cells, verdicts.join("; ")];
  });

  const detail: string[][] = [];
  for (const t of targets) {
    for (const row of t.rows) {
      const m = medianRun(t.runs.get(row));
      if (!m) continue;
      const ms = (pct: number) => fmt((pct / 100 / m.result.rps) * 1000, 3);
      detail.push([
        t.label,
        ROW_LABELS[row],
        bad(t, row) ? "**FAILED**" : fmt(m.result.rps, 0),
        fmt(m.result.p50Ms, 2),
        fmt(m.result.p99Ms, 2),
        String((t.runs.get(row) ?? []).reduce((n, r) => n + r.result.errors, 0)),
        m.dbPct === undefined ? ms(m.serverPct) : `${ms(m.serverPct)} + ${ms(m.dbPct)}`,
        `${fmt(m.serverPct, 0)}%`,
        `${fmt(m.machinePct, 0)}%`,
        `${fmt(m.background, 0)}%`,
      ]);
    }
  }
  const problems = targets.flatMap((t) => [...t.problems].map(([row, p]) => `- ${t.label}, ${ROW_LABELS[row]}: ${p}`));
  for (const b of bounds) if (b.problem) problems.push(`- ${b.label}: ${b.problem}`);

  return [
    "## /v2/ reads from memory beside docker-registry and a Node hello world (issue 16, target 2)",
    "",
    `- the same small OCI image (\`bench/app:latest\`, and its digest for the by-digest rows) and ${s.listTags} tags (\`bench/tags\`) on docker-registry and on the service (\`local/…\`, a HOSTED registry, LOG_LEVEL=${s.logLevel}); the hello world is a bare \`node:http\` server in its own process answering a fixed body of the manifest's size. Every row's answer is checked before it is timed: status, Content-Type, Docker-Content-Digest, sha256 of the body (GET) or Content-Length and no body (HEAD), tags/list exactly the pushed tags, the hello world's body.`,
    "- req/s decide the targets; the CPU columns divide the other side's CPU time per request by the service's (more is better for the service): the figure a busy machine disturbs least.",
    `- GET rows: wrk, 2 threads, 32 connections; HEAD rows: the Node load worker (wrk cannot read HEAD answers), 32 connections, compared with the hello world's HEAD row under the same client; ${s.warmupSeconds} s warm-up + ${loadSeconds(s)} s per row; ${rounds} rounds, the targets in another order each round; the median round (range). Targets: ≥ ${TARGETS.peer}× docker-registry (all rows) and ≥ ${TARGETS.hello}× the hello world (manifest rows) on PostgreSQL.`,
    "",
    table(header, body, "l" + "r".repeat(header.length - 2) + "l"),
    "",
    "Per target (median rounds): CPU ms/request of the process (tree) + PostgreSQL; busy before: the machine in the second before the row, while nothing was sent.",
    "",
    table(
      ["target", "measure", "req/s", "p50 ms", "p99 ms", "errors", "CPU ms/request (+ PostgreSQL)", "server CPU", "machine CPU", "busy before"],
      detail,
      "llrrrrrrrr",
    ),
    "",
    ...bounds.map(
      (b) =>
        `Consistency across processes (${b.label}): ${b.ms.length} tag moves through the first process; from the move's 201 to the second process serving the new digest: median ${fmt(median(b.ms), 2)} ms, max ${fmt(Math.max(...b.ms), 2)} ms (${b.immediate} of ${b.ms.length} on its very first read). ${b.workers === 1 ? " The process that took the move served it on its next request every time." : ""}`,
    ),
    ...(problems.length > 0 ? ["", "Failed (these figures are not results):", ...problems] : []),
  ].join("\n");
}
