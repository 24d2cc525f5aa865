// Webhooks end to end (issue 15): the WebhookService API, and deliveries to a real endpoint on
// loopback (test/support/webhook-receiver.ts) of what real pushes on /v2/ cause: CloudEvents
// signed so that README's check passes (and fails with another secret), in order per repository,
// retried after 500s and while the endpoint is down, the delivery log, TestWebhook, the network
// fence (at create and at delivery), and no event for a change whose transaction rolled back.
// Both databases.
import { Code, createClient, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventService } from "../gen/artifact/v1/event_pb.js";
import { NamespaceService } from "../gen/artifact/v1/namespace_pb.js";
import { RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { DeliveryStatus, WebhookService, type Delivery, type Webhook } from "../gen/artifact/v1/webhook_pb.js";
import { unique, expectCode } from "./support/clients.js";
import { databaseKinds, openTestDatabase } from "./support/database.js";
import { createConnectTransport } from "@connectrpc/connect-node";
import { adminFetch } from "./support/credentials.js";
import { bearer, bindRole, createAccount, identityClients } from "./support/identity.js";
import { RegistryClient } from "./support/registry-client.js";
import { callTransport, startTestServer, type TestServer } from "./support/server.js";
import { testUpstream } from "./support/upstream-settings.js";
import { verifiesWith, WebhookReceiver, type ReceivedRequest } from "./support/webhook-receiver.js";

const SECRET = "test-webhook-secret-0123456789abcdef";

describe.each(databaseKinds())("webhooks on %s", (kind) => {
  let server: TestServer;
  let receiver: WebhookReceiver;
  let webhooks: Client<typeof WebhookService>;
  let registries: Client<typeof RegistryService>;
  let namespaces: Client<typeof NamespaceService>;
  let events: Client<typeof EventService>;
  let registry: RegistryClient;

  beforeAll(async () => {
    server = await startTestServer(kind);
    const transport = callTransport(server);
    webhooks = createClient(WebhookService, transport);
    registries = createClient(RegistryService, transport);
    namespaces = createClient(NamespaceService, transport);
    events = createClient(EventService, transport);
    registry = new RegistryClient(server.httpUrl);
  });
  afterAll(async () => {
    await receiver?.stop();
    await server?.stop();
  });

  /** A fresh HOSTED registry, a receiver, and a webhook on the registry sending to it. */
  async function setup(options: { eventTypes?: string[]; namespace?: boolean } = {}) {
    receiver = await WebhookReceiver.start();
    const reg = await registries.createRegistry({ registry: { name: unique("hooks"), kind: RegistryKind.HOSTED } });
    const ns = options.namespace ? await namespaces.createNamespace({ namespace: { registryId: reg.id, name: "team" } }) : undefined;
    const webhook = await webhooks.createWebhook({
      webhook: { ...(ns ? { namespaceId: ns.id } : { registryId: reg.id }), url: receiver.url, secret: SECRET, eventTypes: options.eventTypes ?? [] },
    });
    return { reg, ns, webhook, receiver };
  }

  async function deliveriesOf(webhook: Webhook, status = DeliveryStatus.UNSPECIFIED): Promise<Delivery[]> {
    return (await webhooks.listDeliveries({ webhookId: webhook.id, status, pageSize: 1000 })).deliveries;
  }

  async function waitForDeliveries(webhook: Webhook, predicate: (d: Delivery[]) => boolean, what: string, timeoutMs = 20_000): Promise<Delivery[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const list = await deliveriesOf(webhook);
      if (predicate(list)) return list;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}: ${JSON.stringify(list.map((d) => [DeliveryStatus[d.status], d.attempts, d.lastError]))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("creates, reads, updates, lists and deletes a webhook; the secret is never returned", async () => {
    const reg = await registries.createRegistry({ registry: { name: unique("crud"), kind: RegistryKind.HOSTED } });
    const ns = await namespaces.createNamespace({ namespace: { registryId: reg.id, name: "team" } });
    const created = await webhooks.createWebhook({
      webhook: { namespaceId: ns.id, url: "http://127.0.0.1:9/hook?token=abc", secret: SECRET, eventTypes: ["dev.artifact.image.pushed"], description: "ci" },
    });
    expect(created).toMatchObject({
      registryId: reg.id,
      namespaceId: ns.id,
      url: "http://127.0.0.1:9/hook?token=abc",
      eventTypes: ["dev.artifact.image.pushed"],
      enabled: true,
      description: "ci",
      scopeName: `${reg.name}/team`,
      secret: "",
      etag: "1",
    });
    expect(await webhooks.getWebhook({ id: created.id })).toMatchObject({ id: created.id, secret: "" });
    // Over REST too: nothing of the secret, sealed or not, in the JSON.
    const rest = await (await adminFetch(`${server.httpUrl}/v1/webhooks/${created.id}`)).text();
    expect(rest).toContain(created.id);
    expect(rest).not.toMatch(/secret|v2:/i);

    const updated = await webhooks.updateWebhook({ webhook: { id: created.id, enabled: false, etag: created.etag }, updateMask: { paths: ["enabled"] } });
    expect(updated).toMatchObject({ enabled: false, etag: "2", url: created.url, eventTypes: created.eventTypes });
    await expectCode(
      webhooks.updateWebhook({ webhook: { id: created.id, description: "x", etag: "1" }, updateMask: { paths: ["description"] } }),
      Code.Aborted,
    );
    // The secret changes only when named or set; an empty mask leaves it alone.
    await webhooks.updateWebhook({ webhook: { ...updated, description: "again", enabled: false } });
    await expectCode(
      webhooks.updateWebhook({ webhook: { id: created.id, secret: "short" }, updateMask: { paths: ["secret"] } }),
      Code.InvalidArgument,
      /16 to 1024/,
    );

    // A registry's own webhook: its scope is the registry, named alone (in every answer: create, get, list).
    const whole = await webhooks.createWebhook({ webhook: { registryId: reg.id, url: "http://127.0.0.1:9/all", secret: SECRET } });
    expect(whole).toMatchObject({ registryId: reg.id, namespaceId: "", scopeName: reg.name });
    expect((await webhooks.getWebhook({ id: whole.id })).scopeName).toBe(reg.name);

    const listed = await webhooks.listWebhooks({ registryId: reg.id, orderBy: "create_time" });
    expect(listed.webhooks.map((w) => [w.id, w.scopeName])).toEqual([
      [created.id, `${reg.name}/team`],
      [whole.id, reg.name],
    ]);
    expect(listed.totalSize).toBe(2);
    expect((await webhooks.listWebhooks({ namespaceId: ns.id })).webhooks.map((w) => w.id)).toEqual([created.id]);

    await webhooks.deleteWebhook({ id: whole.id });
    await webhooks.deleteWebhook({ id: created.id });
    await expectCode(webhooks.getWebhook({ id: created.id }), Code.NotFound);
  });

  it("refuses bad webhooks with INVALID_ARGUMENT naming the field", async () => {
    const reg = await registries.createRegistry({ registry: { name: unique("bad"), kind: RegistryKind.HOSTED } });
    const base = { registryId: reg.id, url: "http://127.0.0.1:9/hook", secret: SECRET };
    await expectCode(webhooks.createWebhook({ webhook: { ...base, secret: "" } }), Code.InvalidArgument, /webhook\.secret: is required/);
    await expectCode(webhooks.createWebhook({ webhook: { ...base, url: "ftp://127.0.0.1/x" } }), Code.InvalidArgument, /webhook\.url: must use http or https/);
    await expectCode(webhooks.createWebhook({ webhook: { ...base, url: "http://user:pw@127.0.0.1/x" } }), Code.InvalidArgument, /user or password/);
    await expectCode(webhooks.createWebhook({ webhook: { ...base, eventTypes: ["push"] } }), Code.InvalidArgument, /event_types\[0\].*not an event type/);
    await expectCode(webhooks.createWebhook({ webhook: { ...base, eventTypes: ["dev.artifact.webhook.test"] } }), Code.InvalidArgument, /not an event type/);
    await expectCode(webhooks.createWebhook({ webhook: { url: base.url, secret: SECRET } }), Code.InvalidArgument, /registry_id/);
    await expectCode(webhooks.createWebhook({ webhook: { ...base, registryId: "00000000-0000-4000-8000-000000000001" } }), Code.NotFound);
  });

  it("refuses a webhook to a private address at create, naming UPSTREAM_ALLOWED_NETWORKS", async () => {
    const reg = await registries.createRegistry({ registry: { name: unique("fence"), kind: RegistryKind.HOSTED } });
    // The test server allows loopback (127.0.0.0/8) only.
    const err = await expectCode(
      webhooks.createWebhook({ webhook: { registryId: reg.id, url: "http://10.20.30.40:8080/hook", secret: SECRET } }),
      Code.PermissionDenied,
      /webhook endpoint 10\.20\.30\.40:8080 refused: .*private.*UPSTREAM_ALLOWED_NETWORKS/,
    );
    expect(err.rawMessage).toMatch(/webhooks may not reach such addresses/);
    // The service's own listener, whatever is allowed.
    await expectCode(
      webhooks.createWebhook({ webhook: { registryId: reg.id, url: `${server.httpUrl}/v1/registries`, secret: SECRET } }),
      Code.PermissionDenied,
      /own listener/,
    );
  });

  it("delivers a push as a signed CloudEvent; the signature fails with another secret", async () => {
    const { reg, webhook } = await setup();
    const name = `${reg.name}/team/app`;
    const image = await registry.pushImage(name, "1.0");
    await receiver.waitFor((r) => r.length >= 1);
    const [request] = receiver.requests as [ReceivedRequest];
    expect(request.method).toBe("POST");
    expect(request.path).toBe("/hook");
    expect(request.headers["content-type"]).toMatch(/^application\/cloudevents\+json/);
    expect(request.headers["x-artifact-webhook-id"]).toBe(webhook.id);
    expect(request.event).toMatchObject({
      specversion: "1.0",
      type: "dev.artifact.image.pushed",
      source: `/v1/registries/${reg.id}`,
      subject: name,
      datacontenttype: "application/json",
      data: {
        registry: reg.name,
        namespace: "team",
        repository: "app",
        tag: "1.0",
        digest: image.digest,
        mediaType: image.mediaType,
        sizeBytes: image.bytes.length + image.config.length + image.layer.length,
        actor: { name: "admin" },
      },
    });
    expect(request.event!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(request.event!.time)).toBeGreaterThan(Date.now() - 60_000);
    expect(verifiesWith(SECRET, request)).toBe(true);
    expect(verifiesWith("another-secret-0123456789abcdef", request)).toBe(false);
    // One changed byte of the body, and the check fails.
    expect(verifiesWith(SECRET, { ...request, body: Buffer.from(request.body.toString().replace("1.0", "1.1")) })).toBe(false);

    const [delivery] = await waitForDeliveries(webhook, (d) => d[0]?.status === DeliveryStatus.DELIVERED, "the delivery settled");
    expect(delivery).toMatchObject({
      eventId: request.event!.id,
      eventType: "dev.artifact.image.pushed",
      subject: name,
      attempts: 1,
      responseStatus: 200,
      lastError: "",
    });
  });

  it("delivers a repository's events in order, one at a time, while its endpoint fails some of them", async () => {
    const { reg } = await setup();
    // Every third request fails once: the event after it must wait for the retry.
    const failed = new Set<string>();
    receiver.answer = (request, index) => {
      const id = request.event?.id ?? "";
      if (index % 3 === 1 && !failed.has(id)) {
        failed.add(id);
        return 500;
      }
      return 200;
    };
    receiver.delayMs = 5;
    const tags = Array.from({ length: 8 }, (_, i) => `v${i}`);
    const other = `${reg.name}/team/other`;
    for (const tag of tags) {
      await registry.pushImage(`${reg.name}/team/app`, tag);
      await registry.pushImage(other, tag);
    }
    await receiver.waitFor((r) => r.filter((x) => x.status === 200).length >= tags.length * 2, 30_000, "every push delivered");
    for (const subject of [`${reg.name}/team/app`, other]) {
      const requests = receiver.requests.filter((r) => r.event?.subject === subject);
      // Every request (failed ones too) comes after the previous event was accepted: the tags in push order.
      const order = requests.map((r) => r.event!.data.tag);
      const accepted = requests.filter((r) => r.status === 200).map((r) => r.event!.data.tag);
      expect(accepted, subject).toEqual(tags);
      const firstTry = order.filter((t, i) => order.indexOf(t) === i);
      expect(firstTry, subject).toEqual(tags);
      // A retried event is tried again before any later one.
      for (let i = 1; i < order.length; i++)
        expect(tags.indexOf(order[i]!), `${subject}: ${order.join(",")}`).toBeGreaterThanOrEqual(tags.indexOf(order[i - 1]!));
    }
    expect(failed.size).toBeGreaterThan(0);
  });

  it("retries after the endpoint answered 500, and the delivery log shows it", async () => {
    const { reg, webhook } = await setup();
    receiver.answer = (_r, index) => (index < 2 ? 500 : 204);
    await registry.pushImage(`${reg.name}/team/app`, "retry");
    const [failing] = await waitForDeliveries(webhook, (d) => (d[0]?.attempts ?? 0) >= 1 && d[0]?.lastError !== "", "a failed attempt in the log");
    expect(failing).toMatchObject({ responseStatus: 500 });
    expect(failing!.lastError).toMatch(/^HTTP 500: receiver says 500/);
    const [done] = await waitForDeliveries(webhook, (d) => d[0]?.status === DeliveryStatus.DELIVERED, "the delivery after retries");
    expect(done).toMatchObject({ attempts: 3, responseStatus: 204, lastError: "" });
    expect(done!.lastAttemptTime).toBeDefined();
    expect(receiver.requests.map((r) => r.status)).toEqual([500, 500, 204]);
    // All three carried the same event (at least once: the receiver dedupes on its id).
    expect(new Set(receiver.requests.map((r) => r.event?.id)).size).toBe(1);
    expect((await deliveriesOf(webhook, DeliveryStatus.DELIVERED)).length).toBe(1);
    expect((await deliveriesOf(webhook, DeliveryStatus.PENDING)).length).toBe(0);
  });

  it("retries while the endpoint is down and delivers once it is up again", async () => {
    const { reg, webhook } = await setup();
    await receiver.down();
    await registry.pushImage(`${reg.name}/team/app`, "down");
    const [pending] = await waitForDeliveries(webhook, (d) => (d[0]?.attempts ?? 0) >= 2, "two refused attempts");
    expect(pending).toMatchObject({ status: DeliveryStatus.PENDING, responseStatus: 0 });
    expect(pending!.lastError).toMatch(/refused the connection/);
    expect(pending!.nextAttemptTime).toBeDefined();
    await receiver.up();
    const [done] = await waitForDeliveries(webhook, (d) => d[0]?.status === DeliveryStatus.DELIVERED, "the delivery once up");
    expect(done!.attempts).toBeGreaterThanOrEqual(3);
    expect(receiver.accepted.map((r) => r.event?.data.tag)).toEqual(["down"]);
  });

  it("sends only the types a webhook asks for, and tag and manifest deletes as their own events", async () => {
    const { reg, webhook } = await setup({ eventTypes: ["dev.artifact.tag.deleted", "dev.artifact.manifest.deleted"] });
    const name = `${reg.name}/team/app`;
    const image = await registry.pushImage(name, "a");
    await registry.putManifest(name, "b", image.bytes, image.mediaType);
    expect((await registry.req("DELETE", `/v2/${name}/manifests/a`)).status).toBe(202);
    expect((await registry.req("DELETE", `/v2/${name}/manifests/${image.digest}`)).status).toBe(202);
    await receiver.waitFor((r) => r.length >= 2);
    expect(receiver.requests.map((r) => r.event?.type)).toEqual(["dev.artifact.tag.deleted", "dev.artifact.manifest.deleted"]);
    expect(receiver.requests[0]!.event!.data).toMatchObject({ tag: "a", digest: image.digest, actor: { name: "admin" } });
    expect(receiver.requests[1]!.event!.data).toMatchObject({ digest: image.digest, tags: ["b"] });
    await waitForDeliveries(webhook, (d) => d.length === 2 && d.every((x) => x.status === DeliveryStatus.DELIVERED), "both delivered");
  });

  it("writes no event for a push whose transaction rolled back, and delivers the next one", async () => {
    const { reg, webhook } = await setup();
    // Refused at commit, after the event was written in the same transaction: a deferred
    // constraint trigger that rejects one tag name stands for any refusal inside the transaction.
    await server.database.db.execute(`create or replace function refuse_rolled_back_tag() returns trigger language plpgsql as $$
      begin if new.name = 'rolled-back' then raise exception 'refused for the test'; end if; return null; end $$`);
    await server.database.db.execute(`drop trigger if exists refuse_rolled_back_tag on tags`);
    await server.database.db.execute(`create constraint trigger refuse_rolled_back_tag after insert or update on tags
      deferrable initially deferred for each row execute function refuse_rolled_back_tag()`);
    try {
      const name = `${reg.name}/team/app`;
      const { position: before } = await firstMessage({ registryId: reg.id });
      const image = await registry.pushImage(name, "kept");
      const refused = await registry.putManifest(name, "rolled-back", image.bytes, image.mediaType);
      expect(refused.status).toBe(500);
      // A push refused before the event too (a blob the repository does not have).
      const missing = await registry.putManifest(name, "missing", {
        ...(JSON.parse(image.bytes.toString()) as object),
        layers: [{ ...image.descriptor, digest: `sha256:${"0".repeat(64)}` }],
      });
      expect(missing.status).toBe(400);
      await registry.pushImage(name, "after");
      await receiver.waitFor((r) => r.length >= 2);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(receiver.requests.map((r) => r.event?.data.tag)).toEqual(["kept", "after"]);
      // The outbox holds exactly those, and the tag does not exist.
      const replay = await firstMessage({ registryId: reg.id, afterPosition: before });
      expect(replay.events.map((e) => e.data?.tag)).toEqual(["kept", "after"]);
      expect((await registry.req("GET", `/v2/${name}/manifests/rolled-back`)).status).toBe(404);
      expect((await deliveriesOf(webhook)).length).toBe(2);
    } finally {
      await server.database.db.execute(`drop trigger if exists refuse_rolled_back_tag on tags`);
    }
  });

  it("TestWebhook sends a signed test event now and reports the outcome", async () => {
    const { webhook } = await setup({ eventTypes: ["dev.artifact.tag.deleted"] });
    const ok = await webhooks.testWebhook({ id: webhook.id });
    expect(ok).toMatchObject({ delivered: true, responseStatus: 200, error: "" });
    expect(ok.durationMs).toBeGreaterThan(0);
    const [request] = receiver.requests as [ReceivedRequest];
    expect(request.event).toMatchObject({ id: ok.eventId, type: "dev.artifact.webhook.test", source: `/v1/webhooks/${webhook.id}`, specversion: "1.0" });
    expect(verifiesWith(SECRET, request)).toBe(true);

    receiver.answer = () => 503;
    const failing = await webhooks.testWebhook({ id: webhook.id });
    expect(failing).toMatchObject({ delivered: false, responseStatus: 503 });
    expect(failing.error).toMatch(/^HTTP 503/);

    await receiver.down();
    const down = await webhooks.testWebhook({ id: webhook.id });
    expect(down).toMatchObject({ delivered: false, responseStatus: 0 });
    expect(down.error).toMatch(/refused the connection/);
    // Test events are never stored: no delivery in the log.
    expect(await deliveriesOf(webhook)).toEqual([]);
  });

  it("holds deliveries of a disabled webhook and sends them once it is enabled", async () => {
    const { reg, webhook } = await setup();
    const name = `${reg.name}/team/app`;
    await registry.pushImage(name, "before");
    await receiver.waitFor((r) => r.length >= 1);
    // Pending deliveries wait while disabled; no delivery is made for events meanwhile.
    receiver.answer = () => 500;
    await registry.pushImage(name, "while-failing");
    await waitForDeliveries(webhook, (d) => d.some((x) => x.attempts >= 1 && x.status === DeliveryStatus.PENDING), "a failed attempt");
    const disabled = await webhooks.updateWebhook({ webhook: { id: webhook.id, enabled: false }, updateMask: { paths: ["enabled"] } });
    await registry.pushImage(name, "while-disabled");
    receiver.answer = () => 200;
    await new Promise((resolve) => setTimeout(resolve, 700));
    const seen = receiver.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(receiver.requests.length).toBe(seen);
    await webhooks.updateWebhook({ webhook: { id: disabled.id, enabled: true }, updateMask: { paths: ["enabled"] } });
    await receiver.waitFor((r) => r.filter((x) => x.status === 200).length >= 2);
    expect(receiver.accepted.map((r) => r.event?.data.tag)).toEqual(["before", "while-failing"]);
  });

  it("refuses a delivery to an address the network policy does not allow, at delivery, with the reason in the log", async () => {
    // A webhook made while loopback was allowed, then served by a replica that allows nothing.
    const database = await openTestDatabase(kind);
    const allowing = await startTestServer(kind, { database });
    const receiverHere = await WebhookReceiver.start();
    let strict: TestServer | undefined;
    try {
      const clients = { registries: createClient(RegistryService, callTransport(allowing)), webhooks: createClient(WebhookService, callTransport(allowing)) };
      const reg = await clients.registries.createRegistry({ registry: { name: unique("strict"), kind: RegistryKind.HOSTED } });
      const webhook = await clients.webhooks.createWebhook({ webhook: { registryId: reg.id, url: receiverHere.url, secret: SECRET } });
      await allowing.close();
      strict = await startTestServer(kind, { database, config: { upstream: testUpstream({ allowed: "" }) } });
      await new RegistryClient(strict.httpUrl).pushImage(`${reg.name}/team/app`, "1.0");
      const strictHooks = createClient(WebhookService, callTransport(strict));
      const deadline = Date.now() + 15_000;
      let delivery: Delivery | undefined;
      while (Date.now() < deadline) {
        delivery = (await strictHooks.listDeliveries({ webhookId: webhook.id })).deliveries[0];
        if (delivery?.status === DeliveryStatus.FAILED) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(delivery).toMatchObject({ status: DeliveryStatus.FAILED, attempts: 1, responseStatus: 0 });
      expect(delivery!.lastError).toMatch(/connection to webhook endpoint 127\.0\.0\.1:\d+ refused: .*loopback.*UPSTREAM_ALLOWED_NETWORKS/);
      expect(receiverHere.requests).toEqual([]);
    } finally {
      await receiverHere.stop();
      if (strict) await strict.stop();
      else await database.close();
    }
  });

  it("lets a namespace's admin manage its webhooks, and nobody less", async () => {
    const admin = identityClients(server.httpUrl, undefined, callTransport(server));
    const reg = await registries.createRegistry({ registry: { name: unique("acl"), kind: RegistryKind.HOSTED } });
    const ns = await namespaces.createNamespace({ namespace: { registryId: reg.id, name: "team" } });
    const nsAdmin = await createAccount(admin, server.httpUrl);
    const writer = await createAccount(admin, server.httpUrl);
    await bindRole(admin, nsAdmin.id, "admin", { namespaceId: ns.id });
    await bindRole(admin, writer.id, "writer", { registryId: reg.id });
    const asAdmin = createClient(WebhookService, transportFor(nsAdmin.token));
    const asWriter = createClient(WebhookService, transportFor(writer.token));
    const mine = await asAdmin.createWebhook({ webhook: { namespaceId: ns.id, url: "http://127.0.0.1:9/hook", secret: SECRET } });
    await expectCode(asAdmin.createWebhook({ webhook: { registryId: reg.id, url: "http://127.0.0.1:9/hook", secret: SECRET } }), Code.PermissionDenied);
    await expectCode(asWriter.createWebhook({ webhook: { namespaceId: ns.id, url: "http://127.0.0.1:9/hook", secret: SECRET } }), Code.PermissionDenied);
    await expectCode(asWriter.getWebhook({ id: mine.id }), Code.PermissionDenied);
    await expectCode(asWriter.listDeliveries({ webhookId: mine.id }), Code.PermissionDenied);
    expect((await asAdmin.listWebhooks({})).webhooks.map((w) => w.id)).toEqual([mine.id]);
    expect((await asWriter.listWebhooks({})).webhooks).toEqual([]);
    await asAdmin.deleteWebhook({ id: mine.id });
  });

  function transportFor(token: string) {
    return createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [bearer(token)] });
  }

  /** The first message of a watch (the past events, up to 100): what the outbox holds. */
  async function firstMessage(request: { registryId: string; afterPosition?: bigint }) {
    const controller = new AbortController();
    try {
      for await (const message of events.watchEvents(request, { signal: controller.signal })) return message;
      throw new Error("the watch ended without a message");
    } finally {
      controller.abort();
    }
  }
});
