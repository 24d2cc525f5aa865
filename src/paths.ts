import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// The package root holds migrations/ and the proto image; it is found by walking up so the
// same code works from src/ (tsx, tests) and from dist/src/ (compiled, in the container).
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("package.json not found above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

export const packageRoot = findPackageRoot();
export const migrationsFolder = join(packageRoot, "migrations");
/** Where `npm run build` writes the web UI (ui/), which the server serves at `/`. */
export const uiDir = join(packageRoot, "dist", "ui");
