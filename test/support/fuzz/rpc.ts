// Fuzzed calls of every method of every service the server offers, over Connect (JSON, binary,
// unary POST and GET, streaming envelopes), gRPC and gRPC-Web, on HTTP/1.1 and HTTP/2, and over
// the REST paths the google.api.http annotations bind (read by src/http/rest/bindings.ts, the
// same reader the server uses). Methods, fields and REST rules all come from the descriptors.
import { gzipSync } from "node:zlib";
import type { DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { readBindings, type RestBinding } from "../../../src/http/rest/bindings.js";
import { bodyMutation, deadlineHeader, envelope, extraHeaders, mutate, oddContentType, type BodyMutation } from "./framing.js";
import { encodeWire, jsonRequest, jsonText, wireRequest, type JsonTree, type WireField } from "./messages.js";
import { hostileShortText, oneIn, pct, plausibleText, Ref, textFor, type Leaf } from "./values.js";
import type { WireRequest } from "./wire.js";

type Payload = { json: JsonTree } | { wire: WireField[] };

export interface RpcCase {
  kind: "rpc";
  method: DescMethod;
  protocol: "connect" | "grpc" | "grpc-web";
  /** Connect's GET form (unary methods; allowed only for NO_SIDE_EFFECTS ones). */
  get: boolean;
  h2: boolean;
  json: boolean;
  messages: Payload[];
  /** Flags of the first envelope (1 = compressed, 2 = end of stream, 0x80 = gRPC-Web trailers). */
  flags: number;
  /** The first envelope's declared length minus its real one. */
  lengthDelta: number;
  /** "header": claims gzip without compressing. */
  compress: "none" | "gzip" | "header";
  contentType: string | undefined;
  timeout: [string, string] | undefined;
  extra: [string, Leaf][];
  mutation: BodyMutation | undefined;
  cut: boolean;
}

export interface RestCase {
  kind: "rest";
  binding: RestBinding;
  h2: boolean;
  httpMethod: string;
  /** One per path variable of the rule, in order. */
  vars: { value: Leaf; encoding: "uri" | "raw" | "twice" }[];
  query: [string, Leaf][];
  body: JsonTree | Uint8Array | undefined;
  contentType: string | undefined;
  timeout: [string, string] | undefined;
  extra: [string, Leaf][];
  mutation: BodyMutation | undefined;
  cut: boolean;
}

const streamsIn = (m: DescMethod) => m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming";

export function rpcCase(services: readonly DescService[]): fc.Arbitrary<RpcCase> {
  const methods = services.flatMap((s) => s.methods);
  return fc.constantFrom(...methods).chain((method) => {
    const sideEffectFree = method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
    const canGet = method.methodKind === "unary";
    return fc
      .record({
        protocol: fc.constantFrom("connect" as const, "grpc" as const, "grpc-web" as const),
        get: canGet
          ? fc.oneof({ weight: sideEffectFree ? 2 : 1, arbitrary: fc.constant(true) }, { weight: 6, arbitrary: fc.constant(false) })
          : fc.constant(false),
        h2: fc.boolean(),
        json: fc.boolean(),
      })
      .chain((base) =>
        fc
          .record({
            messages: fc.oneof(
              { weight: 12, arbitrary: fc.array(payload(method.input, base.json), streamsIn(method) ? { maxLength: 3 } : { minLength: 1, maxLength: 1 }) },
              { weight: 1, arbitrary: fc.array(payload(method.input, base.json), { maxLength: 2 }) },
            ),
            flags: fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 2, 3, 0x80, 0xff) }),
            lengthDelta: fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(-1, 1, -5, 1000, 2 ** 32) }),
            compress: fc.oneof(
              { weight: 8, arbitrary: fc.constant("none" as const) },
              { weight: 1, arbitrary: fc.constantFrom("gzip" as const, "header" as const) },
            ),
            contentType: oneIn(12, oddContentType),
            timeout: deadlineHeader(base.protocol === "connect" ? "connect" : "grpc"),
            extra: extraHeaders,
            mutation: bodyMutation,
            cut: fc.oneof({ weight: 25, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
          })
          .map((rest): RpcCase => ({ kind: "rpc", method, ...base, ...rest })),
      );
  });
}

function payload(input: DescMessage, json: boolean): fc.Arbitrary<Payload> {
  return json ? jsonRequest(input).map((j) => ({ json: j })) : wireRequest(input).map((w) => ({ wire: w }));
}

export function rpcRequest(c: RpcCase, resolve: (r: Ref) => string): WireRequest {
  const path = `/${c.method.parent.typeName}/${c.method.name}`;
  const payloads = c.messages.map((m) => ("json" in m ? Buffer.from(jsonText(m.json, resolve), "utf8") : Buffer.from(encodeWire(m.wire, resolve))));
  const headers: [string, string][] = [];
  const mayStream = c.method.methodKind !== "unary";
  const connectUnary = c.protocol === "connect" && c.method.methodKind === "unary";
  if (c.get && connectUnary) {
    const message = mutate(Buffer.concat(payloads), c.mutation);
    const packed = c.compress === "gzip" ? gzipSync(message) : message;
    const params = new URLSearchParams({ connect: "v1", encoding: c.json ? "json" : "proto" });
    if (c.json && c.compress === "none") params.set("message", Buffer.from(packed).toString("utf8"));
    else {
      params.set("base64", "1");
      params.set("message", Buffer.from(packed).toString("base64url"));
    }
    if (c.compress !== "none") params.set("compression", "gzip");
    addCommon(c, headers, resolve);
    return { h2: c.h2, method: "GET", path: `${path}?${params.toString()}`, headers, body: new Uint8Array(), mayStream };
  }
  let contentType: string;
  let body: Uint8Array;
  if (connectUnary) {
    contentType = c.json ? "application/json" : "application/proto";
    body = Buffer.concat(payloads);
    if (c.compress !== "none") headers.push(["content-encoding", "gzip"]);
    if (c.compress === "gzip") body = gzipSync(body);
    headers.push(["connect-protocol-version", "1"]);
  } else {
    const family = c.protocol === "connect" ? "application/connect" : c.protocol === "grpc" ? "application/grpc" : "application/grpc-web";
    contentType = `${family}+${c.json ? "json" : "proto"}`;
    const compressed = c.compress === "gzip";
    body = Buffer.concat(
      payloads.map((p, k) =>
        envelope(k === 0 ? c.flags | (compressed ? 1 : 0) : compressed ? 1 : 0, compressed ? gzipSync(p) : p, k === 0 ? c.lengthDelta : 0),
      ),
    );
    if (c.compress !== "none") headers.push([c.protocol === "connect" ? "connect-content-encoding" : "grpc-encoding", "gzip"]);
    if (c.protocol === "grpc") headers.push(["te", "trailers"]);
    if (c.protocol === "grpc-web") headers.push(["x-grpc-web", "1"]);
    if (c.protocol === "connect") headers.push(["connect-protocol-version", "1"]);
  }
  headers.push(["content-type", c.contentType ?? contentType]);
  addCommon(c, headers, resolve);
  body = mutate(body, c.mutation);
  return { h2: c.h2, method: "POST", path, headers, body, mayStream, ...(c.cut && !c.h2 ? { cutAfter: Math.floor(body.length / 2) } : {}) };
}

function addCommon(c: { timeout: [string, string] | undefined; extra: [string, Leaf][] }, headers: [string, string][], resolve: (r: Ref) => string): void {
  if (c.timeout) headers.push(c.timeout);
  for (const [k, v] of c.extra) headers.push([k, typeof v === "string" ? v : resolve(v)]);
}

// ---- REST ----

const HTTP_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND"];

export function restCase(services: readonly DescService[]): fc.Arbitrary<RestCase> {
  const { bindings } = readBindings(services);
  return fc.constantFrom(...bindings).chain((binding) => {
    const input = binding.method.input;
    const bodyArb: fc.Arbitrary<JsonTree | Uint8Array | undefined> =
      binding.body === undefined
        ? oneIn(6, fc.oneof(jsonRequest(input), fc.uint8Array({ maxLength: 32 })))
        : binding.body === "*" || binding.body.fieldKind !== "message"
          ? fc.oneof({ weight: 8, arbitrary: jsonRequest(input) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 32 }) })
          : fc.oneof({ weight: 8, arbitrary: jsonRequest(binding.body.message) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 32 }) });
    return fc
      .record({
        h2: fc.boolean(),
        httpMethod: fc.oneof({ weight: 8, arbitrary: fc.constant(binding.httpMethod) }, { weight: 1, arbitrary: fc.constantFrom(...HTTP_METHODS) }),
        vars: fc.tuple(
          ...binding.pathFields.map((p) =>
            fc.record({
              value: fc.oneof(
                { weight: 3, arbitrary: plausibleText(p.fields[p.fields.length - 1]!.name) },
                { weight: 1, arbitrary: textFor(p.fields[p.fields.length - 1]!.name) },
              ),
              encoding: fc.oneof(
                { weight: 6, arbitrary: fc.constant("uri" as const) },
                { weight: 1, arbitrary: fc.constantFrom("raw" as const, "twice" as const) },
              ),
            }),
          ),
        ),
        query: fc.array(queryParam(binding), { maxLength: 3 }),
        body: bodyArb,
        contentType: oneIn(12, oddContentType),
        timeout: deadlineHeader("connect"),
        extra: extraHeaders,
        mutation: bodyMutation,
        cut: fc.oneof({ weight: 25, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      })
      .map((rest): RestCase => ({ kind: "rest", binding, ...rest }));
  });
}

/** Query parameters: the request's fields (proto and JSON names, one level into messages), or anything. */
function queryParam(binding: RestBinding): fc.Arbitrary<[string, Leaf]> {
  const keys: [string, string][] = [];
  for (const f of binding.method.input.fields) {
    keys.push([f.name, f.name], [f.jsonName, f.name]);
    if (f.fieldKind === "message") for (const sub of f.message.fields) keys.push([`${f.name}.${sub.name}`, sub.name]);
  }
  const known = keys.length
    ? fc.constantFrom(...keys).chain(([key, leaf]) => textFor(leaf).map((v): [string, Leaf] => [key, v]))
    : fc.tuple(hostileShortText, hostileShortText);
  return fc.oneof({ weight: 4, arbitrary: known }, { weight: 1, arbitrary: fc.tuple(hostileShortText, hostileShortText) });
}

export function restRequest(c: RestCase, resolve: (r: Ref) => string): WireRequest {
  const text = (v: Leaf) => (typeof v === "string" ? v : resolve(v));
  const { template } = c.binding;
  const segments: string[] = [];
  for (let i = 0; i < template.segments.length;) {
    const k = template.variables.findIndex((v) => v.start === i);
    if (k >= 0) {
      const variable = template.variables[k]!;
      const { value, encoding } = c.vars[k]!;
      const raw = text(value);
      // A multi-segment variable keeps its "/" as separators.
      const parts = variable.multi ? raw.split("/") : [raw];
      segments.push(parts.map((p) => (encoding === "raw" ? p : encoding === "uri" ? pct(p) : pct(pct(p)))).join("/"));
      i = variable.end;
    } else {
      const s = template.segments[i]!;
      segments.push(s.kind === "literal" ? s.value : "x");
      i++;
    }
  }
  const query = c.query.length ? `?${c.query.map(([k, v]) => `${pct(k)}=${pct(text(v))}`).join("&")}` : "";
  const path = `/${segments.join("/")}${template.verb ? `:${template.verb}` : ""}${query}`;
  const headers: [string, string][] = [];
  let body: Uint8Array = new Uint8Array();
  if (c.body !== undefined) {
    body = c.body instanceof Uint8Array ? c.body : Buffer.from(jsonText(c.body, resolve), "utf8");
    headers.push(["content-type", c.contentType ?? "application/json"]);
  } else if (c.contentType !== undefined) headers.push(["content-type", c.contentType]);
  addCommon(c, headers, resolve);
  body = mutate(body, c.mutation);
  return {
    h2: c.h2,
    method: c.httpMethod,
    path,
    headers,
    body,
    mayStream: c.binding.method.methodKind !== "unary",
    ...(c.cut && !c.h2 ? { cutAfter: Math.floor(body.length / 2) } : {}),
  };
}
