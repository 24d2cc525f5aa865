// vitest strips types without checking them; this makes `npm test` fail on a type error too
// (in src/, gen/, tests, bench and examples alike).
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { packageRoot } from "../src/paths.js";

it("type-checks the whole project", async () => {
  const result = await promisify(execFile)(process.execPath, [join(packageRoot, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json", "--noEmit"], {
    cwd: packageRoot,
    timeout: 170_000,
  }).then(
    () => ({ code: 0, output: "" }),
    (err: { code: number; stdout: string }) => ({ code: err.code, output: err.stdout }),
  );
  expect(result.output).toBe("");
  expect(result.code).toBe(0);
}, 180_000);
