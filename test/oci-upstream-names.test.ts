// The one rule between upstream repository paths and catalog names, shared by sync and the
// pull-through proxy: every mapping must come back to the path it started from.
import { describe, expect, it } from "vitest";
import { catalogNameOf, isDockerHub, upstreamPathOf } from "../src/domain/upstream-names.js";

describe("upstream names", () => {
  const cases: [string, boolean, string, string, string][] = [
    // upstream path, docker hub?, namespace, repository, recorded upstream_name
    ["team/app", false, "team", "app", "team/app"],
    ["org/team/app", false, "org", "team/app", "org/team/app"],
    ["testbox", false, "library", "testbox", "testbox"],
    ["library/ubuntu", true, "library", "ubuntu", "library/ubuntu"],
    ["ubuntu", true, "library", "ubuntu", "library/ubuntu"],
    ["bitnami/redis", true, "bitnami", "redis", "bitnami/redis"],
  ];
  it.each(cases)("%s (Docker Hub: %s) ↔ %s / %s", (path, dockerHub, namespace, repository, upstreamName) => {
    expect(catalogNameOf(path, { dockerHub })).toEqual({ namespace, repository, upstreamName });
    // With the recorded name, and without a row (the default rule), the path comes back.
    expect(upstreamPathOf(namespace, repository, { dockerHub, upstreamName })).toBe(upstreamName);
    expect(upstreamPathOf(namespace, repository, { dockerHub })).toBe(upstreamName);
  });

  it("a recorded upstream_name wins over the default rule", () => {
    expect(upstreamPathOf("library", "x", { dockerHub: false, upstreamName: "library/x" })).toBe("library/x");
    expect(upstreamPathOf("library", "x", { dockerHub: false })).toBe("x");
  });

  it("refuses paths that are not OCI repository names", () => {
    for (const bad of ["", "Team/app", "a//b", "../etc", "a/", "-x"]) {
      expect(catalogNameOf(bad, { dockerHub: false })).toHaveProperty("problem");
    }
  });

  it("recognises Docker Hub by host", () => {
    expect(isDockerHub("https://registry-1.docker.io")).toBe(true);
    expect(isDockerHub("https://index.docker.io/v1/")).toBe(true);
    expect(isDockerHub("https://ghcr.io")).toBe(false);
    expect(isDockerHub("not a url")).toBe(false);
  });
});
