// The OCI distribution-spec conformance suite (opencontainers/distribution-spec, conformance/,
// v1.1.x: 01_pull_test.go, 02_push_test.go, 03_discovery_test.go, 04_management_test.go with
// setup.go and image.go) re-enacted in TypeScript: the same four workflows in the same order
// against one namespace, the same requests (methods, paths, query parameters, headers, bodies
// built the way setup.go builds them) and the same acceptance rules. The Go suite cannot be built
// here (no Go module proxy); this file is how we keep passing it. Where the suite accepts several
// outcomes, the Go rule is asserted first and then the one outcome this service produces is
// pinned ("we: …"), so a change between two accepted outcomes is noticed too.
//
// ociConformanceWorkflows() registers the workflows against any running service: a test server in
// the same process (test/oci-conformance.test.ts) or replicas behind a load balancer
// (test/replicas.test.ts).
//
// Every it() carries the exact name of the g.Specify() it mirrors, under the same Context path:
//   01_pull_test.go       Pull › Setup: "Populate registry with test blob" (configs[0], configs[1]),
//                         "Populate registry with test layer", "Populate registry with test manifest"
//                         (manifests[0] by tag, manifests[1] by digest), "Get tag name from environment";
//                         Pull blobs: "HEAD request to nonexistent blob should result in 404 response",
//                         "HEAD request to existing blob should yield 200", "GET nonexistent blob should
//                         result in 404 response", "GET request to existing blob URL should yield 200";
//                         Pull manifests: "HEAD request to nonexistent manifest should return 404",
//                         "HEAD request to manifest[0|1] path (digest) should yield 200 response", "HEAD
//                         request to manifest path (tag) should yield 200 response", "GET nonexistent
//                         manifest should return 404", "GET request to manifest[0|1] path (digest) should
//                         yield 200 response", "GET request to manifest path (tag) should yield 200 response";
//                         Error codes: "400 response body should contain OCI-conforming JSON message";
//                         Teardown: "Delete manifest[0|1] created in setup", "Delete config[0|1] blob
//                         created in setup", "Delete layer blob created in setup".
//   02_push_test.go      Push › Blob Upload Streamed: "PATCH request with blob in body should yield 202
//                         response", "PUT request to session URL with digest should yield 201 response";
//                         Blob Upload Monolithic: "GET nonexistent blob should result in 404 response",
//                         "POST request with digest and blob should yield a 201 or 202", "GET request to
//                         blob URL from prior request should yield 200 or 404 based on response code",
//                         "POST request should yield a session ID", "PUT upload of a blob should yield a
//                         201 Response", "GET request to existing blob should yield 200 response", "PUT
//                         upload of a layer blob should yield a 201 Response", "GET request to existing
//                         layer should yield 200 response"; Blob Upload Chunked: "Out-of-order blob upload
//                         should return 416", "PATCH request with first chunk should return 202", "Retry
//                         previous blob chunk should return 416", "Get on stale blob upload should return
//                         204 with a range and location", "PATCH request with second chunk should return
//                         202", "PUT request with digest should return 201"; Cross-Repository Blob Mount:
//                         "Cross-mounting of a blob without the from argument should yield session id",
//                         "POST request to mount another repository's blob should return 201 or 202", "GET
//                         request to test digest within cross-mount namespace should return 200",
//                         "Cross-mounting of nonexistent blob should yield session id", "Cross-mounting
//                         without from, and automatic content discovery enabled should return a 201",
//                         "… disabled should return a 202"; Manifest Upload: "GET nonexistent manifest
//                         should return 404", "PUT should accept a manifest upload", "Registry should
//                         accept a manifest upload with no layers", "GET request to manifest URL (digest)
//                         should yield 200 response"; Teardown: "Delete manifest created in tests",
//                         "Delete config blob created in tests", "Delete layer blob created in setup".
//   03_discovery_test.go Content Discovery › Setup: "Populate registry with test blob", "… test layer",
//                         "… test tags", "… test tags (no push)", "References setup"; Test content
//                         discovery endpoints (listing tags): "GET request to list tags should yield 200
//                         response", "GET number of tags should be limitable by `n` query parameter", "GET
//                         start of tag is set by `last` query parameter"; (listing references): "GET
//                         request to nonexistent blob should result in empty 200 response", "GET request
//                         to existing blob should yield 200", "GET request to existing blob with filter
//                         should yield 200", "GET request to missing manifest should yield 200"; Teardown:
//                         "Delete created manifest & associated tags", "Delete config blob created in
//                         tests", "Delete layer blob created in setup", "References teardown".
//   04_management_test.go Content Management › Setup: "Populate registry with test config blob", "…
//                         test layer", "… test tag", "Check how many tags there are before anything gets
//                         deleted"; Manifest delete: "DELETE request to manifest tag should return 202,
//                         unless tag deletion is disallowed (400/405)", "DELETE request to manifest
//                         (digest) should yield 202 response unless already deleted", "GET request to
//                         deleted manifest URL should yield 404 response, unless delete is disallowed",
//                         "GET request to tags list should reflect manifest deletion"; Blob delete:
//                         "DELETE request to blob URL should yield 202 response", "GET request to deleted
//                         blob URL should yield 404 response".
//
// The wire is what the suite's client sends: reggie over resty over Go's net/http. A body set with
// SetBody is an io.Reader of unknown length, so Go sends it chunked and drops the Content-Length
// header the test sets (net/http never writes a caller's Content-Length); a POST, PUT or PATCH
// without a body says Content-Length: 0; query parameters are sorted and form-encoded; GET bodies
// are not sent. One more run sends every body with its real Content-Length instead and tears down
// blobs before manifests (OCI_DELETE_MANIFEST_BEFORE_BLOBS=0): there a blob that a manifest of the
// repository still lists is refused with 405, which every one of those teardown steps accepts.
//
// Credentials: as with OCI_USERNAME/OCI_PASSWORD, every request goes out without any first and
// reggie's token dance answers the 401 (Bearer challenge → token endpoint with Basic credentials →
// the request again with the token); the account is a robot with the admin role on the
// `conformance` registry only.
//
// Names: ours are <registry>/<namespace>/<repository>, so OCI_NAMESPACE is conformance/myorg/myrepo
// in a HOSTED registry `conformance` (created first), and OCI_CROSSMOUNT_NAMESPACE must be set too
// (the suite's default, conformance-<uuid>, has one component: NAME_INVALID here). To run the real
// suite against a running service (see docs/design-notes.md, "The OCI conformance suite"):
//   curl -X POST localhost:8080/v1/registries -H 'content-type: application/json' \
//     -H "authorization: Bearer $(cat data/admin-token)" \
//     -d '{"name":"conformance","kind":"REGISTRY_KIND_HOSTED"}'
//   cd distribution-spec/conformance && go test -c && \
//   OCI_USERNAME=admin OCI_PASSWORD="$(cat data/admin-token)" \
//   OCI_ROOT_URL=http://127.0.0.1:8080 OCI_NAMESPACE=conformance/myorg/myrepo \
//   OCI_CROSSMOUNT_NAMESPACE=conformance/other/repo OCI_AUTOMATIC_CROSSMOUNT=1 \
//   OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1 \
//   OCI_HIDE_SKIPPED_WORKFLOWS=0 OCI_REPORT_DIR=none ./conformance.test
import { createHash, randomBytes, randomInt } from "node:crypto";
import { Agent, request, type IncomingHttpHeaders } from "node:http";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it, type TestContext } from "vitest";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { bindRole, createAccount, identityClients } from "./support/identity.js";
import { tarStream } from "./support/tar.js";

/** The suite's settings, as the environment would give them to conformance.test. */
export interface ConformanceSettings {
  OCI_NAMESPACE: string;
  OCI_CROSSMOUNT_NAMESPACE: string;
  /** OCI_AUTOMATIC_CROSSMOUNT: unset (undefined), "1" or "0". */
  OCI_AUTOMATIC_CROSSMOUNT?: "0" | "1";
  OCI_DELETE_MANIFEST_BEFORE_BLOBS: boolean;
  /** How request bodies go over the wire: as Go's net/http sends reggie's (chunked), or with Content-Length. */
  bodies: "chunked" | "length";
}

/** The names every run uses: OCI_NAMESPACE and OCI_CROSSMOUNT_NAMESPACE in the HOSTED registry `conformance`. */
export const conformanceNames = {
  OCI_NAMESPACE: "conformance/myorg/myrepo",
  OCI_CROSSMOUNT_NAMESPACE: "conformance/other/repo",
  OCI_AUTOMATIC_CROSSMOUNT: "1",
} as const;

/** The service the workflows run against: where it answers (/v2/ and the catalog API alike) and its admin's API token. */
export interface ConformanceTarget {
  url: string;
  adminToken: string;
}

// ---- test data, built as setup.go builds it ---------------------------------------------------

const MT = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
  empty: "application/vnd.oci.empty.v1+json",
};
const digestOf = (bytes: Uint8Array | string) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
/** Go's json.MarshalIndent(v, "", "\t"): struct fields in declaration order, []byte as base64. */
const marshalIndent = (value: unknown) => Buffer.from(JSON.stringify(value, null, "\t"));

interface TestBlob {
  content: Buffer;
  contentLength: string;
  digest: string;
}
const testBlob = (content: Buffer): TestBlob => ({ content, contentLength: String(content.length), digest: digestOf(content) });

/** image.go's descriptor: newUnspecifiedField has no omitempty, so it is always there (null when unset). */
function descriptor(d: { mediaType: string; digest: string; size: number; data?: Buffer; newUnspecifiedField?: Buffer }) {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.data ? { data: d.data.toString("base64") } : {}),
    newUnspecifiedField: d.newUnspecifiedField ? d.newUnspecifiedField.toString("base64") : null,
  };
}

/** Go's randomString(16): letters, digits and '-'. */
function randomAuthor(): string {
  const letters = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-";
  return Array.from({ length: 16 }, () => letters[randomInt(letters.length)]).join("");
}

function buildTestData() {
  // pull, push, contentDiscovery, contentManagement = 1 << iota; numWorkflows continues the iota: 16.
  const numWorkflows = 16;
  const configs = Array.from({ length: numWorkflows }, () =>
    testBlob(marshalIndent({ author: randomAuthor(), architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } })),
  );
  // A small gzipped tarball holding one text file (setup.go decodes one from base64).
  const layer = testBlob(gzipSync(Buffer.concat([...tarStream([{ path: "test.txt", type: "file", content: "conformance layer\n" }])])));
  const layers = [descriptor({ mediaType: MT.layer, size: layer.content.length, digest: layer.digest })];
  const configDescriptor = (c: TestBlob) =>
    descriptor({ mediaType: MT.config, digest: c.digest, size: c.content.length, data: c.content, newUnspecifiedField: Buffer.from("hello world") });
  const manifests = configs.map((c) => testBlob(marshalIndent({ schemaVersion: 2, mediaType: MT.manifest, config: configDescriptor(c), layers })));
  // No mediaType field at all (omitempty), no layers.
  const emptyLayerManifest = testBlob(marshalIndent({ schemaVersion: 2, config: configDescriptor(configs[1]!), layers: [] }));

  const testBlobA = testBlob(randomBytes(42));
  // setupChunkedBlob(42): the first chunk is one byte longer than half.
  const testBlobB = testBlob(randomBytes(42));
  const half = 42 / 2 + 1;
  const chunked = {
    blob: testBlobB,
    chunk1: testBlobB.content.subarray(0, half),
    chunk2: testBlobB.content.subarray(half),
    chunk1Range: `0-${half - 1}`,
    chunk2Range: `${half}-${42 - 1}`,
  };

  const emptyJSONBlob = Buffer.from("{}");
  const emptyJSON = descriptor({ mediaType: MT.empty, size: emptyJSONBlob.length, digest: digestOf(emptyJSONBlob) });
  const refBlobA = testBlob(Buffer.from("conformance referrer blob A"));
  const refBlobB = testBlob(Buffer.from("conformance referrer blob B"));
  const artifactTypeA = "application/vnd.conformance.referrer.a";
  const artifactTypeB = "application/vnd.conformance.referrer.b";
  const artifactTypeIndex = "application/vnd.conformance.referrer.index";
  const annotationKey = "org.opencontainers.conformance.test";
  const annotationValues = new Map<string, string>();
  const subjectOf = (m: TestBlob) => descriptor({ mediaType: MT.manifest, size: m.content.length, digest: m.digest });
  const refManifest = (fields: { artifactType?: string; config: object; layers: object[]; subject: object; annotation?: string }) => {
    const blob = testBlob(
      marshalIndent({
        schemaVersion: 2,
        mediaType: MT.manifest,
        ...(fields.artifactType ? { artifactType: fields.artifactType } : {}),
        config: fields.config,
        layers: fields.layers,
        subject: fields.subject,
        ...(fields.annotation ? { annotations: { [annotationKey]: fields.annotation } } : {}),
      }),
    );
    if (fields.annotation) annotationValues.set(blob.digest, fields.annotation);
    return blob;
  };
  // The artifact type in the config's media type, …
  const refsManifestAConfigArtifact = refManifest({
    config: descriptor({ mediaType: artifactTypeA, size: refBlobA.content.length, digest: refBlobA.digest }),
    layers: [emptyJSON],
    subject: subjectOf(manifests[4]!),
    annotation: "test config a",
  });
  const refsManifestBConfigArtifact = refManifest({
    config: descriptor({ mediaType: artifactTypeB, size: refBlobB.content.length, digest: refBlobB.digest }),
    layers: [emptyJSON],
    subject: subjectOf(manifests[4]!),
    annotation: "test config b",
  });
  // … or in artifactType with the empty config.
  const refsManifestALayerArtifact = refManifest({
    artifactType: artifactTypeA,
    config: emptyJSON,
    layers: [descriptor({ mediaType: artifactTypeA, size: refBlobA.content.length, digest: refBlobA.digest })],
    subject: subjectOf(manifests[4]!),
    annotation: "test layer a",
  });
  const refsManifestBLayerArtifact = refManifest({
    artifactType: artifactTypeB,
    config: emptyJSON,
    layers: [descriptor({ mediaType: artifactTypeB, size: refBlobB.content.length, digest: refBlobB.digest })],
    subject: subjectOf(manifests[4]!),
    annotation: "test layer b",
  });
  // Like B, for a subject (manifests[3]) that is not pushed while discovery runs; no annotations.
  const refsManifestCLayerArtifact = refManifest({
    artifactType: artifactTypeB,
    config: emptyJSON,
    layers: [descriptor({ mediaType: artifactTypeB, size: refBlobB.content.length, digest: refBlobB.digest })],
    subject: subjectOf(manifests[3]!),
  });
  const refsIndexArtifact = testBlob(
    marshalIndent({
      schemaVersion: 2,
      mediaType: MT.index,
      artifactType: artifactTypeIndex,
      manifests: [refsManifestAConfigArtifact, refsManifestALayerArtifact].map((m) =>
        descriptor({ mediaType: MT.manifest, size: m.content.length, digest: m.digest }),
      ),
      subject: subjectOf(manifests[4]!),
      annotations: { [annotationKey]: "test index" },
    }),
  );
  annotationValues.set(refsIndexArtifact.digest, "test index");

  return {
    configs,
    manifests,
    layer,
    emptyLayerManifest,
    testBlobA,
    chunked,
    emptyJSONBlob,
    emptyJSON,
    refBlobA,
    refBlobB,
    artifactTypeA,
    annotationKey,
    annotationValues,
    refsManifestAConfigArtifact,
    refsManifestBConfigArtifact,
    refsManifestALayerArtifact,
    refsManifestBLayerArtifact,
    refsManifestCLayerArtifact,
    refsIndexArtifact,
    dummyDigest: digestOf("hello world"),
    nonexistentManifest: ".INVALID_MANIFEST_NAME",
    invalidManifestContent: Buffer.from("blablabla"),
    testTagName: "tagtest0",
    emptyLayerTestTag: "emptylayer",
  };
}

// ---- the suite's client: reggie → resty → net/http, as it behaves on the wire ------------------

interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  header(name: string): string;
  /** reggie's GetRelativeLocation: path and query of the Location header. */
  relativeLocation(): string;
  /** reggie's Errors(): the OCI error body, or undefined when it is not one. */
  errors(): { code: string; message?: string }[] | undefined;
}

interface RequestOptions {
  name?: string;
  reference?: string;
  digest?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer;
}

class SuiteClient {
  private readonly agent = new Agent({ keepAlive: true });
  /** Requests answered 401 and sent again with a token (the token dance ran). */
  challenged = 0;

  constructor(
    private readonly rootUrl: string,
    readonly defaultName: string,
    private readonly bodies: ConformanceSettings["bodies"],
    /** OCI_USERNAME / OCI_PASSWORD (reggie.WithUsernamePassword). */
    private readonly credentials: { username: string; password: string },
  ) {}

  /**
   * client.NewRequest(method, path, opts…) then client.Do(req): reggie sends every request
   * without credentials first; on a 401 it reads the Bearer challenge, fetches a token from the
   * realm with the username and password as Basic credentials (service and scope from the
   * challenge), and sends the request again, body and all, with that token.
   */
  async do(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const first = await this.send(method, path, options);
    if (first.status !== 401) return first;
    const challenge = first.header("www-authenticate");
    expect(challenge, "a 401 carries a challenge").toMatch(/^Bearer /);
    // reggie's parseAuthHeader: key="value" pairs.
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    const realm = new URL(params.realm!);
    if (params.service) realm.searchParams.set("service", params.service);
    if (params.scope) realm.searchParams.set("scope", params.scope);
    const basic = Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString("base64");
    const answer = await fetch(realm, { headers: { authorization: `Basic ${basic}` } });
    expect(answer.status, await answer.clone().text()).toBe(200);
    const { token } = (await answer.json()) as { token: string };
    this.challenged++;
    return this.send(method, path, { ...options, headers: { ...options.headers, Authorization: `Bearer ${token}` } });
  }

  private send(method: string, path: string, options: RequestOptions): Promise<Response> {
    let target = path
      .replaceAll("<name>", options.name ?? this.defaultName)
      .replaceAll("<reference>", options.reference ?? "<reference>")
      .replaceAll("<digest>", options.digest ?? "<digest>");
    if (options.query) {
      // resty adds SetQueryParam values as url.Values.Encode(): sorted, form-encoded.
      const params = new URLSearchParams(options.query);
      params.sort();
      target += (target.includes("?") ? "&" : "?") + params.toString();
    }
    const url = new URL(this.rootUrl);
    const headers: Record<string, string> = { "user-agent": "distribution-spec-conformance-tests", "accept-encoding": "gzip" };
    for (const [key, value] of Object.entries(options.headers ?? {})) {
      // net/http writes Content-Length from the body, never from the caller's header.
      if (key.toLowerCase() !== "content-length") headers[key.toLowerCase()] = value;
    }
    // resty does not send a GET body; a body of unknown length goes chunked.
    const body = method === "GET" || method === "HEAD" ? undefined : options.body;
    if (body === undefined) {
      if (["POST", "PUT", "PATCH"].includes(method)) headers["content-length"] = "0";
    } else if (this.bodies === "length") {
      headers["content-length"] = String(body.length);
    }
    return new Promise((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, method, path: target, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => resolve(toResponse(res.statusCode ?? 0, res.headers, Buffer.concat(chunks))));
      });
      req.on("error", reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function toResponse(status: number, headers: IncomingHttpHeaders, body: Buffer): Response {
  const header = (name: string) => {
    const value = headers[name.toLowerCase()];
    return (Array.isArray(value) ? value[0] : value) ?? "";
  };
  return {
    status,
    headers,
    body,
    header,
    relativeLocation() {
      const location = header("location");
      if (!location) return "";
      const u = new URL(location, "http://relative.invalid");
      return u.pathname + u.search;
    },
    errors() {
      try {
        const parsed = JSON.parse(body.toString("utf8")) as { errors?: { code: string; message?: string }[] };
        return parsed.errors;
      } catch {
        return undefined;
      }
    },
  };
}

// ---- acceptance rules ----------------------------------------------------------------------------

const is2xx = (s: number) => s >= 200 && s < 300;
/** Ginkgo's SatisfyAny over status codes, where "2xx" is BeNumerically(">=",200)+("<",300). */
function accepts(res: Response, ...allowed: (number | "2xx")[]): void {
  const ok = allowed.some((a) => (a === "2xx" ? is2xx(res.status) : res.status === a));
  expect(ok, `the suite accepts ${allowed.join(" or ")}; got ${res.status} ${res.body.toString().slice(0, 300)}`).toBe(true);
}
/** The outcome this service produces, among those the suite accepts. */
function ours(res: Response, status: number): void {
  expect(res.status, `we answer ${status}; got ${res.status} ${res.body.toString().slice(0, 300)}`).toBe(status);
}
/** The suite's error-code list (setup.go errorCodes). */
const ERROR_CODES = [
  "BLOB_UNKNOWN",
  "BLOB_UPLOAD_INVALID",
  "BLOB_UPLOAD_UNKNOWN",
  "DIGEST_INVALID",
  "MANIFEST_BLOB_UNKNOWN",
  "MANIFEST_INVALID",
  "MANIFEST_UNKNOWN",
  "MANIFEST_UNVERIFIED",
  "NAME_INVALID",
  "NAME_UNKNOWN",
  "SIZE_INVALID",
  "TAG_INVALID",
  "UNAUTHORIZED",
  "DENIED",
  "UNSUPPORTED",
];
const tagsOf = (res: Response): string[] => {
  try {
    return (JSON.parse(res.body.toString("utf8")) as { tags?: string[] }).tags ?? [];
  } catch {
    return [];
  }
};
interface IndexBody {
  manifests?: { digest: string; annotations?: Record<string, string>; artifactType?: string }[];
}

// ---- the four workflows ------------------------------------------------------------------------

/**
 * The four workflows against `target()` (asked in beforeAll, once the caller's own beforeAll has
 * started the service): registers the suite's describe()s and it()s in the caller's describe().
 * The caller owns the service; the workflows create the `conformance` registry and their robot.
 */
export function ociConformanceWorkflows(settings: ConformanceSettings, target: () => ConformanceTarget): void {
  const d = buildTestData();
  const { configs, manifests } = d;
  const deleteManifestBeforeBlobs = settings.OCI_DELETE_MANIFEST_BEFORE_BLOBS;
  const crossmountNamespace = settings.OCI_CROSSMOUNT_NAMESPACE;
  const runAutomaticCrossmountTest = settings.OCI_AUTOMATIC_CROSSMOUNT !== undefined;
  const automaticCrossmountEnabled = settings.OCI_AUTOMATIC_CROSSMOUNT === "1";
  // No OCI_TAG_NAME/OCI_MANIFEST_DIGEST/OCI_BLOB_DIGEST, no OCI_TAG_LIST: every setup runs.
  const runPullSetup = true;
  const runPushSetup = true;
  const runContentDiscoverySetup = true;
  const runContentManagementSetup = true;
  const runOnlyIf = (ctx: TestContext, condition: boolean) => {
    if (!condition) ctx.skip();
  };

  let client: SuiteClient;
  beforeAll(async () => {
    const { url, adminToken } = target();
    const admin = identityClients(url, adminToken);
    const registry = await admin.registries.createRegistry({ registry: { name: "conformance", kind: RegistryKind.HOSTED } });
    // The suite signs in as a robot that administers this registry only (deletes need admin).
    const robot = await createAccount(admin, url, { robot: true, name: "conformance.robot" });
    await bindRole(admin, robot.id, "admin", { registryId: registry.id });
    client = new SuiteClient(url, settings.OCI_NAMESPACE, settings.bodies, { username: robot.name, password: robot.token });
  });
  afterAll(() => {
    // Every request went through the token flow at least once (the first of each scope).
    if (client) expect(client.challenged).toBeGreaterThan(0);
    client?.close();
  });

  /** POST a session, then PUT the blob to its Location with ?digest= (every workflow's setup). */
  async function populateBlob(blob: TestBlob): Promise<Response> {
    const start = await client.do("POST", "/v2/<name>/blobs/uploads/");
    return client.do("PUT", start.relativeLocation(), {
      query: { digest: blob.digest },
      headers: { "Content-Type": "application/octet-stream", "Content-Length": blob.contentLength },
      body: blob.content,
    });
  }
  const putManifest = (reference: string, manifest: TestBlob, contentType = MT.manifest) =>
    client.do("PUT", "/v2/<name>/manifests/<reference>", { reference, headers: { "Content-Type": contentType }, body: manifest.content });
  const deleteManifest = (digest: string) => client.do("DELETE", "/v2/<name>/manifests/<digest>", { digest });
  const deleteBlob = (digest: string) => client.do("DELETE", "/v2/<name>/blobs/<digest>", { digest });
  /**
   * A teardown's blob delete: 202 once the workflow's manifests are gone; before them (blobs torn
   * down first), 405 UNSUPPORTED, since a manifest of the repository still lists the blob.
   */
  const oursForBlobDelete = (res: Response) => {
    ours(res, deleteManifestBeforeBlobs ? 202 : 405);
    if (res.status === 405)
      expect(res.errors()?.[0]).toMatchObject({ code: "UNSUPPORTED", message: expect.stringMatching(/delete the manifest first/) as unknown });
  };

  describe("Pull", () => {
    let tag = "";

    describe("Setup", () => {
      it("Populate registry with test blob", async (ctx) => {
        runOnlyIf(ctx, runPullSetup);
        const res = await populateBlob(configs[0]!);
        accepts(res, "2xx");
        ours(res, 201);
      });

      it("Populate registry with test blob", async (ctx) => {
        runOnlyIf(ctx, runPullSetup);
        const res = await populateBlob(configs[1]!);
        accepts(res, "2xx");
        ours(res, 201);
      });

      it("Populate registry with test layer", async (ctx) => {
        runOnlyIf(ctx, runPullSetup);
        const res = await populateBlob(d.layer);
        accepts(res, "2xx");
        ours(res, 201);
      });

      it("Populate registry with test manifest", async (ctx) => {
        runOnlyIf(ctx, runPullSetup);
        tag = d.testTagName;
        const res = await putManifest(tag, manifests[0]!);
        accepts(res, "2xx");
        ours(res, 201);
      });

      it("Populate registry with test manifest", async (ctx) => {
        runOnlyIf(ctx, runPullSetup);
        const res = await putManifest(manifests[1]!.digest, manifests[1]!);
        accepts(res, "2xx");
        ours(res, 201);
      });

      it("Get tag name from environment", (ctx) => {
        runOnlyIf(ctx, !runPullSetup);
      });
    });

    describe("Pull blobs", () => {
      it("HEAD request to nonexistent blob should result in 404 response", async () => {
        const res = await client.do("HEAD", "/v2/<name>/blobs/<digest>", { digest: d.dummyDigest });
        expect(res.status).toBe(404);
      });

      it("HEAD request to existing blob should yield 200", async () => {
        const res = await client.do("HEAD", "/v2/<name>/blobs/<digest>", { digest: configs[0]!.digest });
        expect(res.status).toBe(200);
        // Checked only when present; we always send it.
        expect(res.header("Docker-Content-Digest")).toBe(configs[0]!.digest);
      });

      it("GET nonexistent blob should result in 404 response", async () => {
        const res = await client.do("GET", "/v2/<name>/blobs/<digest>", { digest: d.dummyDigest });
        expect(res.status).toBe(404);
      });

      it("GET request to existing blob URL should yield 200", async () => {
        const res = await client.do("GET", "/v2/<name>/blobs/<digest>", { digest: configs[0]!.digest });
        expect(res.status).toBe(200);
        expect(res.body.equals(configs[0]!.content)).toBe(true);
      });
    });

    describe("Pull manifests", () => {
      const accept = { Accept: MT.manifest };

      it("HEAD request to nonexistent manifest should return 404", async () => {
        const res = await client.do("HEAD", "/v2/<name>/manifests/<reference>", { reference: d.nonexistentManifest });
        expect(res.status).toBe(404);
        expect(res.body.length).toBe(0);
      });

      for (const i of [0, 1]) {
        it(`HEAD request to manifest[${i}] path (digest) should yield 200 response`, async () => {
          const res = await client.do("HEAD", "/v2/<name>/manifests/<digest>", { digest: manifests[i]!.digest, headers: accept });
          expect(res.status).toBe(200);
          expect(res.header("Docker-Content-Digest")).toBe(manifests[i]!.digest);
        });
      }

      it("HEAD request to manifest path (tag) should yield 200 response", async () => {
        expect(tag).not.toBe("");
        const res = await client.do("HEAD", "/v2/<name>/manifests/<reference>", { reference: tag, headers: accept });
        expect(res.status).toBe(200);
        expect(res.header("Docker-Content-Digest")).toBe(manifests[0]!.digest);
      });

      it("GET nonexistent manifest should return 404", async () => {
        const res = await client.do("GET", "/v2/<name>/manifests/<reference>", { reference: d.nonexistentManifest });
        expect(res.status).toBe(404);
        // A reference outside the tag grammar names no manifest (a push to it is TAG_INVALID).
        expect(res.errors()?.[0]?.code).toBe("MANIFEST_UNKNOWN");
      });

      for (const i of [0, 1]) {
        it(`GET request to manifest[${i}] path (digest) should yield 200 response`, async () => {
          const res = await client.do("GET", "/v2/<name>/manifests/<digest>", { digest: manifests[i]!.digest, headers: accept });
          expect(res.status).toBe(200);
          expect(res.body.equals(manifests[i]!.content)).toBe(true);
        });
      }

      it("GET request to manifest path (tag) should yield 200 response", async () => {
        expect(tag).not.toBe("");
        const res = await client.do("GET", "/v2/<name>/manifests/<reference>", { reference: tag, headers: accept });
        expect(res.status).toBe(200);
        expect(res.body.equals(manifests[0]!.content)).toBe(true);
      });
    });

    describe("Error codes", () => {
      it("400 response body should contain OCI-conforming JSON message", async () => {
        const res = await client.do("GET", "/v2/<name>/manifests/<reference>", {
          reference: "sha256:totallywrong",
          headers: { "Content-Type": MT.manifest },
          body: d.invalidManifestContent,
        });
        accepts(res, 400, 404);
        ours(res, 400);
        if (res.status === 400) {
          const errors = res.errors();
          expect(errors).toBeDefined();
          expect(errors!.length).toBeGreaterThan(0);
          expect(ERROR_CODES).toContain(errors![0]!.code);
          expect(errors![0]!.code).toBe("DIGEST_INVALID");
        }
      });
    });

    describe("Teardown", () => {
      const deleteManifests = () => {
        for (const i of [0, 1]) {
          it(`Delete manifest[${i}] created in setup`, async (ctx) => {
            runOnlyIf(ctx, runPullSetup);
            const res = await deleteManifest(manifests[i]!.digest);
            accepts(res, "2xx", 405);
            ours(res, 202);
          });
        }
      };
      if (deleteManifestBeforeBlobs) deleteManifests();

      for (const [what, blob] of [
        ["config[0] blob", configs[0]!],
        ["config[1] blob", configs[1]!],
        ["layer blob", d.layer],
      ] as const) {
        it(`Delete ${what} created in setup`, async (ctx) => {
          runOnlyIf(ctx, runPullSetup);
          const res = await deleteBlob(blob.digest);
          accepts(res, "2xx", 404, 405);
          oursForBlobDelete(res);
        });
      }

      if (!deleteManifestBeforeBlobs) deleteManifests();
    });
  });

  describe("Push", () => {
    let lastResponse: Response | undefined;
    let prevResponse: Response | undefined;
    let emptyLayerManifestRef = "";

    describe("Blob Upload Streamed", () => {
      it("PATCH request with blob in body should yield 202 response", async () => {
        const start = await client.do("POST", "/v2/<name>/blobs/uploads/");
        expect(start.header("Location")).not.toBe("");
        const res = await client.do("PATCH", start.relativeLocation(), {
          headers: { "Content-Type": "application/octet-stream" },
          body: d.testBlobA.content,
        });
        expect(res.status).toBe(202);
        lastResponse = res;
      });

      it("PUT request to session URL with digest should yield 201 response", async () => {
        expect(lastResponse).toBeDefined();
        const res = await client.do("PUT", lastResponse!.relativeLocation(), {
          query: { digest: d.testBlobA.digest },
          headers: { "Content-Type": "application/octet-stream", "Content-Length": d.testBlobA.contentLength },
        });
        expect(res.status).toBe(201);
        expect(res.header("Location")).not.toBe("");
      });
    });

    describe("Blob Upload Monolithic", () => {
      it("GET nonexistent blob should result in 404 response", async () => {
        const res = await client.do("GET", "/v2/<name>/blobs/<digest>", { digest: d.dummyDigest });
        expect(res.status).toBe(404);
      });

      it("POST request with digest and blob should yield a 201 or 202", async () => {
        const res = await client.do("POST", "/v2/<name>/blobs/uploads/", {
          query: { digest: configs[1]!.digest },
          headers: { "Content-Length": configs[1]!.contentLength, "Content-Type": "application/octet-stream" },
          body: configs[1]!.content,
        });
        expect(res.header("Location")).not.toBe("");
        accepts(res, 201, 202);
        ours(res, 201);
        lastResponse = res;
      });

      it("GET request to blob URL from prior request should yield 200 or 404 based on response code", async () => {
        expect(lastResponse).toBeDefined();
        const res = await client.do("GET", "/v2/<name>/blobs/<digest>", { digest: configs[1]!.digest });
        expect(res.status).toBe(lastResponse!.status === 202 ? 404 : 200);
      });

      it("POST request should yield a session ID", async () => {
        const res = await client.do("POST", "/v2/<name>/blobs/uploads/");
        expect(res.status).toBe(202);
        lastResponse = res;
      });

      it("PUT upload of a blob should yield a 201 Response", async () => {
        const res = await client.do("PUT", lastResponse!.relativeLocation(), {
          query: { digest: configs[1]!.digest },
          headers: { "Content-Length": configs[1]!.contentLength, "Content-Type": "application/octet-stream" },
          body: configs[1]!.content,
        });
        expect(res.header("Location")).not.toBe("");
        expect(res.status).toBe(201);
      });

      it("GET request to existing blob should yield 200 response", async () => {
        const res = await client.do("GET", "/v2/<name>/blobs/<digest>", { digest: configs[1]!.digest });
        expect(res.status).toBe(200);
      });

      it("PUT upload of a layer blob should yield a 201 Response", async () => {
        const res = await populateBlob(d.layer);
        expect(res.header("Location")).not.toBe("");
        expect(res.status).toBe(201);
      });

      it("GET request to existing layer should yield 200 response", async () => {
        const res = await client.do("GET", "/v2/<name>/blobs/<digest>", { digest: d.layer.digest });
        expect(res.status).toBe(200);
      });
    });

    describe("Blob Upload Chunked", () => {
      const c = d.chunked;

      it("Out-of-order blob upload should return 416", async () => {
        const start = await client.do("POST", "/v2/<name>/blobs/uploads/", { headers: { "Content-Length": "0" } });
        expect(start.header("Location")).not.toBe("");
        // We send no OCI-Chunk-Min-Length, so the suite keeps its 42-byte blob.
        expect(start.header("OCI-Chunk-Min-Length")).toBe("");
        const res = await client.do("PATCH", start.relativeLocation(), {
          headers: { "Content-Type": "application/octet-stream", "Content-Length": String(c.chunk2.length), "Content-Range": c.chunk2Range },
          body: c.chunk2,
        });
        expect(res.status).toBe(416);
      });

      it("PATCH request with first chunk should return 202", async () => {
        const start = await client.do("POST", "/v2/<name>/blobs/uploads/", { headers: { "Content-Length": "0" } });
        expect(start.header("Location")).not.toBe("");
        prevResponse = start;
        const res = await client.do("PATCH", start.relativeLocation(), {
          headers: { "Content-Type": "application/octet-stream", "Content-Length": String(c.chunk1.length), "Content-Range": c.chunk1Range },
          body: c.chunk1,
        });
        expect(res.status).toBe(202);
        expect(res.header("Range")).toBe(c.chunk1Range);
        lastResponse = res;
      });

      it("Retry previous blob chunk should return 416", async () => {
        const res = await client.do("PATCH", prevResponse!.relativeLocation(), {
          headers: { "Content-Type": "application/octet-stream", "Content-Length": String(c.chunk1.length), "Content-Range": c.chunk1Range },
          body: c.chunk1,
        });
        expect(res.status).toBe(416);
      });

      it("Get on stale blob upload should return 204 with a range and location", async () => {
        const res = await client.do("GET", prevResponse!.relativeLocation());
        expect(res.status).toBe(204);
        expect(res.header("Location")).not.toBe("");
        expect(res.header("Range")).toBe(c.chunk1Range);
        lastResponse = res;
      });

      it("PATCH request with second chunk should return 202", async () => {
        const res = await client.do("PATCH", lastResponse!.relativeLocation(), {
          headers: { "Content-Length": String(c.chunk2.length), "Content-Range": c.chunk2Range, "Content-Type": "application/octet-stream" },
          body: c.chunk2,
        });
        expect(res.status).toBe(202);
        expect(res.header("Location")).not.toBe("");
        lastResponse = res;
      });

      it("PUT request with digest should return 201", async () => {
        const res = await client.do("PUT", lastResponse!.relativeLocation(), {
          query: { digest: c.blob.digest },
          headers: { "Content-Length": "0", "Content-Type": "application/octet-stream" },
        });
        expect(res.status).toBe(201);
        expect(res.header("Location")).not.toBe("");
        // Not asserted by the suite: the two chunks are the blob.
        const got = await client.do("GET", "/v2/<name>/blobs/<digest>", { digest: c.blob.digest });
        expect(got.body.equals(c.blob.content)).toBe(true);
      });
    });

    describe("Cross-Repository Blob Mount", () => {
      it("Cross-mounting of a blob without the from argument should yield session id", async () => {
        const res = await client.do("POST", "/v2/<name>/blobs/uploads/", { name: crossmountNamespace, query: { mount: d.dummyDigest } });
        expect(res.status).toBe(202);
        expect(res.header("Location")).not.toBe("");
      });

      it("POST request to mount another repository's blob should return 201 or 202", async () => {
        const res = await client.do("POST", "/v2/<name>/blobs/uploads/", {
          name: crossmountNamespace,
          query: { mount: d.testBlobA.digest, from: client.defaultName },
        });
        accepts(res, 201, 202);
        ours(res, 201);
        lastResponse = res;
      });

      it("GET request to test digest within cross-mount namespace should return 200", async (ctx) => {
        runOnlyIf(ctx, lastResponse!.status === 201);
        expect(lastResponse!.relativeLocation()).toBe(`/v2/${crossmountNamespace}/blobs/${d.testBlobA.digest}`);
        const res = await client.do("GET", lastResponse!.relativeLocation());
        expect(res.status).toBe(200);
        expect(res.body.equals(d.testBlobA.content)).toBe(true);
      });

      it("Cross-mounting of nonexistent blob should yield session id", async (ctx) => {
        runOnlyIf(ctx, lastResponse!.status === 202);
        expect(lastResponse!.relativeLocation().startsWith(`/v2/${crossmountNamespace}/blobs/uploads/`)).toBe(true);
      });

      it("Cross-mounting without from, and automatic content discovery enabled should return a 201", async (ctx) => {
        runOnlyIf(ctx, runAutomaticCrossmountTest);
        runOnlyIf(ctx, lastResponse!.status === 201);
        runOnlyIf(ctx, automaticCrossmountEnabled);
        const res = await client.do("POST", "/v2/<name>/blobs/uploads/", { name: crossmountNamespace, query: { mount: d.testBlobA.digest } });
        expect(res.status).toBe(201);
      });

      // We always mount without `from` (any blob the service holds), so OCI_AUTOMATIC_CROSSMOUNT=0
      // would fail here: set it to 1, or leave it unset.
      it("Cross-mounting without from, and automatic content discovery disabled should return a 202", async (ctx) => {
        runOnlyIf(ctx, runAutomaticCrossmountTest);
        runOnlyIf(ctx, lastResponse!.status === 201);
        runOnlyIf(ctx, !automaticCrossmountEnabled);
        const res = await client.do("POST", "/v2/<name>/blobs/uploads/", { name: crossmountNamespace, query: { mount: d.testBlobA.digest } });
        expect(res.status).toBe(202);
      });
    });

    describe("Manifest Upload", () => {
      it("GET nonexistent manifest should return 404", async () => {
        const res = await client.do("GET", "/v2/<name>/manifests/<reference>", { reference: d.nonexistentManifest });
        expect(res.status).toBe(404);
        // A reference outside the tag grammar names no manifest (a push to it is TAG_INVALID).
        expect(res.errors()?.[0]?.code).toBe("MANIFEST_UNKNOWN");
      });

      it("PUT should accept a manifest upload", async () => {
        for (let i = 0; i < 4; i++) {
          const res = await putManifest(`test${i}`, manifests[1]!);
          expect(res.header("Location")).not.toBe("");
          expect(res.status).toBe(201);
        }
      });

      it("Registry should accept a manifest upload with no layers", async () => {
        const res = await putManifest(d.emptyLayerTestTag, d.emptyLayerManifest);
        // The suite only warns when this is refused; we accept it.
        ours(res, 201);
        if (res.status === 201) {
          emptyLayerManifestRef = res.header("Location");
          expect(emptyLayerManifestRef).not.toBe("");
        }
      });

      it("GET request to manifest URL (digest) should yield 200 response", async () => {
        const res = await client.do("GET", "/v2/<name>/manifests/<digest>", { digest: manifests[1]!.digest, headers: { Accept: MT.manifest } });
        expect(res.status).toBe(200);
      });
    });

    describe("Teardown", () => {
      const deleteManifests = () => {
        it("Delete manifest created in tests", async (ctx) => {
          runOnlyIf(ctx, runPushSetup);
          const res = await deleteManifest(manifests[1]!.digest);
          accepts(res, "2xx", 405);
          ours(res, 202);
          if (emptyLayerManifestRef !== "") {
            const empty = await client.do("DELETE", "/v2/<name>/manifests/<reference>", { reference: d.emptyLayerManifest.digest });
            accepts(empty, "2xx", 405);
            ours(empty, 202);
          }
        });
      };
      if (deleteManifestBeforeBlobs) deleteManifests();

      it("Delete config blob created in tests", async (ctx) => {
        runOnlyIf(ctx, runPushSetup);
        const res = await deleteBlob(configs[1]!.digest);
        accepts(res, "2xx", 404, 405);
        oursForBlobDelete(res);
      });

      it("Delete layer blob created in setup", async (ctx) => {
        runOnlyIf(ctx, runPushSetup);
        const res = await deleteBlob(d.layer.digest);
        accepts(res, "2xx", 404, 405);
        oursForBlobDelete(res);
      });

      if (!deleteManifestBeforeBlobs) deleteManifests();
    });
  });

  describe("Content Discovery", () => {
    let numTags = 4;
    let tagList: string[] = [];

    describe("Setup", () => {
      it("Populate registry with test blob", async (ctx) => {
        runOnlyIf(ctx, runContentDiscoverySetup);
        const res = await populateBlob(configs[2]!);
        accepts(res, "2xx");
        ours(res, 201);
      });

      it("Populate registry with test layer", async (ctx) => {
        runOnlyIf(ctx, runContentDiscoverySetup);
        const res = await populateBlob(d.layer);
        accepts(res, "2xx");
        ours(res, 201);
      });

      it("Populate registry with test tags", async (ctx) => {
        runOnlyIf(ctx, runContentDiscoverySetup);
        for (let i = 0; i < numTags; i++) {
          tagList.push(`test${i}`);
          const res = await putManifest(`test${i}`, manifests[2]!);
          accepts(res, "2xx");
          ours(res, 201);
        }
        const res = await client.do("GET", "/v2/<name>/tags/list");
        tagList = tagsOf(res);
        expect(tagList).toEqual(["test0", "test1", "test2", "test3"]);
      });

      it("Populate registry with test tags (no push)", (ctx) => {
        runOnlyIf(ctx, !runContentDiscoverySetup);
      });

      it("References setup", async (ctx) => {
        runOnlyIf(ctx, runContentDiscoverySetup);
        const check2xx = (res: Response) => {
          accepts(res, "2xx");
          ours(res, 201);
        };
        expect(d.emptyJSON.digest).toBe("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
        check2xx(await populateBlob(testBlob(d.emptyJSONBlob)));
        // A referrer's blob, then referrers, all before their subject exists.
        check2xx(await populateBlob(d.refBlobA));
        for (const referrer of [d.refsManifestAConfigArtifact, d.refsManifestALayerArtifact]) {
          const res = await putManifest(referrer.digest, referrer);
          check2xx(res);
          expect(res.header("OCI-Subject")).toBe(manifests[4]!.digest);
        }
        const index = await putManifest(d.refsIndexArtifact.digest, d.refsIndexArtifact, MT.index);
        check2xx(index);
        expect(index.header("OCI-Subject")).toBe(manifests[4]!.digest);
        // The subject.
        check2xx(await populateBlob(configs[4]!));
        check2xx(await populateBlob(d.layer));
        check2xx(await putManifest(d.testTagName, manifests[4]!));
        // Referrers after their subject, and one to a subject never pushed here.
        check2xx(await populateBlob(d.refBlobB));
        for (const referrer of [d.refsManifestBConfigArtifact, d.refsManifestBLayerArtifact]) {
          const res = await putManifest(referrer.digest, referrer);
          check2xx(res);
          expect(res.header("OCI-Subject")).toBe(manifests[4]!.digest);
        }
        const orphan = await putManifest(d.refsManifestCLayerArtifact.digest, d.refsManifestCLayerArtifact);
        check2xx(orphan);
        expect(orphan.header("OCI-Subject")).toBe(manifests[3]!.digest);
      });
    });

    describe("Test content discovery endpoints (listing tags)", () => {
      it("GET request to list tags should yield 200 response", async () => {
        const res = await client.do("GET", "/v2/<name>/tags/list");
        expect(res.status).toBe(200);
        tagList = tagsOf(res);
        numTags = tagList.length;
        // What the earlier workflows left: their manifests are deleted, so only this setup's tags.
        expect(tagList).toEqual(["tagtest0", "test0", "test1", "test2", "test3"]);
      });

      it("GET number of tags should be limitable by `n` query parameter", async () => {
        const numResults = Math.trunc(numTags / 2);
        const res = await client.do("GET", "/v2/<name>/tags/list", { query: { n: String(numResults) } });
        expect(res.status).toBe(200);
        tagList = tagsOf(res);
        expect(tagList.length).toBe(numResults);
      });

      it("GET start of tag is set by `last` query parameter", async () => {
        const numResults = Math.trunc(numTags / 2);
        const first = await client.do("GET", "/v2/<name>/tags/list", { query: { n: String(numResults) } });
        tagList = tagsOf(first);
        const res = await client.do("GET", "/v2/<name>/tags/list", { query: { n: String(numResults), last: tagList[numResults - 1]! } });
        expect(res.status).toBe(200);
        // The suite checks the first page again here (a quirk kept as is) …
        expect(tagList.length).toBeLessThanOrEqual(numResults);
        expect(tagList).toContain(tagList[numResults - 1]);
        // … so the second page is checked as the spec means it.
        expect(tagsOf(res)).toEqual(["test1", "test2"]);
      });
    });

    describe("Test content discovery endpoints (listing references)", () => {
      const parseIndex = (res: Response): IndexBody => JSON.parse(res.body.toString("utf8")) as IndexBody;

      it("GET request to nonexistent blob should result in empty 200 response", async () => {
        const res = await client.do("GET", "/v2/<name>/referrers/<digest>", { digest: d.dummyDigest });
        expect(res.status).toBe(200);
        expect(res.header("Content-Type")).toBe(MT.index);
        expect(parseIndex(res).manifests ?? []).toHaveLength(0);
      });

      it("GET request to existing blob should yield 200", async () => {
        const res = await client.do("GET", "/v2/<name>/referrers/<digest>", { digest: manifests[4]!.digest });
        expect(res.status).toBe(200);
        expect(res.header("Content-Type")).toBe(MT.index);
        const index = parseIndex(res).manifests ?? [];
        expect(index).toHaveLength(5);
        expect(index[0]!.digest).not.toBe(index[1]!.digest);
        for (const m of index) {
          expect(Object.keys(m.annotations ?? {})).toHaveLength(1);
          expect(m.annotations?.[d.annotationKey]).toBe(d.annotationValues.get(m.digest));
        }
      });

      it("GET request to existing blob with filter should yield 200", async () => {
        const res = await client.do("GET", "/v2/<name>/referrers/<digest>", { digest: manifests[4]!.digest, query: { artifactType: d.artifactTypeA } });
        expect(res.status).toBe(200);
        expect(res.header("Content-Type")).toBe(MT.index);
        const index = parseIndex(res).manifests ?? [];
        // The suite accepts an unfiltered list (with a warning) when OCI-Filters-Applied is absent; we filter.
        expect(res.header("OCI-Filters-Applied")).toBe("artifactType");
        expect(index).toHaveLength(2);
        for (const m of index) {
          expect(Object.keys(m.annotations ?? {})).toHaveLength(1);
          expect(m.annotations?.[d.annotationKey]).toBe(d.annotationValues.get(m.digest));
        }
      });

      it("GET request to missing manifest should yield 200", async () => {
        const res = await client.do("GET", "/v2/<name>/referrers/<digest>", { digest: manifests[3]!.digest });
        expect(res.status).toBe(200);
        expect(res.header("Content-Type")).toBe(MT.index);
        const index = parseIndex(res).manifests ?? [];
        expect(index).toHaveLength(1);
        expect(index[0]!.digest).toBe(d.refsManifestCLayerArtifact.digest);
      });
    });

    describe("Teardown", () => {
      const deleteAll = () => {
        it("Delete created manifest & associated tags", async (ctx) => {
          runOnlyIf(ctx, runContentDiscoverySetup);
          const references = [
            d.refsIndexArtifact.digest,
            manifests[2]!.digest,
            manifests[4]!.digest,
            d.refsManifestAConfigArtifact.digest,
            d.refsManifestALayerArtifact.digest,
            d.testTagName, // by then gone with manifests[4]
            d.refsManifestBConfigArtifact.digest,
            d.refsManifestBLayerArtifact.digest,
            d.refsManifestCLayerArtifact.digest,
          ];
          for (const reference of references) {
            const res = await deleteManifest(reference);
            accepts(res, "2xx", 405, 404);
            ours(res, reference === d.testTagName ? 404 : 202);
          }
        });
      };
      if (deleteManifestBeforeBlobs) deleteAll();

      it("Delete config blob created in tests", async (ctx) => {
        runOnlyIf(ctx, runContentDiscoverySetup);
        const res = await deleteBlob(configs[2]!.digest);
        accepts(res, "2xx", 405);
        oursForBlobDelete(res);
      });

      it("Delete layer blob created in setup", async (ctx) => {
        runOnlyIf(ctx, runContentDiscoverySetup);
        const res = await deleteBlob(d.layer.digest);
        accepts(res, "2xx", 405);
        oursForBlobDelete(res);
      });

      if (!deleteManifestBeforeBlobs) deleteAll();

      it("References teardown", async (ctx) => {
        runOnlyIf(ctx, runContentDiscoverySetup);
        const deleteReq = (res: Response, we: number) => {
          accepts(res, "2xx", 405, 404);
          ours(res, we);
        };
        const referrersAndSubject = [
          d.refsIndexArtifact.digest,
          d.refsManifestAConfigArtifact.digest,
          d.refsManifestALayerArtifact.digest,
          manifests[4]!.digest,
          d.refsManifestBConfigArtifact.digest,
          d.refsManifestBLayerArtifact.digest,
        ];
        // Deleted already by "Delete created manifest & associated tags", whichever order.
        if (deleteManifestBeforeBlobs) for (const digest of referrersAndSubject) deleteReq(await deleteManifest(digest), 404);
        deleteReq(await deleteBlob(configs[4]!.digest), 202);
        deleteReq(await deleteBlob(d.refBlobA.digest), 202);
        deleteReq(await deleteBlob(d.refBlobB.digest), 202);
        deleteReq(await deleteBlob(d.emptyJSON.digest), 202);
        if (!deleteManifestBeforeBlobs) for (const digest of referrersAndSubject) deleteReq(await deleteManifest(digest), 404);
      });
    });
  });

  describe("Content Management", () => {
    const defaultTagName = "tagtest0";
    let tagToDelete = "";
    let numTags = 0;
    let blobDeleteAllowed = true;

    describe("Setup", () => {
      it("Populate registry with test config blob", async (ctx) => {
        runOnlyIf(ctx, runContentManagementSetup);
        const res = await populateBlob(configs[3]!);
        accepts(res, "2xx");
        ours(res, 201);
      });

      it("Populate registry with test layer", async (ctx) => {
        runOnlyIf(ctx, runContentManagementSetup);
        const res = await populateBlob(d.layer);
        accepts(res, "2xx");
        ours(res, 201);
      });

      it("Populate registry with test tag", async (ctx) => {
        runOnlyIf(ctx, runContentManagementSetup);
        tagToDelete = defaultTagName;
        const res = await putManifest(tagToDelete, manifests[3]!);
        accepts(res, "2xx");
        ours(res, 201);
      });

      it("Check how many tags there are before anything gets deleted", async (ctx) => {
        runOnlyIf(ctx, runContentManagementSetup);
        const res = await client.do("GET", "/v2/<name>/tags/list");
        expect(res.status).toBe(200);
        numTags = tagsOf(res).length;
        expect(tagsOf(res)).toEqual(["tagtest0"]);
      });
    });

    describe("Manifest delete", () => {
      it("DELETE request to manifest tag should return 202, unless tag deletion is disallowed (400/405)", async () => {
        const res = await client.do("DELETE", "/v2/<name>/manifests/<reference>", { reference: tagToDelete });
        accepts(res, 400, 202, 405);
        ours(res, 202);
        if (res.status === 400) expect(res.errors()?.[0]?.code).toBe("UNSUPPORTED");
      });

      it("DELETE request to manifest (digest) should yield 202 response unless already deleted", async () => {
        const res = await deleteManifest(manifests[3]!.digest);
        accepts(res, 202, 404);
        // Deleting the tag left the manifest: this delete removes it.
        ours(res, 202);
      });

      it("GET request to deleted manifest URL should yield 404 response, unless delete is disallowed", async () => {
        const res = await client.do("GET", "/v2/<name>/manifests/<digest>", { digest: manifests[3]!.digest });
        accepts(res, 404, 200);
        ours(res, 404);
      });

      it("GET request to tags list should reflect manifest deletion", async () => {
        const res = await client.do("GET", "/v2/<name>/tags/list");
        expect(res.status).toBe(200);
        expect(tagsOf(res).length).toBeLessThan(numTags);
      });
    });

    describe("Blob delete", () => {
      it("DELETE request to blob URL should yield 202 response", async (ctx) => {
        runOnlyIf(ctx, runContentManagementSetup);
        const config = await deleteBlob(configs[3]!.digest);
        accepts(config, 202, 404, 405);
        ours(config, 202);
        const layer = await deleteBlob(d.layer.digest);
        accepts(layer, 202, 404, 405);
        ours(layer, 202);
        if (layer.status === 405) blobDeleteAllowed = false;
      });

      it("GET request to deleted blob URL should yield 404 response", async (ctx) => {
        runOnlyIf(ctx, runContentManagementSetup);
        runOnlyIf(ctx, blobDeleteAllowed);
        const res = await client.do("GET", "/v2/<name>/blobs/<digest>", { digest: configs[3]!.digest });
        expect(res.status).toBe(404);
      });
    });
  });
}
