import { createMemoryStore, createPostgresDb, ensureAppRole } from "@authlith/core";
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, hasRealServices, TEST_DATABASE_URL, type Backend } from "../../core/test/support";
import { data, PASSWORD, startTestApp, tokenTransport, uniqueEmail } from "./support/app";

/**
 * The role the service connects as (docs/security.md §38): the migrator (the database's owner)
 * creates it; it reads and writes the tables and can change nothing else. Roles belong to the
 * whole server, so each run makes one of its own name and drops it afterwards.
 */
describe.runIf(hasRealServices)("the service's database role", () => {
  const name = `authlith_app_${randomBytes(4).toString("hex")}`;
  const password = randomBytes(24).toString("base64url");
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let appUrl: string;
  let app: postgres.Sql;

  beforeAll(async () => {
    database = await createTestDatabase();
    await ensureAppRole(database.url, { name, password });
    // Again, as every deploy does: idempotent, and it sets the password it is given.
    await ensureAppRole(database.url, { name, password });
    const url = new URL(database.url);
    url.username = name;
    url.password = password;
    appUrl = url.toString();
    app = postgres(appUrl, { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    await app?.end({ timeout: 5 });
    await database?.drop();
    const admin = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
    await admin.unsafe(`DROP ROLE IF EXISTS ${name}`);
    await admin.end({ timeout: 5 });
  });

  const refused = (statement: Promise<unknown>) => statement.then(() => "allowed", (error: { code?: string }) => error.code);

  it("reads and writes the tables", async () => {
    const id = "01900000-0000-7000-8000-00000000aaaa";
    await app`insert into users (id, email, email_canonical, password_hash, created_at, updated_at)
              values (${id}, 'role@example.com', 'role@example.com', 'x', now(), now())`;
    await app`update users set name = 'Role' where id = ${id}`;
    expect(await app`select name from users where id = ${id}`).toEqual([{ name: "Role" }]);
    await app`delete from users where id = ${id}`;
  });

  it("cannot change the schema, empty a table, or touch the migrations' bookkeeping", async () => {
    expect(await refused(app`create table stolen (x int)`)).toBe("42501");
    expect(await refused(app`drop table users`)).toBe("42501");
    expect(await refused(app`alter table users add column x int`)).toBe("42501");
    expect(await refused(app`truncate users`)).toBe("42501");
    expect(await refused(app`create role another login`)).toBe("42501");
    expect(await refused(app`select * from drizzle.__drizzle_migrations`)).toBe("42501");
  });

  it("is granted tables added by later migrations", async () => {
    const owner = postgres(database.url, { max: 1, onnotice: () => {} });
    try {
      await owner`create table later_table (id int primary key)`;
    } finally {
      await owner.end({ timeout: 5 });
    }
    await app`insert into later_table values (1)`;
    expect(await app`select id from later_table`).toEqual([{ id: 1 }]);
  });

  it("is enough for the whole service: sign up, sign in, refresh, sign out", async () => {
    const backend: Backend = {
      name: "postgres as the app role",
      real: true,
      async setup(options = {}) {
        const db = createPostgresDb({ url: appUrl, maxConnections: 2 });
        const store = createMemoryStore({ clock: options.clock });
        return { db, store, cleanup: async () => void (await Promise.all([db.close(), store.close()])) };
      },
    };
    const service = await startTestApp(backend);
    try {
      const client = service.client({ origin: null });
      const email = uniqueEmail("role");
      const signedUp = data(await client.mutate("auth.register", { email, password: PASSWORD }, tokenTransport));
      data(await client.mutate("auth.login", { email, password: PASSWORD }, tokenTransport));
      data(await client.mutate("auth.refresh", { refreshToken: signedUp.refreshToken }));
      data(await client.mutate("auth.logoutAll", {}, { authorization: `Bearer ${signedUp.accessToken}` }));
    } finally {
      await service.close();
    }
  });

  it("refuses a password that could not be embedded safely", async () => {
    await expect(ensureAppRole(database.url, { name, password: "short" })).rejects.toThrow(/24–128 characters/);
    await expect(ensureAppRole(database.url, { name, password: `${"a".repeat(30)}';drop table users;--` })).rejects.toThrow(/24–128 characters/);
  });
});
