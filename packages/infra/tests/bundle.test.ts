import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HANDLERS, NATIVE_PACKAGES, RUNTIME_PROVIDED } from "../src/settings";
import { apiEvent, bundleFunction, installFromWorkspace, invokeBundle, packageOf, writeLinkedResources, type Bundle } from "./support/bundle";
import { ROOT, testSecrets } from "./support/graph";

/**
 * The functions as SST deploys them: bundled like SST's Node runtime does, in a directory outside
 * the repository (so nothing resolves from the workspace's node_modules), with the native addon
 * installed beside the bundle and the linked resources in an encrypted resource.enc, then loaded
 * in a fresh Node process that is handed API Gateway v2 events.
 */
const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL;
const TEST_REDIS_URL = process.env.TEST_REDIS_URL;
const hasServices = Boolean(TEST_DATABASE_URL && TEST_REDIS_URL);
if (process.env.CI && !hasServices) throw new Error("CI must set TEST_DATABASE_URL and TEST_REDIS_URL so the bundles run against real services");

const functionsPackage = JSON.parse(readFileSync(join(ROOT, "packages/functions/package.json"), "utf8")) as {
  dependencies: Record<string, string>;
};
const ISSUER = "https://auth.example.test";
const APP_ORIGIN = "https://app.example.test";

let work: string;
let secrets: Record<string, string>;
const bundles: Record<"api" | "migrate" | "purge", Bundle> = {} as never;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "authlith-bundle-"));
  secrets = await testSecrets();
  bundles.api = await bundleFunction({ handler: HANDLERS.api, out: join(work, "api"), install: NATIVE_PACKAGES, external: RUNTIME_PROVIDED, splitting: true });
  bundles.migrate = await bundleFunction({
    handler: HANDLERS.migrate,
    out: join(work, "migrate"),
    copyFiles: [{ from: "drizzle", to: "drizzle" }],
  });
  bundles.purge = await bundleFunction({ handler: HANDLERS.purge, out: join(work, "purge") });
  await installFromWorkspace(bundles.api.dir, NATIVE_PACKAGES);
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** Linked resources as SST encrypts them into the function package, plus the function's environment. */
async function deployedEnv(bundle: Bundle, links: Record<string, unknown>, env: Record<string, string> = {}) {
  return {
    ...(await writeLinkedResources(bundle.dir, links)),
    AWS_LAMBDA_FUNCTION_NAME: `authlith-test-${bundle.exportName}`,
    AWS_REGION: "us-east-1",
    LOG_LEVEL: "error",
    ...env,
  };
}

const secretLinks = () => ({
  SigningKeys: { type: "sst.sst.Secret", value: secrets.SST_SECRET_SigningKeys },
  HmacSecret: { type: "sst.sst.Secret", value: secrets.SST_SECRET_HmacSecret },
});

const apiEnvironment = (prefix: string) => ({
  AUTHLITH_ISSUER: ISSUER,
  AUTHLITH_ALLOWED_ORIGINS: APP_ORIGIN,
  REDIS_KEY_PREFIX: prefix,
  DATABASE_POOL_MAX: "2",
  DATABASE_PREPARE: "true",
});

describe("the API function bundle", () => {
  it("is one minified ES module that leaves only Node built-ins, the installed addon and the runtime's SES client to the runtime", () => {
    const api = bundles.api;
    const left = [...new Set(api.externals.map(packageOf).filter((name): name is string => name !== null))];
    for (const name of left) expect([...NATIVE_PACKAGES, ...RUNTIME_PROVIDED] as string[]).toContain(name);
    // The SES client is left out: ≈ 400 KiB the cold start would parse for nothing.
    expect(Object.keys(api.metafile.inputs).filter((input) => input.includes("node_modules/@aws-sdk/"))).toEqual([]);
    // The addon is not in the bundle (its loader picks a platform binary at run time).
    expect(Object.keys(api.metafile.inputs).filter((input) => input.includes("node_modules/@node-rs/"))).toEqual([]);
    // The WebAuthn library (and its ASN.1 and X.509 code) is a chunk loaded on first use: a cold
    // start does not parse it (nodejs.splitting).
    const lazily = Object.entries(api.metafile.outputs).filter(([path]) => !api.eager.includes(path));
    expect(lazily.some(([, output]) => Object.keys(output.inputs).some((input) => input.includes("node_modules/@simplewebauthn/server/")))).toBe(true);
    for (const path of api.eager) {
      expect(Object.keys(api.metafile.outputs[path]!.inputs).filter((input) => /node_modules\/@(simplewebauthn|peculiar)\//.test(input))).toEqual([]);
    }
    // Minified: no line of the handler's own code survives as written.
    expect(api.bytes).toBeGreaterThan(50_000);
    expect(api.bytes).toBeLessThan(3 * 1024 * 1024);
    for (const [id, bundle] of Object.entries(bundles)) {
      console.log(`[infra] ${id} bundle ${bundle.file}: ${(bundle.bytes / 1024).toFixed(1)} KiB minified at cold start, ${(bundle.totalBytes / 1024).toFixed(1)} KiB in all`);
    }
  });

  it("loads in a fresh process from linked resources and serves API Gateway v2 events", async () => {
    // Nothing listens on port 1: the public documents and CORS still answer, health says why not.
    const env = await deployedEnv(
      bundles.api,
      {
        Database: { type: "sst.aws.Postgres", host: "127.0.0.1", port: 1, username: "u", password: "p", database: "none" },
        Redis: { type: "sst.aws.Redis", host: "127.0.0.1", port: 1, username: "default", password: "" },
        ...secretLinks(),
      },
      apiEnvironment("authlith-bundle:"),
    );
    const { results, coldStartMs } = await invokeBundle(
      bundles.api,
      [
        apiEvent({ path: "/.well-known/jwks.json" }),
        apiEvent({ path: "/.well-known/openid-configuration" }),
        apiEvent({ path: "/health" }),
        apiEvent({ method: "OPTIONS", path: "/trpc/auth.login", routeKey: "ANY /trpc/{proxy+}", headers: { origin: APP_ORIGIN, "access-control-request-method": "POST" } }),
        apiEvent({ method: "OPTIONS", path: "/trpc/auth.login", routeKey: "ANY /trpc/{proxy+}", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } }),
      ],
      env,
    );
    for (const result of results) expect(result.error).toBeUndefined();
    const [jwks, openid, health, preflight, refused] = results.map((r) => r.value);
    expect(jwks.statusCode).toBe(200);
    const kid = (JSON.parse(secrets.SST_SECRET_SigningKeys!) as { keys: { kid: string }[] }).keys[0]!.kid;
    expect(JSON.parse(jwks.body).keys.map((k: { kid: string }) => k.kid)).toEqual([kid]);
    expect(JSON.parse(jwks.body).keys[0].d).toBeUndefined();
    expect(JSON.parse(openid.body)).toMatchObject({ issuer: ISSUER, jwks_uri: `${ISSUER}/.well-known/jwks.json` });
    expect(health.statusCode).toBe(503);
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers).toMatchObject({ "access-control-allow-origin": APP_ORIGIN, "access-control-allow-credentials": "true" });
    expect(refused.statusCode).toBe(403);
    console.log(`[infra] API bundle cold start to first response: ${coldStartMs.toFixed(0)} ms`);
  });

  it("finds the native argon2 addon installed beside it, not bundled", async () => {
    const check = "__argon2-check.mjs";
    await writeFile(
      join(bundles.api.dir, check),
      `import { hash, verify } from "@node-rs/argon2";\nexport const handler = async () => verify(await hash("x", { memoryCost: 8192, timeCost: 1 }), "x");\n`,
    );
    const { results } = await invokeBundle({ ...bundles.api, file: check, exportName: "handler" }, [{}], {});
    expect(results[0]).toEqual({ ok: true, value: true });
  });

  it("gets the Linux arm64 addon from SST's install step (npm install --os=linux --cpu=arm64)", async () => {
    // What SST runs in the function package for `nodejs.install` (pkg/runtime/node/build.go),
    // here on a copy so the x64 addon above stays for the local runs.
    const target = join(work, "api-arm64");
    await cp(join(bundles.api.dir, "package.json"), join(await mkdir(target, { recursive: true }).then(() => target), "package.json"));
    expect(JSON.parse(await readFile(join(target, "package.json"), "utf8"))).toEqual({
      dependencies: Object.fromEntries(NATIVE_PACKAGES.map((name) => [name, functionsPackage.dependencies[name]])),
    });
    await promisify(execFile)("npm", ["install", "--platform=linux", "--os=linux", "--arch=arm64", "--cpu=arm64", "--no-audit", "--no-fund"], {
      cwd: target,
      timeout: 120_000,
    });
    const installed = await readdir(join(target, "node_modules/@node-rs"));
    expect(installed).toContain("argon2-linux-arm64-gnu");
    expect(installed).not.toContain("argon2-linux-x64-gnu");
    const addon = (await readdir(join(target, "node_modules/@node-rs/argon2-linux-arm64-gnu"))).find((f) => f.endsWith(".node"));
    expect(addon).toBe("argon2.linux-arm64-gnu.node");
  });

  it("fails the cold start, naming the secret, when a secret is not linked", async () => {
    const env = await deployedEnv(
      bundles.api,
      {
        Database: { type: "sst.aws.Postgres", host: "127.0.0.1", port: 1, username: "u", password: "p", database: "none" },
        Redis: { type: "sst.aws.Redis", host: "127.0.0.1", port: 1, username: "default", password: "" },
        HmacSecret: secretLinks().HmacSecret,
      },
      apiEnvironment("authlith-bundle:"),
    );
    const { results } = await invokeBundle(bundles.api, [apiEvent({ path: "/health" })], env);
    expect(results[0]!.ok).toBe(false);
    expect(results[0]!.error).toMatch(/AUTHLITH_SIGNING_KEYS/);
    expect(results[0]!.error).not.toContain(secrets.SST_SECRET_HmacSecret);
  });
});

describe.runIf(hasServices)("the deployed functions on real Postgres and Redis", () => {
  const name = `authlith_bundle_${randomBytes(5).toString("hex")}`;
  let admin: postgres.Sql;
  let databaseLink: Record<string, unknown>;
  let redisLink: Record<string, unknown>;

  beforeAll(async () => {
    admin = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE DATABASE ${name}`);
    const url = new URL(TEST_DATABASE_URL!);
    const redis = new URL(TEST_REDIS_URL!);
    databaseLink = {
      type: "sst.aws.Postgres",
      host: url.hostname === "127.0.0.1" ? "localhost" : url.hostname,
      port: Number(url.port || 5432),
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: name,
    };
    redisLink = { type: "sst.aws.Redis", host: "localhost", port: Number(redis.port || 6379), username: "default", password: "" };
  });
  afterAll(async () => {
    await admin?.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin?.unsafe(`DROP ROLE IF EXISTS ${appRoleLink.username}`);
    await admin?.end({ timeout: 5 });
  });
  // The service's own role (roles belong to the whole server: a name of this run's own).
  const appRoleLink = { type: "sst.sst.Linkable", username: `${name}_app`, password: randomBytes(24).toString("base64url") };

  it("the migrator applies the migrations shipped beside it to an empty database, and again as a no-op", async () => {
    const env = await deployedEnv(bundles.migrate, { Database: databaseLink, DatabaseApp: appRoleLink });
    const { results } = await invokeBundle(bundles.migrate, [{ source: "sst deploy" }, { source: "sst deploy" }], env);
    expect(results.map((r) => r.error)).toEqual([undefined, undefined]);
    // It made the service's role, which can read and write the tables and nothing more.
    const [role] = await admin`select rolcreatedb, rolcreaterole, rolsuper from pg_roles where rolname = ${appRoleLink.username}`;
    expect(role).toEqual({ rolcreatedb: false, rolcreaterole: false, rolsuper: false });
    expect(results[0]!.value).toMatchObject({ ok: true, migrationsFolder: join(bundles.migrate.dir, "drizzle") });
    const db = postgres({ ...connection(), database: name, max: 1, onnotice: () => {} });
    try {
      const tables = await db<{ table_name: string }[]>`select table_name from information_schema.tables where table_schema = 'public' order by 1`;
      expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(["audit_events", "sessions", "users"]));
    } finally {
      await db.end({ timeout: 5 });
    }
  });

  it("the API function signs a user up and in (argon2 from the installed addon) and answers me", async () => {
    const prefix = `authlith-bundle:${randomBytes(4).toString("hex")}:`;
    // Connected as the service's role the migrator made, as deployed.
    const env = await deployedEnv(
      bundles.api,
      { DatabaseApp: { ...appRoleLink, host: databaseLink.host, port: databaseLink.port, database: databaseLink.database }, Redis: redisLink, ...secretLinks() },
      apiEnvironment(prefix),
    );
    const email = `bundle-${randomBytes(4).toString("hex")}@example.com`;
    const register = apiEvent({
      method: "POST",
      path: "/trpc/auth.register",
      routeKey: "ANY /trpc/{proxy+}",
      headers: { "x-authlith-transport": "token" },
      body: { email, password: "correct horse battery staple" },
    });
    const health = apiEvent({ path: "/health" });
    const first = await invokeBundle(bundles.api, [register, health], env);
    expect(first.results.map((r) => r.error)).toEqual([undefined, undefined]);
    const [registered, healthy] = first.results.map((r) => r.value);
    // Deployed defaults: email verification on, so sign-up issues nothing.
    expect(registered.statusCode).toBe(200);
    expect(JSON.parse(registered.body).result.data).toEqual({ status: "verification_required" });
    expect(healthy.statusCode).toBe(200);
    expect(JSON.parse(healthy.body)).toMatchObject({ status: "ok" });

    // No SES here: the address is confirmed in the database instead of by the mailed link, then signed in.
    const db = postgres({ ...connection(), database: name, max: 1, onnotice: () => {} });
    try {
      await db`UPDATE users SET email_verified_at = now() WHERE email = ${email}`;
    } finally {
      await db.end({ timeout: 5 });
    }
    const login = apiEvent({
      method: "POST",
      path: "/trpc/auth.login",
      routeKey: "ANY /trpc/{proxy+}",
      headers: { "x-authlith-transport": "token" },
      body: { email, password: "correct horse battery staple" },
    });
    const signedIn = await invokeBundle(bundles.api, [login], env);
    expect(signedIn.results[0]!.value.statusCode).toBe(200);
    const data = JSON.parse(signedIn.results[0]!.value.body).result.data as { accessToken: string; user: { id: string; email: string; emailVerified: boolean } };
    expect(data.user).toMatchObject({ email, emailVerified: true });

    // A new container (another process) verifies the token with the same linked keys.
    const me = apiEvent({ path: "/trpc/auth.me", routeKey: "ANY /trpc/{proxy+}", headers: { authorization: `Bearer ${data.accessToken}` } });
    const second = await invokeBundle(bundles.api, [me], env);
    expect(second.results[0]!.value.statusCode).toBe(200);
    expect(JSON.parse(second.results[0]!.value.body).result.data.user.id).toBe(data.user.id);
  });

  it("the purge function runs against the same database", async () => {
    const env = await deployedEnv(bundles.purge, { Database: databaseLink });
    const { results } = await invokeBundle(bundles.purge, [{ source: "aws.events" }], env);
    expect(results[0]).toEqual({ ok: true, value: { sessions: 0, auditEvents: 0, accountTokens: 0, mfaChallenges: 0, complete: true } });
  });

  function connection() {
    const url = new URL(TEST_DATABASE_URL!);
    return { host: url.hostname, port: Number(url.port || 5432), username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
  }
});
