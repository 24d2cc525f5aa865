// A real browser (Debian's headless Chromium, driven by playwright-core) on a page served from
// another origin calls the service with the typed client's browser entry (connect-web): CORS
// preflights, gRPC-Web and Connect GET as browsers really send them; a page on an origin that is
// not allowed is refused by the browser. The page loads the client as ES modules: our .ts files
// transpiled on request, the connect/protobuf packages from node_modules through an import map.
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../src/paths.js";
import { startTestServer, type TestServer } from "./support/server.js";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(`\n!!! browser.test.ts: SKIPPED, ${CHROMIUM} not installed (Debian package chromium; bash scripts/install-peers.sh)\n`);
}

// Flags this machine's closed network needs (no background connections to Google's hosts).
const CHROMIUM_ARGS = [
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
window.scenario = async (apiUrl, protocol, name) => {
  try {
    const client = createArtifactClient(apiUrl, { protocol, useHttpGet: true });
    const created = await client.registries.createRegistry({ registry: { name, kind: RegistryKind.HOSTED } });
    const listed = await client.registries.listRegistries({});
    const got = await client.registries.getRegistry({ id: created.id });
    return { ok: true, created: created.name, listed: listed.registries.map((r) => r.name), got: got.name };
  } catch (err) {
    return { ok: false, error: String(err) };
  }
};
`;

/** Serves the page, our TypeScript as JavaScript, and the packages' ES modules. */
async function pageServer(): Promise<{ origin: string; close(): Promise<void> }> {
  const page = `<!doctype html><html><head><script type="importmap">${JSON.stringify({ imports: importMap() })}</script><script type="module" src="/app.js"></script></head><body>test page</body></html>`;
  const server = http.createServer((req, res) => {
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
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

interface Outcome {
  ok: boolean;
  created?: string;
  listed?: string[];
  got?: string;
  error?: string;
}

describe.skipIf(!haveChromium)("a browser page on another origin", () => {
  let api: TestServer;
  let allowed: Awaited<ReturnType<typeof pageServer>>;
  let refused: Awaited<ReturnType<typeof pageServer>>;
  let browser: import("playwright-core").Browser;

  beforeAll(async () => {
    allowed = await pageServer();
    refused = await pageServer();
    api = await startTestServer("pglite", { config: { cors: { allowedOrigins: [allowed.origin], maxAgeSeconds: 60 } } });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await api?.stop();
    await allowed?.close();
    await refused?.close();
  });

  /** Opens the page at `origin` and runs the scenario in it with the typed client's browser entry. */
  async function scenario(origin: string, protocol: "connect" | "grpc-web", name: string): Promise<Outcome> {
    const page = await browser.newPage();
    try {
      await page.goto(`${origin}/`);
      await page.waitForFunction("typeof window.scenario === 'function'");
      // A string, so the test runner's transform leaves the page's code alone.
      return await page.evaluate<Outcome>(`window.scenario(${JSON.stringify(api.httpUrl)}, ${JSON.stringify(protocol)}, ${JSON.stringify(name)})`);
    } finally {
      await page.close();
    }
  }

  async function preflights(): Promise<number> {
    const text = await (await fetch(`${api.httpUrl}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith('artifact_http_requests_total{kind="preflight",route="",method="OPTIONS",status="204"}'));
    return line ? Number(line.split(" ").at(-1)) : 0;
  }

  it.each(["grpc-web", "connect"] as const)("calls the service over %s when its origin is allowed", async (protocol) => {
    const before = await preflights();
    const outcome = await scenario(allowed.origin, protocol, `browser-${protocol}`);
    expect(outcome, outcome.error).toMatchObject({ ok: true, created: `browser-${protocol}`, got: `browser-${protocol}` });
    expect(outcome.listed).toContain(`browser-${protocol}`);
    // The POSTs carry non-simple content types, so the browser asked first (and caches the answer for Max-Age).
    if (protocol === "grpc-web") expect(await preflights()).toBeGreaterThan(before);
  });

  it("is stopped by the browser when its origin is not allowed, and nothing is created", async () => {
    const outcome = await scenario(refused.origin, "grpc-web", "browser-refused");
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/fetch/i);
    const names = ((await (await fetch(`${api.httpUrl}/v1/registries`)).json()) as { registries?: { name: string }[] }).registries?.map((r) => r.name);
    expect(names).not.toContain("browser-refused");
  });
});
