import postgres from "postgres";
import type { PostgresSsl } from "./client";

/**
 * The role the service connects as (docs/security.md §38): it can read and write the tables and
 * nothing else: no DDL, no TRUNCATE, no other schema. The migrator, connected as the database's
 * owner, creates or updates it after every migration, so tables added later are covered too.
 */
export const APP_ROLE = "authlith_app";

/** Role passwords go into a statement (Postgres takes no parameters there): only these characters. */
const SAFE_PASSWORD = /^[A-Za-z0-9_-]{24,128}$/;
const SAFE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export async function ensureAppRole(
  url: string,
  role: { name?: string; password: string },
  options: { ssl?: PostgresSsl } = {},
): Promise<void> {
  const name = role.name ?? APP_ROLE;
  if (!SAFE_NAME.test(name)) throw new Error("app role: invalid name");
  if (!SAFE_PASSWORD.test(role.password)) throw new Error("app role: the password must be 24–128 characters of A–Z, a–z, 0–9, _ and -");
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10, ...(options.ssl ? { ssl: options.ssl } : {}) });
  try {
    const [{ database }] = (await sql`select current_database() as database`) as unknown as [{ database: string }];
    await sql.begin(async (tx) => {
      const [exists] = await tx`select 1 from pg_roles where rolname = ${name}`;
      await tx.unsafe(`${exists ? "ALTER" : "CREATE"} ROLE ${name} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '${role.password}'`);
      await tx.unsafe(`GRANT CONNECT ON DATABASE "${database.replace(/"/g, '""')}" TO ${name}`);
      await tx.unsafe(`REVOKE CREATE ON SCHEMA public FROM ${name}`);
      await tx.unsafe(`GRANT USAGE ON SCHEMA public TO ${name}`);
      await tx.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${name}`);
      await tx.unsafe(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${name}`);
      await tx.unsafe(`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${name}`);
      await tx.unsafe(`ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${name}`);
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
}
