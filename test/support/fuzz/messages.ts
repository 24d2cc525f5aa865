// Request messages derived from the generated descriptors at run time (protobuf-es reflection):
// every field of every message, valid in shape but hostile in value, as proto3 JSON trees or as
// protobuf wire fields. A field or method added to a proto is fuzzed with no change here.
import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import {
  edgeInteger,
  hostileShortText,
  hostileText,
  jsonNumberish,
  NUMERIC_REFS,
  oneIn,
  plausibleText,
  Ref,
  stringBytes,
  textFor,
  type Leaf,
} from "./values.js";

// ---- JSON ----

/** An object as a list of entries: keys may repeat and may be anything ("__proto__" included). */
export class JsonObject {
  constructor(readonly entries: [string, JsonTree][]) {}
}

/** Text sent verbatim: invalid JSON on purpose (NaN, deep nesting, raw control characters). */
export class RawJson {
  constructor(readonly text: string) {}
}

export type JsonTree = null | boolean | number | string | Ref | RawJson | JsonObject | JsonTree[];

/** JSON text of a tree; references become the playground's values. */
export function jsonText(tree: JsonTree, resolve: (r: Ref) => string): string {
  if (tree === null || typeof tree === "boolean") return String(tree);
  if (typeof tree === "number") return Number.isFinite(tree) ? JSON.stringify(tree) : String(tree);
  if (typeof tree === "string") return JSON.stringify(tree);
  if (tree instanceof Ref) return NUMERIC_REFS.has(tree.name) ? resolve(tree) : JSON.stringify(resolve(tree));
  if (tree instanceof RawJson) return tree.text;
  if (Array.isArray(tree)) return `[${tree.map((t) => jsonText(t, resolve)).join(",")}]`;
  return `{${tree.entries.map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v, resolve)}`).join(",")}}`;
}

const MAX_DEPTH = 6;

/**
 * plausible: what a well-meaning client sends (playground ids and names, small numbers, known enum
 * values); hostile: every field set is hostile. A request is one of those, or plausible but for one
 * field (anywhere in the message tree), so that the hostile value gets past the other checks.
 */
type Flavor = "plausible" | "hostile";

const jsonCache = new Map<string, fc.Arbitrary<JsonTree>>();

/** A request message as proto3 JSON: plausible, plausible but for one hostile field, or hostile throughout. */
export function jsonRequest(desc: DescMessage): fc.Arbitrary<JsonTree> {
  return fc.oneof(
    { weight: 2, arbitrary: jsonMessage(desc, "plausible") },
    { weight: 4, arbitrary: focusedJson(desc, 0) },
    { weight: 1, arbitrary: jsonMessage(desc, "hostile") },
  );
}

/** A message as proto3 JSON: about half of its fields set, in the flavor's way; hostile ones now and then carry unknown fields. */
export function jsonMessage(desc: DescMessage, flavor: Flavor, depth = 0): fc.Arbitrary<JsonTree> {
  const key = `${flavor} ${desc.typeName}`;
  const cached = jsonCache.get(key);
  if (cached) return cached;
  if (depth > MAX_DEPTH) return fc.constant(new JsonObject([]));
  const arb = wktJson(desc, flavor) ?? plainJsonMessage(desc, flavor, depth);
  jsonCache.set(key, arb);
  return arb;
}

const fieldName = (f: DescField) => fc.nat(4).map((k) => (k === 0 ? f.name : f.jsonName));

function plainJsonMessage(desc: DescMessage, flavor: Flavor, depth: number): fc.Arbitrary<JsonTree> {
  const maskPaths = fieldMaskPaths(desc);
  const fields = desc.fields.map((f) => fc.option(fc.tuple(fieldName(f), jsonField(f, flavor, depth, maskPaths)), { freq: 2, nil: undefined }));
  const unknown = flavor === "hostile" ? unknownJsonFields() : fc.constant(undefined);
  return fc.tuple(fc.tuple(...fields), unknown).map(([values, extra]) => {
    const entries = values.filter((v): v is [string, JsonTree] => v !== undefined);
    return new JsonObject(extra ? [...entries, ...extra] : entries);
  });
}

const unknownJsonFields = () =>
  oneIn(8, fc.array(fc.tuple(fc.oneof(hostileShortText, fc.constantFrom("@type", "__proto__", "constructor", "")), wrongJson), { minLength: 1, maxLength: 2 }));

/** Plausible everywhere but one field, which is hostile (or, in a nested message, plausible but for one of its fields). */
function focusedJson(desc: DescMessage, depth: number): fc.Arbitrary<JsonTree> {
  const key = `focused ${desc.typeName}`;
  const cached = jsonCache.get(key);
  if (cached) return cached;
  if (desc.fields.length === 0 || depth > MAX_DEPTH || wktJson(desc, "plausible")) return jsonMessage(desc, "hostile", depth);
  const maskPaths = fieldMaskPaths(desc);
  const arb = fc.nat(desc.fields.length - 1).chain((k) => {
    const target = desc.fields[k]!;
    const nested = target.fieldKind === "message" && !wktJson(target.message, "plausible");
    const hostile = nested
      ? fc.oneof(focusedJson(target.message, depth + 1), jsonField(target, "hostile", depth, maskPaths))
      : jsonField(target, "hostile", depth, maskPaths);
    const others = desc.fields.map((f, i) =>
      i === k ? fc.constant(undefined) : fc.option(fc.tuple(fieldName(f), jsonField(f, "plausible", depth, maskPaths)), { freq: 2, nil: undefined }),
    );
    return fc.tuple(fieldName(target), hostile, fc.tuple(...others)).map(([name, value, rest]) => {
      const entries = rest.filter((v): v is [string, JsonTree] => v !== undefined);
      entries.splice(k <= entries.length ? k : entries.length, 0, [name, value]);
      return new JsonObject(entries);
    });
  });
  jsonCache.set(key, arb);
  return arb;
}

function jsonField(f: DescField, flavor: Flavor, depth: number, maskPaths: string[]): fc.Arbitrary<JsonTree> {
  let typed: fc.Arbitrary<JsonTree>;
  const scalar = (t: ScalarType) => (flavor === "plausible" ? plausibleScalarJson(t, f.name) : scalarJson(t, f.name));
  const enumValue = (e: DescEnum) => (flavor === "plausible" ? fc.constantFrom(...e.values.map((v) => v.name)) : enumJson(e));
  const message = (m: DescMessage) => (m.typeName === "google.protobuf.FieldMask" ? fieldMaskJson(maskPaths, flavor) : jsonMessage(m, flavor, depth + 1));
  switch (f.fieldKind) {
    case "scalar":
      typed = scalar(f.scalar);
      break;
    case "enum":
      typed = enumValue(f.enum);
      break;
    case "message":
      typed = message(f.message);
      break;
    case "list": {
      const element = f.listKind === "scalar" ? scalar(f.scalar) : f.listKind === "enum" ? enumValue(f.enum) : message(f.message);
      typed = fc.array(element, { maxLength: flavor === "plausible" ? 2 : 4 });
      break;
    }
    case "map": {
      const value = f.mapKind === "scalar" ? scalar(f.scalar) : f.mapKind === "enum" ? enumValue(f.enum) : message(f.message);
      const key =
        f.mapKey === ScalarType.STRING ? (flavor === "plausible" ? fc.constantFrom("a", "org.example.key") : hostileShortText) : jsonNumberish.map(String);
      typed = fc.array(fc.tuple(key, value), { maxLength: 3 }).map((e) => new JsonObject(e));
      break;
    }
  }
  return flavor === "plausible" ? typed : fc.oneof({ weight: 6, arbitrary: typed }, { weight: 1, arbitrary: wrongJson });
}

function plausibleScalarJson(scalar: ScalarType, name: string): fc.Arbitrary<JsonTree> {
  switch (scalar) {
    case ScalarType.STRING:
      return plausibleText(name);
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b).toString("base64"));
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return fc.double({ min: 0, max: 100, noNaN: true });
    default:
      return fc.integer({ min: 0, max: 100 });
  }
}

function scalarJson(scalar: ScalarType, name: string): fc.Arbitrary<JsonTree> {
  switch (scalar) {
    case ScalarType.STRING:
      return textFor(name);
    case ScalarType.BYTES:
      return fc.oneof(
        fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString("base64")),
        fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString("base64url")),
        hostileShortText,
      );
    case ScalarType.BOOL:
      return fc.oneof({ weight: 4, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constantFrom<JsonTree>("true", 1, 0, "yes", "") });
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return fc.oneof(fc.double(), jsonNumberish, fc.constantFrom("NaN", "Infinity", "-Infinity", 3.5e38, -3.5e38));
    default:
      return jsonNumberish;
  }
}

function enumJson(e: DescEnum): fc.Arbitrary<JsonTree> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...e.values.map((v) => v.name)) },
    { weight: 1, arbitrary: fc.constantFrom(...e.values.map((v) => v.number)) },
    { weight: 1, arbitrary: fc.constantFrom<JsonTree>(`${e.values[0]?.name ?? "X"}_NOPE`, "", 99, -1, 2 ** 31, "1", 1.5, null) },
    { weight: 1, arbitrary: hostileShortText },
  );
}

/** Every field path an update mask next to `desc`'s message fields could name (proto and JSON spelling). */
function fieldMaskPaths(desc: DescMessage): string[] {
  const paths: string[] = [];
  for (const f of desc.fields) {
    if (f.fieldKind !== "message" || f.message.typeName.startsWith("google.protobuf.")) continue;
    for (const inner of f.message.fields) {
      paths.push(inner.name, inner.jsonName);
      if (inner.fieldKind === "message") for (const leaf of inner.message.fields) paths.push(`${inner.name}.${leaf.name}`);
    }
  }
  return paths;
}

function fieldMaskJson(paths: string[], flavor: Flavor): fc.Arbitrary<JsonTree> {
  if (flavor === "plausible") return paths.length ? fc.subarray(paths, { maxLength: 2 }).map((p) => p.join(",")) : fc.constant("");
  const path = paths.length > 0 ? fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...paths) }, { weight: 1, arbitrary: hostileShortText }) : hostileShortText;
  return fc.array(path, { maxLength: 4 }).map((p) => p.join(","));
}

const DEEP = [64, 1000, 100_000];

/** A value of whatever JSON type a field does not have: null, numbers, text, arrays, objects, deep nesting, invalid tokens. */
export const wrongJson: fc.Arbitrary<JsonTree> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  jsonNumberish,
  hostileText,
  fc.constant<JsonTree>([]),
  fc.constant(new JsonObject([])),
  fc.jsonValue({ maxDepth: 2 }).map(toTree),
  fc
    .tuple(fc.constantFrom(...DEEP), fc.boolean())
    .map(([n, arrays]) => new RawJson(arrays ? "[".repeat(n) + "]".repeat(n) : '{"a":'.repeat(n) + "1" + "}".repeat(n))),
  fc.constantFrom(
    new RawJson("NaN"),
    new RawJson("-Infinity"),
    new RawJson("1e999"),
    new RawJson("01"),
    new RawJson("'x'"),
    new RawJson('"\u0000\u001f"'),
    new RawJson("undefined"),
  ),
);

function toTree(value: unknown): JsonTree {
  if (value === null || typeof value === "boolean" || typeof value === "number" || typeof value === "string") return value;
  if (Array.isArray(value)) return value.map(toTree);
  return new JsonObject(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toTree(v)]));
}

function wktJson(desc: DescMessage, flavor: Flavor): fc.Arbitrary<JsonTree> | undefined {
  if (flavor === "plausible") {
    if (desc.typeName === "google.protobuf.Timestamp") return fc.constant("2024-01-02T03:04:05Z");
    if (desc.typeName === "google.protobuf.Duration") return fc.constant("1s");
  }
  switch (desc.typeName) {
    case "google.protobuf.Timestamp":
      return fc.oneof(
        fc.date({ min: new Date(-62135596800000), max: new Date(253402300799000), noInvalidDate: true }).map((d) => d.toISOString()),
        fc.constantFrom<JsonTree>(
          "0000-00-00T00:00:00Z",
          "9999-12-31T23:59:60Z",
          "10000-01-01T00:00:00Z",
          "1970-01-01T00:00:00.0000000001Z",
          "2024-01-01",
          "now",
          0,
          "",
        ),
      );
    case "google.protobuf.Duration":
      return fc.constantFrom<JsonTree>("1s", "-1s", "0.000000001s", "315576000001s", "1.5", "s", "", 1);
    case "google.protobuf.FieldMask":
      return fieldMaskJson([], flavor);
    case "google.protobuf.Empty":
      return fc.constant(new JsonObject([]));
    case "google.protobuf.Struct":
    case "google.protobuf.Value":
    case "google.protobuf.ListValue":
      return fc.jsonValue({ maxDepth: 3 }).map(toTree);
    case "google.protobuf.Any":
      return fc.tuple(fc.oneof(hostileShortText, fc.constant("type.googleapis.com/artifact.v1.Registry"))).map(([t]) => new JsonObject([["@type", t]]));
  }
  if (isWrapperDesc(desc)) {
    const inner = desc.fields[0];
    if (inner.fieldKind !== "scalar") return undefined;
    return flavor === "plausible" ? plausibleScalarJson(inner.scalar, inner.name) : scalarJson(inner.scalar, inner.name);
  }
  return undefined;
}

// ---- protobuf binary ----

export type WireValue =
  | { varint: bigint }
  | { i64: bigint }
  | { i32: number }
  | { bytes: Uint8Array }
  /** A string's UTF-8 (references resolved when sent). */
  | { text: Leaf }
  | { message: WireField[] };

export interface WireField {
  /** Field number; 0 and numbers past 2^29 - 1 are invalid on purpose. */
  no: number;
  /** Wire type as sent (0 varint, 1 i64, 2 length-delimited, 5 i32; 3, 4, 6, 7 invalid or deprecated). */
  wt: number;
  v: WireValue;
}

const wireCache = new Map<string, fc.Arbitrary<WireField[]>>();

/** A request message as wire fields: plausible, plausible but for one hostile field, or hostile throughout. */
export function wireRequest(desc: DescMessage): fc.Arbitrary<WireField[]> {
  return fc.oneof(
    { weight: 2, arbitrary: wireMessage(desc, "plausible") },
    { weight: 4, arbitrary: focusedWire(desc, 0) },
    { weight: 1, arbitrary: wireMessage(desc, "hostile") },
  );
}

/** A message as wire fields: hostile ones with invalid UTF-8 in strings, wrong wire types, unknown fields, fields out of order. */
export function wireMessage(desc: DescMessage, flavor: Flavor, depth = 0): fc.Arbitrary<WireField[]> {
  const key = `${flavor} ${desc.typeName}`;
  const cached = wireCache.get(key);
  if (cached) return cached;
  if (depth > MAX_DEPTH) return fc.constant([]);
  const fields = desc.fields.map((f) => fc.option(wireField(f, flavor, depth), { freq: 2, nil: undefined }));
  const hostile = flavor === "hostile";
  const arb = fc
    .tuple(
      fc.tuple(...fields),
      hostile ? oneIn(8, fc.array(unknownWireField, { minLength: 1, maxLength: 2 })) : fc.constant(undefined),
      hostile ? fc.boolean() : fc.constant(false),
    )
    .map(([values, extra, reversed]) => {
      const all = [...values.filter((v): v is WireField[] => v !== undefined).flat(), ...(extra ?? [])];
      return reversed ? all.reverse() : all;
    });
  wireCache.set(key, arb);
  return arb;
}

function focusedWire(desc: DescMessage, depth: number): fc.Arbitrary<WireField[]> {
  const key = `focused ${desc.typeName}`;
  const cached = wireCache.get(key);
  if (cached) return cached;
  if (desc.fields.length === 0 || depth > MAX_DEPTH) return wireMessage(desc, "hostile", depth);
  const arb = fc.nat(desc.fields.length - 1).chain((k) => {
    const target = desc.fields[k]!;
    const hostile =
      target.fieldKind === "message"
        ? fc.oneof(
            focusedWire(target.message, depth + 1).map((m): WireField[] => [{ no: target.number, wt: 2, v: { message: m } }]),
            wireField(target, "hostile", depth),
          )
        : wireField(target, "hostile", depth);
    const others = desc.fields.map((f, i) => (i === k ? fc.constant(undefined) : fc.option(wireField(f, "plausible", depth), { freq: 2, nil: undefined })));
    return fc.tuple(hostile, fc.tuple(...others)).map(([h, rest]) => {
      const all = rest.filter((v): v is WireField[] => v !== undefined);
      all.splice(Math.min(k, all.length), 0, h);
      return all.flat();
    });
  });
  wireCache.set(key, arb);
  return arb;
}

const varintField = (no: number, v: fc.Arbitrary<bigint>) => v.map((n): WireField => ({ no, wt: 0, v: { varint: n } }));

function wireField(f: DescField, flavor: Flavor, depth: number): fc.Arbitrary<WireField[]> {
  const one = (v: fc.Arbitrary<WireField>) => v.map((x) => [x]);
  const plausible = flavor === "plausible";
  const scalar = (no: number, t: ScalarType, name: string) => (plausible ? plausibleScalarWire(no, t, name) : scalarWire(no, t, name));
  const enumValue = (no: number, e: DescEnum) => varintField(no, plausible ? fc.constantFrom(...e.values.map((v) => BigInt(v.number))) : edgeInteger);
  const message = (no: number, m: DescMessage) =>
    plausible ? wireMessage(m, "plausible", depth + 1).map((x): WireField => ({ no, wt: 2, v: { message: x } })) : messageWire(no, m, depth);
  let typed: fc.Arbitrary<WireField[]>;
  switch (f.fieldKind) {
    case "scalar":
      typed = one(scalar(f.number, f.scalar, f.name));
      break;
    case "enum":
      typed = one(enumValue(f.number, f.enum));
      break;
    case "message":
      typed = one(message(f.number, f.message));
      break;
    case "list": {
      const element =
        f.listKind === "scalar" ? scalar(f.number, f.scalar, f.name) : f.listKind === "enum" ? enumValue(f.number, f.enum) : message(f.number, f.message);
      typed = fc.array(element, { minLength: 1, maxLength: plausible ? 2 : 3 });
      break;
    }
    case "map": {
      const key = scalar(1, f.mapKey, "key");
      const value = f.mapKind === "scalar" ? scalar(2, f.scalar, f.name) : f.mapKind === "enum" ? enumValue(2, f.enum) : message(2, f.message);
      typed = fc.array(
        fc.tuple(fc.option(key, { nil: undefined }), fc.option(value, { nil: undefined })).map(([k, v]) => ({
          no: f.number,
          wt: 2,
          v: { message: [k, v].filter((x): x is WireField => x !== undefined) },
        })),
        { minLength: 1, maxLength: 3 },
      );
      break;
    }
  }
  return plausible ? typed : fc.oneof({ weight: 9, arbitrary: typed }, { weight: 1, arbitrary: one(anyWireValue.map(([wt, v]) => ({ no: f.number, wt, v }))) });
}

function plausibleScalarWire(no: number, scalar: ScalarType, name: string): fc.Arbitrary<WireField> {
  switch (scalar) {
    case ScalarType.STRING:
      return plausibleText(name).map((t): WireField => ({ no, wt: 2, v: { text: t } }));
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 16 }).map((b) => ({ no, wt: 2, v: { bytes: b } }));
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      return fc.integer({ min: 0, max: 100 }).map((n) => ({ no, wt: 5, v: { i32: n } }));
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
    case ScalarType.DOUBLE:
      return fc.bigInt({ min: 0n, max: 100n }).map((n) => ({ no, wt: 1, v: { i64: n } }));
    case ScalarType.BOOL:
      return varintField(no, fc.constantFrom(0n, 1n));
    default:
      return varintField(no, fc.bigInt({ min: 0n, max: 100n }));
  }
}

function scalarWire(no: number, scalar: ScalarType, name: string): fc.Arbitrary<WireField> {
  switch (scalar) {
    case ScalarType.STRING:
      return fc.oneof(
        { weight: 2, arbitrary: textFor(name).map((t): WireField => ({ no, wt: 2, v: { text: t } })) },
        { weight: 1, arbitrary: stringBytes.map((b): WireField => ({ no, wt: 2, v: { bytes: b } })) },
      );
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 64 }).map((b) => ({ no, wt: 2, v: { bytes: b } }));
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      return fc.integer().map((n) => ({ no, wt: 5, v: { i32: n } }));
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
    case ScalarType.DOUBLE:
      return edgeInteger.map((n) => ({ no, wt: 1, v: { i64: n } }));
    default:
      return edgeInteger.map((n) => ({ no, wt: 0, v: { varint: n } }));
  }
}

function messageWire(no: number, desc: DescMessage, depth: number): fc.Arbitrary<WireField> {
  return fc.oneof(
    { weight: 6, arbitrary: wireMessage(desc, "hostile", depth + 1).map((m): WireField => ({ no, wt: 2, v: { message: m } })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }).map((b): WireField => ({ no, wt: 2, v: { bytes: b } })) },
  );
}

const anyWireValue: fc.Arbitrary<[number, WireValue]> = fc.oneof(
  edgeInteger.map((v): [number, WireValue] => [0, { varint: v }]),
  edgeInteger.map((v): [number, WireValue] => [1, { i64: v }]),
  fc.integer().map((v): [number, WireValue] => [5, { i32: v }]),
  stringBytes.map((b): [number, WireValue] => [2, { bytes: b }]),
  fc.constantFrom(3, 4, 6, 7).map((wt): [number, WireValue] => [wt, { bytes: new Uint8Array() }]),
);

const unknownWireField: fc.Arbitrary<WireField> = fc
  .tuple(fc.oneof(fc.integer({ min: 100, max: 2 ** 29 - 1 }), fc.constantFrom(0, 2 ** 29, 19000, 2 ** 31 - 1)), anyWireValue)
  .map(([no, [wt, v]]) => ({ no, wt, v }));

/** Protobuf binary of wire fields; references become the playground's values. */
export function encodeWire(fields: WireField[], resolve: (r: Ref) => string): Uint8Array {
  const out: number[] = [];
  for (const f of fields) writeField(out, f, resolve);
  return new Uint8Array(out);
}

function writeField(out: number[], f: WireField, resolve: (r: Ref) => string): void {
  writeVarint(out, (BigInt(f.no) << 3n) | BigInt(f.wt & 7));
  const v = f.v;
  if ("varint" in v) writeVarint(out, v.varint);
  else if ("i64" in v) for (let k = 0n; k < 64n; k += 8n) out.push(Number((BigInt.asUintN(64, v.i64) >> k) & 0xffn));
  else if ("i32" in v) for (let k = 0; k < 32; k += 8) out.push(((v.i32 >>> 0) >>> k) & 0xff);
  else {
    const payload =
      "bytes" in v ? v.bytes : "text" in v ? Buffer.from(typeof v.text === "string" ? v.text : resolve(v.text), "utf8") : encodeWire(v.message, resolve);
    writeVarint(out, BigInt(payload.length));
    for (const b of payload) out.push(b);
  }
}

/** A varint of the value's low 64 bits (negative numbers take ten bytes, as protobuf writes them). */
function writeVarint(out: number[], value: bigint): void {
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}
