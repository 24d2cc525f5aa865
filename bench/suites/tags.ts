// Issue 2: GetTag and ListTags over Connect and gRPC, beside the no-database ceiling, on each database.
import { DATABASE_KINDS } from "../databases.js";
import { usage } from "../settings.js";
import { failed, renderSection, renderTagsSuite, type RunInfo, type Section } from "../report.js";
import { apiOptions, clientFor, measureApi } from "./api.js";
import type { SuiteRunner } from "./types.js";

const TARGET_RATIO = 0.4;

export const runTagsSuite: SuiteRunner = async (s, workDir) => {
  const o = apiOptions(s, { suite: "tags", protocols: ["connect", "grpc"], calls: s.calls, rounds: 1, tagCount: 10_000 });
  // The deep page is checked to be full and followed by another: it needs more tags than it ends at.
  if (o.calls.includes("ListTags") && o.deepPage * 100 >= o.tagCount)
    usage(`--deep-page ${o.deepPage} needs more than ${o.deepPage * 100} tags (--tags ${o.tagCount})`);
  const info: RunInfo = {
    targetRatio: TARGET_RATIO,
    settings: [
      `${o.warmupSeconds} s warm-up + ${o.durationSeconds} s measured per row${o.rounds > 1 ? `, ${o.rounds} rounds (rows in turn; the round with the median req/s is shown, errors of all rounds count)` : ""}, ${o.concurrency} calls in flight (closed loop), a call slower than ${o.timeoutSeconds} s is an error; gRPC over ${o.connections} HTTP/2 connections, Connect over ${o.concurrency} HTTP/1.1 keep-alive connections`,
      `clients: Connect JSON by ${clientFor("connect", o.client) === "wrk" ? "wrk (C, 2 threads)" : "the Node worker"}, gRPC by the Node http2 worker (bench/load/node-worker.ts), each in its own process`,
      `server: bench/server.ts (startServer + the bench-only ceiling and diagnostic routes), LOG_LEVEL=${o.logLevel} (log to a file), DB_POOL_MAX=${o.poolMax}`,
    ],
  };
  const sections: Section[] = [];
  for (const kind of s.databases ?? DATABASE_KINDS) {
    const m = await measureApi(kind, workDir, o);
    const section: Section = { title: kind === "pglite" ? "PGlite" : "PostgreSQL", notes: m.notes, rows: m.rows, targetApplies: kind === "postgres" };
    process.stdout.write(`\n${renderSection(section, info)}\n\n`);
    sections.push(section);
  }
  return { markdown: renderTagsSuite(sections, info), failed: sections.some((x) => x.rows.some((r) => failed(r.result))) };
};
