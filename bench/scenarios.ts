// The calls a run measures, each with its request bodies in either encoding and a check that
// one real call answers what it should (a fast wrong answer must not pass as a result).
import { create, fromJson, toBinary, toJsonString, type DescMethodUnary, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { GetTagRequestSchema, ListTagsRequestSchema, TagService, type ListTagsResponse, type Tag } from "../gen/artifact/v1/tag_pb.js";
import { ceilingGetTag, diagnosticMethods, DIAGNOSTIC_METHODS } from "./services.js";
import type { PlannedRequest, Protocol } from "./load/index.js";
import { PAGE_SIZE, type Seeded } from "./seed.js";

export interface Scenario {
  /** Row label: "ceiling", "GetTag", "ListTags p1"… */
  name: string;
  method: DescMethodUnary;
  requests: MessageShape<DescMessage>[];
  /** The REST path (GET) of a request, when the call has a google.api.http GET binding. */
  restPath?: (request: MessageShape<DescMessage>) => string;
  /** A problem with one answer, or undefined when it is right. */
  check(request: MessageShape<DescMessage>, response: MessageShape<DescMessage>): string | undefined;
}

/** "diagnostics": GetTag's query run other ways (bench/diagnostics.ts), not in a default run. */
export const SCENARIO_NAMES = ["ceiling", "GetTag", "ListTags", "diagnostics"] as const;
export const DEFAULT_SCENARIOS: readonly ScenarioName[] = ["ceiling", "GetTag", "ListTags"];
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

export function buildScenarios(seed: Seeded, which: readonly ScenarioName[], deepPage: number): Scenario[] {
  const getTag = TagService.method.getTag as DescMethodUnary;
  const listTags = TagService.method.listTags as DescMethodUnary;
  const getRequests = seed.tagIds.map((id) => create(GetTagRequestSchema, { id }));
  const scenarios: Scenario[] = [];
  if (which.includes("ceiling")) {
    scenarios.push({
      name: "ceiling (no database)",
      method: ceilingGetTag,
      requests: getRequests,
      check: (_req, res) => ((res as Tag).digest.startsWith("sha256:") ? undefined : "ceiling returned no tag"),
    });
  }
  if (which.includes("GetTag")) {
    scenarios.push({
      name: "GetTag",
      method: getTag,
      requests: getRequests,
      // tag.proto: get: "/v1/tags/{id}"
      restPath: (req) => `/v1/tags/${encodeURIComponent((req as unknown as { id: string }).id)}`,
      check: (req, res) => ((res as Tag).id === (req as unknown as { id: string }).id ? undefined : "GetTag returned another tag"),
    });
  }
  if (which.includes("diagnostics")) {
    for (const name of DIAGNOSTIC_METHODS) {
      scenarios.push({
        name: `diag ${name}`,
        method: diagnosticMethods[name],
        requests: getRequests,
        check: (req, res) => ((res as Tag).id === (req as unknown as { id: string }).id ? undefined : `${name} returned another tag`),
      });
    }
  }
  if (which.includes("ListTags")) {
    for (const page of [1, deepPage]) {
      const pageToken = seed.pageTokens.get(page);
      if (pageToken === undefined) throw new Error(`no token for page ${page}`);
      scenarios.push({
        name: `ListTags p${page} ×${PAGE_SIZE}`,
        method: listTags,
        requests: [create(ListTagsRequestSchema, { repositoryId: seed.repositoryId, pageSize: PAGE_SIZE, pageToken })],
        check: (_req, res) => {
          const r = res as ListTagsResponse;
          return r.tags.length === PAGE_SIZE && r.nextPageToken !== "" ? undefined : `ListTags page ${page} returned ${r.tags.length} tags`;
        },
      });
    }
  }
  return scenarios;
}

export function pathOf(method: DescMethodUnary): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** The requests as the load generator sends them. */
export function encodeRequests(scenario: Scenario, protocol: Protocol): PlannedRequest[] {
  if (protocol === "rest") {
    const restPath = scenario.restPath;
    if (!restPath) throw new Error(`${scenario.name} has no REST binding in this bench`);
    return scenario.requests.map((m) => ({ path: restPath(m), body: "" }));
  }
  const schema = scenario.method.input;
  const path = pathOf(scenario.method);
  return scenario.requests.map((m) => ({
    path,
    body: protocol === "grpc" ? Buffer.from(toBinary(schema, m)).toString("base64") : toJsonString(schema, m),
  }));
}

export const httpMethodOf = (protocol: Protocol) => (protocol === "rest" ? "GET" : "POST");

function transportFor(protocol: Exclude<Protocol, "rest">, baseUrl: string): Transport {
  return protocol === "grpc" ? createGrpcTransport({ baseUrl }) : createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false });
}

/** One real call over the protocol under test, checked; throws when the answer is wrong. */
export async function verify(scenario: Scenario, protocol: Protocol, baseUrl: string): Promise<void> {
  const request = scenario.requests[0]!;
  let response: MessageShape<DescMessage>;
  if (protocol === "rest") {
    const [{ path }] = encodeRequests({ ...scenario, requests: [request] }, protocol) as [PlannedRequest];
    const res = await fetch(new URL(path, baseUrl), { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${scenario.name} over REST: GET ${path} answered ${res.status}: ${text.slice(0, 200)}`);
    response = fromJson(scenario.method.output, JSON.parse(text) as JsonValue);
  } else {
    response = (await transportFor(protocol, baseUrl).unary(scenario.method, undefined, 10_000, undefined, request)).message;
  }
  const problem = scenario.check(request, response);
  if (problem) throw new Error(`${scenario.name} over ${protocol}: ${problem}`);
}
