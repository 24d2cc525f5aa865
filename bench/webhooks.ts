// Issue 15's measure: pushes into a HOSTED registry with three webhooks (one endpoint fast, one slow,
// one down) against pushes into a registry with none, same server process, same run, rows
// alternated. Each push is what a client does: two blob uploads (POST + PUT) and a manifest PUT,
// from `--clients` clients at once. Target: the ratio (with ÷ without) ≥ 0.95: the outbox write is
// the only cost a push pays; deliveries run in the background.
//
//   npx tsx bench/webhooks.ts [--db postgres|pglite] [--rounds 3] [--pushes 60] [--clients 4]
//
// PostgreSQL is BENCH_DATABASE_URL or a throwaway cluster (bench/databases.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { DeliveryStatus, WebhookService } from "../gen/artifact/v1/webhook_pb.js";
import { ADMIN_TOKEN } from "../test/support/credentials.js";
import { RegistryClient } from "../test/support/registry-client.js";
import { openTarget, type DatabaseKind } from "./databases.js";
import { measureCpu } from "./cpu.js";
import { median, say } from "./lifecycle.js";
import { startBenchServer } from "./server-process.js";

const { values: args } = parseArgs({
  options: {
    db: { type: "string", default: "postgres" },
    rounds: { type: "string", default: "3" },
    pushes: { type: "string", default: "60" },
    clients: { type: "string", default: "4" },
  },
});
const ROUNDS = Number(args.rounds);
const PUSHES = Number(args.pushes);
const CLIENTS = Number(args.clients);

/** An endpoint that answers 200 after `delayMs`, counting what it got. */
async function endpoint(delayMs: number): Promise<{ url: string; received: () => number; close: () => Promise<void> }> {
  let received = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received++;
      setTimeout(() => res.end("ok"), delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received: () => received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A port nothing listens on (bound, then released): the endpoint that is down. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Pushes/s of `PUSHES` pushes into `registry` by `CLIENTS` clients at once, each push checked (201). */
async function pushRate(client: RegistryClient, registry: string, round: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = next++; i < PUSHES; i = next++) await client.pushImage(`${registry}/team/app-${i % 8}`, `r${round}-${i}`);
    }),
  );
  return PUSHES / ((performance.now() - started) / 1000);
}

async function main(): Promise<void> {
  const kind = args.db as DatabaseKind;
  const workDir = mkdtempSync(join(tmpdir(), "artifact-bench-webhooks-"));
  const target = await openTarget(kind, workDir);
  const fast = await endpoint(0);
  const slow = await endpoint(500);
  const down = await closedPort();
  const server = await startBenchServer({
    env: { ...target.env, ADMIN_TOKEN, LOG_LEVEL: "warn", SECRET_KEY: Buffer.alloc(32, 7).toString("base64") },
    logFile: join(workDir, "server.log"),
  });
  try {
    const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1" });
    const registries = createClient(RegistryService, transport);
    const webhooks = createClient(WebhookService, transport);
    // Names of this run: BENCH_DATABASE_URL may be a database an earlier run used.
    const run = Date.now().toString(36);
    const plain = await registries.createRegistry({ registry: { name: `plain-${run}`, kind: RegistryKind.HOSTED } });
    const hooked = await registries.createRegistry({ registry: { name: `hooked-${run}`, kind: RegistryKind.HOSTED } });
    const hooks = [];
    for (const url of [fast.url, slow.url, `http://127.0.0.1:${down}/hook`]) {
      hooks.push(await webhooks.createWebhook({ webhook: { registryId: hooked.id, url, secret: "bench-webhook-secret-0123456789" } }));
    }
    const client = new RegistryClient(server.httpUrl);
    // Warm-up: both registries, so neither row pays first-use costs.
    await client.pushImage(`${plain.name}/team/warm`, "w");
    await client.pushImage(`${hooked.name}/team/warm`, "w");

    type Side = { rate: number; cpuMs: number };
    const rows: { round: number; without: Side; with: Side }[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate which goes first, so a drift of the machine's load does not favour one.
      const order = round % 2 === 1 ? (["without", "with"] as const) : (["with", "without"] as const);
      const row = { round, without: { rate: 0, cpuMs: 0 }, with: { rate: 0, cpuMs: 0 } };
      for (const which of order) {
        const started = performance.now();
        const { value: rate, cpu } = await measureCpu(server.pid, undefined, () => pushRate(client, which === "with" ? hooked.name : plain.name, round));
        // The server's CPU time per push (deliveries made meanwhile included): what other load disturbs least.
        const cpuMs = ((cpu.serverPct / 100) * (performance.now() - started)) / PUSHES;
        row[which] = { rate, cpuMs };
        say(`round ${round}: ${which} webhooks ${rate.toFixed(1)} pushes/s, server CPU ${cpuMs.toFixed(1)} ms/push`);
      }
      rows.push(row);
    }
    const pending = await webhooks.listDeliveries({ webhookId: hooks[2]!.id, status: DeliveryStatus.PENDING, pageSize: 1 });
    const ratios = rows.map((r) => r.with.rate / r.without.rate);
    const lines = [
      `| round | pushes/s, no webhook | pushes/s, 3 webhooks (1 down) | ratio | server CPU ms/push, no webhook | with |`,
      `|---|---|---|---|---|---|`,
      ...rows.map(
        (r, i) =>
          `| ${r.round} | ${r.without.rate.toFixed(1)} | ${r.with.rate.toFixed(1)} | ${ratios[i]!.toFixed(2)} | ${r.without.cpuMs.toFixed(1)} | ${r.with.cpuMs.toFixed(1)} |`,
      ),
      "",
      `${kind}, ${PUSHES} pushes per row by ${CLIENTS} clients (2 blobs + 1 manifest each), ${ROUNDS} rounds: median ratio ` +
        `**${median(ratios).toFixed(2)}** (target ≥ 0.95). Delivered meanwhile: fast endpoint ${fast.received()}, slow (500 ms) ` +
        `${slow.received()}; the endpoint that was down had ${pending.totalSize} deliveries pending (retrying).`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await server.stop();
    await fast.close();
    await slow.close();
    target.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/webhooks: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
