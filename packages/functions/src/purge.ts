import { createLogger, createPostgresDb, purgeExpired, systemClock, type PurgeOptions, type PurgeResult } from "@authlith/core";
import { lambdaEnv, parseDatabaseConfig, parsePurgeConfig, type Env } from "./config";

/**
 * The scheduled purge (sst.aws.Cron in sst.config.ts): removes sessions that ended long enough
 * ago and old audit events, in bounded batches. Each run is independent; one that stops early
 * (`complete: false`) is continued by the next.
 */
export async function handler(): Promise<PurgeResult> {
  const log = createLogger({ level: "info", base: { service: "authlith-purge" } });
  const env = lambdaEnv(["Database", "DatabaseApp"]);
  const options = purgeOptions(env);
  const database = createPostgresDb({ ...parseDatabaseConfig(env), maxConnections: 1, statementTimeoutMs: 15_000 });
  try {
    const result = await purgeExpired({ db: database.db, clock: systemClock }, options);
    log.info("purge.done", { ...result });
    return result;
  } finally {
    await database.close();
  }
}

/** Optional overrides: AUTHLITH_PURGE_SESSION_RETENTION_SECONDS, AUTHLITH_PURGE_AUDIT_RETENTION_SECONDS. */
export function purgeOptions(env: Env): PurgeOptions {
  return parsePurgeConfig(env);
}
