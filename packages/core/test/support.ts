import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { Redis } from "ioredis";
import { createPostgresDb, type Db } from "../src/db/client";
import { migratePostgres } from "../src/db/migrate";
import { createPgliteDb } from "../src/db/pglite";
import { createMemoryStore } from "../src/store/memory";
import { createRedisStore } from "../src/store/redis";
import type { EphemeralStore } from "../src/store/types";
import type { Clock } from "../src/clock";
import { generateSigningKey, type SigningAlgorithm } from "../src/keys";

export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../../drizzle", import.meta.url));

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL;
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL;
export const hasRealServices = Boolean(TEST_DATABASE_URL && TEST_REDIS_URL);

// In CI the real services are part of the contract: their absence is a failure, not a skip.
if (process.env.CI && !hasRealServices) {
  throw new Error("CI must set TEST_DATABASE_URL and TEST_REDIS_URL so the real-service suites run");
}

/** A clock tests move by hand. Starts at the real time so Redis TTLs and JWT times agree. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
  set(ms: number): void;
}

export function manualClock(start = Date.now()): ManualClock {
  let now = start;
  return { now: () => now, advance: (ms) => void (now += ms), set: (ms) => void (now = ms) };
}

export interface BackendInstance {
  db: { db: Db; close(): Promise<void> };
  store: EphemeralStore;
  /** For tests that talk to the database or Redis directly. */
  sql?: postgres.Sql;
  redis?: Redis;
  /** The Redis key prefix of this instance's store. */
  prefix?: string;
  cleanup(): Promise<void>;
}

export interface Backend {
  name: string;
  real: boolean;
  setup(options?: { clock?: Clock }): Promise<BackendInstance>;
}

export const pgliteBackend: Backend = {
  name: "pglite + in-process store",
  real: false,
  async setup(options = {}) {
    const pglite = await createPgliteDb({ migrationsFolder: MIGRATIONS_FOLDER });
    const store = createMemoryStore({ clock: options.clock });
    return {
      db: { db: pglite.db, close: async () => {} },
      store,
      cleanup: async () => {
        await store.close();
        await pglite.close();
      },
    };
  },
};

/** A fresh database (migrated) on the test server; dropped by the returned function. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
  const name = `authlith_t_${randomBytes(6).toString("hex")}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(TEST_DATABASE_URL!);
  url.pathname = `/${name}`;
  await migratePostgres(url.toString(), MIGRATIONS_FOLDER);
  return {
    url: url.toString(),
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end({ timeout: 5 });
    },
  };
}

export { deleteRedisPrefix } from "./redis-keys";
import { deleteRedisPrefix } from "./redis-keys";

export const realBackend: Backend = makeRealBackend(() => TEST_REDIS_URL!);

/** Real Postgres (a fresh database) and a Redis at the URL `redisUrl()` gives at setup time. */
export function makeRealBackend(redisUrl: () => string): Backend {
  return {
    name: "postgres + redis",
    real: true,
    async setup() {
      const database = await createTestDatabase();
      const prefix = `authlith-test:${randomBytes(6).toString("hex")}:`;
      const db = createPostgresDb({ url: database.url, maxConnections: 4 });
      const store = createRedisStore({ url: redisUrl(), keyPrefix: prefix });
      const sql = postgres(database.url, { max: 2, onnotice: () => {} });
      const redis = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
      return {
        db,
        store,
        sql,
        redis,
        prefix,
        async cleanup() {
          await deleteRedisPrefix(redis, prefix);
          redis.disconnect();
          await store.close();
          await sql.end({ timeout: 5 });
          await db.close();
          await database.drop();
        },
      };
    },
  };
}

/** PGlite always; real Postgres and Redis as well when TEST_DATABASE_URL and TEST_REDIS_URL are set. */
export const backends: Backend[] = hasRealServices ? [pgliteBackend, realBackend] : [pgliteBackend];

const keyCache = new Map<SigningAlgorithm, Promise<{ keys: unknown[] }>>();

/** A signing key set generated at test time (never committed). */
export function testSigningKeys(alg: SigningAlgorithm = "ES256"): Promise<{ keys: unknown[] }> {
  let keys = keyCache.get(alg);
  if (!keys) {
    keys = generateSigningKey(alg).then((key) => ({ keys: [key] }));
    keyCache.set(alg, keys);
  }
  return keys;
}

export const testHmacSecret = (): string => randomBytes(32).toString("base64url");
