// npx tsx bench/scale-out.ts [--rounds 3] [--blob-mib 512] [--chunks 4] [--replicas 2] [--swift-workers 2]
//                            [--groups push,pull,get,chunked] [--cache DIR] [--out FILE] [--profile DIR]
//
// Issue 12, "Measure": replicas of the service on object storage, side by side in one run.
// - push and pull: a skopeo push of the big image (one uncompressed layer) into an empty
//   repository, and a skopeo pull of it into an OCI layout, through nginx (round robin) in front
//   of --replicas service processes on one PostgreSQL, for CONTENT_STORE=filesystem (one DATA_DIR
//   shared, which one machine allows) and CONTENT_STORE=s3 on a throwaway OpenStack Swift (s3api;
//   a DATA_DIR each); beside docker-registry on the same Swift (its s3 driver, redirects off) and
//   on the filesystem, each behind an nginx of its own; and the floors: the object store's own
//   speed for the same bytes (one multipart upload, 16 MiB parts, 4 in flight, with the service's
//   S3 client; one GET of that object) and skopeo copying the image into an OCI layout.
// - blob GET of the layer from the S3 replicas: streamed by a replica, BLOB_REDIRECT=true (a third
//   process on the same database and bucket, curl -L following its 307: the whole and the
//   redirect's own part), the presigned URL fetched directly, and the object read with the SDK.
// - the read-back cost: a chunked upload (--chunks PATCHes) whose PATCHes all reach one replica,
//   against one whose PATCHes go to the replicas in turn (their own ports, not nginx); the PUT's
//   time shows what verifying costs when no process saw every byte.
// Rows of a group run in turn, another order each round, each after `sync` and a second of
// "busy before" (the machine's CPU use while nothing is sent). Every answer is checked: skopeo's
// digests, the manifest and blob HEADs after a push, the pulled layout; each blob GET path once with
// the sha256 of every byte before it is timed (timed runs count bytes); the floor upload's parts by
// their ETags (MD5) and its object by a hashed GET; a chunked upload by the digest the PUT answers
// and a HEAD on another replica. Writes bench/results/scale-out-latest.md. --profile DIR: CPU
// profiles of the service processes in round 1 of the service's push, pull, streamed GET and
// chunked rows, summarised on stderr.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { packageRoot } from "../src/paths.js";
import { startBalancer, type Balancer } from "../test/support/balancer.js";
import { pullImage, pushImage } from "../test/support/skopeo.js";
import { missingSwiftPackages, startSwift } from "../test/support/swift.js";
import { cachedLargeImage } from "./big-image.js";
import { timeChunkedUpload } from "./chunked-upload.js";
import { backgroundBusyPct, childrenCpuSeconds, measureCpuOf, type Watched } from "./cpu.js";
import { createDatabase, openTarget } from "./databases.js";
import { median, Resources, say, stopEverythingOnSignals } from "./lifecycle.js";
import { deleteObject, openObjectStore, planUpload, timeGetObject, timeMultipartUpload } from "./object-store.js";
import { requirePeers, startPeerRegistry } from "./peer.js";
import { layoutProblem, timeLayoutCopy } from "./push-floor.js";
import { startReplicaSet } from "./replicas.js";
import { fmt, machineHeader, table, verdict } from "./report.js";
import { summarizeProfile } from "./profile.js";
import { startBenchServer, type BenchServer } from "./server-process.js";
import { createRegistry } from "./service.js";
import { checkBlobDownload, curlGet, pushedImageProblem, transferProblem } from "./transfer.js";

const MiB = 1 << 20;
/** Issue 12's aim: a push on the S3 store within 1.5× the filesystem push. */
const PUSH_AIM = 1.5;
/** The content store's defaults (S3_PART_SIZE_MB, S3_PART_CONCURRENCY), used by the floor too. */
const PART_SIZE = 16 * MiB;
const PARTS_IN_FLIGHT = 4;
const GROUPS = ["push", "pull", "get", "chunked"] as const;
type Group = (typeof GROUPS)[number];

function usage(problem: string): never {
  process.stderr.write(`scale-out: ${problem}\n`);
  process.exit(2);
}

function parseOptions() {
  try {
    return parseArgs({
      options: {
        rounds: { type: "string", default: "3" },
        "blob-mib": { type: "string", default: "512" },
        chunks: { type: "string", default: "4" },
        replicas: { type: "string", default: "2" },
        "swift-workers": { type: "string", default: "2" },
        groups: { type: "string", default: GROUPS.join(",") },
        "log-level": { type: "string", default: "info" },
        pool: { type: "string", default: "10" },
        cache: { type: "string", default: join(packageRoot, "bench", ".cache") },
        out: { type: "string", default: join(packageRoot, "bench", "results", "scale-out-latest.md") },
        profile: { type: "string" },
      },
    }).values;
  } catch (err) {
    return usage(err instanceof Error ? err.message : String(err));
  }
}
const values = parseOptions();
const rounds = Number(values.rounds);
const blobMiB = Number(values["blob-mib"]);
const chunks = Number(values.chunks);
const replicaCount = Number(values.replicas);
const swiftWorkers = Number(values["swift-workers"]);
for (const [name, n] of Object.entries({ rounds, "blob-mib": blobMiB, chunks, replicas: replicaCount, "swift-workers": swiftWorkers })) {
  if (!Number.isInteger(n) || n < 1) usage(`--${name} must be a positive integer`);
}
if (replicaCount < 2) usage("--replicas must be at least 2 (the chunked group sends PATCHes to two)");
const groups = values.groups.split(",").map((g) => g.trim()) as Group[];
for (const g of groups) if (!GROUPS.includes(g)) usage(`--groups: ${g} is not one of ${GROUPS.join(", ")}`);
// Pulls and blob GETs read what the push group pushed.
if (!groups.includes("push") && (groups.includes("pull") || groups.includes("get"))) usage("--groups: pull and get need push (they read what it pushed)");

/** Processes whose CPU a row reports, by role: the part of a key before ":". */
const ROLES = { service: "service CPU", registry: "docker-registry CPU", store: "Swift CPU", nginx: "nginx CPU", db: "PostgreSQL CPU" } as const;
type Role = keyof typeof ROLES;

interface Run {
  seconds: number;
  /** Figures of a part of the row: the redirect's seconds; a chunked upload's PATCHes and PUT. */
  parts: Record<string, number>;
  /** % of one core, per role. */
  cpu: Record<Role, number>;
  /** CPU seconds of the client: skopeo or curl (children of this process), and this process (SDK rows, the chunked uploads). */
  clientCpu: number;
  machinePct: number;
  busyBefore: number;
}

interface Row {
  group: Group;
  id: string;
  label: string;
  runs: Run[];
  problem?: string;
  /** Untimed, once, before the row's first timed run: a problem or undefined. */
  check?(): Promise<string | undefined>;
  /** Untimed, before each timed run, outside the CPU window. */
  before?(): Promise<void>;
  /** With --profile: the service processes whose CPU profile round 1 of this row writes. */
  profiled?: BenchServer[];
  once(round: number): Promise<{ seconds: number; parts?: Record<string, number> }>;
}

async function main(): Promise<void> {
  requirePeers("scale-out", "docker-registry", "skopeo", "nginx", "curl");
  const missing = missingSwiftPackages();
  if (missing.length > 0) throw new Error(`scale-out: missing Debian package(s) ${missing.join(", ")} (Swift); bash scripts/install-peers.sh`);
  stopEverythingOnSignals();
  const started = performance.now();
  const loadBefore = loadavg();
  const workDir = mkdtempSync(join(tmpdir(), "artifact-bench-scale-"));
  const res = new Resources();
  try {
    const big = await cachedLargeImage(values.cache, blobMiB);
    const layer = big.blobs.reduce((a, b) => (b.size > a.size ? b : a));
    say(
      `scale-out: starting Swift (${swiftWorkers} proxy workers), PostgreSQL, ${replicaCount} + ${replicaCount} replicas, a redirecting replica, 2 docker-registries, 4 nginx`,
    );
    const swift = await res.add(
      () => startSwift({ proxyWorkers: swiftWorkers }),
      (s) => s.stop(),
    );
    const [serviceBucket, peerBucket, floorBucket] = await Promise.all([swift.createBucket("svc-"), swift.createBucket("peer-"), swift.createBucket("floor-")]);
    const target = await res.add(
      () => openTarget("postgres", workDir),
      (t) => t.close(),
    );
    const fsDb = await res.add(
      () => createDatabase(target, `scale_fs_${process.pid}`),
      (d) => d.drop(),
    );
    const s3Db = await res.add(
      () => createDatabase(target, `scale_s3_${process.pid}`),
      (d) => d.drop(),
    );
    const sharedDataDir = mkdtempSync(join(workDir, "data-fs-"));
    const s3Env = {
      CONTENT_STORE: "s3",
      S3_ENDPOINT: swift.endpoint,
      S3_REGION: swift.region,
      S3_BUCKET: serviceBucket,
      S3_ACCESS_KEY_ID: swift.accessKeyId,
      S3_SECRET_ACCESS_KEY: swift.secretAccessKey,
    };
    const common = { count: replicaCount, logLevel: values["log-level"], poolMax: values.pool, workDir };
    const fsSet = await res.add(
      () => startReplicaSet({ ...common, label: "filesystem", slug: "fs", env: () => ({ DATABASE_URL: fsDb.url, DATA_DIR: sharedDataDir }) }),
      (s) => s.stop(),
    );
    const s3Set = await res.add(
      () =>
        startReplicaSet({
          ...common,
          label: "S3",
          slug: "s3",
          env: (i) => ({ ...s3Env, DATABASE_URL: s3Db.url, DATA_DIR: mkdtempSync(join(workDir, `data-s3-${i + 1}-`)) }),
        }),
      (s) => s.stop(),
    );
    const redirector = await res.add(
      () =>
        startBenchServer({
          env: {
            ...s3Env,
            BLOB_REDIRECT: "true",
            DATABASE_URL: s3Db.url,
            DATA_DIR: mkdtempSync(join(workDir, "data-s3-redirect-")),
            LOG_LEVEL: values["log-level"],
            DB_POOL_MAX: values.pool,
            SECRET_KEY: "00".repeat(32),
            WORKERS: "1",
          },
          logFile: join(workDir, "server-s3-redirect.log"),
        }),
      (s) => s.stop(),
    );
    const peerS3 = await res.add(
      () => startPeerRegistry({ s3: { ...swift, bucket: peerBucket } }),
      (p) => p.stop(),
    );
    const peerS3Lb = await res.add(
      () => startBalancer([peerS3.port]),
      (b) => b.stop(),
    );
    const peerFs = await res.add(
      () => startPeerRegistry(),
      (p) => p.stop(),
    );
    const peerFsLb = await res.add(
      () => startBalancer([peerFs.port]),
      (b) => b.stop(),
    );
    await createRegistry({ server: fsSet.replicas[0]! }, { name: "local", kind: "hosted" });
    await createRegistry({ server: s3Set.replicas[0]! }, { name: "local", kind: "hosted" });
    const floorStore = await res.add(
      async () => openObjectStore(swift, floorBucket),
      (s) => s.close(),
    );
    const serviceStore = await res.add(
      async () => openObjectStore(swift, serviceBucket),
      (s) => s.close(),
    );
    const plan = await planUpload(layer.path, layer.size, PART_SIZE, PARTS_IN_FLIGHT);

    const watched: Watched = {};
    [...fsSet.replicas, ...s3Set.replicas, redirector].forEach((r, i) => (watched[`service:${i}`] = { pid: r.pid }));
    watched["registry:s3"] = { pid: peerS3.pid };
    watched["registry:fs"] = { pid: peerFs.pid };
    swift.processGroups().forEach((pgid, i) => (watched[`store:${i}`] = { pid: pgid, tree: true }));
    [fsSet.balancer, s3Set.balancer, peerS3Lb, peerFsLb].forEach((b, i) => (watched[`nginx:${i}`] = { pid: b.processGroup, tree: true }));
    if (target.postmasterPid) watched["db:0"] = { pid: target.postmasterPid, tree: true };

    // ---- the rows -------------------------------------------------------------------------
    const size = layer.size;
    const repo = (round: number) => `bench/scale-${round}`;
    const endpoints: { id: string; label: string; balancer: Balancer; prefix: string; replicas?: BenchServer[] }[] = [
      { id: "s3", label: `service ×${replicaCount}, S3 (Swift)`, balancer: s3Set.balancer, prefix: "local/", replicas: s3Set.replicas },
      { id: "fs", label: `service ×${replicaCount}, filesystem (one DATA_DIR)`, balancer: fsSet.balancer, prefix: "local/", replicas: fsSet.replicas },
      { id: "peer-s3", label: "docker-registry, S3 (same Swift, redirect off)", balancer: peerS3Lb, prefix: "" },
      { id: "peer-fs", label: "docker-registry, filesystem", balancer: peerFsLb, prefix: "" },
    ];
    /** Seconds nginx logged ($request_time) for the requests `during` made, by kind: upload requests by method, the layer's GET. */
    const split = async <T>(balancer: Balancer, during: () => Promise<T>): Promise<{ value: T; parts: Record<string, number> }> => {
      const seen = balancer.requests().length;
      const value = await during();
      const parts: Record<string, number> = {};
      for (const r of balancer.requests().slice(seen)) {
        const upload = r.uri.includes("/blobs/uploads/");
        const kind = upload ? r.method : r.method === "GET" && r.uri.includes(`/blobs/${layer.digest}`) ? "layer GET" : undefined;
        if (kind) parts[kind] = (parts[kind] ?? 0) + r.seconds;
      }
      return { value, parts };
    };
    const rows: Row[] = [];
    for (const e of endpoints) {
      const name = (round: number) => `${e.prefix}${repo(round)}`;
      rows.push({
        group: "push",
        id: e.id,
        label: `${e.label}, through nginx`,
        runs: [],
        profiled: e.replicas,
        async once(round) {
          const t0 = performance.now();
          const { value: digest, parts } = await split(e.balancer, () => pushImage(big, e.balancer, name(round), "latest", { timeoutMs: 900_000 }));
          const seconds = (performance.now() - t0) / 1000;
          if (digest !== big.digest) throw new Error(`skopeo pushed ${digest}, expected ${big.digest}`);
          const problem = await pushedImageProblem(e.balancer.url, name(round), big);
          if (problem) throw new Error(problem);
          return { seconds, parts };
        },
      });
      rows.push({
        group: "pull",
        id: e.id,
        label: `${e.label}, through nginx`,
        runs: [],
        profiled: e.replicas,
        async once(round) {
          const dir = join(workDir, `pull-${e.id}-${round}`);
          try {
            const t0 = performance.now();
            const { value, parts } = await split(e.balancer, () =>
              pullImage(e.balancer, name(round), "latest", { dir, transport: "oci" }, { timeoutMs: 900_000 }),
            );
            const seconds = (performance.now() - t0) / 1000;
            const problem = value.digest !== big.digest ? `skopeo pulled ${value.digest}, expected ${big.digest}` : layoutProblem(dir, big);
            if (problem) throw new Error(problem);
            return { seconds, parts };
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      });
    }
    const floorKey = (round: number) => `floor/${round}`;
    rows.push(
      {
        group: "push",
        id: "floor-s3",
        label: `floor: object store, one multipart upload (${PART_SIZE / MiB} MiB parts, ${PARTS_IN_FLIGHT} in flight, SDK)`,
        runs: [],
        once: (round) => timeMultipartUpload(floorStore, floorKey(round), plan),
      },
      {
        group: "push",
        id: "floor-oci",
        label: "floor: skopeo copy into an OCI layout (no network)",
        runs: [],
        once: async (round) => ({ seconds: await timeLayoutCopy(big, join(workDir, `floor-${round}`)) }),
      },
      {
        group: "pull",
        id: "floor-s3",
        label: "floor: object store, one GET of that object (SDK)",
        runs: [],
        async check() {
          const got = await timeGetObject(floorStore, floorKey(1), true);
          return got.digest === layer.digest ? undefined : `the floor object: ${got.bytes} bytes with ${got.digest}, expected ${size} with ${layer.digest}`;
        },
        async once(round) {
          const got = await timeGetObject(floorStore, floorKey(round));
          if (got.bytes !== size) throw new Error(`GET of the floor object: ${got.bytes} bytes, expected ${size}`);
          await deleteObject(floorStore, floorKey(round));
          return { seconds: got.seconds };
        },
      },
    );

    // Blob GET: the layer as pushed in round 1.
    const blobPath = `/v2/local/${repo(1)}/blobs/${layer.digest}`;
    const redirectUrl = `${redirector.httpUrl}${blobPath}`;
    /** The 307 of the redirecting replica, checked (status, Location, digest): the presigned URL. */
    const presigned = async (): Promise<string> => {
      const res = await fetch(redirectUrl, { redirect: "manual" });
      await res.arrayBuffer();
      const location = res.headers.get("location");
      if (res.status !== 307 || !location) throw new Error(`BLOB_REDIRECT GET: HTTP ${res.status}, Location ${location}, expected 307 to a presigned URL`);
      const digest = res.headers.get("docker-content-digest");
      if (digest !== layer.digest) throw new Error(`BLOB_REDIRECT GET: Docker-Content-Digest ${digest}, expected ${layer.digest}`);
      return location;
    };
    let presignedUrl = "";
    let layerKey = "";
    const curlRow = (id: string, label: string, url: () => string, follow = false): Row => ({
      group: "get",
      id,
      label,
      runs: [],
      check: () => checkBlobDownload(url(), layer.digest, size),
      async once() {
        const t = await curlGet(url(), { followRedirects: follow });
        const problem = transferProblem(t, size) ?? (follow && t.redirects !== 1 ? `${t.redirects} redirects followed, expected 1` : undefined);
        if (problem) throw new Error(problem);
        const parts: Record<string, number> = follow ? { redirect: t.redirectSeconds } : {};
        return { seconds: t.seconds, parts };
      },
    });
    rows.push(
      {
        ...curlRow("streamed", "streamed by a replica (S3 store), its own port (curl)", () => `${s3Set.replicas[0]!.httpUrl}${blobPath}`),
        profiled: [s3Set.replicas[0]!],
      },
      curlRow("streamed-fs", "streamed by a replica (filesystem store), its own port (curl), for reference", () => `${fsSet.replicas[0]!.httpUrl}${blobPath}`),
      {
        ...curlRow("redirect", "BLOB_REDIRECT=true: 307, then the presigned URL (curl -L)", () => redirectUrl, true),
        // The 307 itself, then the bytes it leads to, hashed.
        async check() {
          await presigned();
          return checkBlobDownload(redirectUrl, layer.digest, size);
        },
      },
      {
        ...curlRow("presigned", "the presigned URL, fetched directly (curl; a fresh URL before each run, untimed)", () => presignedUrl),
        async check() {
          presignedUrl = await presigned();
          return checkBlobDownload(presignedUrl, layer.digest, size);
        },
        async before() {
          presignedUrl = await presigned();
        },
      },
      {
        group: "get",
        id: "sdk",
        label: "object store: GetObject of the same object (SDK, the service's client)",
        runs: [],
        async check() {
          // The object the presigned URL names (path-style: /<bucket>/<key>).
          layerKey = decodeURIComponent(new URL(await presigned()).pathname).slice(`/${serviceBucket}/`.length);
          const got = await timeGetObject(serviceStore, layerKey, true);
          return got.digest === layer.digest ? undefined : `GetObject of ${layerKey}: ${got.bytes} bytes with ${got.digest}, expected ${layer.digest}`;
        },
        async once() {
          const got = await timeGetObject(serviceStore, layerKey);
          if (got.bytes !== size) throw new Error(`GetObject: ${got.bytes} bytes, expected ${size}`);
          return { seconds: got.seconds };
        },
      },
    );

    // The read-back cost: chunked uploads to the replicas' own ports.
    const [first, second] = s3Set.replicas.map((r) => r.httpUrl) as [string, string];
    const chunkedRow = (id: string, label: string, patchOn: string[]): Row => ({
      group: "chunked",
      id,
      label,
      runs: [],
      profiled: s3Set.replicas,
      async once(round) {
        const repository = `local/bench/chunked-${id}-${round}`;
        const t = await timeChunkedUpload({ openOn: first, closeOn: first, patchOn, repository, file: layer.path, size, digest: layer.digest, chunks });
        // Readable on another replica than the one that committed it.
        const head = await fetch(`${second}/v2/${repository}/blobs/${layer.digest}`, { method: "HEAD" });
        if (head.status !== 200 || head.headers.get("content-length") !== String(size)) {
          throw new Error(`HEAD on replica 2 after the PUT: HTTP ${head.status}, ${head.headers.get("content-length")} bytes`);
        }
        return { seconds: t.total, parts: { post: t.post, patches: t.patches.reduce((a, b) => a + b, 0), put: t.put } };
      },
    });
    const turns = s3Set.replicas.map((_, i) => i + 1).join(", ");
    rows.push(
      chunkedRow("one", `${chunks} PATCHes of ${fmt(size / chunks / MiB, 0)} MiB, all to replica 1; POST and PUT on replica 1`, [first]),
      chunkedRow(
        "spread",
        `${chunks} PATCHes of ${fmt(size / chunks / MiB, 0)} MiB to replicas ${turns}, … in turn; POST and PUT on replica 1`,
        s3Set.replicas.map((r) => r.httpUrl),
      ),
    );

    // ---- the rounds ---------------------------------------------------------------------------
    for (let round = 1; round <= rounds; round++) {
      for (const group of groups) {
        const mine = rows.filter((r) => r.group === group);
        const order = mine.map((_, i) => mine[(i + round - 1) % mine.length]!);
        for (const row of order) await measure(row, round, watched);
      }
    }
    const minutes = (performance.now() - started) / 60_000;
    const markdown = [
      machineHeader(),
      "",
      render(rows, {
        minutes,
        loadBefore,
        loadAfter: loadavg(),
        layerBytes: size,
        target: target.description,
        swiftWorkers,
      }),
    ].join("\n");
    process.stdout.write(`\n${markdown}\n`);
    mkdirSync(join(values.out, ".."), { recursive: true });
    writeFileSync(values.out, markdown);
    say(`scale-out: report written to ${values.out} (${fmt(minutes, 1)} min)`);
    if (rows.some((r) => groups.includes(r.group) && r.problem)) process.exitCode = 1;
  } finally {
    await res.stopAll();
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Runs `during` with every process of `row.profiled` under its CPU profiler; prints where each one's time went. */
async function profiled<T>(row: Row, during: () => Promise<T>): Promise<T> {
  const dir = values.profile!;
  mkdirSync(dir, { recursive: true });
  const files = row.profiled!.map((_, i) => join(dir, `${row.group}-${row.id}-replica-${i + 1}.cpuprofile`));
  const nest = (i: number): Promise<T> => (i === files.length ? during() : row.profiled![i]!.profile(files[i]!, () => nest(i + 1)));
  const value = await nest(0);
  for (const file of files) say(`  profile ${file}\n${summarizeProfile(file, 12)}`);
  return value;
}

function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function measure(row: Row, round: number, watched: Watched): Promise<void> {
  if (row.problem) return;
  try {
    if (row.check) {
      say(`scale-out: checking ${row.group}: ${row.label}`);
      const problem = await row.check();
      row.check = undefined;
      if (problem) throw new Error(`check: ${problem}`);
    }
    await row.before?.();
    execFileSync("sync");
    const busyBefore = await backgroundBusyPct(1000);
    say(`scale-out: ${row.group}: ${row.label}, round ${round}/${rounds} (busy before ${fmt(busyBefore, 0)}%)`);
    const client0 = childrenCpuSeconds() + selfCpuSeconds();
    const go = () => measureCpuOf(watched, () => row.once(round));
    const { value, pct, machinePct } = round === 1 && values.profile && row.profiled ? await profiled(row, go) : await go();
    const clientCpu = childrenCpuSeconds() + selfCpuSeconds() - client0;
    const cpu = Object.fromEntries(Object.keys(ROLES).map((role) => [role, 0])) as Record<Role, number>;
    for (const [key, p] of Object.entries(pct)) cpu[key.split(":")[0] as Role] += p;
    row.runs.push({ seconds: value.seconds, parts: value.parts ?? {}, cpu, clientCpu, machinePct, busyBefore });
    const parts = Object.entries(value.parts ?? {})
      .map(([k, v]) => `, ${k} ${fmt(v, 2)} s`)
      .join("");
    say(
      `  ${fmt(value.seconds, 2)} s${parts}; CPU: ${Object.entries(cpu)
        .map(([k, v]) => `${k} ${fmt(v, 0)}%`)
        .join(", ")}, client ${fmt(clientCpu, 2)} s, machine ${fmt(machinePct, 0)}%`,
    );
  } catch (err) {
    row.problem = String(err instanceof Error ? err.message : err).split("\n")[0];
    say(`  FAILED: ${String(err)}`);
  }
}

// ---- the report -------------------------------------------------------------------------------

interface RunInfo {
  minutes: number;
  loadBefore: number[];
  loadAfter: number[];
  layerBytes: number;
  target: string;
  swiftWorkers: number;
}

const medianOf = (xs: number[]) => {
  const finite = xs.filter(Number.isFinite);
  return finite.length ? median(finite) : NaN;
};
const spread = (xs: number[], digits = 2) => {
  const finite = xs.filter(Number.isFinite);
  return finite.length ? `${fmt(median(finite), digits)} (${fmt(Math.min(...finite), digits)}–${fmt(Math.max(...finite), digits)})` : "–";
};

const percentSpread = (xs: number[]) => (xs.length ? `${fmt(median(xs), 0)}% (${fmt(Math.min(...xs), 0)}–${fmt(Math.max(...xs), 0)})` : "–");

/** Each round's seconds of `a` over `b`'s in the same round. */
function ratios(a: Row | undefined, b: Row | undefined, of: (r: Run) => number = (r) => r.seconds): number[] {
  if (!a || !b || a.problem || b.problem) return [];
  return a.runs.map((x, i) => (b.runs[i] ? of(x) / of(b.runs[i]) : NaN)).filter(Number.isFinite);
}

function render(rows: Row[], info: RunInfo): string {
  const find = (group: Group, id: string) => rows.find((r) => r.group === group && r.id === id);
  const mbps = (r: Row) =>
    spread(
      r.runs.map((x) => info.layerBytes / x.seconds / 1e6),
      0,
    );
  const cpuCells = (r: Row, roles: Role[]) => roles.map((role) => `${fmt(medianOf(r.runs.map((x) => x.cpu[role])), 0)}%`);
  const common = (r: Row) => [
    fmt(medianOf(r.runs.map((x) => x.clientCpu)), 2),
    `${fmt(medianOf(r.runs.map((x) => x.machinePct)), 0)}%`,
    percentSpread(r.runs.map((x) => x.busyBefore)),
    r.problem ? `**FAILED**: ${r.problem}` : "ok",
  ];
  /** The median of each part a row's runs reported ("PATCH 3.10, PUT 0.52"). */
  const partsCell = (r: Row) => {
    const names = [...new Set(r.runs.flatMap((x) => Object.keys(x.parts)))];
    return names.length ? names.map((n) => `${n} ${fmt(medianOf(r.runs.map((x) => x.parts[n] ?? NaN)), 2)}`).join(", ") : "–";
  };
  const ratioLine = (label: string, xs: number[], aim?: { max: number }) =>
    `- ${label}: ${xs.length ? spread(xs) : "no figure"}×` + (aim ? ` — aim ≤ ${aim.max}×: ${verdict(xs.length ? median(xs) <= aim.max : undefined)}` : "");

  const out: string[] = [
    `## Replicas on object storage (issue 12)`,
    "",
    `- ${rounds} round(s), ${fmt(info.minutes, 1)} min in all; the rows of a group in turn, another order each round, each after \`sync\`; median (range) over the rounds; ratios per round, then their median (range).`,
    `- ${fmt(info.layerBytes / MiB, 0)} MiB one-layer image (uncompressed layer of seeded bytes); MB/s = layer bytes / seconds / 10^6.`,
    `- service: ${replicaCount} replicas per store (separate processes, WORKERS=1 each) on one ${info.target}, a database per store; nginx round robin in front (keep-alive upstreams, nothing buffered). docker-registry: Debian's (Distribution 2.8), one instance per store, each behind an nginx of its own.`,
    `- Swift: a throwaway OpenStack Swift (Debian) with s3api, one node, one device, ${info.swiftWorkers} proxy worker(s), one worker per backend server, on the same disk and cores.`,
    `- load average (1, 5, 15 min) before the run ${info.loadBefore.map((x) => fmt(x, 1)).join(", ")}; after ${info.loadAfter.map((x) => fmt(x, 1)).join(", ")}. CPU columns: % of one core during the row (service: all service processes; Swift: proxy, object, container, account servers and memcached; nginx: the four balancers); client CPU: skopeo's or curl's CPU seconds, plus this process's (the SDK and chunked rows).`,
  ];

  for (const group of ["push", "pull"] as const) {
    if (!groups.includes(group)) continue;
    const mine = rows.filter((r) => r.group === group);
    if (group === "pull") {
      const oci = find("push", "floor-oci");
      if (oci) mine.push({ ...oci, label: `${oci.label} (the push group's row)` });
    }
    out.push(
      "",
      `### skopeo ${group === "push" ? "push into an empty repository" : "pull into an OCI layout"}`,
      "",
      table(
        [
          "row",
          "seconds",
          "MB/s",
          group === "push" ? "of which upload requests (nginx), s" : "of which the layer GET (nginx), s",
          ...(["service", "registry", "store", "nginx", "db"] as Role[]).map((r) => ROLES[r]),
          "client CPU s",
          "machine CPU",
          "busy before",
          "check",
        ],
        mine.map((r) =>
          r.runs.length === 0
            ? [r.label, "–", "–", "–", "–", "–", "–", "–", "–", "–", "–", "–", r.problem ? `**FAILED**: ${r.problem}` : "no run"]
            : [
                r.label,
                spread(r.runs.map((x) => x.seconds)),
                mbps(r),
                partsCell(r),
                ...cpuCells(r, ["service", "registry", "store", "nginx", "db"]),
                ...common(r),
              ],
        ),
        "lrrrrrrrrrrrl",
      ),
      "",
      ratioLine(`${group} S3 ÷ ${group} filesystem (service)`, ratios(find(group, "s3"), find(group, "fs")), group === "push" ? { max: PUSH_AIM } : undefined),
      ratioLine(`${group} S3 ÷ the object store's own ${group === "push" ? "upload" : "GET"} (floor)`, ratios(find(group, "s3"), find(group, "floor-s3"))),
      ratioLine(`service ÷ docker-registry, both on Swift`, ratios(find(group, "s3"), find(group, "peer-s3"))),
      ratioLine(`service ÷ docker-registry, both on the filesystem`, ratios(find(group, "fs"), find(group, "peer-fs"))),
      ratioLine(
        `docker-registry on Swift ÷ the object store's own ${group === "push" ? "upload" : "GET"}`,
        ratios(find(group, "peer-s3"), find(group, "floor-s3")),
      ),
    );
  }

  if (groups.includes("get")) {
    const mine = rows.filter((r) => r.group === "get");
    const sdk = find("get", "sdk");
    out.push(
      "",
      "### Blob GET of the layer from the S3 replicas",
      "",
      table(
        [
          "row",
          "seconds",
          "MB/s",
          "of which the redirect, s",
          "× GetObject's time",
          "service CPU",
          "Swift CPU",
          "client CPU s",
          "machine CPU",
          "busy before",
          "check",
        ],
        mine.map((r) =>
          r.runs.length === 0
            ? [r.label, "–", "–", "–", "–", "–", "–", "–", "–", "–", r.problem ? `**FAILED**: ${r.problem}` : "no run"]
            : [
                r.label,
                spread(r.runs.map((x) => x.seconds)),
                mbps(r),
                r.id === "redirect" ? spread(r.runs.map((x) => x.parts.redirect ?? NaN)) : "–",
                r === sdk ? "1.00" : spread(ratios(r, sdk)),
                ...cpuCells(r, ["service", "store"]),
                ...common(r),
              ],
        ),
        "lrrrrrrrrrl",
      ),
      "",
      ratioLine("redirected GET ÷ the object store's own GET (aim: the store's own speed, ~1×)", ratios(find("get", "redirect"), sdk)),
      ratioLine("redirected GET ÷ the presigned URL fetched directly", ratios(find("get", "redirect"), find("get", "presigned"))),
      ratioLine("streamed GET ÷ redirected GET", ratios(find("get", "streamed"), find("get", "redirect"))),
    );
  }

  if (groups.includes("chunked")) {
    const one = find("chunked", "one");
    const spreadRow = find("chunked", "spread");
    const put = (r: Run) => r.parts.put ?? NaN;
    const readBack =
      one && spreadRow && !one.problem && !spreadRow.problem ? spreadRow.runs.map((x, i) => put(x) - (one.runs[i] ? put(one.runs[i]) : NaN)) : [];
    out.push(
      "",
      `### The read-back cost: a chunked upload of the layer, S3 store, replicas' own ports`,
      "",
      table(
        [
          "row",
          "seconds in all",
          "POST + PATCHes, s",
          "PUT, s",
          "service CPU",
          "Swift CPU",
          "PostgreSQL CPU",
          "client CPU s",
          "machine CPU",
          "busy before",
          "check",
        ],
        [one, spreadRow]
          .filter((r): r is Row => r !== undefined)
          .map((r) =>
            r.runs.length === 0
              ? [r.label, "–", "–", "–", "–", "–", "–", "–", "–", "–", r.problem ? `**FAILED**: ${r.problem}` : "no run"]
              : [
                  r.label,
                  spread(r.runs.map((x) => x.seconds)),
                  spread(r.runs.map((x) => (x.parts.post ?? NaN) + (x.parts.patches ?? NaN))),
                  spread(r.runs.map(put)),
                  ...cpuCells(r, ["service", "store", "db"]),
                  ...common(r),
                ],
          ),
        "lrrrrrrrrrl",
      ),
      "",
      `- the read-back (PUT with PATCHes spread − PUT with PATCHes on one replica, per round): ${
        readBack.length
          ? `${spread(readBack)} s, i.e. ${spread(
              readBack.map((s) => info.layerBytes / s / 1e6),
              0,
            )} MB/s of the ${fmt(info.layerBytes / MiB, 0)} MiB read back and hashed`
          : "no figure"
      }.`,
    );
  }
  return out.join("\n");
}

main().catch((err: unknown) => {
  say(`scale-out: ${String(err instanceof Error ? (err.stack ?? err) : err)}`);
  process.exit(1);
});
