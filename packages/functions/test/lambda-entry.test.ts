import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createTestDatabase, deleteRedisPrefix, hasRealServices, TEST_REDIS_URL, testHmacSecret, testSigningKeys } from "../../core/test/support";
import { Redis } from "ioredis";
import postgres from "postgres";
import { PASSWORD, TestClient, tokenTransport, uniqueEmail, data } from "./support/app";

/**
 * The deployed entry point: configuration from SST's linked resources (as `sst dev` and a deployed
 * Lambda provide them, SST_RESOURCE_<Name> variables), clients built once per container.
 */
const saved = { ...process.env };
// sst/resource is loaded once per process (outside vitest's module registry) and reads its
// variables once; tests set both the variable and the already-loaded table.
const sstRaw = () => ((globalThis as Record<string, unknown>).__SST_RESOURCE_RAW__ ?? {}) as Record<string, unknown>;
function linked(name: string, value: unknown) {
  process.env[`SST_RESOURCE_${name}`] = JSON.stringify(value);
  sstRaw()[name] = value;
}

async function freshHandler() {
  vi.resetModules();
  return (await import("../src/handler")).handler;
}

beforeEach(() => {
  for (const key of Object.keys(process.env)) if (key.startsWith("SST_RESOURCE_") || key === "DATABASE_URL" || key === "REDIS_URL") delete process.env[key];
  const raw = sstRaw();
  for (const key of Object.keys(raw)) delete raw[key];
  process.env.AUTHLITH_ISSUER = "https://auth.example.test";
  process.env.LOG_LEVEL = "error";
});
afterEach(() => {
  process.env = { ...saved };
});

describe("the Lambda handler", () => {
  it("reads keys and connections from linked resources and serves with them", async () => {
    const keys = await testSigningKeys();
    linked("SigningKeys", { value: JSON.stringify(keys) });
    linked("HmacSecret", { value: testHmacSecret() });
    linked("Database", { host: "127.0.0.1", port: 1, username: "u", password: "p", database: "none" });
    linked("Redis", { host: "127.0.0.1", port: 1 });
    const handler = await freshHandler();
    const client = new TestClient((event) => handler(event, {} as never), { origin: null });
    const jwks = await client.request({ path: "/.well-known/jwks.json" });
    expect(jwks.status).toBe(200);
    expect(jwks.body.keys[0].kid).toBe((keys.keys[0] as { kid: string }).kid);
    // Nothing listens on port 1: health says so instead of failing.
    const health = await client.request({ path: "/health" });
    expect(health.status).toBe(503);
    expect(health.body.checks).toMatchObject({ postgres: { ok: false }, redis: { ok: false } });
  });

  it("refuses to start on Lambda without Redis, and says why", async () => {
    process.env.AUTHLITH_SIGNING_KEYS = JSON.stringify(await testSigningKeys());
    process.env.AUTHLITH_HMAC_SECRET = testHmacSecret();
    process.env.DATABASE_URL = "postgres://u:p@127.0.0.1:1/none";
    process.env.AWS_LAMBDA_FUNCTION_NAME = "authlith-test";
    const handler = await freshHandler();
    const event = new TestClient(async () => ({ statusCode: 200 })).event({ path: "/health" });
    await expect(handler(event, {} as never)).rejects.toThrow(/REDIS_URL/);
  });

  it("fails the cold start with the variable's name when configuration is missing", async () => {
    const handler = await freshHandler();
    const event = new TestClient(async () => ({ statusCode: 200 })).event({ path: "/health" });
    await expect(handler(event, {} as never)).rejects.toThrow(/AUTHLITH_SIGNING_KEYS/);
  });
});

describe.runIf(hasRealServices)("the Lambda handler on real Postgres and Redis", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  const prefix = `authlith-test:entry:${process.pid}:${Date.now()}:`;
  afterAll(async () => {
    await database?.drop();
    const redis = new Redis(TEST_REDIS_URL!);
    await deleteRedisPrefix(redis, prefix);
    redis.disconnect();
  });

  it("serves sign-up, sign-in, refresh and me without named prepared statements (behind RDS Proxy)", async () => {
    database = await createTestDatabase();
    const url = new URL(database.url);
    const redis = new URL(TEST_REDIS_URL!);
    linked("SigningKeys", { value: JSON.stringify(await testSigningKeys()) });
    linked("HmacSecret", { value: testHmacSecret() });
    linked("Database", { host: url.hostname, port: Number(url.port), username: url.username, password: "", database: url.pathname.slice(1) });
    linked("Redis", { host: "localhost", port: Number(redis.port || 6379) });
    process.env.DATABASE_SSL = "disable";
    // As deployed behind RDS Proxy: every statement unnamed (see sst.config.ts, databasePrepare).
    process.env.DATABASE_PREPARE = "false";
    process.env.REDIS_KEY_PREFIX = prefix;
    const handler = await freshHandler();
    const client = new TestClient((event) => handler(event, {} as never), { origin: null });
    // Deployed defaults: email verification is on, so sign-up issues nothing.
    const email = uniqueEmail("entry");
    expect(data(await client.mutate("auth.register", { email, password: PASSWORD }, tokenTransport))).toEqual({ status: "verification_required" });
    expect((await client.mutate("auth.login", { email, password: PASSWORD }, tokenTransport)).status).toBe(403);
    // No SES here (the mail is logged as failed): the address is confirmed in the database instead of by the link.
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    await sql`UPDATE users SET email_verified_at = now() WHERE email = ${email}`;
    await sql.end();
    const signedIn = data(await client.mutate("auth.login", { email, password: PASSWORD }, tokenTransport));
    const me = await client.query("auth.me", undefined, { authorization: `Bearer ${signedIn.accessToken}` });
    expect(data(me).user).toMatchObject({ id: signedIn.user.id, emailVerified: true });
    const refreshed = data(await client.mutate("auth.refresh", { refreshToken: signedIn.refreshToken }));
    expect(refreshed.session.id).toBe(signedIn.session.id);

  });
});
