// PGlite's WebAssembly module and file-system bundle, compiled and read ahead of need. A spare
// worker (src/cluster.ts) loads them while it waits, so the worker that takes over from a failed
// one on the embedded database only has to start PostgreSQL: compiling the module and reading the
// bundle is most of what a PGlite start costs besides that (0.1-0.8 s measured, more on a loaded
// machine). The embedded database cannot be opened ahead: the failed worker holds it until it exits.
// The compiled module is also what each PGlite worker thread (pglite-worker.ts) is given, so a
// process compiles it once however many databases it opens (tests open many).
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { PGliteOptions } from "@electric-sql/pglite";

type WasmModule = NonNullable<PGliteOptions["pgliteWasmModule"]>;

export interface PgliteAssets {
  pgliteWasmModule: WasmModule;
  fsBundle: Blob;
}

/** Node's WebAssembly global, which the project's type libraries (ES2023, no DOM) do not declare. */
const wasm = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<WasmModule> } }).WebAssembly;

let loading: Promise<PgliteAssets> | undefined;

/** Starts loading the assets (once per process); every openPglite of the process shares them with its worker. */
export function preloadPgliteAssets(): Promise<PgliteAssets> {
  loading ??= (async () => {
    const dist = dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite"));
    const [module, bundle] = await Promise.all([readFile(join(dist, "pglite.wasm")), readFile(join(dist, "pglite.data"))]);
    return { pgliteWasmModule: await wasm.compile(module), fsBundle: new Blob([bundle]) };
  })();
  return loading;
}
