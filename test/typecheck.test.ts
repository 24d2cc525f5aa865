// vitest strips types without checking them; this makes `npm test` fail on a type error too
// (in src/, gen/, tests, bench and examples alike, and in the web UI, ui/, which has its own
// tsconfig: JSX, the DOM).
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { packageRoot } from "../src/paths.js";

it.each(["tsconfig.json", "ui/tsconfig.json"])(
  "type-checks the whole project (%s)",
  async (project) => {
    const result = await promisify(execFile)(process.execPath, [join(packageRoot, "node_modules/typescript/bin/tsc"), "-p", project, "--noEmit"], {
      cwd: packageRoot,
      timeout: 170_000,
    }).then(
      () => ({ code: 0, output: "" }),
      (err: { code: number; stdout: string }) => ({ code: err.code, output: err.stdout }),
    );
    expect(result.output).toBe("");
    expect(result.code).toBe(0);
  },
  180_000,
);
