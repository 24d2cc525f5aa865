// The rules table covers every method the port serves, and with auth on every method that is not
// open refuses a caller without a valid credential, on every protocol and on REST. The calls are
// generated from the services and the rules table, so a new method is covered (or fails) at once.
import { create, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiServices } from "../src/api/routes.js";
import { rules } from "../src/auth/rules.js";
import { Health } from "../gen/health/v1/health_pb.js";
import { reflectionServices } from "../src/http/reflection.js";
import { readBindings } from "../src/http/rest/bindings.js";
import { databaseKinds } from "./support/database.js";
import { authorization, startAuthServer } from "./support/identity.js";
import { baseUrlFor, transports, transportsWith, type TestServer } from "./support/server.js";

const served = [...apiServices, Health, ...reflectionServices];
const procedure = (m: DescMethod) => `/${m.parent.typeName}/${m.name}`;
const checked = apiServices.flatMap((s) => s.methods).filter((m) => rules.get(procedure(m))?.kind === "check");
const listed = apiServices.flatMap((s) => s.methods).filter((m) => rules.get(procedure(m))?.kind === "list");
const lookedUp = apiServices.flatMap((s) => s.methods).filter((m) => rules.get(procedure(m))?.kind === "lookup");
const UUID = "00000000-0000-4000-8000-000000000001";

describe("the rules table", () => {
  it("has a rule for every method of every served service, and no rule for anything else", () => {
    const methods = served.flatMap((s) => s.methods.map(procedure));
    expect(methods.filter((m) => !rules.has(m))).toEqual([]);
    expect([...rules.keys()].filter((r) => !methods.includes(r))).toEqual([]);
    // Only probes and reflection are open: every artifact.v1 method is judged.
    const open = [...rules].filter(([, r]) => r.kind === "open").map(([m]) => m);
    expect(open.filter((m) => m.startsWith("/artifact."))).toEqual([]);
    expect(checked.length + listed.length + lookedUp.length).toBe(apiServices.flatMap((s) => s.methods).length);
    // Lookups by name are the Lookup methods, and only they.
    expect(lookedUp.map((m) => m.name).every((n) => n.startsWith("Lookup"))).toBe(true);
    expect(apiServices.flatMap((s) => s.methods).filter((m) => m.name.startsWith("Lookup") && !lookedUp.includes(m))).toEqual([]);
  });
});

/** One call of any method with an empty request (a stream: one empty message). */
async function call(transport: Transport, method: DescMethod): Promise<unknown> {
  const client = createClient(method.parent, transport) as unknown as Record<string, (req: unknown, opts?: unknown) => unknown>;
  const fn = client[method.localName]!;
  const input = create(method.input);
  if (method.methodKind === "unary") return fn(input);
  if (method.methodKind === "server_streaming") {
    for await (const _ of fn(input) as AsyncIterable<unknown>) break;
    return undefined;
  }
  throw new Error(`no test call for ${method.methodKind} ${procedure(method)}`);
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    return Code[ConnectError.from(err).code] ?? "unknown";
  }
}

describe.each(databaseKinds())("with auth on, on %s", (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    // Unknown tokens by the hundred from one address: the brute-force throttle would slow them.
    server = await startAuthServer(kind, { auth: { throttle: { threshold: 1_000_000 } } });
  });
  afterAll(() => server?.stop());

  const credentials: Record<string, string | undefined> = {
    "no credential": undefined,
    "an unknown API token": "Bearer art_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "Basic (the API takes Bearer only)": `Basic ${Buffer.from("admin:whatever-password").toString("base64")}`,
  };

  describe.each(Object.keys(transports))("over %s", (transportName) => {
    it.each(Object.keys(credentials))("every checked method refuses %s with UNAUTHENTICATED", async (credName) => {
      const transport = transportsWith([authorization(credentials[credName])])[transportName]!(baseUrlFor(transportName, server));
      const outcomes: Record<string, string> = {};
      for (const method of checked) outcomes[procedure(method)] = await codeOf(call(transport, method));
      expect(outcomes).toEqual(Object.fromEntries(checked.map((m) => [procedure(m), "Unauthenticated"])));
      // Lists answer anonymous callers with what is public (nothing here); a bad credential is refused.
      const listOutcomes: Record<string, string> = {};
      for (const method of listed) listOutcomes[procedure(method)] = await codeOf(call(transport, method));
      const expected = credName === "no credential" ? "ok" : "Unauthenticated";
      expect(listOutcomes).toEqual(Object.fromEntries(listed.map((m) => [procedure(m), expected])));
      // Lookups take anonymous callers too (they find only what is public); an empty name is a bad argument, not a refusal.
      const lookupOutcomes: Record<string, string> = {};
      for (const method of lookedUp) lookupOutcomes[procedure(method)] = await codeOf(call(transport, method));
      const expectedLookup = credName === "no credential" ? "InvalidArgument" : "Unauthenticated";
      expect(lookupOutcomes).toEqual(Object.fromEntries(lookedUp.map((m) => [procedure(m), expectedLookup])));
    });
  });

  it("refuses every checked REST route without a credential (401, UNAUTHENTICATED)", async () => {
    const { bindings } = readBindings(apiServices);
    const judged = bindings.filter((b) => rules.get(procedure(b.method))?.kind === "check");
    expect(new Set(judged.map((b) => procedure(b.method))).size).toBe(checked.length);
    const outcomes: Record<string, string> = {};
    for (const b of judged) {
      // Every path variable gets an id-like value; the refusal comes before anything is looked up.
      const path = b.template.source.replace(/\{[^}]+\}/g, (v) =>
        v.includes("=**") ? "reg/ns/repo" : v.includes("digest") ? `sha256:${"0".repeat(64)}` : UUID,
      );
      const res = await fetch(`${server.httpUrl}${path}`, {
        method: b.httpMethod,
        headers: b.body ? { "content-type": "application/json" } : {},
        body: b.body ? "{}" : undefined,
      });
      const body = (await res.json().catch(() => ({}))) as { code?: string };
      outcomes[`${b.httpMethod} ${path}`] = `${res.status} ${body.code ?? ""}`;
    }
    expect(Object.entries(outcomes).filter(([, o]) => o !== "401 unauthenticated")).toEqual([]);
  });

  it("answers health and reflection without a credential", async () => {
    const res = await fetch(`${server.httpUrl}/grpc.health.v1.Health/Check`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "SERVING" });
  });

  it("lets anonymous admin through under AUTH_ANONYMOUS_ADMIN (the development switch)", async () => {
    const dev = await startAuthServer(kind, { settings: { anonymousAdmin: true } });
    try {
      const transport = transportsWith([])["connect+json over HTTP/1.1"]!(dev.httpUrl);
      const outcomes = await Promise.all(checked.filter((m) => m.name.startsWith("Get")).map((m) => codeOf(call(transport, m))));
      // Get calls with an empty id get past the policy and are refused by validation, not by auth.
      expect(outcomes.filter((o) => o === "Unauthenticated" || o === "PermissionDenied")).toEqual([]);
    } finally {
      await dev.stop();
    }
  });
});
