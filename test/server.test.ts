// The server as a whole: every protocol on both ports, request ids, graceful shutdown (running
// calls finish, new ones are refused, the database is closed), bodies that are not messages.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import http2 from "node:http2";
import { Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createLogger } from "../src/log.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { apiServices } from "../src/api/routes.js";
import { toConnectError } from "../src/api/errors.js";
import { keyId } from "../src/secrets.js";
import { startServer } from "../src/server.js";
import { ADMIN_AUTHORIZATION, adminFetch, adminInterceptor } from "./support/credentials.js";
import { createScratchDatabase, databaseKinds, holdRegistriesTable, postgresConfig } from "./support/database.js";
import { expectCode, unique } from "./support/clients.js";
import { startTestServer, testConfig, transports, type TestServer } from "./support/server.js";

describe.each(databaseKinds())("server on %s", (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind);
  });
  afterAll(() => server?.stop());

  for (const port of ["http", "grpc"] as const) {
    it.each(Object.keys(transports))(`serves %s on the ${port} port`, async (name) => {
      const client = createClient(RegistryService, transports[name]!(`http://127.0.0.1:${server[port].port}`));
      const created = await client.createRegistry({ registry: { name: unique("p"), kind: RegistryKind.HOSTED } });
      expect((await client.getRegistry({ id: created.id })).name).toBe(created.name);
    });
  }

  it("echoes a caller's request id and makes one otherwise", async () => {
    const post = (headers: Record<string, string>) =>
      adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/ListRegistries`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: "{}",
      });
    expect((await post({ "x-request-id": "abc-123" })).headers.get("x-request-id")).toBe("abc-123");
    expect((await post({ "x-request-id": "bad id with spaces" })).headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const failed = await adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/GetRegistry`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "req-err-1" },
      body: JSON.stringify({ id: "nope" }),
    });
    expect(failed.status).toBe(400);
    expect(failed.headers.get("x-request-id")).toBe("req-err-1");
  });

  it.each([
    ["application/json", "{not json"],
    ["application/json", '{"registry": {"name": 5}}'],
    ["application/json", '{"registry": {"nmae": "typo"}}'],
    ["application/proto", "\u00ff\u00ff\u00ff\u00ff"],
  ])("answers invalid_argument to a %s body %j and creates nothing", async (contentType, body) => {
    const before = (await createClient(RegistryService, transports["connect+json over HTTP/1.1"]!(server.httpUrl)).listRegistries({})).totalSize;
    const res = await adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/CreateRegistry`, {
      method: "POST",
      headers: { "content-type": contentType },
      body: Buffer.from(body, "latin1"),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
    const after = (await createClient(RegistryService, transports["connect+json over HTTP/1.1"]!(server.httpUrl)).listRegistries({})).totalSize;
    expect(after).toBe(before);
  });

  const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]);
  const listRequest = Buffer.from([0x08, 0x01]); // ListRegistriesRequest{page_size: 1}
  it.each<[string, Buffer, { gzip?: boolean }]>([
    ["a body that is not protobuf", Buffer.concat([Buffer.from([0, 0, 0, 0, garbage.length]), garbage]), {}],
    // Found by test/bad-input.test.ts: the compressed flag set on an envelope while the request names no compression.
    ["an envelope flagged compressed without a compression", Buffer.concat([Buffer.from([1, 0, 0, 0, listRequest.length]), listRequest]), {}],
    // Also found by it: a gzip stream cut short ("unexpected end of file" in zlib).
    ["a gzip-compressed envelope cut short", Buffer.concat([Buffer.from([1, 0, 0, 0, 12]), gzipSync(listRequest).subarray(0, 12)]), { gzip: true }],
  ])("answers invalid_argument, never internal, to %s, over gRPC, gRPC-Web and Connect streaming", async (_what, frame, { gzip }) => {
    // gRPC over h2c, by hand: status travels in the trailers.
    const session = http2.connect(server.grpcUrl);
    const status = await new Promise<string | undefined>((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": "/artifact.v1.RegistryService/ListRegistries",
        authorization: ADMIN_AUTHORIZATION,
        "content-type": "application/grpc+proto",
        te: "trailers",
        ...(gzip ? { "grpc-encoding": "gzip" } : {}),
      });
      let result: string | undefined;
      stream.on("response", (headers) => (result = headers["grpc-status"] as string | undefined));
      stream.on("trailers", (trailers: http2.IncomingHttpHeaders) => (result = trailers["grpc-status"] as string));
      stream.on("data", () => {});
      stream.on("end", () => resolve(result));
      stream.on("error", reject);
      stream.end(frame);
    });
    session.close();
    expect(status).toBe(String(Code.InvalidArgument));

    const web = await adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/ListRegistries`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", ...(gzip ? { "grpc-encoding": "gzip" } : {}) },
      body: frame,
    });
    const body = Buffer.from(await web.arrayBuffer());
    const trailer = (web.headers.get("grpc-status") ?? "") + body.toString("latin1");
    expect(trailer).toMatch(new RegExp(`grpc-status:\\s*${Code.InvalidArgument}|^${Code.InvalidArgument}`));

    // Connect's streaming protocol (a server-streaming method): the error is in the end-of-stream message.
    const stream = await adminFetch(`${server.httpUrl}/artifact.v1.ImageService/GetBlob`, {
      method: "POST",
      headers: { "content-type": "application/connect+proto", ...(gzip ? { "connect-content-encoding": "gzip" } : {}) },
      body: frame,
    });
    const end = Buffer.from(await stream.arrayBuffer());
    expect(end[0]! & 0x02, "an end-of-stream message").toBe(0x02);
    expect(JSON.parse(end.subarray(5).toString("utf8"))).toMatchObject({ error: { code: "invalid_argument" } });

    if (gzip) {
      // Connect unary: the whole body is the compressed message.
      const unary = await adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/ListRegistries`, {
        method: "POST",
        headers: { "content-type": "application/proto", "content-encoding": "gzip" },
        body: frame.subarray(5),
      });
      expect({ status: unary.status, body: await unary.json() }).toMatchObject({ status: 400, body: { code: "invalid_argument" } });
    }
  });

  // Found by test/bad-input.test.ts: a gRPC-Web body of one trailer frame is a stream with no
  // request message; the access rules then had nothing to judge (a TypeError, INTERNAL).
  const streaming = apiServices.flatMap((s) => s.methods).filter((m) => m.methodKind === "server_streaming");
  it.each(streaming.map((m) => `${m.parent.typeName}/${m.name}`))(
    "answers invalid_argument to a stream with no request message for %s, signed in or not, over gRPC-Web and Connect",
    async (path) => {
      for (const authorization of [ADMIN_AUTHORIZATION, undefined]) {
        const headers: Record<string, string> = authorization ? { authorization } : {};
        const web = await fetch(`${server.httpUrl}/${path}`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/grpc-web+proto" },
          body: Buffer.from([0x80, 0, 0, 0, 0]),
        });
        const body = Buffer.from(await web.arrayBuffer()).toString("latin1");
        expect(web.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(body)?.[1], `${path} ${String(authorization)}`).toBe(String(Code.InvalidArgument));
        const connect = await fetch(`${server.httpUrl}/${path}`, { method: "POST", headers: { ...headers, "content-type": "application/connect+proto" } });
        const end = Buffer.from(await connect.arrayBuffer());
        expect(JSON.parse(end.subarray(5).toString("utf8"))).toMatchObject({ error: { code: "invalid_argument" } });
      }
    },
  );

  it("answers invalid_argument over gRPC and gRPC-Web when the error would quote a lone surrogate the client sent", async () => {
    // Found by test/bad-input.test.ts: protobuf-es quotes an unknown JSON key raw, connect-es then
    // failed to percent-encode grpc-message and the call got no answer at all.
    const json = Buffer.from('{"\\ud800":1}');
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, json.length]), json]);
    const session = http2.connect(server.grpcUrl);
    const status = await new Promise<string | undefined>((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": "/artifact.v1.RegistryService/ListRegistries",
        authorization: ADMIN_AUTHORIZATION,
        "content-type": "application/grpc+json",
        te: "trailers",
      });
      let result: string | undefined;
      stream.setTimeout(5_000, () => reject(new Error("no answer over gRPC")));
      stream.on("response", (headers) => (result = headers["grpc-status"] as string | undefined));
      stream.on("trailers", (trailers: http2.IncomingHttpHeaders) => (result = trailers["grpc-status"] as string));
      stream.on("data", () => {});
      stream.on("end", () => resolve(result));
      stream.on("error", reject);
      stream.end(frame);
    }).finally(() => session.close());
    expect(status).toBe(String(Code.InvalidArgument));

    const web = await adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/ListRegistries`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+json" },
      body: frame,
      signal: AbortSignal.timeout(5_000),
    });
    const body = Buffer.from(await web.arrayBuffer()).toString("latin1");
    expect(web.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(body)?.[1]).toBe(String(Code.InvalidArgument));
  });

  it("survives an HTTP/2 request with `expect: 100-continue` that is reset before it is served", async () => {
    // Found by test/bad-input.test.ts: nghttp2 resets the stream (a body longer than its
    // Content-Length), then Node's own 100-continue answer wrote to the dead stream and threw an
    // uncaught exception, which ends the process.
    const thrown: unknown[] = [];
    const onUncaught = (err: unknown) => thrown.push(err);
    const saved = process.listeners("uncaughtException");
    process.removeAllListeners("uncaughtException").on("uncaughtException", onUncaught);
    try {
      const broken = http2.connect(server.httpUrl);
      // Node 24's nghttp2 ends the whole session for the malformed stream (Node 20 only the stream).
      broken.on("error", () => {});
      const closed = new Promise<void>((resolve) => {
        const stream = broken.request({ ":method": "PATCH", ":path": "/v2/a/b/c/blobs/uploads/x", "content-length": "0", expect: "100-continue" });
        stream.on("error", () => {});
        stream.on("close", resolve);
        stream.end(Buffer.from([0]));
      });
      await closed;
      broken.destroy();
      // The server goes on: a live stream that expects 100-continue is served.
      const session = http2.connect(server.httpUrl);
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": "/artifact.v1.RegistryService/ListRegistries",
          authorization: ADMIN_AUTHORIZATION,
          "content-type": "application/json",
          expect: "100-continue",
        });
        stream.on("response", (headers) => resolve(Number(headers[":status"])));
        stream.on("error", reject);
        stream.resume();
        stream.end("{}");
      });
      expect(status).toBe(200);
      session.close();
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("uncaughtException", onUncaught);
      for (const listener of saved) process.on("uncaughtException", listener);
    }
    expect(thrown).toEqual([]);
  });

  it("answers every 405, on every edge, with an Allow header naming the methods the path takes", async () => {
    for (const [method, path, allow] of [
      ["PUT", "/artifact.v1.RegistryService/CreateRegistry", "POST"],
      ["DELETE", "/artifact.v1.RegistryService/GetRegistry", "POST, GET"],
      ["PATCH", "/v1/registries", "GET, POST"],
      ["POST", "/healthz", "GET, HEAD"],
      ["POST", "/metrics", "GET, HEAD"],
      ["DELETE", "/v2/", "GET, HEAD"],
    ] as const) {
      const res = await adminFetch(`${server.httpUrl}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        body: method === "DELETE" ? undefined : "{}",
      });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get("allow"), `${method} ${path}`).toBe(allow);
    }
  });

  it("names the valid values of an enum name it cannot decode, in every protocol's JSON form", async () => {
    const expected = "expected one of REGISTRY_KIND_HOSTED, REGISTRY_KIND_REMOTE";
    const create = JSON.stringify({ registry: { name: unique("enum"), kind: "REGISTRY_KIND_FOO" } });
    const frame = (json: string) => {
      const body = Buffer.from(json);
      const head = Buffer.alloc(5);
      head.writeUInt32BE(body.length, 1);
      return Buffer.concat([head, body]);
    };
    const path = "/artifact.v1.RegistryService/CreateRegistry";

    const connect = await adminFetch(`${server.httpUrl}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: create });
    expect(connect.status).toBe(400);
    expect(((await connect.json()) as { message: string }).message).toContain(expected);

    const rest = await adminFetch(`${server.httpUrl}/v1/registries`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: unique("enum"), kind: "FOO" }),
    });
    expect(rest.status).toBe(400);
    expect(((await rest.json()) as { message: string }).message).toContain(expected);
    const query = await adminFetch(`${server.httpUrl}/v1/registries?kind=FOO`);
    expect(query.status).toBe(400);
    expect(((await query.json()) as { message: string }).message).toContain(expected);

    const grpcWeb = await adminFetch(`${server.httpUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+json" },
      body: frame(create),
    });
    const trailer = Buffer.from(await grpcWeb.arrayBuffer()).toString("utf8");
    expect(trailer).toMatch(new RegExp(`grpc-status: ${Code.InvalidArgument}\\b`));
    expect(decodeURIComponent(/grpc-message: ([^\r\n]*)/.exec(trailer)?.[1] ?? "")).toContain(expected);

    const session = http2.connect(server.grpcUrl);
    try {
      const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc+json", te: "trailers" });
        let last: http2.IncomingHttpHeaders = {};
        stream.on("response", (headers) => (last = headers));
        stream.on("trailers", (headers: http2.IncomingHttpHeaders) => (last = headers));
        stream.on("data", () => {});
        stream.on("end", () => resolve(last));
        stream.on("error", reject);
        stream.end(frame(create));
      });
      expect(trailers["grpc-status"]).toBe(String(Code.InvalidArgument));
      expect(decodeURIComponent(String(trailers["grpc-message"]))).toContain(expected);
    } finally {
      session.close();
    }
  });

  it("answers 404 JSON for paths nothing serves", async () => {
    const res = await adminFetch(`${server.httpUrl}/no/such/path`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "not_found" });
  });
});

describe.each(databaseKinds())("graceful shutdown on %s", (kind) => {
  it("lets a running call finish, refuses new ones, and closes the database", async () => {
    const dir = mkdtempSync(join(tmpdir(), "artifact-stop-"));
    const scratch = kind === "postgres" ? await createScratchDatabase() : undefined;
    const database = scratch ? postgresConfig(scratch.url, 4) : ({ kind: "pglite", dataDir: "memory://" } as const);
    const lines: string[] = [];
    const log = createLogger("info", new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
    const server = await startServer(testConfig(dir, { database, shutdownTimeoutMs: 10_000 }), log);
    try {
      const url = `http://127.0.0.1:${server.http.port}`;
      const client = createClient(RegistryService, createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [adminInterceptor] }));
      const created = await client.createRegistry({ registry: { name: unique("stop"), kind: RegistryKind.HOSTED } });

      // Hold the registries table so the next call is still running when the stop begins.
      const held = await holdRegistriesTable(server.database.db);
      const running = client.getRegistry({ id: created.id });
      await new Promise((r) => setTimeout(r, 200));

      const stopping = server.close();
      await new Promise((r) => setTimeout(r, 100));
      // A new connection is refused while the running call is still going.
      const fresh = createClient(RegistryService, createConnectTransport({ baseUrl: url, httpVersion: "2", interceptors: [adminInterceptor] }));
      const refused = await fresh.listRegistries({}).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(refused?.code).toBe(Code.Unavailable);

      await held.release();
      expect((await running).id).toBe(created.id);
      await stopping;
      await expect(server.database.ping()).rejects.toThrow();
      expect(lines.join("")).toContain('"msg":"stopped"');
    } finally {
      await server.close();
      await scratch?.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("error masking", () => {
  it("hides an unexpected error behind its request id", () => {
    const { error, unexpected } = toConnectError(new Error("SELECT secret FROM somewhere"), "req-42");
    expect(unexpected).toBe(true);
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toBe("internal error (request id req-42)");
  });

  it("turns a database outage into UNAVAILABLE", () => {
    const outage = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    expect(toConnectError(new Error("Failed query", { cause: outage }), "r").error.code).toBe(Code.Unavailable);
  });
});

describe("credentials at rest", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer("pglite");
  });
  afterAll(() => server?.stop());

  it("stores them sealed, never in the clear", async () => {
    const client = createClient(RegistryService, transports["connect+json over HTTP/1.1"]!(server.httpUrl));
    const r = await client.createRegistry({
      registry: {
        name: unique("sealed"),
        kind: RegistryKind.REMOTE,
        url: "https://example.com",
        credential: { kind: { case: "token", value: "tok-PLAINTEXT-123" } },
      },
    });
    const row = await server.store.registries.get(r.id);
    // Sealed under the test key, named by its key id (a hash, never the key).
    expect(row.credentialSealed).toMatch(new RegExp(`^v2:${keyId(Buffer.alloc(32, 7))}:`));
    expect(row.credentialSealed).not.toContain("PLAINTEXT");
  });
});

describe.skipIf(!process.env.TEST_DATABASE_URL)("PostgreSQL without SECRET_KEY", () => {
  it("refuses to store a credential with FAILED_PRECONDITION naming SECRET_KEY, and still serves the rest", async () => {
    const scratch = await createScratchDatabase();
    const dir = mkdtempSync(join(tmpdir(), "artifact-nokey-"));
    const server = await startServer(testConfig(dir, { secretKey: undefined, database: postgresConfig(scratch.url, 2) }), createLogger("silent"));
    try {
      const client = createClient(RegistryService, transports["connect+json over HTTP/1.1"]!(`http://127.0.0.1:${server.http.port}`));
      const name = unique("nokey");
      await expectCode(
        client.createRegistry({
          registry: { name, kind: RegistryKind.REMOTE, url: "https://example.com", credential: { kind: { case: "token", value: "t" } } },
        }),
        Code.FailedPrecondition,
        "SECRET_KEY",
      );
      expect((await client.listRegistries({ query: name })).totalSize).toBe(0);
      await client.createRegistry({ registry: { name, kind: RegistryKind.REMOTE, url: "https://example.com" } });
    } finally {
      await server.close();
      await scratch.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
