import type { SQL } from "drizzle-orm";
import { PgDialect, type PgDatabase, type PgQueryResultHKT } from "drizzle-orm/pg-core";
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
  /** Upper bounds on any statement, lock wait and idle transaction (docs/security.md §33). */
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
  idleInTransactionTimeoutMs?: number;
  /** Named prepared statements; turn off behind a transaction-pooling proxy that pins on them. */
  prepare?: boolean;
  /**
   * `false`: no TLS. `"require"`/`"prefer"`: TLS without verifying the server (only for
   * tests). An object: verified TLS, the server's certificate checked against `ca` and its name
   * against the host (what every stage that talks to RDS uses: config.ts, docs/security.md §37).
   */
  ssl?: PostgresSsl;
}

export type PostgresSsl = boolean | "require" | "prefer" | { ca: string | string[]; rejectUnauthorized: true };

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

const dialect = new PgDialect();

interface PostgresJsClient {
  unsafe(query: string, params: unknown[], options: { prepare: boolean }): Promise<unknown[]>;
}
interface PgliteClient {
  query(query: string, params: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * Runs a hand-written statement and returns its rows, as a named prepared statement on postgres.js.
 *
 * Why not `db.execute()`: drizzle runs every statement it did not name as an unnamed statement,
 * and postgres.js sends an unnamed statement that has parameters as Parse/Describe, waits, then
 * Bind/Execute: two round trips each time. A prepared statement is one round trip after its
 * first use (postgres.js caches it per connection by its text). The hot paths (sign-in, refresh,
 * revocation) go through here. With `prepare: false` on the client (behind a pooler that cannot
 * keep prepared statements) postgres.js falls back to unnamed statements by itself.
 */
export async function queryRows<T>(db: Db, query: SQL): Promise<T[]> {
  const { sql: text, params } = dialect.sqlToQuery(query);
  const client = db.$client as Partial<PostgresJsClient & PgliteClient>;
  if (typeof client.unsafe === "function") return (await client.unsafe(text, params, { prepare: true })) as T[];
  return (await (client as PgliteClient).query(text, params)).rows as T[];
}

/** Integers from raw queries: postgres.js returns int8 as a string, PGlite as a number. */
export const toNumber = (value: unknown): number => (typeof value === "number" ? value : Number(value));

const ROLLED_BACK = Symbol("rolled back");

interface PostgresJsTransactions {
  begin<T>(run: (tx: PostgresJsClient) => Promise<T>): Promise<T>;
}
interface PgliteTransactions {
  transaction<T>(run: (tx: PgliteClient & { rollback(): Promise<void> }) => Promise<T>): Promise<T>;
}

/**
 * Runs `query` in a transaction now and commits it only if `decision` resolves to true, else
 * rolls it back; resolves to whether it committed. For a write that waits on something slow it
 * does not depend on (a password check on the thread pool): the statement's work (index updates,
 * row locks, the round trip) overlaps the wait, and only COMMIT follows it. Nothing is visible to
 * anyone before the commit, and a rollback leaves no trace. If `decision` rejects, the transaction
 * rolls back and the rejection propagates.
 *
 * The transaction holds one of the container's few connections (PGlite has one) until the
 * decision settles: `decision` must never wait on a query itself, or it could wait forever.
 */
export async function writeIf(db: Db, query: SQL, decision: Promise<boolean>): Promise<boolean> {
  const { sql: text, params } = dialect.sqlToQuery(query);
  const client = db.$client as Partial<PostgresJsClient & PostgresJsTransactions & PgliteTransactions>;
  try {
    if (typeof client.begin === "function") {
      await client.begin(async (tx) => {
        await tx.unsafe(text, params, { prepare: true });
        if (!(await decision)) throw ROLLED_BACK;
      });
    } else {
      await (client as PgliteTransactions).transaction(async (tx) => {
        await tx.query(text, params);
        if (!(await decision)) throw ROLLED_BACK;
      });
    }
    return true;
  } catch (error) {
    if (error === ROLLED_BACK) return false;
    throw error;
  } finally {
    // Whatever happened to the transaction, the decision is awaited, so no rejection goes unseen.
    await decision.catch(() => {});
  }
}
