import { createMemoryStore, createPostgresDb } from "@authlith/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pgliteBackend, testHmacSecret, testSigningKeys } from "../../core/test/support";
import { parseEnvConfig } from "../src/config";
import { createRuntime, type Runtime } from "../src/runtime";
import {
  APP_ORIGIN,
  bearer,
  COOKIE_NAME,
  data,
  errorOf,
  ISSUER,
  PASSWORD,
  startTestApp,
  TestClient,
  tokenTransport,
  uniqueEmail,
  type TestApp,
} from "./support/app";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp(pgliteBackend);
});
afterAll(async () => {
  await app?.close();
});

describe("API Gateway v2 events", () => {
  it("reads cookies from the event's cookies array and writes Set-Cookie to the result's cookies", async () => {
    const c = app.client();
    const reply = await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD });
    expect(reply.cookies.map((c) => c.split("=")[0])).toEqual([COOKIE_NAME, "__Host-authlith_device"]);
    expect(reply.headers["set-cookie"]).toBeUndefined();
    const refreshed = await c.request({
      method: "POST",
      path: "/trpc/auth.refresh",
      headers: { "content-type": "application/json" },
      cookies: ["theme=dark", `${COOKIE_NAME}=${c.jar.get(COOKIE_NAME)}`, "other=1"],
    });
    expect(refreshed.status).toBe(200);
    expect(refreshed.cookies[0]).toMatch(new RegExp(`^${COOKIE_NAME}=`));
  });

  it("decodes base64-encoded bodies", async () => {
    const reply = await app.client().request({
      method: "POST",
      path: "/trpc/auth.register",
      headers: { "content-type": "application/json", ...tokenTransport },
      body: JSON.stringify({ email: uniqueEmail(), password: PASSWORD }),
      base64: true,
    });
    expect(data(reply).refreshToken).toBeDefined();
  });

  it("serves the procedure whatever route key API Gateway matched", async () => {
    const { accessToken } = data(await app.client().mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }));
    const c = app.client();
    const event = c.event({ path: "/trpc/auth.me", headers: bearer(accessToken) });
    const viaProxyRoute = await app.runtime.handle({ ...event, routeKey: "ANY /trpc/{proxy+}", pathParameters: { proxy: "auth.me" } });
    const viaDefault = await app.runtime.handle(event);
    expect(viaProxyRoute.statusCode).toBe(200);
    expect(viaDefault.statusCode).toBe(200);
  });

  it("answers batched calls, each counted on its own", async () => {
    const { accessToken } = data(await app.client().mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }));
    const reply = await app.client().request({ path: "/trpc/auth.me,session.list", query: "batch=1&input=%7B%7D", headers: bearer(accessToken) });
    expect(reply.status).toBe(200);
    expect(reply.body).toHaveLength(2);
    expect(reply.body[0].result.data.user.email).toBeDefined();
    expect(reply.body[1].result.data.sessions).toHaveLength(1);
    const paths = Array.from({ length: 11 }, () => "auth.me").join(",");
    expect((await app.client().request({ path: `/trpc/${paths}`, query: "batch=1", headers: bearer(accessToken) })).status).toBe(400);
  });
});

describe("CORS and origins", () => {
  it("answers a preflight from an allowed origin with credentials allowed", async () => {
    const reply = await app.client().request({
      method: "OPTIONS",
      path: "/trpc/auth.login",
      headers: { "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    expect(reply.status).toBe(204);
    expect(reply.headers["access-control-allow-origin"]).toBe(APP_ORIGIN);
    expect(reply.headers["access-control-allow-credentials"]).toBe("true");
    expect(reply.headers["access-control-allow-methods"]).toContain("POST");
    expect(reply.headers["access-control-allow-headers"]).toContain("x-authlith-transport");
    expect(reply.headers.vary).toContain("origin");
  });

  it("gives a foreign origin no CORS grant and refuses its calls", async () => {
    const foreign = app.client({ origin: "https://evil.example" });
    const preflight = await foreign.request({ method: "OPTIONS", path: "/trpc/auth.login" });
    expect(preflight.status).toBe(403);
    expect(preflight.headers["access-control-allow-origin"]).toBeUndefined();
    const call = await foreign.mutate("auth.login", { email: uniqueEmail(), password: PASSWORD });
    expect(call.status).toBe(403);
    expect(call.headers["access-control-allow-origin"]).toBeUndefined();
    expect(errorOf(call)).toMatchObject({ code: "FORBIDDEN", reason: "ORIGIN_NOT_ALLOWED" });
  });

  it("accepts the issuer's own origin", async () => {
    const reply = await app.client({ origin: ISSUER }).mutate("auth.login", { email: uniqueEmail(), password: PASSWORD });
    expect(reply.status).toBe(401);
  });
});

describe("request hygiene", () => {
  it("refuses bodies over 16 KiB with 413", async () => {
    const reply = await app.client().mutate("auth.login", { email: uniqueEmail(), password: "x".repeat(17 * 1024) });
    expect(reply.status).toBe(413);
    expect(errorOf(reply).code).toBe("PAYLOAD_TOO_LARGE");
    const encoded = await app.client().request({
      method: "POST",
      path: "/trpc/auth.login",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: uniqueEmail(), password: "x".repeat(17 * 1024) }),
      base64: true,
    });
    expect(encoded.status).toBe(413);
  });

  it("accepts only JSON for mutations (no form posts)", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const reply = await app.client().request({
        method: "POST",
        path: "/trpc/auth.refresh",
        headers: { "content-type": type },
        body: "refreshToken=x",
      });
      expect(reply.status, type).toBe(415);
    }
    const missing = await app.client().request({ method: "POST", path: "/trpc/auth.refresh", body: "{}" });
    expect(missing.status).toBe(415);
  });

  it("answers malformed JSON, unknown procedures and wrong methods with clean errors", async () => {
    const malformed = await app.client().request({
      method: "POST",
      path: "/trpc/auth.login",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.message).toBe("Malformed JSON");
    const unknown = await app.client().query("auth.nope");
    expect(unknown.status).toBe(404);
    const wrongMethod = await app.client().request({ method: "GET", path: "/trpc/auth.login" });
    expect(wrongMethod.status).toBe(405);
    expect((await app.client().request({ method: "DELETE", path: "/trpc/auth.me" })).status).toBe(405);
    expect((await app.client().request({ path: "/nope" })).status).toBe(404);
    expect((await app.client().request({ method: "POST", path: "/health" })).status).toBe(405);
  });

  it("never puts stack traces, SQL or file paths in a response", async () => {
    const replies = await Promise.all([
      app.client().request({ method: "POST", path: "/trpc/auth.login", headers: { "content-type": "application/json" }, body: "[" }),
      app.client().mutate("auth.login", { email: { $ne: 1 }, password: PASSWORD }),
      app.client().mutate("auth.register", JSON.parse(`{"__proto__": {"admin": true}, "email": "${uniqueEmail()}", "password": "${PASSWORD}"}`)),
      app.client().mutate("auth.register", JSON.parse('{"__proto__": {"x": 1}, "email": "a@b.co", "password": "p"}')),
      app.client().query("auth.me", undefined, bearer("e30.e30.e30")),
      app.client().mutate("session.revoke", { sessionId: "'; drop table users; --" }, bearer("x")),
    ]);
    for (const reply of replies) {
      expect(reply.status).toBeGreaterThanOrEqual(400);
      expect(reply.status).toBeLessThan(500);
      expect(reply.raw).not.toMatch(/at .*\.(ts|js):\d+|node_modules|\/work\/|stack|select |insert |postgres/i);
    }
  });

  it("rejects __proto__ and constructor keys as unknown fields (no prototype games)", async () => {
    const reply = await app.client().request({
      method: "POST",
      path: "/trpc/auth.register",
      headers: { "content-type": "application/json" },
      body: `{"__proto__": {"admin": true}, "constructor": {"prototype": {"x": 1}}, "email": "${uniqueEmail()}", "password": "${PASSWORD}"}`,
    });
    expect(reply.status).toBe(400);
    expect(Object.keys(errorOf(reply).fieldErrors ?? {}).sort()).toEqual(["__proto__", "constructor"]);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it("ignores a body on GET and odd header values instead of failing", async () => {
    const { accessToken } = data(await app.client().mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }));
    const withBody = await app.client().request({ path: "/trpc/auth.me", headers: bearer(accessToken), body: "{}" });
    expect(withBody.status).toBe(200);
    const euro = await app.client({ userAgent: "Mozilla € ☃" }).request({ path: "/trpc/auth.me", headers: bearer(accessToken) });
    expect(euro.status).toBe(200);
    const badName = await app.client().request({ path: "/trpc/system.ping", headers: { "bad header": "x" } });
    expect(badName.status).toBe(200);
  });

  it("refuses to stream, plainly and before running anything (streamed answers would lose the cookie)", async () => {
    const email = uniqueEmail();
    const reply = await app.client().mutate("auth.register", { email, password: PASSWORD }, { "trpc-accept": "application/jsonl" });
    expect(reply.status).toBe(400);
    expect(reply.body.error.data).toMatchObject({ code: "BAD_REQUEST", reason: "STREAMING_NOT_SUPPORTED" });
    expect(reply.cookies).toEqual([]);
    // Nothing was registered: the same email signs up normally afterwards.
    expect((await app.client().mutate("auth.register", { email, password: PASSWORD })).status).toBe(200);
  });

  it("measures base64 bodies by their decoded size", async () => {
    const exact = JSON.stringify({ email: uniqueEmail(), password: "x" });
    const padded = exact + " ".repeat(16 * 1024 - Buffer.byteLength(exact));
    const encoded = await app.client().request({
      method: "POST",
      path: "/trpc/auth.login",
      headers: { "content-type": "application/json" },
      body: padded,
      base64: true,
    });
    expect(encoded.status).not.toBe(413);
  });

  it("decodes the procedure path once", async () => {
    expect((await app.client().mutate("auth%252Elogin", { email: uniqueEmail(), password: PASSWORD })).status).toBe(404);
    expect((await app.client().mutate("auth%2Elogin", { email: uniqueEmail(), password: PASSWORD })).status).toBe(401);
  });

  it("tags every response with the request id and nosniff", async () => {
    const c = app.client();
    const event = c.event({ path: "/health" });
    const result = await app.runtime.handle(event);
    expect((result.headers as Record<string, string>)["x-request-id"]).toBe(event.requestContext.requestId);
    expect((result.headers as Record<string, string>)["x-content-type-options"]).toBe("nosniff");
  });
});

describe("public routes", () => {
  it("publishes the JWKS without private members, cacheable and open to any origin", async () => {
    const reply = await app.client({ origin: null }).request({ path: "/.well-known/jwks.json" });
    expect(reply.status).toBe(200);
    expect(reply.headers["cache-control"]).toMatch(/public, max-age=\d+/);
    expect(reply.headers["access-control-allow-origin"]).toBe("*");
    expect(reply.body.keys).toHaveLength(1);
    const [key] = reply.body.keys;
    expect(key).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
    for (const member of ["d", "p", "q", "dp", "dq", "qi", "active_from"]) expect(key).not.toHaveProperty(member);
  });

  it("verifies issued access tokens with nothing but the published JWKS (as a resource server would)", async () => {
    const { createLocalJWKSet, jwtVerify } = await import("jose");
    const { accessToken, user } = data(await app.client().mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }));
    const jwks = (await app.client().request({ path: "/.well-known/jwks.json" })).body;
    const { payload, protectedHeader } = await jwtVerify(accessToken, createLocalJWKSet(jwks), {
      issuer: ISSUER,
      audience: "authlith",
      typ: "at+jwt",
      currentDate: new Date(app.clock.now()),
    });
    expect(protectedHeader.alg).toBe("ES256");
    expect(payload.sub).toBe(user.id);
    for (const claim of ["iss", "aud", "sub", "sid", "jti", "iat", "exp", "email_verified"]) expect(payload).toHaveProperty(claim);
    expect(payload.exp! - payload.iat!).toBe(900);
  });

  it("serves the discovery document pointing at the JWKS", async () => {
    const reply = await app.client().request({ path: "/.well-known/openid-configuration" });
    expect(reply.body).toMatchObject({ issuer: ISSUER, jwks_uri: `${ISSUER}/.well-known/jwks.json` });
  });

  it("reports health of Postgres and the store", async () => {
    const reply = await app.client().request({ path: "/health" });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ status: "ok", checks: { postgres: { ok: true }, redis: { ok: true } } });
    expect(reply.headers["cache-control"]).toBe("no-store");
  });
});

describe("when Postgres does not answer", () => {
  let runtime: Runtime;
  beforeAll(async () => {
    const config = parseEnvConfig({
      AUTHLITH_ISSUER: ISSUER,
      AUTHLITH_ALLOWED_ORIGINS: APP_ORIGIN,
      AUTHLITH_SIGNING_KEYS: JSON.stringify(await testSigningKeys()),
      AUTHLITH_HMAC_SECRET: testHmacSecret(),
      LOG_LEVEL: "error",
    });
    // Nothing listens on port 1: every connection is refused at once.
    runtime = await createRuntime(config, {
      db: createPostgresDb({ url: "postgres://authlith@127.0.0.1:1/none", connectTimeoutSeconds: 1 }),
      store: createMemoryStore(),
      log: { debug() {}, info() {}, warn() {}, error() {} },
    });
  });
  afterAll(async () => {
    await runtime?.close();
  });

  it("answers 503 with Retry-After, never 500 and never a token", async () => {
    const c = new TestClient(runtime.handle);
    for (const reply of [
      await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }),
      await c.mutate("auth.login", { email: uniqueEmail(), password: PASSWORD }),
    ]) {
      expect(reply.status).toBe(503);
      expect(errorOf(reply).code).toBe("SERVICE_UNAVAILABLE");
      expect(Number(reply.headers["retry-after"])).toBeGreaterThan(0);
      expect(reply.cookies).toEqual([]);
      expect(reply.raw).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|postgres/i);
    }
    const health = await c.request({ path: "/health" });
    expect(health.status).toBe(503);
    expect(health.body.checks.postgres.ok).toBe(false);
  });
});
