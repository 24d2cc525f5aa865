// Part of the REST transcoder (its layout and layering: src/http/rest/transcoder.ts).
//
// Building a request message from an HTTP request, per google/api/http.proto: the body
// (proto3 JSON), then the path variables, then the query parameters for every field neither
// of them binds. Values from the path and the query are turned into their proto3 JSON form
// and merged with protobuf-es's own JSON reader, so "5", "REGISTRY_KIND_HOSTED",
// "2024-01-02T03:04:05Z" or "-12" parse exactly as they would inside a JSON body.
import {
  create,
  fromJson,
  fromJsonString,
  mergeFromJson,
  ScalarType,
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";
import { capturedValue, PathDecodeError, type PathMatch } from "./path-template.js";
import { fieldByName, type RestBinding } from "./bindings.js";
import { invalidRequest } from "./error.js";

/** Like the Connect handler: a misspelt field is a mistake to report, not to ignore. */
const READ_OPTIONS = { ignoreUnknownFields: false } as const;

/** The request message from the body text ("" for none). */
export function messageFromBody(binding: RestBinding, text: string): Message {
  const input = binding.method.input;
  const body = binding.body;
  if (body === undefined || text === "") return create(input);
  try {
    if (body === "*") return fromJsonString(input, text, READ_OPTIONS);
    const message = create(input) as Record<string, unknown> & Message;
    if (body.fieldKind === "message") {
      setField(message, body, fromJsonString(body.message, text, READ_OPTIONS));
      return message;
    }
    // A repeated or scalar body: parse it first, so no text can close the wrapper object early.
    return fromJson(input, { [body.name]: JSON.parse(text) as JsonValue }, READ_OPTIONS);
  } catch (err) {
    throw invalidRequest(bodyProblem(err));
  }
}

function bodyProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const syntax = err instanceof SyntaxError || (err instanceof Error && err.cause instanceof SyntaxError);
  return syntax ? `malformed JSON in the request body: ${(err as Error & { cause?: Error }).cause?.message ?? message}` : `request body: ${message}`;
}

function setField(message: Record<string, unknown>, field: DescField, value: unknown): void {
  if (field.oneof) message[field.oneof.localName] = { case: field.localName, value };
  else message[field.localName] = value;
}

/** Sets the fields the path variables captured; they win over the same fields in the body. */
export function applyPath(binding: RestBinding, match: PathMatch<unknown>, message: Message): void {
  for (const p of binding.pathFields) {
    let raw: string;
    try {
      raw = capturedValue(match, p.variable);
    } catch (err) {
      if (err instanceof PathDecodeError) throw invalidRequest(`path: ${err.message}`);
      throw err;
    }
    const leaf = p.fields[p.fields.length - 1]!;
    merge(binding.method.input, message, p.fields, leafJson(leaf, raw, `path variable {${p.name}}`), `path variable {${p.name}}`);
  }
}

/** Sets the fields the query string names; `query` is what follows "?". */
export function applyQuery(binding: RestBinding, message: Message, query: string): void {
  if (query === "") return;
  // Grouped by field, so page_size=1&pageSize=2 counts as the same field given twice.
  const grouped = new Map<string, { key: string; fields: DescField[]; values: string[] }>();
  for (const [key, value] of new URLSearchParams(query)) {
    const fields = queryField(binding, key, `query parameter "${key.slice(0, 128)}"`);
    const name = fields.map((f) => f.name).join(".");
    const group = grouped.get(name);
    if (group) group.values.push(value);
    else grouped.set(name, { key, fields, values: [value] });
  }
  for (const { key, fields, values } of grouped.values()) {
    const what = `query parameter "${key.slice(0, 128)}"`;
    const leaf = fields[fields.length - 1]!;
    let value: JsonValue;
    if (leaf.fieldKind === "list") {
      value = values.map((v) => leafJson(leaf, v, what));
    } else {
      if (values.length > 1) throw invalidRequest(`${what} is given ${values.length} times; ${leaf.name} is not repeated`);
      value = leafJson(leaf, values[0]!, what);
    }
    merge(binding.method.input, message, fields, value, what);
  }
}

/** The fields a query parameter names, after checking it may be set from the query. */
function queryField(binding: RestBinding, key: string, what: string): DescField[] {
  const unknown = () => invalidRequest(`unknown ${what} for ${binding.httpMethod} ${binding.template.source}${knownHint(binding)}`);
  if (binding.body === "*") throw unknown();
  const fields: DescField[] = [];
  let message: DescMessage | undefined = binding.method.input;
  for (const part of key.split(".")) {
    const field: DescField | undefined = message && fieldByName(message, part);
    if (!field) throw unknown();
    fields.push(field);
    message = field.fieldKind === "message" && !isQueryValueMessage(field.message) ? field.message : undefined;
  }
  const name = fields.map((f) => f.name).join(".");
  const bodyName = typeof binding.body === "object" ? binding.body.name : undefined;
  for (const b of binding.bound) {
    if (name === b || name.startsWith(`${b}.`) || b.startsWith(`${name}.`)) {
      throw invalidRequest(`${what}: ${b} is set by the ${b === bodyName ? "body" : "path"}`);
    }
  }
  const leaf = fields[fields.length - 1]!;
  if (leaf.fieldKind === "map") throw invalidRequest(`${what}: map fields cannot be set from the query`);
  const leafMessage = leaf.fieldKind === "message" || (leaf.fieldKind === "list" && leaf.listKind === "message") ? leaf.message : undefined;
  if (leafMessage && !isQueryValueMessage(leafMessage)) {
    throw invalidRequest(`${what}: ${leafMessage.typeName} is a message; set its fields instead, e.g. ${key}.${leafMessage.fields[0]?.name ?? "field"}=…`);
  }
  return fields;
}

function knownHint(binding: RestBinding): string {
  if (binding.body === "*") return " (the body carries the whole request)";
  const known = binding.method.input.fields.filter((f) => !binding.bound.includes(f.name)).map((f) => f.name);
  return known.length ? ` (known: ${known.join(", ")})` : " (it takes none)";
}

const STRING_VALUED = new Set(["google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"]);

/** Well-known messages that are one value in JSON, hence in a query string. */
function isQueryValueMessage(message: DescMessage): boolean {
  return STRING_VALUED.has(message.typeName) || isWrapperDesc(message);
}

/** A query or path string as the proto3 JSON value of the field's (element) type. */
function leafJson(field: DescField, raw: string, what: string): JsonValue {
  const scalar = field.fieldKind === "scalar" || (field.fieldKind === "list" && field.listKind === "scalar") ? field.scalar : undefined;
  if (scalar === ScalarType.BOOL) return boolValue(raw, what);
  if (scalar !== undefined) return raw;
  if (field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum")) {
    return /^-?\d+$/.test(raw) ? Number(raw) : raw;
  }
  const message = field.message!;
  if (message.typeName === "google.protobuf.FieldMask") return fieldMaskJson(raw);
  if (isWrapperDesc(message) && message.fields[0].scalar === ScalarType.BOOL) return boolValue(raw, what);
  return raw;
}

function boolValue(raw: string, what: string): boolean {
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw invalidRequest(`${what}: ${JSON.stringify(raw.slice(0, 64))} is not a boolean (true or false)`);
}

/** Accepts proto names (update_mask=media_type) as well as the JSON form (mediaType). */
function fieldMaskJson(raw: string): string {
  return raw
    .split(",")
    .map((path) => path.trim().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()))
    .filter((path) => path !== "")
    .join(",");
}

/** Merges {a: {b: value}} into the message, naming the parameter in any error. */
function merge(input: DescMessage, message: Message, fields: DescField[], value: JsonValue, what: string): void {
  let json: JsonValue = value;
  for (let k = fields.length - 1; k >= 0; k--) json = { [fields[k]!.name]: json };
  try {
    mergeFromJson(input, message, json as JsonObject, READ_OPTIONS);
  } catch (err) {
    throw invalidRequest(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
