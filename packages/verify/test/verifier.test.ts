import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer } from "@authlith/functions/dev-server";
import { createAuthClient } from "@authlith/client";
import { initTRPC, TRPCError } from "@trpc/server";
import { createHTTPServer } from "@trpc/server/adapters/standalone";
import { createTRPCClient, httpLink, TRPCClientError } from "@trpc/client";
import { AccessTokenError, createVerifier, type AccessTokenClaims } from "../src/index";

const PASSWORD = "correct horse battery staple";
let emails = 0;
const uniqueEmail = (tag: string) => `${tag}-${Date.now().toString(36)}-${++emails}@example.com`;

async function refusal(promise: Promise<unknown>): Promise<AccessTokenError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(AccessTokenError.is(error), String(error)).toBe(true);
  return error as AccessTokenError;
}

describe("verifying tokens from a running authlith", () => {
  let dataDir: string;
  let dev: Awaited<ReturnType<typeof startDevServer>>;
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${dev.url}/trpc/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-authlith-transport": "token", ...headers },
      body: JSON.stringify(body),
    });
    return (await response.json()) as { result: { data: any } };
  };
  const signUp = async () => (await post("auth.register", { email: uniqueEmail("verify"), password: PASSWORD })).result.data;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "authlith-verify-"));
    dev = await startDevServer({ PORT: "0", AUTHLITH_DATA_DIR: dataDir, LOG_LEVEL: "error", AUTHLITH_REQUIRE_EMAIL_VERIFICATION: "false" });
  }, 90_000);
  afterAll(async () => {
    await dev?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("returns typed claims for a valid token, found through discovery", async () => {
    const signedUp = await signUp();
    const verifier = createVerifier({ issuer: dev.url, audience: "authlith" });
    const claims = await verifier.verify(signedUp.accessToken);
    expect(claims).toMatchObject({ userId: signedUp.user.id, sessionId: signedUp.session.id, email: signedUp.user.email, emailVerified: false });
    expect(claims.expiresAt.getTime()).toBe(new Date(signedUp.accessTokenExpiresAt).getTime());
    expect(claims.authTime).toBeInstanceOf(Date);
    expect((await verifier.verifyAuthorization(`Bearer ${signedUp.accessToken}`)).userId).toBe(signedUp.user.id);
  });

  it("refuses missing, tampered and foreign-audience tokens with typed errors", async () => {
    const { accessToken } = await signUp();
    const verifier = createVerifier({ issuer: dev.url, audience: "authlith" });
    expect((await refusal(verifier.verify(undefined))).code).toBe("MISSING_TOKEN");
    expect((await refusal(verifier.verifyAuthorization("Basic abc"))).code).toBe("MISSING_TOKEN");
    const [header, payload, signature] = accessToken.split(".");
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, "base64url").toString()), sub: "someone-else" })).toString("base64url");
    const tampered = await refusal(verifier.verify(`${header}.${forged}.${signature}`));
    expect(tampered).toMatchObject({ code: "INVALID_TOKEN", status: 401 });
    const elsewhere = createVerifier({ issuer: dev.url, audience: "another-api" });
    expect((await refusal(elsewhere.verify(accessToken))).code).toBe("INVALID_TOKEN");
    const wrongIssuer = createVerifier({ issuer: dev.url, audience: "authlith", jwksUrl: `${dev.url}/.well-known/jwks.json` });
    expect((await wrongIssuer.verify(accessToken)).email).toMatch(/@example\.com$/);
  });

  it("without the revocation check, a token outlives its session (the trade-off); with it, a revoked session is refused", async () => {
    const signedUp = await signUp();
    let asked = 0;
    const counting: typeof fetch = (input, init) => {
      if (String(input).includes("/trpc/auth.me")) asked += 1;
      return fetch(input, init);
    };
    const plain = createVerifier({ issuer: dev.url, audience: "authlith" });
    const checking = createVerifier({ issuer: dev.url, audience: "authlith", revocation: { maxAgeSeconds: 60 }, fetch: counting });
    await checking.verify(signedUp.accessToken);
    await checking.verify(signedUp.accessToken);
    expect(asked).toBe(1); // a live answer is remembered

    await post("auth.logout", {}, { authorization: `Bearer ${signedUp.accessToken}` });
    expect((await plain.verify(signedUp.accessToken)).sessionId).toBe(signedUp.session.id);
    const fresh = createVerifier({ issuer: dev.url, audience: "authlith", revocation: {} });
    expect((await refusal(fresh.verify(signedUp.accessToken))).code).toBe("SESSION_REVOKED");
  });

  it("protects an app's own tRPC API: context from the verified claims, 401 once the session is revoked", async () => {
    // Revocation checked on every call here (maxAgeSeconds 0); the default remembers a live answer for 10 s.
    const verifier = createVerifier({ issuer: dev.url, audience: "authlith", revocation: { maxAgeSeconds: 0 } });
    // The app's own API, as an app would write it with @trpc/server.
    const t = initTRPC.context<{ claims: AccessTokenClaims | null }>().create();
    const signedIn = t.procedure.use(({ ctx, next }) => {
      if (!ctx.claims) throw new TRPCError({ code: "UNAUTHORIZED" });
      return next({ ctx: { claims: ctx.claims } });
    });
    const appRouter = t.router({ notes: signedIn.query(({ ctx }) => ({ owner: ctx.claims.userId, notes: ["first"] })) });
    const api = createHTTPServer({
      router: appRouter,
      async createContext({ req }) {
        try {
          return { claims: await verifier.verifyAuthorization(req.headers.authorization) };
        } catch (error) {
          if (AccessTokenError.is(error, "VERIFIER_UNAVAILABLE")) throw new TRPCError({ code: "SERVICE_UNAVAILABLE" });
          return { claims: null };
        }
      },
    });
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    try {
      const auth = createAuthClient({ url: dev.url, transport: "token" });
      const signedUp = await auth.register({ email: uniqueEmail("own-api"), password: PASSWORD });
      if (signedUp.status !== "signed_in") throw new Error("expected a session");
      const trpc = createTRPCClient<typeof appRouter>({
        links: [
          httpLink({
            url: `http://127.0.0.1:${(api.address() as { port: number }).port}`,
            headers: async () => ({ authorization: `Bearer ${await auth.getAccessToken()}` }),
          }),
        ],
      });
      expect(await trpc.notes.query()).toEqual({ owner: signedUp.user.id, notes: ["first"] });
      // Signed out in authlith: the revocation check refuses the token the app still has.
      const token = (await auth.getAccessToken())!;
      await post("auth.logout", {}, { authorization: `Bearer ${token}` });
      const refused = createTRPCClient<typeof appRouter>({
        links: [httpLink({ url: `http://127.0.0.1:${(api.address() as { port: number }).port}`, headers: { authorization: `Bearer ${token}` } })],
      });
      const error = await refused.notes.query().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TRPCClientError);
      expect((error as TRPCClientError<typeof appRouter>).data?.httpStatus).toBe(401);
    } finally {
      await new Promise((resolve) => api.close(resolve));
    }
  });

  it("fails closed with 503 when the revocation check cannot reach authlith", async () => {
    const { accessToken } = await signUp();
    const cut: typeof fetch = (input, init) =>
      String(input).includes("/trpc/") ? Promise.reject(new TypeError("fetch failed")) : fetch(input, init);
    const verifier = createVerifier({ issuer: dev.url, audience: "authlith", revocation: {}, fetch: cut });
    expect(await refusal(verifier.verify(accessToken))).toMatchObject({ code: "VERIFIER_UNAVAILABLE", status: 503 });
  });
});

describe("keys, algorithms and time, against an issuer the test controls", () => {
  const AUDIENCE = "authlith";
  let server: Server;
  let issuer: string;
  let jwks: { keys: JWK[] };
  let cacheControl = "public, max-age=300";
  let up = true;
  let discoveryIssuer: string | null = null;
  const fetched = { discovery: 0, jwks: 0 };
  let requests = 0;

  async function newKey(kid: string, alg: "ES256" | "RS256" = "ES256") {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } as JWK };
  }
  type Key = Awaited<ReturnType<typeof newKey>>;

  const sign = (key: Key, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, at = Date.now()) =>
    new SignJWT({ sid: "session-1", email: "ada@example.com", email_verified: true, auth_time: Math.floor(at / 1000), ...claims })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "at+jwt", ...header })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject("user-1")
      .setJti(`jti-${Math.random()}`)
      .setIssuedAt(Math.floor(at / 1000))
      .setExpirationTime(Math.floor(at / 1000) + 900)
      .sign(key.privateKey);

  beforeAll(async () => {
    server = createServer((request, response) => {
      requests += 1;
      if (!up) return void response.writeHead(503).end();
      if (request.url === "/.well-known/openid-configuration") {
        fetched.discovery += 1;
        response.writeHead(200, { "content-type": "application/json" });
        return void response.end(JSON.stringify({ issuer: discoveryIssuer ?? issuer, jwks_uri: `${issuer}/jwks` }));
      }
      if (request.url === "/jwks") {
        fetched.jwks += 1;
        response.writeHead(200, { "content-type": "application/json", "cache-control": cacheControl });
        return void response.end(JSON.stringify(jwks));
      }
      response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  const reset = (keys: Key[]) => {
    jwks = { keys: keys.map((k) => k.jwk) };
    cacheControl = "public, max-age=300";
    up = true;
    discoveryIssuer = null;
    fetched.discovery = 0;
    fetched.jwks = 0;
  };

  it("accepts ES256 and RS256, and refuses another algorithm, `none`, and a token that is not an access token", async () => {
    const es = await newKey("es");
    const rs = await newKey("rs", "RS256");
    reset([es, rs]);
    const verifier = createVerifier({ issuer, audience: AUDIENCE });
    expect((await verifier.verify(await sign(es))).userId).toBe("user-1");
    expect((await verifier.verify(await sign(rs))).userId).toBe("user-1");
    const esOnly = createVerifier({ issuer, audience: AUDIENCE, algorithms: ["ES256"] });
    expect((await refusal(esOnly.verify(await sign(rs)))).code).toBe("INVALID_TOKEN");
    const [, payload] = (await sign(es)).split(".");
    const unsigned = `${Buffer.from(JSON.stringify({ alg: "none", typ: "at+jwt", kid: "es" })).toString("base64url")}.${payload}.`;
    expect((await refusal(verifier.verify(unsigned))).code).toBe("INVALID_TOKEN");
    expect((await refusal(verifier.verify(await sign(es, {}, { typ: "JWT" })))).code).toBe("INVALID_TOKEN");
    expect((await refusal(verifier.verify(await sign(es, { sid: undefined })))).code).toBe("INVALID_TOKEN");
    expect((await refusal(verifier.verify(await sign(es, { email_verified: "yes" })))).code).toBe("INVALID_TOKEN");
  });

  it("tells an expired token apart, with the configured leeway", async () => {
    const key = await newKey("k");
    reset([key]);
    const issuedAt = Date.now() - 900_000 - 3_000; // expired 3 s ago
    const token = await sign(key, {}, {}, issuedAt);
    expect((await createVerifier({ issuer, audience: AUDIENCE }).verify(token)).userId).toBe("user-1"); // within 5 s
    const strict = createVerifier({ issuer, audience: AUDIENCE, clockToleranceSeconds: 0 });
    expect((await refusal(strict.verify(token))).code).toBe("TOKEN_EXPIRED");
  });

  it("caches the keys as Cache-Control says, and fetches again for an unknown key at most every 30 seconds", async () => {
    const first = await newKey("first");
    const next = await newKey("next");
    reset([first]);
    cacheControl = "public, max-age=120";
    let clock = Date.now();
    const verifier = createVerifier({ issuer, audience: AUDIENCE, now: () => clock });
    await verifier.verify(await sign(first, {}, {}, clock));
    await verifier.verify(await sign(first, {}, {}, clock));
    expect(fetched).toEqual({ discovery: 1, jwks: 1 });

    // A rotation: the issuer publishes the next key; a token signed with it is verified after one fetch.
    jwks = { keys: [first.jwk, next.jwk] };
    clock += 31_000;
    expect((await verifier.verify(await sign(next, {}, {}, clock))).userId).toBe("user-1");
    expect(fetched.jwks).toBe(2);
    // Tokens naming keys nobody has do not make it fetch on every call.
    const stranger = await newKey("stranger");
    for (let i = 0; i < 3; i++) expect((await refusal(verifier.verify(await sign(stranger, {}, {}, clock)))).code).toBe("INVALID_TOKEN");
    expect(fetched.jwks).toBe(2);
    // Once the cached set is older than max-age it is fetched again.
    clock += 121_000;
    await verifier.verify(await sign(first, {}, {}, clock));
    expect(fetched.jwks).toBe(3);
    expect(fetched.discovery).toBe(1);
  });

  it("keeps verifying with stale keys while the issuer is down, and answers 503 when it never had any", async () => {
    const key = await newKey("k");
    reset([key]);
    let clock = Date.now();
    const verifier = createVerifier({ issuer, audience: AUDIENCE, now: () => clock });
    await verifier.verify(await sign(key, {}, {}, clock));
    up = false;
    clock += 301_000;
    expect((await verifier.verify(await sign(key, {}, {}, clock))).userId).toBe("user-1");
    // One try at the issuer, then the stale keys answer at once for 30 s: no fetch per request,
    // even for tokens naming keys nobody has.
    const asked = requests;
    const stranger = await newKey("stranger");
    for (let i = 0; i < 5; i++) {
      expect((await verifier.verify(await sign(key, {}, {}, clock))).userId).toBe("user-1");
      expect((await refusal(verifier.verify(await sign(stranger, {}, {}, clock)))).code).toBe("INVALID_TOKEN");
    }
    expect(requests).toBe(asked);
    clock += 31_000;
    await verifier.verify(await sign(key, {}, {}, clock));
    expect(requests).toBe(asked + 1);

    let coldClock = Date.now();
    const cold = createVerifier({ issuer, audience: AUDIENCE, now: () => coldClock });
    expect(await refusal(cold.verify(await sign(key)))).toMatchObject({ code: "VERIFIER_UNAVAILABLE", status: 503 });
    // Without keys, a failure is remembered for 5 s: no request per call meanwhile.
    const coldAsked = requests;
    expect((await refusal(cold.verify(await sign(key)))).code).toBe("VERIFIER_UNAVAILABLE");
    expect(requests).toBe(coldAsked);
    coldClock += 6_000;
    up = true;
    expect((await cold.verify(await sign(key))).userId).toBe("user-1");
  });

  it("refuses a discovery document that names another issuer", async () => {
    const key = await newKey("k");
    reset([key]);
    discoveryIssuer = "https://evil.example";
    const verifier = createVerifier({ issuer, audience: AUDIENCE });
    expect((await refusal(verifier.verify(await sign(key)))).code).toBe("VERIFIER_UNAVAILABLE");
  });
});
