// Part of the REST transcoder (its layout and layering: src/http/rest/transcoder.ts).
//
// The REST bindings of a set of services, read once from their google.api.http options
// (additional_bindings included). Everything that can be checked about a rule is checked
// here, at start-up, so a bad annotation fails the boot instead of a request.
import { getOption, hasOption, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { http } from "../../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../../gen/google/api/http_pb.js";
import { parseTemplate, type PathTemplate, type Variable } from "./path-template.js";

export interface PathField {
  variable: Variable;
  /** From the request message down to the leaf. */
  fields: DescField[];
  /** Dotted proto names, e.g. "registry.id". */
  name: string;
}

export interface RestBinding {
  service: DescService;
  method: DescMethod;
  /** Upper case: GET, POST, … or a custom kind. */
  httpMethod: string;
  template: PathTemplate;
  pathFields: PathField[];
  /** The request field the body fills, "*" for the whole request, undefined for no body. */
  body: DescField | "*" | undefined;
  /** The response field sent as the body instead of the whole response. */
  responseBody: DescField | undefined;
  /** Dotted proto names the path or the body sets; query parameters may not touch them. */
  bound: string[];
}

export interface SkippedMethod {
  method: DescMethod;
  reason: string;
}

const HTTP_BODY = "google.api.HttpBody";

const fieldMaps = new WeakMap<DescMessage, Map<string, DescField>>();

/** A field by its proto name or its JSON name. */
export function fieldByName(message: DescMessage, name: string): DescField | undefined {
  let map = fieldMaps.get(message);
  if (!map) {
    map = new Map();
    for (const f of message.fields) map.set(f.name, f).set(f.jsonName, f);
    fieldMaps.set(message, map);
  }
  return map.get(name);
}

export function readBindings(services: readonly DescService[]): { bindings: RestBinding[]; skipped: SkippedMethod[] } {
  const bindings: RestBinding[] = [];
  const skipped: SkippedMethod[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      if (!hasOption(method, http)) continue;
      const why = unsupported(method);
      if (why) {
        skipped.push({ method, reason: why });
        continue;
      }
      const rule = getOption(method, http);
      for (const r of [rule, ...rule.additionalBindings]) bindings.push(binding(service, method, r));
    }
  }
  return { bindings, skipped };
}

function unsupported(method: DescMethod): string | undefined {
  if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") {
    return `${method.methodKind} methods cannot be called over plain HTTP`;
  }
  if (method.output.typeName === HTTP_BODY) return `${HTTP_BODY} responses are not transcoded`;
  if (method.input.typeName === HTTP_BODY) return `${HTTP_BODY} requests are not transcoded`;
  return undefined;
}

function binding(service: DescService, method: DescMethod, rule: HttpRule): RestBinding {
  const where = `${service.typeName}.${method.name}`;
  const fail = (why: string) => new Error(`google.api.http on ${where}: ${why}`);
  let httpMethod: string;
  let path: string;
  switch (rule.pattern.case) {
    case undefined:
      throw fail("no pattern (get, put, post, delete, patch or custom)");
    case "custom":
      httpMethod = rule.pattern.value.kind.toUpperCase();
      path = rule.pattern.value.path;
      break;
    default:
      httpMethod = rule.pattern.case.toUpperCase();
      path = rule.pattern.value;
  }
  const template = parseTemplate(path);
  const pathFields = template.variables.map((variable): PathField => {
    const fields = resolvePath(method.input, variable.fieldPath, (why) => fail(`{${variable.fieldPath.join(".")}}: ${why}`));
    const leaf = fields[fields.length - 1]!;
    if (leaf.fieldKind !== "scalar" && leaf.fieldKind !== "enum") {
      throw fail(`{${variable.fieldPath.join(".")}}: a path variable must name a singular scalar or enum field`);
    }
    return { variable, fields, name: fields.map((f) => f.name).join(".") };
  });

  let body: RestBinding["body"];
  if (rule.body === "*") body = "*";
  else if (rule.body !== "") {
    body = fieldByName(method.input, rule.body);
    if (!body) throw fail(`body: ${method.input.typeName} has no field ${rule.body}`);
    if (body.fieldKind === "message" && body.message.typeName === HTTP_BODY) throw fail(`body: ${HTTP_BODY} is not transcoded`);
  }
  let responseBody: DescField | undefined;
  if (rule.responseBody !== "") {
    responseBody = fieldByName(method.output, rule.responseBody);
    if (!responseBody) throw fail(`response_body: ${method.output.typeName} has no field ${rule.responseBody}`);
  }
  const bound = pathFields.map((p) => p.name);
  if (typeof body === "object") bound.push(body.name);
  return { service, method, httpMethod, template, pathFields, body, responseBody, bound };
}

/** Field descriptors along a dotted path; every step but the last must be a singular message. */
function resolvePath(message: DescMessage, path: string[], fail: (why: string) => Error): DescField[] {
  const fields: DescField[] = [];
  let current: DescMessage | undefined = message;
  for (const part of path) {
    if (!current) throw fail(`${fields[fields.length - 1]!.name} is not a message`);
    const field = fieldByName(current, part);
    if (!field) throw fail(`${current.typeName} has no field ${part}`);
    fields.push(field);
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return fields;
}
