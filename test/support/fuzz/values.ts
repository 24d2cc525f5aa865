// Hostile leaf values for the bad-input suite: text with control characters, NUL and lone
// surrogates, huge and negative numbers, invalid UTF-8 bytes, and references to the playground's
// real ids and names (resolved when a request is sent), so requests also get past validation.
import fc from "fast-check";

/** Names of the playground values a request may refer to (see world.ts). */
export const REF_NAMES = [
  "hostedRegistryId",
  "remoteRegistryId",
  "namespaceId",
  "repositoryId",
  "tagId",
  "remoteRepositoryId",
  "remoteTagId",
  "webhookId",
  "hostedRegistryName",
  "remoteRegistryName",
  "namespaceName",
  "repositoryName",
  "hostedImage",
  "remoteImage",
  "manifestDigest",
  "configDigest",
  "layerDigest",
  "configSize",
  "layerSize",
  "manifestSize",
  "tagName",
  "etag",
  "uploadId",
  "immutabilityRuleId",
  "retentionPolicyId",
] as const;
export type RefName = (typeof REF_NAMES)[number];

/** References that stand for numbers (JSON numbers, not strings). */
export const NUMERIC_REFS: ReadonlySet<RefName> = new Set<RefName>(["configSize", "layerSize", "manifestSize"]);

/** A playground value, filled in when the request is sent (ids change when the playground is rebuilt). */
export class Ref {
  constructor(readonly name: RefName) {}
  toString(): string {
    return `<${this.name}>`;
  }
}

/** Text or a playground reference. */
export type Leaf = string | Ref;

export const ref = (...names: RefName[]): fc.Arbitrary<Ref> => fc.constantFrom(...names).map((n) => new Ref(n));

/** Characters that break things: NUL, C0/C1 controls, DEL, lone surrogates, BOM, bidi overrides, non-characters. */
const NASTY_CHARS = [
  "\u0000",
  "\u0001",
  "\u0007",
  "\b",
  "\t",
  "\n",
  "\r",
  "\u001b",
  "\u001f",
  "\u007f",
  "\u0085",
  "\u009f",
  "\ud800",
  "\udbff",
  "\udc00",
  "\udfff",
  "\ufeff",
  "\ufffd",
  "\uffff",
  "\u202e",
  "\u2028",
  "\u{10ffff}",
  "\u{1f4a9}",
  "é",
  "%",
  "%00",
  "%zz",
  "\\",
  '"',
  "'",
  "/",
  "..",
  "*",
  "?",
  "#",
  "&",
  "=",
  ";",
  ":",
  "@",
  " ",
];

const SNIPPETS = [
  "",
  " ",
  "null",
  "undefined",
  "NaN",
  "true",
  "0",
  "-1",
  "../../etc/passwd",
  "..",
  ".",
  "%2e%2e",
  "%2F",
  "a/b",
  "//",
  "'; drop table registries; --",
  "${jndi:x}",
  "{{7*7}}",
  "<script>",
  "(a+)+$",
  "(?<x>a)\\k<x>",
  "[",
  "\\",
  "(?=a)",
  "a{1000000}",
  "^(a|a)*$",
  "latest",
  "sha256:",
  "sha256:" + "0".repeat(64),
  "sha512:" + "f".repeat(128),
  "sha256:" + "A".repeat(64),
  "md5:d41d8cd98f00b204e9800998ecf8427e",
  "00000000-0000-4000-8000-000000000000",
  "ffffffff-ffff-ffff-ffff-ffffffffffff",
  "00000000-0000-4000-8000-00000000000g",
  "http://127.0.0.1:9",
  "http://user:pass@127.0.0.1:9",
  "ftp://127.0.0.1:9",
  "http://[::1",
  "http://127.0.0.1:9/v2/?q=1#f",
  "name desc",
  "create_time desc",
  "push_time",
  "name, id",
  "name desc desc",
];

/** Short hostile text: a mix of ordinary characters, nasty ones and snippets. */
export const hostileShortText: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 6 }) },
      { weight: 3, arbitrary: fc.constantFrom(...NASTY_CHARS) },
      // NUL on its own too: the character databases and C strings choke on most.
      { weight: 1, arbitrary: fc.constant("\u0000") },
      { weight: 1, arbitrary: fc.constantFrom(...SNIPPETS) },
      { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 4 }) },
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((parts) => parts.join(""));

/** Text of every size up to a megabyte (4 MiB is the request limit), mostly short. */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  { weight: 12, arbitrary: hostileShortText },
  { weight: 3, arbitrary: fc.constantFrom(...SNIPPETS) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom("a", "\u0000", "é", "\ud800", "/", "-", "%"), fc.constantFrom(64, 129, 256, 1025, 4097, 65_537, 1_048_577))
      .map(([c, n]) => c.repeat(n)),
  },
);

/** Names that follow the grammar (lower-case components), so requests reach the database. */
export const grammarName: fc.Arbitrary<string> = fc.stringMatching(/^[a-z0-9]{1,6}(-[a-z0-9]{1,4}){0,2}$/);
export const grammarTag: fc.Arbitrary<string> = fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,10}$/);
export const grammarDigest: fc.Arbitrary<string> = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `sha256:${Buffer.from(b).toString("hex")}`);

/** `arb` one time in `n`, undefined otherwise (shrinks to undefined). */
export function oneIn<T>(n: number, arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: n - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
}

/** Text for a string field, by field name: a plausible value now and then, hostile text mostly. */
export function textFor(fieldName: string): fc.Arbitrary<Leaf> {
  const hinted = hint(fieldName);
  return hinted ? fc.oneof({ weight: 3, arbitrary: hinted }, { weight: 2, arbitrary: hostileText }) : hostileText;
}

/** A value a well-meaning client would send for a string field (playground references where the name says what it is). */
export function plausibleText(fieldName: string): fc.Arbitrary<Leaf> {
  const f = fieldName.toLowerCase();
  if (f === "page_token") return fc.constant("");
  if (f === "order_by") return fc.constantFrom("", "name", "name desc", "create_time", "update_time desc");
  if (f === "etag") return fc.oneof(fc.constant(""), ref("etag"));
  return hint(fieldName) ?? fc.constantFrom("", "app", "team", "fz", "v1", "lib", "a b");
}

function hint(field: string): fc.Arbitrary<Leaf> | undefined {
  const f = field.toLowerCase();
  if (f === "registry_id") return fc.oneof(ref("hostedRegistryId", "remoteRegistryId"), fc.uuid());
  if (f === "namespace_id") return fc.oneof(ref("namespaceId"), fc.uuid());
  if (f === "repository_id") return fc.oneof(ref("repositoryId", "remoteRepositoryId"), fc.uuid());
  if (f === "webhook_id") return fc.oneof(ref("webhookId"), fc.uuid());
  if (f === "id" || f.endsWith("_id"))
    return fc.oneof(
      ref(
        "hostedRegistryId",
        "remoteRegistryId",
        "namespaceId",
        "repositoryId",
        "remoteRepositoryId",
        "tagId",
        "remoteTagId",
        "webhookId",
        "immutabilityRuleId",
        "retentionPolicyId",
      ),
      fc.uuid(),
    );
  if (f === "types" || f === "event_types")
    return fc.constantFrom("dev.artifact.image.pushed", "dev.artifact.tag.deleted", "dev.artifact.webhook.test", "push");
  if (f === "secret") return fc.constantFrom("", "short", "a-webhook-secret-0123456789");
  // RE2 patterns (sync filters, immutability rules, retention rules), a few of them matching the playground's tag.
  if (f === "tag_pattern") return fc.constantFrom("v[0-9]+", "^1\\..*", "release-.*", ".*", "latest|v1\\..*", "(?i)V1");
  if (f === "name") return fc.oneof(ref("hostedRegistryName", "namespaceName", "repositoryName", "tagName"), grammarName, grammarTag);
  if (f === "repository")
    return fc.oneof(
      ref("hostedImage", "remoteImage"),
      fc.tuple(grammarName, grammarName, grammarName).map((p) => p.join("/")),
    );
  if (f === "reference") return fc.oneof(ref("tagName", "manifestDigest"), grammarTag, grammarDigest);
  if (f.includes("digest")) return fc.oneof(ref("manifestDigest", "configDigest", "layerDigest"), grammarDigest);
  if (f === "etag") return fc.oneof(ref("etag"), fc.constantFrom("1", "2", "0", "01", "2147483648", "99999999999"));
  if (f === "order_by") return fc.constantFrom("name", "name desc", "create_time", "update_time desc", "push_time desc", "size", "name asc", "NAME");
  if (f === "url") return fc.constantFrom("http://127.0.0.1:9", "https://127.0.0.1:9/", "http://[::1]:9/v2/", "http://localhost:9");
  if (f === "media_type") return fc.constantFrom("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json", "x/y");
  if (f === "page_token") return fc.base64String({ maxLength: 96 }).map((s) => s.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""));
  return undefined;
}

/** Integers around every boundary a 32- or 64-bit field has. */
export const EDGE_INTEGERS: bigint[] = [
  0n,
  1n,
  -1n,
  127n,
  128n,
  255n,
  1000n,
  1001n,
  2n ** 31n - 1n,
  2n ** 31n,
  -(2n ** 31n),
  -(2n ** 31n) - 1n,
  2n ** 32n - 1n,
  2n ** 32n,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 63n - 1n,
  2n ** 63n,
  -(2n ** 63n),
  2n ** 64n - 1n,
];

export const edgeInteger: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...EDGE_INTEGERS) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }) },
);

/** A JSON number or numeric-looking string, many of which no integer field accepts. */
export const jsonNumberish: fc.Arbitrary<number | string> = fc.oneof(
  { weight: 3, arbitrary: edgeInteger.map((n) => (n >= -(2n ** 53n) && n <= 2n ** 53n ? Number(n) : n.toString())) },
  { weight: 1, arbitrary: fc.constantFrom(1.5, -0.5, 1e308, -1e308, 5e-324, 1e21, -0) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "NaN",
      "Infinity",
      "-Infinity",
      "1e3",
      "0x10",
      " 5",
      "+1",
      "",
      "1_000",
      "00012",
      "18446744073709551616",
      "-9223372036854775809",
      "1.0",
      "٣",
    ),
  },
);

/** Bytes that are not UTF-8: stray continuation bytes, overlong NUL, encoded surrogates, code points past U+10FFFF, cut sequences. */
export const INVALID_UTF8: number[][] = [
  [0xff],
  [0x80],
  [0xc0, 0x80],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xe2, 0x82],
  [0xfe, 0xfe, 0xff, 0xff],
  [0xc3],
];

/** Bytes for a string field: valid UTF-8 of hostile text, or text with invalid sequences spliced in. */
export const stringBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 2, arbitrary: hostileText.map((t) => new Uint8Array(Buffer.from(t, "utf8"))) },
  {
    weight: 1,
    arbitrary: fc
      .array(
        fc.oneof(
          fc.constantFrom(...INVALID_UTF8),
          fc.string({ unit: "grapheme-ascii", maxLength: 4 }).map((s) => [...Buffer.from(s)]),
        ),
        {
          minLength: 1,
          maxLength: 5,
        },
      )
      .map((parts) => new Uint8Array(parts.flat())),
  },
);

/** Percent-encoding that never throws: lone surrogates go out as the UTF-8 of U+FFFD (encodeURIComponent throws on them). */
export function pct(text: string): string {
  let out = "";
  for (const b of Buffer.from(text, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
