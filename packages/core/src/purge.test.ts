import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { backends, manualClock, type BackendInstance, type ManualClock } from "../test/support";
import { auditEvents } from "./db/audit.sql";
import { sessions } from "./db/sessions.sql";
import { users } from "./db/users.sql";
import { purgeExpired } from "./purge";

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

describe.each(backends)("purgeExpired on $name", (backend) => {
  let instance: BackendInstance;
  let clock: ManualClock;
  let userId: string;

  // One database per backend (migrations take seconds on PGlite); every test starts from empty tables.
  beforeAll(async () => {
    clock = manualClock();
    instance = await backend.setup({ clock });
  });
  afterAll(async () => {
    await instance.cleanup();
  });
  beforeEach(async () => {
    clock.set(Date.UTC(2030, 0, 15));
    await instance.db.db.delete(auditEvents);
    await instance.db.db.delete(sessions);
    await instance.db.db.delete(users);
    userId = randomUUID();
    const at = new Date(clock.now() - 60 * DAY);
    await instance.db.db.insert(users).values({
      id: userId,
      email: `purge-${userId}@example.com`,
      emailCanonical: `purge-${userId}@example.com`,
      passwordHash: "$argon2id$placeholder",
      createdAt: at,
      updatedAt: at,
    });
  });

  /** A session whose times are given relative to the clock's now, in milliseconds. */
  async function session(times: { idle: number; absolute: number; revoked?: number }): Promise<string> {
    const id = randomUUID();
    const now = clock.now();
    await instance.db.db.insert(sessions).values({
      id,
      userId,
      createdAt: new Date(now - 40 * DAY),
      lastUsedAt: new Date(now - 40 * DAY),
      idleExpiresAt: new Date(now + times.idle),
      absoluteExpiresAt: new Date(now + times.absolute),
      revokedAt: times.revoked === undefined ? null : new Date(now + times.revoked),
      refreshHash: new Uint8Array(32),
    });
    return id;
  }

  async function audit(ageMs: number): Promise<string> {
    const id = randomUUID();
    await instance.db.db.insert(auditEvents).values({ id, type: "test", userId, createdAt: new Date(clock.now() - ageMs) });
    return id;
  }

  const remainingSessions = async () => (await instance.db.db.select({ id: sessions.id }).from(sessions)).map((r) => r.id).sort();
  const remainingAudit = async () => (await instance.db.db.select({ id: auditEvents.id }).from(auditEvents)).map((r) => r.id).sort();

  it("deletes sessions that ended before the retention window and keeps every other", async () => {
    const active = await session({ idle: DAY, absolute: 20 * DAY });
    const justIdle = await session({ idle: -HOUR, absolute: 20 * DAY });
    const longIdle = await session({ idle: -8 * DAY, absolute: 20 * DAY });
    const longAbsolute = await session({ idle: -8 * DAY, absolute: -8 * DAY });
    const justRevoked = await session({ idle: DAY, absolute: 20 * DAY, revoked: -2 * HOUR });
    const longRevoked = await session({ idle: DAY, absolute: 20 * DAY, revoked: -8 * DAY });

    const result = await purgeExpired({ db: instance.db.db, clock }, { sessionRetentionSeconds: 7 * 24 * 3600 });

    expect(result).toMatchObject({ sessions: 3, complete: true });
    expect(await remainingSessions()).toEqual([active, justIdle, justRevoked].sort());
    expect(await remainingSessions()).not.toContain(longIdle);
    expect(await remainingSessions()).not.toContain(longAbsolute);
    expect(await remainingSessions()).not.toContain(longRevoked);
  });

  it("deletes audit events older than their retention, never users", async () => {
    const recent = await audit(10 * DAY);
    await audit(400 * DAY);
    await audit(366 * DAY);

    // Options left undefined (as the purge Lambda passes them when unset) mean the defaults.
    const result = await purgeExpired({ db: instance.db.db, clock }, { auditRetentionSeconds: undefined });

    expect(result.auditEvents).toBe(2);
    expect(await remainingAudit()).toEqual([recent]);
    expect(await instance.db.db.select({ id: users.id }).from(users)).toEqual([{ id: userId }]);
  });

  it("works in bounded batches and says when rows are left for the next run", async () => {
    for (let i = 0; i < 5; i++) await session({ idle: -30 * DAY, absolute: -30 * DAY });

    const first = await purgeExpired({ db: instance.db.db, clock }, { batchSize: 2, maxBatches: 2 });
    expect(first).toMatchObject({ sessions: 4, complete: false });
    expect(await remainingSessions()).toHaveLength(1);

    const second = await purgeExpired({ db: instance.db.db, clock }, { batchSize: 2, maxBatches: 2 });
    expect(second).toMatchObject({ sessions: 1, complete: true });
    expect(await remainingSessions()).toHaveLength(0);
  });

  it("moves with the clock: what is kept today goes once it leaves the window", async () => {
    const id = await session({ idle: -HOUR, absolute: 20 * DAY });
    expect((await purgeExpired({ db: instance.db.db, clock })).sessions).toBe(0);
    clock.advance(7 * DAY);
    expect((await purgeExpired({ db: instance.db.db, clock })).sessions).toBe(1);
    expect(await remainingSessions()).not.toContain(id);
  });

  it("refuses a session retention shorter than the longest access token", async () => {
    await expect(purgeExpired({ db: instance.db.db, clock }, { sessionRetentionSeconds: 60 })).rejects.toThrow(/at least 3600/);
  });
});
