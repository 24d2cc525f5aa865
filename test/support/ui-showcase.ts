// The web UI's screenshots (docs/ui/, shown in the README) and its measurements (issue 11's
// closing note), against a real server on PGlite with images pushed by skopeo:
//
//   npx tsx test/support/ui-showcase.ts screenshots docs/ui
//   npx tsx test/support/ui-showcase.ts measure
//
// `measure` prints the JS and CSS the first screen loads (bytes on the wire, compressed as the
// server sends them), the time from navigation to the first page of tags of a 10,000-tag
// repository in Chromium on loopback, and the same for page 100 (reached with the API's page
// tokens). Figures, not assertions: the test suite asserts behaviour, never time.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { Page } from "playwright-core";
import { RegistryKind, RegistryService } from "../../gen/artifact/v1/registry_pb.js";
import { RepositoryService } from "../../gen/artifact/v1/repository_pb.js";
import { TagService } from "../../gen/artifact/v1/tag_pb.js";
import { CHROMIUM, CHROMIUM_ARGS } from "./browser.js";
import { ADMIN_TOKEN, adminInterceptor } from "./credentials.js";
import { startDistribution } from "./distribution.js";
import { multiPlatformIndex, smallImage, multiLayerImage } from "./oci-images.js";
import { seedRepositories } from "./registry-seed.js";
import { pushImage } from "./skopeo.js";
import { startTestServer } from "./server.js";
import { buildUi, signInWithToken } from "./ui.js";

const [mode = "measure", outDir = "docs/ui"] = process.argv.slice(2);

await buildUi();
// PostgreSQL when TEST_DATABASE_URL names one (seeding 10,000 tags there takes a fraction of PGlite's time).
const server = await startTestServer(process.env.TEST_DATABASE_URL ? "postgres" : "pglite");
const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [adminInterceptor] });
const registries = createClient(RegistryService, transport);
const repositories = createClient(RepositoryService, transport);
const tags = createClient(TagService, transport);
const endpoint = { host: `127.0.0.1:${server.http.port}` };
const { chromium } = await import("playwright-core");
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });

// Ready: the database answered the health check (PostgreSQL's first ping may still be on its way).
while ((await fetch(`${server.httpUrl}/readyz`)).status !== 200) await new Promise((r) => setTimeout(r, 100));

try {
  await registries.createRegistry({ registry: { name: "local", kind: RegistryKind.HOSTED, description: "images we build" } });
  if (mode === "screenshots") await screenshots();
  else await measure();
} finally {
  await browser.close();
  await server.stop();
}

async function screenshots(): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  await registries.createRegistry({ registry: { name: "staging", kind: RegistryKind.HOSTED, description: "release candidates" } });
  const [small, multi, layered] = await Promise.all([smallImage("docs"), multiPlatformIndex("docs"), multiLayerImage("docs")]);
  for (const tag of ["1.0", "1.1", "1.2", "latest"]) await pushImage(small, endpoint, "local/team/app", tag);
  await pushImage(layered, endpoint, "local/team/app", "2.0");
  await pushImage(multi, endpoint, "local/team/web", "1.0");
  await pushImage(small, endpoint, "local/platform/base", "bookworm");
  const upstream = await startDistribution();
  await seedRepositories(upstream, small, { repos: Array.from({ length: 8 }, (_, i) => `library/tool-${i}`), tags: ["1.0", "latest"] });
  await registries.createRegistry({ registry: { name: "mirror", kind: RegistryKind.REMOTE, url: upstream.url, description: "a docker-registry upstream" } });
  const context = await browser.newContext({ viewport: { width: 1200, height: 760 }, colorScheme: "light" });
  const page = await context.newPage();
  await signInWithToken(page, server.httpUrl, ADMIN_TOKEN, "/");
  const shot = async (name: string, path: string, ready: (p: Page) => Promise<unknown>, fullPage = false) => {
    await page.goto(`${server.httpUrl}${path}`);
    await ready(page);
    await page.screenshot({ path: join(outDir, `${name}.png`), fullPage });
  };
  await shot("registries", "/", (p) => p.getByRole("link", { name: "mirror" }).waitFor());
  await shot("tags", "/repo/local/team/app", (p) => p.locator("table.tags").waitFor());
  await shot(
    "image",
    "/image/local/team/app:2.0",
    (p) =>
      p
        .getByRole("heading", { name: "Config" })
        .waitFor()
        .then(() => p.locator("dl.facts").nth(1).waitFor()),
    true,
  );
  await shot("index", "/image/local/team/web:1.0", (p) => p.locator("table.platforms").waitFor(), true);
  await page.goto(`${server.httpUrl}/browse/mirror/~sync`);
  await page.getByRole("button", { name: "Test connection" }).click();
  await page.getByText("Reachable").waitFor();
  await page.getByRole("button", { name: "Start sync" }).click();
  await page.getByText("Sync finished.").waitFor();
  await page.screenshot({ path: join(outDir, "sync.png"), fullPage: true });
  await context.close();
  const phone = await browser.newContext({ viewport: { width: 390, height: 760 }, colorScheme: "light" });
  const narrow = await phone.newPage();
  await signInWithToken(narrow, server.httpUrl, ADMIN_TOKEN, "/repo/local/team/app");
  await narrow.locator("table.tags").waitFor();
  await narrow.screenshot({ path: join(outDir, "narrow.png") });
  const signIn = await browser.newContext({ viewport: { width: 1200, height: 600 }, colorScheme: "light" });
  const first = await signIn.newPage();
  await first.goto(`${server.httpUrl}/`);
  await first.getByRole("heading", { name: "Sign in" }).waitFor();
  await first.screenshot({ path: join(outDir, "sign-in.png") });
  await upstream.stop();
  console.log(`screenshots in ${outDir}`);
}

async function measure(): Promise<void> {
  const small = await smallImage("measure");
  await pushImage(small, endpoint, "local/team/big", "base");
  const repo = await repositories.lookupRepository({ name: "local/team/big" });
  const started = performance.now();
  const total = 10_000;
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < total - 1) {
        const i = next++;
        await tags.createTag({ tag: { repositoryId: repo.id, name: `v${String(i).padStart(5, "0")}`, digest: small.digest } });
      }
    }),
  );
  console.log(`seeded ${total} tags in ${Math.round((performance.now() - started) / 1000)} s`);

  // The first screen: what a browser that was never here loads for the sign-in screen, then for
  // the registries after signing in.
  const context = await browser.newContext();
  const page = await context.newPage();
  const bytes = { js: 0, css: 0 };
  page.on("requestfinished", (req) => {
    void req.sizes().then((s) => {
      const type = req.resourceType();
      if (type === "script") bytes.js += s.responseBodySize;
      if (type === "stylesheet") bytes.css += s.responseBodySize;
    });
  });
  await signInWithToken(page, server.httpUrl, ADMIN_TOKEN, "/");
  await page.getByRole("heading", { name: "Registries" }).waitFor();
  await new Promise((r) => setTimeout(r, 200));
  console.log(`first screen: JS ${bytes.js} B + CSS ${bytes.css} B = ${bytes.js + bytes.css} B on the wire (brotli)`);

  // Navigation → the first page of tags (50 rows on screen), warm (the assets cached, signed in):
  // the page's own clock, from the start of the navigation to the 50th row in the document.
  const timeTo = async (path: string) => {
    await page.goto(`${server.httpUrl}${path}`);
    await page.locator("table.tags tbody tr").nth(49).waitFor({ state: "attached" });
    return page.evaluate<number>(`(() => {
      const rows = document.querySelectorAll("table.tags tbody tr").length;
      return rows >= 50 ? window.__rowsAt ?? performance.now() : NaN;
    })()`);
  };
  // The moment the rows appear, recorded by the page itself (polling from here would add its round trips).
  await context.addInitScript(`new MutationObserver((_, o) => {
    if (document.querySelectorAll("table.tags tbody tr").length >= 50) { window.__rowsAt = performance.now(); o.disconnect(); }
  }).observe(document, { childList: true, subtree: true });`);
  // Page 100's token: 99 pages on from the first, as the Next button would go.
  let token = "";
  for (let i = 0; i < 99; i++)
    token = (await tags.listTags({ repositoryName: "local/team/big", orderBy: "push_time desc", pageSize: 50, pageToken: token })).nextPageToken;
  const page100 = `/repo/local/team/big?page=${encodeURIComponent(token)}&back=-`;
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const runs = { first: [] as number[], hundredth: [] as number[] };
  for (let i = 0; i < 3; i++) await timeTo("/repo/local/team/big"); // warm-up
  for (let i = 0; i < 15; i++) {
    runs.first.push(await timeTo("/repo/local/team/big"));
    runs.hundredth.push(await timeTo(page100));
  }
  console.log(`navigation → first page of tags (10,000 tags, 50 rows): median ${median(runs.first).toFixed(0)} ms of ${runs.first.length}`);
  console.log(`navigation → page 100 of the same list:               median ${median(runs.hundredth).toFixed(0)} ms of ${runs.hundredth.length}`);
  const api = async (pageToken: string) => {
    const xs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await tags.listTags({ repositoryName: "local/team/big", orderBy: "push_time desc", pageSize: 50, pageToken });
      xs.push(performance.now() - t0);
    }
    return median(xs);
  };
  console.log(`ListTags alone (Connect JSON, loopback): page 1 ${(await api("")).toFixed(1)} ms, page 100 ${(await api(token)).toFixed(1)} ms (medians of 20)`);
  await context.close();
}
