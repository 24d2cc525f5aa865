// npm run bench [-- --help]: runs the chosen suites (default all), each starting its own servers,
// databases and peers, prints each suite's tables as it finishes and writes them all to one
// markdown report. Exits 1 when any row failed or a suite could not run.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { say, stopEverythingOnSignals, using } from "./lifecycle.js";
import { wrkAvailable } from "./load/index.js";
import { machineHeader } from "./report.js";
import { parseSettings, type Suite } from "./settings.js";
import { runAuthSuite } from "./suites/auth.js";
import { runHotSuite } from "./suites/hot.js";
import { runImagesSuite } from "./suites/images.js";
import { runPullSuite } from "./suites/pull.js";
import { runRegistrySuite } from "./suites/registry.js";
import { runRestSuite } from "./suites/rest.js";
import { runTagsSuite } from "./suites/tags.js";
import type { SuiteResult, SuiteRunner } from "./suites/types.js";

const RUNNERS: Record<Suite, SuiteRunner> = {
  tags: runTagsSuite,
  rest: runRestSuite,
  images: runImagesSuite,
  registry: runRegistrySuite,
  auth: runAuthSuite,
  hot: runHotSuite,
  pull: runPullSuite,
};

stopEverythingOnSignals();
const settings = parseSettings();

async function main(): Promise<number> {
  if (!wrkAvailable()) {
    say(
      "wrk is NOT installed: HTTP/1.1 load (Connect, REST, /v2/) falls back to the Node worker, a slower client that takes CPU from the server; install it with: apt-get install wrk",
    );
  }
  const started = performance.now();
  const results = await using(
    async () => mkdtempSync(join(tmpdir(), "artifact-bench-")),
    (workDir) => rmSync(workDir, { recursive: true, force: true }),
    async (workDir) => {
      const done: SuiteResult[] = [];
      for (const suite of settings.suites) {
        const t0 = performance.now();
        say(`suite ${suite}: starting`);
        try {
          done.push(await RUNNERS[suite](settings, workDir));
        } catch (err) {
          const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
          say(`suite ${suite}: FAILED: ${message}`);
          done.push({ markdown: `## Suite ${suite}: **FAILED**\n\n\`\`\`\n${message}\n\`\`\``, failed: true });
        }
        say(`suite ${suite}: ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      }
      return done;
    },
  );
  const minutes = (performance.now() - started) / 60_000;
  const report =
    [machineHeader(), `- suites: ${settings.suites.join(", ")}; the whole run took ${minutes.toFixed(1)} min.`, ...results.map((r) => r.markdown)].join(
      "\n\n",
    ) + "\n";
  mkdirSync(dirname(settings.out), { recursive: true });
  writeFileSync(settings.out, report);
  say(`report written to ${settings.out}`);
  return results.some((r) => r.failed) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
