// Identity on /v2/ with auth on: the Docker token flow by hand (GET and POST /auth/token, refresh
// and offline tokens, expired, revoked, tampered, wrong-audience and alg=none JWTs), Basic
// credentials straight on /v2/, skopeo with a password and with a robot's token, a reader who
// pushes (403 DENIED), namespaces and registries kept apart, public pulls, the filtered catalog,
// and the audit events of pushes, tag moves and deletes.
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { RegistryTokens } from "../src/auth/jwt.js";
import { unique } from "./support/clients.js";
import { databaseKinds } from "./support/database.js";
import { ADMIN_TOKEN, basic, bindRole, createAccount, identityClients, startAuthServer, type IdentityClients, type TestAccount } from "./support/identity.js";
import { MediaType, smallImage, type BuiltImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { pullImage, pushImage, skopeoListTags, type RegistryEndpoint } from "./support/skopeo.js";
import type { TestServer } from "./support/server.js";

const skopeoReady = havePeers("test/identity-registry.test.ts (skopeo part)", "skopeo");
const SERVICE = "artifact-service";

interface TokenAnswer {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
  scope?: string;
}

/** The JWT's claims (not verified: the test reads what the server wrote). */
function claims(jwt: string): {
  sub: string;
  aud: string;
  iss: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: { type: string; name: string; actions: string[] }[];
} {
  return JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8")) as ReturnType<typeof claims>;
}

function header(jwt: string): { alg: string; kid: string; typ: string } {
  return JSON.parse(Buffer.from(jwt.split(".")[0]!, "base64url").toString("utf8")) as ReturnType<typeof header>;
}

describe.each(databaseKinds())("identity on /v2/, on %s", (kind) => {
  let server: TestServer;
  let admin: IdentityClients;
  let base: string;
  let registry: string;
  let image: BuiltImage;
  const scratch = mkdtempSync(join(tmpdir(), "artifact-identity-registry-"));

  beforeAll(async () => {
    server = await startAuthServer(kind);
    base = server.httpUrl;
    admin = identityClients(base, ADMIN_TOKEN);
    registry = unique("hosted");
    await admin.registries.createRegistry({ registry: { name: registry, kind: RegistryKind.HOSTED } });
    image = await smallImage("identity");
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  const token = async (query: string, auth?: string): Promise<Response> =>
    fetch(`${base}/auth/token?${query}`, { headers: auth ? { authorization: auth } : {} });
  const form = async (fields: Record<string, string>): Promise<Response> =>
    fetch(`${base}/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields).toString(),
    });
  const v2 = (path: string, init: RequestInit & { jwt?: string; auth?: string } = {}) =>
    fetch(`${base}/v2/${path}`, {
      ...init,
      headers: {
        ...(init.headers as Record<string, string>),
        ...(init.jwt ? { authorization: `Bearer ${init.jwt}` } : init.auth ? { authorization: init.auth } : {}),
      },
    });

  /** A namespace in the hosted registry, with a writer and a reader (users with passwords). */
  async function team(): Promise<{ namespace: string; namespaceId: string; writer: TestAccount; reader: TestAccount; repo: string }> {
    const registryId = (await admin.registries.listRegistries({ query: registry })).registries[0]!.id;
    const ns = await admin.namespaces.createNamespace({ namespace: { registryId, name: unique("team").replace(/-/g, ".") } });
    const writer = await createAccount(admin, base);
    const reader = await createAccount(admin, base);
    await bindRole(admin, writer.id, "writer", { namespaceId: ns.id });
    await bindRole(admin, reader.id, "reader", { namespaceId: ns.id });
    return { namespace: ns.name, namespaceId: ns.id, writer, reader, repo: `${registry}/${ns.name}/app` };
  }

  /** Pushes the test image with a manifest PUT over plain HTTP (skopeo-free), as `auth`. */
  async function putManifest(repo: string, tag: string, auth: { jwt?: string; auth?: string }, built: BuiltImage = image): Promise<Response> {
    for (const blob of [built.manifests[0]!.config, ...built.manifests[0]!.layers]) {
      const bytes = await readFile(blob.path);
      const res = await v2(`${repo}/blobs/uploads/?digest=${blob.digest}`, {
        method: "POST",
        body: bytes,
        headers: { "content-type": "application/octet-stream" },
        ...auth,
      });
      if (res.status !== 201) return res;
    }
    return v2(`${repo}/manifests/${tag}`, { method: "PUT", body: built.bytes, headers: { "content-type": built.mediaType }, ...auth });
  }

  it("challenges an anonymous ping with the token realm and service", async () => {
    const res = await v2("");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe(`Bearer realm="${base}/auth/token",service="${SERVICE}"`);
    expect(await res.json()).toMatchObject({ errors: [{ code: "UNAUTHORIZED" }] });
    // Behind a proxy: the realm follows the Host and X-Forwarded-Proto the client sent (fetch cannot set Host).
    const forwarded = await new Promise<string | undefined>((resolve, reject) => {
      request(`${base}/v2/`, { headers: { "x-forwarded-proto": "https", host: "registry.example.com" } }, (r) => {
        r.resume();
        resolve(r.headers["www-authenticate"]);
      })
        .on("error", reject)
        .end();
    });
    expect(forwarded).toContain('realm="https://registry.example.com/auth/token"');
    const ok = await v2("", { auth: `Bearer ${ADMIN_TOKEN}` });
    expect(ok.status).toBe(200);
  });

  it("GET /auth/token: Basic password, the grant is what was asked ∩ what is allowed, the JWT opens /v2/", async () => {
    const t = await team();
    const scope = `repository:${t.repo}:pull,push`;
    const res = await token(
      `service=${SERVICE}&scope=${encodeURIComponent(scope)}&scope=${encodeURIComponent("registry:catalog:*")}`,
      basic(t.reader.name, t.reader.password!),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as TokenAnswer;
    expect(body.token).toBe(body.access_token);
    expect(body.expires_in).toBe(300);
    expect(Date.parse(body.issued_at)).not.toBeNaN();
    expect(body.refresh_token).toBeUndefined();
    const c = claims(body.token);
    expect(c).toMatchObject({ sub: t.reader.id, aud: SERVICE, iss: SERVICE });
    expect(c.exp - c.iat).toBe(300);
    expect(c.jti).toMatch(/[0-9a-f-]{36}/);
    // The reader asked for push too: it gets pull only, and the catalog.
    expect(c.access).toEqual([
      { type: "repository", name: t.repo, actions: ["pull"] },
      { type: "registry", name: "catalog", actions: ["*"] },
    ]);
    expect(header(body.token)).toMatchObject({ alg: "ES256", typ: "JWT" });
    expect(header(body.token).kid).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // Push something as the writer, then the reader's JWT reads it and is refused a push: 403 DENIED.
    const writerJwt = (
      (await (await token(`service=${SERVICE}&scope=repository:${t.repo}:pull,push`, basic(t.writer.name, t.writer.password!))).json()) as TokenAnswer
    ).token;
    expect(claims(writerJwt).access).toEqual([{ type: "repository", name: t.repo, actions: ["pull", "push"] }]);
    expect((await putManifest(t.repo, "1.0", { jwt: writerJwt })).status).toBe(201);
    const tags = await v2(`${t.repo}/tags/list`, { jwt: body.token });
    expect(await tags.json()).toEqual({ name: t.repo, tags: ["1.0"] });
    const push = await putManifest(t.repo, "2.0", { jwt: body.token });
    expect(push.status).toBe(403);
    const pushBody = (await push.json()) as { errors: { code: string; message: string }[] };
    expect(pushBody.errors[0]!.code).toBe("DENIED");
    expect(pushBody.errors[0]!.message).toContain("push");

    // A token for another repository does not open this one: 401 with the scope to ask for.
    const other = ((await (await token(`scope=repository:${registry}/elsewhere/x:pull`, basic(t.writer.name, t.writer.password!))).json()) as TokenAnswer)
      .token;
    const refused = await v2(`${t.repo}/tags/list`, { jwt: other });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toContain(`scope="repository:${t.repo}:pull"`);
    expect(refused.headers.get("www-authenticate")).toContain('error="insufficient_scope"');

    // Asking without credentials: an empty grant, not an error.
    const anon = (await (await token(`scope=repository:${t.repo}:pull`)).json()) as TokenAnswer;
    expect(claims(anon.token)).toMatchObject({ sub: "", access: [] });
    // A wrong password is refused.
    const wrong = await token(`scope=repository:${t.repo}:pull`, basic(t.reader.name, "not-the-password"));
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ errors: [{ code: "UNAUTHORIZED" }] });
    const badService = await token(`service=other&scope=repository:${t.repo}:pull`);
    expect(badService.status).toBe(400);
  });

  it("offline tokens and refresh: GET offline_token, POST grant_type=password and refresh_token; a revoked refresh token is refused", async () => {
    const t = await team();
    const offline = (await (
      await token(`service=${SERVICE}&offline_token=true&client_id=docker&scope=repository:${t.repo}:pull`, basic(t.writer.name, t.writer.password!))
    ).json()) as TokenAnswer;
    expect(offline.refresh_token).toMatch(/^art_/);

    const posted = await form({
      grant_type: "password",
      username: t.writer.name,
      password: t.writer.password!,
      scope: `repository:${t.repo}:pull,push repository:${t.repo}:delete`,
      service: SERVICE,
      client_id: "containerd",
      access_type: "offline",
    });
    expect(posted.status).toBe(200);
    const pb = (await posted.json()) as TokenAnswer;
    expect(pb.scope).toBe(`repository:${t.repo}:pull,push`);
    expect(pb.refresh_token).toMatch(/^art_/);

    const refreshed = await form({
      grant_type: "refresh_token",
      refresh_token: pb.refresh_token!,
      scope: `repository:${t.repo}:pull`,
      service: SERVICE,
      client_id: "containerd",
    });
    expect(refreshed.status).toBe(200);
    const rb = (await refreshed.json()) as TokenAnswer;
    expect(claims(rb.access_token)).toMatchObject({ sub: t.writer.id, access: [{ type: "repository", name: t.repo, actions: ["pull"] }] });
    expect(rb.refresh_token).toBeUndefined();

    // The refresh token is an API token of the account, named after the client: revoking it stops refreshes.
    const tokens = await admin.tokens.listTokens({ accountId: t.writer.id });
    const refresh = tokens.tokens.find((x) => x.name === "refresh:containerd")!;
    expect(refresh).toBeDefined();
    await admin.tokens.revokeToken({ id: refresh.id });
    const again = await form({ grant_type: "refresh_token", refresh_token: pb.refresh_token!, service: SERVICE });
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ error: "invalid_grant" });
    // An access token already issued keeps working until it expires (docs/identity.md).
    expect((await v2(`${t.repo}/tags/list`, { jwt: rb.access_token })).status).not.toBe(401);

    const badGrant = await form({ grant_type: "client_credentials" });
    expect(badGrant.status).toBe(400);
    expect(await badGrant.json()).toMatchObject({ error: "unsupported_grant_type" });
    const wrongType = await fetch(`${base}/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(wrongType.status).toBe(400);
    expect((await fetch(`${base}/auth/token`, { method: "DELETE" })).status).toBe(405);
  });

  it("refuses expired, tampered, wrong-audience and alg=none JWTs with 401", async () => {
    const t = await team();
    const good = ((await (await token(`scope=repository:${t.repo}:pull`, basic(t.writer.name, t.writer.password!))).json()) as TokenAnswer).token;
    expect((await v2(`${t.repo}/tags/list`, { jwt: good })).status).not.toBe(401);
    const access = claims(good).access;

    // Signed with the service's own key, but expired past the 60 s leeway / for another audience.
    const expired = await new RegistryTokens(server.auth.keys, { issuer: SERVICE, audience: SERVICE, ttlSeconds: -120 }).issue(t.writer.id, access);
    const audience = await new RegistryTokens(server.auth.keys, { issuer: SERVICE, audience: "someone-else", ttlSeconds: 300 }).issue(t.writer.id, access);
    const issuer = await new RegistryTokens(server.auth.keys, { issuer: "someone-else", audience: SERVICE, ttlSeconds: 300 }).issue(t.writer.id, access);
    const [h, p, s] = good.split(".") as [string, string, string];
    const widened = Buffer.from(
      JSON.stringify({ ...claims(good), access: [{ type: "repository", name: t.repo, actions: ["pull", "push", "delete"] }] }),
    ).toString("base64url");
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT", kid: header(good).kid })).toString("base64url")}.${p}.`;
    const hs = `${Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT", kid: header(good).kid })).toString("base64url")}.${p}.${s}`;
    const cases = { expired: expired.token, audience: audience.token, issuer: issuer.token, tampered: `${h}.${widened}.${s}`, none, hs };
    const outcomes: Record<string, [number, string]> = {};
    for (const [name, jwt] of Object.entries(cases)) {
      const res = await v2(`${t.repo}/tags/list`, { jwt });
      const body = (await res.json()) as { errors: { message: string }[] };
      outcomes[name] = [res.status, body.errors[0]!.message];
    }
    expect(outcomes).toEqual({
      expired: [401, expect.stringContaining("expired")],
      audience: [401, expect.stringContaining("aud")],
      issuer: [401, expect.stringContaining("iss")],
      tampered: [401, expect.stringContaining("signature")],
      none: [401, expect.stringContaining("algorithm")],
      hs: [401, expect.stringContaining("algorithm")],
    });
  });

  it("keeps signing after a key rotation and still verifies tokens of the old key", async () => {
    const t = await team();
    const before = ((await (await token(`scope=repository:${t.repo}:pull`, basic(t.writer.name, t.writer.password!))).json()) as TokenAnswer).token;
    const kid = await server.auth.keys.rotate();
    const after = ((await (await token(`scope=repository:${t.repo}:pull`, basic(t.writer.name, t.writer.password!))).json()) as TokenAnswer).token;
    expect(header(after).kid).toBe(kid);
    expect(header(before).kid).not.toBe(kid);
    // 404: past the auth check, to a repository nothing was pushed to yet.
    for (const jwt of [before, after]) expect((await v2(`${t.repo}/tags/list`, { jwt })).status).toBe(404);
    const forged = await new RegistryTokens(server.auth.keys, { issuer: SERVICE, audience: SERVICE, ttlSeconds: 300 }).issue(t.writer.id, claims(after).access);
    expect(header(forged.token).kid).toBe(kid);
  });

  it("takes Basic credentials straight on /v2/ (password or API token); anonymous gets the challenge", async () => {
    const t = await team();
    expect((await putManifest(t.repo, "basic", { auth: basic(t.writer.name, t.writer.password!) })).status).toBe(201);
    expect((await v2(`${t.repo}/manifests/basic`, { auth: basic("anything", t.reader.token), headers: { accept: MediaType.ociManifest } })).status).toBe(200);
    const denied = await v2(`${t.repo}/manifests/basic`, { method: "DELETE", auth: basic(t.writer.name, t.writer.password!) });
    expect(denied.status).toBe(403);
    const deniedBody = (await denied.json()) as { errors: { code: string; message: string }[] };
    expect(deniedBody.errors[0]!.code).toBe("DENIED");
    expect(deniedBody.errors[0]!.message).toContain("needs admin");
    const anonymous = await putManifest(t.repo, "anon", {});
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toContain(`scope="repository:${t.repo}:pull,push"`);
    const wrong = await v2(`${t.repo}/tags/list`, { auth: basic(t.writer.name, "wrong-password-xx") });
    expect(wrong.status).toBe(401);
  });

  it("keeps namespaces and registries apart; anonymous pulls public content and pushes nothing", async () => {
    const a = await team();
    const b = await team();
    expect((await putManifest(a.repo, "1.0", { auth: basic(a.writer.name, a.writer.password!) })).status).toBe(201);
    // b's writer: not in a's namespace.
    expect((await v2(`${a.repo}/tags/list`, { auth: basic(b.writer.name, b.writer.password!) })).status).toBe(403);
    expect((await putManifest(a.repo, "x", { auth: basic(b.writer.name, b.writer.password!) })).status).toBe(403);
    const otherRegistry = unique("hosted");
    await admin.registries.createRegistry({ registry: { name: otherRegistry, kind: RegistryKind.HOSTED } });
    expect((await putManifest(`${otherRegistry}/${a.namespace}/app`, "x", { auth: basic(a.writer.name, a.writer.password!) })).status).toBe(403);

    // Public namespace: anonymous pulls (Basic-less, token-less), and pushes nothing.
    expect((await v2(`${a.repo}/manifests/1.0`, { headers: { accept: MediaType.ociManifest } })).status).toBe(401);
    await admin.namespaces.updateNamespace({ namespace: { id: a.namespaceId, public: true }, updateMask: { paths: ["public"] } });
    const pulled = await v2(`${a.repo}/manifests/1.0`, { headers: { accept: MediaType.ociManifest } });
    expect(pulled.status).toBe(200);
    expect(Buffer.from(await pulled.arrayBuffer()).equals(image.bytes)).toBe(true);
    const anonJwt = ((await (await token(`scope=repository:${a.repo}:pull,push`)).json()) as TokenAnswer).token;
    expect(claims(anonJwt).access).toEqual([{ type: "repository", name: a.repo, actions: ["pull"] }]);
    expect((await v2(`${a.repo}/tags/list`, { jwt: anonJwt })).status).toBe(200);
    const push = await putManifest(a.repo, "anon", { jwt: anonJwt });
    expect(push.status).toBe(401);
  });

  it("mounts a blob only from where the caller may pull", async () => {
    const a = await team();
    const b = await team();
    // An image no other test pushed: its layer is in a's repository only.
    const own = await smallImage("identity-mount");
    expect((await putManifest(a.repo, "1.0", { auth: basic(a.writer.name, a.writer.password!) }, own)).status).toBe(201);
    const layer = own.manifests[0]!.layers[0]!.digest;
    const mount = (repo: string, who: TestAccount, from?: string) =>
      v2(`${repo}/blobs/uploads/?mount=${layer}${from ? `&from=${from}` : ""}`, { method: "POST", auth: basic(who.name, who.password!) });
    // b's writer may not pull from a: no mount (202: upload it yourself), with or without `from`.
    expect((await mount(b.repo, b.writer, a.repo)).status).toBe(202);
    expect((await mount(b.repo, b.writer)).status).toBe(202);
    // a's writer may: the blob is mounted (201).
    const ok = await mount(`${a.repo}-copy`, a.writer, a.repo);
    expect(ok.status).toBe(201);
    expect(ok.headers.get("docker-content-digest")).toBe(layer);
    expect((await mount(`${a.repo}-other`, a.writer)).status).toBe(201);
  });

  it("challenges a mount for pull on its source too, so the token a client fetches lets it mount", async () => {
    const a = await team();
    const own = await smallImage("identity-mount-token");
    expect((await putManifest(a.repo, "1.0", { auth: basic(a.writer.name, a.writer.password!) }, own)).status).toBe(201);
    const layer = own.manifests[0]!.layers[0]!.digest;
    const target = `${a.repo}-mounted`;
    const path = `${target}/blobs/uploads/?mount=${layer}&from=${a.repo}`;
    // Anonymous first, as docker and the conformance suite's client send it.
    const first = await v2(path, { method: "POST" });
    expect(first.status).toBe(401);
    const scope = /scope="([^"]*)"/.exec(first.headers.get("www-authenticate") ?? "")?.[1];
    expect(scope).toBe(`repository:${target}:pull,push repository:${a.repo}:pull`);
    // The challenge's scope copied as one parameter (reggie does so): each scope is granted.
    const answer = await token(`service=artifact-service&scope=${encodeURIComponent(scope!)}`, basic(a.writer.name, a.writer.password!));
    expect(answer.status).toBe(200);
    const jwt = ((await answer.json()) as { token: string }).token;
    expect(claims(jwt).access).toEqual(
      expect.arrayContaining([
        { type: "repository", name: target, actions: ["pull", "push"] },
        { type: "repository", name: a.repo, actions: ["pull"] },
      ]),
    );
    const mounted = await v2(path, { method: "POST", jwt });
    expect(mounted.status).toBe(201);
    expect(mounted.headers.get("docker-content-digest")).toBe(layer);
    // A `from` that is no image name never reaches the header (nothing can break out of its quotes).
    const odd = await v2(`${target}/blobs/uploads/?mount=${layer}&from=${encodeURIComponent('x" evil="1')}`, { method: "POST" });
    expect(odd.status).toBe(401);
    expect(odd.headers.get("www-authenticate")).not.toContain("evil");
  });

  it("filters _catalog by what the caller may see", async () => {
    const a = await team();
    const b = await team();
    for (const t of [a, b]) expect((await putManifest(t.repo, "1.0", { auth: basic(t.writer.name, t.writer.password!) })).status).toBe(201);
    const catalog = async (auth: string) => ((await (await v2("_catalog?n=1000", { auth })).json()) as { repositories: string[] }).repositories;
    // Public namespaces of earlier tests show to everyone; b's namespace is not a's reader's to see.
    const seen = await catalog(basic(a.reader.name, a.reader.password!));
    expect(seen).toContain(a.repo);
    expect(seen).not.toContain(b.repo);
    const all = await catalog(`Bearer ${ADMIN_TOKEN}`);
    expect(all).toEqual(expect.arrayContaining([a.repo, b.repo]));
    const jwt = ((await (await token("scope=registry:catalog:*", basic(b.reader.name, b.reader.password!))).json()) as TokenAnswer).token;
    const viaJwt = ((await (await v2("_catalog?n=1000", { jwt })).json()) as { repositories: string[] }).repositories;
    expect(viaJwt).toContain(b.repo);
    expect(viaJwt).not.toContain(a.repo);
    // Anonymous: only public repositories, and the JWT without the catalog grant is sent for a better one.
    const anon = (
      (await (await v2("_catalog?n=1000", { jwt: ((await (await token("scope=registry:catalog:*")).json()) as TokenAnswer).token })).json()) as {
        repositories: string[];
      }
    ).repositories;
    expect(anon).not.toContain(a.repo);
    expect(anon).not.toContain(b.repo);
  });

  it("records pushes, tag moves and deletes on /v2/ in the audit log", async () => {
    const t = await team();
    const admin2 = await createAccount(admin, base);
    await bindRole(admin, admin2.id, "admin", { namespaceId: t.namespaceId });
    const as = { auth: basic(t.writer.name, t.writer.password!) };
    expect((await putManifest(t.repo, "1.0", as)).status).toBe(201);
    // Move 1.0 to another manifest (same content, other annotations): a tag move.
    const moved = JSON.parse(image.bytes.toString("utf8")) as Record<string, unknown>;
    moved.annotations = { moved: "yes" };
    const movedBytes = Buffer.from(JSON.stringify(moved));
    const res = await v2(`${t.repo}/manifests/1.0`, { method: "PUT", body: movedBytes, headers: { "content-type": image.mediaType }, ...as });
    expect(res.status).toBe(201);
    const del = await v2(`${t.repo}/manifests/1.0`, { method: "DELETE", auth: basic(admin2.name, admin2.password!) });
    expect(del.status).toBe(202);
    await new Promise((r) => setTimeout(r, 200)); // events are written when the response closes
    const events = await admin.audit.listAuditEvents({ resource: `${t.repo}:1.0`, orderBy: "event_time", pageSize: 10 });
    expect(events.auditEvents.map((e) => [e.action, e.actorName])).toEqual([
      ["tag.push", t.writer.name],
      ["tag.move", t.writer.name],
      ["tag.delete", admin2.name],
    ]);
    expect(events.auditEvents[0]!).toMatchObject({ clientAddress: "127.0.0.1", detail: image.digest });
    expect(events.auditEvents[0]!.requestId).not.toBe("");
  });

  describe.skipIf(!skopeoReady)("skopeo", () => {
    it("pushes with --creds user:password, pulls with a robot token, and a reader cannot push", async () => {
      const t = await team();
      const endpoint = (creds?: { username: string; password: string }): RegistryEndpoint => ({ host: `127.0.0.1:${server.http.port}`, credentials: creds });
      const pushed = await pushImage(image, endpoint({ username: t.writer.name, password: t.writer.password! }), t.repo, "1.0");
      expect(pushed).toBe(image.digest);

      const robot = await createAccount(admin, base, { robot: true });
      await bindRole(admin, robot.id, "reader", { namespaceId: t.namespaceId });
      const pulled = await pullImage(endpoint({ username: robot.name, password: robot.token }), t.repo, "1.0", {
        dir: join(scratch, unique("pull")),
        transport: "oci",
      });
      expect(pulled.digest).toBe(image.digest);
      expect(await skopeoListTags(`docker://127.0.0.1:${server.http.port}/${t.repo}`, { creds: { username: robot.name, password: robot.token } })).toEqual([
        "1.0",
      ]);

      const refused = await pushImage(image, endpoint({ username: t.reader.name, password: t.reader.password! }), t.repo, "2.0").then(
        () => "pushed",
        (err: Error) => err.message,
      );
      expect(refused).toMatch(/denied/i);
      const wrong = await pullImage(endpoint({ username: t.writer.name, password: "wrong-password" }), t.repo, "1.0", {
        dir: join(scratch, unique("pull")),
        transport: "oci",
      }).then(
        () => "pulled",
        (err: Error) => err.message,
      );
      expect(wrong).toMatch(/unauthorized|authentication required|invalid/i);
    });
  });
});
