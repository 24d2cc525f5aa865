// An answer given before the request's body was read (a refusal: no credentials, an upload another
// request is writing, a body over a limit) must reach the client whole, over HTTP/1.1 too, where the
// rest of the body is still on its way. Closing the socket with unread bytes in it makes the kernel
// send a reset, and a client (or a balancer such as nginx, which then answers 502) may lose the
// answer to it. The service answers, half-closes, and reads what the client still sends for a
// bounded time (a lingering close), so the client reads the answer and ends the connection itself.
//
// Every kind of early answer is sent by a raw client that keeps writing its body until the answer
// has arrived, directly and through nginx with request buffering off (the replicas' balancer).
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { ADMIN_BASIC, ADMIN_TOKEN } from "./support/credentials.js";
import { catalogClients, unique } from "./support/clients.js";
import { haveNginx, startBalancer, type Balancer } from "./support/balancer.js";
import { databaseKinds } from "./support/database.js";
import { LINGER_IDLE_MS, LINGER_MAX_MS } from "../src/http/listener.js";
import { completeAnswer } from "./support/fuzz/wire.js";
import { pathOf, RegistryClient } from "./support/registry-client.js";
import { startTestServer, transports, type TestServer } from "./support/server.js";

const MiB = 1024 * 1024;
/** Far more than socket buffers hold: the client is still writing when the answer comes. */
const BODY_BYTES = 48 * MiB;
const nginx = haveNginx("test/early-answers.test.ts (the answers through nginx)");

interface Outcome {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Body bytes the client had written when the answer was complete. */
  sent: number;
  /** An error on the client's socket (ECONNRESET, EPIPE: the server reset the connection). */
  socketError?: string;
}

/**
 * What the client does once it has the answer: stop and end the connection (what clients do),
 * go on sending the body regardless, or stop sending and keep its side open.
 */
type After = "end" | "keep-sending" | "stay-silent";

/**
 * One HTTP/1.1 request on a connection of its own, its body written as fast as the connection
 * takes it until the whole answer has arrived; then the client does `after`. Resolves once the
 * connection is closed.
 */
function sendUntilAnswered(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  after: After = "end",
  total = BODY_BYTES,
): Promise<Outcome & { closedAfterAnswerMs: number }> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, allowHalfOpen: after !== "end" });
    const chunk = Buffer.alloc(64 * 1024, 0x7b);
    // transfer-encoding: chunked (no length to refuse up front: the server reads up to its limit).
    const chunked = headers["transfer-encoding"] === "chunked";
    const frame = (data: Buffer) => (chunked ? Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from("\r\n")]) : data);
    const full = frame(chunk);
    let received = Buffer.alloc(0);
    let sent = 0;
    let answer: Omit<Outcome, "sent" | "socketError"> | undefined;
    let socketError: string | undefined;
    let sentAtAnswer = 0;
    let answeredAt = 0;
    const pump = () => {
      while ((!answer || after === "keep-sending") && sent < total && !socket.destroyed) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!socket.write(n === chunk.length ? full : frame(chunk.subarray(0, n)))) return void socket.once("drain", pump);
      }
    };
    socket.on("data", (data: Buffer) => {
      received = Buffer.concat([received, data]);
      if (answer) return;
      answer = completeAnswer(received);
      if (!answer) return;
      sentAtAnswer = sent;
      answeredAt = performance.now();
      if (after === "end") socket.end();
      // Silent past the idle bound, then one byte: on a connection the server has closed it is
      // answered with a reset, and the next write fails.
      if (after === "stay-silent") {
        setTimeout(() => {
          socket.write("x");
          setTimeout(
            () =>
              socket.write("x", (err?: NodeJS.ErrnoException | null) => {
                if (err) socketError = err.code ?? err.message;
                socket.destroy();
              }),
            500,
          );
        }, LINGER_IDLE_MS + 2_000);
      }
    });
    socket.on("error", (err: NodeJS.ErrnoException) => (socketError = err.code ?? err.message));
    socket.on("close", () =>
      resolve({
        ...(answer ?? { status: 0, headers: {}, body: "" }),
        sent: sentAtAnswer || sent,
        ...(socketError ? { socketError } : {}),
        closedAfterAnswerMs: answeredAt ? performance.now() - answeredAt : -1,
      }),
    );
    const head = Object.entries({ host: `127.0.0.1:${port}`, ...(chunked ? {} : { "content-length": String(total) }), ...headers })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("");
    socket.write(`${method} ${path} HTTP/1.1\r\n${head}\r\n`);
    pump();
  });
}

interface Case {
  name: string;
  /** The request: method, path and headers (content-length is the body's, unless chunked). */
  request: () => Promise<[string, string, Record<string, string>]>;
  status: number;
  /** What the answer's JSON body says (an OCI error code, a Connect code, a REST code). */
  says: RegExp;
}

describe.each(databaseKinds())("answers before the body is read, on %s", (kind) => {
  let server: TestServer;
  let reg: RegistryClient;
  let hosted: string;
  let balancer: Balancer | undefined;
  const octets = { "content-type": "application/octet-stream" };

  beforeAll(async () => {
    server = await startTestServer(kind);
    reg = new RegistryClient(server.httpUrl);
    hosted = unique("early");
    await catalogClients(transports["connect+json over HTTP/1.1"]!(server.httpUrl)).registries.createRegistry({
      registry: { name: hosted, kind: RegistryKind.HOSTED },
    });
    if (nginx) balancer = await startBalancer([server.http.port]);
  }, 60_000);
  afterAll(async () => {
    await balancer?.stop();
    await server?.stop();
  });

  /** A fresh upload session's path, with `written` bytes in it. */
  const session = async (written = 0): Promise<string> => {
    const start = await reg.req("POST", `/v2/${hosted}/team/app/blobs/uploads/`);
    expect(start.status).toBe(202);
    const location = pathOf(start.headers.get("location"));
    if (written > 0) {
      const patched = await reg.req("PATCH", location, { headers: { ...octets, "content-range": `0-${written - 1}` }, body: Buffer.alloc(written, 1) });
      expect(patched.status).toBe(202);
    }
    return location;
  };

  const cases: Case[] = [
    {
      name: "an upload chunk without credentials: 401",
      request: async () => ["PATCH", await session(), octets],
      status: 401,
      says: /"code":"UNAUTHORIZED"/,
    },
    {
      name: "a chunk for an upload that does not exist: 404",
      request: async () => ["PATCH", `/v2/${hosted}/team/app/blobs/uploads/00000000-0000-4000-8000-000000000000`, { ...octets, authorization: ADMIN_BASIC }],
      status: 404,
      says: /"code":"BLOB_UPLOAD_UNKNOWN"/,
    },
    {
      name: "a chunk that does not start where the upload stands: 416",
      request: async () => ["PATCH", await session(1000), { ...octets, authorization: ADMIN_BASIC, "content-range": `5000-${5000 + BODY_BYTES - 1}` }],
      status: 416,
      says: /"code":"BLOB_UPLOAD_INVALID"/,
    },
    {
      name: "a manifest over the size limit: 413",
      request: async () => [
        "PUT",
        `/v2/${hosted}/team/app/manifests/big`,
        { "content-type": "application/vnd.oci.image.manifest.v1+json", authorization: ADMIN_BASIC },
      ],
      status: 413,
      says: /"code":"(MANIFEST_INVALID|SIZE_INVALID|UNSUPPORTED)"/,
    },
    // Refused after part of the body was read (no Content-Length to judge by): the handler had
    // started reading, and the rest must still be read and dropped for the answer to arrive.
    {
      name: "a chunked manifest over the size limit, refused once 4 MiB are read: 413",
      request: async () => [
        "PUT",
        `/v2/${hosted}/team/app/manifests/chunked`,
        { "content-type": "application/vnd.oci.image.manifest.v1+json", authorization: ADMIN_BASIC, "transfer-encoding": "chunked" },
      ],
      status: 413,
      says: /"code":"(MANIFEST_INVALID|SIZE_INVALID|UNSUPPORTED)"/,
    },
    {
      name: "a chunked REST body over the size limit, refused once 4 MiB are read: 413",
      request: async () => [
        "POST",
        "/v1/registries",
        { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}`, "transfer-encoding": "chunked" },
      ],
      status: 413,
      says: /resource_exhausted|too large|larger than/i,
    },
    {
      name: "a REST body over the size limit: 413",
      request: async () => ["POST", "/v1/registries", { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` }],
      status: 413,
      says: /resource_exhausted|too large/i,
    },
    {
      name: "a token request with a body over the size limit",
      request: async () => ["POST", "/auth/token", { "content-type": "application/x-www-form-urlencoded" }],
      status: 413,
      says: /larger than 65536 bytes/,
    },
  ];

  it.each(cases)("directly: $name, then the client ends the connection itself", async ({ request, status, says }) => {
    const [method, path, headers] = await request();
    const outcome = await sendUntilAnswered(server.http.port, method, path, headers);
    expect({ status: outcome.status, connection: outcome.headers.connection, socketError: outcome.socketError }, outcome.body).toEqual({
      status,
      connection: "close",
      socketError: undefined,
    });
    expect(outcome.body).toMatch(says);
    // The answer came before the body was through: this is the case the test is about.
    expect(outcome.sent).toBeLessThan(BODY_BYTES);
  });

  it.skipIf(!nginx).each(cases)("through nginx, streaming the body: $name, never the balancer's 502", async ({ request, status, says }) => {
    // Several rounds: whether nginx reads the answer before the reset was a race.
    for (let round = 0; round < 5; round++) {
      const [method, path, headers] = await request();
      const outcome = await sendUntilAnswered(balancer!.port, method, path, headers);
      expect(outcome.status, `round ${round}: ${outcome.body.slice(0, 300)}`).toBe(status);
      expect(outcome.body).toMatch(says);
    }
  });

  // The bounds: a client that ignores the answer is not served for ever.
  it.each<[After, number]>([
    ["keep-sending", LINGER_MAX_MS],
    ["stay-silent", LINGER_IDLE_MS],
  ])(
    "a client that does %s after the answer is cut within the lingering bound",
    async (after, bound) => {
      // A declared terabyte: the client is still sending when the connection is cut.
      const outcome = await sendUntilAnswered(
        server.http.port,
        "PATCH",
        await session(),
        octets,
        after,
        after === "keep-sending" ? 1024 * 1024 * MiB : BODY_BYTES,
      );
      expect(outcome.status).toBe(401);
      expect(outcome.socketError, "the server closed the connection").toMatch(/^(ECONNRESET|EPIPE)$/);
      expect(outcome.closedAfterAnswerMs).toBeGreaterThan(0);
      expect(outcome.closedAfterAnswerMs).toBeLessThan(bound + 5_000);
    },
    60_000,
  );
});
