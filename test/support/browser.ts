// A real browser for tests: Debian's headless Chromium driven by playwright-core, and a page
// server on an origin of its own (HTTP, or HTTPS with a test certificate) whose page loads the
// typed client's browser entry as ES modules: our .ts files transpiled on request, the
// connect/protobuf packages from node_modules through an import map. `window.scenario(apiUrl,
// protocol, name, token)` creates, lists and gets a registry with it, signed in with the API token
// (a Bearer header: what makes the browser ask first, and the server allow, `authorization`).
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";
import ts from "typescript";
import { packageRoot } from "../../src/paths.js";
import { ADMIN_TOKEN } from "./credentials.js";

export const CHROMIUM = "/usr/bin/chromium";

/** True when Chromium is installed; otherwise warns loudly, naming the suite and the package. */
export function haveChromium(suite: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  console.warn(`\n!!! ${suite}: SKIPPED, ${CHROMIUM} not installed (Debian package chromium; bash scripts/install-peers.sh)\n`);
  return false;
}

// Flags this machine's closed network needs (no background connections to Google's hosts).
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const PACKAGES = ["@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-web"];

/** Bare specifiers → files under /node_modules, from each package's "exports" (import condition). */
function importMap(): Record<string, string> {
  const imports: Record<string, string> = {};
  for (const pkg of PACKAGES) {
    const { exports } = JSON.parse(readFileSync(join(packageRoot, "node_modules", pkg, "package.json"), "utf8")) as {
      exports: Record<string, { import: string }>;
    };
    for (const [key, target] of Object.entries(exports)) {
      if (typeof target === "object" && target.import) imports[pkg + key.slice(1)] = `/node_modules/${pkg}/${target.import.slice(2)}`;
    }
  }
  return imports;
}

/** What the page does with the typed client's browser entry: create, list and get a registry. */
const APP = `
import { createArtifactClient } from "/src/client/browser.js";
import { RegistryKind } from "/gen/artifact/v1/registry_pb.js";
window.scenario = async (apiUrl, protocol, name, token) => {
  try {
    const client = createArtifactClient(apiUrl, { protocol, useHttpGet: true, token });
    const created = await client.registries.createRegistry({ registry: { name, kind: RegistryKind.HOSTED } });
    const listed = await client.registries.listRegistries({});
    const got = await client.registries.getRegistry({ id: created.id });
    return { ok: true, created: created.name, listed: listed.registries.map((r) => r.name), got: got.name };
  } catch (err) {
    return { ok: false, error: String(err), code: err?.code };
  }
};
`;

export interface PageServer {
  origin: string;
  close(): Promise<void>;
}

/** Serves the page, our TypeScript as JavaScript, and the packages' ES modules; over HTTPS with `tls`. */
export async function pageServer(tls?: { cert: string; key: string; host?: string }): Promise<PageServer> {
  const page = `<!doctype html><html><head><script type="importmap">${JSON.stringify({ imports: importMap() })}</script><script type="module" src="/app.js"></script></head><body>test page</body></html>`;
  const serve: http.RequestListener = (req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? "/").split("?")[0]!));
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    if (path === "/") return send(200, "text/html", page);
    if (path === "/app.js") return send(200, "text/javascript", APP);
    if (path.startsWith("/node_modules/") && path.endsWith(".js")) {
      const file = join(packageRoot, path);
      return existsSync(file) ? send(200, "text/javascript", readFileSync(file, "utf8")) : send(404, "text/plain", "no such module");
    }
    if ((path.startsWith("/src/client/") || path.startsWith("/gen/")) && path.endsWith(".js")) {
      const file = join(packageRoot, path.replace(/\.js$/, ".ts"));
      if (!existsSync(file)) return send(404, "text/plain", "no such source");
      const js = ts.transpileModule(readFileSync(file, "utf8"), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      return send(200, "text/javascript", js);
    }
    send(404, "text/plain", "not found");
  };
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, serve) : http.createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `${tls ? "https" : "http"}://${tls?.host ?? "127.0.0.1"}:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface Outcome {
  ok: boolean;
  created?: string;
  listed?: string[];
  got?: string;
  error?: string;
  /** The Connect code of a failed call (the page could read the answer), undefined if the browser blocked it. */
  code?: number;
}

/** Opens the page at `origin` in `browser` and runs the scenario against `apiUrl` with `token` (default the test admin's; null: none). */
export async function runScenario(
  browser: import("playwright-core").Browser,
  origin: string,
  apiUrl: string,
  protocol: "connect" | "grpc-web",
  name: string,
  token: string | null = ADMIN_TOKEN,
): Promise<Outcome> {
  const page = await browser.newPage();
  try {
    await page.goto(`${origin}/`);
    await page.waitForFunction("typeof window.scenario === 'function'");
    // A string, so the test runner's transform leaves the page's code alone.
    const args = [apiUrl, protocol, name, token ?? undefined].map((a) => JSON.stringify(a) ?? "undefined").join(", ");
    return await page.evaluate<Outcome>(`window.scenario(${args})`);
  } finally {
    await page.close();
  }
}
