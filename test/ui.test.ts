// The web UI end to end: Debian's Chromium (playwright-core) against a real server serving the
// built UI on its own port. Images pushed with skopeo are found by search, by browsing and by the
// jump box; the image page shows what skopeo pushed (digest, layers with sizes, an index's
// platforms); the tag list sorts and pages with the API's page tokens, and a reload keeps the
// place; a tag deleted in the UI is gone from /v2/; a sync against a local docker-registry drives
// the progress bar to its end; a reader signed in with a password sees no delete button and is
// refused (403) when the call is forced; an expired session goes back to sign-in. axe-core checks
// every screen (no serious or critical violation), and no screen trips the Content-Security-Policy.
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { Role, RoleScope } from "../gen/artifact/v1/role_binding_pb.js";
import { CHROMIUM, CHROMIUM_ARGS, haveChromium } from "./support/browser.js";
import { unique } from "./support/clients.js";
import { ADMIN_BASIC, ADMIN_TOKEN } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { startDistribution, type Distribution } from "./support/distribution.js";
import { bindRole, createAccount, identityClients, type IdentityClients } from "./support/identity.js";
import { multiPlatformIndex, smallImage, type BuiltImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { seedRepositories } from "./support/registry-seed.js";
import { makeImage, RegistryClient, type PushedImage } from "./support/registry-client.js";
import { pushImage } from "./support/skopeo.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { seriousA11yViolations, signInWithPassword, signInWithToken } from "./support/ui.js";

/** An attribute of each element the locator finds, in order. */
const attrs = async (elements: Locator, name: string): Promise<(string | null)[]> => Promise.all((await elements.all()).map((e) => e.getAttribute(name)));

const ready = haveChromium("test/ui.test.ts") && havePeers("test/ui.test.ts", "skopeo", "docker-registry");

describe.skipIf(!ready).each(databaseKinds())("the web UI on %s", (kind) => {
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let admin: IdentityClients;
  let upstream: Distribution;
  let small: BuiltImage;
  let index: BuiltImage;
  /** A signature of app:1.0 (an OCI 1.1 artifact whose subject is it). */
  let signature: PushedImage;
  const SIGNATURE_TYPE = "application/vnd.example.signature.v1";
  const registry = unique("ui");
  const app = `${registry}/team/app`;
  const multi = `${registry}/team/multi`;
  const many = `${registry}/team/many`;
  /** Content-Security-Policy reports and page errors of every page of the suite. */
  const problems: string[] = [];
  /** Screens axe checked, and what it found. */
  const checked = new Map<string, unknown[]>();

  beforeAll(async () => {
    [small, index] = await Promise.all([smallImage("ui"), multiPlatformIndex("ui")]);
    server = await startTestServer(kind);
    admin = identityClients(server.httpUrl, ADMIN_TOKEN);
    await admin.registries.createRegistry({ registry: { name: registry, kind: RegistryKind.HOSTED } });
    const endpoint = { host: `127.0.0.1:${server.http.port}` };
    await pushImage(small, endpoint, app, "1.0");
    await pushImage(small, endpoint, app, "keep");
    await pushImage(index, endpoint, multi, "1.0");
    await pushImage(small, endpoint, many, "base");
    const v2 = new RegistryClient(server.httpUrl);
    signature = makeImage({ artifactType: SIGNATURE_TYPE, layerBytes: 64, subject: { mediaType: small.mediaType, digest: small.digest, size: small.size } });
    for (const blob of signature.blobs) await v2.uploadBlob(app, blob);
    expect((await v2.putManifest(app, signature.digest, signature.bytes, signature.mediaType)).status).toBe(201);
    // 60 more tags, one after another: pushed in name order, so the newest is the last name.
    const repo = await admin.repositories.lookupRepository({ name: many });
    for (let i = 0; i < 60; i++) {
      await admin.tags.createTag({ tag: { repositoryId: repo.id, name: `t-${String(i).padStart(3, "0")}`, digest: small.digest } });
    }
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await upstream?.stop();
  });

  async function newPage(): Promise<Page> {
    const page = await context.newPage();
    page.on("console", (m) => {
      if (/Content[- ]Security[- ]Policy/i.test(m.text())) problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    return page;
  }

  async function a11y(page: Page, screen: string): Promise<void> {
    const found = await seriousA11yViolations(page);
    checked.set(screen, found);
    expect(found, `${screen}: ${JSON.stringify(found, null, 1)}`).toEqual([]);
  }

  async function admin_(path = "/"): Promise<Page> {
    const page = await newPage();
    await signInWithToken(page, server.httpUrl, ADMIN_TOKEN, path);
    return page;
  }

  it("signs in with an API token on the sign-in screen and lands on the page it was asked for", async () => {
    const page = await newPage();
    await page.goto(`${server.httpUrl}/browse/${registry}`);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await a11y(page, "sign-in");
    await page.getByRole("radio", { name: "API token" }).check();
    await page.getByLabel("Token", { exact: true }).fill("art_not-a-valid-token-0123456789abcdefghijkl");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").innerText()).toMatch(/Signed out|sign in/i);
    await page.getByLabel("Token", { exact: true }).fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: `Namespaces of ${registry}` }).waitFor();
    expect(page.url()).toBe(`${server.httpUrl}/browse/${registry}`);
    // The token is in this tab's sessionStorage, never in the address.
    expect(page.url()).not.toContain(ADMIN_TOKEN);
    await page.getByRole("link", { name: "admin" }).click();
    await page.getByRole("heading", { name: "Who am I" }).waitFor();
    expect(await page.locator("main").innerText()).toMatch(/admin — everywhere/);
    await a11y(page, "who am I");
    await page.close();
  });

  it("browses registries → namespaces → repositories → tags to the image page, which shows what skopeo pushed", async () => {
    const page = await admin_("/");
    await page.getByRole("heading", { name: "Registries" }).waitFor();
    await a11y(page, "registries");
    await page.getByRole("link", { name: registry, exact: true }).click();
    await page.getByRole("link", { name: "team", exact: true }).click();
    await page.getByRole("heading", { name: `Repositories in ${registry}/team` }).waitFor();
    await a11y(page, "repositories");
    await page.getByRole("link", { name: "app", exact: true }).click();
    await page.getByRole("heading", { name: `Tags of ${app}` }).waitFor();
    await a11y(page, "tags");
    await page.getByRole("link", { name: "1.0", exact: true }).click();
    await page.getByRole("heading", { name: `${app}:1.0` }).waitFor();
    expect(page.url()).toBe(`${server.httpUrl}/image/${app}:1.0`);
    await checkSingleImage(page, small);
    // Its referrers, read with ImageService.ListReferrers: the signature, a link to its own page.
    const referrer = page.locator("h2:text-is('Referrers') + table tbody tr");
    await expect.poll(() => referrer.count()).toBe(1);
    expect(await referrer.locator("td").first().innerText()).toBe(SIGNATURE_TYPE);
    expect(await referrer.getByRole("link").getAttribute("href")).toBe(`/image/${app}@${encodeURIComponent(signature.digest)}`);
    await a11y(page, "image");
    await page.close();
  });

  async function checkSingleImage(page: Page, image: BuiltImage) {
    const manifest = image.manifests[0]!;
    await page.locator("table.layers").waitFor();
    expect(await page.locator("dl.facts").first().innerText()).toContain(image.digest);
    const layers = page.locator("table.layers tbody tr");
    expect(await attrs(layers.locator("[data-digest]"), "data-digest")).toEqual(manifest.layers.map((l) => l.digest));
    expect(await attrs(layers.locator("[data-bytes]"), "data-bytes")).toEqual(manifest.layers.map((l) => String(l.size)));
    // The config, read through the API's GetBlob stream.
    await page.getByRole("heading", { name: "Config" }).waitFor();
    await expect.poll(() => page.locator("main").innerText()).toMatch(/Platform\s+linux\/amd64/);
    // The pull commands name this server and the image.
    expect(await page.locator("ul.pulls").innerText()).toContain(`docker pull 127.0.0.1:${server.http.port}/${app}:1.0`);
    // The tags on the same digest: both tags of this repository.
    await expect.poll(() => page.locator("ul.inline-list").innerText()).toMatch(/1\.0[\s\S]*keep/);
    await page.getByText("Raw manifest (JSON)").click();
    expect(JSON.parse(await page.locator("details.raw pre").innerText())).toEqual(JSON.parse(manifest.bytes.toString("utf8")));
  }

  it("finds an image by search, and by the jump box", async () => {
    const page = await admin_("/search");
    await page.getByLabel("Image reference contains").fill("team/app:1.");
    await page.getByRole("link", { name: `${app}:1.0` }).click();
    await page.getByRole("heading", { name: `${app}:1.0` }).waitFor();
    await page.goto(`${server.httpUrl}/search?q=${encodeURIComponent("team/app:1.")}`);
    await page.getByRole("link", { name: `${app}:1.0` }).waitFor();
    await a11y(page, "search");
    await page.getByLabel("Go to image").fill(`${multi}:1.0`);
    await page.getByLabel("Go to image").press("Enter");
    await page.getByRole("heading", { name: `${multi}:1.0` }).waitFor();
    expect(page.url()).toBe(`${server.httpUrl}/image/${multi}:1.0`);
    await page.close();
  });

  it("shows an index's platforms with their digests, each a link to its image page", async () => {
    const page = await admin_(`/image/${multi}:1.0`);
    await page.locator("table.platforms").waitFor();
    await a11y(page, "image (index)");
    const rows = page.locator("table.platforms tbody tr");
    expect(await rows.locator("td:first-child").allInnerTexts()).toEqual(["linux/amd64", "linux/arm64/v8"]);
    expect(await attrs(rows.locator("[data-digest]"), "data-digest")).toEqual(index.manifests.map((m) => m.digest));
    await page.getByRole("link", { name: "linux/arm64/v8" }).click();
    await page.locator("table.layers").waitFor();
    expect(page.url()).toBe(`${server.httpUrl}/image/${multi}@${encodeURIComponent(index.manifests[1]!.digest)}`);
    expect(await attrs(page.locator("table.layers [data-digest]"), "data-digest")).toEqual(index.manifests[1]!.layers.map((l) => l.digest));
    await page.close();
  });

  it("sorts the tag list by push time and by name, pages with page tokens, and a reload keeps the page", async () => {
    const page = await admin_(`/repo/${many}`);
    const names = () => page.locator("table.tags tbody tr td:first-child").allInnerTexts();
    await page.locator("table.tags").waitFor();
    // Newest push first by default: the last of the 60.
    expect((await names()).slice(0, 3)).toEqual(["t-059", "t-058", "t-057"]);
    expect(await names()).toHaveLength(50);
    await page.getByLabel("Sort").selectOption({ label: "Name A→Z" });
    await expect.poll(async () => (await names()).slice(0, 3)).toEqual(["base", "t-000", "t-001"]);
    expect(await page.getByRole("navigation", { name: "Pages" }).innerText()).toMatch(/Page 1 · 50 of 61/);
    await page.getByRole("button", { name: "Next →" }).click();
    await expect.poll(names).toEqual(Array.from({ length: 11 }, (_, i) => `t-${String(49 + i).padStart(3, "0")}`));
    expect(new URL(page.url()).searchParams.get("page")).toBeTruthy();
    await page.reload();
    await expect.poll(names).toEqual(Array.from({ length: 11 }, (_, i) => `t-${String(49 + i).padStart(3, "0")}`));
    await page.getByRole("button", { name: "← Previous" }).click();
    await expect.poll(async () => (await names()).slice(0, 2)).toEqual(["base", "t-000"]);
    // Search within the repository's tags.
    await page.getByLabel("Search tags").fill("t-05");
    await expect.poll(names).toEqual(Array.from({ length: 10 }, (_, i) => `t-05${i}`));
    await page.close();
  });

  it("deletes a tag after a confirmation that names it and its digest; /v2/ then answers 404 for it", async () => {
    const page = await admin_(`/image/${app}:1.0`);
    await page.getByRole("button", { name: "Delete tag" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    expect(await dialog.innerText()).toContain(`${app}:1.0`);
    expect(await dialog.innerText()).toContain(small.digest);
    await a11y(page, "delete confirmation");
    // Cancel first: nothing goes.
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect((await fetch(`${server.httpUrl}/v2/${app}/manifests/1.0`, { method: "HEAD", headers: { authorization: ADMIN_BASIC } })).status).toBe(200);
    await page.getByRole("button", { name: "Delete tag" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete tag" }).click();
    await page.getByRole("heading", { name: `Tags of ${app}` }).waitFor();
    await expect.poll(() => page.locator("table.tags tbody td:first-child").allInnerTexts()).toEqual(["keep"]);
    const gone = await fetch(`${server.httpUrl}/v2/${app}/manifests/1.0`, { headers: { authorization: ADMIN_BASIC } });
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { errors: { code: string }[] }).errors[0]!.code).toMatch(/MANIFEST_UNKNOWN|NAME_UNKNOWN/);
    await page.close();
  });

  it("signs a reader in with a password: no delete button anywhere, a forced delete is refused with 403, sign-out revokes the session", async () => {
    const reader = await createAccount(admin, server.httpUrl);
    await bindRole(admin, reader.id, "reader", { global: true });
    const page = await newPage();
    await signInWithPassword(page, server.httpUrl, reader.name, reader.password!, `/repo/${app}`);
    await page.locator("table.tags").waitFor();
    expect(await page.getByRole("button", { name: /Delete/ }).count()).toBe(0);
    await page.goto(`${server.httpUrl}/image/${app}:keep`);
    await page.locator("table.layers").waitFor();
    expect(await page.getByRole("button", { name: /Delete/ }).count()).toBe(0);
    await page.goto(`${server.httpUrl}/`);
    await page.getByRole("link", { name: registry, exact: true }).waitFor();
    expect(await page.getByRole("button", { name: /New registry|Delete|Edit/ }).count()).toBe(0);
    expect(await page.getByRole("link", { name: /Garbage collection|Audit log|Accounts/ }).count()).toBe(0);
    // The call the missing button would make, forced from the page with its own session.
    const tag = await admin.tags.lookupTag({ name: `${app}:keep` });
    const forced = await page.evaluate<{ status: number; body: { code: string }; token: string }>(`(async () => {
      const { token } = JSON.parse(sessionStorage.getItem("artifact.session"));
      const res = await fetch("/artifact.v1.TagService/DeleteTag", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer " + token },
        body: JSON.stringify({ id: ${JSON.stringify(tag.id)} }),
      });
      return { status: res.status, body: await res.json(), token };
    })()`);
    expect(forced.status).toBe(403);
    expect(forced.body.code).toBe("permission_denied");
    expect((await admin.tags.getTag({ id: tag.id })).name).toBe("keep");
    // The password sign-in left one short-lived session token and no live refresh token.
    const tokens = (await admin.tokens.listTokens({ accountId: reader.id })).tokens;
    expect(
      tokens
        .filter((t) => !t.revokeTime)
        .map((t) => t.name)
        .sort(),
    ).toEqual(["test", "web-ui session"]);
    expect(tokens.find((t) => t.name === "web-ui session")?.expireTime).toBeDefined();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    expect(await page.evaluate<string | null>(`sessionStorage.getItem("artifact.session")`)).toBeNull();
    const after = await fetch(`${server.httpUrl}/v1/whoami`, { headers: { authorization: `Bearer ${forced.token}` } });
    expect(after.status).toBe(401);
    await page.close();
  });

  it("shows the next session in the same tab nothing the previous one read", async () => {
    // Signed out and in again without loading the page again: the app's query cache lives on, so
    // what the admin's session read (a registry the next account may not see) must be gone from it.
    const other = unique("ui-other");
    const own = await admin.registries.createRegistry({ registry: { name: unique("ui-own"), kind: RegistryKind.HOSTED } });
    await admin.registries.createRegistry({ registry: { name: other, kind: RegistryKind.HOSTED } });
    const scoped = await createAccount(admin, server.httpUrl);
    await bindRole(admin, scoped.id, "reader", { registryId: own.id });
    const page = await newPage();
    await signInWithToken(page, server.httpUrl, ADMIN_TOKEN, "/");
    await page.getByRole("link", { name: other, exact: true }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByLabel("User name").fill(scoped.name);
    await page.getByRole("textbox", { name: "Password" }).fill(scoped.password!);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("header.top").waitFor();
    await page.getByRole("link", { name: own.name, exact: true }).waitFor();
    expect(await page.getByRole("link", { name: other, exact: true }).count()).toBe(0);
    expect(await page.getByRole("link", { name: registry, exact: true }).count()).toBe(0);
    await page.close();
  });

  it("goes back to sign-in when the session's token stops working", async () => {
    const { token, secret } = await admin.tokens.createToken({ name: "ui-expiring" });
    const page = await newPage();
    await signInWithToken(page, server.httpUrl, secret, "/");
    await page.getByRole("link", { name: registry, exact: true }).waitFor();
    await admin.tokens.revokeToken({ id: token!.id });
    await page.getByRole("link", { name: registry, exact: true }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.close();
  });

  it("tests a REMOTE registry's connection and syncs it with a live progress bar that reaches its end", async () => {
    upstream = await startDistribution();
    const repos = Array.from({ length: 12 }, (_, i) => `proj/app-${i}`);
    await seedRepositories(upstream, small, { repos, tags: ["1.0", "latest"] });
    const remote = unique("mirror");
    await admin.registries.createRegistry({ registry: { name: remote, kind: RegistryKind.REMOTE, url: upstream.url } });
    const page = await admin_(`/browse/${remote}`);
    await page.getByRole("link", { name: "Test connection & sync" }).click();
    await page.getByRole("heading", { name: `Sync ${remote}` }).waitFor();
    await page.getByRole("button", { name: "Test connection" }).click();
    await expect.poll(() => page.locator("main").innerText()).toMatch(/Reachable\s+yes/);
    await page.getByRole("button", { name: "Start sync" }).click();
    const bar = page.locator("progress#sync-bar");
    await bar.waitFor();
    await page.getByText("Sync finished.").waitFor();
    expect(await bar.getAttribute("value")).toBe(await bar.getAttribute("max"));
    expect(await bar.getAttribute("max")).toBe(String(repos.length));
    const report = await page.getByTestId("sync-report").innerText();
    expect(report).toMatch(new RegExp(`Repositories\\s+${repos.length} of ${repos.length}`));
    expect(report).toMatch(new RegExp(`Tags added\\s+${repos.length * 2}`));
    expect(report).toMatch(/Errors\s+0/);
    await a11y(page, "sync");
    // What the sync brought in is browsable.
    await page.getByRole("link", { name: remote }).click();
    await page.getByRole("link", { name: "proj", exact: true }).click();
    await page.getByRole("link", { name: "app-0", exact: true }).waitFor();
    await page.close();
  });

  it("creates, edits and deletes a registry, a namespace and a repository, each delete after a confirmation", async () => {
    const name = unique("crud");
    const page = await admin_("/");
    /** Fills the open dialog's fields and presses its button. */
    const submit = async (fields: Record<string, string>, button: string) => {
      const dialog = page.getByRole("dialog");
      for (const [label, value] of Object.entries(fields)) await dialog.getByLabel(label, { exact: true }).fill(value);
      await dialog.getByRole("button", { name: button, exact: true }).click();
      await dialog.waitFor({ state: "detached" });
    };
    const cell = (text: string) => page.getByRole("cell", { name: text, exact: true });

    await page.getByRole("button", { name: "New registry" }).click();
    await submit({ Name: name, Description: "made in the UI" }, "Create");
    await page.getByRole("link", { name, exact: true }).waitFor();
    await page.getByRole("button", { name: `Edit registry ${name}` }).click();
    await submit({ Description: "edited in the UI" }, "Save");
    await cell("edited in the UI").waitFor();
    const created = await admin.registries.lookupRegistry({ name });
    expect([created.kind, created.description]).toEqual([RegistryKind.HOSTED, "edited in the UI"]);

    await page.getByRole("link", { name, exact: true }).click();
    await page.getByRole("button", { name: "New namespace" }).click();
    await submit({ Name: "team", Description: "a team" }, "Create");
    await page.getByRole("button", { name: "Edit namespace team" }).click();
    await submit({ Description: "the team" }, "Save");
    await cell("the team").waitFor();
    expect((await admin.namespaces.lookupNamespace({ name: `${name}/team` })).description).toBe("the team");

    await page.getByRole("link", { name: "team", exact: true }).click();
    await page.getByRole("button", { name: "New repository" }).click();
    await submit({ Name: "app", Description: "an app" }, "Create");
    // A new repository opens its (empty) tag list; back to the namespace for the rest.
    await page.getByRole("heading", { name: `Tags of ${name}/team/app` }).waitFor();
    await page.getByRole("link", { name: "team", exact: true }).click();
    await page.getByRole("button", { name: "Edit repository app" }).click();
    await submit({ Description: "the app" }, "Save");
    await cell("the app").waitFor();
    expect((await admin.repositories.lookupRepository({ name: `${name}/team/app` })).description).toBe("the app");

    // Deletes, innermost first; each names what goes before it goes.
    await page.getByRole("button", { name: "Delete repository app" }).click();
    await page.getByRole("dialog").getByText(`${name}/team/app`).first().waitFor();
    await page.getByRole("dialog").getByRole("button", { name: "Delete", exact: true }).click();
    await page.getByText("the app").waitFor({ state: "detached" });
    await expect(admin.repositories.lookupRepository({ name: `${name}/team/app` })).rejects.toMatchObject({ code: Code.NotFound });

    await page.goto(`${server.httpUrl}/browse/${name}`);
    await page.getByRole("button", { name: "Delete namespace team" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete", exact: true }).click();
    await page.getByText("the team").waitFor({ state: "detached" });
    await expect(admin.namespaces.lookupNamespace({ name: `${name}/team` })).rejects.toMatchObject({ code: Code.NotFound });

    await page.goto(`${server.httpUrl}/`);
    await page.getByRole("button", { name: `Delete registry ${name}` }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete registry", exact: true }).click();
    await page.getByRole("link", { name, exact: true }).waitFor({ state: "detached" });
    await expect(admin.registries.lookupRegistry({ name })).rejects.toMatchObject({ code: Code.NotFound });
    await page.close();
  });

  it("runs garbage collection as a dry run first, then for real after a confirmation", async () => {
    const page = await admin_("/admin/gc");
    await page.getByRole("heading", { name: "Garbage collection" }).waitFor();
    expect(await page.getByRole("button", { name: "Collect garbage" }).isDisabled()).toBe(true);
    await page.getByRole("button", { name: "Dry run" }).click();
    await page.getByRole("heading", { name: "Dry run: what would go" }).waitFor();
    await a11y(page, "garbage collection");
    await page.getByRole("button", { name: "Collect garbage" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Collect" }).click();
    await page.getByRole("heading", { name: "Collected" }).waitFor();
    await page.close();
  });

  it("makes a robot, gives it a token that works, and binds it a role on a namespace named as people write it", async () => {
    const robot = unique("robot").replace(/-/g, ".");
    const page = await admin_("/admin/accounts");
    await page.getByRole("button", { name: "New account" }).click();
    await page.getByRole("dialog").getByLabel("Name", { exact: true }).fill(robot);
    await page.getByRole("dialog").getByLabel("Kind", { exact: true }).selectOption({ label: "Robot (CI, API tokens only)" });
    await page.getByRole("dialog").getByRole("button", { name: "Create" }).click();
    await page.getByRole("cell", { name: robot, exact: true }).waitFor();
    await page.goto(`${server.httpUrl}/tokens`);
    await page.getByRole("button", { name: "New token" }).click();
    await page
      .getByRole("dialog")
      .getByLabel("For account", { exact: true })
      .selectOption({ label: `${robot} (robot)` });
    await page.getByRole("dialog").getByLabel("What it is for", { exact: true }).fill("ci-deploy");
    await page.getByRole("dialog").getByRole("button", { name: "Create" }).click();
    const secret = await page.locator(".notice code").innerText();
    expect(secret).toMatch(/^art_/);
    const who = (await (await fetch(`${server.httpUrl}/v1/whoami`, { headers: { authorization: `Bearer ${secret}` } })).json()) as {
      account: { name: string };
    };
    expect(who.account.name).toBe(robot);
    await page.goto(`${server.httpUrl}/admin/bindings`);
    await page.getByRole("button", { name: "New binding" }).click();
    await page.getByRole("dialog").getByLabel("Account", { exact: true }).selectOption({ label: robot });
    await page.getByRole("dialog").getByLabel("Role", { exact: true }).selectOption({ label: "writer (push)" });
    await page.getByRole("dialog").getByLabel("Where", { exact: true }).selectOption({ label: "one namespace" });
    await page.getByRole("dialog").getByLabel("Namespace (registry/namespace)", { exact: true }).fill(`${registry}/team`);
    await page.getByRole("dialog").getByRole("button", { name: "Create" }).click();
    await page.getByRole("row", { name: new RegExp(`${robot.replace(/\./g, "\\.")}.*writer.*namespace ${registry}/team`) }).waitFor();
    const namespace = await admin.namespaces.lookupNamespace({ name: `${registry}/team` });
    const bindings = await admin.roleBindings.listRoleBindings({ scopeId: namespace.id, scope: RoleScope.NAMESPACE });
    expect(bindings.roleBindings.map((b) => [b.accountName, b.role])).toContainEqual([robot, Role.WRITER]);
    await page.close();
  });

  it.each([
    ["/tokens", "API tokens"],
    ["/admin/accounts", "Accounts"],
    ["/admin/bindings", "Role bindings"],
    ["/admin/audit", "Audit log"],
  ])("opens %s from a deep link, and axe finds nothing serious there", async (path, heading) => {
    const page = await admin_(path);
    await page.getByRole("heading", { name: heading }).waitFor();
    await page.locator("table").first().waitFor();
    await a11y(page, heading);
    await page.close();
  });

  it("works on a narrow screen: the menu folds behind a button", async () => {
    const narrow = await browser.newContext({ viewport: { width: 360, height: 740 } });
    const page = await narrow.newPage();
    await signInWithToken(page, server.httpUrl, ADMIN_TOKEN, `/repo/${many}`);
    await page.locator("table.tags").waitFor();
    expect(await page.getByRole("link", { name: "Audit log" }).isVisible()).toBe(false);
    await page.getByRole("button", { name: "Menu" }).click();
    expect(await page.getByRole("link", { name: "Audit log" }).isVisible()).toBe(true);
    // Nothing wider than the screen.
    expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(360);
    await a11y(page, "tags (narrow)");
    await narrow.close();
  });

  it("tripped no Content-Security-Policy rule and threw no page error on any screen", () => {
    expect(checked.size).toBeGreaterThanOrEqual(10);
    expect(problems).toEqual([]);
  });
});
