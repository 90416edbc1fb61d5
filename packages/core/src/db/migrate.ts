import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import type { PostgresSsl } from "./client";

/** Applies the SQL migrations in `migrationsFolder` to a Postgres server, on one short-lived connection. */
export async function migratePostgres(url: string, migrationsFolder: string, options: { ssl?: PostgresSsl } = {}): Promise<void> {
  const client = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10, ...(options.ssl ? { ssl: options.ssl } : {}) });
  try {
    await migrate(drizzle({ client }), { migrationsFolder });
  } finally {
    await client.end({ timeout: 5 });
  }
}
