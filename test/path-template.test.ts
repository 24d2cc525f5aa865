// Unit tests of the google.api.http path-template parser and matcher.
import { describe, expect, it } from "vitest";
import { capturedValue, parseTemplate, PathDecodeError, PathMatcher, TemplateSyntaxError } from "../src/http/rest/path-template.js";

function matcherOf(...templates: string[]) {
  const m = new PathMatcher<string>();
  for (const t of templates) m.add(parseTemplate(t), t);
  return m;
}

/** The first match's template and its variables, decoded. */
function first(m: PathMatcher<string>, path: string) {
  const [match] = m.match(path);
  if (!match) return undefined;
  return {
    template: match.value,
    vars: Object.fromEntries(match.template.variables.map((v) => [v.fieldPath.join("."), capturedValue(match, v)])),
  };
}

describe("parseTemplate", () => {
  it("parses literals, variables, nested field paths, sub-templates and verbs", () => {
    const t = parseTemplate("/v1/{parent.name=shelves/*}/books/{book}:publish");
    expect(t.segments.map((s) => (s.kind === "literal" ? s.value : s.kind))).toEqual(["v1", "shelves", "wildcard", "books", "wildcard"]);
    expect(t.variables).toEqual([
      { fieldPath: ["parent", "name"], start: 1, end: 3, multi: true },
      { fieldPath: ["book"], start: 4, end: 5, multi: false },
    ]);
    expect(t.verb).toBe("publish");
    expect(parseTemplate("/v1/images/{repository=**}/manifests/{reference}").variables[0]).toMatchObject({ multi: true, start: 2, end: 3 });
    expect(parseTemplate("/v1/{id=*}").variables[0]).toMatchObject({ multi: false });
  });

  it.each([
    ["v1/x", /must start with "\/"/],
    ["/v1/{id", /unclosed variable/],
    ["/v1/{a-b}", /bad field path/],
    ["/v1/{a}/{a}", /appears twice/],
    ["/v1/**/x/**", /at most one/],
    ["/v1/x y", /bad segment/],
    ["/v1/x:", /bad verb/],
  ])("rejects %s", (source, why) => {
    expect(() => parseTemplate(source)).toThrow(TemplateSyntaxError);
    expect(() => parseTemplate(source)).toThrow(why);
  });
});

describe("PathMatcher", () => {
  const m = matcherOf(
    "/v1/registries",
    "/v1/registries/{id}",
    "/v1/registries/{id}:ping",
    "/v1/registries/{registry_id}/namespaces",
    "/v1/images/{repository=**}/manifests/{reference}",
    "/v1/images/{repository=**}/tags",
    "/v1/files/{path=**}",
    "/v1/{name=shelves/*/books/*}",
  );

  it("matches literals and single-segment variables", () => {
    expect(first(m, "/v1/registries")).toEqual({ template: "/v1/registries", vars: {} });
    expect(first(m, "/v1/registries/r1")).toEqual({ template: "/v1/registries/{id}", vars: { id: "r1" } });
    expect(first(m, "/v1/registries/r1/namespaces")?.vars).toEqual({ registry_id: "r1" });
    expect(first(m, "/v1/unknown")).toBeUndefined();
    expect(first(m, "/v2/registries")).toBeUndefined();
  });

  it("lets ** take several segments before literal segments", () => {
    expect(first(m, "/v1/images/local/team/app/manifests/1.0")).toEqual({
      template: "/v1/images/{repository=**}/manifests/{reference}",
      vars: { repository: "local/team/app", reference: "1.0" },
    });
    // "manifests" and "tags" inside the repository name do not end it early.
    expect(first(m, "/v1/images/r/manifests/tags/manifests/sha256:ab")?.vars).toEqual({ repository: "r/manifests/tags", reference: "sha256:ab" });
    expect(first(m, "/v1/images/r/tags/x/tags")?.vars).toEqual({ repository: "r/tags/x" });
    expect(first(m, "/v1/images/r/manifests")).toBeUndefined();
  });

  it("lets a trailing ** match zero or more segments", () => {
    expect(first(m, "/v1/files/a/b/c")?.vars).toEqual({ path: "a/b/c" });
    expect(first(m, "/v1/files")?.vars).toEqual({ path: "" });
  });

  it("captures a sub-template with its literals", () => {
    expect(first(m, "/v1/shelves/s1/books/b2")?.vars).toEqual({ name: "shelves/s1/books/b2" });
    expect(first(m, "/v1/shelves/s1/books")).toBeUndefined();
  });

  it("matches a custom verb before the plain template and keeps colons elsewhere", () => {
    const all = m.match("/v1/registries/r1:ping").map((x) => x.value);
    expect(all).toEqual(["/v1/registries/{id}:ping", "/v1/registries/{id}"]);
    expect(first(m, "/v1/registries/r1:ping")?.vars).toEqual({ id: "r1" });
    // An unknown verb is part of the segment.
    expect(first(m, "/v1/registries/r1:pong")).toEqual({ template: "/v1/registries/{id}", vars: { id: "r1:pong" } });
    expect(first(m, "/v1/images/a/manifests/sha256:0123")?.vars).toEqual({ repository: "a", reference: "sha256:0123" });
  });

  it("never matches empty segments", () => {
    expect(first(m, "/v1/registries/")).toBeUndefined();
    expect(first(m, "/v1//registries")).toBeUndefined();
    expect(first(m, "/v1/images//x/manifests/1")).toBeUndefined();
    // The verb rule needs a non-empty id; the plain rule takes the whole segment.
    expect(m.match("/v1/registries/:ping").map((x) => x.value)).toEqual(["/v1/registries/{id}"]);
    expect(first(m, "")).toBeUndefined();
  });

  it("percent-decodes single segments fully and multi segments except %2F", () => {
    expect(first(m, "/v1/registries/a%2Fb%20c")?.vars).toEqual({ id: "a/b c" });
    expect(first(m, "/v1/images/a%2fb/c%C3%A9/manifests/x%3Ay")?.vars).toEqual({ repository: "a%2fb/cé", reference: "x:y" });
    // Literals are compared encoded, as http.proto says.
    expect(first(m, "/v1/%72egistries")).toBeUndefined();
    const [bad] = m.match("/v1/registries/%E0%A4");
    expect(() => capturedValue(bad!, bad!.template.variables[0]!)).toThrow(PathDecodeError);
  });

  it("orders literal matches before variables", () => {
    const mm = matcherOf("/v1/{a}/x", "/v1/fixed/x", "/v1/{rest=**}");
    expect(mm.match("/v1/fixed/x").map((x) => x.value)).toEqual(["/v1/fixed/x", "/v1/{a}/x", "/v1/{rest=**}"]);
  });
});
