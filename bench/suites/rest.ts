// Issue 3: REST GetTag (`GET /v1/tags/{id}`, the generic transcoder) beside Connect and gRPC
// GetTag on the same server; REST ÷ Connect is the figure with a target.
import { cpuPerCall, failed, fmt, PROTOCOL_LABEL, table, verdict, type Row } from "../report.js";
import { say } from "../lifecycle.js";
import { apiOptions, clientFor, measureApi } from "./api.js";
import type { SuiteRunner } from "./types.js";

const TARGET = 0.8;

/** Server CPU milliseconds per successful call. */
const serverMsPerCall = (r: Row) => (failed(r.result) ? NaN : (r.cpu.serverPct / 100 / r.result.rps) * 1000);

export const runRestSuite: SuiteRunner = async (s, workDir) => {
  const o = apiOptions(s, { suite: "rest", protocols: ["connect", "grpc", "rest"], calls: ["GetTag"], rounds: 3, tagCount: 2000 });
  const parts = [
    "## REST beside Connect and gRPC: GetTag (issue 3)",
    "",
    `- \`GET /v1/tags/{id}\` (REST, the generic google.api.http transcoder), \`POST /artifact.v1.TagService/GetTag\` (Connect JSON) and gRPC, against one server; a random one of ${o.tagCount} seeded tags per call.`,
    `- ${o.warmupSeconds} s warm-up + ${o.durationSeconds} s per row, ${o.concurrency} calls in flight; ${o.rounds} rounds with the rows in turn, the median round shown (range in brackets). REST and Connect by ${clientFor("rest", o.client) === "wrk" ? "wrk (2 threads, 32 keep-alive connections)" : "the Node worker"}, gRPC by the Node http2 worker over ${o.connections} connections (it costs the machine more CPU per call than wrk).`,
    `- LOG_LEVEL=${o.logLevel}, DB_POOL_MAX=${o.poolMax}. Target: REST ≥ ${TARGET}× Connect req/s on PostgreSQL. "by CPU" divides the server's CPU per call of Connect by that of REST: the figure other load on the machine disturbs least.`,
  ];
  let anyFailed = false;
  for (const kind of s.databases ?? ["postgres"]) {
    const m = await measureApi(kind, workDir, o);
    const connect = m.rows.find((r) => r.protocol === "connect");
    const rows = m.rows.map((r) => {
      const x = connect && !failed(connect.result) && !failed(r.result) ? r.result.rps / connect.result.rps : NaN;
      return [
        PROTOCOL_LABEL[r.protocol],
        failed(r.result) ? "**FAILED**" : fmt(r.result.rps, 0) + (r.spread.length > 1 ? ` (${fmt(r.spread[0]!, 0)}–${fmt(r.spread.at(-1)!, 0)})` : ""),
        fmt(r.result.p50Ms, 2),
        fmt(r.result.p99Ms, 2),
        String(r.result.errors),
        fmt(x, 2),
        cpuPerCall(r),
        `${fmt(r.cpu.serverPct, 0)}%`,
        `${fmt(r.cpu.machinePct, 0)}%`,
        `${fmt(r.background, 0)}%`,
      ];
    });
    const rest = m.rows.find((r) => r.protocol === "rest");
    const ratio = rest && connect && !failed(rest.result) && !failed(connect.result) ? rest.result.rps / connect.result.rps : undefined;
    const byCpu = rest && connect ? serverMsPerCall(connect) / serverMsPerCall(rest) : NaN;
    anyFailed ||= m.rows.some((r) => failed(r.result));
    parts.push(
      "",
      `### ${kind === "pglite" ? "PGlite" : "PostgreSQL"}`,
      "",
      ...m.notes.map((n) => `- ${n}`),
      "",
      table(
        ["protocol", "req/s", "p50 ms", "p99 ms", "errors", "× Connect", "CPU ms/call server + db", "server CPU", "machine CPU", "busy before"],
        rows,
        "lrrrrrrrrr",
      ),
      "",
      `REST ÷ Connect: ${fmt(ratio ?? NaN, 2)}× req/s, ${fmt(byCpu, 2)}× by server CPU per call${kind === "postgres" ? ` — target ≥ ${TARGET}×: ${verdict(ratio === undefined ? undefined : ratio >= TARGET)}` : ""}.`,
    );
    say(`rest: ${kind}: REST ÷ Connect ${fmt(ratio ?? NaN, 2)}× (by CPU ${fmt(byCpu, 2)}×)`);
  }
  const markdown = parts.join("\n");
  process.stdout.write(`\n${markdown}\n\n`);
  return { markdown, failed: anyFailed };
};
