import { performance } from "node:perf_hooks";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
const { PGlite } = await import("@electric-sql/pglite");
const dist = dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite"));
const dir = process.argv[2]! + "/pglite";
for (let i = 0; i < 3; i++) {
  let t = performance.now();
  const db = await PGlite.create(dir); await db.query("select 1");
  const a = performance.now() - t; await db.close();
  t = performance.now();
  const pgliteWasmModule = await WebAssembly.compile(await readFile(join(dist, "pglite.wasm")));
  const fsBundle = new Blob([await readFile(join(dist, "pglite.data"))]);
  const c = performance.now() - t;
  t = performance.now();
  const db2 = await PGlite.create(dir, { pgliteWasmModule, fsBundle }); await db2.query("select 1");
  console.log("plain", a.toFixed(0), "precompile", c.toFixed(0), "with precompiled", (performance.now() - t).toFixed(0));
  await db2.close();
}
process.exit(0);
