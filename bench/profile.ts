// Where a server's CPU went, from a .cpuprofile (V8 sampling profile): self time by area
// (project code, each npm package, Node internals, GC, idle) and the functions with the most
// time including what they call. Also a CLI: tsx bench/profile.ts FILE.cpuprofile [N]
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function area(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith("(") ? functionName : "(native/V8)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return "node internals";
  const own = /.*\/(src|gen|bench)\/(.*)$/.exec(url);
  if (own) return own[1] === "src" ? `src/${own[2]!.split("/")[0]}` : own[1]!;
  return url;
}

function label(frame: CallFrame): string {
  const file = frame.url
    .replace(/^.*node_modules\//, "")
    .replace(/^.*\/(src|gen|bench)\//, "$1/")
    .replace(/^file:\/\//, "");
  return `${frame.functionName || "(anonymous)"} ${file ? `${file}:${frame.lineNumber + 1}` : ""}`.trim();
}

export function summarizeProfile(file: string, top = 15): string {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfByArea = new Map<string, number>();
  const selfByFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const node = byId.get(id)!;
    const a = area(node.callFrame);
    selfByArea.set(a, (selfByArea.get(a) ?? 0) + dt);
    if (a === "(idle)") return;
    busy += dt;
    const f = node.callFrame.url ? label(node.callFrame) : `${node.callFrame.functionName || "(anonymous)"} [native]`;
    selfByFunction.set(f, (selfByFunction.get(f) ?? 0) + dt);
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const frame = byId.get(n)!.callFrame;
      if (!frame.url) continue;
      const key = label(frame);
      if (!seen.has(key)) {
        seen.add(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
      }
    }
  });

  const pct = (ms: number, of: number) => `${((ms / of) * 100).toFixed(1).padStart(5)}%`;
  const lines = [`${file}: ${total.toFixed(0)} ms sampled, ${busy.toFixed(0)} ms busy (not idle)`, "self time by area (% of busy):"];
  for (const [a, ms] of [...selfByArea]
    .filter(([a]) => a !== "(idle)")
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)) {
    lines.push(`  ${pct(ms, busy)}  ${a}`);
  }
  lines.push("functions by self time (% of busy):");
  for (const [f, ms] of [...selfByFunction].sort((x, y) => y[1] - x[1]).slice(0, top)) lines.push(`  ${pct(ms, busy)}  ${f}`);
  lines.push("functions by time including callees (% of busy):");
  for (const [f, ms] of [...inclusive].sort((x, y) => y[1] - x[1]).slice(0, top * 2)) lines.push(`  ${pct(ms, busy)}  ${f}`);
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, n] = process.argv.slice(2);
  if (!file) {
    process.stderr.write("usage: tsx bench/profile.ts FILE.cpuprofile [TOP]\n");
    process.exit(2);
  }
  process.stdout.write(`${summarizeProfile(file, n ? Number(n) : 15)}\n`);
}
