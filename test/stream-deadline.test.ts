// Server streams and the client's deadline: a stream still open when its deadline passes ends with
// DEADLINE_EXCEEDED, as a unary call does, never with a clean end (Connect `{}`, grpc-status 0) a
// client would take for the server ending the stream; the call's log line says deadline_exceeded.
// WatchEvents and the gRPC health Watch (streams that run until something stops them), over every
// protocol, REST, and an independent client (@grpc/grpc-js). A client's own cancel is no deadline.
//
// The deadline is sent as a header (connect-timeout-ms, grpc-timeout) without a client-side timer:
// a client's own timer would answer DEADLINE_EXCEEDED by itself at the same moment, and the test
// would not see what the server said.
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { Code, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventService } from "../gen/artifact/v1/event_pb.js";
import { Health } from "../gen/health/v1/health_pb.js";
import { createLogger } from "../src/log.js";
import { packageRoot } from "../src/paths.js";
import { REQUEST_ID_HEADER } from "../src/request-id.js";
import { expectCode } from "./support/clients.js";
import { ADMIN_AUTHORIZATION } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { adminMetadata, eventually, target } from "./support/grpc-clients.js";
import { callTransports, startTestServer, type TestServer } from "./support/server.js";

const DEADLINE_MS = 500;
/** Far past DEADLINE_MS: the test's own limit on a stream that does not end. */
const CLIENT_TIMER_MS = 10_000;

type LogLine = Record<string, unknown> & { msg: string };

const eventDefinition = protoLoader.loadSync(["artifact/v1/event.proto"], {
  includeDirs: [join(packageRoot, "proto"), join(packageRoot, "node_modules/google-proto-files")],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
});
const EventServiceClient = (grpc.loadPackageDefinition(eventDefinition) as unknown as { artifact: { v1: { EventService: grpc.ServiceClientConstructor } } })
  .artifact.v1.EventService;

/**
 * Call options that send a deadline of DEADLINE_MS as the protocol puts it on the wire, without the
 * client's timer (no timeoutMs; a far signal only keeps a hung stream from hanging the test), and a
 * request id to find the call's log line.
 */
function deadlineOptions(transportName: string, requestId: string) {
  const deadline: Record<string, string> = transportName.startsWith("grpc")
    ? { "grpc-timeout": `${DEADLINE_MS}m` }
    : { "connect-timeout-ms": String(DEADLINE_MS) };
  return { headers: { ...deadline, [REQUEST_ID_HEADER]: requestId }, signal: AbortSignal.timeout(CLIENT_TIMER_MS) };
}

/** Reads a stream to its end (a clean end resolves, an error rejects). */
async function drain(messages: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of messages) {
    // the first message comes at once; the stream then stays open until something ends it
  }
}

describe.each(databaseKinds())("server streams and the client's deadline on %s", (kind) => {
  let server: TestServer;
  const logs: LogLine[] = [];

  beforeAll(async () => {
    const log = createLogger("info", { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
    server = await startTestServer(kind, { log });
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** The code the call's log line recorded (waits for the line: it is written as the stream ends). */
  async function loggedCode(requestId: string): Promise<unknown> {
    const line = () => logs.find((l) => l.msg === "call" && l.requestId === requestId);
    await eventually(() => line() !== undefined, `the call log line of ${requestId}`, 5_000);
    return line()!.code;
  }

  /** A stream that passed its deadline: DEADLINE_EXCEEDED from the server, soon after the deadline, and in the call log. */
  async function expectDeadlineExceeded(messages: AsyncIterable<unknown>, requestId: string): Promise<void> {
    const started = performance.now();
    await expectCode(drain(messages), Code.DeadlineExceeded);
    const ms = performance.now() - started;
    expect(ms).toBeGreaterThanOrEqual(DEADLINE_MS - 50);
    expect(ms).toBeLessThan(CLIENT_TIMER_MS / 2);
    expect(await loggedCode(requestId)).toBe("deadline_exceeded");
  }

  describe.each(Object.entries(callTransports()))("over %s", (transportName, makeTransport) => {
    it("WatchEvents past its deadline ends with DEADLINE_EXCEEDED, not a clean end", async () => {
      const requestId = `watch-deadline-${randomUUID()}`;
      const events = createClient(EventService, makeTransport(server));
      const messages = events.watchEvents({}, deadlineOptions(transportName, requestId));
      await expectDeadlineExceeded(messages, requestId);
    });

    it("the health Watch past its deadline ends with DEADLINE_EXCEEDED", async () => {
      const requestId = `health-deadline-${randomUUID()}`;
      const health = createClient(Health, makeTransport(server));
      const messages = health.watch({ service: "" }, deadlineOptions(transportName, requestId));
      await expectDeadlineExceeded(messages, requestId);
    });
  });

  // The usual way to set a deadline: here the client's own timer may answer first, so this one
  // cannot tell the server's answer apart (the tests above do); it guards the common case.
  it("WatchEvents with the client's own deadline (connect-es timeoutMs) ends with DEADLINE_EXCEEDED", async () => {
    const [, makeTransport] = Object.entries(callTransports())[0]!;
    const events = createClient(EventService, makeTransport(server));
    await expectCode(drain(events.watchEvents({}, { timeoutMs: DEADLINE_MS })), Code.DeadlineExceeded);
  });

  it("a WatchEvents the client cancels is not logged as deadline_exceeded", async () => {
    const requestId = `watch-cancel-${randomUUID()}`;
    const [, makeTransport] = Object.entries(callTransports())[0]!;
    const events = createClient(EventService, makeTransport(server));
    const controller = new AbortController();
    const iterator = events.watchEvents({}, { signal: controller.signal, headers: { [REQUEST_ID_HEADER]: requestId } })[Symbol.asyncIterator]();
    await iterator.next(); // the first message: the watch is open
    controller.abort();
    await expectCode(iterator.next(), Code.Canceled);
    // Whatever a cancel is logged as, it is not a deadline (a cancel is left as it was).
    expect(await loggedCode(requestId)).not.toBe("deadline_exceeded");
  });

  it("REST /v1/events:watch past its deadline ends with a deadline_exceeded error line", async () => {
    for (const header of [{ "connect-timeout-ms": String(DEADLINE_MS) }, { "grpc-timeout": `${DEADLINE_MS}m` }] as Record<string, string>[]) {
      const requestId = `rest-deadline-${randomUUID()}`;
      const started = performance.now();
      const res = await fetch(`${server.httpUrl}/v1/events:watch`, {
        headers: { authorization: ADMIN_AUTHORIZATION, [REQUEST_ID_HEADER]: requestId, ...header },
        signal: AbortSignal.timeout(CLIENT_TIMER_MS),
      });
      expect(res.status).toBe(200);
      const lines = (await res.text()).trim().split("\n");
      expect(performance.now() - started).toBeLessThan(CLIENT_TIMER_MS / 2);
      expect(JSON.parse(lines.at(-1)!)).toMatchObject({ error: { code: "deadline_exceeded" } });
      expect(await loggedCode(requestId)).toBe("deadline_exceeded");
    }
  });

  it("@grpc/grpc-js: WatchEvents past its deadline ends with DEADLINE_EXCEEDED from the server", async () => {
    const client = new EventServiceClient(target(server.grpcUrl), grpc.credentials.createInsecure());
    try {
      // grpc-timeout as metadata, no call deadline: no client timer, so the status is the server's.
      const requestId = `grpc-js-deadline-${randomUUID()}`;
      const metadata = adminMetadata();
      metadata.set("grpc-timeout", `${DEADLINE_MS}m`);
      metadata.set(REQUEST_ID_HEADER, requestId);
      const status = await new Promise<grpc.StatusObject>((resolve) => {
        const call = (client as unknown as Record<string, (req: object, md: grpc.Metadata) => grpc.ClientReadableStream<unknown>>).WatchEvents!({}, metadata);
        call.on("data", () => {});
        call.on("error", () => {});
        call.on("status", resolve);
      });
      expect(grpc.status[status.code]).toBe("DEADLINE_EXCEEDED");
      expect(status.details).toMatch(/timed out/);
      expect(await loggedCode(requestId)).toBe("deadline_exceeded");

      // And the usual way, a call deadline (grpc-js then also keeps a timer of its own).
      const ended = await new Promise<grpc.StatusObject>((resolve) => {
        const call = (client as unknown as Record<string, (req: object, md: grpc.Metadata, options: grpc.CallOptions) => grpc.ClientReadableStream<unknown>>)
          .WatchEvents!({}, adminMetadata(), { deadline: Date.now() + DEADLINE_MS });
        call.on("data", () => {});
        call.on("error", () => {});
        call.on("status", resolve);
      });
      expect(grpc.status[ended.code]).toBe("DEADLINE_EXCEEDED");
    } finally {
      client.close();
    }
  });
});
