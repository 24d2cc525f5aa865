// Keyset pagination over a few thousand rows: every order, ascending and descending, must
// visit each row exactly once in the right order, with duplicate sort values broken by id.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tags as tagsTable } from "../src/db/schema.js";
import { databaseKinds } from "./support/database.js";
import { catalogClients, createHierarchy, digestOf, type Clients } from "./support/clients.js";
import { callTransport, startTestServer, type TestServer } from "./support/server.js";

const ROWS = 3000;

describe.each(databaseKinds())("pagination on %s", (kind) => {
  let server: TestServer;
  let c: Clients;
  let repositoryId: string;
  let rows: { id: string; name: string; createTime: Date; updateTime: Date; pushTime: Date }[];

  beforeAll(async () => {
    server = await startTestServer(kind);
    c = catalogClients(callTransport(server));
    const { repository } = await createHierarchy(c);
    repositoryId = repository.id;
    // Few distinct timestamps, so most pages have to break ties on the id.
    const base = Date.parse("2026-01-01T00:00:00Z");
    const values = Array.from({ length: ROWS }, (_, i) => ({
      repositoryId,
      name: `t${String((i * 7919) % ROWS).padStart(5, "0")}${i % 3 === 0 ? "-A" : ""}`,
      digest: digestOf(i),
      createTime: new Date(base + (i % 17) * 1000),
      updateTime: new Date(base + (i % 5) * 60_000),
      pushTime: new Date(base + ((i * 31) % 101)),
    }));
    for (let i = 0; i < values.length; i += 500) {
      await server.database.db.insert(tagsTable).values(values.slice(i, i + 500));
    }
    rows = (await server.database.db.select().from(tagsTable)).filter((r) => r.repositoryId === repositoryId);
    expect(rows).toHaveLength(ROWS);
  });
  afterAll(() => server?.stop());

  const bytewise = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const orders = {
    name: (r: (typeof rows)[number]) => r.name,
    create_time: (r: (typeof rows)[number]) => r.createTime.getTime(),
    update_time: (r: (typeof rows)[number]) => r.updateTime.getTime(),
    push_time: (r: (typeof rows)[number]) => r.pushTime.getTime(),
  };

  for (const [order, key] of Object.entries(orders)) {
    for (const direction of ["", " desc"]) {
      it(`walks all ${ROWS} tags by "${order}${direction}" in pages of 237`, async () => {
        const expected = [...rows]
          .sort((a, b) => {
            const ka = key(a);
            const kb = key(b);
            const primary = typeof ka === "string" ? bytewise(ka, kb as string) : ka - (kb as number);
            return primary !== 0 ? primary : bytewise(a.id, b.id);
          })
          .map((r) => r.id);
        if (direction) expected.reverse();

        const seen: string[] = [];
        let pageToken = "";
        let pages = 0;
        do {
          const page = await c.tags.listTags({ repositoryId, orderBy: `${order}${direction}`, pageSize: 237, pageToken });
          expect(page.totalSize).toBe(ROWS);
          expect(page.tags.length).toBeLessThanOrEqual(237);
          seen.push(...page.tags.map((t) => t.id));
          pageToken = page.nextPageToken;
          pages++;
        } while (pageToken !== "");
        expect(pages).toBe(Math.ceil(ROWS / 237));
        expect(seen).toEqual(expected);
      });
    }
  }

  it("filters by a query across pages and keeps total_size to the matches", async () => {
    const matching = rows
      .filter((r) => r.name.toLowerCase().includes("-a"))
      .map((r) => r.name)
      .sort(bytewise);
    const names: string[] = [];
    let pageToken = "";
    do {
      const page = await c.tags.listTags({ repositoryId, query: "-a", pageSize: 400, pageToken });
      expect(page.totalSize).toBe(matching.length);
      names.push(...page.tags.map((t) => t.name));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(names).toEqual(matching);
  });

  it("lists across all repositories when no parent is given", async () => {
    const page = await c.tags.listTags({ pageSize: 1000, orderBy: "push_time desc" });
    expect(page.tags).toHaveLength(1000);
    expect(page.totalSize).toBeGreaterThanOrEqual(ROWS);
  });
});
