import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import { migrate } from "drizzle-orm/pglite/migrator";
import type { Db } from "./client";
import * as schema from "./schema";

/**
 * The embedded Postgres for laptops and the default test run. Never imported by the Lambda
 * handler, so it never reaches the bundle. `dataDir` undefined means in memory.
 */
export async function createPgliteDb(options: { dataDir?: string; migrationsFolder: string }) {
  const client = new PGlite(options.dataDir);
  const db = drizzle({ client, schema }) as unknown as Db;
  await migrate(drizzle({ client }), { migrationsFolder: options.migrationsFolder });
  return { db, client, close: () => client.close() };
}
