// podman (Debian's, when installed) against /v2/ with auth on: login with a wrong password is
// refused; login, push, pull back and logout work through the Docker token flow. podman runs with
// private storage, configuration and auth file, so nothing of the machine's applies.
import { execFile } from "node:child_process";
import { accessSync, constants, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { unique } from "./support/clients.js";
import { databaseKinds } from "./support/database.js";
import { ADMIN_TOKEN, bindRole, createAccount, identityClients, startAuthServer } from "./support/identity.js";
import { smallImage, type BuiltImage } from "./support/oci-images.js";
import type { TestServer } from "./support/server.js";

const PODMAN = "/usr/bin/podman";
const havePodman = (() => {
  try {
    accessSync(PODMAN, constants.X_OK);
    return true;
  } catch {
    console.warn("\n!!! test/identity-podman.test.ts: SKIPPED, podman is not installed (apt-get install -y podman)\n");
    return false;
  }
})();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe.skipIf(!havePodman).each(databaseKinds())("podman against /v2/ with auth on, on %s", (kind) => {
  let server: TestServer;
  let host: string;
  let registry: string;
  let image: BuiltImage;
  const home = mkdtempSync(join(tmpdir(), "artifact-podman-"));
  const authFile = join(home, "auth.json");

  /** podman with private storage and settings; the password (when any) goes on stdin. */
  const podman = (args: string[], stdin = ""): Promise<Run> =>
    new Promise((resolve) => {
      const child = execFile(
        PODMAN,
        ["--root", join(home, "root"), "--runroot", join(home, "run"), "--storage-driver", "vfs", ...args],
        {
          timeout: 120_000,
          env: {
            PATH: process.env.PATH ?? "",
            HOME: home,
            XDG_RUNTIME_DIR: join(home, "xdg"),
            XDG_CONFIG_HOME: join(home, "config"),
            TMPDIR: join(home, "tmp"),
            CONTAINERS_REGISTRIES_CONF: join(home, "registries.conf"),
            CONTAINERS_CONF: join(home, "containers.conf"),
            REGISTRY_AUTH_FILE: authFile,
          },
        },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin!.end(stdin);
    });

  beforeAll(async () => {
    for (const d of ["root", "run", "xdg", "config", "tmp"]) mkdirSync(join(home, d), { recursive: true });
    writeFileSync(join(home, "registries.conf"), "unqualified-search-registries = []\n");
    writeFileSync(join(home, "containers.conf"), '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n');
    writeFileSync(join(home, "config", "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
    mkdirSync(join(home, "config", "containers"), { recursive: true });
    writeFileSync(join(home, "config", "containers", "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
    server = await startAuthServer(kind);
    host = `127.0.0.1:${server.http.port}`;
    registry = unique("podman");
    await identityClients(server.httpUrl, ADMIN_TOKEN).registries.createRegistry({ registry: { name: registry, kind: RegistryKind.HOSTED } });
    image = await smallImage("podman");
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it("refuses a wrong password; logs in, pushes, pulls back and logs out", async () => {
    const admin = identityClients(server.httpUrl, ADMIN_TOKEN);
    const user = await createAccount(admin, server.httpUrl);
    await bindRole(admin, user.id, "writer", { global: true });

    const wrong = await podman(["login", "--tls-verify=false", "--username", user.name, "--password-stdin", host], "not-the-password\n");
    expect(wrong.code, wrong.stderr).not.toBe(0);
    expect(wrong.stderr).toMatch(/unauthorized|invalid|401/i);

    const login = await podman(["login", "--tls-verify=false", "--username", user.name, "--password-stdin", host], `${user.password}\n`);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain("Login Succeeded");

    // podman names an image pulled from a layout after its path, which must be lower case.
    const [, dir, tag] = /^oci:(.*):([^:]+)$/.exec(image.ref)!;
    const layout = join(tmpdir(), `artifact-podman-layout-${process.pid}-${Date.now()}`);
    cpSync(dir!, layout, { recursive: true });
    const local = `oci:${layout}:${tag}`;
    const remote = `${host}/${registry}/team/app:1.0`;
    const pulledLocal = await podman(["pull", local]);
    expect(pulledLocal.code, pulledLocal.stderr).toBe(0);
    const id = pulledLocal.stdout.trim().split("\n").pop()!;
    rmSync(layout, { recursive: true, force: true });
    const push = await podman(["push", "--tls-verify=false", id, `docker://${remote}`]);
    expect(push.code, push.stderr).toBe(0);

    const tags = await fetch(`${server.httpUrl}/v2/${registry}/team/app/tags/list`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(await tags.json()).toEqual({ name: `${registry}/team/app`, tags: ["1.0"] });

    const rmi = await podman(["rmi", "--all", "--force"]);
    expect(rmi.code, rmi.stderr).toBe(0);
    const pull = await podman(["pull", "--tls-verify=false", remote]);
    expect(pull.code, pull.stderr).toBe(0);
    const inspect = await podman(["image", "inspect", "--format", "{{.Id}}", remote]);
    expect(inspect.stdout.trim()).toBe(id);

    const logout = await podman(["logout", host]);
    expect(logout.code, logout.stderr).toBe(0);
    // Signed out: the private repository is refused.
    const again = await podman(["pull", "--tls-verify=false", `${host}/${registry}/team/app:1.0`]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/unauthorized|authentication required|denied/i);
  });
});
