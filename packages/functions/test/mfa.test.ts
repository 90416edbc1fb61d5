import { auditEvents, mfaChallenges, recoveryCodes, sessions, totpFactors, users } from "@authlith/core/db/schema";
import { createSecretBox, purgeExpired } from "@authlith/core";
import { and, eq } from "drizzle-orm";
import * as OTPAuth from "otpauth";
import { describe, expect, it } from "vitest";
import { backends } from "../../core/test/support";
import { bearer, data, errorOf, PASSWORD, tokenTransport, uniqueEmail, useTestApp, type Reply } from "./support/app";

const claims = (accessToken: string) =>
  JSON.parse(Buffer.from(accessToken.split(".")[1]!, "base64url").toString()) as { amr: string[]; auth_time: number; iat: number; sub: string };

describe.each(backends)("second factors: TOTP and recovery codes on $name", (backend) => {
  const service = useTestApp(backend);
  const client = service.client;
  const app = () => service.app;
  const db = () => app().runtime.deps.db;
  const outbox = () => app().runtime.outbox!;

  /** The code an authenticator app shows for `secret` at the service's clock (± steps). */
  const codeFor = (secret: string, steps = 0) =>
    new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret), digits: 6, period: 30, algorithm: "SHA1" }).generate({
      timestamp: app().clock.now() + steps * 30_000,
    });

  const signUp = async (email = uniqueEmail("mfa")) => {
    const body = data(await client().mutate("auth.register", { email, password: PASSWORD }, tokenTransport));
    return { email, accessToken: body.accessToken as string, userId: body.user.id as string };
  };
  const login = (email: string, password = PASSWORD, options = {}) => client(options).mutate("auth.login", { email, password }, tokenTransport);
  const verify = (input: Record<string, unknown>, options = {}) => client(options).mutate("auth.verifyMfa", input, tokenTransport);

  /** A signed-up account with a confirmed authenticator app: its secret and recovery codes. */
  const withTotp = async () => {
    const account = await signUp();
    const enrolment = data(await client().mutate("mfa.totp.enroll", undefined, bearer(account.accessToken)));
    const confirmed = data(await client().mutate("mfa.totp.confirm", { code: codeFor(enrolment.secret) }, bearer(account.accessToken)));
    // Codes are single use per step: later sign-ins use the next step's code.
    app().clock.advance(30_000);
    return { ...account, secret: enrolment.secret as string, recoveryCodes: confirmed.recoveryCodes as string[] };
  };
  const challengeFor = async (email: string) => {
    const body = data(await login(email));
    expect(body.mfaRequired).toBe(true);
    return body.challengeId as string;
  };

  describe("enrolment", () => {
    it("hands out a 160-bit secret, its otpauth URI and a QR code, stores it encrypted, and activates it with a first code", async () => {
      const account = await signUp();
      const enrolment = data(await client().mutate("mfa.totp.enroll", undefined, bearer(account.accessToken)));
      expect(enrolment.secret).toMatch(/^[A-Z2-7]{32}$/); // 20 bytes
      const uri = new URL(enrolment.uri);
      expect(uri.protocol).toBe("otpauth:");
      expect(uri.searchParams.get("secret")).toBe(enrolment.secret);
      expect(uri.searchParams.get("issuer")).toBe("authlith");
      expect(decodeURIComponent(uri.pathname)).toContain(account.email);
      expect(enrolment.qrCode).toMatch(/^data:image\/svg\+xml;base64,/);
      expect(Buffer.from(enrolment.qrCode.split(",")[1], "base64").toString()).toMatch(/^<svg[\s\S]*<\/svg>$/);

      // At rest: AES-GCM under a key id, bound to the account; never the secret itself.
      const [row] = await db().select().from(totpFactors).where(eq(totpFactors.userId, account.userId));
      const raw = Buffer.from(OTPAuth.Secret.fromBase32(enrolment.secret).bytes);
      expect(Buffer.from(row!.secretCiphertext).includes(raw)).toBe(false);
      expect(row!.keyId).toBe(app().runtime.deps.secretBox.keyId);
      expect(row!.confirmedAt).toBeNull();
      expect(app().runtime.deps.secretBox.open(row!.secretCiphertext, row!.keyId, account.userId)).toEqual(raw);
      expect(app().runtime.deps.secretBox.open(row!.secretCiphertext, row!.keyId, "00000000-0000-7000-8000-000000000000")).toBeNull();
      expect(createSecretBox([Buffer.alloc(32, 7)]).open(row!.secretCiphertext, row!.keyId, account.userId)).toBeNull();

      // Not active until confirmed: sign-in still takes the password alone.
      expect(data(await login(account.email)).accessToken).toBeDefined();
      const wrong = await client().mutate("mfa.totp.confirm", { code: codeFor(enrolment.secret, 5) }, bearer(account.accessToken));
      expect(errorOf(wrong)).toMatchObject({ code: "BAD_REQUEST", fieldErrors: { code: ["That code is not correct"] } });
      const confirmed = data(await client().mutate("mfa.totp.confirm", { code: codeFor(enrolment.secret) }, bearer(account.accessToken)));
      expect(confirmed.recoveryCodes).toHaveLength(10);
      expect(new Set(confirmed.recoveryCodes).size).toBe(10);
      for (const code of confirmed.recoveryCodes) expect(code).toMatch(/^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$/);
      // Only keyed hashes are stored.
      const stored = await db().select().from(recoveryCodes).where(eq(recoveryCodes.userId, account.userId));
      expect(stored).toHaveLength(10);
      for (const code of confirmed.recoveryCodes) expect(stored.some((r) => Buffer.from(r.codeHash).toString().includes(code))).toBe(false);
      expect(outbox().lastTo(account.email, "mfa_factor_added")?.subject).toMatch(/sign-in method was added/);

      const status = data(await client().query("mfa.status", undefined, bearer(account.accessToken)));
      expect(status).toMatchObject({ enabled: true, totp: { enabled: true }, passkeys: [], recoveryCodesLeft: 10 });
      // A second enrolment is refused while one is active.
      expect(errorOf(await client().mutate("mfa.totp.enroll", undefined, bearer(account.accessToken)))).toMatchObject({ code: "CONFLICT", reason: "TOTP_ALREADY_ENABLED" });
    });

    it("needs a recent sign-in, or the password", async () => {
      const account = await signUp();
      app().clock.advance(6 * 60_000);
      const refused = await client().mutate("mfa.totp.enroll", undefined, bearer(account.accessToken));
      expect(errorOf(refused)).toMatchObject({ code: "FORBIDDEN", reason: "REAUTHENTICATION_REQUIRED" });
      expect(errorOf(await client().mutate("mfa.totp.enroll", { password: "not the password" }, bearer(account.accessToken)))).toMatchObject({
        code: "FORBIDDEN",
        reason: "INVALID_PASSWORD",
      });
      expect(data(await client().mutate("mfa.totp.enroll", { password: PASSWORD }, bearer(account.accessToken))).secret).toBeDefined();
      expect((await client().mutate("mfa.totp.enroll")).status).toBe(401);
    });
  });

  describe("sign-in with a second factor", () => {
    it("answers a challenge without tokens or cookie, then signs in with a code; amr and auth_time say how and when", async () => {
      const account = await withTotp();
      const before = await db().select().from(sessions).where(eq(sessions.userId, account.userId));
      const cookieLogin = await client().mutate("auth.login", { email: account.email, password: PASSWORD });
      const challenge = data(cookieLogin);
      expect(challenge).toEqual({ mfaRequired: true, challengeId: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), methods: ["totp", "recovery_code"], expiresAt: expect.any(String) });
      expect(cookieLogin.cookies).toEqual([]);
      expect(cookieLogin.raw).not.toMatch(/accessToken|refreshToken|deviceToken/);
      expect(new Date(challenge.expiresAt).getTime()).toBe(app().clock.now() + 300_000);
      expect(await db().select().from(sessions).where(eq(sessions.userId, account.userId))).toHaveLength(before.length);
      // Only its hash is stored.
      const rows = await db().select().from(mfaChallenges).where(eq(mfaChallenges.userId, account.userId));
      expect(rows.some((row) => Buffer.from(row.idHash).toString("base64url") === challenge.challengeId)).toBe(false);

      const signedIn = await client().mutate("auth.verifyMfa", { challengeId: challenge.challengeId, code: codeFor(account.secret) });
      expect(signedIn.status).toBe(200);
      expect(signedIn.cookies.some((c) => c.startsWith("__Host-authlith_rt="))).toBe(true);
      const token = claims(data(signedIn).accessToken);
      expect(token.amr).toEqual(["pwd", "otp", "mfa"]);
      expect(token.auth_time).toBe(Math.floor(app().clock.now() / 1000));
      const me = data(await client().query("auth.me", undefined, bearer(data(signedIn).accessToken)));
      expect(me.session.amr).toEqual(["pwd", "otp", "mfa"]);
      // A refresh keeps how the session began.
      app().clock.advance(60_000);
      const refreshed = data(await client().mutate("auth.refresh", { refreshToken: data(await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret) })).refreshToken }, tokenTransport));
      expect(claims(refreshed.accessToken).amr).toEqual(["pwd", "otp", "mfa"]);
      const audit = await db().select().from(auditEvents).where(eq(auditEvents.userId, account.userId));
      expect(audit.map((e) => e.type)).toEqual(expect.arrayContaining(["login.mfa_required", "login.succeeded", "mfa.totp_enabled"]));
    });

    it("accepts a code once: a replay on a new challenge fails, and of two requests with one code exactly one signs in", async () => {
      const account = await withTotp();
      const code = codeFor(account.secret);
      expect((await verify({ challengeId: await challengeFor(account.email), code })).status).toBe(200);
      expect(errorOf(await verify({ challengeId: await challengeFor(account.email), code }))).toMatchObject({ code: "UNAUTHORIZED", reason: "INVALID_MFA_CODE" });
      // The previous step's code is older than the one used: refused too.
      expect((await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret, -1) })).status).toBe(401);

      app().clock.advance(30_000);
      const next = codeFor(account.secret);
      const [a, b] = [await challengeFor(account.email), await challengeFor(account.email)];
      const replies = await Promise.all([verify({ challengeId: a, code: next }), verify({ challengeId: b, code: next })]);
      expect(replies.map((r) => r.status).sort()).toEqual([200, 401]);
    });

    it("accepts the code of the next or previous step (clock drift), not two steps away", async () => {
      const account = await withTotp();
      expect((await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret, 2) })).status).toBe(401);
      expect((await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret, 1) })).status).toBe(200);
      app().clock.advance(90_000);
      expect((await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret, -1) })).status).toBe(200);
    });

    it("spends a challenge: five tries, five minutes, one sign-in", async () => {
      const account = await withTotp();
      const challengeId = await challengeFor(account.email);
      const wrongCode = codeFor(account.secret) === "000000" ? "111111" : "000000";
      // Each wrong code says how many tries are left; the fifth says to sign in again.
      for (let i = 0; i < 5; i++) {
        const refused = await verify({ challengeId, code: wrongCode });
        expect(refused.body.error.data).toMatchObject({ reason: "INVALID_MFA_CODE", attemptsLeft: 4 - i });
        expect(refused.body.error.message).toBe(i < 4 ? "That code is not correct" : "That code is not correct; sign in again");
      }
      expect(errorOf(await verify({ challengeId, code: codeFor(account.secret) }))).toMatchObject({ code: "UNAUTHORIZED", reason: "MFA_CHALLENGE_INVALID" });

      const expiring = await challengeFor(account.email);
      app().clock.advance(300_001);
      expect(errorOf(await verify({ challengeId: expiring, code: codeFor(account.secret) }))).toMatchObject({ reason: "MFA_CHALLENGE_INVALID" });

      const once = await challengeFor(account.email);
      expect((await verify({ challengeId: once, code: codeFor(account.secret) })).status).toBe(200);
      app().clock.advance(30_000);
      expect(errorOf(await verify({ challengeId: once, code: codeFor(account.secret) }))).toMatchObject({ reason: "MFA_CHALLENGE_INVALID" });
      expect(errorOf(await verify({ challengeId: "A".repeat(43), code: codeFor(account.secret) }))).toMatchObject({ reason: "MFA_CHALLENGE_INVALID" });
    });

    it("leaves expired challenges and abandoned enrolments to the purge", async () => {
      const account = await withTotp();
      await challengeFor(account.email);
      const abandoned = await signUp();
      data(await client().mutate("mfa.totp.enroll", undefined, bearer(abandoned.accessToken)));
      const mine = () => db().select().from(mfaChallenges).where(eq(mfaChallenges.userId, account.userId));
      expect(await mine()).toHaveLength(1);
      app().clock.advance(301_000);
      const purged = await purgeExpired({ db: db(), clock: app().clock });
      expect(purged.mfaChallenges).toBeGreaterThanOrEqual(1);
      expect(await mine()).toEqual([]);
      expect(await db().select().from(totpFactors).where(eq(totpFactors.userId, abandoned.userId))).toHaveLength(1);
      app().clock.advance(24 * 3600_000);
      await purgeExpired({ db: db(), clock: app().clock });
      expect(await db().select().from(totpFactors).where(eq(totpFactors.userId, abandoned.userId))).toEqual([]);
      expect(await db().select().from(totpFactors).where(eq(totpFactors.userId, account.userId))).toHaveLength(1);
    });

    it("limits codes per account across challenges, tells the owner once, and a success gives the budget back", async () => {
      const account = await withTotp();
      const wrong = (challengeId: string) => verify({ challengeId, code: "123456" === codeFor(account.secret) ? "654321" : "123456" });
      // 10 per 15 minutes, spread over challenges of 5 tries each: the 11th is refused whatever it is.
      for (let i = 0; i < 2; i++) {
        const challengeId = await challengeFor(account.email);
        for (let j = 0; j < 5; j++) expect((await wrong(challengeId)).status).toBe(401);
      }
      const locked = await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret) });
      expect(locked.status).toBe(429);
      expect(errorOf(locked)).toMatchObject({ code: "TOO_MANY_REQUESTS", reason: "RATE_LIMITED" });
      expect(Number(locked.headers["retry-after"])).toBeGreaterThan(0);
      expect(Number(locked.headers["retry-after"])).toBeLessThanOrEqual(900);
      expect(outbox().list().filter((m) => m.to === account.email && m.kind === "mfa_locked")).toHaveLength(1);
      const audit = await db().select().from(auditEvents).where(and(eq(auditEvents.userId, account.userId), eq(auditEvents.type, "mfa.locked")));
      expect(audit).toHaveLength(1);

      app().clock.advance(15 * 60_000 + 1000);
      expect((await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret) })).status).toBe(200);
      // The success cleared the count: nine wrong codes later, the right one still works.
      app().clock.advance(30_000);
      for (let i = 0; i < 9; i++) expect((await wrong(await challengeFor(account.email))).status).toBe(401);
      expect((await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret) })).status).toBe(200);
    });

    it("keeps the password's own limits before any challenge", async () => {
      const account = await withTotp();
      const wrong = await login(account.email, "not the password at all");
      expect(errorOf(wrong)).toMatchObject({ code: "UNAUTHORIZED", reason: "INVALID_CREDENTIALS" });
      for (let i = 0; i < 9; i++) await login(account.email, "not the password at all");
      const refused = await login(account.email);
      expect(refused.status).toBe(429);
      expect(refused.raw).not.toContain("challengeId");
    });

    it("stays on after a password reset: the mailed link replaces the password, not the second factor", async () => {
      const account = await withTotp();
      data(await client().mutate("account.requestPasswordReset", { email: account.email }));
      const link = outbox().lastTo(account.email, "password_reset")!.link!;
      const token = decodeURIComponent(link.split("#token=")[1]!);
      data(await client().mutate("account.resetPassword", { token, newPassword: "a brand new passphrase" }));
      const body = data(await login(account.email, "a brand new passphrase"));
      expect(body).toMatchObject({ mfaRequired: true, methods: ["totp", "recovery_code"] });
      expect(body.accessToken).toBeUndefined();
    });

    it("refuses the second step for an account disabled meanwhile", async () => {
      const account = await withTotp();
      const challengeId = await challengeFor(account.email);
      await db().update(users).set({ disabledAt: new Date(app().clock.now()) }).where(eq(users.id, account.userId));
      expect(errorOf(await verify({ challengeId, code: codeFor(account.secret) }))).toMatchObject({ reason: "MFA_CHALLENGE_INVALID" });
    });

    it("validates input: exactly one proof, six digits, a well-formed challenge id", async () => {
      const account = await withTotp();
      const challengeId = await challengeFor(account.email);
      expect(errorOf(await verify({ challengeId, code: "123456", recoveryCode: "abcde-fghij" }))).toMatchObject({ code: "BAD_REQUEST" });
      expect(errorOf(await verify({ challengeId }))).toMatchObject({ code: "BAD_REQUEST" });
      expect(errorOf(await verify({ challengeId, code: "12345" }))).toMatchObject({ code: "BAD_REQUEST", fieldErrors: { code: ["Enter the 6-digit code from your app"] } });
      expect(errorOf(await verify({ challengeId: "short", code: "123456" }))).toMatchObject({ code: "BAD_REQUEST", fieldErrors: { challengeId: expect.any(Array) } });
      // Spaces as apps show them are fine.
      const code = codeFor(account.secret);
      expect((await verify({ challengeId, code: `${code.slice(0, 3)} ${code.slice(3)}` })).status).toBe(200);
    });
  });

  it("rotates the encryption key: a secret under the old key still works and is re-encrypted under the new one on use", async () => {
    const deps = app().runtime.deps as { secretBox: ReturnType<typeof createSecretBox> };
    const original = deps.secretBox;
    const [oldKey, newKey] = [Buffer.alloc(32, 1), Buffer.alloc(32, 2)];
    try {
      deps.secretBox = createSecretBox([oldKey]);
      const account = await withTotp();
      const oldId = deps.secretBox.keyId;
      deps.secretBox = createSecretBox([newKey, oldKey]);
      expect((await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret) })).status).toBe(200);
      const [row] = await db().select().from(totpFactors).where(eq(totpFactors.userId, account.userId));
      expect(row!.keyId).toBe(deps.secretBox.keyId);
      expect(row!.keyId).not.toBe(oldId);
      // The old key can go now.
      deps.secretBox = createSecretBox([newKey]);
      app().clock.advance(30_000);
      expect((await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret) })).status).toBe(200);
    } finally {
      deps.secretBox = original;
    }
  });

  describe("recovery codes", () => {
    it("signs in once per code, tells the owner, and of two requests with one code exactly one wins", async () => {
      const account = await withTotp();
      const [first, second] = account.recoveryCodes;
      // Case and separators are forgiven.
      const signedIn = await verify({ challengeId: await challengeFor(account.email), recoveryCode: first!.toUpperCase().replace("-", " ") });
      expect(signedIn.status).toBe(200);
      expect(claims(data(signedIn).accessToken).amr).toEqual(["pwd", "otp", "mfa"]);
      const mail = outbox().lastTo(account.email, "recovery_code_used");
      expect(mail?.text).toMatch(/9 are left/);
      expect(errorOf(await verify({ challengeId: await challengeFor(account.email), recoveryCode: first! }))).toMatchObject({ reason: "INVALID_MFA_CODE" });

      const [a, b] = [await challengeFor(account.email), await challengeFor(account.email)];
      const replies = await Promise.all([verify({ challengeId: a, recoveryCode: second! }), verify({ challengeId: b, recoveryCode: second! })]);
      expect(replies.map((r) => r.status).sort()).toEqual([200, 401]);
      const left = data(await client().query("mfa.status", undefined, bearer(data(signedIn).accessToken)));
      expect(left.recoveryCodesLeft).toBe(8);
      const audit = await db().select().from(auditEvents).where(and(eq(auditEvents.userId, account.userId), eq(auditEvents.type, "mfa.recovery_code_used")));
      expect(audit).toHaveLength(2);
    });

    it("regenerates a set (old codes stop working), with a recent sign-in or the password and a second factor", async () => {
      const account = await withTotp();
      const fresh = data(await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret) }));
      const regenerated = data(await client().mutate("mfa.recoveryCodes.regenerate", undefined, bearer(fresh.accessToken)));
      expect(regenerated.recoveryCodes).toHaveLength(10);
      expect(regenerated.recoveryCodes).not.toContain(account.recoveryCodes[0]);
      expect(outbox().lastTo(account.email, "recovery_codes_regenerated")).toBeDefined();
      expect((await verify({ challengeId: await challengeFor(account.email), recoveryCode: account.recoveryCodes[0]! })).status).toBe(401);
      expect((await verify({ challengeId: await challengeFor(account.email), recoveryCode: regenerated.recoveryCodes[0] })).status).toBe(200);

      // Later, the password alone cannot mint codes on an account with a second factor.
      app().clock.advance(6 * 60_000);
      const stale = { authorization: `Bearer ${fresh.accessToken}` };
      expect(errorOf(await client().mutate("mfa.recoveryCodes.regenerate", undefined, stale))).toMatchObject({ reason: "REAUTHENTICATION_REQUIRED" });
      expect(errorOf(await client().mutate("mfa.recoveryCodes.regenerate", { password: PASSWORD }, stale))).toMatchObject({ code: "FORBIDDEN", reason: "SECOND_FACTOR_REQUIRED" });
      expect(data(await client().mutate("mfa.recoveryCodes.regenerate", { password: PASSWORD, code: codeFor(account.secret) }, stale)).recoveryCodes).toHaveLength(10);
    });

    it("checks a proof that is given even when a recent sign-in would do without it", async () => {
      const account = await withTotp();
      const fresh = data(await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret) }));
      const auth = bearer(fresh.accessToken);
      app().clock.advance(30_000);
      const wrong = codeFor(account.secret) === "000000" ? "111111" : "000000";
      expect(errorOf(await client().mutate("mfa.recoveryCodes.regenerate", { code: wrong }, auth))).toMatchObject({ code: "FORBIDDEN", reason: "INVALID_MFA_CODE" });
      expect(errorOf(await client().mutate("mfa.recoveryCodes.regenerate", { password: "not the password" }, auth))).toMatchObject({ reason: "INVALID_PASSWORD" });
      expect(data(await client().mutate("mfa.recoveryCodes.regenerate", { code: codeFor(account.secret) }, auth)).recoveryCodes).toHaveLength(10);
    });
  });

  describe("disabling", () => {
    it("needs a second factor, and for the last factor the password; then sign-in takes the password alone", async () => {
      const account = await withTotp();
      const session = data(await verify({ challengeId: await challengeFor(account.email), code: codeFor(account.secret) }));
      const auth = bearer(session.accessToken);
      app().clock.advance(30_000);
      expect(errorOf(await client().mutate("mfa.totp.disable", {}, auth))).toMatchObject({ code: "FORBIDDEN", reason: "REAUTHENTICATION_REQUIRED" });
      expect(errorOf(await client().mutate("mfa.totp.disable", { password: PASSWORD }, auth))).toMatchObject({ reason: "SECOND_FACTOR_REQUIRED" });
      expect(errorOf(await client().mutate("mfa.totp.disable", { password: PASSWORD, code: "000000" === codeFor(account.secret) ? "111111" : "000000" }, auth))).toMatchObject({
        reason: "INVALID_MFA_CODE",
      });
      expect(errorOf(await client().mutate("mfa.totp.disable", { password: "wrong password", code: codeFor(account.secret) }, auth))).toMatchObject({ reason: "INVALID_PASSWORD" });
      expect(data(await client().mutate("mfa.totp.disable", { password: PASSWORD, code: codeFor(account.secret) }, auth))).toEqual({ success: true, mfaEnabled: false });
      expect(outbox().lastTo(account.email, "mfa_factor_removed")?.text).toMatch(/password alone/);
      expect(await db().select().from(recoveryCodes).where(eq(recoveryCodes.userId, account.userId))).toEqual([]);
      expect(await db().select().from(totpFactors).where(eq(totpFactors.userId, account.userId))).toEqual([]);
      const plain = data(await login(account.email));
      expect(plain.mfaRequired).toBeUndefined();
      expect(claims(plain.accessToken).amr).toEqual(["pwd"]);
    });

    it("refuses a change that cannot happen before it checks the proof: the recovery code or TOTP step is not spent", async () => {
      const account = await withTotp();
      const auth = bearer(data(await verify({ challengeId: await challengeFor(account.email), recoveryCode: account.recoveryCodes[0] })).accessToken);
      const codesLeft = async () => data(await client().query("mfa.status", undefined, auth)).recoveryCodesLeft as number;
      expect(await codesLeft()).toBe(9);
      // A second app while one is on: refused, with neither a recovery code nor this step's code used up.
      const enrollWith = (proof: Record<string, string>) => client().mutate("mfa.totp.enroll", { password: PASSWORD, ...proof }, auth);
      expect(errorOf(await enrollWith({ recoveryCode: account.recoveryCodes[1]! }))).toMatchObject({ code: "CONFLICT", reason: "TOTP_ALREADY_ENABLED" });
      expect(errorOf(await enrollWith({ code: codeFor(account.secret) }))).toMatchObject({ code: "CONFLICT", reason: "TOTP_ALREADY_ENABLED" });
      expect(await codesLeft()).toBe(9);
      // This step's code still proves a change.
      const regenerated = data(await client().mutate("mfa.recoveryCodes.regenerate", { password: PASSWORD, code: codeFor(account.secret) }, auth));
      expect(regenerated.recoveryCodes).toHaveLength(10);
    });
  });
});
