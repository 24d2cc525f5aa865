// The REST transcoder against a service built for it: the shapes the catalog protos do not
// have yet (multi-segment `**` followed by literals, custom verbs, nested and repeated query
// parameters, enums, int64, timestamps, field masks, response_body, server streaming,
// deadlines, HttpBody methods skipped). The service descriptor is assembled here from a
// FileDescriptorProto, so the test needs no generated code; requests are plain fetch and
// node:http2 calls to a real listening server.
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, createFileRegistry, setExtension, type DescService } from "@bufbuild/protobuf";
import {
  file_google_protobuf_field_mask,
  file_google_protobuf_timestamp,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  MethodOptionsSchema,
  type FieldMask,
  type Timestamp,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { http } from "../gen/google/api/annotations_pb.js";
import { HttpRuleSchema } from "../gen/google/api/http_pb.js";
import { callInterceptor, requestIdKey } from "../src/api/interceptors/call.js";
import { Listener } from "../src/http/listener.js";
import { createRestHandler } from "../src/http/rest/transcoder.js";
import { quietLog } from "./support/database.js";

type Rule = Parameters<typeof create<typeof HttpRuleSchema>>[1];

/** The echo service's JSON answer: the call it saw (or, with response_body, the request alone), or a Connect error. */
interface EchoJson {
  [field: string]: unknown;
  method?: string;
  request?: { [field: string]: unknown; name?: string; reference?: string };
  requestId?: string;
  timeoutMs?: string;
  code?: string;
  message?: string;
}

function method(name: string, rule: Rule | undefined, opts: { output?: string; serverStreaming?: boolean } = {}) {
  const options = create(MethodOptionsSchema);
  if (rule) setExtension(options, http, create(HttpRuleSchema, rule));
  return {
    name,
    inputType: ".test.rest.v1.EchoRequest",
    outputType: opts.output ?? ".test.rest.v1.EchoResponse",
    serverStreaming: opts.serverStreaming ?? false,
    options,
  };
}

const field = (name: string, number: number, type: Type, extra: { typeName?: string; repeated?: boolean } = {}) => ({
  name,
  number,
  type,
  typeName: extra.typeName,
  label: extra.repeated ? Label.REPEATED : Label.OPTIONAL,
  jsonName: name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()),
});

function echoService(methods = echoMethods()): DescService {
  const httpBody = create(FileDescriptorProtoSchema, {
    name: "google/api/httpbody.proto",
    package: "google.api",
    syntax: "proto3",
    messageType: [{ name: "HttpBody", field: [field("content_type", 1, Type.STRING), field("data", 2, Type.BYTES)] }],
  });
  const file = create(FileDescriptorProtoSchema, {
    name: "test/rest/v1/echo.proto",
    package: "test.rest.v1",
    syntax: "proto3",
    dependency: ["google/protobuf/timestamp.proto", "google/protobuf/field_mask.proto", "google/api/httpbody.proto"],
    enumType: [
      {
        name: "Color",
        value: [
          { name: "COLOR_UNSPECIFIED", number: 0 },
          { name: "COLOR_RED", number: 1 },
          { name: "COLOR_BLUE", number: 2 },
        ],
      },
    ],
    messageType: [
      { name: "Inner", field: [field("a", 1, Type.STRING), field("b", 2, Type.INT64)] },
      {
        name: "EchoRequest",
        field: [
          field("name", 1, Type.STRING),
          field("reference", 2, Type.STRING),
          field("big", 3, Type.INT64),
          field("tags", 4, Type.STRING, { repeated: true }),
          field("inner", 5, Type.MESSAGE, { typeName: ".test.rest.v1.Inner" }),
          field("flag", 6, Type.BOOL),
          field("at", 7, Type.MESSAGE, { typeName: ".google.protobuf.Timestamp" }),
          field("mask", 8, Type.MESSAGE, { typeName: ".google.protobuf.FieldMask" }),
          field("color", 9, Type.ENUM, { typeName: ".test.rest.v1.Color" }),
          field("colors", 10, Type.ENUM, { typeName: ".test.rest.v1.Color", repeated: true }),
          field("ratio", 11, Type.DOUBLE),
        ],
      },
      {
        name: "EchoResponse",
        field: [
          field("request", 1, Type.MESSAGE, { typeName: ".test.rest.v1.EchoRequest" }),
          field("method", 2, Type.STRING),
          field("request_id", 3, Type.STRING),
          field("timeout_ms", 4, Type.INT64),
        ],
      },
    ],
    service: [{ name: "EchoService", method: methods }],
  });
  const deps = new Map<string, unknown>([
    ["google/protobuf/timestamp.proto", file_google_protobuf_timestamp],
    ["google/protobuf/field_mask.proto", file_google_protobuf_field_mask],
    ["google/api/httpbody.proto", httpBody],
  ]);
  const registry = createFileRegistry(file, (name) => deps.get(name) as never);
  return registry.getService("test.rest.v1.EchoService")!;
}

function echoMethods() {
  return [
    method("GetManifest", { pattern: { case: "get", value: "/v1/images/{name=**}/manifests/{reference}" } }),
    method("Ping", { pattern: { case: "post", value: "/v1/things/{name}:ping" }, body: "*" }),
    method("Sync", { pattern: { case: "post", value: "/v1/things/{name}:sync" } }),
    method("GetThing", {
      pattern: { case: "get", value: "/v1/things/{name}" },
      additionalBindings: [{ pattern: { case: "get", value: "/v1/shelves/{inner.a}/things/{name}" } }],
    }),
    method("Echo", { pattern: { case: "get", value: "/v1/echo" }, responseBody: "request" }),
    method("PutInner", { pattern: { case: "put", value: "/v1/inner/{name}" }, body: "inner" }),
    method("Count", { pattern: { case: "get", value: "/v1/count/{name}" } }, { serverStreaming: true }),
    method("Slow", { pattern: { case: "get", value: "/v1/slow" } }),
    method("Download", { pattern: { case: "get", value: "/v1/download" } }, { output: ".google.api.HttpBody" }),
    method("NoRest", undefined),
  ];
}

interface Echo {
  name: string;
  reference: string;
  big: bigint;
  tags: string[];
  inner?: { a: string; b: bigint };
  flag: boolean;
  at?: Timestamp;
  mask?: FieldMask;
  color: number;
  colors: number[];
  ratio: number;
}

const service = echoService();

function routes(router: ConnectRouter) {
  const reply = (name: string) => (req: Echo, ctx: HandlerContext) => ({
    request: req,
    method: name,
    requestId: ctx.values.get(requestIdKey),
    timeoutMs: BigInt(ctx.timeoutMs() ?? 0),
  });
  router.service(service as never, {
    getManifest: reply("GetManifest"),
    ping: reply("Ping"),
    sync: reply("Sync"),
    getThing: reply("GetThing"),
    echo: reply("Echo"),
    putInner: reply("PutInner"),
    async *count(req: Echo, ctx: HandlerContext) {
      for (let i = 0n; i < req.big; i++) yield { ...reply("Count")(req, ctx), timeoutMs: i };
      if (req.flag) throw new ConnectError("the count failed", Code.FailedPrecondition);
    },
    async slow(req: Echo, ctx: HandlerContext) {
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
      return reply("Slow")(req, ctx);
    },
    download: () => ({}),
    noRest: reply("NoRest"),
  });
}

describe("REST transcoder", () => {
  let listener: Listener;
  let base: string;
  beforeAll(async () => {
    const rest = createRestHandler({
      services: [service],
      routes,
      interceptors: [callInterceptor(quietLog)],
      maxBodyBytes: 1024,
    });
    listener = new Listener(
      (req, res) =>
        rest(req, res, () => {
          res.writeHead(418);
          res.end("not ours");
        }),
      { headersTimeoutMs: 10_000, requestTimeoutMs: 0, idleTimeoutMs: 10_000 },
    );
    const address: AddressInfo = await listener.listen("127.0.0.1", 0);
    base = `http://127.0.0.1:${address.port}`;
  });
  afterAll(() => listener?.close(1_000));

  const get = async (path: string, init?: RequestInit) => {
    const res = await fetch(base + path, init);
    return { status: res.status, headers: res.headers, json: (await res.json()) as EchoJson };
  };

  it("captures a multi-segment ** followed by literal segments", async () => {
    const r = await get("/v1/images/local/team/manifests/app/manifests/sha256:abc");
    expect(r.status).toBe(200);
    expect(r.json.method).toBe("GetManifest");
    // A repository component may itself be called "manifests": the literal tail decides.
    expect(r.json.request?.name).toBe("local/team/manifests/app");
    expect(r.json.request?.reference).toBe("sha256:abc");
  });

  it("decodes ** captures but keeps an encoded slash encoded; decodes single segments fully", async () => {
    const multi = await get("/v1/images/a%20b/c%2Fd/manifests/v%2F1");
    expect(multi.json.request?.name).toBe("a b/c%2Fd");
    expect(multi.json.request?.reference).toBe("v/1");
    const single = await get("/v1/things/caf%C3%A9%3Aping");
    expect(single.json).toMatchObject({ method: "GetThing", request: { name: "café:ping" } });
  });

  it("routes custom verbs, and falls back to the plain template for other methods", async () => {
    const ping = await get("/v1/things/t1:ping", { method: "POST", body: JSON.stringify({ ratio: 0.5 }), headers: { "content-type": "application/json" } });
    expect(ping.json).toMatchObject({ method: "Ping", request: { name: "t1", ratio: 0.5 } });
    const sync = await get("/v1/things/t1:sync", { method: "POST" });
    expect(sync.json).toMatchObject({ method: "Sync", request: { name: "t1" } });
    // GET has no :sync rule, so the whole last segment is the {name} of GetThing.
    const thing = await get("/v1/things/t1:sync");
    expect(thing.json).toMatchObject({ method: "GetThing", request: { name: "t1:sync" } });
    const wrong = await get("/v1/things/t1:ping", { method: "DELETE" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, POST");
  });

  it("serves additional_bindings with nested path fields", async () => {
    const r = await get("/v1/shelves/s1/things/t2");
    expect(r.json).toMatchObject({ method: "GetThing", request: { name: "t2", inner: { a: "s1" } } });
  });

  it("maps query parameters: nested, repeated, enums by name and number, int64, bool, timestamp, field mask", async () => {
    const q = new URLSearchParams([
      ["name", "n"],
      ["inner.a", "x"],
      ["inner.b", "9007199254740993"],
      ["tags", "one"],
      ["tags", "two"],
      ["color", "COLOR_BLUE"],
      ["colors", "COLOR_RED"],
      ["colors", "2"],
      ["big", "-5"],
      ["flag", "true"],
      ["at", "2024-01-02T03:04:05Z"],
      ["mask", "inner.b,media_type,createTime"],
      ["ratio", "1.25"],
    ]);
    const r = await get(`/v1/echo?${q.toString()}`);
    expect(r.status).toBe(200);
    // response_body: the body is the `request` field, not the whole response.
    expect(r.json).toEqual({
      name: "n",
      inner: { a: "x", b: "9007199254740993" },
      tags: ["one", "two"],
      color: "COLOR_BLUE",
      colors: ["COLOR_RED", "COLOR_BLUE"],
      big: "-5",
      flag: true,
      at: "2024-01-02T03:04:05Z",
      mask: "inner.b,mediaType,createTime",
      ratio: 1.25,
    });
  });

  it("rejects unknown, repeated-singular, path-bound and malformed query parameters with 400 naming them", async () => {
    const cases: Array<[string, RegExp]> = [
      ["/v1/echo?nope=1", /unknown query parameter "nope"/],
      ["/v1/echo?inner.nope=1", /unknown query parameter "inner.nope"/],
      ["/v1/echo?name=a&name=b", /"name" is given 2 times/],
      ["/v1/echo?inner.b=1&inner.b=2", /"inner.b" is given 2 times/],
      ["/v1/things/t?tags=a&page=1", /unknown query parameter "page"/],
      ["/v1/echo?ratio=1&ratio=2", /"ratio" is given 2 times/],
      ["/v1/things/t?name=x", /query parameter "name": name is set by the path/],
      ["/v1/echo?big=1.5", /query parameter "big"/],
      ["/v1/echo?flag=yes", /query parameter "flag": "yes" is not a boolean/],
      ["/v1/echo?color=COLOR_GREEN", /query parameter "color"/],
      ["/v1/echo?inner=x", /query parameter "inner": test.rest.v1.Inner is a message/],
      ["/v1/echo?at=yesterday", /query parameter "at"/],
    ];
    for (const [path, message] of cases) {
      const r = await get(path);
      expect(r.status, path).toBe(400);
      expect(r.json.code, path).toBe("invalid_argument");
      expect(r.json.message, path).toMatch(message);
    }
  });

  it('binds body: "<field>" and lets the path win over the same field', async () => {
    const r = await get("/v1/inner/n1", { method: "PUT", body: JSON.stringify({ a: "x", b: "7" }), headers: { "content-type": "application/json" } });
    expect(r.json).toMatchObject({ method: "PutInner", request: { name: "n1", inner: { a: "x", b: "7" } } });
    const unknown = await get("/v1/inner/n1", { method: "PUT", body: JSON.stringify({ a: "x", zzz: 1 }), headers: { "content-type": "application/json" } });
    expect(unknown.status).toBe(400);
    expect(unknown.json.message).toMatch(/zzz/);
    const ping = await get("/v1/things/t1:ping", {
      method: "POST",
      body: JSON.stringify({ name: "body-name" }),
      headers: { "content-type": "application/json" },
    });
    expect(ping.json.request?.name).toBe("t1");
    const query = await get("/v1/things/t1:ping?ratio=2", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    expect(query.status).toBe(400);
    expect(query.json.message).toMatch(/the body carries the whole request/);
  });

  it("forwards x-request-id through the interceptors and returns it", async () => {
    const r = await get("/v1/things/t1", { headers: { "x-request-id": "req-123" } });
    expect(r.json.requestId).toBe("req-123");
    expect(r.headers.get("x-request-id")).toBe("req-123");
    const made = await get("/v1/things/t1");
    expect(made.headers.get("x-request-id")).toBe(made.json.requestId);
    expect(made.json.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const onError = await get("/v1/nothing-here", { headers: { "x-request-id": "req-404" } });
    expect(onError.headers.get("x-request-id")).toBe("req-404");
  });

  it("forwards the client deadline and answers 504 deadline_exceeded when it passes", async () => {
    const r = await get("/v1/things/t1", { headers: { "connect-timeout-ms": "5000" } });
    expect(Number(r.json.timeoutMs)).toBeGreaterThan(4000);
    expect(Number(r.json.timeoutMs)).toBeLessThanOrEqual(5000);
    const g = await get("/v1/things/t1", { headers: { "grpc-timeout": "3S" } });
    expect(Number(g.json.timeoutMs)).toBeGreaterThan(2000);
    const slow = await get("/v1/slow", { headers: { "connect-timeout-ms": "100" } });
    expect(slow.status).toBe(504);
    expect(slow.json.code).toBe("deadline_exceeded");
    const bad = await get("/v1/things/t1", { headers: { "connect-timeout-ms": "soon" } });
    expect(bad.status).toBe(400);
  });

  it("streams server-streaming responses as NDJSON, an error as a last line", async () => {
    const ok = await fetch(`${base}/v1/count/c?big=3`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await ok.text())
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as EchoJson);
    expect(lines.map((l) => l.timeoutMs ?? "0")).toEqual(["0", "1", "2"]);
    const failing = await fetch(`${base}/v1/count/c?big=2&flag=true`);
    const failed = (await failing.text())
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as EchoJson);
    expect(failed).toHaveLength(3);
    expect(failed[2]).toEqual({ error: { code: "failed_precondition", message: "the count failed" } });
    // Failing before the first message: an ordinary error response with its status.
    const early = await get("/v1/count/c?flag=true");
    expect(early.status).toBe(400);
    expect(early.json).toEqual({ code: "failed_precondition", message: "the count failed" });
  });

  it("skips HttpBody methods and methods without a rule, and leaves foreign paths to the next handler", async () => {
    expect((await get("/v1/download")).status).toBe(404);
    expect((await fetch(`${base}/elsewhere`)).status).toBe(418);
  });

  it("answers 404, 405, 415, 413 and malformed JSON with Connect error JSON", async () => {
    const json = { "content-type": "application/json" };
    expect((await get("/v1/images")).json).toEqual({ code: "not_found", message: "no REST route for GET /v1/images" });
    expect((await get("/v1/things/")).status).toBe(404);
    const form = await get("/v1/things/t:ping", { method: "POST", body: "a=b", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(form.status).toBe(415);
    const none = await get("/v1/things/t:ping", { method: "POST", body: new Blob(["{}"]) });
    expect(none.status).toBe(415);
    const latin = await get("/v1/things/t:ping", { method: "POST", body: "{}", headers: { "content-type": "application/json; charset=latin1" } });
    expect(latin.status).toBe(415);
    const big = await get("/v1/things/t:ping", { method: "POST", body: JSON.stringify({ name: "x".repeat(2000) }), headers: json });
    expect(big.status).toBe(413);
    expect(big.json.code).toBe("resource_exhausted");
    const malformed = await get("/v1/things/t:ping", { method: "POST", body: '{"ratio": ', headers: json });
    expect(malformed.status).toBe(400);
    expect(malformed.json.message).toMatch(/malformed JSON/);
    const vendor = await get("/v1/things/t:ping", { method: "POST", body: "{}", headers: { "content-type": "application/vnd.api+json; charset=utf-8" } });
    expect(vendor.status).toBe(200);
  });

  it("serves HTTP/2 (h2c) too, including a body over the limit", async () => {
    const session = http2.connect(base);
    try {
      const request = (headers: http2.OutgoingHttpHeaders, body?: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const stream = session.request(headers);
          let text = "";
          let status = 0;
          stream.on("response", (h) => (status = Number(h[":status"])));
          stream.setEncoding("utf8");
          stream.on("data", (c: string) => (text += c));
          stream.on("end", () => resolve({ status, body: text }));
          stream.on("error", reject);
          stream.end(body);
        });
      const ok = await request({ ":path": "/v1/images/a/b/manifests/latest" });
      expect(ok.status).toBe(200);
      expect((JSON.parse(ok.body) as EchoJson).request?.name).toBe("a/b");
      const big = await request(
        { ":method": "POST", ":path": "/v1/things/t:ping", "content-type": "application/json" },
        JSON.stringify({ name: "y".repeat(5000) }),
      );
      expect(big.status).toBe(413);
    } finally {
      session.close();
    }
  });
});

describe("bad google.api.http rules fail at start-up", () => {
  const build =
    (...extra: ReturnType<typeof method>[]) =>
    () =>
      createRestHandler({ services: [echoService([...echoMethods(), ...extra])], routes, interceptors: [], maxBodyBytes: 1024 });

  it("accepts the fixture as it is", () => {
    expect(build()).not.toThrow();
  });

  it.each([
    ["two rules for one method and path", method("Other", { pattern: { case: "get", value: "/v1/things/{reference}" } }), /both bind GET/],
    ["a path variable on a message field", method("Other", { pattern: { case: "get", value: "/v2/{inner}" } }), /singular scalar or enum/],
    ["a path variable on a missing field", method("Other", { pattern: { case: "get", value: "/v2/{nope}" } }), /has no field nope/],
    ["a body naming a missing field", method("Other", { pattern: { case: "post", value: "/v2/x" }, body: "nope" }), /body: .* has no field nope/],
    ["a response_body naming a missing field", method("Other", { pattern: { case: "get", value: "/v2/x" }, responseBody: "nope" }), /response_body/],
    ["a malformed template", method("Other", { pattern: { case: "get", value: "/v2/{x" } }), /unclosed variable/],
  ])("rejects %s", (_, bad, why) => {
    expect(build(bad)).toThrow(why);
  });
});
