// The web UI on the service's own ports (src/http/ui.ts): index.html for a browser's navigation
// anywhere but the service's other surfaces, hashed assets cached for a year, a strict
// Content-Security-Policy, and a clear page when the UI is not built. Nothing else changes: the
// registry API, the token endpoint, REST, Connect, probes and metrics answer as before, and what
// is not a page keeps the JSON 404.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UI_CONTENT_SECURITY_POLICY } from "../src/http/ui.js";
import { uiDir } from "../src/paths.js";
import { ADMIN_AUTHORIZATION } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { startTestServer, type TestServer } from "./support/server.js";

function rawGet(url: string, headers: Record<string, string>): Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on("error", reject);
  });
}

const HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

describe.each(databaseKinds())("the web UI's routes on %s", (kind) => {
  let server: TestServer;
  let unbuilt: TestServer;
  const empty = mkdtempSync(join(tmpdir(), "artifact-ui-none-"));

  beforeAll(async () => {
    server = await startTestServer(kind);
    unbuilt = await startTestServer("pglite", { uiDir: empty });
  });
  afterAll(async () => {
    await server?.stop();
    await unbuilt?.stop();
    rmSync(empty, { recursive: true, force: true });
  });

  const get = (path: string, accept = HTML, base = server) => fetch(`${base.httpUrl}${path}`, { headers: { accept } });

  it.each(["/", "/browse/local", "/repo/local/team/app", "/image/local/team/app:1.0", "/admin/gc", "/search?q=app"])(
    "answers a navigation to %s with index.html, revalidated on every load, under the policy",
    async (path) => {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expect(res.headers.get("content-security-policy")).toBe(UI_CONTENT_SECURITY_POLICY);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      const body = await res.text();
      expect(body).toMatch(/<div id="root"><\/div>/);
      // Only the built, hashed assets: no inline script for the policy to allow.
      expect(body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(body).toMatch(/src="\/assets\/index-[A-Za-z0-9_-]+\.js"/);
    },
  );

  it("allows only the app's own scripts, styles and API: no inline code, no other origin, no frames", () => {
    const directives: Record<string, string> = {};
    for (const d of UI_CONTENT_SECURITY_POLICY.split("; ")) {
      const [name = "", ...values] = d.split(" ");
      directives[name] = values.join(" ");
    }
    expect(directives).toMatchObject({
      "default-src": "'none'",
      "script-src": "'self'",
      "style-src": "'self'",
      "connect-src": "'self'",
      "frame-ancestors": "'none'",
      "base-uri": "'none'",
    });
    expect(UI_CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-|\*|https?:/);
  });

  it("serves every built asset (those index.html names, and the screens loaded later) with a year's immutable caching, and 404s an unknown one", async () => {
    const html = await (await get("/")).text();
    const named = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThanOrEqual(2);
    const assets = readdirSync(join(uiDir, "assets"))
      .filter((f) => !/\.(br|gz)$/.test(f))
      .map((f) => `/assets/${f}`);
    expect(assets).toEqual(expect.arrayContaining(named));
    for (const asset of assets) {
      const res = await get(asset, "*/*");
      expect(res.status, asset).toBe(200);
      expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      expect(res.headers.get("content-type")).toMatch(asset.endsWith(".js") ? /^text\/javascript/ : /^text\/css/);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
    for (const path of ["/assets/index-missing.js", "/assets/../package.json", "/assets/%2e%2e/package.json", "/assets/x.exe", `${assets[0]}.gz`]) {
      const res = await get(path, "*/*");
      expect(res.status, path).toBe(404);
      expect(await res.text()).not.toContain('"name": "artifact-service"');
    }
    expect((await get("/assets/index-missing.js", "*/*")).headers.get("cache-control")).toBe("no-store");
  });

  it("sends an asset compressed (brotli, gzip) to a client that accepts it, the same bytes once decoded", async () => {
    const html = await (await get("/")).text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const raw = readFileSync(join(uiDir, script));
    for (const [accept, encoding, decode] of [
      ["gzip, deflate, br", "br", brotliDecompressSync],
      ["gzip", "gzip", gunzipSync],
      ["br;q=0, gzip", "gzip", gunzipSync],
    ] as const) {
      // undici's fetch would decode it: a plain request shows the bytes on the wire.
      const { headers, body } = await rawGet(`${server.httpUrl}${script}`, { "accept-encoding": accept });
      expect(headers["content-encoding"], accept).toBe(encoding);
      expect(headers.vary).toBe("accept-encoding");
      expect(Number(headers["content-length"])).toBe(body.length);
      expect(body.length).toBeLessThan(raw.length / 2);
      expect(decode(body).equals(raw)).toBe(true);
    }
    const plain = await rawGet(`${server.httpUrl}${script}`, {});
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body.equals(raw)).toBe(true);
  });

  it("never shadows the registry API, the token endpoint, REST, Connect, probes or metrics", async () => {
    // Each as a browser would ask for it (Accept: text/html): the surface's own answer.
    expect((await get("/v2/")).status).toBe(401);
    expect((await get("/v2/")).headers.get("www-authenticate")).toMatch(/^Bearer /);
    expect((await get("/v2/no/such/repo/manifests/latest")).headers.get("content-type")).toMatch(/json/);
    expect((await get("/auth/token")).headers.get("content-type")).toBe("application/json");
    expect((await get("/healthz")).status).toBe(200);
    expect((await get("/readyz")).status).toBe(200);
    expect((await get("/metrics")).headers.get("content-type")).toMatch(/^text\/plain/);
    const rest = await fetch(`${server.httpUrl}/v1/registries`, { headers: { accept: HTML, authorization: ADMIN_AUTHORIZATION } });
    expect(rest.headers.get("content-type")).toBe("application/json");
    expect(await rest.json()).toEqual({});
    for (const path of ["/v1/no-such-thing", "/auth/nothing", "/artifact.v1.NoService/NoMethod", "/grpc.health.v1.Health/Nope", "/v2x", "/metricsx/a"]) {
      const res = await get(path);
      expect(res.headers.get("content-type"), path).not.toMatch(/html/);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
    }
  });

  it("keeps the JSON 404 for what is not a page: another Accept, another method", async () => {
    for (const [method, accept] of [
      ["GET", "application/json"],
      ["GET", "*/*"],
      ["GET", "text/html;q=0"],
      ["POST", HTML],
      ["DELETE", HTML],
    ] as const) {
      const res = await fetch(`${server.httpUrl}/browse/local`, { method, headers: { accept } });
      expect(res.status, `${method} ${accept}`).toBe(404);
      expect(await res.json()).toMatchObject({ code: "not_found" });
    }
  });

  it("answers HEAD like GET without a body", async () => {
    const res = await fetch(`${server.httpUrl}/browse/x`, { method: "HEAD", headers: { accept: HTML } });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get("content-length"))).toBeGreaterThan(100);
    expect(await res.text()).toBe("");
  });

  it("says how to build the UI when it is not built (a 404 page, not a 500), and the rest still works", async () => {
    const res = await get("/", HTML, unbuilt);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await res.text()).toMatch(/not built.*npm run build/s);
    expect((await get("/assets/index-x.js", "*/*", unbuilt)).status).toBe(404);
    expect((await get("/healthz", HTML, unbuilt)).status).toBe(200);
  });
});
