// HTTP/1.1 calls (Connect JSON, REST) with wrk (Debian package `wrk`): C, event-driven, so the
// client takes little of the CPU the server needs. A generated Lua script sends a random one of
// the planned requests per call and prints the figures as one JSON line.
import { execFile, execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { LoadPlan, LoadResult } from "./types.js";

const run = promisify(execFile);

export function hasWrk(): boolean {
  try {
    execFileSync("wrk", ["--version"], { stdio: "ignore" });
    return true;
  } catch (err) {
    // wrk prints its version and exits 1.
    return (err as { status?: number }).status === 1;
  }
}

function luaScript(plan: LoadPlan): string {
  // JSON string escapes of ASCII text are valid Lua string escapes.
  const requests = plan.requests.map((r) => `{${JSON.stringify(r.path)}, ${r.body === "" ? "nil" : JSON.stringify(r.body)}}`).join(",\n");
  const headers = [
    // JSON unless the plan names another type (the token endpoint's OAuth2 form).
    plan.requests.some((r) => r.body !== "") && !Object.keys(plan.headers ?? {}).some((k) => k.toLowerCase() === "content-type")
      ? `wrk.headers["Content-Type"] = "application/json"`
      : "",
    plan.protocol === "connect" ? `wrk.headers["Connect-Protocol-Version"] = "1"` : "",
    ...Object.entries(plan.headers ?? {}).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`),
  ].join("\n");
  return `
local requests = {
${requests}
}
local n = #requests
wrk.method = ${JSON.stringify(plan.method)}
${headers}

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
  local r = requests[math.random(n)]
  return wrk.format(nil, r[1], nil, r[2])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"durationUs":%d,"errors":%d,"status":%d,"socket":%d,"timeout":%d,"p50Us":%d,"p99Us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    e.status, e.connect + e.read + e.write, e.timeout, latency:percentile(50), latency:percentile(99)))
end
`;
}

interface WrkFigures {
  requests: number;
  durationUs: number;
  errors: number;
  status: number;
  socket: number;
  timeout: number;
  p50Us: number;
  p99Us: number;
}

async function wrk(plan: LoadPlan, script: string, seconds: number, threads: number): Promise<WrkFigures> {
  const args = ["-t", String(threads), "-c", String(plan.concurrency), "-d", `${seconds}s`, "--timeout", `${plan.timeoutSeconds}s`, "-s", script, plan.baseUrl];
  const { stdout } = await run("wrk", args, { maxBuffer: 1 << 20 });
  const line = stdout.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  if (!line) throw new Error(`wrk printed no figures:\n${stdout}`);
  return JSON.parse(line.slice("BENCH_JSON ".length)) as WrkFigures;
}

export async function runWrk(plan: LoadPlan, workDir: string, threads = plan.threads ?? 2): Promise<LoadResult> {
  const script = join(workDir, "wrk-plan.lua");
  writeFileSync(script, luaScript(plan));
  const warm = plan.warmupSeconds > 0 ? await wrk(plan, script, plan.warmupSeconds, threads) : undefined;
  const f = await wrk(plan, script, plan.durationSeconds, threads);
  const errors = f.errors + (warm?.errors ?? 0);
  const seconds = f.durationUs / 1e6;
  const ok = f.requests - f.status;
  const kinds = [
    [f.status + (warm?.status ?? 0), "non-200 answers"],
    [f.socket + (warm?.socket ?? 0), "socket errors"],
    [f.timeout + (warm?.timeout ?? 0), `calls slower than ${plan.timeoutSeconds} s`],
  ] as const;
  return {
    tool: `wrk -t${threads}`,
    requests: ok,
    seconds,
    rps: ok / seconds,
    p50Ms: f.p50Us / 1000,
    p99Ms: f.p99Us / 1000,
    errors,
    firstError:
      errors > 0
        ? kinds
            .filter(([n]) => n > 0)
            .map(([n, what]) => `${n} ${what}`)
            .join(", ")
        : undefined,
  };
}
