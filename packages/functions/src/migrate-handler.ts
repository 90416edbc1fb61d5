import { join } from "node:path";
import { createLogger, migratePostgres } from "@authlith/core";
import { Resource } from "sst/resource";
import { envFromLinkedResources, type Env, type LinkedResources } from "./config";

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
  await migratePostgres(migrationUrl(databaseEnv()), migrationsFolder);
  const durationMs = Math.round(performance.now() - started);
  log.info("migrations.applied", { durationMs });
  return { ok: true, migrationsFolder, durationMs };
}

/** The environment with DATABASE_URL (and DATABASE_SSL) from the linked Database, when linked. */
function databaseEnv(): Env {
  const source = Resource as unknown as Record<string, unknown>;
  const linked: LinkedResources = "Database" in source ? { Database: source.Database as LinkedResources["Database"] } : {};
  return envFromLinkedResources(linked, process.env);
}

/** postgres.js reads `sslmode` from the URL: TLS to RDS (and RDS Proxy), none to a local server. */
export function migrationUrl(env: Env): string {
  if (!env.DATABASE_URL) throw new Error("authlith: DATABASE_URL (or a linked Database) is required");
  const url = new URL(env.DATABASE_URL);
  const ssl = env.DATABASE_SSL ?? "disable";
  if (ssl !== "disable" && !url.searchParams.has("sslmode")) url.searchParams.set("sslmode", ssl);
  return url.toString();
}
