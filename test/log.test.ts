// The logger: errors written without SQL parameters or credentials (below), and a destination
// that never throws and never hangs when its reader is gone (EPIPE): the service must stop on a
// signal even when whatever read its stdout has exited (test/main.test.ts runs the whole scenario
// with `head -n 3`).
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { callInterceptor } from "../src/api/interceptors/call.js";
import type { DatabaseHandle } from "../src/db/database.js";
import { registries } from "../src/db/schema.js";
import { createLogger, StdoutLines, type LoggedError } from "../src/log.js";
import { statusError } from "../src/upstream/errors.js";
import { databaseKinds, openTestDatabase } from "./support/database.js";

const dir = mkdtempSync(join(tmpdir(), "artifact-log-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("writes whole lines, then gives up on a pipe whose reader closed, without throwing", () => {
  const fifo = join(dir, "pipe");
  execFileSync("mkfifo", [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(fifo, "w");
  const lines = new StdoutLines(writer);
  const log = createLogger("info", lines);
  log.info({ n: 1 }, "first");
  const buffer = Buffer.alloc(4096);
  const read = readSync(reader, buffer);
  expect(JSON.parse(buffer.subarray(0, read).toString())).toMatchObject({ msg: "first", n: 1, service: "artifact-service" });
  expect(lines.broken).toBe(false);

  closeSync(reader);
  for (let i = 0; i < 100; i++) log.info({ i }, "into a broken pipe");
  expect(lines.broken).toBe(true);
  closeSync(writer);
});

it("gives up on a descriptor that is not open (EBADF) instead of throwing", () => {
  const lines = new StdoutLines(987654);
  expect(() => lines.write('{"msg":"nowhere"}\n')).not.toThrow();
  expect(lines.broken).toBe(true);
});

// Errors reach the log only through the `err` serializer of src/log.ts: a database error keeps its
// message, code and constraint but never the values of the statement, and nothing that holds a
// credential (user info in a URL, an Authorization value, a signed URL) is written.
describe.each(databaseKinds())("errors in the log on %s", (kind) => {
  let database: DatabaseHandle;
  const NAME = "name-only-in-the-parameters";
  const DESCRIPTION = "description-only-in-the-parameters";

  beforeAll(async () => {
    database = await openTestDatabase(kind);
    await database.db.insert(registries).values({ name: NAME, kind: "hosted" });
  });
  afterAll(async () => {
    await database?.close();
  });

  /** A unique violation on a registry name, straight from the driver (no store translates it). */
  async function uniqueViolation(): Promise<unknown> {
    return database.db
      .insert(registries)
      .values({ name: NAME, kind: "hosted", description: DESCRIPTION })
      .then(
        () => expect.fail("the duplicate was inserted"),
        (err: unknown) => err,
      );
  }

  function capture() {
    const lines: string[] = [];
    return { lines, log: createLogger("info", { write: (line: string) => void lines.push(line) }) };
  }

  it("a database error keeps its message, code and constraint, never the statement's parameters", async () => {
    const err = await uniqueViolation();
    // What would leak without the serializer: the driver's error carries every parameter.
    expect(JSON.stringify({ message: (err as Error).message, stack: (err as Error).stack })).toContain(DESCRIPTION);

    const { lines, log } = capture();
    log.error({ err }, "it failed");
    const text = lines.join("");
    expect(text).not.toContain(NAME);
    expect(text).not.toContain(DESCRIPTION);
    const logged = (JSON.parse(lines[0]!) as { err: LoggedError }).err;
    expect(logged.message).toMatch(/^Failed query: insert into "registries"/);
    expect(logged.stack).toMatch(/^\s+at /);
    expect(logged.cause).toMatchObject({ code: "23505", constraint: "registries_name_unique", message: expect.stringMatching(/duplicate key/) as string });
  });

  it("an unexpected error of a call is logged by the call interceptor the same way", async () => {
    const { lines, log } = capture();
    const transport = createRouterTransport(
      (router) =>
        router.service(RegistryService, {
          async createRegistry() {
            throw await uniqueViolation();
          },
        }),
      { router: { interceptors: [callInterceptor(log)] } },
    );
    const client = createClient(RegistryService, transport);
    const err = await client.createRegistry({}).then(
      () => expect.fail("the call succeeded"),
      (e: unknown) => ConnectError.from(e),
    );
    expect(err.code).toBe(Code.Internal);
    const text = lines.join("");
    expect(text).toContain('"msg":"unexpected error"');
    expect(text).toContain("registries_name_unique");
    expect(text).not.toContain(NAME);
    expect(text).not.toContain(DESCRIPTION);
  });
});

it("an upstream error never writes the credentials a URL, a header value or a signed link holds", () => {
  const body = JSON.stringify({
    errors: [{ code: "UNKNOWN", message: "proxy to https://admin:hunter2-pw@backend.internal/v2/ failed, sent Bearer eyJhbGciOiJFUzI1NiJ9.payload" }],
  });
  let invalidUrl: unknown;
  try {
    new URL("https://admin:hunter2-pw@back end.internal/?X-Amz-Signature=signed-secret");
  } catch (e) {
    invalidUrl = e;
  }
  // Node's URL error carries the whole input in a field of its own.
  expect(JSON.stringify(invalidUrl)).toContain("hunter2-pw");
  const err = statusError(502, "registry.example", { what: "manifest team/app:1.0" }, { body: Buffer.from(body), hasCredential: true });
  Object.assign(err, { cause: invalidUrl });

  const lines: string[] = [];
  const log = createLogger("info", { write: (line: string) => void lines.push(line) });
  log.warn({ err }, "upstream failed");
  const text = lines.join("");
  expect(text).toContain("registry.example answered 502");
  expect(text).toContain("backend.internal");
  expect(text).not.toContain("hunter2-pw");
  expect(text).not.toContain("eyJhbGciOiJFUzI1NiJ9");
  expect(text).not.toContain("signed-secret");
  expect((JSON.parse(lines[0]!) as { err: LoggedError }).err).toMatchObject({ type: "UpstreamError", kind: "unavailable", cause: { code: "ERR_INVALID_URL" } });
});
