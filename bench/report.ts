// Results as markdown: the machine, then each suite; the issue-2 tables (one per database, each
// call beside the ceiling of its protocol) and the small table helpers the other suites use.
import os from "node:os";
import type { CpuUse } from "./cpu.js";
import type { LoadResult, Protocol } from "./load/index.js";

export interface Run {
  result: LoadResult;
  cpu: CpuUse;
  /** Machine CPU busy % in the second before the run, while the bench sent nothing. */
  background: number;
}

export interface Row extends Run {
  protocol: Protocol;
  call: string;
  isCeiling: boolean;
  isTarget: boolean;
  /** req/s of every round, when there were several. */
  spread: number[];
}

/** One row from the rounds of one call: the median round by req/s; any error fails the row. */
export function toRow(protocol: Protocol, call: string, runs: Run[]): Row {
  const sorted = [...runs].sort((a, b) => a.result.rps - b.result.rps);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  const errors = runs.reduce((n, r) => n + r.result.errors, 0);
  const firstError = runs.find((r) => r.result.firstError)?.result.firstError;
  return {
    ...median,
    result: { ...median.result, errors, firstError },
    protocol,
    call,
    isCeiling: call.startsWith("ceiling"),
    isTarget: call === "GetTag",
    spread: runs.length > 1 ? sorted.map((r) => r.result.rps) : [],
  };
}

export interface Section {
  title: string;
  notes: string[];
  rows: Row[];
  /** The target applies to this database (PostgreSQL). */
  targetApplies: boolean;
}

export interface RunInfo {
  settings: string[];
  targetRatio: number;
}

export const failed = (r: LoadResult) => r.errors > 0 || r.requests === 0;

export const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "–");
export const PROTOCOL_LABEL: Record<Protocol, string> = { connect: "Connect JSON, HTTP/1.1", grpc: "gRPC, h2c", rest: "REST, HTTP/1.1" };

function ratio(row: Row, rows: Row[]): number | undefined {
  const ceiling = rows.find((r) => r.protocol === row.protocol && r.isCeiling);
  if (!ceiling || failed(ceiling.result) || failed(row.result)) return undefined;
  return row.result.rps / ceiling.result.rps;
}

/** CPU time per successful call: server process, and the database's processes when they are known. */
export function cpuPerCall(row: Row): string {
  if (failed(row.result)) return "–";
  const ms = (pct: number) => (pct / 100 / row.result.rps) * 1000;
  const server = fmt(ms(row.cpu.serverPct), 3);
  return Number.isFinite(row.cpu.databasePct) ? `${server} + ${fmt(ms(row.cpu.databasePct), 3)}` : server;
}

export function renderSection(section: Section, info: RunInfo): string {
  const lines = [`### ${section.title}`, "", ...section.notes.map((n) => `- ${n}`), ""];
  lines.push("| protocol | call | req/s | p50 ms | p99 ms | errors | × ceiling | CPU ms/call server + db | server CPU | machine CPU | busy before |");
  lines.push("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
  for (const row of section.rows) {
    const r = row.result;
    const bad = failed(r);
    const x = ratio(row, section.rows);
    lines.push(
      `| ${PROTOCOL_LABEL[row.protocol]} | ${row.call} | ${bad ? "**FAILED**" : fmt(r.rps, 0)}${row.spread.length > 1 ? ` (${fmt(row.spread[0]!, 0)}–${fmt(row.spread.at(-1)!, 0)})` : ""} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${r.errors} | ${x === undefined ? "–" : x.toFixed(2)} | ${cpuPerCall(row)} | ${fmt(row.cpu.serverPct, 0)}% | ${fmt(row.cpu.machinePct, 0)}% | ${fmt(row.background, 0)}% |`,
    );
  }
  const failures = section.rows.filter((r) => failed(r.result));
  if (failures.length > 0) {
    lines.push("", "Failed rows (their figures are not results):");
    for (const f of failures)
      lines.push(`- ${PROTOCOL_LABEL[f.protocol]} ${f.call}: ${f.result.errors} errors; ${f.result.firstError ?? "no successful call"}`);
  }
  if (section.targetApplies) {
    const verdicts = section.rows
      .filter((r) => r.isTarget)
      .map((r) => {
        const x = ratio(r, section.rows);
        if (x === undefined) return `${PROTOCOL_LABEL[r.protocol]}: no figure (failed or no ceiling row)`;
        return `${PROTOCOL_LABEL[r.protocol]} ${x.toFixed(2)}× — ${x >= info.targetRatio ? "met" : "**NOT met**"}`;
      });
    if (verdicts.length > 0) lines.push("", `Target GetTag ≥ ${info.targetRatio}× ceiling req/s: ${verdicts.join("; ")}.`);
  }
  return lines.join("\n");
}

/** A markdown table; cells are already formatted. `align` has "r" for right-aligned columns. */
export function table(header: string[], rows: string[][], align = ""): string {
  const sep = header.map((_, i) => (align[i] === "r" ? "--:" : "---"));
  return [header, sep, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

export const verdict = (met: boolean | undefined) => (met === undefined ? "no figure" : met ? "met" : "**NOT met**");

/** The top of the report: when, on what, and that client and server share the machine. */
export function machineHeader(): string {
  const cpus = os.cpus();
  return [
    "# Benchmarks",
    "",
    `${new Date().toISOString()} · Node ${process.version} · ${os.platform()} ${os.release()} · ${cpus.length} × ${cpus[0]?.model.trim() ?? "cpu"} · ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    "",
    `**Client and server share this machine**: the load generators (wrk with 2 threads, curl, Node workers, skopeo), the server under test (one Node thread for JavaScript, so at most about 100% server CPU), PostgreSQL and docker-registry all compete for the same ${cpus.length} cores. Ratios between rows measured the same way in the same run mean more than absolute figures.`,
    "- a row with any error (warm-up included) or a wrong answer is FAILED, not fast; every answer is checked (status, digest) before it is measured.",
  ].join("\n");
}

/** The issue-2 tables: one section per database. */
export function renderTagsSuite(sections: Section[], info: RunInfo): string {
  const head = [
    "## Unary Tag reads against the no-database ceiling (issue 2)",
    "",
    ...info.settings.map((s) => `- ${s}`),
    "- ceiling: `bench.v1.CeilingService/GetTag`, same request and response messages as TagService.GetTag, same listener, adapter and interceptors (log line included), no database; × ceiling compares with the ceiling of the same protocol.",
    "- CPU ms/call: CPU time of the server process (+ PostgreSQL's processes, when local) per successful call; other load on the machine disturbs it least. PGlite runs inside the server process.",
    "- server CPU: the server process, % of one core (its JavaScript runs on one thread; GC and I/O threads can push it a little past 100%); near 100% means the server is the bottleneck. machine CPU: all cores during the row. busy before: all cores in the second before the row, while the bench sent nothing, i.e. other work on the machine; a row with a high figure there is skewed.",
  ];
  return [head.join("\n"), ...sections.map((s) => renderSection(s, info))].join("\n\n");
}
