// npx tsx bench/auth.ts [--db postgres|pglite] [--rounds 3] [--seconds 8] [--groups manifest,getTag,token] [--profile DIR]
// (also a suite: npm run bench -- --suite auth)
//
// What identity and access cost on the hot path (issue 10), in one run on the same machine: the
// service with auth ON (no anonymous admin; the bootstrap admin's API token and password from
// ADMIN_TOKEN and ADMIN_PASSWORD) beside the same service with auth OFF (AUTH_ANONYMOUS_ADMIN=true,
// what the other suites run): processes on one database and content store (PGlite: one database
// each, seeded alike).
// - /v2/ manifest GET by tag on a HOSTED registry: Bearer JWT from /auth/token (what docker and
//   podman send), Basic <user>:<API token> straight on /v2/, and the API token of a robot that is
//   only a reader of the namespace (no global role: the repository is looked up per request);
//   nothing on the auth-off server.
// - TagService.GetTag over Connect JSON: Bearer API token (the admin, the reader) vs nothing.
// - /auth/token: GET with Basic credentials (an API token, a password), POST grant_type=refresh_token.
// Targets: manifest GET and GetTag with a valid token ≥ 0.9× the same call with auth off. Two
// controls, as other sessions share this machine's cores and a 10% difference is within its noise:
// - A/A: the auth-off call to a second auth-off process, started alike: what two processes that
//   differ in nothing measure apart in this run;
// - the credential sent to the auth-off process (it checks a credential it is given, the
//   anonymous admin role only added): the authentication step alone, in the baseline's process.
// The rows of each table run in turn, another order each round; the median round is shown with
// the range. Every answer is checked (status; the manifest's digest; the tag; a JWT that opens the
// manifest) before each timed run.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AuditOutcome } from "../gen/artifact/v1/audit_pb.js";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { TagService } from "../gen/artifact/v1/tag_pb.js";
import { newTokenSecret } from "../src/auth/tokens.js";
import { packageRoot } from "../src/paths.js";
import { basic, bindRole, createAccount, identityClients } from "../test/support/identity.js";
import { MediaType, smallImage } from "../test/support/oci-images.js";
import { pushImage } from "../test/support/skopeo.js";
import { backgroundBusyPct, measureCpu, type CpuUse } from "./cpu.js";
import { openTarget, type DatabaseKind, type DatabaseTarget } from "./databases.js";
import { median, say, stopEverythingOnSignals, tail, using } from "./lifecycle.js";
import { runLoad, type ClientChoice, type LoadPlan, type LoadResult, type Protocol } from "./load/index.js";
import { failed, fmt, machineHeader, table, verdict } from "./report.js";
import { pathOf } from "./scenarios.js";
import { startBenchServer, type BenchServer } from "./server-process.js";
import { databaseLabel, profiled } from "./service.js";

export interface AuthBenchOptions {
  kind: DatabaseKind;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  concurrency: number;
  timeoutSeconds: number;
  logLevel: string;
  client: ClientChoice;
  /** Default: all. */
  groups?: readonly Group[];
  profileDir?: string;
}

const TARGET = 0.9;
const SERVICE = "artifact-service";
const ACCEPT = `${MediaType.ociManifest}, ${MediaType.ociIndex}`;
const REPOSITORY = { namespace: "bench", repository: "app", tag: "latest" };

/** The tables: /v2/ manifest GET, GetTag, the token endpoint. */
const AUTH_GROUPS = ["manifest", "getTag", "token"] as const;
type Group = (typeof AUTH_GROUPS)[number];

/** One request as the load generator sends it, and how to tell its answer is right. */
interface Spec {
  protocol: Protocol;
  baseUrl: string;
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  body: string;
  check(body: Buffer): Promise<string | undefined> | string | undefined;
}

interface Sample {
  round: number;
  result: LoadResult;
  cpu: CpuUse;
  background: number;
}

interface Row {
  group: Group;
  label: string;
  /** The auth-off row the group's other rows are compared with. */
  baseline?: boolean;
  /** The baseline's request to a second auth-off process (A/A): how far two alike processes measure apart now. */
  control?: boolean;
  /** A credential sent to the auth-off server: authentication alone, in the baseline's own process. */
  sameProcess?: boolean;
  /** The issue's target applies. */
  target?: boolean;
  /** A fresh spec (a JWT row fetches its token here). */
  spec(): Promise<Spec>;
  samples: Sample[];
  problem?: string;
}

/** One server and what was seeded into its database. */
interface Side {
  server: BenchServer;
  registry: string;
  tagId: string;
  namespaceId: string;
}

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const rotate = <T>(list: T[], round: number) => list.map((_, i) => list[(i + round - 1) % list.length]!);

export async function measureAuth(o: AuthBenchOptions, workDir: string): Promise<{ markdown: string; failed: boolean }> {
  const log = (line: string) => say(`auth: ${o.kind}: ${line}`);
  const app = await smallImage("bench-auth");
  const adminToken = newTokenSecret();
  // Under 32 characters: a password, never taken for an API token (src/auth/authenticator.ts basic()).
  const adminPassword = `pw-${randomBytes(9).toString("base64url")}`;
  const started = new Date();
  return using(
    () => openTarget(o.kind, workDir),
    (t) => t.close(),
    async (first) => {
      // PostgreSQL: one database and content store for the three servers (replicas); PGlite belongs to one process.
      const more = o.kind === "postgres" ? [] : [await openTarget(o.kind, workDir), await openTarget(o.kind, workDir)];
      const [second, third] = more.length > 0 ? more : [first, first];
      const env = (t: DatabaseTarget, name: string, settings: Record<string, string>) => ({
        env: { ...t.env, LOG_LEVEL: o.logLevel, SECRET_KEY: "00".repeat(32), WORKERS: "1", AUTH_SERVICE: SERVICE, ...settings },
        logFile: join(workDir, `server-auth-${name}-${o.kind}.log`),
      });
      const on = env(first, "on", { AUTH_ANONYMOUS_ADMIN: "false", ADMIN_TOKEN: adminToken, ADMIN_PASSWORD: adminPassword });
      const off = env(second!, "off", { AUTH_ANONYMOUS_ADMIN: "true" });
      const other = env(third!, "off-2", { AUTH_ANONYMOUS_ADMIN: "true" });
      const start = (options: typeof on) => () => startBenchServer(options);
      const stop = (s: BenchServer) => s.stop();
      try {
        // Auth on starts first: its bootstrap makes the admin of an empty database.
        return await using(start(on), stop, (onServer) =>
          using(start(off), stop, (offServer) => using(start(other), stop, (otherServer) => run(onServer, offServer, otherServer, first, more.length > 0))),
        );
      } catch (err) {
        log(`failed; the servers' last log lines:\n${[on, off, other].map((x) => tail(x.logFile, 10)).join("\n")}`);
        throw err;
      } finally {
        for (const t of more) t.close();
      }
    },
  );

  /** `otherServer`: a second auth-off process, the A/A control's. */
  async function run(onServer: BenchServer, offServer: BenchServer, otherServer: BenchServer, target: DatabaseTarget, separate: boolean) {
    const admin = identityClients(onServer.httpUrl, adminToken);
    const whoami = await admin.accounts.whoAmI({}).catch((err: unknown) => {
      throw new Error(`the admin token does not sign in: the database must be empty, so the bootstrap makes the admin (${String(err)})`);
    });
    log(`seeding (signed in as ${whoami.account?.name ?? "?"})`);
    const on = await seed(onServer, adminToken);
    const off = separate ? await seed(offServer, undefined) : { ...on, server: offServer };
    const other = separate ? await seed(otherServer, undefined) : { ...on, server: otherServer };
    const reader = await createAccount(admin, onServer.httpUrl, { robot: true });
    await bindRole(admin, reader.id, "reader", { namespaceId: on.namespaceId });
    // A refresh token as docker login's OAuth2 flow gets one: a password and offline_token=true.
    const image = `${on.registry}/${REPOSITORY.namespace}/${REPOSITORY.repository}`;
    const scope = `repository:${image}:pull`;
    const tokenQuery = `/auth/token?service=${SERVICE}&scope=${encodeURIComponent(scope)}`;
    const offline = await fetchJson(onServer.httpUrl, `${tokenQuery}&offline_token=true&client_id=bench`, {
      authorization: basic("admin", adminPassword),
    });
    const refreshToken = offline.refresh_token;
    if (typeof refreshToken !== "string" || refreshToken === "")
      throw new Error("the token endpoint gave no refresh token for a password with offline_token=true");

    const manifestPath = (s: Side) => `/v2/${s.registry}/${REPOSITORY.namespace}/${REPOSITORY.repository}/manifests/${REPOSITORY.tag}`;
    const checkManifest = (body: Buffer) => (sha256(body) === app.digest ? undefined : `manifest ${sha256(body)}, expected ${app.digest}`);
    const manifest = (s: Side, headers: Record<string, string>): Spec => ({
      protocol: "rest",
      baseUrl: s.server.httpUrl,
      method: "GET",
      path: manifestPath(s),
      headers: { accept: ACCEPT, ...headers },
      body: "",
      check: checkManifest,
    });
    const getTag = (s: Side, headers: Record<string, string>): Spec => ({
      protocol: "connect",
      baseUrl: s.server.httpUrl,
      method: "POST",
      path: pathOf(TagService.method.getTag),
      headers,
      body: JSON.stringify({ id: s.tagId }),
      check: (body) => {
        const tag = JSON.parse(body.toString()) as { id?: string; digest?: string };
        return tag.id === s.tagId && tag.digest === app.digest ? undefined : `GetTag answered ${body.toString().slice(0, 200)}`;
      },
    });
    // A token answer is right when the token it holds opens the manifest.
    const checkToken = (field: "token" | "access_token", form: boolean) => async (body: Buffer) => {
      const answer = JSON.parse(body.toString()) as Record<string, unknown>;
      if (form && answer.scope !== scope) return `scope ${String(answer.scope)}, expected ${scope}`;
      const res = await fetch(new URL(manifestPath(on), onServer.httpUrl), {
        headers: { accept: ACCEPT, authorization: `Bearer ${String(answer[field])}` },
        signal: AbortSignal.timeout(10_000),
      });
      const bytes = Buffer.from(await res.arrayBuffer());
      return res.status === 200 ? checkManifest(bytes) : `the token it gave: manifest GET answered ${res.status}`;
    };
    const tokenGet = (credential: string): Spec => ({
      protocol: "rest",
      baseUrl: onServer.httpUrl,
      method: "GET",
      path: tokenQuery,
      headers: { authorization: credential },
      body: "",
      check: checkToken("token", false),
    });
    const jwt = async () => {
      const answer = await fetchJson(onServer.httpUrl, tokenQuery, { authorization: basic("admin", adminToken) });
      return String(answer.token);
    };

    const row = (group: Group, label: string, spec: () => Spec | Promise<Spec>, extra: Partial<Row> = {}): Row => ({
      group,
      label,
      spec: async () => spec(),
      samples: [],
      ...extra,
    });
    const groups = o.groups ?? AUTH_GROUPS;
    const rows: Row[] = [
      row("manifest", "none (auth off)", () => manifest(off, {}), { baseline: true }),
      row("manifest", "none, a second auth-off process: A/A control", () => manifest(other, {}), { control: true }),
      row("manifest", "Bearer JWT from /auth/token (admin)", async () => manifest(on, { authorization: `Bearer ${await jwt()}` }), { target: true }),
      row("manifest", "Basic admin:<API token>", () => manifest(on, { authorization: basic("admin", adminToken) }), { target: true }),
      row("manifest", "Basic robot:<API token>, namespace reader", () => manifest(on, { authorization: basic(reader.name, reader.token) })),
      row("manifest", "Bearer JWT, to the auth-off server", async () => manifest(off, { authorization: `Bearer ${await jwt()}` }), {
        sameProcess: true,
      }),
      row("getTag", "none (auth off)", () => getTag(off, {}), { baseline: true }),
      row("getTag", "none, a second auth-off process: A/A control", () => getTag(other, {}), { control: true }),
      row("getTag", "Bearer <API token> (admin)", () => getTag(on, { authorization: `Bearer ${adminToken}` }), { target: true }),
      row("getTag", "Bearer <API token>, namespace reader", () => getTag(on, { authorization: `Bearer ${reader.token}` })),
      row("getTag", "Bearer <API token>, to the auth-off server", () => getTag(off, { authorization: `Bearer ${adminToken}` }), { sameProcess: true }),
      row("token", "GET, Basic admin:<API token>", () => tokenGet(basic("admin", adminToken))),
      row("token", "POST grant_type=refresh_token", () => ({
        protocol: "rest",
        baseUrl: onServer.httpUrl,
        method: "POST",
        path: "/auth/token",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, service: SERVICE, scope, client_id: "bench" }).toString(),
        check: checkToken("access_token", true),
      })),
      row("token", "GET, Basic admin:<password>", () => tokenGet(basic("admin", adminPassword))),
    ].filter((r) => groups.includes(r.group) && !(r.sameProcess && separate));

    for (let round = 1; round <= o.rounds; round++) {
      for (const group of groups) {
        for (const r of rotate(
          rows.filter((x) => x.group === group),
          round,
        )) {
          if (r.problem) continue;
          const spec = await r.spec();
          const server = [onServer, offServer, otherServer].find((x) => x.httpUrl === spec.baseUrl)!;
          const problem = await checkOnce(spec);
          if (problem) {
            r.problem = `the answer before round ${round}: ${problem}`;
            continue;
          }
          const plan: LoadPlan = {
            protocol: spec.protocol,
            baseUrl: spec.baseUrl,
            method: spec.method,
            headers: spec.headers,
            requests: [{ path: spec.path, body: spec.body }],
            concurrency: o.concurrency,
            connections: o.concurrency,
            timeoutSeconds: o.timeoutSeconds,
            warmupSeconds: o.warmupSeconds,
            durationSeconds: o.seconds,
          };
          const background = await backgroundBusyPct();
          const slug = `auth-${r.group}-${r.label}`;
          const load = () => measureCpu(server.pid, target.postmasterPid, () => runLoad(plan, workDir, o.client));
          const { value: result, cpu } =
            round === 1 ? await profiled({ server, workers: 1, kind: o.kind }, { profileDir: o.profileDir }, slug, load) : await load();
          if (failed(result)) {
            r.problem = `round ${round}: ${result.errors} errors, first: ${result.firstError ?? "no successful call"}`;
            continue;
          }
          r.samples.push({ round, result, cpu, background });
          log(
            `${r.group} ${r.label}, round ${round}/${o.rounds}: ${result.rps.toFixed(0)} req/s, p99 ${result.p99Ms.toFixed(1)} ms, server CPU ${cpu.serverPct.toFixed(0)}% (machine ${background.toFixed(0)}% busy before; ${result.tool})`,
          );
        }
      }
    }

    // The throttle counts failures only: a run without a failed sign-in was never slowed by it.
    const failures = await admin.audit.listAuditEvents({ action: "auth.sign_in", startTime: timestampFromDate(started), pageSize: 1000 });
    const failedSignIns = failures.auditEvents.filter((e) => e.outcome === AuditOutcome.FAILURE).length;
    const tool = rows.flatMap((r) => r.samples)[0]?.result.tool ?? "–";
    return render(rows, { target, failedSignIns, tool, separate, groups });
  }

  async function seed(server: BenchServer, token: string | undefined): Promise<Side> {
    const c = identityClients(server.httpUrl, token);
    const registry = `auth${randomBytes(3).toString("hex")}`;
    const created = await c.registries.createRegistry({ registry: { name: registry, kind: RegistryKind.HOSTED } });
    const host = server.httpUrl.replace(/^http:\/\//, "");
    await pushImage(
      app,
      { host, credentials: token ? { username: "admin", password: token } : undefined },
      `${registry}/${REPOSITORY.namespace}/${REPOSITORY.repository}`,
      REPOSITORY.tag,
    );
    const namespace = (await c.namespaces.listNamespaces({ registryId: created.id })).namespaces.find((n) => n.name === REPOSITORY.namespace);
    const repository = (await c.repositories.listRepositories({ namespaceId: namespace?.id ?? "" })).repositories.find((r) => r.name === REPOSITORY.repository);
    const tag = (await c.tags.listTags({ repositoryId: repository?.id ?? "" })).tags.find((t) => t.name === REPOSITORY.tag);
    if (!namespace || !tag) throw new Error(`the push to ${registry} left no ${REPOSITORY.namespace}/${REPOSITORY.repository}:${REPOSITORY.tag}`);
    return { server, registry, tagId: tag.id, namespaceId: namespace.id };
  }

  function render(
    rows: Row[],
    run: { target: DatabaseTarget; failedSignIns: number; tool: string; separate: boolean; groups: readonly Group[] },
  ): { markdown: string; failed: boolean } {
    const byMedian = (r: Row) => [...r.samples].sort((a, b) => a.result.rps - b.result.rps)[Math.floor((r.samples.length - 1) / 2)];
    const range = (r: Row) =>
      r.samples.length > 1 ? ` (${fmt(Math.min(...r.samples.map((s) => s.result.rps)), 0)}–${fmt(Math.max(...r.samples.map((s) => s.result.rps)), 0)})` : "";
    const msPerReq = (s: Sample, pct: number) => (pct / 100 / s.result.rps) * 1000;
    const cpuCell = (s: Sample) =>
      `${fmt(msPerReq(s, s.cpu.serverPct), 3)}${Number.isFinite(s.cpu.databasePct) ? ` + ${fmt(msPerReq(s, s.cpu.databasePct), 3)}` : ""}`;
    /** on ÷ off req/s of the same round, and off's server CPU per request ÷ on's, medians over rounds. */
    const versus = (r: Row, base: Row | undefined) => {
      const pairs = r.samples.flatMap((s) => {
        const b = base?.samples.find((x) => x.round === s.round);
        return b ? [{ rps: s.result.rps / b.result.rps, cpu: msPerReq(b, b.cpu.serverPct) / msPerReq(s, s.cpu.serverPct) }] : [];
      });
      return {
        rps: median(pairs.map((p) => p.rps)),
        cpu: median(pairs.map((p) => p.cpu)),
        range: pairs.length > 1 ? ` (${fmt(Math.min(...pairs.map((p) => p.rps)), 2)}–${fmt(Math.max(...pairs.map((p) => p.rps)), 2)})` : "",
      };
    };
    const cells = (r: Row, base?: Row) => {
      const m = byMedian(r);
      if (!m || r.problem) return [r.label, "**FAILED**", "–", "–", "–", ...(base ? ["–", "–"] : ["–"]), "–"];
      const v = versus(r, base);
      return [
        r.label,
        `${fmt(m.result.rps, 0)}${range(r)}`,
        fmt(m.result.p50Ms, 2),
        fmt(m.result.p99Ms, 1),
        cpuCell(m),
        ...(base ? [r.baseline ? "1.00" : `${fmt(v.rps, 2)}${v.range}`, r.baseline ? "1.00" : fmt(v.cpu, 2)] : [`${fmt(m.cpu.serverPct, 0)}%`]),
        `${fmt(m.background, 0)}%`,
      ];
    };
    const compared = (group: Group) => {
      const rs = rows.filter((r) => r.group === group);
      const base = rs.find((r) => r.baseline);
      return table(
        ["credential", "req/s (rounds)", "p50 ms", "p99 ms", "CPU ms/req server + db", "× off, req/s (rounds)", "× off, by CPU", "busy before"],
        rs.map((r) => cells(r, base)),
        "lrrrrrrr",
      );
    };
    const verdicts = rows
      .filter((r) => r.target || (!r.baseline && r.group !== "token"))
      .map((r) => {
        const v = versus(
          r,
          rows.find((x) => x.group === r.group && x.baseline),
        );
        const name = `${r.group === "manifest" ? "manifest GET" : "GetTag"}, ${r.label}`;
        const note = r.target
          ? o.kind === "postgres"
            ? ` — target ≥ ${TARGET}×: ${verdict(Number(v.rps.toFixed(2)) >= TARGET)}`
            : " (the target applies on PostgreSQL)"
          : r.control
            ? ": the noise of this run (1.00 on a quiet machine)"
            : r.sameProcess
              ? ": authentication alone, in the baseline's process (the auth-off server checks a credential it is sent)"
              : " (no target: a caller without a global role)";
        return Number.isFinite(v.rps)
          ? `- ${name}: **${fmt(v.rps, 2)}×**${v.range} req/s, ${fmt(v.cpu, 2)}× by CPU${note}`
          : `- ${name}: no figure (a row failed)`;
      });
    const sections: Record<Group, () => string[]> = {
      manifest: () => ["### /v2/ manifest GET by tag (HOSTED registry)", "", compared("manifest")],
      getTag: () => ["### TagService.GetTag over Connect JSON", "", compared("getTag")],
      token: () => [
        "### Token endpoint (/auth/token, auth on)",
        "",
        "Each answer is a new ES256 JWT for `repository:<image>:pull`. A password is checked with argon2id (about 20 ms of a libuv thread, slow by design) once per 10 s per process: the authenticator caches a successful check, so its row mostly measures that cache. At each expiry every request then in flight with those credentials checks again (no single flight; libuv runs 4 at a time): that is the row's p99.",
        "",
        table(
          ["request", "req/s (rounds)", "p50 ms", "p99 ms", "CPU ms/req server + db", "server CPU", "busy before"],
          rows.filter((r) => r.group === "token").map((r) => cells(r)),
          "lrrrrrr",
        ),
      ],
    };
    const problems = rows.filter((r) => r.problem).map((r) => `- **FAILED** ${r.group} ${r.label}: ${r.problem}`);
    const markdown = [
      `## Identity and access on the hot path (issue 10): ${databaseLabel(o.kind)}`,
      "",
      `- ${run.target.description}; ${run.separate ? "one database per server, seeded alike" : "the three servers on that one database and content store"}. Auth ON: \`AUTH_ANONYMOUS_ADMIN=false\`, the bootstrap admin's API token and password from \`ADMIN_TOKEN\`/\`ADMIN_PASSWORD\`. Auth OFF, two processes (the second for the A/A control): \`AUTH_ANONYMOUS_ADMIN=true\` (what the other suites run). One process each, LOG_LEVEL=${o.logLevel}.`,
      `- Load: ${run.tool}, ${o.concurrency} requests in flight on ${o.concurrency} keep-alive HTTP/1.1 connections, ${o.warmupSeconds} s warm-up + ${o.seconds} s, ${o.rounds} round${o.rounds > 1 ? "s" : ""}: the rows of each table run in turn, another order each round; the median round is shown (the range of rounds in brackets). Every answer was checked before each timed run.`,
      "- × off: on ÷ off req/s of the same round, the median over rounds (range); by CPU: the auth-off row's server CPU per request ÷ this row's (the figure the machine's other load disturbs least). CPU ms/req: the server process + PostgreSQL's processes, when local. busy before: the machine's CPU in the second before the row, while the bench sent nothing (other work on it).",
      ...run.groups.flatMap((group) => ["", ...sections[group]()]),
      "",
      ...verdicts,
      `- failed sign-ins recorded in the audit log during the run: ${run.failedSignIns} (the brute-force throttle counts failures only, so no request waited on it)`,
      ...problems,
      "",
    ].join("\n");
    return { markdown, failed: problems.length > 0 || run.failedSignIns > 0 };
  }
}

/** One request as the load will send it; its problem, or undefined when the answer is right. */
async function checkOnce(spec: Spec): Promise<string | undefined> {
  const headers: Record<string, string> = spec.protocol === "connect" ? { "content-type": "application/json", "connect-protocol-version": "1" } : {};
  try {
    const res = await fetch(new URL(spec.path, spec.baseUrl), {
      method: spec.method,
      headers: { ...headers, ...spec.headers },
      body: spec.body === "" ? undefined : spec.body,
      signal: AbortSignal.timeout(10_000),
    });
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) return `${spec.method} ${spec.path.split("?")[0]} answered ${res.status}: ${body.toString().slice(0, 200)}`;
    return await spec.check(body);
  } catch (err) {
    return String(err);
  }
}

async function fetchJson(baseUrl: string, path: string, headers: Record<string, string>): Promise<Record<string, unknown>> {
  const res = await fetch(new URL(path, baseUrl), { headers, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${path.split("?")[0]} answered ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      db: { type: "string", default: "postgres" },
      rounds: { type: "string", default: "3" },
      seconds: { type: "string", default: "8" },
      warmup: { type: "string", default: "2" },
      concurrency: { type: "string", default: "32" },
      "log-level": { type: "string", default: "info" },
      groups: { type: "string", default: AUTH_GROUPS.join(",") },
      profile: { type: "string" },
    },
  });
  const groups = values.groups.split(",").map((g) => g.trim());
  for (const g of groups) if (!(AUTH_GROUPS as readonly string[]).includes(g)) throw new Error(`--groups: ${g} is not one of ${AUTH_GROUPS.join(", ")}`);
  if (values.db !== "postgres" && values.db !== "pglite") throw new Error(`--db: expected postgres or pglite, got ${values.db}`);
  const options: AuthBenchOptions = {
    kind: values.db,
    rounds: Number(values.rounds),
    seconds: Number(values.seconds),
    warmupSeconds: Number(values.warmup),
    concurrency: Number(values.concurrency),
    timeoutSeconds: 5,
    logLevel: values["log-level"],
    client: "auto",
    groups: groups as Group[],
    profileDir: values.profile,
  };
  stopEverythingOnSignals();
  const result = await using(
    async () => mkdtempSync(join(tmpdir(), "artifact-bench-auth-")),
    (dir) => rmSync(dir, { recursive: true, force: true }),
    (dir) => measureAuth(options, dir),
  );
  const report = `${machineHeader()}\n\n${result.markdown}`;
  process.stdout.write(report);
  mkdirSync(join(packageRoot, "bench", "results"), { recursive: true });
  writeFileSync(join(packageRoot, "bench", "results", "auth-latest.md"), report);
  return result.failed ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
