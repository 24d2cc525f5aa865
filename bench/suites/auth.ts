// Issue 10: what identity and access cost on the hot path (bench/auth.ts, also runnable alone).
import { measureAuth } from "../auth.js";
import type { SuiteRunner } from "./types.js";

export const runAuthSuite: SuiteRunner = async (s, workDir) => {
  const parts: string[] = [];
  let anyFailed = false;
  for (const kind of s.databases ?? ["postgres"]) {
    const r = await measureAuth(
      {
        kind,
        rounds: s.rounds ?? 3,
        seconds: s.durationSeconds ?? 8,
        warmupSeconds: s.warmupSeconds,
        concurrency: s.concurrency,
        timeoutSeconds: s.timeoutSeconds,
        logLevel: s.logLevel,
        client: s.client,
        profileDir: s.profileDir,
      },
      workDir,
    );
    process.stdout.write(`\n${r.markdown}\n`);
    parts.push(r.markdown);
    anyFailed ||= r.failed;
  }
  return { markdown: parts.join("\n\n"), failed: anyFailed };
};
