// Limits a public server needs, against a real server on every database kind: the request body
// limit on every RPC protocol and on REST (not on /v2/ uploads), client deadlines answered by
// the server itself while the database is held, and slow or idle connections cut.
import { createHash } from "node:crypto";
import http2 from "node:http2";
import net from "node:net";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GetRegistryRequestSchema, RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { ADMIN_AUTHORIZATION, adminFetch } from "./support/credentials.js";
import { databaseKinds, holdRegistriesTable } from "./support/database.js";
import { expectCode, unique } from "./support/clients.js";
import { baseUrlFor, startTestServer, transports, transportsWith, type TestServer } from "./support/server.js";

/** A GetRegistry request as one gRPC / gRPC-Web message frame (flag, length, protobuf). */
function getRegistryFrame(id: string): Buffer {
  const message = toBinary(GetRegistryRequestSchema, create(GetRegistryRequestSchema, { id }));
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

const LIMIT = 64 * 1024;
const HEADERS_TIMEOUT = 600;
const REQUEST_TIMEOUT = 1500;
const IDLE_TIMEOUT = 700;
/** Every wait below ends by itself: no loop or socket outlives this. */
const GUARD_MS = 15_000;

describe.each(databaseKinds())("limits on %s", (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind, {
      config: {
        limits: { maxRequestBytes: LIMIT, headersTimeoutMs: HEADERS_TIMEOUT, requestTimeoutMs: REQUEST_TIMEOUT, idleTimeoutMs: IDLE_TIMEOUT },
      },
    });
  });
  afterAll(() => server?.stop());

  describe("error messages that quote the request", () => {
    // gRPC carries the message in a trailer: quoted whole, a long value made a header block no
    // HTTP/2 peer takes (the answer never arrived). Every message is cut to 1024 characters.
    const long = "a".repeat(LIMIT - 1024);
    const bounded = (message: string) => expect(message.length).toBeLessThan(1100);

    it.each(Object.keys(transports))("stay short over %s, signed in or not, unary or streaming", async (name) => {
      const url = baseUrlFor(name, server);
      const admin = createClient(RegistryService, transports[name]!(url));
      bounded((await expectCode(admin.getRegistry({ id: long }), Code.InvalidArgument)).rawMessage);
      // Anonymous: refused by the access rules, whose message names the registry asked for.
      const anonymous = createClient(RegistryService, transportsWith([])[name]!(url));
      const sync = async () => {
        for await (const progress of anonymous.syncRegistry({ id: long })) expect(progress).toBeUndefined();
      };
      bounded((await expectCode(sync(), Code.Unauthenticated)).rawMessage);
    });
  });

  describe("request body limit (MAX_REQUEST_BYTES)", () => {
    const oversized = { query: "x".repeat(LIMIT + 1) };

    it.each(Object.keys(transports))("refuses a larger message with RESOURCE_EXHAUSTED over %s", async (name) => {
      const client = createClient(RegistryService, transports[name]!(server.httpUrl));
      await expectCode(client.listRegistries(oversized), Code.ResourceExhausted);
      // Just under the limit the message reaches the service, which judges its content.
      await expectCode(client.listRegistries({ query: "x".repeat(LIMIT - 1024) }), Code.InvalidArgument, /query/);
    });

    it("refuses it from @grpc/grpc-js too (status 8)", async () => {
      const client = new grpc.Client(`127.0.0.1:${server.grpc.port}`, grpc.credentials.createInsecure());
      try {
        const payload = Buffer.from(toBinary(GetRegistryRequestSchema, create(GetRegistryRequestSchema, { id: "y".repeat(LIMIT + 1) })));
        const status = await new Promise<grpc.ServiceError | null>((resolve) =>
          client.makeUnaryRequest(
            "/artifact.v1.RegistryService/GetRegistry",
            (b: Buffer) => b,
            (b: Buffer) => b,
            payload,
            (err) => resolve(err),
          ),
        );
        expect(status?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      } finally {
        client.close();
      }
    });

    it("counts the bytes after decompression (a small gzip body that inflates past the limit)", async () => {
      const body = gzipSync(JSON.stringify({ query: "a".repeat(LIMIT * 4) }));
      expect(body.length).toBeLessThan(LIMIT);
      const res = await adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/ListRegistries`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
        body,
      });
      expect(((await res.json()) as { code: string }).code).toBe("resource_exhausted");
    });

    it("answers REST with 413 resource_exhausted, before and while reading the body", async () => {
      const declared = await adminFetch(`${server.httpUrl}/v1/registries`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "big", kind: "REGISTRY_KIND_HOSTED", description: "d".repeat(LIMIT) }),
      });
      expect(declared.status).toBe(413);
      expect(((await declared.json()) as { code: string }).code).toBe("resource_exhausted");

      // Chunked: no Content-Length to judge by, so the limit is found while reading.
      const chunks = (async function* () {
        yield new TextEncoder().encode('{"name": "big", "description": "');
        for (let i = 0; i < 5; i++) yield new TextEncoder().encode("d".repeat(LIMIT / 2));
        yield new TextEncoder().encode('"}');
      })();
      const streamed = await adminFetch(`${server.httpUrl}/v1/registries`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: ReadableStream.from(chunks),
        duplex: "half",
      });
      expect(streamed.status).toBe(413);
    });

    it("does not apply to /v2/ blob uploads, which have BLOB_MAX_BYTES", async () => {
      const client = createClient(RegistryService, transports["connect+json over HTTP/1.1"]!(server.httpUrl));
      const registry = await client.createRegistry({ registry: { name: unique("hosted"), kind: RegistryKind.HOSTED } });
      const blob = Buffer.alloc(LIMIT * 4, 7);
      const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;
      const res = await adminFetch(`${server.httpUrl}/v2/${registry.name}/team/app/blobs/uploads/?digest=${digest}`, {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: blob,
      });
      expect(res.status, await res.text()).toBe(201);
      const back = await adminFetch(`${server.httpUrl}/v2/${registry.name}/team/app/blobs/${digest}`);
      expect(Buffer.from(await back.arrayBuffer()).equals(blob)).toBe(true);
    });
  });

  describe("client deadlines", () => {
    /** Runs `during` while every query on the registries table waits for a lock we hold. */
    async function whileDatabaseHeld(during: (id: string) => Promise<void>) {
      const client = createClient(RegistryService, transports["connect+json over HTTP/1.1"]!(server.httpUrl));
      const { id } = await client.createRegistry({ registry: { name: unique("slow"), kind: RegistryKind.HOSTED } });
      const held = await holdRegistriesTable(server.database.db);
      try {
        await during(id);
      } finally {
        await held.release();
      }
    }

    /** Fails the test instead of hanging when the server ignores the deadline. */
    function guarded<T>(what: string, promise: Promise<T>): Promise<T> {
      let timer: NodeJS.Timeout | undefined;
      const guard = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer while the database was held; the deadline was not honoured`)), GUARD_MS);
      });
      return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
    }

    it("Connect (POST and GET) and REST answer deadline_exceeded from connect-timeout-ms / grpc-timeout", async () => {
      await whileDatabaseHeld(async (id) => {
        const post = await guarded(
          "Connect POST",
          adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/GetRegistry`, {
            method: "POST",
            headers: { "content-type": "application/json", "connect-timeout-ms": "300" },
            body: JSON.stringify({ id }),
          }),
        );
        expect(post.status).toBe(504);
        expect(await post.json()).toMatchObject({ code: "deadline_exceeded" });

        const message = encodeURIComponent(JSON.stringify({ id }));
        const get = await guarded(
          "Connect GET",
          adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/GetRegistry?connect=v1&encoding=json&message=${message}`, {
            headers: { "connect-timeout-ms": "300" },
          }),
        );
        expect(get.status).toBe(504);
        expect(await get.json()).toMatchObject({ code: "deadline_exceeded" });

        for (const header of [{ "connect-timeout-ms": "300" }, { "grpc-timeout": "300m" }] as Record<string, string>[]) {
          const rest = await guarded("REST", adminFetch(`${server.httpUrl}/v1/registries/${id}`, { headers: header }));
          expect(rest.status).toBe(504);
          expect(await rest.json()).toMatchObject({ code: "deadline_exceeded" });
        }
      });
    });

    it("gRPC (raw HTTP/2, no client-side timer) ends with grpc-status 4 from grpc-timeout", async () => {
      await whileDatabaseHeld(async (id) => {
        const session = http2.connect(server.grpcUrl);
        try {
          const frame = getRegistryFrame(id);
          const stream = session.request({
            ":method": "POST",
            ":path": "/artifact.v1.RegistryService/GetRegistry",
            authorization: ADMIN_AUTHORIZATION,
            "content-type": "application/grpc",
            te: "trailers",
            "grpc-timeout": "300m",
          });
          const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once("trailers", resolve));
          stream.resume();
          stream.end(frame);
          const got = await guarded("gRPC", trailers);
          expect(got["grpc-status"]).toBe(String(Code.DeadlineExceeded));
        } finally {
          session.close();
        }
      });
    });

    it("gRPC-Web (raw fetch) ends with grpc-status 4 from grpc-timeout", async () => {
      await whileDatabaseHeld(async (id) => {
        const frame = getRegistryFrame(id);
        const res = await guarded(
          "gRPC-Web",
          adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/GetRegistry`, {
            method: "POST",
            headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "grpc-timeout": "300m" },
            body: frame,
          }),
        );
        // A trailers-only answer puts the status in the headers; otherwise it is in the trailer frame.
        const body = Buffer.from(await res.arrayBuffer()).toString("latin1");
        const status = res.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(body)?.[1];
        expect(status).toBe(String(Code.DeadlineExceeded));
      });
    });

    describe("a deadline that has passed, or passes while a failing call runs, never ends the process", () => {
      const unhandled: unknown[] = [];
      const record = (reason: unknown) => unhandled.push(reason);
      beforeAll(() => process.on("unhandledRejection", record));
      afterAll(() => process.off("unhandledRejection", record));
      beforeEach(() => void unhandled.splice(0));

      /** One GetRegistry (bad id or unknown id) with a deadline, sent as each protocol puts it on the wire. */
      const calls: Record<string, (id: string, timeout: string) => Promise<string>> = {
        connect: async (id, timeout) => {
          const res = await adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/GetRegistry`, {
            method: "POST",
            headers: { "content-type": "application/json", "connect-timeout-ms": timeout },
            body: JSON.stringify({ id }),
          });
          return ((await res.json()) as { code?: string }).code ?? "ok";
        },
        "connect GET": async (id, timeout) => {
          const message = encodeURIComponent(JSON.stringify({ id }));
          const res = await adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/GetRegistry?connect=v1&encoding=json&message=${message}`, {
            headers: { "connect-timeout-ms": timeout },
          });
          return ((await res.json()) as { code?: string }).code ?? "ok";
        },
        rest: async (id, timeout) => {
          const res = await adminFetch(`${server.httpUrl}/v1/registries/${encodeURIComponent(id)}`, { headers: { "grpc-timeout": `${timeout}m` } });
          return ((await res.json()) as { code?: string }).code ?? "ok";
        },
        grpc: (id, timeout) =>
          new Promise((resolve, reject) => {
            const session = http2.connect(server.grpcUrl);
            session.on("error", reject);
            const frame = getRegistryFrame(id);
            const stream = session.request({
              ":method": "POST",
              ":path": "/artifact.v1.RegistryService/GetRegistry",
              authorization: ADMIN_AUTHORIZATION,
              "content-type": "application/grpc",
              te: "trailers",
              "grpc-timeout": `${timeout}m`,
            });
            let status: string | undefined;
            stream.once("response", (h) => (status ??= h["grpc-status"] as string | undefined));
            stream.once("trailers", (h: http2.IncomingHttpHeaders) => (status ??= h["grpc-status"] as string | undefined));
            stream.once("close", () => {
              session.close();
              resolve(status === undefined ? "no status" : Code[Number(status)]!);
            });
            stream.resume();
            stream.end(frame);
          }),
        "grpc-web": async (id, timeout) => {
          const frame = getRegistryFrame(id);
          const res = await adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/GetRegistry`, {
            method: "POST",
            headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "grpc-timeout": `${timeout}m` },
            body: frame,
          });
          const body = Buffer.from(await res.arrayBuffer()).toString("latin1");
          const status = res.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(body)?.[1];
          return status === undefined ? "no status" : Code[Number(status)]!;
        },
      };

      /** Lets rejections of abandoned calls surface (Node reports them after the microtask queue drains). */
      const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

      it.each(Object.keys(calls))("over %s: deadlines 0 and 1 ms on calls that fail", async (protocol) => {
        const call = calls[protocol]!;
        for (const timeout of ["0", "1"]) {
          for (const id of ["not-a-uuid", "00000000-0000-4000-8000-000000000000"]) {
            for (let i = 0; i < 5; i++) {
              const code = await call(id, timeout);
              // Either the deadline or the call's own failure wins the race; both are answers.
              expect(["deadline_exceeded", "invalid_argument", "not_found", "DeadlineExceeded", "InvalidArgument", "NotFound"]).toContain(code);
            }
          }
        }
        await settle();
        expect(unhandled).toEqual([]);
        // The process is alive and serving.
        expect(await call("00000000-0000-4000-8000-000000000000", "10000")).toMatch(/not_?found/i);
      });

      it("a deadline that fires while a failing call waits on the database", async () => {
        await whileDatabaseHeld(async () => {
          const answers = await Promise.all(Object.values(calls).map((call) => guarded("held", call("00000000-0000-4000-8000-000000000000", "200"))));
          expect(answers.every((a) => /deadline_?exceeded/i.test(a))).toBe(true);
        });
        // Released: the abandoned calls now fail with NOT_FOUND, and nobody is listening any more.
        await settle();
        expect(unhandled).toEqual([]);
      });
    });

    it("a deadline longer than a Node timer holds (2^31 ms and more) is not cut to 1 ms, on any protocol", async () => {
      // Found by test/bad-input.test.ts: such a timer fires after 1 ms, so the call ended at once.
      const far = { connect: "9999999999", grpc: "99999999H" };
      const client = createClient(RegistryService, transports["connect+json over HTTP/1.1"]!(server.httpUrl));
      const { id } = await client.createRegistry({ registry: { name: unique("far"), kind: RegistryKind.HOSTED } });
      // The database is held for a moment: a call that honours its deadline waits, then succeeds.
      const held = await holdRegistriesTable(server.database.db);
      const release = setTimeout(() => void held.release(), 100);
      try {
        const frame = getRegistryFrame(id);
        const [post, rest, web, grpcStatus] = await Promise.all([
          adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/GetRegistry`, {
            method: "POST",
            headers: { "content-type": "application/json", "connect-timeout-ms": far.connect },
            body: JSON.stringify({ id }),
          }),
          adminFetch(`${server.httpUrl}/v1/registries/${id}`, { headers: { "grpc-timeout": far.grpc } }),
          adminFetch(`${server.httpUrl}/artifact.v1.RegistryService/GetRegistry`, {
            method: "POST",
            headers: { "content-type": "application/grpc-web+proto", "grpc-timeout": far.grpc },
            body: frame,
          }),
          new Promise<string | undefined>((resolve, reject) => {
            const session = http2.connect(server.grpcUrl);
            const stream = session.request({
              ":method": "POST",
              ":path": "/artifact.v1.RegistryService/GetRegistry",
              authorization: ADMIN_AUTHORIZATION,
              "content-type": "application/grpc",
              te: "trailers",
              "grpc-timeout": far.grpc,
            });
            stream.once("trailers", (t: http2.IncomingHttpHeaders) => resolve(t["grpc-status"] as string | undefined));
            stream.on("error", reject);
            stream.on("close", () => session.close());
            stream.resume();
            stream.end(frame);
          }),
        ]);
        expect({ post: post.status, rest: rest.status, web: web.status }).toEqual({ post: 200, rest: 200, web: 200 });
        const webBody = Buffer.from(await web.arrayBuffer()).toString("latin1");
        expect(web.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(webBody)?.[1]).toBe("0");
        expect(grpcStatus).toBe("0");
      } finally {
        clearTimeout(release);
        await held.release();
      }
    });

    it("a call that finishes before its deadline is unaffected", async () => {
      const client = createClient(RegistryService, transports["grpc over HTTP/2 (h2c)"]!(server.grpcUrl));
      const { id } = await client.createRegistry({ registry: { name: unique("fast"), kind: RegistryKind.HOSTED } });
      expect((await client.getRegistry({ id }, { timeoutMs: 5_000 })).id).toBe(id);
    });
  });

  describe("slow and idle connections", () => {
    /** Connects and feeds `next()` one piece at a time until the server closes the socket. */
    function trickle(port: number, next: (i: number) => string, everyMs: number) {
      return new Promise<{ closed: boolean; received: string; sent: number }>((resolve) => {
        const socket = net.connect(port, "127.0.0.1");
        let received = "";
        let sent = 0;
        let timer: NodeJS.Timeout | undefined;
        const started = Date.now();
        const done = (closed: boolean) => {
          clearInterval(timer);
          socket.destroy();
          resolve({ closed, received, sent });
        };
        socket.on("data", (d) => (received += d.toString("latin1")));
        socket.on("close", () => done(true));
        socket.on("error", () => done(true));
        socket.on("connect", () => {
          timer = setInterval(() => {
            if (Date.now() - started > GUARD_MS) return done(false);
            if (!socket.destroyed) socket.write(next(sent++));
          }, everyMs);
        });
      });
    }

    it("cuts a client that sends its request head byte by byte (HTTP_HEADERS_TIMEOUT_MS)", async () => {
      const head = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
      // After the request line, an endless header sent a byte at a time.
      const result = await trickle(server.http.port, (i) => (i < head.length ? head[i]! : "X-Slow: aaaaaaaa\r\n"[(i - head.length) % 18]!), 20);
      expect(result.closed, "the server kept the slow client").toBe(true);
      expect(result.received).toMatch(/^HTTP\/1\.1 408 /);
      // It stopped the client well before the guard, i.e. because of the headers timeout.
      expect(result.sent).toBeLessThan(GUARD_MS / 20 / 2);
    });

    it("cuts a client that connects and sends nothing", async () => {
      const result = await trickle(server.http.port, () => "", 50);
      expect(result.closed).toBe(true);
      expect(result.received).toBe("");
    });

    it("cuts a request whose body trickles in (HTTP_REQUEST_TIMEOUT_MS)", async () => {
      const head = "POST /v1/registries HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
      const result = await trickle(server.http.port, (i) => (i === 0 ? head : " "), 25);
      expect(result.closed).toBe(true);
      expect(result.received).toMatch(/^HTTP\/1\.1 408 /);
      expect(result.sent).toBeLessThan(GUARD_MS / 25 / 2);
    });

    it("closes an idle HTTP/1.1 keep-alive connection (HTTP_IDLE_TIMEOUT_MS)", async () => {
      const socket = net.connect(server.http.port, "127.0.0.1");
      try {
        let received = "";
        socket.on("data", (d) => (received += d.toString("latin1")));
        const closed = new Promise<boolean>((resolve) => {
          socket.once("close", () => resolve(true));
          setTimeout(() => resolve(false), GUARD_MS).unref();
        });
        await new Promise((resolve) => socket.once("connect", resolve));
        socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n");
        expect(await closed, "the idle connection was kept").toBe(true);
        expect(received).toMatch(/^HTTP\/1\.1 200 /);
      } finally {
        socket.destroy();
      }
    });

    it("closes an idle HTTP/2 connection", async () => {
      const session = http2.connect(server.grpcUrl);
      try {
        const closed = new Promise<boolean>((resolve) => {
          session.once("close", () => resolve(true));
          setTimeout(() => resolve(false), GUARD_MS).unref();
        });
        const req = session.request({ ":path": "/healthz" });
        const status = await new Promise((resolve) => req.once("response", (h) => resolve(h[":status"])));
        req.resume();
        expect(status).toBe(200);
        expect(await closed, "the idle session was kept").toBe(true);
      } finally {
        session.destroy();
      }
    });
  });
});
