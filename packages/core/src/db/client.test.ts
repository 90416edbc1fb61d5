import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backends, type BackendInstance } from "../../test/support";
import { queryRows, writeIf } from "./client";

describe.each(backends)("writeIf on $name", (backend) => {
  let instance: BackendInstance;
  beforeAll(async () => {
    instance = await backend.setup();
  });
  afterAll(async () => {
    await instance.cleanup();
  });

  const insertUser = (id: string) =>
    sql`INSERT INTO users (id, email, email_canonical, password_hash, created_at, updated_at)
      VALUES (${id}::uuid, ${`${id}@example.com`}::text, ${`${id}@example.com`}::text, 'x', now(), now())`;
  const exists = async (id: string) =>
    (await queryRows<{ n: number }>(instance.db.db, sql`SELECT count(*)::int AS n FROM users WHERE id = ${id}::uuid`))[0]!.n === 1;
  const later = <T>(value: T, ms = 30) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

  it("commits when the decision is true, and the row is invisible until then", async () => {
    const id = randomUUID();
    let seenBeforeDecision: boolean | null = null;
    // The decision looks from another connection (real Postgres) while the write is pending.
    const decision = later(null, 40).then(async () => {
      if (backend.real) seenBeforeDecision = (await instance.sql!`SELECT count(*)::int AS n FROM users WHERE id = ${id}`)[0]!.n === 1;
      return true;
    });
    expect(await writeIf(instance.db.db, insertUser(id), decision)).toBe(true);
    expect(await exists(id)).toBe(true);
    if (backend.real) expect(seenBeforeDecision).toBe(false);
  });

  it("rolls back without a trace when the decision is false", async () => {
    const id = randomUUID();
    expect(await writeIf(instance.db.db, insertUser(id), later(false))).toBe(false);
    expect(await exists(id)).toBe(false);
  });

  it("rolls back and rethrows when the decision rejects", async () => {
    const id = randomUUID();
    await expect(writeIf(instance.db.db, insertUser(id), later(null).then(() => Promise.reject(new Error("verifier failed"))))).rejects.toThrow(
      "verifier failed",
    );
    expect(await exists(id)).toBe(false);
  });

  it("throws the statement's error, but only once the decision has settled", async () => {
    const id = randomUUID();
    await writeIf(instance.db.db, insertUser(id), Promise.resolve(true));
    let settled = false;
    const decision = later(true, 50).then((value) => {
      settled = true;
      return value;
    });
    // The same id again: a unique violation, long before the decision.
    await expect(writeIf(instance.db.db, insertUser(id), decision)).rejects.toThrow();
    expect(settled).toBe(true);
  });

  it("leaves the connection usable after a rollback", async () => {
    for (let i = 0; i < 5; i++) await writeIf(instance.db.db, insertUser(randomUUID()), Promise.resolve(i % 2 === 0));
    const id = randomUUID();
    expect(await writeIf(instance.db.db, insertUser(id), Promise.resolve(true))).toBe(true);
    expect(await exists(id)).toBe(true);
  });
});
