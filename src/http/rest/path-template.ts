// Part of the REST transcoder (its layout and layering: src/http/rest/transcoder.ts).
//
// google.api.http path templates (google/api/http.proto, "Path template syntax"): parsing,
// a segment trie that matches a request path against every template at once, and the
// percent-decoding of what the variables captured.
//
// One extension to the grammar, as Envoy and grpc-gateway have it: `**` may be followed by
// literal segments and variables (`/v1/images/{repository=**}/manifests/{reference}`); the
// `**` then takes as many segments as it can while the rest still matches.

export type Segment = { kind: "literal"; value: string } | { kind: "wildcard" } | { kind: "multi" };

export interface Variable {
  /** The field path as written, e.g. ["registry", "id"]. */
  fieldPath: string[];
  /** The template segments it covers: [start, end). */
  start: number;
  end: number;
  /** Covers more than one segment or a `**`: decoded keeping "%2F" (see http.proto). */
  multi: boolean;
}

export interface PathTemplate {
  source: string;
  segments: Segment[];
  variables: Variable[];
  /** The custom verb after the last ":" (e.g. "ping"), or "". */
  verb: string;
}

export class TemplateSyntaxError extends Error {
  constructor(source: string, why: string) {
    super(`path template ${JSON.stringify(source)}: ${why}`);
    this.name = "TemplateSyntaxError";
  }
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Characters a literal may hold: RFC 3986 pchar without ":" (the verb separator), plus "%".
const LITERAL = /^[A-Za-z0-9\-._~!$&'()+,;=@%]+$/;

export function parseTemplate(source: string): PathTemplate {
  const fail = (why: string) => new TemplateSyntaxError(source, why);
  if (!source.startsWith("/")) throw fail('must start with "/"');
  const segments: Segment[] = [];
  const variables: Variable[] = [];
  let verb = "";
  let i = 1;

  const readUntil = (stops: string): string => {
    const from = i;
    while (i < source.length && !stops.includes(source[i]!)) i++;
    return source.slice(from, i);
  };
  const plainSegment = (text: string): Segment => {
    if (text === "*") return { kind: "wildcard" };
    if (text === "**") return { kind: "multi" };
    if (!LITERAL.test(text)) throw fail(`bad segment ${JSON.stringify(text)}`);
    return { kind: "literal", value: text };
  };

  for (;;) {
    if (source[i] === "{") {
      i++;
      const fieldPath = readUntil("=}/").split(".");
      if (!fieldPath.every((p) => IDENT.test(p))) throw fail(`bad field path ${JSON.stringify(fieldPath.join("."))}`);
      const start = segments.length;
      if (source[i] === "=") {
        i++;
        for (;;) {
          segments.push(plainSegment(readUntil("/}")));
          if (source[i] !== "/") break;
          i++;
        }
      } else {
        segments.push({ kind: "wildcard" });
      }
      if (source[i] !== "}") throw fail(`unclosed variable {${fieldPath.join(".")}`);
      i++;
      const covered = segments.slice(start);
      variables.push({
        fieldPath,
        start,
        end: segments.length,
        multi: covered.length > 1 || covered[0]!.kind === "multi",
      });
    } else {
      segments.push(plainSegment(readUntil("/:{}")));
    }
    if (i >= source.length) break;
    if (source[i] === ":") {
      verb = source.slice(i + 1);
      if (!LITERAL.test(verb)) throw fail(`bad verb ${JSON.stringify(verb)}`);
      break;
    }
    if (source[i] !== "/") throw fail(`unexpected ${JSON.stringify(source[i])} at ${i}`);
    i++;
  }

  if (segments.filter((s) => s.kind === "multi").length > 1) throw fail('at most one "**" per template');
  const names = variables.map((v) => v.fieldPath.join("."));
  const dup = names.find((n, k) => names.indexOf(n) !== k);
  if (dup !== undefined) throw fail(`variable ${dup} appears twice`);
  return { source, segments, variables, verb };
}

interface Entry<T> {
  template: PathTemplate;
  value: T;
}

class Node<T> {
  readonly literals = new Map<string, Node<T>>();
  wildcard?: Node<T>;
  multi?: Node<T>;
  /** Templates that end here, by verb. */
  readonly ends = new Map<string, Entry<T>[]>();
}

export interface PathMatch<T> {
  template: PathTemplate;
  value: T;
  /** The request path's raw (still percent-encoded) segments, verb removed. */
  segments: string[];
  /** bounds[k] = index in `segments` where template segment k starts; bounds[last] = segments.length. */
  bounds: number[];
}

/**
 * Every template in one trie of segments, so a request path is matched by walking it once
 * rather than by trying each template in turn. Literal edges are tried before `*`, `*` before
 * `**`, and templates with a custom verb before those without.
 */
export class PathMatcher<T> {
  private readonly root = new Node<T>();
  private readonly verbs = new Set<string>();

  add(template: PathTemplate, value: T): void {
    let node = this.root;
    for (const s of template.segments) {
      if (s.kind === "literal") {
        let next = node.literals.get(s.value);
        if (!next) node.literals.set(s.value, (next = new Node()));
        node = next;
      } else if (s.kind === "wildcard") {
        node = node.wildcard ??= new Node();
      } else {
        node = node.multi ??= new Node();
      }
    }
    let list = node.ends.get(template.verb);
    if (!list) node.ends.set(template.verb, (list = []));
    list.push({ template, value });
    if (template.verb !== "") this.verbs.add(template.verb);
  }

  /** Every template the path (no query string) matches, best first; [] when none does. */
  match(path: string): PathMatch<T>[] {
    if (path.charCodeAt(0) !== 47 /* "/" */) return [];
    const segments = path.slice(1).split("/");
    const found: PathMatch<T>[] = [];
    const last = segments[segments.length - 1]!;
    const colon = last.lastIndexOf(":");
    if (colon >= 0 && this.verbs.has(last.slice(colon + 1))) {
      const withoutVerb = segments.slice();
      withoutVerb[withoutVerb.length - 1] = last.slice(0, colon);
      walk(this.root, withoutVerb, 0, last.slice(colon + 1), [], found);
    }
    walk(this.root, segments, 0, "", [], found);
    return found;
  }
}

function walk<T>(node: Node<T>, segments: string[], i: number, verb: string, bounds: number[], found: PathMatch<T>[]): void {
  if (i === segments.length) {
    const entries = node.ends.get(verb);
    if (entries) {
      for (const e of entries) found.push({ template: e.template, value: e.value, segments, bounds: [...bounds, i] });
    }
    // A trailing "**" may match zero segments.
    if (node.multi) {
      bounds.push(i);
      walk(node.multi, segments, i, verb, bounds, found);
      bounds.pop();
    }
    return;
  }
  const segment = segments[i]!;
  // Empty segments ("//", a trailing "/") match nothing: no resource has an empty id.
  if (segment === "") return;
  bounds.push(i);
  const literal = node.literals.get(segment);
  if (literal) walk(literal, segments, i + 1, verb, bounds, found);
  if (node.wildcard) walk(node.wildcard, segments, i + 1, verb, bounds, found);
  if (node.multi) {
    // Greedy: the longest run of non-empty segments first.
    let end = i;
    while (end < segments.length && segments[end] !== "") end++;
    for (let k = end; k >= i; k--) walk(node.multi, segments, k, verb, bounds, found);
  }
  bounds.pop();
}

/** Thrown for a malformed percent-escape in a captured segment. */
export class PathDecodeError extends Error {
  constructor(readonly segment: string) {
    super(`malformed percent-encoding in path segment ${JSON.stringify(segment)}`);
    this.name = "PathDecodeError";
  }
}

function decode(segment: string): string {
  if (!segment.includes("%")) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new PathDecodeError(segment);
  }
}

// Multi-segment variables keep an encoded "/" encoded, so it stays distinguishable from a separator.
function decodeKeepingSlash(segment: string): string {
  if (!segment.includes("%")) return segment;
  return segment
    .split(/(%2[Ff])/)
    .map((part, k) => (k % 2 === 1 ? part : decode(part)))
    .join("");
}

/** The decoded value a variable captured in a match. */
export function capturedValue(match: PathMatch<unknown>, variable: Variable): string {
  const from = match.bounds[variable.start]!;
  const to = match.bounds[variable.end]!;
  if (!variable.multi) return decode(match.segments[from]!);
  let value = "";
  for (let k = from; k < to; k++) value += (k > from ? "/" : "") + decodeKeepingSlash(match.segments[k]!);
  return value;
}
