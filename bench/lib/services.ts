import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { Redis } from "ioredis";
import { migratePostgres } from "@authlith/core";
import { fileURLToPath } from "node:url";
import { deleteRedisPrefix as deleteKeys } from "../../packages/core/test/redis-keys";

export const MIGRATIONS = fileURLToPath(new URL("../../drizzle", import.meta.url));
export const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";

/** Fails with a message that says exactly what the benchmark needs. */
export async function requireServices(): Promise<{ postgresVersion: string; redisVersion: string }> {
  const problems: string[] = [];
  let postgresVersion = "";
  let redisVersion = "";
  const sql = postgres(DATABASE_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    postgresVersion = (await sql`show server_version`)[0]!.server_version as string;
    const [{ can }] = (await sql`select rolcreatedb or rolsuper as can from pg_roles where rolname = current_user`) as unknown as [{ can: boolean }];
    if (!can) problems.push(`the Postgres role in ${redact(DATABASE_URL)} cannot create databases`);
  } catch (error) {
    problems.push(`Postgres is not reachable at ${redact(DATABASE_URL)} (${(error as Error).message})`);
  } finally {
    await sql.end({ timeout: 1 });
  }
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on("error", () => {});
  try {
    await redis.connect();
    redisVersion = /redis_version:(\S+)/.exec(await redis.info("server"))?.[1] ?? "?";
  } catch (error) {
    problems.push(`Redis is not reachable at ${redact(REDIS_URL)} (${(error as Error).message})`);
  } finally {
    redis.disconnect();
  }
  if (problems.length) {
    throw new Error(
      [
        "npm run bench needs a Postgres server (role allowed to create databases) and a Redis server:",
        ...problems.map((p) => `  - ${p}`),
        "Set BENCH_DATABASE_URL and BENCH_REDIS_URL to point at them (defaults: postgres://postgres@127.0.0.1:5432/postgres, redis://127.0.0.1:6379).",
      ].join("\n"),
    );
  }
  return { postgresVersion, redisVersion };
}

const redact = (url: string) => url.replace(/\/\/[^@/]*@/, "//***@");

/** A fresh database for one part of the run, migrated unless `migrate` is false; dropped by `drop`. */
export async function createBenchDatabase(label: string, options: { migrate?: boolean } = {}) {
  const admin = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  const name = `authlith_bench_${label}_${randomBytes(4).toString("hex")}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  if (options.migrate !== false) await migratePostgres(url.toString(), MIGRATIONS);
  return {
    name,
    url: url.toString(),
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end({ timeout: 5 });
    },
  };
}

export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  await deleteKeys(redis, prefix);
  redis.disconnect();
}
