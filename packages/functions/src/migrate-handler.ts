import { join } from "node:path";
import { createLogger, migratePostgres } from "@authlith/core";
import { lambdaEnv, parseDatabaseConfig, type Env } from "./config";

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
  await migratePostgres(migrationUrl(lambdaEnv(["Database"])), migrationsFolder);
  const durationMs = Math.round(performance.now() - started);
  log.info("migrations.applied", { durationMs });
  return { ok: true, migrationsFolder, durationMs };
}

/** postgres.js reads `sslmode` from the URL: TLS to RDS (and RDS Proxy), none to a local server. */
export function migrationUrl(env: Env): string {
  const { url: raw, ssl } = parseDatabaseConfig(env);
  const url = new URL(raw);
  if (ssl && !url.searchParams.has("sslmode")) url.searchParams.set("sslmode", ssl === true ? "require" : ssl);
  return url.toString();
}
