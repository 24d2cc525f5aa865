// `npm run build` / `npm start`: compiles src/ and gen/ to dist/ with tsc, unless dist/ is newer
// than every input (sources, tsconfig files, package.json and its lock), so a start with nothing changed does
// not spend seconds in the compiler. Plain JavaScript: it runs before anything is compiled.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync, utimesSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stamp = join(root, "dist", ".tsbuildinfo");

/** The newest modification time under `path` (a file or a directory), in ms. */
function newest(path) {
  const stats = statSync(path, { throwIfNoEntry: false });
  if (!stats) return 0;
  if (!stats.isDirectory()) return stats.mtimeMs;
  return readdirSync(path).reduce((max, entry) => Math.max(max, newest(join(path, entry))), stats.mtimeMs);
}

const built = statSync(stamp, { throwIfNoEntry: false })?.mtimeMs ?? 0;
const inputs = ["src", "gen", "tsconfig.json", "tsconfig.build.json", "package.json", "package-lock.json"].map((p) => newest(join(root, p)));
if (process.argv.includes("--force") || Math.max(...inputs) >= built) {
  const tsc = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.build.json")], {
    stdio: "inherit",
  });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  // tsc leaves its build info alone when no output changed (a touched file): mark dist/ current.
  const now = new Date();
  utimesSync(stamp, now, now);
}
