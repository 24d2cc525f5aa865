// The seed's REST paths, as written, with plain fetch against a real server on every
// database kind: the google.api.http rules of the catalog protos, their query parameters,
// and every error a client can cause, with the status the Connect protocol gives its code.
import net from "node:net";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { adminFetch, adminInterceptor } from "./support/credentials.js";
import { databaseKinds, emptyCatalog } from "./support/database.js";
import { LogSink } from "./support/fuzz/watch.js";
import { startTestServer, type TestServer } from "./support/server.js";

/** A REST answer's JSON: a resource, a list page or an error. The fields the tests read are optional: which ones an answer has is what they assert. */
interface Json {
  [field: string]: unknown;
  id?: string;
  name?: string;
  etag?: string;
  totalSize?: number;
  nextPageToken?: string;
  registries?: Json[];
  namespaces?: Json[];
  repositories?: Json[];
  tags?: Json[];
  code?: string;
  message?: string;
}
interface Reply {
  status: number;
  headers: Headers;
  json: Json;
}

const DIGEST = `sha256:${"ab".repeat(32)}`;
const MISSING = "00000000-0000-4000-8000-000000000000";

describe.each(databaseKinds())("REST on %s", (kind) => {
  let server: TestServer;
  const logs = new LogSink();
  beforeAll(async () => {
    server = await startTestServer(kind, { log: logs.logger });
  });
  afterAll(() => server?.stop());
  beforeEach(() => emptyCatalog(server.database));

  async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] ??= "application/json";
    }
    const res = await adminFetch(server.httpUrl + path, init);
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Json) : {} };
  }
  const ok = async (method: string, path: string, body?: unknown): Promise<Json> => {
    const r = await call(method, path, body);
    expect(r.status, `${method} ${path}: ${JSON.stringify(r.json)}`).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/json");
    return r.json;
  };
  const fails = async (status: number, code: string, method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
    const r = await call(method, path, body, headers);
    expect(r.status, `${method} ${path}: ${JSON.stringify(r.json)}`).toBe(status);
    expect(r.json.code).toBe(code);
    expect(typeof r.json.message).toBe("string");
    return r;
  };

  /** registry → namespace → repository → tag, all over REST. REMOTE, because a HOSTED registry only tags pushed manifests. */
  async function tree() {
    const registry = await ok("POST", "/v1/registries", { name: "mirror", kind: "REGISTRY_KIND_REMOTE", url: "http://127.0.0.1:1" });
    const namespace = await ok("POST", "/v1/namespaces", { registryId: registry.id, name: "team" });
    const repository = await ok("POST", "/v1/repositories", { namespace_id: namespace.id, name: "app" });
    const tag = await ok("POST", "/v1/tags", { repositoryId: repository.id, name: "1.0", digest: DIGEST, sizeBytes: "1234" });
    return { registry, namespace, repository, tag };
  }

  it("registries: POST, GET, PUT, GET list, DELETE as the seed writes them", async () => {
    const created = await ok("POST", "/v1/registries", { name: "local", kind: "REGISTRY_KIND_HOSTED", description: "first" });
    expect(created).toMatchObject({ name: "local", kind: "REGISTRY_KIND_HOSTED", description: "first", etag: "1" });
    expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.createTime).toMatch(/^\d{4}-\d\d-\d\dT/);

    expect(await ok("GET", `/v1/registries/${created.id}`)).toEqual(created);

    const updated = await ok("PUT", `/v1/registries/${created.id}?update_mask=description`, { name: "renamed", description: "second" });
    expect(updated).toMatchObject({ id: created.id, name: "local", description: "second", etag: "2" });
    const both = await ok("PUT", `/v1/registries/${created.id}?update_mask=name,description`, { name: "renamed", description: "third" });
    expect(both).toMatchObject({ name: "renamed", description: "third", etag: "3" });

    const list = await ok("GET", "/v1/registries");
    expect(list).toMatchObject({ totalSize: 1, registries: [{ id: created.id, name: "renamed" }] });

    expect(await ok("DELETE", `/v1/registries/${created.id}`)).toEqual({});
    await fails(404, "not_found", "GET", `/v1/registries/${created.id}`);
  });

  it("namespaces, repositories and tags: every seed path and the nested list bindings", async () => {
    const { registry, namespace, repository, tag } = await tree();
    expect(namespace).toMatchObject({ registryId: registry.id, name: "team" });
    expect(repository).toMatchObject({ namespaceId: namespace.id, name: "app" });
    expect(tag).toMatchObject({ repositoryId: repository.id, name: "1.0", digest: DIGEST, sizeBytes: "1234" });

    expect(await ok("GET", `/v1/namespaces/${namespace.id}`)).toEqual(namespace);
    expect(await ok("GET", `/v1/repositories/${repository.id}`)).toEqual(repository);
    expect(await ok("GET", `/v1/tags/${tag.id}`)).toEqual(tag);

    expect(await ok("PUT", `/v1/namespaces/${namespace.id}`, { name: "team", description: "ns" })).toMatchObject({ description: "ns", etag: "2" });
    expect(await ok("PUT", `/v1/repositories/${repository.id}?update_mask=description`, { description: "repo" })).toMatchObject({
      name: "app",
      description: "repo",
    });
    expect(
      await ok("PUT", `/v1/tags/${tag.id}?update_mask=media_type,size_bytes`, { mediaType: "application/vnd.oci.image.manifest.v1+json", sizeBytes: "99" }),
    ).toMatchObject({
      name: "1.0",
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      sizeBytes: "99",
    });

    // The flat list with a parent filter and the nested binding answer the same.
    const nested = [
      [`/v1/registries/${registry.id}/namespaces`, `/v1/namespaces?registry_id=${registry.id}`, "namespaces", namespace.id],
      [`/v1/namespaces/${namespace.id}/repositories`, `/v1/repositories?namespace_id=${namespace.id}`, "repositories", repository.id],
      [`/v1/repositories/${repository.id}/tags`, `/v1/tags?repositoryId=${repository.id}`, "tags", tag.id],
    ] as const;
    for (const [path, flat, key, id] of nested) {
      const a = await ok("GET", path);
      expect(a[key]?.map((x) => x.id)).toEqual([id]);
      expect(a.totalSize).toBe(1);
      expect(await ok("GET", flat)).toEqual(a);
    }
    // A parent id in the path is a parent id: an unknown one is NOT_FOUND, not an empty page.
    await fails(404, "not_found", "GET", `/v1/registries/${MISSING}/namespaces`);

    expect(await ok("DELETE", `/v1/tags/${tag.id}`)).toEqual({});
    expect(await ok("DELETE", `/v1/repositories/${repository.id}`)).toEqual({});
    expect(await ok("DELETE", `/v1/namespaces/${namespace.id}`)).toEqual({});
    for (const path of [`/v1/tags/${tag.id}`, `/v1/repositories/${repository.id}`, `/v1/namespaces/${namespace.id}`]) {
      await fails(404, "not_found", "GET", path);
    }
  });

  it("finds by name on REST paths (names with / and : included), lists by parent name, searches", async () => {
    const { registry, namespace, repository, tag } = await tree();
    const web = await ok("POST", "/v1/repositories", { namespaceId: namespace.id, name: "app/web" });
    const webTag = await ok("POST", "/v1/tags", { repositoryId: web.id, name: "1.0", digest: DIGEST });
    expect(web).toMatchObject({ fullName: "mirror/team/app/web", registryId: registry.id });
    expect(webTag).toMatchObject({ fullName: "mirror/team/app/web:1.0", namespaceId: namespace.id, registryId: registry.id });

    expect(await ok("GET", "/v1/registries/mirror:lookup")).toEqual(registry);
    expect(await ok("GET", "/v1/namespaces/mirror/team:lookup")).toEqual({ ...namespace, fullName: "mirror/team" });
    expect(await ok("GET", "/v1/repositories/mirror/team/app:lookup")).toEqual(repository);
    expect(await ok("GET", "/v1/repositories/mirror/team/app/web:lookup")).toEqual(web);
    expect(await ok("GET", "/v1/tags/mirror/team/app:1.0:lookup")).toEqual(tag);
    expect(await ok("GET", "/v1/tags/mirror/team/app/web:1.0:lookup")).toEqual(webTag);
    expect(await ok("GET", "/v1/tags/mirror/team/app/web%3A1.0:lookup")).toEqual(webTag);
    // The id bindings beside them are untouched.
    expect(await ok("GET", `/v1/repositories/${web.id}`)).toEqual(web);

    // `mirror/team/app@<digest>`: every tag of the repository at that digest.
    const atDigest = await ok("GET", `/v1/tags?repository_name=mirror/team/app/web&digest=${DIGEST}`);
    expect(atDigest.tags?.map((t) => t.id)).toEqual([webTag.id]);
    expect((await ok("GET", "/v1/namespaces?registry_name=mirror")).namespaces?.map((n) => n.id)).toEqual([namespace.id]);
    expect((await ok("GET", "/v1/repositories?namespaceName=mirror%2Fteam")).repositories?.map((r) => r.fullName)).toEqual([
      "mirror/team/app",
      "mirror/team/app/web",
    ]);

    const found = await ok("GET", "/v1/repositories:search?query=TEAM/APP/&page_size=10");
    expect(found).toMatchObject({ totalSize: 1, repositories: [{ id: web.id, fullName: "mirror/team/app/web" }] });
    const byDigest = await ok("GET", `/v1/tags:search?digest=${DIGEST}&order_by=name%20desc`);
    // Byte-wise, descending: ":" (0x3A) after "/" (0x2F).
    expect(byDigest.tags?.map((t) => t.fullName)).toEqual(["mirror/team/app:1.0", "mirror/team/app/web:1.0"]);
    expect((await ok("GET", `/v1/repositories:search?digest=${DIGEST}`)).totalSize).toBe(2);

    // Malformed: 400 naming the field; unknown: 404 naming the name.
    expect((await fails(400, "invalid_argument", "GET", "/v1/repositories/mirror/team:lookup")).json.message).toMatch(/^name: expected/);
    expect((await fails(400, "invalid_argument", "GET", "/v1/tags/mirror/team/app:lookup")).json.message).toMatch(/^name: expected/);
    expect((await fails(400, "invalid_argument", "GET", `/v1/tags/mirror/team/app@${DIGEST}:lookup`)).json.message).toContain("ListTags");
    expect((await fails(400, "invalid_argument", "GET", "/v1/tags:search?digest=latest")).json.message).toMatch(/^digest: /);
    expect((await fails(404, "not_found", "GET", "/v1/repositories/mirror/team/nope:lookup")).json.message).toBe("repository mirror/team/nope not found");
    expect((await fails(404, "not_found", "GET", "/v1/tags?repository_name=mirror/team/nope")).json.message).toBe("repository mirror/team/nope not found");
    await fails(404, "not_found", "GET", "/v1/namespaces/mirror/nope:lookup");
  });

  it("list query parameters: page_size, page_token round trip, order_by, query, kind", async () => {
    const names = ["alpha", "bravo", "charlie", "delta", "echo"];
    for (const name of names) await ok("POST", "/v1/registries", { name, kind: "REGISTRY_KIND_HOSTED" });

    const seen: (string | undefined)[] = [];
    let token = "";
    for (let page = 0; page < 5; page++) {
      const r = await ok("GET", `/v1/registries?page_size=2${token ? `&page_token=${encodeURIComponent(token)}` : ""}`);
      expect(r.totalSize).toBe(5);
      seen.push(...(r.registries ?? []).map((x) => x.name));
      token = r.nextPageToken ?? "";
      if (!token) break;
    }
    expect(seen).toEqual(names);

    const desc = await ok("GET", `/v1/registries?order_by=${encodeURIComponent("name desc")}&page_size=3`);
    expect(desc.registries?.map((x) => x.name)).toEqual(["echo", "delta", "charlie"]);
    // The token carries the query: using it with another order is refused.
    await fails(400, "invalid_argument", "GET", `/v1/registries?page_size=2&page_token=${encodeURIComponent(desc.nextPageToken ?? "")}`);
    await fails(400, "invalid_argument", "GET", "/v1/registries?page_token=forged");

    const found = await ok("GET", "/v1/registries?query=HAR");
    expect(found.registries?.map((x) => x.name)).toEqual(["charlie"]);
    expect((await ok("GET", "/v1/registries?kind=REGISTRY_KIND_REMOTE")).totalSize ?? 0).toBe(0);
    expect((await ok("GET", "/v1/registries?kind=1&pageSize=1")).registries).toHaveLength(1);
  });

  it("force and etag query parameters on DELETE; etag in the body on PUT", async () => {
    const { registry, namespace } = await tree();
    // A non-empty parent: FAILED_PRECONDITION, whose Connect status is 400.
    const blocked = await fails(codeToHttpStatus(Code.FailedPrecondition), "failed_precondition", "DELETE", `/v1/registries/${registry.id}`);
    expect(blocked.status).toBe(400);
    expect(blocked.json.message).toMatch(/force/);
    await fails(400, "failed_precondition", "DELETE", `/v1/namespaces/${namespace.id}?force=false`);

    // A stale etag: ABORTED, 409, and nothing changed.
    await fails(409, "aborted", "PUT", `/v1/registries/${registry.id}?update_mask=description`, { description: "x", etag: "99" });
    await fails(409, "aborted", "DELETE", `/v1/registries/${registry.id}?force=true&etag=99`);
    const unchanged = await ok("GET", `/v1/registries/${registry.id}`);
    expect(unchanged.etag).toBe(registry.etag);
    expect(unchanged.description).toBeUndefined();

    expect(await ok("DELETE", `/v1/registries/${registry.id}?force=true&etag=${registry.etag}`)).toEqual({});
    await fails(404, "not_found", "GET", `/v1/namespaces/${namespace.id}`);
  });

  it("400 INVALID_ARGUMENT: bad values, unknown fields and parameters, malformed JSON", async () => {
    const bad = await fails(400, "invalid_argument", "POST", "/v1/registries", { name: "Not Valid", kind: "REGISTRY_KIND_HOSTED" });
    expect(bad.json.message).toMatch(/registry\.name/);
    await fails(400, "invalid_argument", "GET", "/v1/registries/not-a-uuid");
    const unknownField = await fails(400, "invalid_argument", "POST", "/v1/registries", { name: "a", kind: "REGISTRY_KIND_HOSTED", colour: "red" });
    expect(unknownField.json.message).toMatch(/colour/);
    const unknownParam = await fails(400, "invalid_argument", "GET", "/v1/registries?pagesize=2");
    expect(unknownParam.json.message).toMatch(/unknown query parameter "pagesize"/);
    const wrongType = await fails(400, "invalid_argument", "GET", "/v1/registries?page_size=many");
    expect(wrongType.json.message).toMatch(/page_size/);
    await fails(400, "invalid_argument", "GET", "/v1/registries?page_size=-1");
    const twice = await fails(400, "invalid_argument", "GET", "/v1/registries?page_size=1&pageSize=2");
    expect(twice.json.message).toMatch(/given 2 times/);
    await fails(400, "invalid_argument", "DELETE", `/v1/registries/${MISSING}?force=maybe`);
    const mask = await fails(400, "invalid_argument", "PUT", `/v1/registries/${MISSING}?update_mask=colour`, { name: "x" });
    expect(mask.json.message).toMatch(/update_mask/);
    const malformed = await fails(400, "invalid_argument", "POST", "/v1/registries", '{"name": "x",');
    expect(malformed.json.message).toMatch(/malformed JSON/);
    await fails(400, "invalid_argument", "POST", "/v1/registries", "[1, 2]");
  });

  it("404 for unknown ids and unknown paths, as JSON", async () => {
    for (const path of [`/v1/registries/${MISSING}`, `/v1/namespaces/${MISSING}`, `/v1/repositories/${MISSING}`, `/v1/tags/${MISSING}`]) {
      await fails(404, "not_found", "GET", path);
    }
    await fails(404, "not_found", "DELETE", `/v1/tags/${MISSING}`);
    const unknown = await fails(404, "not_found", "GET", "/v1/artifacts");
    expect(unknown.headers.get("content-type")).toBe("application/json");
    await fails(404, "not_found", "GET", "/v1/registries/a/b/c");
    await fails(404, "not_found", "GET", "/v1/registries/");
    await fails(404, "not_found", "POST", "/v1/namespaces", { registryId: MISSING, name: "team" });
  });

  it("409 ALREADY_EXISTS for a duplicate name", async () => {
    await ok("POST", "/v1/registries", { name: "local", kind: "REGISTRY_KIND_HOSTED" });
    const dup = await fails(409, "already_exists", "POST", "/v1/registries", { name: "local", kind: "REGISTRY_KIND_HOSTED" });
    expect(dup.json.message).toMatch(/local/);
  });

  it("405 with Allow for a known path and the wrong method", async () => {
    const one = await fails(405, "unimplemented", "PATCH", `/v1/registries/${MISSING}`, { name: "x" });
    expect(one.headers.get("allow")).toBe("DELETE, GET, PUT");
    const collection = await fails(405, "unimplemented", "DELETE", "/v1/tags");
    expect(collection.headers.get("allow")).toBe("GET, POST");
    const nested = await fails(405, "unimplemented", "POST", `/v1/repositories/${MISSING}/tags`, {});
    expect(nested.headers.get("allow")).toBe("GET");
  });

  it("415 for a body that is not JSON", async () => {
    await fails(415, "invalid_argument", "POST", "/v1/registries", "name=local", { "content-type": "application/x-www-form-urlencoded" });
    await fails(415, "invalid_argument", "PUT", `/v1/registries/${MISSING}`, "<registry/>", { "content-type": "application/xml" });
  });

  it("413 for a body over the limit (4 MiB by default)", async () => {
    const body = JSON.stringify({ name: "big", kind: "REGISTRY_KIND_HOSTED", description: "x".repeat(4 * 1024 * 1024) });
    await fails(413, "resource_exhausted", "POST", "/v1/registries", body);
    // The server is still fine afterwards.
    await ok("GET", "/v1/registries");
  });

  it('a custom verb: POST /v1/garbage-collection:run with body "*"', async () => {
    const dry = await ok("POST", "/v1/garbage-collection:run", { dryRun: true });
    expect(dry.dryRun).toBe(true);
    // The whole request is the body, so nothing may come from the query.
    const query = await fails(400, "invalid_argument", "POST", "/v1/garbage-collection:run?dry_run=true", {});
    expect(query.json.message).toMatch(/the body carries the whole request/);
    const get = await fails(405, "unimplemented", "GET", "/v1/garbage-collection:run");
    expect(get.headers.get("allow")).toBe("POST");
    await fails(404, "not_found", "POST", "/v1/garbage-collection:walk", {});
  });

  it("x-request-id is kept or made, and returned on success and on error", async () => {
    const mine = await call("GET", "/v1/registries", undefined, { "x-request-id": "rest-test-1" });
    expect(mine.headers.get("x-request-id")).toBe("rest-test-1");
    const err = await call("GET", `/v1/registries/${MISSING}`, undefined, { "x-request-id": "rest-test-2" });
    expect(err.headers.get("x-request-id")).toBe("rest-test-2");
    const made = await call("GET", "/v1/registries");
    expect(made.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("REST and Connect reach the same implementation", async () => {
    const created = await ok("POST", "/v1/registries", { name: "shared", kind: "REGISTRY_KIND_HOSTED" });
    const client = createClient(RegistryService, createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [adminInterceptor] }));
    const viaConnect = await client.getRegistry({ id: created.id });
    expect(viaConnect.name).toBe("shared");
    expect(viaConnect.etag).toBe(created.etag);
  });

  it("a client that leaves a call in flight (raw blob, NDJSON stream, Connect stream) is not a server error", async () => {
    // Found by test/bad-input.test.ts: the call is aborted with no reason, so when its upstream
    // request then failed the upstream client rethrew the signal's AbortError, which the call
    // interceptor logged as an unexpected error (and answered INTERNAL).
    const upstream = net.createServer(); // accepts and never answers: the call waits on it
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    /** Waits until the sum of a metric's series whose labels contain `label` is 0. */
    const untilZero = async (metric: string, label: string) => {
      for (const giveUp = Date.now() + 15_000; Date.now() < giveUp; await new Promise((r) => setTimeout(r, 20))) {
        const text = await (await adminFetch(`${server.httpUrl}/metrics`)).text();
        const lines = text.split("\n").filter((l) => l.startsWith(`${metric}{`) && l.includes(label));
        if (lines.reduce((n, l) => n + Number(l.split(" ").pop()), 0) === 0) return;
      }
      throw new Error(`${metric}{${label}} did not drop to 0`);
    };
    try {
      const url = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
      const registry = (await call("POST", "/v1/registries", { name: "hung", kind: "REGISTRY_KIND_REMOTE", url })).json;
      const ns = (await call("POST", "/v1/namespaces", { registryId: registry.id, name: "lib" })).json;
      await call("POST", "/v1/repositories", { namespaceId: ns.id, name: "x" });
      logs.takeErrors();
      const getBlob = JSON.stringify({ repository: "hung/lib/x", digest: DIGEST });
      const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, getBlob.length]), Buffer.from(getBlob)]);
      for (const [method, path, procedure, init] of [
        ["GET", `/v1/images/hung/lib/x/blobs/${DIGEST}`, "ImageService/GetBlob", {}],
        ["POST", `/v1/registries/${registry.id}:sync`, "RegistryService/SyncRegistry", { body: "{}", headers: { "content-type": "application/json" } }],
        // And the same over the Connect protocol.
        ["POST", "/artifact.v1.ImageService/GetBlob", "ImageService/GetBlob", { body: envelope, headers: { "content-type": "application/connect+json" } }],
      ] as const) {
        const connected = new Promise<net.Socket>((resolve) => upstream.once("connection", resolve));
        const client = new AbortController();
        const answer = adminFetch(`${server.httpUrl}${path}`, { method, signal: client.signal, ...init }).catch(() => undefined);
        const socket = await connected;
        client.abort();
        await answer;
        await untilZero("artifact_http_requests_in_flight", path.startsWith("/v1/") ? 'kind="rest"' : 'kind="rpc"'); // the server has seen its client go
        socket.destroy(); // now the upstream request fails too
        await untilZero("artifact_rpc_calls_in_flight", procedure); // and the call has ended
        expect(
          logs.takeErrors().map((l) => l.text),
          `${method} ${path}`,
        ).toEqual([]);
      }
    } finally {
      upstream.close();
    }
  });
});
