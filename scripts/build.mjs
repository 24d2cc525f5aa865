// `npm run build` / `npm start`: compiles src/ and gen/ to dist/ with tsc, unless dist/ is newer
// than every input (sources, tsconfig files, package.json and its lock), so a start with nothing changed does
// not spend seconds in the compiler; then builds the web UI (ui/) with Vite into dist/ui/, on the
// same rule (its inputs: ui/, gen/, package.json and its lock). Plain JavaScript: it runs before
// anything is compiled.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stamp = join(root, "dist", ".tsbuildinfo");

/** The newest modification time under `path` (a file or a directory), in ms. */
function newest(path) {
  const stats = statSync(path, { throwIfNoEntry: false });
  if (!stats) return 0;
  if (!stats.isDirectory()) return stats.mtimeMs;
  return readdirSync(path).reduce((max, entry) => Math.max(max, newest(join(path, entry))), stats.mtimeMs);
}

const force = process.argv.includes("--force");
// `--ui`: the web UI only (the end-to-end tests build it; the server's code runs from src/ there).
const uiOnly = process.argv.includes("--ui");
const built = statSync(stamp, { throwIfNoEntry: false })?.mtimeMs ?? 0;
const inputs = ["src", "gen", "tsconfig.json", "tsconfig.build.json", "package.json", "package-lock.json"].map((p) => newest(join(root, p)));
if (!uiOnly && (force || Math.max(...inputs) >= built)) {
  const tsc = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.build.json")], {
    stdio: "inherit",
  });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  // tsc leaves its build info alone when no output changed (a touched file): mark dist/ current.
  const now = new Date();
  utimesSync(stamp, now, now);
}

// The web UI: Vite writes dist/ui/index.html last, so its time says the whole build finished.
const uiStamp = join(root, "dist", "ui", "index.html");
const uiBuilt = statSync(uiStamp, { throwIfNoEntry: false })?.mtimeMs ?? 0;
const uiInputs = ["ui", "gen", "package.json", "package-lock.json", "scripts/build.mjs"].map((p) => newest(join(root, p)));
if (force || Math.max(...uiInputs) >= uiBuilt) {
  const vite = spawnSync(
    process.execPath,
    [join(root, "node_modules", "vite", "bin", "vite.js"), "build", "--config", join(root, "ui", "vite.config.ts"), "--logLevel", "warn"],
    {
      stdio: "inherit",
      // React's production build whatever called this (vitest runs with NODE_ENV=test, which
      // would bundle React's development build: half again as large, and slower).
      env: { ...process.env, NODE_ENV: "production" },
    },
  );
  if (vite.status !== 0) process.exit(vite.status ?? 1);
  // Compressed once here, not on every request: the server sends the .br or .gz beside an asset
  // to a browser that accepts it.
  const assets = join(root, "dist", "ui", "assets");
  for (const name of readdirSync(assets)) {
    if (!/\.(js|css|svg|json)$/.test(name)) continue;
    const bytes = readFileSync(join(assets, name));
    writeFileSync(join(assets, `${name}.br`), brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
    writeFileSync(join(assets, `${name}.gz`), gzipSync(bytes, { level: 9 }));
  }
  // Vite wrote index.html before the compressed files: touch it so it stays the newest output.
  const now = new Date();
  utimesSync(uiStamp, now, now);
}
