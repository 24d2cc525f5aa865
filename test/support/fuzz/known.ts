// KNOWN_FAILURES: classes of failure this suite finds that are being fixed on other branches.
// While one is listed, a failure of that class is counted and printed but does not fail the run.
// Delete an entry as soon as its fix is merged: from then on the suite guards the fix.
import type { DescMessage } from "@bufbuild/protobuf";
import { JsonObject, RawJson, type JsonTree, type WireField } from "./messages.js";
import type { FuzzCase } from "./oracle.js";
import type { LogLine, ProcessEvent } from "./watch.js";
import type { WireRequest, WireResponse } from "./wire.js";

export interface Failure {
  /** What is wrong, in a line. */
  problem: string;
  /** The request(s) concerned: one for a bad answer, the whole batch for a process-level event. */
  requests: { c: FuzzCase; req: WireRequest; res?: WireResponse }[];
  serverErrors: LogLine[];
  processEvents: ProcessEvent[];
  /** Milliseconds of the smallest deadline any request sent shortly before asked for (undefined: none). */
  recentDeadlineMs: number | undefined;
}

export interface KnownFailure {
  id: string;
  description: string;
  matches(f: Failure): boolean;
}

// PostgreSQL and PGlite refuse NUL in text with this (SQLSTATE 22021); in a log line the quotes are escaped.
const NUL_IN_TEXT = /invalid byte sequence for encoding \\*"UTF8\\*": 0x00/;
/** The free-text fields of that class (proto names, and the /v2/ query parameters). */
const FREE_TEXT = new Set(["description", "tag_pattern", "query", "last", "artifactType"]);

export const KNOWN_FAILURES: KnownFailure[] = [
  {
    id: "nul-in-free-text",
    description:
      "NUL reaches PostgreSQL through a free-text field (descriptions, sync_filter.tag_pattern, List `query`, /v2/ tags/list `last`, referrers `artifactType`): 500 / INTERNAL",
    matches: (f) =>
      f.processEvents.length === 0 &&
      f.serverErrors.length > 0 &&
      f.serverErrors.every((e) => NUL_IN_TEXT.test(e.text)) &&
      f.requests.some(({ c }) => [...fieldsWithNul(c)].some((name) => FREE_TEXT.has(name))),
  },
  {
    id: "deadline-before-call",
    description:
      "a deadline that has passed before the call reaches src/http/deadline.ts (0 or 1 ms) on a call that then fails: the call's rejection is left unhandled, which ends a real server process",
    // ≤ 5 ms rather than ≤ 1: on a loaded machine a 2-5 ms deadline can also be gone by then.
    matches: (f) =>
      f.processEvents.length > 0 &&
      f.processEvents.every((e) => e.kind === "unhandledRejection" && isCallError(e.error)) &&
      f.recentDeadlineMs !== undefined &&
      f.recentDeadlineMs <= 5,
  },
];

/** A domain error or ConnectError: what a call implementation rejects with. */
function isCallError(error: unknown): boolean {
  return error instanceof Error && (error.name === "DomainError" || error.name === "ConnectError");
}

/** Names of the fields (proto names) and query parameters whose value in the request holds a NUL. */
export function fieldsWithNul(c: FuzzCase): Set<string> {
  const found = new Set<string>();
  const hasNul = (v: unknown) =>
    (typeof v === "string" && v.includes("\u0000")) || (v instanceof RawJson && (v.text.includes("\\u0000") || v.text.includes("\u0000")));
  const snake = (key: string) => key.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);
  const walkJson = (tree: JsonTree, key: string) => {
    if (hasNul(tree)) found.add(key);
    if (Array.isArray(tree)) for (const t of tree) walkJson(t, key);
    if (tree instanceof JsonObject) for (const [k, v] of tree.entries) walkJson(v, snake(k));
  };
  const walkWire = (fields: WireField[], desc: DescMessage | undefined) => {
    for (const w of fields) {
      const field = desc?.fields.find((f) => f.number === w.no);
      const name = field?.name ?? String(w.no);
      if ("text" in w.v && hasNul(w.v.text)) found.add(name);
      if ("bytes" in w.v && w.v.bytes.includes(0)) found.add(name);
      if ("message" in w.v) walkWire(w.v.message, field?.fieldKind === "message" ? field.message : undefined);
    }
  };
  const query = (params: [string, unknown][], name: (key: string) => string) => {
    for (const [k, v] of params) if (hasNul(v)) found.add(name(k));
  };
  if (c.kind === "rpc") {
    for (const m of c.messages) {
      if ("json" in m) walkJson(m.json, "");
      else walkWire(m.wire, c.method.input);
    }
  }
  if (c.kind === "rest") {
    if (c.body !== undefined && !(c.body instanceof Uint8Array)) walkJson(c.body, "");
    query(c.query, (k) => snake(k.split(".").pop()!));
  }
  if (c.kind === "oci") query(c.query, (k) => k);
  return found;
}
