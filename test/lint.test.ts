// `npm test` fails on a lint warning, an unformatted file or an export nothing imports too, as it
// does on a type error (test/typecheck.test.ts): the same commands as `npm run lint` and
// `npm run lint:exports`.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { packageRoot } from "../src/paths.js";

/** Generous: eslint takes about 30 s on an idle two-core machine, several times that while it is busy. */
const LIMIT_MS = 400_000;

async function run(script: string, args: string[], nodeArgs: string[] = []): Promise<{ code: number; output: string }> {
  return promisify(execFile)(process.execPath, [...nodeArgs, join(packageRoot, script), ...args], {
    cwd: packageRoot,
    timeout: LIMIT_MS - 10_000,
    maxBuffer: 16 * 1024 * 1024,
  }).then(
    () => ({ code: 0, output: "" }),
    (err: { code: number; stdout?: string; stderr?: string }) => ({ code: err.code, output: `${err.stdout ?? ""}${err.stderr ?? ""}` }),
  );
}

it(
  "lints the whole project without a warning (eslint)",
  async () => {
    const result = await run("node_modules/eslint/bin/eslint.js", [".", "--max-warnings", "0"]);
    expect(result.output).toBe("");
    expect(result.code).toBe(0);
  },
  LIMIT_MS,
);

it(
  "finds every file formatted (prettier --check; `npm run format` fixes it)",
  async () => {
    const result = await run("node_modules/prettier/bin/prettier.cjs", ["--check", "--log-level", "warn", "."]);
    expect(result.output).toBe("");
    expect(result.code).toBe(0);
  },
  LIMIT_MS,
);

it(
  "finds no export that nothing imports (npm run lint:exports)",
  async () => {
    const result = await run("scripts/unused-exports.ts", [], ["--import", "tsx"]);
    expect(result.output).toBe("");
    expect(result.code).toBe(0);
  },
  LIMIT_MS,
);
