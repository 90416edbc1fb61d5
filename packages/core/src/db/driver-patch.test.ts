import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFaultProxy } from "../../../../bench/faults/proxy";
import { hasRealServices, TEST_DATABASE_URL } from "../../test/support";
import { createPostgresDb } from "./client";

// postgres.js 3.4.9 mishandles a connection that closes under a transaction (decision 0006):
// - the transaction's later statements, and its rollback, still go to the connection object. With
//   no socket yet, the deferred write throws from setImmediate and ends the process
//   (porsager/postgres#1154, #1208). Once the object has reconnected for another caller, they run
//   there, outside any transaction, and commit one by one: a partial write.
// - bytes buffered for the closed socket, and a cleared but non-null write timer, carried over to
//   the next socket.
// - a query executed after the socket's 'error' event but before its 'close' was never failed: it
//   waited forever, or, once the connection object reconnected, took an answer meant for another
//   query (the fault suite saw a registered user's look-up come back empty: a 401 for the right
//   password). An error response or row count left by the dead session leaked into the next one.
// patches/postgres+3.4.9.patch fixes all of it; `npm install` applies it (postinstall: patch-package).

const packageDir = dirname(dirname(dirname(createRequire(import.meta.url).resolve("postgres"))));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** postgres.js's error code; drizzle wraps a failed statement's error as its `cause`. */
const codeOf = (e: unknown): string | undefined => {
  const error = e as { code?: string; cause?: { code?: string } };
  return error.code ?? error.cause?.code;
};

describe("the installed postgres.js", () => {
  it.each(["src", "cjs/src"])("%s carries the patch (transactions and reserved connections die with their connection)", async (build) => {
    const index = await readFile(join(packageDir, build, "index.js"), "utf8");
    const connection = await readFile(join(packageDir, build, "connection.js"), "utf8");
    expect(index.match(/if \(lost\)\n\s*return q\.reject\(lost\)/g)).toHaveLength(2);
    expect(connection).toMatch(/function nextWrite\(fn\) \{[\s\S]{0,400}if \(socket === null\) \{/);
    expect(connection.match(/clearImmediate\(nextWriteTimer\)\n\s*chunk = nextWriteTimer = null/g)).toHaveLength(3);
    expect(connection).toMatch(/if \(query \|\| sent\.length\)\n\s*error\(Errors\.connection\('CONNECTION_CLOSED'/);
    expect(connection).toMatch(/results = errorResponse = null\n/);
  });
});

describe.runIf(hasRealServices)("a connection that dies under a transaction (real Postgres)", () => {
  const table = `driver_patch_${randomBytes(4).toString("hex")}`;
  const admin = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);

  beforeAll(async () => {
    await admin.unsafe(`create table ${table} (v text not null)`);
    process.on("uncaughtException", onUncaught);
  });
  afterAll(async () => {
    process.off("uncaughtException", onUncaught);
    await admin.unsafe(`drop table if exists ${table}`);
    await admin.end({ timeout: 2 });
  });

  async function rows(): Promise<string[]> {
    return (await admin.unsafe<{ v: string }[]>(`select v from ${table} order by v`)).map((r) => r.v);
  }

  /**
   * Runs a transaction on a one-connection pool and terminates its backend after the first
   * statement; `meanwhile` runs while the transaction's callback waits, then the callback tries a
   * second statement. Returns how the transaction and that second statement ended.
   */
  async function deadTransaction(label: string, meanwhile: (db: ReturnType<typeof createPostgresDb>["db"]) => Promise<unknown>) {
    const { db, close } = createPostgresDb({ url: TEST_DATABASE_URL!, maxConnections: 1 });
    let second!: (outcome: string) => void;
    const secondOutcome = new Promise<string>((resolve) => (second = resolve));
    try {
      const outcome = await db
        .transaction(async (tx) => {
          await tx.execute(sql.raw(`insert into ${table} values ('${label}: first')`));
          const { pid } = ((await tx.execute(sql`select pg_backend_pid() as pid`)) as unknown as { pid: number }[])[0]!;
          await admin`select pg_terminate_backend(${pid})`;
          await meanwhile(db);
          await sleep(300);
          await tx.execute(sql.raw(`insert into ${table} values ('${label}: second')`)).then(
            () => second("committed"),
            (e: unknown) => second(`failed: ${codeOf(e)}`),
          );
        })
        .then(
          () => "committed",
          (e: unknown) => `failed: ${codeOf(e)}`,
        );
      return { outcome, second: await secondOutcome };
    } finally {
      await close();
    }
  }

  it("fails the statements after the connection died, though the connection reconnected for another caller", async () => {
    const result = await deadTransaction("reconnected", async (db) => {
      await sleep(50);
      return db.execute(sql`select 1 as one`); // takes the pool's only connection object: it reconnects
    });
    expect(result).toEqual({ outcome: "failed: CONNECTION_CLOSED", second: "failed: CONNECTION_CLOSED" });
    // Unpatched, the second insert ran on the new session in autocommit: 'reconnected: second' stayed.
    expect(await rows()).not.toContain("reconnected: second");
    expect(await rows()).not.toContain("reconnected: first");
    expect(uncaught).toEqual([]);
  });

  it("fails them without ending the process when nothing has reconnected the connection", async () => {
    const result = await deadTransaction("closed", async () => undefined);
    expect(result).toEqual({ outcome: "failed: CONNECTION_CLOSED", second: "failed: CONNECTION_CLOSED" });
    expect(await rows()).not.toContain("closed: second");
    // Unpatched: TypeError "Cannot read properties of null (reading 'write')" from nextWrite.
    expect(uncaught).toEqual([]);
  });

  it("fails a reserved connection's statements once its session has died", async () => {
    const client = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
    try {
      const reserved = await client.reserve();
      const { pid } = (await reserved<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!;
      await admin`select pg_terminate_backend(${pid})`;
      await sleep(100);
      const error = await reserved.unsafe(`insert into ${table} values ('reserved')`).then(
        () => null,
        (e: { code?: string }) => e.code,
      );
      expect(error).toBe("CONNECTION_CLOSED");
      await sleep(50);
      expect(await rows()).not.toContain("reserved");
      expect(uncaught).toEqual([]);
      // The pool itself recovers: a fresh statement gets a fresh session.
      reserved.release();
      expect(await client`select 1 as one`).toEqual([{ one: 1 }]);
    } finally {
      await client.end({ timeout: 2 });
    }
  });

  it("fails a query sent between the socket's error and its close, and gives it no other query's answer", async () => {
    // The fault suite's TCP proxy in front of Postgres: it resets (RST) every connection, as a network can.
    const target = new URL(TEST_DATABASE_URL!);
    const proxy = await startFaultProxy({ host: target.hostname, port: Number(target.port || 5432) });
    target.host = `127.0.0.1:${proxy.port}`;
    const client = postgres(target.toString(), { max: 1, onnotice: () => {} });
    try {
      await client`select 1`;
      // Rows that each fill the server's send buffer, then a pause: the reset lands mid-result.
      const cut = client`select repeat('x', 20000) as v from generate_series(1, 5) union all select pg_sleep(2)::text`.then(
        () => "answered",
        (e: { code?: string }) => e.code,
      );
      setTimeout(proxy.resetAll, 300);
      expect(await cut).toBe("ECONNRESET");
      // The same turn as the failure: the socket has errored, its 'close' has not come yet.
      const between = client`select 42 as answer`.then(
        (rows) => JSON.stringify(rows),
        (e: { code?: string }) => e.code,
      );
      await sleep(200);
      const next = client`select 1 as one`.then((rows) => JSON.stringify(rows));
      // Unpatched: `between` never settles (or settles with another query's rows).
      expect(await Promise.race([between, sleep(3000).then(() => "still waiting")])).toBe("CONNECTION_CLOSED");
      expect(await next).toBe(JSON.stringify([{ one: 1 }]));
      expect(uncaught).toEqual([]);
    } finally {
      await client.end({ timeout: 2 });
      await proxy.close();
    }
  });

  it("does not fail the next session's first query with the error that ended the last one", async () => {
    const client = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
    try {
      const { pid } = (await client<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!;
      const ended = client`select pg_sleep(3)`.then(
        () => "answered",
        (e: { code?: string }) => e.code,
      );
      await sleep(200);
      await admin`select pg_terminate_backend(${pid})`;
      expect(await ended).toBe("CONNECTION_CLOSED");
      await sleep(200);
      // Unpatched: rejected with 57P01 ("terminating connection due to administrator command").
      expect(await client`select 1 as one`).toEqual([{ one: 1 }]);
    } finally {
      await client.end({ timeout: 2 });
    }
  });
});
