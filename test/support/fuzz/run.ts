// The fuzz loop: fast-check generates batches of requests from a seed, each batch is sent one
// request at a time and judged (oracle.ts), then the server must still answer (GET /readyz) and
// nothing may have happened that would end its process (watch.ts). Bounded by a time budget,
// reproducible from the printed seed, and on failure shrunk to a minimal batch printed as the
// exact bytes sent, with the commands that replay it.
import fc from "fast-check";
import type { TestServer } from "../server.js";
import { deadlineMs } from "./framing.js";
import { KNOWN_FAILURES, type Failure, type KnownFailure } from "./known.js";
import { ociRequest } from "./oci.js";
import { judge, outcomeOf, type FuzzCase } from "./oracle.js";
import { restRequest, rpcRequest } from "./rpc.js";
import type { Ref } from "./values.js";
import type { LogSink, ProcessEvent, ProcessWatch } from "./watch.js";
import { escapeText, renderRequest, renderResponse, send, withImpliedCut, type WireRequest } from "./wire.js";
import type { World } from "./world.js";

export const FUZZ_FILE = "test/bad-input.test.ts";

export interface FuzzSettings {
  /** FUZZ_SEED, or a random one; always printed. */
  seed: number;
  /** FUZZ_SECONDS: the time budget per database (all properties together). */
  seconds: number;
  /** FUZZ_RUNS: run exactly this many batches per property instead of a time budget (replays). */
  runs?: number;
  /** FUZZ_PATH: fast-check's path of a counterexample, to replay just that batch. */
  path?: string;
}

/** Reads the FUZZ_* variables (the tests' own knobs, not service settings). */
export function fuzzSettings(env = process.env): FuzzSettings {
  const int = (name: string, value: string | undefined) => {
    if (value === undefined || value === "") return undefined;
    if (!/^-?\d+$/.test(value)) throw new Error(`${name} must be an integer (got ${JSON.stringify(value)})`);
    return Number(value);
  };
  const seconds = Number(env.FUZZ_SECONDS ?? "8");
  if (!Number.isFinite(seconds) || seconds < 0) throw new Error(`FUZZ_SECONDS must be a non-negative number (got ${JSON.stringify(env.FUZZ_SECONDS)})`);
  return {
    seed: int("FUZZ_SEED", env.FUZZ_SEED) ?? (Math.random() * 2 ** 31) | 0,
    seconds,
    runs: int("FUZZ_RUNS", env.FUZZ_RUNS),
    path: env.FUZZ_PATH || undefined,
  };
}

/** Time a shrink may take once a failure is found (the minimal request is worth the wait). */
export const SHRINK_MS = 30_000;

/**
 * Deadlines sent lately, by every run in this worker: a call abandoned at its deadline may settle
 * (and reject) well after its batch, on PostgreSQL even after its run.
 */
const recentDeadlines: { at: number; ms: number }[] = [];

function recentDeadlineMs(): number | undefined {
  const since = Date.now() - 10_000;
  while (recentDeadlines.length > 0 && recentDeadlines[0]!.at < since) recentDeadlines.shift();
  return recentDeadlines.length ? Math.min(...recentDeadlines.map((d) => d.ms)) : undefined;
}

/** Process events since the last batch that are not of a known class (after the runs, there must be none). */
export function unknownProcessEvents(watch: ProcessWatch): ProcessEvent[] {
  const events = watch.take();
  const failure: Failure = { problem: "", requests: [], serverErrors: [], processEvents: events, recentDeadlineMs: recentDeadlineMs() };
  return events.length > 0 && !KNOWN_FAILURES.some((k) => k.matches(failure)) ? events : [];
}

export function encodeCase(c: FuzzCase, resolve: (r: Ref) => string): WireRequest {
  return c.kind === "rpc" ? rpcRequest(c, resolve) : c.kind === "rest" ? restRequest(c, resolve) : ociRequest(c, resolve);
}

export class Stats {
  requests = 0;
  batches = 0;
  refreshMs = 0;
  readonly statuses = new Map<string, number>();
  readonly codes = new Map<string, number>();
  readonly targets = new Map<string, number>();
  readonly ways = new Map<string, number>();
  readonly known = new Map<string, { count: number; example: string }>();
  /** The slowest requests (milliseconds and what), to see where the budget goes. */
  readonly slowest: [number, string][] = [];

  constructor(private readonly allTargets: readonly string[]) {}

  count(c: FuzzCase, req: WireRequest, status: string, code: string | undefined, ms: number): void {
    this.requests++;
    bump(this.statuses, status);
    if (code !== undefined) bump(this.codes, code);
    bump(this.targets, targetOf(c));
    bump(this.ways, wayOf(c, req));
    this.slowest.push([ms, `${targetOf(c)} ${escapeText(req.path, 60)}`]);
    this.slowest.sort((a, b) => b[0] - a[0]).splice(3);
  }

  summary(): string {
    const top = (m: Map<string, number>, n = 30) =>
      [...m.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ");
    const missed = this.allTargets.filter((t) => !this.targets.has(t));
    const known = [...this.known.entries()].map(([id, k]) => `  ${id}: ${k.count}×, e.g. ${k.example}`).join("\n");
    return [
      `${this.requests} requests in ${this.batches} batches (playground checks: ${this.refreshMs} ms)`,
      `targets reached: ${this.allTargets.length - missed.length} of ${this.allTargets.length}${missed.length ? ` (not: ${missed.join(", ")})` : ""}`,
      `protocols: ${top(this.ways)}`,
      `statuses: ${top(this.statuses)}`,
      `codes: ${top(this.codes)}`,
      `slowest: ${this.slowest.map(([ms, what]) => `${ms} ms ${what}`).join("; ")}`,
      ...(known ? [`known failures (KNOWN_FAILURES, being fixed elsewhere):\n${known}`] : []),
    ].join("\n");
  }
}

/** What a request is aimed at: an RPC method, a REST rule or a /v2/ route. */
export function targetOf(c: FuzzCase): string {
  if (c.kind === "rpc") return `${c.method.parent.typeName}.${c.method.name}`;
  if (c.kind === "rest") return `${c.binding.httpMethod} ${c.binding.template.source}`;
  return `/v2/ ${c.route.kind}`;
}

function wayOf(c: FuzzCase, req: WireRequest): string {
  const via = req.h2 ? "h2" : "h1";
  if (c.kind === "rpc") return `${req.method === "GET" ? "connect-get" : c.protocol}+${c.json ? "json" : "proto"}/${via}`;
  return `${c.kind === "rest" ? "rest" : "v2"}/${via}`;
}

const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
const indent = (text: string, n: number) =>
  text
    .split("\n")
    .map((l) => " ".repeat(n) + l)
    .join("\n");

export interface FuzzOptions {
  /** The test's full name (for -t in the replay command). */
  name: string;
  settings: FuzzSettings;
  budgetMs: number;
  arbitrary: fc.Arbitrary<FuzzCase>;
  /** Every target (targetOf) the arbitrary can reach, to report what a run missed. */
  targets: readonly string[];
  server: TestServer;
  world: World;
  logs: LogSink;
  watch: ProcessWatch;
}

/** Fuzzes until the budget is spent (or FUZZ_RUNS batches ran); throws a report on a failure that is not known. */
export async function fuzz(o: FuzzOptions): Promise<Stats> {
  const stats = new Stats(o.targets);
  const seed = (o.settings.seed + hash(o.name)) | 0;
  const port = o.server.http.port;
  const started = Date.now();
  let interruptAt = o.settings.runs === undefined && o.settings.path === undefined ? started + o.budgetMs : Infinity;
  let report: string | undefined;

  /** Waits for work a request left behind, and says whether the server is still ready. */
  const settle = async () => {
    // /readyz pings the database: on PGlite that query waits for any abandoned one to finish.
    const ready = await send(port, { h2: false, method: "GET", path: "/readyz", headers: [], body: new Uint8Array(), mayStream: false });
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    return ready;
  };
  // The playground is checked (and rebuilt if need be) only after a batch that may have changed it.
  let changed = { playground: false, upload: false };

  /** Records a known failure, or throws (making fast-check shrink) for any other. */
  const fail = (f: Omit<Failure, "recentDeadlineMs">): void => {
    const failure: Failure = { ...f, recentDeadlineMs: recentDeadlineMs() };
    const known = KNOWN_FAILURES.find((k) => k.matches(failure));
    if (known) {
      noteKnown(stats, known, failure);
      return;
    }
    report = render(failure);
    if (interruptAt !== Infinity) interruptAt = Math.max(interruptAt, Date.now() + SHRINK_MS);
    throw new Error(failure.problem);
  };

  const property = fc.asyncProperty(fc.array(o.arbitrary, { minLength: 1, maxLength: 4 }), async (batch) => {
    // At least one batch, however small the budget.
    if (stats.batches > 0 && Date.now() > interruptAt) throw new fc.PreconditionFailure(true);
    stats.batches++;
    if (changed.playground || changed.upload) {
      const checkedAt = Date.now();
      await o.world.refresh(changed);
      stats.refreshMs += Date.now() - checkedAt;
    }
    changed = { playground: batch.some(mayChangePlayground), upload: batch.some(mayUseUpload) };
    o.logs.takeErrors();
    const sent: Failure["requests"] = [];
    for (const c of batch) {
      const req = withImpliedCut(encodeCase(c, o.world.resolve));
      const deadline = deadlineMs(req.headers);
      if (deadline !== undefined) {
        recentDeadlineMs(); // drops the old ones
        recentDeadlines.push({ at: Date.now(), ms: deadline });
      }
      const sentAt = Date.now();
      const res = await send(port, req);
      const ms = Date.now() - sentAt;
      sent.push({ c, req, res });
      // Work a request left behind (abandoned at its deadline, or cut short) is waited for, so what it logs is its own.
      if (deadline !== undefined || req.cutAfter !== undefined || res.cutByClient) await settle();
      const serverErrors = o.logs.takeErrors();
      const status = res.refused ? "refused" : String(res.status ?? `none (${req.cutAfter !== undefined ? "cut" : (res.error ?? "").slice(0, 40)})`);
      stats.count(c, req, status, outcomeOf(res).code, ms);
      // A HEAD answer has no body to say why it failed: the same request as a GET tells.
      const why = req.method === "HEAD" && (res.status ?? 0) >= 500 ? outcomeOf(await send(port, { ...req, method: "GET" })) : undefined;
      const problem = judge(req, res, serverErrors, why);
      if (problem) fail({ problem, requests: [{ c, req, res }], serverErrors, processEvents: [] });
    }
    const ready = await settle();
    const processEvents = o.watch.take();
    const late = o.logs.takeErrors();
    if (processEvents.length) {
      fail({
        problem: `the batch would have ended the server process (${processEvents.map((e) => e.kind).join(", ")})`,
        requests: sent,
        serverErrors: late,
        processEvents,
      });
    } else if (late.length) {
      fail({ problem: "the server logged an error after the answers", requests: sent, serverErrors: late, processEvents: [] });
    }
    if (ready.status !== 200)
      fail({ problem: `the server no longer answers /readyz with 200: ${renderResponse(ready)}`, requests: sent, serverErrors: [], processEvents: [] });
  });

  const details = await fc.check(property, {
    seed,
    numRuns: o.settings.runs ?? Number.MAX_SAFE_INTEGER,
    ...(o.settings.path ? { path: o.settings.path } : {}),
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`bad-input fuzz "${o.name}" (FUZZ_SEED=${o.settings.seed}, ${seconds} s):\n${stats.summary()}`);
  if (details.failed) {
    const replay = (vars: string) => `${vars} npx vitest run ${FUZZ_FILE} -t ${JSON.stringify(o.name)}`;
    throw new Error(
      [
        `bad-input fuzz failed: "${o.name}"`,
        report ?? String(details.errorInstance),
        "",
        `replay the run:           ${replay(`FUZZ_SEED=${o.settings.seed} FUZZ_RUNS=${details.numRuns}`)}`,
        `replay the minimal batch: ${replay(`FUZZ_SEED=${o.settings.seed} FUZZ_PATH=${details.counterexamplePath ?? ""}`)}`,
        `(fast-check: failed at batch ${details.numRuns}, ${details.numShrinks} shrinks)`,
      ].join("\n"),
    );
  }
  return stats;
}

/** Whether a request may change data (the playground then needs a look before the next batch). */
/** Whether a request may rename, move or remove part of the playground (creations cannot). */
function mayChangePlayground(c: FuzzCase): boolean {
  if (c.kind === "rpc") return /^(Update|Delete|Sync|Run)/.test(c.method.name);
  if (c.kind === "rest") return !["GET", "HEAD", "OPTIONS"].includes(c.httpMethod);
  return ["PUT", "DELETE", "PATCH"].includes(c.method);
}

/** Whether a request may have used up the playground's open upload. */
const mayUseUpload = (c: FuzzCase) => c.kind === "oci" && c.route.kind === "upload" && c.method !== "GET";

function noteKnown(stats: Stats, known: KnownFailure, f: Failure): void {
  const entry = stats.known.get(known.id);
  if (entry) entry.count++;
  else {
    const requests = f.requests.map(({ req }) => `${req.method} ${escapeText(req.path, 100)}`).join(", ");
    stats.known.set(known.id, { count: 1, example: `${requests} — ${f.problem.slice(0, 200)}` });
  }
}

function render(f: Failure): string {
  const parts = [`problem: ${f.problem}`];
  for (const { req, res } of f.requests) {
    parts.push(`request:\n${indent(renderRequest(req), 2)}`);
    if (res) parts.push(`answer:\n${indent(renderResponse(res), 2)}`);
  }
  for (const e of f.serverErrors) parts.push(`server log: ${escapeText(e.text, 1500)}`);
  for (const e of f.processEvents) parts.push(`${e.kind}: ${e.text}`);
  return parts.join("\n");
}

function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < text.length; k++) h = Math.imul(h ^ text.charCodeAt(k), 0x01000193);
  return h;
}
