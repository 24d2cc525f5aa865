// Browser access: Connect GET for read-only methods, and CORS (preflights and actual requests
// from allowed and refused origins, on Connect, gRPC-Web, REST; /v2/ left out on purpose).
// Real servers on PGlite (neither feature touches the database differently on PostgreSQL).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { GetTagRequestSchema, TagSchema, TagService } from "../gen/artifact/v1/tag_pb.js";
import { ConfigError, loadConfig, type Config } from "../src/config.js";
import type { DatabaseHandle } from "../src/db/database.js";
import { startServer, type RunningServer } from "../src/server.js";
import { catalogClients, createHierarchy, digestOf, unique } from "./support/clients.js";
import { adminFetch } from "./support/credentials.js";
import { openTestDatabase, quietLog } from "./support/database.js";
import { testConfig, transports } from "./support/server.js";

const APP = "http://app.example.test:5173";
const EVIL = "http://evil.example.test";

let database: DatabaseHandle;
const dirs: string[] = [];
beforeAll(async () => {
  database = await openTestDatabase("pglite");
});
afterAll(async () => {
  await database?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A server on the shared database; CORS settings differ per suite. */
async function serve(config: Partial<Config>): Promise<{ server: RunningServer; url: string }> {
  const dir = mkdtempSync(join(tmpdir(), "artifact-cors-"));
  dirs.push(dir);
  const server = await startServer(testConfig(dir, config), quietLog, { database });
  return { server, url: `http://127.0.0.1:${server.http.port}` };
}

const accessControl = (headers: Headers) => [...headers.keys()].filter((k) => k.startsWith("access-control-"));
const list = (value: string | null) => (value ?? "").split(",").map((s) => s.trim().toLowerCase());

describe("CORS_ALLOWED_ORIGINS", () => {
  const problems = (value: string) => {
    try {
      loadConfig({ CORS_ALLOWED_ORIGINS: value });
      return [];
    } catch (err) {
      return (err as ConfigError).problems;
    }
  };

  it("is empty by default: no origin allowed", () => {
    expect(loadConfig({}).cors).toEqual({ allowedOrigins: [], maxAgeSeconds: 7200 });
  });

  it("takes a comma list of origins, normalised as browsers send them", () => {
    const config = loadConfig({ CORS_ALLOWED_ORIGINS: " https://App.example.com , http://localhost:5173/,https://a.example:443", CORS_MAX_AGE_SECONDS: "60" });
    expect(config.cors).toEqual({ allowedOrigins: ["https://app.example.com", "http://localhost:5173", "https://a.example"], maxAgeSeconds: 60 });
    expect(loadConfig({ CORS_ALLOWED_ORIGINS: "*" }).cors.allowedOrigins).toEqual(["*"]);
  });

  it("refuses what is not an origin, naming the value", () => {
    expect(problems("https://app.example.com/path")[0]).toContain('"https://app.example.com/path" is not an origin');
    expect(problems("app.example.com")[0]).toContain("is not an origin");
    expect(problems("ftp://files.example.com")[0]).toContain("is not an origin");
    expect(problems("https://user:pw@app.example.com")[0]).toContain("is not an origin");
    expect(problems("*,https://app.example.com")[0]).toContain('"*" allows every origin');
  });
});

describe("with allowed origins", () => {
  let server: RunningServer;
  let url: string;
  beforeAll(async () => {
    ({ server, url } = await serve({ cors: { allowedOrigins: [APP], maxAgeSeconds: 600 } }));
  });
  afterAll(() => server?.close());

  const preflight = (path: string, origin: string, method: string, headers = "content-type") =>
    fetch(url + path, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": method, "access-control-request-headers": headers },
    });

  it("answers a preflight for Connect from an allowed origin with the Connect and gRPC-Web headers", async () => {
    const res = await preflight(
      "/artifact.v1.RegistryService/CreateRegistry",
      APP,
      "POST",
      "authorization,content-type,connect-protocol-version,connect-timeout-ms",
    );
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
    expect(list(res.headers.get("access-control-allow-methods"))).toEqual(expect.arrayContaining(["post", "get"]));
    expect(list(res.headers.get("access-control-allow-headers"))).toEqual(
      expect.arrayContaining([
        "authorization",
        "content-type",
        "connect-protocol-version",
        "connect-timeout-ms",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        "x-request-id",
      ]),
    );
    expect(res.headers.get("access-control-max-age")).toBe("600");
    expect(list(res.headers.get("vary"))).toContain("origin");
    expect(await res.text()).toBe("");
  });

  it("answers a preflight for REST methods (the REST handler alone would say 405 to OPTIONS)", async () => {
    for (const method of ["PUT", "DELETE"]) {
      const res = await preflight("/v1/registries/00000000-0000-4000-8000-000000000000", APP, method);
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe(APP);
      expect(list(res.headers.get("access-control-allow-methods"))).toContain(method.toLowerCase());
    }
  });

  it("gives a refused origin's preflight no Access-Control-* header", async () => {
    for (const path of ["/artifact.v1.RegistryService/CreateRegistry", "/v1/registries"]) {
      const res = await preflight(path, EVIL, "POST");
      expect(accessControl(res.headers), path).toEqual([]);
    }
    // Nor a near miss: another port of the allowed host, or another scheme.
    expect(accessControl((await preflight("/v1/registries", "http://app.example.test:5174", "POST")).headers)).toEqual([]);
    expect(accessControl((await preflight("/v1/registries", "https://app.example.test:5173", "POST")).headers)).toEqual([]);
  });

  it("lets an OPTIONS that is not a preflight reach the REST handler", async () => {
    const res = await fetch(`${url}/v1/registries`, { method: "OPTIONS", headers: { origin: APP } });
    expect(res.status).toBe(405);
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
  });

  it("leaves /v2/ alone: no CORS there", async () => {
    const res = await preflight("/v2/", APP, "GET");
    expect(accessControl(res.headers)).toEqual([]);
    const get = await adminFetch(`${url}/v2/`, { headers: { origin: APP } });
    expect(get.status).toBe(200);
    expect(accessControl(get.headers)).toEqual([]);
  });

  it("marks actual Connect, REST and Connect GET responses for the allowed origin, exposing grpc-status and x-request-id", async () => {
    const connect = await adminFetch(`${url}/artifact.v1.RegistryService/ListRegistries`, {
      method: "POST",
      headers: { origin: APP, "content-type": "application/json" },
      body: "{}",
    });
    expect(connect.status).toBe(200);
    expect(connect.headers.get("access-control-allow-origin")).toBe(APP);
    expect(list(connect.headers.get("access-control-expose-headers"))).toEqual(
      expect.arrayContaining(["grpc-status", "grpc-message", "grpc-status-details-bin", "x-request-id"]),
    );
    expect(list(connect.headers.get("vary"))).toContain("origin");

    const rest = await adminFetch(`${url}/v1/registries`, { headers: { origin: APP } });
    expect(rest.status).toBe(200);
    expect(rest.headers.get("access-control-allow-origin")).toBe(APP);

    // An error answer carries the headers too, or the page could not read the error.
    const missing = await adminFetch(`${url}/v1/registries/00000000-0000-4000-8000-000000000000`, { headers: { origin: APP } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("access-control-allow-origin")).toBe(APP);
  });

  it("lets the page read a refused credential: 401 with CORS headers, WWW-Authenticate exposed", async () => {
    for (const authorization of [undefined, "Bearer art_not-a-token"]) {
      const res = await fetch(`${url}/v1/registries`, {
        method: "POST",
        headers: { origin: APP, "content-type": "application/json", ...(authorization ? { authorization } : {}) },
        body: JSON.stringify({ name: "cors-denied", kind: "REGISTRY_KIND_HOSTED" }),
      });
      expect(res.status, String(authorization)).toBe(401);
      expect(res.headers.get("access-control-allow-origin")).toBe(APP);
      expect(res.headers.get("www-authenticate")).toBe("Bearer");
      expect(list(res.headers.get("access-control-expose-headers"))).toEqual(expect.arrayContaining(["www-authenticate", "x-request-id"]));
    }
  });

  it("serves a refused origin's actual request without CORS headers (the browser then hides it)", async () => {
    const res = await adminFetch(`${url}/v1/registries`, { headers: { origin: EVIL } });
    expect(res.status).toBe(200);
    expect(accessControl(res.headers)).toEqual([]);
  });

  /** connect-web's transports as a page on APP would use them; Node's fetch plays the browser. */
  function browserFetch(origin: string, seen: Headers[]): typeof fetch {
    return async (input, init) => {
      const headers = new Headers(init?.headers);
      headers.set("origin", origin);
      const res = await adminFetch(input, { ...init, headers });
      seen.push(res.headers);
      return res;
    };
  }

  it.each([
    ["connect-web Connect transport", (baseUrl: string, f: typeof fetch) => createConnectTransport({ baseUrl, fetch: f })],
    ["connect-web gRPC-Web transport", (baseUrl: string, f: typeof fetch) => createGrpcWebTransport({ baseUrl, fetch: f })],
  ])("%s: actual requests from the allowed origin carry the CORS headers", async (_name, transport) => {
    const seen: Headers[] = [];
    const client = createClient(RegistryService, transport(url, browserFetch(APP, seen)));
    const created = await client.createRegistry({ registry: { name: unique("web"), kind: RegistryKind.HOSTED } });
    await client.getRegistry({ id: created.id });
    expect(seen).toHaveLength(2);
    for (const headers of seen) {
      expect(headers.get("access-control-allow-origin")).toBe(APP);
      expect(list(headers.get("access-control-expose-headers"))).toContain("grpc-status");
    }
  });
});

describe("with every origin allowed (*)", () => {
  let server: RunningServer;
  let url: string;
  beforeAll(async () => {
    ({ server, url } = await serve({ cors: { allowedOrigins: ["*"], maxAgeSeconds: 60 } }));
  });
  afterAll(() => server?.close());

  it("answers any origin with a literal *, which needs no Vary", async () => {
    const res = await adminFetch(`${url}/v1/registries`, {
      method: "OPTIONS",
      headers: { origin: EVIL, "access-control-request-method": "POST" },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("vary")).toBeNull();
    const actual = await adminFetch(`${url}/v1/registries`, { headers: { origin: EVIL } });
    expect(actual.headers.get("access-control-allow-origin")).toBe("*");
  });
});

describe("by default (no origin allowed)", () => {
  let server: RunningServer;
  let url: string;
  beforeAll(async () => {
    ({ server, url } = await serve({}));
  });
  afterAll(() => server?.close());

  it("answers no preflight and adds no CORS header anywhere", async () => {
    const pre = await fetch(`${url}/v1/registries`, { method: "OPTIONS", headers: { origin: APP, "access-control-request-method": "POST" } });
    expect(pre.status).toBe(405);
    expect(accessControl(pre.headers)).toEqual([]);
    const actual = await adminFetch(`${url}/v1/registries`, { headers: { origin: APP } });
    expect(actual.status).toBe(200);
    expect(accessControl(actual.headers)).toEqual([]);
  });

  describe("Connect GET", () => {
    async function tagFixture() {
      const clients = catalogClients(transports["connect+json over HTTP/1.1"]!(url));
      const { repository } = await createHierarchy(clients);
      const tag = await clients.tags.createTag({ tag: { repositoryId: repository.id, name: "1.0", digest: digestOf(1), sizeBytes: 123n } });
      return { repository, tag };
    }

    it("serves GetTag with a JSON message in the query", async () => {
      const { tag } = await tagFixture();
      const message = encodeURIComponent(JSON.stringify({ id: tag.id }));
      const res = await adminFetch(`${url}/artifact.v1.TagService/GetTag?connect=v1&encoding=json&message=${message}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(await res.json()).toMatchObject({ id: tag.id, name: "1.0", digest: digestOf(1), sizeBytes: "123" });
    });

    it("serves GetTag with a base64url binary message", async () => {
      const { tag } = await tagFixture();
      const bytes = toBinary(GetTagRequestSchema, create(GetTagRequestSchema, { id: tag.id }));
      const message = Buffer.from(bytes).toString("base64url");
      const res = await adminFetch(`${url}/artifact.v1.TagService/GetTag?connect=v1&encoding=proto&base64=1&message=${message}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/proto");
      const got = fromBinary(TagSchema, new Uint8Array(await res.arrayBuffer()));
      expect(got.id).toBe(tag.id);
      expect(got.digest).toBe(digestOf(1));
    });

    it("serves every List and Get method (idempotency_level = NO_SIDE_EFFECTS), errors included", async () => {
      const { repository } = await tagFixture();
      const get = (procedure: string, body: object) => adminFetch(`${url}/${procedure}?encoding=json&message=${encodeURIComponent(JSON.stringify(body))}`);
      const list = await get("artifact.v1.TagService/ListTags", { repositoryId: repository.id });
      expect(list.status).toBe(200);
      expect(((await list.json()) as { tags: unknown[] }).tags).toHaveLength(1);
      for (const [procedure, body] of [
        ["artifact.v1.RegistryService/ListRegistries", {}],
        ["artifact.v1.NamespaceService/ListNamespaces", {}],
        ["artifact.v1.RepositoryService/ListRepositories", {}],
        ["artifact.v1.RepositoryService/GetRepository", { id: repository.id }],
      ] as const) {
        expect((await get(procedure, body)).status, procedure).toBe(200);
      }
      const missing = await get("artifact.v1.TagService/GetTag", { id: "00000000-0000-4000-8000-000000000000" });
      expect(missing.status).toBe(404);
      expect(await missing.json()).toMatchObject({ code: "not_found" });
    });

    it("answers a malformed GET query with the client's error, never 500", async () => {
      // Found by a probe: a base64=1 message that is not base64 was a 500 "internal error".
      const procedure = `${url}/artifact.v1.RegistryService/ListRegistries`;
      const cases: [string, number, string | undefined][] = [
        ["encoding=json&base64=1&message=e", 400, "invalid_argument"],
        ["encoding=json&base64=1&message=%40%40%40", 400, "invalid_argument"],
        ["encoding=proto&base64=1&message=%00", 400, "invalid_argument"],
        ["encoding=proto&base64=1&message=e30%3D%3D%3D", 400, "invalid_argument"],
        ["encoding=json&base64=1&message=e3%3D0", 400, "invalid_argument"],
        ["encoding=json&message=%7B", 400, "invalid_argument"],
        ["encoding=json&message=%FF", 400, "invalid_argument"],
        ["encoding=proto&message=%FF%FF", 400, "invalid_argument"],
        ["encoding=json", 400, "invalid_argument"],
        ["encoding=json&compression=gzip&message=%7B%7D", 400, "invalid_argument"],
        ["encoding=json&compression=zz&message=%7B%7D", 501, "unimplemented"],
        ["encoding=xml&message=%7B%7D", 415, undefined],
        // Valid for comparison: base64 with and without padding, both alphabets.
        ["encoding=json&base64=1&message=e30", 200, undefined],
        ["encoding=json&base64=1&message=e30%3D", 200, undefined],
      ];
      for (const [query, status, code] of cases) {
        const res = await adminFetch(`${procedure}?${query}`);
        expect(res.status, query).toBe(status);
        const text = await res.text();
        if (code !== undefined) expect((JSON.parse(text) as { code: string }).code, query).toBe(code);
      }
    });

    it("answers GET on methods with side effects with 405", async () => {
      for (const procedure of [
        "artifact.v1.TagService/CreateTag",
        "artifact.v1.TagService/DeleteTag",
        "artifact.v1.RegistryService/UpdateRegistry",
        "artifact.v1.GarbageCollectionService/RunGarbageCollection",
      ]) {
        const res = await adminFetch(`${url}/${procedure}?encoding=json&message=${encodeURIComponent("{}")}`);
        expect(res.status, procedure).toBe(405);
      }
    });

    it("is what connect-web sends with useHttpGet", async () => {
      const { tag } = await tagFixture();
      const methods: string[] = [];
      const recording: typeof fetch = (input, init) => {
        methods.push(init?.method ?? "GET");
        return adminFetch(input, init);
      };
      const tags = createClient(TagService, createConnectTransport({ baseUrl: url, useHttpGet: true, fetch: recording }));
      expect((await tags.getTag({ id: tag.id })).name).toBe("1.0");
      await tags.deleteTag({ id: tag.id });
      expect(methods).toEqual(["GET", "POST"]);
    });
  });
});
