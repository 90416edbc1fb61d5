import { auditEvents, sessions, users } from "@authlith/core/db/schema";
import { canonicalEmail, createArgon2Hasher, emailSubject } from "@authlith/core";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backends } from "../../core/test/support";
import {
  APP_ORIGIN,
  bearer,
  COOKIE_NAME,
  data,
  errorOf,
  PASSWORD,
  startTestApp,
  tokenTransport,
  uniqueEmail,
  type TestApp,
} from "./support/app";

let ipCounter = 0;
/** A fresh client IP per test, so per-IP limits of one test never touch another. */
const freshIp = () => `198.51.100.${(++ipCounter % 250) + 1}`;

describe.each(backends)("procedures on $name", (backend) => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp(backend, {
      AUTHLITH_REFRESH_GRACE_SECONDS: "10",
      AUTHLITH_SESSION_IDLE_TTL_SECONDS: String(24 * 3600),
      AUTHLITH_SESSION_ABSOLUTE_TTL_SECONDS: String(3 * 24 * 3600),
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  const db = () => app.runtime.deps.db;
  const client = (options: Parameters<TestApp["client"]>[0] = {}) => app.client({ ip: freshIp(), ...options });

  async function registerUser(email = uniqueEmail(), options: { name?: string } = {}) {
    const reply = await client().mutate("auth.register", { email, password: PASSWORD, ...options }, tokenTransport);
    return { email, ...data(reply) };
  }

  async function auditTypes(userId: string) {
    const rows = await db().select({ type: auditEvents.type }).from(auditEvents).where(eq(auditEvents.userId, userId));
    return rows.map((r) => r.type);
  }

  describe("auth.register", () => {
    it("creates the user, opens a session and returns tokens in the body for the token transport", async () => {
      const email = uniqueEmail("Reg");
      const reply = await client().mutate("auth.register", { email, password: PASSWORD, name: "Ada" }, tokenTransport);
      const result = data(reply);
      expect(result.user).toMatchObject({ email, name: "Ada", emailVerified: false });
      expect(result.tokenType).toBe("Bearer");
      expect(result.refreshToken).toMatch(/^[A-Za-z0-9_-]{91}$/);
      expect(reply.cookies).toEqual([]);
      expect(reply.headers["cache-control"]).toBe("no-store");

      const [row] = await db().select().from(users).where(eq(users.id, result.user.id));
      expect(row!.emailCanonical).toBe(email.toLowerCase());
      expect(row!.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      const sessionRows = await db().select().from(sessions).where(eq(sessions.userId, result.user.id));
      expect(sessionRows.map((s) => s.id)).toEqual([result.session.id]);
      expect(await auditTypes(result.user.id)).toEqual(["user.registered"]);
    });

    it("puts the refresh token in a __Host- cookie for browsers, never in the body", async () => {
      const reply = await client().mutate("auth.register", { email: uniqueEmail(), password: PASSWORD });
      const result = data(reply);
      expect(result.refreshToken).toBeUndefined();
      expect(reply.cookies.map((c) => c.split("=")[0])).toEqual([COOKIE_NAME, "__Host-authlith_device"]);
      const cookie = reply.cookies[0]!;
      expect(reply.cookies[1]).toMatch(/^__Host-authlith_device=[A-Za-z0-9_-]{70}; Path=\/; Max-Age=31536000; HttpOnly; Secure; SameSite=Strict$/);
      expect(cookie).toMatch(new RegExp(`^${COOKIE_NAME}=[A-Za-z0-9_-]{91};`));
      expect(cookie).toContain("HttpOnly");
      expect(cookie).toContain("Secure");
      expect(cookie).toContain("SameSite=Lax");
      expect(cookie).toContain("Path=/");
      expect(cookie).not.toMatch(/domain=/i);
      expect(cookie).toMatch(/Max-Age=2592\d\d\d|Max-Age=259\d{3}/);
      expect(reply.raw).not.toContain(cookie.split(";")[0]!.split("=")[1]);
    });

    it("answers CONFLICT for an email that exists in any letter case, and writes nothing", async () => {
      const { email } = await registerUser(uniqueEmail("dup"));
      const before = await db().select().from(users).where(eq(users.emailCanonical, email.toLowerCase()));
      const reply = await client().mutate("auth.register", { email: `  ${email.toUpperCase()} `, password: PASSWORD });
      expect(reply.status).toBe(409);
      expect(errorOf(reply).code).toBe("CONFLICT");
      const after = await db().select().from(users).where(eq(users.emailCanonical, email.toLowerCase()));
      expect(after).toEqual(before);
    });

    it("rejects bad input with field errors and writes nothing", async () => {
      const email = uniqueEmail("bad");
      const cases: [unknown, string][] = [
        [{ email: "not-an-email", password: PASSWORD }, "email"],
        [{ email, password: "short" }, "password"],
        [{ email, password: PASSWORD, role: "admin" }, "role"],
        [{ email, password: PASSWORD, name: "Ada\nINFO forged" }, "name"],
        [{ email: `${"a".repeat(250)}@example.com`, password: PASSWORD }, "email"],
        [{ password: PASSWORD }, "email"],
        [{ email, password: 12345678 }, "password"],
      ];
      for (const [input, field] of cases) {
        const reply = await client().mutate("auth.register", input);
        expect(reply.status, JSON.stringify(input)).toBe(400);
        const error = errorOf(reply);
        expect(error.code).toBe("BAD_REQUEST");
        expect(Object.keys(error.fieldErrors ?? {})).toContain(field);
      }
      expect(await db().select().from(users).where(eq(users.emailCanonical, email))).toEqual([]);
    });

    it("counts password length in code points after NFKC and never truncates", async () => {
      // 8 emoji are 16 UTF-16 units but 8 code points: long enough. 7 are not.
      expect((await client().mutate("auth.register", { email: uniqueEmail(), password: "😀".repeat(7) })).status).toBe(400);
      const emoji = await client().mutate("auth.register", { email: uniqueEmail(), password: "😀".repeat(8) });
      expect(emoji.status).toBe(200);
      // Two passwords sharing their first 100 bytes are different passwords.
      const email = uniqueEmail("long");
      const long = "x".repeat(100);
      data(await client().mutate("auth.register", { email, password: `${long}A` }));
      expect((await client().mutate("auth.login", { email, password: `${long}B` })).status).toBe(401);
      expect((await client().mutate("auth.login", { email, password: `${long}A` })).status).toBe(200);
      // 257 code points is too long.
      expect((await client().mutate("auth.register", { email: uniqueEmail(), password: "p".repeat(257) })).status).toBe(400);
    });

    it("applies the one password policy: common, built from the email or the service's name, or holding a lone surrogate", async () => {
      const email = uniqueEmail("policy");
      const cases: [string, RegExp][] = [
        ["password", /too common/],
        ["12345678", /too common/],
        ["Iloveyou", /too common/],
        // From the email's words ("policy", "example"), not its random part: the blocklist is a Bloom
        // filter, and a random string is "too common" one time in a thousand.
        ["policyexample!", /email address/],
        ["authlith2024", /service's name/],
        ["abcdefgh\ud800", /invalid character/],
      ];
      for (const [password, message] of cases) {
        const reply = await client().mutate("auth.register", { email, password });
        expect(reply.status, JSON.stringify(password)).toBe(400);
        expect(errorOf(reply).fieldErrors?.password?.[0], JSON.stringify(password)).toMatch(message);
      }
      expect(await db().select().from(users).where(eq(users.emailCanonical, email.toLowerCase()))).toEqual([]);
    });

    it("never lets a lone surrogate stand for the replacement character it would be encoded as", async () => {
      const email = uniqueEmail("surrogate");
      data(await client().mutate("auth.register", { email, password: "abcdefgh\ufffd-xyz" }));
      expect((await client().mutate("auth.login", { email, password: "abcdefgh\ud800-xyz" })).status).toBe(401);
      expect((await client().mutate("auth.login", { email, password: "abcdefgh\udfff-xyz" })).status).toBe(401);
      expect((await client().mutate("auth.login", { email, password: "abcdefgh\ufffd-xyz" })).status).toBe(200);
    });

    it("limits registrations per IP and says when to retry", async () => {
      const c = client();
      const limit = app.runtime.deps.config.rateLimits.registerPerIp.limit;
      for (let i = 0; i < limit; i++) expect((await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD })).status).toBe(200);
      const email = uniqueEmail("limited");
      const reply = await c.mutate("auth.register", { email, password: PASSWORD });
      expect(reply.status).toBe(429);
      expect(errorOf(reply).code).toBe("TOO_MANY_REQUESTS");
      expect(Number(reply.headers["retry-after"])).toBeGreaterThan(0);
      expect(await db().select().from(users).where(eq(users.emailCanonical, email))).toEqual([]);
    });
  });

  describe("auth.login", () => {
    it("signs in with a case-folded, trimmed email and opens a fresh session each time", async () => {
      const { email, user } = await registerUser(uniqueEmail("Login"));
      const first = data(await client().mutate("auth.login", { email: `  ${email.toUpperCase()}`, password: PASSWORD }, tokenTransport));
      const second = data(await client().mutate("auth.login", { email, password: PASSWORD }, tokenTransport));
      expect(first.user.id).toBe(user.id);
      expect(first.session.id).not.toBe(second.session.id);
      expect(first.refreshToken).not.toBe(second.refreshToken);
      const types = await auditTypes(user.id);
      expect(types.filter((t) => t === "login.succeeded")).toHaveLength(2);
    });

    it("gives unknown email, wrong password and disabled account the same answer", async () => {
      const { email, user } = await registerUser();
      const disabled = await registerUser();
      await db().update(users).set({ disabledAt: new Date() }).where(eq(users.id, disabled.user.id));
      const replies = [
        await client().mutate("auth.login", { email: uniqueEmail("nobody"), password: PASSWORD }),
        await client().mutate("auth.login", { email, password: "wrong password!" }),
        await client().mutate("auth.login", { email: disabled.email, password: PASSWORD }),
      ];
      for (const reply of replies) {
        expect(reply.status).toBe(401);
        expect(reply.cookies).toEqual([]);
      }
      const bodies = replies.map((r) => JSON.stringify(r.body));
      expect(new Set(bodies).size).toBe(1);
      expect(errorOf(replies[0]!).reason).toBe("INVALID_CREDENTIALS");
      // The session row written while the password was checked was rolled back: only the
      // sign-up's session exists, and the audit trail has the failure, not a success.
      for (const userId of [user.id, disabled.user.id]) {
        expect(await db().select({ id: sessions.id }).from(sessions).where(eq(sessions.userId, userId))).toHaveLength(1);
        const types = await auditTypes(userId);
        expect(types).toContain("login.failed");
        expect(types).not.toContain("login.succeeded");
      }
    });

    it("commits no session when the access token cannot be signed, and answers without internals", async () => {
      const { email, user } = await registerUser();
      const keys = app.runtime.deps.keys;
      const original = keys.signingKey;
      // As when every key of the set is still waiting for its active_from.
      keys.signingKey = () => {
        throw new Error("signing key set: no key is active yet");
      };
      try {
        const reply = await client().mutate("auth.login", { email, password: PASSWORD });
        expect(reply.status).toBe(500);
        expect(reply.raw).not.toContain("signing key");
        expect(reply.cookies).toEqual([]);
      } finally {
        keys.signingKey = original;
      }
      expect(await db().select({ id: sessions.id }).from(sessions).where(eq(sessions.userId, user.id))).toHaveLength(1);
      expect(await auditTypes(user.id)).not.toContain("login.succeeded");
      // And the service signs in normally again once a key is active.
      expect((await client().mutate("auth.login", { email, password: PASSWORD })).status).toBe(200);
    });

    it("normalises passwords with NFKC", async () => {
      const email = uniqueEmail("nfkc");
      data(await client().mutate("auth.register", { email, password: "ﬁnancial-ﬁle-2026" }));
      expect(data(await client().mutate("auth.login", { email, password: "financial-file-2026" })).user.email).toBe(email);
    });

    it("locks an account after repeated failures, for known and unknown emails alike, without touching others", async () => {
      const { email } = await registerUser();
      const unknown = uniqueEmail("ghost");
      const other = await registerUser();
      const { limit } = app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
      for (const target of [email, unknown]) {
        for (let i = 0; i < limit; i++) {
          expect((await client().mutate("auth.login", { email: target, password: "wrong password!" })).status).toBe(401);
        }
      }
      const lockedKnown = await client().mutate("auth.login", { email, password: PASSWORD });
      const lockedUnknown = await client().mutate("auth.login", { email: unknown, password: PASSWORD });
      for (const reply of [lockedKnown, lockedUnknown]) {
        expect(reply.status).toBe(429);
        expect(Number(reply.headers["retry-after"])).toBeGreaterThan(0);
      }
      expect(JSON.stringify(lockedKnown.body)).toBe(JSON.stringify(lockedUnknown.body));
      expect((await client().mutate("auth.login", { email: other.email, password: PASSWORD })).status).toBe(200);
    });

    it("takes the lockout slot before verifying, so concurrent and batched guesses cannot exceed it", async () => {
      const { email } = await registerUser();
      const { limit } = app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
      const guesses = await Promise.all(
        Array.from({ length: limit * 3 }, (_, i) =>
          client().mutate("auth.login", { email, password: i === limit * 2 ? PASSWORD : `wrong password ${i}` }),
        ),
      );
      const statuses = guesses.map((reply) => reply.status);
      // Exactly `limit` attempts reached the password check; every other one was refused unseen.
      expect(statuses.filter((s) => s === 401 || s === 200)).toHaveLength(limit);
      expect(statuses.filter((s) => s === 429)).toHaveLength(limit * 2);
      const batch = await client().request({
        method: "POST",
        path: `/trpc/${Array.from({ length: 10 }, () => "auth.login").join(",")}`,
        query: "batch=1",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [i, { email, password: PASSWORD }]))),
      });
      expect(batch.body.map((r: any) => r.error?.data?.httpStatus)).toEqual(Array(10).fill(429));
    });

    it("records the moment an account locks, once", async () => {
      const { email, user } = await registerUser();
      const { limit } = app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
      for (let i = 0; i < limit + 3; i++) await client().mutate("auth.login", { email, password: "wrong password!" });
      expect((await auditTypes(user.id)).filter((t) => t === "login.rate_limited")).toHaveLength(1);
    });

    it("does not let attempts from elsewhere lock out a device that signed in before", async () => {
      const email = uniqueEmail("home");
      const home = client();
      data(await home.mutate("auth.register", { email, password: PASSWORD }));
      const { limit } = app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
      for (let i = 0; i <= limit; i++) await client().mutate("auth.login", { email, password: "attacker guess" });
      expect((await client().mutate("auth.login", { email, password: PASSWORD })).status).toBe(429);
      // The known device has its own budget.
      expect((await home.mutate("auth.login", { email, password: PASSWORD })).status).toBe(200);
      // Its own failures lock only itself: the account's budget is separate.
      for (let i = 0; i < limit; i++) await home.mutate("auth.login", { email, password: "typo typo" });
      expect((await home.mutate("auth.login", { email, password: PASSWORD })).status).toBe(429);
    });

    it("honours device tokens of the token transport, and only for their own account", async () => {
      const email = uniqueEmail("native");
      const other = uniqueEmail("other");
      const signedUp = data(await client().mutate("auth.register", { email, password: PASSWORD }, tokenTransport));
      const otherDevice = data(await client().mutate("auth.register", { email: other, password: PASSWORD }, tokenTransport)).deviceToken;
      expect(signedUp.deviceToken).toMatch(/^[A-Za-z0-9_-]{70}$/);
      const { limit } = app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
      for (let i = 0; i <= limit; i++) await client().mutate("auth.login", { email, password: "attacker guess" });
      // Another account's device, garbage and a tampered token are no device at all: locked.
      for (const deviceToken of [otherDevice, "x".repeat(70), signedUp.deviceToken.slice(0, -2) + "AA"]) {
        expect((await client().mutate("auth.login", { email, password: PASSWORD, deviceToken }, tokenTransport)).status).toBe(429);
      }
      const withDevice = await client().mutate("auth.login", { email, password: PASSWORD, deviceToken: signedUp.deviceToken }, tokenTransport);
      expect(withDevice.status).toBe(200);
      expect(data(withDevice).deviceToken).toBeDefined();
    });

    it("resets the failure count after a successful sign-in", async () => {
      const { email } = await registerUser();
      const { limit } = app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
      for (let i = 0; i < limit - 1; i++) await client().mutate("auth.login", { email, password: "wrong password!" });
      expect((await client().mutate("auth.login", { email, password: PASSWORD })).status).toBe(200);
      for (let i = 0; i < limit - 1; i++) await client().mutate("auth.login", { email, password: "wrong password!" });
      expect((await client().mutate("auth.login", { email, password: PASSWORD })).status).toBe(200);
    });

    it("does not charge an account for attempts its IP limit refused", async () => {
      const { email } = await registerUser();
      const noisy = client();
      const { limit: ipLimit } = app.runtime.deps.config.rateLimits.loginPerIp;
      for (let i = 0; i < ipLimit; i++) await noisy.mutate("auth.login", { email: uniqueEmail("filler"), password: "wrong password!" });
      for (let i = 0; i < 20; i++) expect((await noisy.mutate("auth.login", { email, password: "wrong password!" })).status).toBe(429);
      // The account's whole window is still there for everyone else.
      const { limit } = app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
      for (let i = 0; i < limit; i++) expect((await client().mutate("auth.login", { email, password: "wrong password!" })).status).toBe(401);
    });

    it("limits attempts per IP", async () => {
      const c = client();
      const { limit } = app.runtime.deps.config.rateLimits.loginPerIp;
      for (let i = 0; i < limit; i++) await c.mutate("auth.login", { email: uniqueEmail(), password: "wrong password!" });
      const reply = await c.mutate("auth.login", { email: uniqueEmail(), password: PASSWORD });
      expect(reply.status).toBe(429);
      expect(reply.headers["retry-after"]).toMatch(/^\d+$/);
    });

    it("records failed attempts with a pseudonymous subject, never the email", async () => {
      const email = uniqueEmail("audit");
      await client().mutate("auth.login", { email, password: "wrong password!" });
      const subject = emailSubject(app.runtime.deps, canonicalEmail(email));
      const rows = await db().select().from(auditEvents).where(eq(auditEvents.type, "login.failed"));
      const mine = rows.filter((r) => r.subject === subject);
      expect(mine).toHaveLength(1);
      expect(mine[0]!.ip).toMatch(/^198\.51\.100\./);
      for (const row of rows) expect(JSON.stringify(row)).not.toContain(email);
    });

    it("upgrades a hash made with weaker parameters on the next successful sign-in", async () => {
      const { email, user } = await registerUser();
      const weak = await createArgon2Hasher({ memoryCost: 8192, timeCost: 1, parallelism: 1 }).hash(PASSWORD);
      await db().update(users).set({ passwordHash: weak }).where(eq(users.id, user.id));
      data(await client().mutate("auth.login", { email, password: PASSWORD }));
      const [row] = await db().select({ hash: users.passwordHash }).from(users).where(eq(users.id, user.id));
      expect(row!.hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      expect((await client().mutate("auth.login", { email, password: PASSWORD })).status).toBe(200);
    });
  });

  describe("auth.refresh", () => {
    it("rotates the token; the parent inside the grace window gets the same child; the session rotates once", async () => {
      const { refreshToken, session, user } = await registerUser();
      const c = client({ origin: null });
      const first = data(await c.mutate("auth.refresh", { refreshToken }));
      expect(first.refreshToken).not.toBe(refreshToken);
      expect(first.user.id).toBe(user.id);
      expect(first.session.id).toBe(session.id);
      app.clock.advance(5_000);
      const again = data(await c.mutate("auth.refresh", { refreshToken }));
      expect(again.refreshToken).toBe(first.refreshToken);
      expect(again.accessToken).not.toBe(first.accessToken);
      const [row] = await db().select().from(sessions).where(eq(sessions.id, session.id));
      expect(row!.refreshGeneration).toBe(1);
      expect(row!.revokedAt).toBeNull();
      // The child keeps working.
      expect(data(await c.mutate("auth.refresh", { refreshToken: first.refreshToken })).refreshToken).not.toBe(first.refreshToken);
    });

    it("revokes the session when a rotated token comes back after the grace window", async () => {
      const { refreshToken, session, user } = await registerUser();
      const c = client({ origin: null });
      const child = data(await c.mutate("auth.refresh", { refreshToken }));
      app.clock.advance(11_000);
      const replay = await c.mutate("auth.refresh", { refreshToken });
      expect(replay.status).toBe(401);
      expect(errorOf(replay).reason).toBe("INVALID_REFRESH_TOKEN");
      const [row] = await db().select().from(sessions).where(eq(sessions.id, session.id));
      expect(row!.revokedAt).not.toBeNull();
      expect(row!.revokedReason).toBe("refresh_token_reuse");
      expect(await auditTypes(user.id)).toContain("session.reuse_detected");
      // The whole family is dead: the child and every access token of the session.
      expect((await c.mutate("auth.refresh", { refreshToken: child.refreshToken })).status).toBe(401);
      const me = await c.query("auth.me", undefined, bearer(child.accessToken));
      expect(me.status).toBe(401);
      expect(errorOf(me).reason).toBe("SESSION_REVOKED");
    });

    it("treats an older ancestor as a replay even inside the window", async () => {
      const { refreshToken, session } = await registerUser();
      const c = client({ origin: null });
      const child = data(await c.mutate("auth.refresh", { refreshToken }));
      data(await c.mutate("auth.refresh", { refreshToken: child.refreshToken }));
      expect((await c.mutate("auth.refresh", { refreshToken })).status).toBe(401);
      const [row] = await db().select().from(sessions).where(eq(sessions.id, session.id));
      expect(row!.revokedReason).toBe("refresh_token_reuse");
    });

    it("does not let a forged token that names a real session revoke it", async () => {
      const { refreshToken, session } = await registerUser();
      const bytes = Buffer.from(refreshToken, "base64url");
      for (const generation of [0, 1, 7]) {
        const forged = Buffer.from(bytes);
        forged.writeUInt32BE(generation, 16);
        forged[40] = forged[40]! ^ 0xff;
        const reply = await client({ origin: null }).mutate("auth.refresh", { refreshToken: forged.toString("base64url") });
        expect(reply.status).toBe(401);
      }
      const [row] = await db().select().from(sessions).where(eq(sessions.id, session.id));
      expect(row!.revokedAt).toBeNull();
      expect(data(await client({ origin: null }).mutate("auth.refresh", { refreshToken })).session.id).toBe(session.id);
    });

    it("refuses forged tokens before counting them against the session they name", async () => {
      const { refreshToken } = await registerUser();
      const { limit } = app.runtime.deps.config.rateLimits.refreshPerSession;
      const bytes = Buffer.from(refreshToken, "base64url");
      for (let i = 0; i < limit + 5; i++) {
        const forged = Buffer.from(bytes);
        forged.writeUInt32BE(0xffffffff - i, 16); // any generation, even one no integer column holds
        expect((await client({ origin: null }).mutate("auth.refresh", { refreshToken: forged.toString("base64url") })).status).toBe(401);
      }
      expect((await client({ origin: null }).mutate("auth.refresh", { refreshToken })).status).toBe(200);
    });

    it("rejects malformed and missing tokens with 401", async () => {
      for (const refreshToken of ["", "x", "A".repeat(91), "!".repeat(91), "A".repeat(300)]) {
        const reply = await client({ origin: null }).mutate("auth.refresh", { refreshToken });
        expect([400, 401], refreshToken).toContain(reply.status);
      }
      const missing = await client({ origin: null }).mutate("auth.refresh");
      expect(missing.status).toBe(401);
      expect(errorOf(missing).reason).toBe("MISSING_REFRESH_TOKEN");
    });

    it("rotates the cookie for browsers and never returns the token in the body", async () => {
      const c = client();
      data(await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }));
      const before = c.jar.get(COOKIE_NAME);
      // Even when a script asks for the body transport, a cookie-borne token leaves in a cookie.
      const reply = await c.mutate("auth.refresh", undefined, tokenTransport);
      const result = data(reply);
      expect(result.refreshToken).toBeUndefined();
      expect(c.jar.get(COOKIE_NAME)).toBeDefined();
      expect(c.jar.get(COOKIE_NAME)).not.toBe(before);
      expect(reply.raw).not.toContain(c.jar.get(COOKIE_NAME)!);
      expect(reply.headers["access-control-allow-origin"]).toBe(APP_ORIGIN);
      expect(reply.headers["access-control-allow-credentials"]).toBe("true");
    });

    it("refuses cookie refreshes without an allowed Origin", async () => {
      const c = client();
      data(await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }));
      const cookie = c.jar.get(COOKIE_NAME)!;
      const noOrigin = client({ origin: null });
      noOrigin.jar.set(COOKIE_NAME, cookie);
      const reply = await noOrigin.mutate("auth.refresh");
      expect(reply.status).toBe(403);
      expect(errorOf(reply).reason).toBe("ORIGIN_NOT_ALLOWED");
      const foreign = client({ origin: "https://evil.example" });
      foreign.jar.set(COOKIE_NAME, cookie);
      expect((await foreign.mutate("auth.refresh")).status).toBe(403);
      // The cookie still works from the right origin: nothing was rotated.
      expect((await c.mutate("auth.refresh")).status).toBe(200);
    });

    it("enforces the idle and absolute session lifetimes", async () => {
      const idle = await registerUser();
      app.clock.advance(24 * 3600 * 1000 + 1000);
      expect((await client({ origin: null }).mutate("auth.refresh", { refreshToken: idle.refreshToken })).status).toBe(401);

      const active = await registerUser();
      let token = active.refreshToken;
      // Refreshing every 20 hours keeps the idle timer alive, until the 3-day absolute limit.
      for (let i = 0; i < 3; i++) {
        app.clock.advance(20 * 3600 * 1000);
        token = data(await client({ origin: null }).mutate("auth.refresh", { refreshToken: token })).refreshToken;
      }
      app.clock.advance(20 * 3600 * 1000);
      expect((await client({ origin: null }).mutate("auth.refresh", { refreshToken: token })).status).toBe(401);
    });

    it("refuses refreshes of a disabled user", async () => {
      const { refreshToken, user } = await registerUser();
      await db().update(users).set({ disabledAt: new Date() }).where(eq(users.id, user.id));
      expect((await client({ origin: null }).mutate("auth.refresh", { refreshToken })).status).toBe(401);
    });

    it("limits failed refreshes per IP (an IP replaying dead tokens gets 429)", async () => {
      const c = client({ origin: null });
      const { limit } = app.runtime.deps.config.rateLimits.refreshFailuresPerIp;
      const dead = await registerUser();
      data(await client().mutate("auth.logout", undefined, bearer(dead.accessToken)));
      for (let i = 0; i < limit; i++) expect((await c.mutate("auth.refresh", { refreshToken: dead.refreshToken })).status).toBe(401);
      const limited = await c.mutate("auth.refresh", { refreshToken: dead.refreshToken });
      expect(limited.status).toBe(429);
      // Another IP, and this IP's own valid tokens through the rotation path, are unaffected.
      const { refreshToken } = await registerUser();
      expect((await c.mutate("auth.refresh", { refreshToken })).status).toBe(200);
    });

    it("limits refreshes per session", async () => {
      const { refreshToken } = await registerUser();
      const { limit } = app.runtime.deps.config.rateLimits.refreshPerSession;
      let token = refreshToken;
      for (let i = 0; i < limit; i++) token = data(await client({ origin: null }).mutate("auth.refresh", { refreshToken: token })).refreshToken;
      const reply = await client({ origin: null }).mutate("auth.refresh", { refreshToken: token });
      expect(reply.status).toBe(429);
      expect(Number(reply.headers["retry-after"])).toBeGreaterThan(0);
    });
  });

  describe("auth.me", () => {
    it("returns the user from the access token", async () => {
      const { accessToken, user, session } = await registerUser();
      const me = data(await client().query("auth.me", undefined, bearer(accessToken)));
      expect(me.user).toEqual({ id: user.id, email: user.email, emailVerified: false });
      expect(me.session.id).toBe(session.id);
    });

    it("refuses missing, malformed and expired tokens with 401 and a reason", async () => {
      const { accessToken } = await registerUser();
      const missing = await client().query("auth.me");
      expect(errorOf(missing).reason).toBe("MISSING_TOKEN");
      expect(missing.headers["www-authenticate"]).toContain("Bearer");
      const garbage = await client().query("auth.me", undefined, bearer("abc.def.ghi"));
      expect(garbage.status).toBe(401);
      expect(errorOf(garbage).reason).toBe("INVALID_TOKEN");
      app.clock.advance(16 * 60 * 1000);
      const expired = await client().query("auth.me", undefined, bearer(accessToken));
      expect(expired.status).toBe(401);
      expect(errorOf(expired).reason).toBe("TOKEN_EXPIRED");
    });
  });

  describe("auth.logout and auth.logoutAll", () => {
    it("logout ends this session: the access token is refused at once and the cookie cleared", async () => {
      const c = client();
      const signedIn = data(await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }));
      const cookieBefore = c.jar.get(COOKIE_NAME)!;
      const reply = await c.mutate("auth.logout", undefined, bearer(signedIn.accessToken));
      expect(data(reply)).toEqual({ success: true });
      expect(reply.cookies.some((cookie) => cookie.startsWith(`${COOKIE_NAME}=;`) && cookie.includes("Max-Age=0"))).toBe(true);
      expect(errorOf(await c.query("auth.me", undefined, bearer(signedIn.accessToken))).reason).toBe("SESSION_REVOKED");
      const stale = client();
      stale.jar.set(COOKIE_NAME, cookieBefore);
      expect((await stale.mutate("auth.refresh")).status).toBe(401);
      expect(await auditTypes(signedIn.user.id)).toContain("session.logged_out");
    });

    it("logout works with only the refresh token (expired access token)", async () => {
      const { refreshToken, session } = await registerUser();
      data(await client({ origin: null }).mutate("auth.logout", { refreshToken }));
      const [row] = await db().select().from(sessions).where(eq(sessions.id, session.id));
      expect(row!.revokedReason).toBe("logout");
    });

    it("logout with a forged refresh token naming someone's session ends nothing", async () => {
      const victim = await registerUser();
      const forged = Buffer.from(victim.refreshToken, "base64url");
      forged[30] = forged[30]! ^ 0x01;
      expect(data(await client({ origin: null }).mutate("auth.logout", { refreshToken: forged.toString("base64url") }))).toEqual({ success: true });
      expect(data(await client().query("auth.me", undefined, bearer(victim.accessToken))).user.id).toBe(victim.user.id);
    });

    it("logout with a cookie but no allowed Origin clears the cookie and ends nothing (no CSRF logout)", async () => {
      const c = client();
      const signedIn = data(await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }));
      const noOrigin = client({ origin: null });
      noOrigin.jar.set(COOKIE_NAME, c.jar.get(COOKIE_NAME)!);
      const reply = await noOrigin.mutate("auth.logout");
      expect(data(reply)).toEqual({ success: true });
      expect(reply.cookies[0]).toContain("Max-Age=0");
      expect((await c.query("auth.me", undefined, bearer(signedIn.accessToken))).status).toBe(200);
    });

    it("logout without any credential still succeeds and clears the cookie", async () => {
      const reply = await client().mutate("auth.logout");
      expect(data(reply)).toEqual({ success: true });
      expect(reply.cookies[0]).toContain("Max-Age=0");
    });

    it("logoutAll ends every session of the user and no one else's", async () => {
      const { email, accessToken } = await registerUser();
      const second = data(await client().mutate("auth.login", { email, password: PASSWORD }, tokenTransport));
      const third = data(await client().mutate("auth.login", { email, password: PASSWORD }, tokenTransport));
      const bystander = await registerUser();
      const result = data(await client().mutate("auth.logoutAll", undefined, bearer(accessToken)));
      expect(result).toEqual({ success: true, revokedSessions: 3 });
      for (const token of [accessToken, second.accessToken, third.accessToken]) {
        expect((await client().query("auth.me", undefined, bearer(token))).status).toBe(401);
      }
      expect((await client({ origin: null }).mutate("auth.refresh", { refreshToken: third.refreshToken })).status).toBe(401);
      expect((await client().query("auth.me", undefined, bearer(bystander.accessToken))).status).toBe(200);
    });
  });

  describe("session.list and session.revoke", () => {
    it("lists the user's active sessions with device, IP, times and the current one", async () => {
      const { email, accessToken, session } = await registerUser();
      const phone = data(
        await app.client({ ip: "192.0.2.77", userAgent: "Phone/1.0" }).mutate("auth.login", { email, password: PASSWORD }, tokenTransport),
      );
      const list = data(await client().query("session.list", undefined, bearer(accessToken))).sessions;
      expect(list).toHaveLength(2);
      const current = list.find((s: any) => s.current);
      expect(current.id).toBe(session.id);
      const other = list.find((s: any) => s.id === phone.session.id);
      expect(other).toMatchObject({ ip: "192.0.2.77", userAgent: "Phone/1.0", current: false });
      for (const s of list) {
        expect(Date.parse(s.createdAt)).not.toBeNaN();
        expect(Date.parse(s.lastUsedAt)).not.toBeNaN();
      }
    });

    it("revoking a session signs that device out on its next request, and drops it from the list", async () => {
      const { email, accessToken } = await registerUser();
      const phone = data(await client().mutate("auth.login", { email, password: PASSWORD }, tokenTransport));
      expect(data(await client().mutate("session.revoke", { sessionId: phone.session.id }, bearer(accessToken)))).toEqual({ success: true });
      expect(errorOf(await client().query("auth.me", undefined, bearer(phone.accessToken))).reason).toBe("SESSION_REVOKED");
      expect((await client({ origin: null }).mutate("auth.refresh", { refreshToken: phone.refreshToken })).status).toBe(401);
      const list = data(await client().query("session.list", undefined, bearer(accessToken))).sessions;
      expect(list.map((s: any) => s.id)).not.toContain(phone.session.id);
      expect((await client().query("auth.me", undefined, bearer(accessToken))).status).toBe(200);
    });

    it("cannot revoke another user's session: NOT_FOUND, and that session lives on", async () => {
      const attacker = await registerUser();
      const victim = await registerUser();
      const reply = await client().mutate("session.revoke", { sessionId: victim.session.id }, bearer(attacker.accessToken));
      expect(reply.status).toBe(404);
      const unknown = await client().mutate("session.revoke", { sessionId: "01900000-0000-7000-8000-000000000000" }, bearer(attacker.accessToken));
      expect(JSON.stringify(unknown.body)).toBe(JSON.stringify(reply.body).replace(victim.session.id, "01900000-0000-7000-8000-000000000000"));
      expect((await client().query("auth.me", undefined, bearer(victim.accessToken))).status).toBe(200);
    });

    it("revokeOthers signs out every other device and keeps this one", async () => {
      const { email, accessToken, session } = await registerUser();
      const others = [
        data(await client().mutate("auth.login", { email, password: PASSWORD }, tokenTransport)),
        data(await client().mutate("auth.login", { email, password: PASSWORD }, tokenTransport)),
      ];
      expect(data(await client().mutate("session.revokeOthers", undefined, bearer(accessToken)))).toEqual({ success: true, revokedSessions: 2 });
      for (const other of others) expect((await client().query("auth.me", undefined, bearer(other.accessToken))).status).toBe(401);
      const list = data(await client().query("session.list", undefined, bearer(accessToken))).sessions;
      expect(list.map((s: any) => s.id)).toEqual([session.id]);
    });

    it("revoking the current session clears the cookie", async () => {
      const c = client();
      const signedIn = data(await c.mutate("auth.register", { email: uniqueEmail(), password: PASSWORD }));
      await c.mutate("session.revoke", { sessionId: signedIn.session.id }, bearer(signedIn.accessToken));
      expect(c.jar.has(COOKIE_NAME)).toBe(false);
    });

    it("validates the session id and requires authentication", async () => {
      const { accessToken } = await registerUser();
      const bad = await client().mutate("session.revoke", { sessionId: "nope" }, bearer(accessToken));
      expect(bad.status).toBe(400);
      expect(errorOf(bad).fieldErrors?.sessionId).toBeDefined();
      expect((await client().query("session.list")).status).toBe(401);
    });
  });

  describe("audit trail", () => {
    it("records the request id, IP and user agent of each event", async () => {
      const { user } = await registerUser();
      const rows = await db()
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.userId, user.id), eq(auditEvents.type, "user.registered")));
      expect(rows).toHaveLength(1);
      expect(rows[0]!.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(rows[0]!.ip).toMatch(/^198\.51\.100\./);
      expect(rows[0]!.userAgent).toBe("vitest");
    });
  });
});

describe.each(backends)("the consecutive-failure ceiling on $name", (backend) => {
  // Small limits and a one-second window, so the run of failures spans several windows quickly.
  const WINDOW_MS = 1000;
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(backend, {}, {
      rateLimits: {
        loginPerIp: { limit: 1000, windowSeconds: 60 },
        loginFailuresPerAccount: { limit: 3, windowSeconds: WINDOW_MS / 1000 },
        loginConsecutiveFailures: { limit: 7, windowSeconds: 3600 },
        registerPerIp: { limit: 1000, windowSeconds: 60 },
        refreshFailuresPerIp: { limit: 1000, windowSeconds: 60 },
        refreshPerSession: { limit: 1000, windowSeconds: 60 },
      },
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  /** Lets a window run out: the app's clock for the in-process store, real time for Redis. */
  const passWindow = async () => {
    app.clock.advance(WINDOW_MS + 100);
    if (backend.real) await new Promise((resolve) => setTimeout(resolve, WINDOW_MS + 100));
  };

  it("counts towards the ceiling only attempts that reached the password check", async () => {
    const email = uniqueEmail("burst");
    data(await app.client().mutate("auth.register", { email, password: PASSWORD }));
    const { loginConsecutiveFailures: ceiling } = app.runtime.deps.config.rateLimits;
    // A burst far larger than the ceiling, inside one window: most of it is refused unchecked...
    const burst = await Promise.all(Array.from({ length: ceiling.limit * 3 }, (_, i) => app.client().mutate("auth.login", { email, password: `burst ${i}` })));
    expect(burst.filter((r) => r.status === 401).length).toBeLessThan(ceiling.limit);
    await passWindow();
    // ...so it did not use up the ceiling: the owner signs in from a new device.
    expect((await app.client().mutate("auth.login", { email, password: PASSWORD })).status).toBe(200);
  });

  it("stops guessing for good once the ceiling is reached, until a known device signs in", async () => {
    const email = uniqueEmail("ceiling");
    const home = app.client();
    data(await home.mutate("auth.register", { email, password: PASSWORD }));
    const { loginFailuresPerAccount: window, loginConsecutiveFailures: ceiling } = app.runtime.deps.config.rateLimits;
    let failures = 0;
    while (failures < ceiling.limit) {
      for (let i = 0; i < window.limit && failures < ceiling.limit; i++, failures++) {
        expect((await app.client().mutate("auth.login", { email, password: `guess ${failures}` })).status).toBe(401);
      }
      await passWindow(); // each window lock runs out...
    }
    // ...but the ceiling does not: even the right password from a new device is refused.
    const refused = await app.client().mutate("auth.login", { email, password: PASSWORD });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(window.windowSeconds);
    const [user] = await app.runtime.deps.db.select().from(users).where(eq(users.emailCanonical, email));
    const types = (await app.runtime.deps.db.select({ type: auditEvents.type }).from(auditEvents).where(eq(auditEvents.userId, user!.id))).map((r) => r.type);
    expect(types).toContain("login.rate_limited");
    // The owner's known device still signs in, and that ends the run for everyone.
    expect((await home.mutate("auth.login", { email, password: PASSWORD })).status).toBe(200);
    expect((await app.client().mutate("auth.login", { email, password: PASSWORD })).status).toBe(200);
  });
});
