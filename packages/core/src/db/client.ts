import type { SQL } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import * as schema from "./schema";

/** The database handle core works with: postgres.js in AWS, PGlite on a laptop; the same queries. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema> & { $client: unknown };

export interface PostgresOptions {
  url: string;
  /** Connections per container. A Lambda serves one request at a time: keep this small. */
  maxConnections?: number;
  connectTimeoutSeconds?: number;
  /** Upper bounds on any statement, lock wait and idle transaction (SECURITY 33). */
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
  idleInTransactionTimeoutMs?: number;
  /** Named prepared statements; turn off behind a transaction-pooling proxy that pins on them. */
  prepare?: boolean;
  ssl?: boolean | "require" | "prefer";
}

export function createPostgresDb(options: PostgresOptions): { db: Db; close: () => Promise<void> } {
  const client = postgres(options.url, {
    max: options.maxConnections ?? 2,
    connect_timeout: options.connectTimeoutSeconds ?? 3,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    prepare: options.prepare ?? true,
    ssl: options.ssl,
    onnotice: () => {},
    connection: {
      application_name: "authlith",
      statement_timeout: options.statementTimeoutMs ?? 5000,
      lock_timeout: options.lockTimeoutMs ?? 2000,
      idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 5000,
    },
  });
  const db = drizzle({ client, schema }) as unknown as Db;
  return { db, close: () => client.end({ timeout: 2 }) };
}

/** Rows of a raw `db.execute()`: postgres.js returns an array, PGlite an object with `rows`. */
export async function queryRows<T>(db: Db, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown;
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

/** Integers from raw queries: postgres.js returns int8 as a string, PGlite as a number. */
export const toNumber = (value: unknown): number => (typeof value === "number" ? value : Number(value));
