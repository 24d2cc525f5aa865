// The embedded database on its worker thread (src/db/pglite-worker.ts), through drizzle as the
// store uses it: transactions keep PGlite's one-at-a-time isolation, errors keep PostgreSQL's
// fields (the store maps them), prepared statements follow a table that changed, notifications
// reach this thread (only committed ones), and a closed handle fails calls clearly.
import { sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openPglite, type DatabaseHandle } from "../src/db/database.js";
import { alreadyExists } from "../src/domain/errors.js";
import { guarded } from "../src/store/pg-errors.js";
import { quietLog } from "./support/database.js";

let handle: DatabaseHandle;

beforeEach(async () => {
  handle = await openPglite("memory://", quietLog);
  await handle.db.execute(sql`create table probe (id int primary key, v text)`);
});

afterEach(async () => {
  await handle.close();
});

const rows = async (q: ReturnType<typeof sql>) => {
  const result: unknown = await handle.db.execute(q);
  return (result as { rows: Record<string, unknown>[] }).rows;
};

interface Listening {
  listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
}

describe("PGlite on its worker thread", () => {
  it("runs a statement from outside an open transaction only after it ends, and then sees its commit", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let inserted!: () => void;
    const insertDone = new Promise<void>((resolve) => (inserted = resolve));
    const tx = handle.db.transaction(async (t) => {
      await t.execute(sql`insert into probe values (${1}, ${"in tx"})`);
      inserted();
      await held;
    });
    await insertDone;
    let outsideDone = false;
    const outside = rows(sql`select v from probe where id = ${1}`).then((r) => {
      outsideDone = true;
      return r;
    });
    // The outside read cannot finish while the transaction holds the connection.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(outsideDone).toBe(false);
    release();
    await tx;
    expect(await outside).toEqual([{ v: "in tx" }]);
  });

  it("rolls a transaction back when its callback throws, and keeps serving afterwards", async () => {
    await expect(
      handle.db.transaction(async (t) => {
        await t.execute(sql`insert into probe values (${2}, ${"gone"})`);
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    expect(await rows(sql`select * from probe where id = ${2}`)).toEqual([]);
    await handle.db.transaction(async (t) => {
      await t.execute(sql`set transaction isolation level serializable`);
      await t.execute(sql`insert into probe values (${3}, ${"kept"})`);
    });
    expect(await rows(sql`select v from probe where id = ${3}`)).toEqual([{ v: "kept" }]);
  });

  it("keeps PostgreSQL's error fields, so a unique violation maps to its constraint", async () => {
    await handle.db.execute(sql`insert into probe values (${4}, ${"first"})`);
    const err = await guarded(() => handle.db.execute(sql`insert into probe values (${4}, ${"second"})`), {
      probe_pkey: () => alreadyExists("taken"),
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("taken");
    // Inside a transaction too; the failed statement aborts it, and it rolls back.
    const inTx = await handle.db
      .transaction(async (t) => {
        await t.execute(sql`insert into probe values (${4}, ${"again"})`);
      })
      .catch((e: unknown) => e);
    expect((inTx as { cause?: { code?: string } }).cause?.code).toBe("23505");
    expect(await rows(sql`select v from probe where id = ${4}`)).toEqual([{ v: "first" }]);
  });

  it("reports a statement PostgreSQL refuses with its own error, inside a transaction too", async () => {
    const outside = await handle.db.execute(sql`select * from no_such_table where id = ${1}`).catch((e: unknown) => e);
    expect((outside as { cause?: { code?: string } }).cause?.code).toBe("42P01");
    const inside = await handle.db
      .transaction(async (t) => {
        await t.execute(sql`select * from no_such_table where id = ${1}`);
      })
      .catch((e: unknown) => e);
    expect((inside as { cause?: { code?: string } }).cause?.code).toBe("42P01");
    expect(await rows(sql`select count(*)::int as n from probe`)).toEqual([{ n: 0 }]);
  });

  it("parses a query's text once, as a named statement, and runs it again with each call's values", async () => {
    await handle.db.execute(sql`insert into probe values (${10}, ${"ten"}), (${11}, ${"eleven"})`);
    const text = "select v from probe where id = $1";
    const prepared = () => rows(sql`select count(*)::int as n from pg_prepared_statements where statement = ${text}`);
    expect(await prepared()).toEqual([{ n: 0 }]);
    expect(await rows(sql`select v from probe where id = ${10}`)).toEqual([{ v: "ten" }]);
    expect(await rows(sql`select v from probe where id = ${11}`)).toEqual([{ v: "eleven" }]);
    expect(await rows(sql`select v from probe where id = ${12}`)).toEqual([]);
    // One statement for the three calls, kept by PostgreSQL (not PGlite's unnamed one of each query()).
    expect(await prepared()).toEqual([{ n: 1 }]);
    // Writes and statements starting with WITH are prepared too; transaction control is not.
    await handle.db.execute(sql`update probe set v = ${"TEN"} where id = ${10}`);
    await handle.db.execute(sql`with t as (select v from probe where id = ${10}) select v from t`);
    const texts = (await rows(sql`select statement from pg_prepared_statements`)).map((r) => r.statement);
    expect(texts).toEqual(expect.arrayContaining(["update probe set v = $1 where id = $2", "with t as (select v from probe where id = $1) select v from t"]));
    expect(await rows(sql`select v from probe where id = ${10}`)).toEqual([{ v: "TEN" }]);
    // Each kept statement keeps its plan too (made again only when ANALYZE or DDL invalidates it).
    expect(await rows(sql`select current_setting('plan_cache_mode') as mode`)).toEqual([{ mode: "force_generic_plan" }]);
  });

  it("answers the same statement text after its table changed shape", async () => {
    await handle.db.execute(sql`insert into probe values (${5}, ${"x"})`);
    const select = () => rows(sql`select * from probe where id = ${5}`);
    expect(await select()).toEqual([{ id: 5, v: "x" }]);
    expect(await select()).toEqual([{ id: 5, v: "x" }]);
    await handle.db.execute(sql`alter table probe add column w int default 7`);
    expect(await select()).toEqual([{ id: 5, v: "x", w: 7 }]);
  });

  it("delivers notifications to this thread, those of a transaction only once it commits", async () => {
    const client = (handle.db as unknown as { $client: Listening }).$client;
    const heard: string[] = [];
    const stop = await client.listen("probe_channel", (payload) => heard.push(payload));
    await handle.db.execute(sql`select pg_notify('probe_channel', 'plain')`);
    await handle.db.transaction(async (t) => {
      await t.execute(sql`select pg_notify('probe_channel', 'committed')`);
    });
    await handle.db
      .transaction(async (t) => {
        await t.execute(sql`select pg_notify('probe_channel', 'rolled back')`);
        throw new Error("no");
      })
      .catch(() => undefined);
    await handle.db.execute(sql`select pg_notify('probe_channel', 'last')`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(heard).toEqual(["plain", "committed", "last"]);
    await stop();
    await handle.db.execute(sql`select pg_notify('probe_channel', 'after unlisten')`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(heard).toEqual(["plain", "committed", "last"]);
  });

  it("fails calls on a closed handle as an unavailable database, and its ping too", async () => {
    const other = await openPglite("memory://", quietLog);
    await other.close();
    await expect(other.ping()).rejects.toThrow(/closed/);
    const err = await guarded(() => other.db.execute(sql`select 1`)).catch((e: unknown) => e);
    expect((err as { kind?: string }).kind).toBe("unavailable");
  });
});
