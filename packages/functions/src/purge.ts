import { createLogger, createPostgresDb, purgeExpired, systemClock, type PurgeOptions, type PurgeResult } from "@authlith/core";
import { Resource } from "sst/resource";
import { envFromLinkedResources, type Env, type LinkedResources } from "./config";

/**
 * The scheduled purge (sst.aws.Cron in sst.config.ts): removes sessions that ended long enough
 * ago and old audit events, in bounded batches. Each run is independent; one that stops early
 * (`complete: false`) is continued by the next.
 */
export async function handler(): Promise<PurgeResult> {
  const log = createLogger({ level: "info", base: { service: "authlith-purge" } });
  const env = databaseEnv();
  if (!env.DATABASE_URL) throw new Error("authlith: DATABASE_URL (or a linked Database) is required");
  const database = createPostgresDb({
    url: env.DATABASE_URL,
    maxConnections: 1,
    prepare: env.DATABASE_PREPARE !== "false",
    ssl: env.DATABASE_SSL === "require" || env.DATABASE_SSL === "prefer" ? env.DATABASE_SSL : false,
    statementTimeoutMs: 15_000,
  });
  try {
    const result = await purgeExpired({ db: database.db, clock: systemClock }, purgeOptions(env));
    log.info("purge.done", { ...result });
    return result;
  } finally {
    await database.close();
  }
}

function databaseEnv(): Env {
  const source = Resource as unknown as Record<string, unknown>;
  const linked: LinkedResources = "Database" in source ? { Database: source.Database as LinkedResources["Database"] } : {};
  return envFromLinkedResources(linked, process.env);
}

/** Optional overrides: AUTHLITH_PURGE_SESSION_RETENTION_SECONDS, AUTHLITH_PURGE_AUDIT_RETENTION_SECONDS. */
export function purgeOptions(env: Env): PurgeOptions {
  const seconds = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === "") return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value <= 0) throw new Error(`authlith: invalid configuration\n  ${name}: must be a positive integer`);
    return value;
  };
  return {
    sessionRetentionSeconds: seconds("AUTHLITH_PURGE_SESSION_RETENTION_SECONDS"),
    auditRetentionSeconds: seconds("AUTHLITH_PURGE_AUDIT_RETENTION_SECONDS"),
  };
}
