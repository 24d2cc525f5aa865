// A real browser (Debian's headless Chromium, driven by playwright-core) on a page served from
// another origin calls the service with the typed client's browser entry (connect-web): CORS
// preflights, gRPC-Web and Connect GET as browsers really send them; a page on an origin that is
// not allowed is refused by the browser. The page signs in with an API token (a Bearer header),
// and can read a refusal (401 with CORS headers). The page and the browser: test/support/browser.ts.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM, CHROMIUM_ARGS, haveChromium, pageServer, runScenario, type Outcome } from "./support/browser.js";
import { adminFetch } from "./support/credentials.js";
import { startTestServer, type TestServer } from "./support/server.js";

describe.skipIf(!haveChromium("browser.test.ts"))("a browser page on another origin", () => {
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
  const scenario = (origin: string, protocol: "connect" | "grpc-web", name: string, token?: string | null): Promise<Outcome> =>
    runScenario(browser, origin, api.httpUrl, protocol, name, token);

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

  it("reads the refusal of a call without a token (UNAUTHENTICATED), and of one with a token that is not valid", async () => {
    for (const token of [null, "art_not-a-token"]) {
      const outcome = await scenario(allowed.origin, "connect", "browser-anonymous", token);
      expect(outcome, String(token)).toMatchObject({ ok: false, code: Code.Unauthenticated });
    }
  });

  it("is stopped by the browser when its origin is not allowed, and nothing is created", async () => {
    const outcome = await scenario(refused.origin, "grpc-web", "browser-refused");
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/fetch/i);
    const names = ((await (await adminFetch(`${api.httpUrl}/v1/registries`)).json()) as { registries?: { name: string }[] }).registries?.map((r) => r.name);
    expect(names).not.toContain("browser-refused");
  });
});
