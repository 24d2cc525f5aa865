// `npm test` fails on a lint warning or an unformatted file too, as it does on a type error
// (test/typecheck.test.ts): the same commands as `npm run lint`.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { packageRoot } from "../src/paths.js";

async function run(script: string, args: string[]): Promise<{ code: number; output: string }> {
  return promisify(execFile)(process.execPath, [join(packageRoot, script), ...args], {
    cwd: packageRoot,
    timeout: 170_000,
    maxBuffer: 16 * 1024 * 1024,
  }).then(
    () => ({ code: 0, output: "" }),
    (err: { code: number; stdout?: string; stderr?: string }) => ({ code: err.code, output: `${err.stdout ?? ""}${err.stderr ?? ""}` }),
  );
}

it("lints the whole project without a warning (eslint)", async () => {
  const result = await run("node_modules/eslint/bin/eslint.js", [".", "--max-warnings", "0"]);
  expect(result.output).toBe("");
  expect(result.code).toBe(0);
}, 180_000);

it("finds every file formatted (prettier --check; `npm run format` fixes it)", async () => {
  const result = await run("node_modules/prettier/bin/prettier.cjs", ["--check", "--log-level", "warn", "."]);
  expect(result.output).toBe("");
  expect(result.code).toBe(0);
}, 180_000);
