import { join } from "node:path";
import { createLogger, ensureAppRole, migratePostgres, waitForPostgres, type PostgresSsl } from "@authlith/core";
import { lambdaEnv, linkedResources, parseDatabaseConfig, type Env } from "./config";

/**
 * The deploy-time migrator. `sst deploy` invokes this function inside the VPC after every deploy
 * of its code (see sst.config.ts), so the schema is current before the new API code serves.
 * Migrations ship beside the bundle (`copyFiles`: drizzle/ at the package root). Throwing fails
 * the invocation, and with it the deploy.
 */
export async function handler(): Promise<{ ok: true; migrationsFolder: string; durationMs: number }> {
  const log = createLogger({ level: "info", base: { service: "authlith-migrate" } });
  const started = performance.now();
  const migrationsFolder =
    process.env.AUTHLITH_MIGRATIONS_FOLDER ?? join(process.env.LAMBDA_TASK_ROOT ?? process.cwd(), "drizzle");
  const { url, ssl } = migrationConnection(lambdaEnv(["Database"]));
  // On a fresh account the database (or the proxy's target) can still be coming up: wait for it,
  // within the function's 5-minute timeout, rather than fail the first deploy.
  const waited = await waitForPostgres(url, {
    deadlineMs: WAIT_FOR_DATABASE_MS,
    ssl,
    onRetry: (event) => log.warn("database.waiting", event),
  });
  await migratePostgres(url, migrationsFolder, { ssl });
  // The role the service connects as: created or updated after every migration, so it is granted
  // the tables the migrations made (it can read and write them, and change nothing else).
  const appRole = linkedResources(["DatabaseApp"]).DatabaseApp;
  if (appRole) {
    await ensureAppRole(url, { name: appRole.username, password: appRole.password }, { ssl });
    log.info("database.app_role", { role: appRole.username });
  }
  const durationMs = Math.round(performance.now() - started);
  log.info("migrations.applied", { durationMs, attempts: waited.attempts, waitedMs: waited.waitedMs });
  return { ok: true, migrationsFolder, durationMs };
}

/** How long the migrator waits for the database: four minutes, inside its five-minute timeout. */
export const WAIT_FOR_DATABASE_MS = 4 * 60 * 1000;

/**
 * The migrator's connection: to the database instance itself when `AUTHLITH_MIGRATION_HOST`
 * names it (sst.config.ts sets it), not through RDS Proxy (DDL in a migration would pin proxy
 * sessions, and the proxy's target may not be registered yet), with the
 * same TLS as the service: verified against the RDS CA bundle in AWS, none to a local server.
 */
export function migrationConnection(env: Env): { url: string; ssl: PostgresSsl } {
  const { url: raw, ssl = false } = parseDatabaseConfig(env);
  const url = new URL(raw);
  if (env.AUTHLITH_MIGRATION_HOST) url.hostname = env.AUTHLITH_MIGRATION_HOST;
  return { url: url.toString(), ssl };
}
