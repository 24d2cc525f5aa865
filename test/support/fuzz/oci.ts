// Fuzzed requests on the registry API, from its route grammar (src/oci/routes.ts):
// /v2/<registry>/<namespace>/<repository...>/{manifests/<reference>, blobs/<digest>,
// blobs/uploads/[<id>], tags/list, referrers/<digest>}, /v2/_catalog and /v2/ — with names valid,
// invalid, overlong, percent-encoded or full of dot segments; every method; the query parameters
// the API reads (n, last, digest, mount, from, artifactType) and others; Content-Range, Range and
// Content-Length valid, invalid or contradicting; bodies of random bytes, cut short, or manifests
// with hostile fields (some valid enough to be stored).
import fc from "fast-check";
import { bodyMutation, extraHeaders, mutate, oddContentType, type BodyMutation } from "./framing.js";
import { JsonObject, jsonText, wrongJson, type JsonTree } from "./messages.js";
import { grammarDigest, grammarName, grammarTag, hostileShortText, hostileText, jsonNumberish, pct, ref, Ref, type Leaf } from "./values.js";
import type { WireRequest } from "./wire.js";

export type OciRouteSpec =
  | { kind: "base"; slash: boolean }
  | { kind: "catalog" }
  | { kind: "manifest"; reference: Leaf }
  | { kind: "blob"; digest: Leaf }
  | { kind: "uploads"; slash: boolean }
  | { kind: "upload"; id: Leaf }
  | { kind: "tags" }
  | { kind: "referrers"; digest: Leaf }
  | { kind: "other"; rest: string };

export interface OciCase {
  kind: "oci";
  h2: boolean;
  method: string;
  /** Joined with "/" (references to playground names included). */
  name: Leaf[];
  /** raw: as generated; components: each "/"-separated part percent-encoded; whole: "/" encoded too. */
  nameEncoding: "raw" | "components" | "whole";
  route: OciRouteSpec;
  argEncoding: "uri" | "raw";
  query: [string, Leaf][];
  headers: [string, Leaf][];
  body: JsonTree | Uint8Array | undefined;
  mutation: BodyMutation | undefined;
  cut: boolean;
}

const MEDIA_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.config.v1+json",
  "application/vnd.oci.image.layer.v1.tar",
  "application/vnd.oci.empty.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
];
const mediaType: fc.Arbitrary<string> = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...MEDIA_TYPES) }, { weight: 1, arbitrary: hostileShortText });

const nameComponent: fc.Arbitrary<Leaf> = fc.oneof(
  { weight: 4, arbitrary: grammarName },
  {
    weight: 1,
    arbitrary: fc.constantFrom("..", ".", "%2e%2e", "%2E.", "%2F", "", "A", "a..b", "a--b", "a__b", "_a", "manifests", "blobs", "uploads", "tags", "v2"),
  },
  { weight: 1, arbitrary: hostileShortText },
  { weight: 1, arbitrary: fc.constantFrom(64, 128, 256, 1000).map((n) => "a".repeat(n)) },
);

const imageName: fc.Arbitrary<Leaf[]> = fc.oneof(
  { weight: 6, arbitrary: ref("hostedImage", "remoteImage").map((r) => [r]) },
  { weight: 2, arbitrary: fc.tuple(ref("hostedRegistryName"), fc.constant("team"), nameComponent).map((p) => [...p]) },
  { weight: 2, arbitrary: fc.array(nameComponent, { minLength: 1, maxLength: 5 }) },
  { weight: 1, arbitrary: fc.tuple(ref("hostedImage", "remoteImage"), nameComponent).map((p) => [...p]) },
);

const digestLeaf: fc.Arbitrary<Leaf> = fc.oneof(
  { weight: 4, arbitrary: ref("manifestDigest", "configDigest", "layerDigest") },
  { weight: 2, arbitrary: grammarDigest },
  { weight: 2, arbitrary: hostileShortText },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "sha256:",
      "sha256:" + "a".repeat(63),
      "sha256:" + "A".repeat(64),
      "sha512:" + "0".repeat(64),
      "sha384:" + "0".repeat(96),
      "sha256:../..",
    ),
  },
);

const routeSpec: fc.Arbitrary<OciRouteSpec> = fc.oneof(
  { weight: 1, arbitrary: fc.boolean().map((slash) => ({ kind: "base" as const, slash })) },
  { weight: 1, arbitrary: fc.constant({ kind: "catalog" as const }) },
  {
    weight: 5,
    arbitrary: fc
      .oneof(ref("tagName", "manifestDigest"), grammarTag, digestLeaf, hostileShortText)
      .map((reference) => ({ kind: "manifest" as const, reference })),
  },
  { weight: 4, arbitrary: digestLeaf.map((digest) => ({ kind: "blob" as const, digest })) },
  { weight: 3, arbitrary: fc.boolean().map((slash) => ({ kind: "uploads" as const, slash })) },
  {
    weight: 4,
    arbitrary: fc
      .oneof({ weight: 3, arbitrary: ref("uploadId") }, { weight: 1, arbitrary: fc.uuid() }, { weight: 1, arbitrary: hostileShortText })
      .map((id) => ({ kind: "upload" as const, id })),
  },
  { weight: 2, arbitrary: fc.constant({ kind: "tags" as const }) },
  { weight: 2, arbitrary: digestLeaf.map((digest) => ({ kind: "referrers" as const, digest })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom("tags", "tags/list/", "blobs", "manifests", "manifests/", "referrers", "blobs/uploads/a/b", "_catalog")
      .map((rest) => ({ kind: "other" as const, rest })),
  },
);

const SPEC_METHODS: Record<OciRouteSpec["kind"], string[]> = {
  base: ["GET", "HEAD"],
  catalog: ["GET"],
  manifest: ["GET", "HEAD", "PUT", "DELETE"],
  blob: ["GET", "HEAD", "DELETE"],
  uploads: ["POST"],
  upload: ["PATCH", "PUT", "GET", "DELETE"],
  tags: ["GET"],
  referrers: ["GET"],
  other: ["GET"],
};
/** Every kind of route the generator aims at (the grammar's, and paths that are none). */
export const OCI_ROUTE_KINDS = Object.keys(SPEC_METHODS) as OciRouteSpec["kind"][];

const ANY_METHODS = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "get"];

const numberText: fc.Arbitrary<string> = fc.oneof(
  jsonNumberish.map(String),
  fc.constantFrom("0", "1", "2", "1000", "1001", "99999999999999999999", "-1", "1e3", "", " 1"),
);

const QUERY_BY_ROUTE: Record<OciRouteSpec["kind"], fc.Arbitrary<[string, Leaf]>> = {
  base: fc.tuple(hostileShortText, hostileShortText),
  catalog: fc.oneof(
    numberText.map((v): [string, Leaf] => ["n", v]),
    fc.oneof(ref("hostedImage", "remoteImage"), hostileText).map((v): [string, Leaf] => ["last", v]),
  ),
  manifest: fc.tuple(hostileShortText, hostileShortText),
  blob: fc.tuple(hostileShortText, hostileShortText),
  uploads: fc.oneof(
    digestLeaf.map((v): [string, Leaf] => ["digest", v]),
    digestLeaf.map((v): [string, Leaf] => ["mount", v]),
    fc.oneof(ref("hostedImage", "remoteImage"), hostileShortText).map((v): [string, Leaf] => ["from", v]),
  ),
  upload: digestLeaf.map((v): [string, Leaf] => ["digest", v]),
  tags: fc.oneof(
    numberText.map((v): [string, Leaf] => ["n", v]),
    fc.oneof(ref("tagName"), grammarTag, hostileText).map((v): [string, Leaf] => ["last", v]),
  ),
  referrers: fc.oneof(
    fc.oneof(mediaType, hostileText).map((v): [string, Leaf] => ["artifactType", v]),
    digestLeaf.map((v): [string, Leaf] => ["last", v]),
  ),
  other: fc.tuple(hostileShortText, hostileShortText),
};

const CONTENT_RANGES = [
  "0-0",
  "0-9",
  "bytes 0-9/10",
  "bytes=0-9",
  "5-3",
  "-1-5",
  "0-",
  "1-1",
  "99999999999999999999-99999999999999999999",
  "0-9007199254740993",
  "a-b",
  "",
];
const RANGES = [
  "bytes=0-0",
  "bytes=-1",
  "bytes=5-",
  "bytes=0-99999999999999999999",
  "bytes=1-0",
  "items=0-1",
  "bytes=0-1,3-4",
  "bytes=-0",
  "bytes=99999-",
  "bytes=",
];
const LENGTHS = ["0", "1", "10", "-1", "99999999999999999999", "1.5", "0x10", "", "4194305", "68719476737"];

const ociHeader: fc.Arbitrary<[string, Leaf]> = fc.oneof(
  { weight: 3, arbitrary: mediaType.map((v): [string, Leaf] => ["content-type", v]) },
  { weight: 1, arbitrary: oddContentType.map((v): [string, Leaf] => ["content-type", v]) },
  { weight: 2, arbitrary: fc.oneof(fc.constantFrom(...CONTENT_RANGES), hostileShortText).map((v): [string, Leaf] => ["content-range", v]) },
  { weight: 2, arbitrary: fc.oneof(fc.constantFrom(...RANGES), hostileShortText).map((v): [string, Leaf] => ["range", v]) },
  { weight: 1, arbitrary: fc.constantFrom(...LENGTHS).map((v): [string, Leaf] => ["content-length", v]) },
  { weight: 1, arbitrary: fc.oneof(ref("manifestDigest"), fc.constant("*"), hostileShortText).map((v): [string, Leaf] => ["if-none-match", v]) },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom(...MEDIA_TYPES), hostileShortText).map((v): [string, Leaf] => ["accept", v]) },
);

/** A descriptor: real digests and sizes of the playground now and then, hostile values otherwise. */
const descriptor: fc.Arbitrary<JsonTree> = fc
  .record(
    {
      mediaType,
      digest: fc.oneof(digestLeaf, wrongJson),
      size: fc.oneof(ref("configSize", "layerSize", "manifestSize"), jsonNumberish, wrongJson),
      annotations: fc.array(fc.tuple(hostileShortText, fc.oneof(hostileText, wrongJson)), { maxLength: 2 }).map((e) => new JsonObject(e)),
      artifactType: fc.oneof(mediaType, hostileText),
      urls: fc.array(hostileShortText, { maxLength: 2 }),
      platform: fc.record({ os: hostileShortText, architecture: hostileShortText }).map((p) => new JsonObject(Object.entries(p))),
    },
    { requiredKeys: ["mediaType", "digest", "size"] },
  )
  .map((d) => new JsonObject(Object.entries(d) as [string, JsonTree][]));

/** A manifest that is valid but for hostile free text (annotations, artifactType, subject), so it is stored. */
const storableManifest: fc.Arbitrary<JsonTree> = fc
  .record({
    annotations: fc.array(fc.tuple(hostileShortText, hostileText), { maxLength: 3 }),
    layerAnnotations: fc.array(fc.tuple(hostileShortText, hostileText), { maxLength: 2 }),
    artifactType: fc.option(fc.oneof(mediaType, hostileText), { nil: undefined }),
    subject: fc.boolean(),
  })
  .map(
    (m) =>
      new JsonObject([
        ["schemaVersion", 2],
        ["mediaType", "application/vnd.oci.image.manifest.v1+json"],
        ...(m.artifactType === undefined ? [] : [["artifactType", m.artifactType] as [string, JsonTree]]),
        [
          "config",
          new JsonObject([
            ["mediaType", "application/vnd.oci.image.config.v1+json"],
            ["digest", new Ref("configDigest")],
            ["size", new Ref("configSize")],
          ]),
        ],
        [
          "layers",
          [
            new JsonObject([
              ["mediaType", "application/vnd.oci.image.layer.v1.tar"],
              ["digest", new Ref("layerDigest")],
              ["size", new Ref("layerSize")],
              ["annotations", new JsonObject(m.layerAnnotations)],
            ]),
          ],
        ],
        ...(m.subject
          ? [
              [
                "subject",
                new JsonObject([
                  ["mediaType", "application/vnd.oci.image.manifest.v1+json"],
                  ["digest", new Ref("manifestDigest")],
                  ["size", new Ref("manifestSize")],
                ]),
              ] as [string, JsonTree],
            ]
          : []),
        ["annotations", new JsonObject(m.annotations)],
      ]),
  );

const anyManifest: fc.Arbitrary<JsonTree> = fc
  .record(
    {
      schemaVersion: fc.oneof(fc.constant(2), jsonNumberish, wrongJson),
      mediaType,
      artifactType: fc.oneof(mediaType, hostileText),
      config: fc.oneof(descriptor, wrongJson),
      layers: fc.oneof(fc.array(descriptor, { maxLength: 3 }), wrongJson),
      manifests: fc.oneof(fc.array(descriptor, { maxLength: 3 }), wrongJson),
      subject: fc.oneof(descriptor, wrongJson),
      annotations: fc.oneof(
        fc.array(fc.tuple(hostileShortText, fc.oneof(hostileText, wrongJson)), { maxLength: 3 }).map((e) => new JsonObject(e)),
        wrongJson,
      ),
    },
    { requiredKeys: [] },
  )
  .map((m) => new JsonObject(Object.entries(m) as [string, JsonTree][]));

const body: fc.Arbitrary<JsonTree | Uint8Array | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 256 }) },
  { weight: 1, arbitrary: fc.constantFrom(1024, 65_536, 1_048_576).map((n) => new Uint8Array(n).fill(0x61)) },
  { weight: 3, arbitrary: anyManifest },
  { weight: 3, arbitrary: storableManifest },
  { weight: 1, arbitrary: wrongJson },
);

export const ociCase: fc.Arbitrary<OciCase> = routeSpec.chain((route) =>
  fc
    .record({
      h2: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      method: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...SPEC_METHODS[route.kind]) }, { weight: 1, arbitrary: fc.constantFrom(...ANY_METHODS) }),
      name: imageName,
      nameEncoding: fc.oneof(
        { weight: 8, arbitrary: fc.constant("raw" as const) },
        { weight: 1, arbitrary: fc.constantFrom("components" as const, "whole" as const) },
      ),
      argEncoding: fc.oneof({ weight: 8, arbitrary: fc.constant("uri" as const) }, { weight: 1, arbitrary: fc.constant("raw" as const) }),
      query: fc.array(fc.oneof({ weight: 4, arbitrary: QUERY_BY_ROUTE[route.kind] }, { weight: 1, arbitrary: fc.tuple(hostileShortText, hostileShortText) }), {
        maxLength: 3,
      }),
      headers: fc.tuple(fc.array(ociHeader, { maxLength: 3 }), extraHeaders).map(([a, b]) => [...a, ...b]),
      body,
      mutation: bodyMutation,
      cut: fc.oneof({ weight: 25, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    })
    .map((rest): OciCase => ({ kind: "oci", route, ...rest })),
);

export function ociRequest(c: OciCase, resolve: (r: Ref) => string): WireRequest {
  const text = (v: Leaf) => (typeof v === "string" ? v : resolve(v));
  const arg = (v: Leaf) => (c.argEncoding === "raw" || typeof v !== "string" ? text(v) : pct(v));
  const rawName = c.name.map(text).join("/");
  const name = c.nameEncoding === "raw" ? rawName : c.nameEncoding === "whole" ? pct(rawName) : rawName.split("/").map(pct).join("/");
  const r = c.route;
  const suffix =
    r.kind === "manifest"
      ? `manifests/${arg(r.reference)}`
      : r.kind === "blob"
        ? `blobs/${arg(r.digest)}`
        : r.kind === "uploads"
          ? `blobs/uploads${r.slash ? "/" : ""}`
          : r.kind === "upload"
            ? `blobs/uploads/${arg(r.id)}`
            : r.kind === "tags"
              ? "tags/list"
              : r.kind === "referrers"
                ? `referrers/${arg(r.digest)}`
                : r.kind === "other"
                  ? r.rest
                  : "";
  const query = c.query.length ? `?${c.query.map(([k, v]) => `${pct(k)}=${c.argEncoding === "raw" ? text(v) : pct(text(v))}`).join("&")}` : "";
  const path = r.kind === "base" ? (r.slash ? "/v2/" : "/v2") : r.kind === "catalog" ? "/v2/_catalog" : `/v2/${name}/${suffix}`;
  const headers = c.headers.map(([k, v]): [string, string] => [k, text(v)]);
  let bytes: Uint8Array = c.body === undefined ? new Uint8Array() : c.body instanceof Uint8Array ? c.body : Buffer.from(jsonText(c.body, resolve), "utf8");
  bytes = mutate(bytes, c.mutation);
  return {
    h2: c.h2,
    method: c.method,
    path: path + query,
    headers,
    body: bytes,
    mayStream: false,
    ...(c.cut && !c.h2 ? { cutAfter: Math.floor(bytes.length / 2) } : {}),
  };
}
