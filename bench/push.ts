// npx tsx bench/push.ts [--db postgres,pglite] [--rounds 3] [--blob-mib 512] [--profile DIR]
//
// Issue 16, target 3: a skopeo push of the big image (one uncompressed layer) into an empty
// repository of the service, beside docker-registry (CNCF Distribution 2.8) and two floors
// measured in the same run:
// - skopeo copy of the same image from its OCI layout into a new OCI layout: skopeo's own work
//   (reading, hashing, writing the layer), no network, no registry;
// - the disk: the layer's bytes written to a new file 1 MiB at a time and fdatasync'd (write and
//   sync timed apart): what durability costs on this disk.
// Rows run in turn, another order each round, after `sync` (no writeback of the previous row left).
// Every answer is checked: skopeo's pushed digest; on the registries, the manifest by tag (status,
// Docker-Content-Digest) and a HEAD of the layer (status, size, digest); the floor's index.json
// digest and layer size. The median round is shown with the range, and "busy before" (the machine's
// CPU use in the second before the row, while nothing is sent). Writes bench/results/push-latest.md.
import { execFileSync } from "node:child_process";
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { packageRoot } from "../src/paths.js";
import type { BuiltImage } from "../test/support/oci-images.js";
import { pushImage } from "../test/support/skopeo.js";
import { cachedLargeImage } from "./big-image.js";
import { backgroundBusyPct, childrenCpuSeconds, measureCpuOf, type Watched } from "./cpu.js";
import type { DatabaseKind } from "./databases.js";
import { median, say, stopEverythingOnSignals, using } from "./lifecycle.js";
import { requirePeers, startPeerRegistry } from "./peer.js";
import { fmt, table } from "./report.js";
import { timeLayoutCopy } from "./push-floor.js";
import { createRegistry, profiled, withService, type Service } from "./service.js";
import { pushedImageProblem } from "./transfer.js";
import type { Settings } from "./settings.js";

const TARGET = 0.8;

const { values } = parseArgs({
  options: {
    db: { type: "string", default: "postgres" },
    rounds: { type: "string", default: "3" },
    "blob-mib": { type: "string", default: "512" },
    profile: { type: "string" },
    out: { type: "string", default: join(packageRoot, "bench", "results", "push-latest.md") },
  },
});
const kinds = values.db.split(",").map((k) => k.trim()) as DatabaseKind[];
for (const k of kinds) if (k !== "postgres" && k !== "pglite") throw new Error(`--db: ${String(k)} is not postgres or pglite`);
const rounds = Number(values.rounds);
const blobMiB = Number(values["blob-mib"]);
if (!(rounds >= 1) || !(blobMiB >= 1)) throw new Error("--rounds and --blob-mib must be positive");

interface Run {
  seconds: number;
  /** CPU of the registry process (% of one core), when there is one. */
  serverPct?: number;
  dbPct?: number;
  /** skopeo's own CPU seconds (user + system), from the children's rusage of this process. */
  skopeoCpu: number;
  machinePct: number;
  busyBefore: number;
  /** The disk row: seconds of the writes and of the fdatasync apart. */
  writeSeconds?: number;
  syncSeconds?: number;
}

interface Row {
  label: string;
  kind: "floor" | "disk" | "peer" | "service";
  runs: Run[];
  problem?: string;
  /** One push (or copy); checks its answer; returns what it measured. */
  once(round: number): Promise<Omit<Run, "machinePct" | "busyBefore" | "skopeoCpu">>;
  watched?: Watched;
  svc?: Service;
}

/** The layer's bytes into a new file, 1 MiB per write, then fdatasync: the disk's share of a durable push. */
function diskWrite(source: string, dir: string): { seconds: number; writeSeconds: number; syncSeconds: number } {
  const bytes = readFileSync(source);
  const path = join(dir, "disk-row.bin");
  const t0 = performance.now();
  const fd = openSync(path, "w");
  try {
    for (let at = 0; at < bytes.length; at += 1 << 20) writeSync(fd, bytes, at, Math.min(1 << 20, bytes.length - at), at);
    const t1 = performance.now();
    fsyncSync(fd);
    const t2 = performance.now();
    return { seconds: (t2 - t0) / 1000, writeSeconds: (t1 - t0) / 1000, syncSeconds: (t2 - t1) / 1000 };
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}

function registryRow(
  label: string,
  kind: "peer" | "service",
  base: string,
  host: string,
  prefix: string,
  big: BuiltImage,
  watched: Watched,
  svc?: Service,
): Row {
  const row: Row = {
    label,
    kind,
    runs: [],
    watched,
    svc,
    async once(round) {
      const repo = `${prefix}bench/push-${round}`;
      const t0 = performance.now();
      const digest = await pushImage(big, { host }, repo, "latest", { timeoutMs: 600_000 });
      const seconds = (performance.now() - t0) / 1000;
      if (digest !== big.digest) throw new Error(`skopeo pushed ${digest}, expected ${big.digest}`);
      const problem = await pushedImageProblem(base, repo, big);
      if (problem) throw new Error(problem);
      return { seconds };
    },
  };
  return row;
}

async function main(): Promise<void> {
  requirePeers("push", "docker-registry", "skopeo");
  stopEverythingOnSignals();
  const workDir = mkdtempSync(join(tmpdir(), "artifact-bench-push-"));
  const settings = { profileDir: values.profile, logLevel: "info", poolMax: "10", workers: 1 } as unknown as Settings;
  try {
    const big = await cachedLargeImage(join(packageRoot, "bench", ".cache"), blobMiB);
    const layer = big.blobs.reduce((a, b) => (b.size > a.size ? b : a));
    await using(
      startPeerRegistry,
      (p) => p.stop(),
      async (peer) => {
        const rows: Row[] = [
          {
            label: "skopeo copy, OCI layout → OCI layout (floor)",
            kind: "floor",
            runs: [],
            async once(round) {
              return { seconds: await timeLayoutCopy(big, join(workDir, `floor-${round}`)) };
            },
          },
          {
            label: `write ${blobMiB} MiB + fdatasync (disk)`,
            kind: "disk",
            runs: [],
            once: () => Promise.resolve(diskWrite(layer.path, workDir)),
          },
          registryRow("docker-registry", "peer", peer.url, peer.host, "", big, { server: { pid: peer.pid } }),
        ];
        await startServices(kinds, workDir, settings, rows, big, async () => {
          for (let round = 1; round <= rounds; round++) {
            const order = rows.map((_, i) => rows[(i + round) % rows.length]!);
            for (const row of order) await measure(row, round, settings);
          }
        });
        const markdown = render(rows);
        process.stdout.write(`\n${markdown}\n`);
        mkdirSync(join(values.out, ".."), { recursive: true });
        writeFileSync(values.out, markdown);
        say(`push: report written to ${values.out}`);
        if (rows.some((r) => r.problem)) process.exitCode = 1;
      },
    );
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

async function startServices(left: DatabaseKind[], workDir: string, s: Settings, rows: Row[], big: BuiltImage, body: () => Promise<void>): Promise<void> {
  if (left.length === 0) return body();
  return withService(left[0]!, workDir, s, "push", async (svc) => {
    await createRegistry(svc, { name: "local", kind: "hosted" });
    const watched: Watched = {
      server: { pid: svc.server.pid },
      database: svc.target.postmasterPid ? { pid: svc.target.postmasterPid, tree: true } : undefined,
    };
    rows.push(registryRow(svc.label, "service", svc.server.httpUrl, svc.host, "local/", big, watched, svc));
    await startServices(left.slice(1), workDir, s, rows, big, body);
  });
}

async function measure(row: Row, round: number, s: Settings): Promise<void> {
  if (row.problem) return;
  execFileSync("sync");
  const busyBefore = await backgroundBusyPct(1000);
  say(`push: ${row.label}, round ${round}/${rounds} (busy before ${fmt(busyBefore, 0)}%)`);
  try {
    const cpu0 = childrenCpuSeconds();
    const go = () => measureCpuOf(row.watched ?? {}, () => row.once(round));
    const { value, pct, machinePct } = round === 1 && row.svc ? await profiled(row.svc, s, "push", go) : await go();
    const skopeoCpu = childrenCpuSeconds() - cpu0;
    row.runs.push({ ...value, serverPct: pct.server, dbPct: pct.database, skopeoCpu, machinePct, busyBefore });
    say(
      `  ${fmt(value.seconds, 2)} s${value.syncSeconds !== undefined ? ` (write ${fmt(value.writeSeconds!, 2)} s, fdatasync ${fmt(value.syncSeconds, 2)} s)` : ""}` +
        `${pct.server !== undefined ? `, server CPU ${fmt(pct.server, 0)}%` : ""}, skopeo CPU ${fmt(skopeoCpu, 2)} s, machine ${fmt(machinePct, 0)}%`,
    );
  } catch (err) {
    row.problem = String(err).split("\n")[0];
    say(`  FAILED: ${String(err)}`);
  }
}

function render(rows: Row[]): string {
  const peer = rows.find((r) => r.kind === "peer")!;
  const floor = rows.find((r) => r.kind === "floor")!;
  const med = (r: Row, f: (x: Run) => number | undefined) => {
    const xs = r.runs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
    return xs.length ? median(xs) : NaN;
  };
  const range = (r: Row) => `${fmt(Math.min(...r.runs.map((x) => x.seconds)), 2)}–${fmt(Math.max(...r.runs.map((x) => x.seconds)), 2)}`;
  // The ratio of the median round: each round's time over docker-registry's in the same round.
  const ratios = (r: Row, to: Row) => r.runs.map((x, i) => (to.runs[i] ? x.seconds / to.runs[i].seconds : NaN)).filter(Number.isFinite);
  const ratioText = (r: Row, to: Row) => {
    const xs = ratios(r, to);
    return xs.length ? `${fmt(median(xs), 2)} (${fmt(Math.min(...xs), 2)}–${fmt(Math.max(...xs), 2)})` : "–";
  };
  const lines = [
    `## skopeo push of a ${blobMiB} MiB image (issue 16, target 3: ≤ ${TARGET}× docker-registry's time)`,
    "",
    `${rounds} rounds, rows in turn (another order each round) after \`sync\`; median (range). × columns: per round, then the median.`,
    "",
    table(
      ["row", "seconds", "× docker-registry", "× floor", "server CPU", "db CPU", "skopeo CPU s", "machine CPU", "busy before", "target"],
      rows.map((r) => {
        if (r.problem || r.runs.length === 0) return [r.label, "**FAILED**", "–", "–", "–", "–", "–", "–", "–", r.problem ?? "no run"];
        const extra =
          r.kind === "disk"
            ? ` (write ${fmt(
                med(r, (x) => x.writeSeconds),
                2,
              )}, sync ${fmt(
                med(r, (x) => x.syncSeconds),
                2,
              )})`
            : "";
        const target = r.kind === "service" && !peer.problem ? (median(ratios(r, peer)) <= TARGET ? `≤ ${TARGET}× — met` : `≤ ${TARGET}× — **not met**`) : "–";
        return [
          r.label,
          `${fmt(
            med(r, (x) => x.seconds),
            2,
          )} (${range(r)})${extra}`,
          r === peer || peer.problem ? "–" : ratioText(r, peer),
          r === floor || floor.problem ? "–" : ratioText(r, floor),
          r.watched
            ? `${fmt(
                med(r, (x) => x.serverPct),
                0,
              )}%`
            : "–",
          r.watched?.database
            ? `${fmt(
                med(r, (x) => x.dbPct),
                0,
              )}%`
            : "–",
          r.kind === "disk"
            ? "–"
            : fmt(
                med(r, (x) => x.skopeoCpu),
                2,
              ),
          `${fmt(
            med(r, (x) => x.machinePct),
            0,
          )}%`,
          `${fmt(
            med(r, (x) => x.busyBefore),
            0,
          )}% (${fmt(Math.min(...r.runs.map((x) => x.busyBefore)), 0)}–${fmt(Math.max(...r.runs.map((x) => x.busyBefore)), 0)})`,
          target,
        ];
      }),
    ),
    "",
    "- The service fsyncs every blob before it answers 201; docker-registry does not fsync; the floor (skopeo into an OCI layout) does not either.",
    "- skopeo CPU: user + system seconds of the skopeo process (children's rusage of the bench process).",
  ];
  return lines.join("\n");
}

main().catch((err: unknown) => {
  say(`push: ${String(err instanceof Error ? (err.stack ?? err) : err)}`);
  process.exit(1);
});
