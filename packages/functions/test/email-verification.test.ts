import { accountTokens, auditEvents, sessions, users } from "@authlith/core/db/schema";
import { purgeExpired, type MailKind, type OutboxMail } from "@authlith/core";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEnvConfig } from "../src/config";
import { backends, pgliteBackend } from "../../core/test/support";
import { bearer, data, errorOf, PASSWORD, startTestApp, tokenTransport, uniqueEmail, useTestApp, type Reply } from "./support/app";

const claims = (accessToken: string) =>
  JSON.parse(Buffer.from(accessToken.split(".")[1]!, "base64url").toString()) as { email_verified: boolean; sub: string };

const tokenOf = (mail: OutboxMail | undefined) => {
  expect(mail, "a mail with a link").toBeDefined();
  return decodeURIComponent(/#token=([^&\s]+)/.exec(mail!.link!)![1]!);
};

/** What a reply lets an observer compare: status, body, and which headers and cookies it carries. */
const observable = (reply: Reply) => ({
  status: reply.status,
  raw: reply.raw,
  headers: Object.keys(reply.headers).sort(),
  cookies: reply.cookies.map((cookie) => cookie.split("=")[0]),
});

describe.each(backends)("email verification required (the default) on $name", (backend) => {
  const service = useTestApp(backend, { AUTHLITH_REQUIRE_EMAIL_VERIFICATION: "true", AUTHLITH_APP_URL: "https://app.example.test" });
  const client = service.client;
  const outbox = () => service.app.runtime.outbox!;
  const db = () => service.app.runtime.deps.db;
  const mailTo = (email: string, kind: MailKind) => outbox().lastTo(email, kind);

  const register = (email: string, password = PASSWORD, options = {}) => client(options).mutate("auth.register", { email, password }, tokenTransport);
  const login = (email: string, password = PASSWORD) => client().mutate("auth.login", { email, password }, tokenTransport);
  const verify = (token: string, password = PASSWORD) => client().mutate("account.verifyEmail", { token, password });
  const userRow = async (email: string) => (await db().select().from(users).where(eq(users.emailCanonical, email.toLowerCase())))[0];

  /** An account whose address is confirmed: signed up, link followed. */
  const verifiedAccount = async (email = uniqueEmail("verified")) => {
    data(await register(email));
    data(await verify(tokenOf(mailTo(email, "email_verification"))));
    return email;
  };

  describe("auth.register", () => {
    it("answers a new address and a taken one alike, issues nothing, and mails each address what it needs", async () => {
      const taken = await verifiedAccount();
      outbox().clear();
      const fresh = uniqueEmail("fresh");
      const forNew = await register(fresh);
      const forTaken = await register(taken, "another long passphrase");
      expect(observable(forTaken)).toEqual(observable(forNew));
      expect(data(forNew)).toEqual({ status: "verification_required" });
      expect(forNew.cookies).toEqual([]);
      expect(forNew.raw).not.toMatch(/accessToken|refreshToken|deviceToken/);

      // The new address gets a link to the app that confirms it; the account exists, unconfirmed, without a session.
      const link = mailTo(fresh, "email_verification")!;
      expect(link.subject).toMatch(/Confirm your authlith email address/);
      expect(link.link).toMatch(/^https:\/\/app\.example\.test\/verify-email#token=[A-Za-z0-9_-]{43}$/);
      const created = (await userRow(fresh))!;
      expect(created.emailVerifiedAt).toBeNull();
      expect(await db().select().from(sessions).where(eq(sessions.userId, created.id))).toEqual([]);

      // The owner of the taken address is told, with a way in (a reset link), and nothing else changed.
      expect(mailTo(taken, "email_verification")).toBeUndefined();
      const notice = mailTo(taken, "sign_up_attempt")!;
      expect(notice.subject).toMatch(/Someone tried to sign up/);
      expect(notice.link).toMatch(/^https:\/\/app\.example\.test\/reset-password#token=/);
      expect(data(await login(taken)).user.email).toBe(taken);
      expect((await login(taken, "another long passphrase")).status).toBe(401);
    });

    it("creates one account when sign-ups for one new address arrive together, and answers each alike", async () => {
      const email = uniqueEmail("together");
      const replies = await Promise.all(Array.from({ length: 4 }, (_, i) => register(email, `${PASSWORD} ${i}`)));
      for (const reply of replies) expect(observable(reply)).toEqual(observable(replies[0]!));
      expect(await db().select().from(users).where(eq(users.emailCanonical, email.toLowerCase()))).toHaveLength(1);
      // The account that was created has its link, confirmed with the password it was created with.
      const token = tokenOf(mailTo(email, "email_verification"));
      const outcomes = [];
      for (let i = 0; i < 4; i++) outcomes.push((await verify(token, `${PASSWORD} ${i}`)).status);
      expect(outcomes.filter((status) => status === 200)).toHaveLength(1);
    });

    it("records both sign-ups in the audit trail, under the address's pseudonymous subject", async () => {
      const taken = await verifiedAccount();
      data(await register(taken));
      const owner = (await userRow(taken))!;
      const events = await db()
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.userId, owner.id), eq(auditEvents.type, "user.register_duplicate")));
      expect(events).toHaveLength(1);
      expect(events[0]!.subject).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(JSON.stringify(events)).not.toContain(taken);
    });

    it("refuses a weak password the same way for a new and a taken address", async () => {
      const taken = await verifiedAccount();
      const weakNew = await register(uniqueEmail("weak"), "password");
      const weakTaken = await register(taken, "password");
      expect(weakNew.status).toBe(400);
      expect(observable(weakTaken)).toEqual(observable(weakNew));
    });

    it("limits sign-ups per address, new or taken, alike (each one mails that inbox)", async () => {
      const taken = await verifiedAccount();
      const fresh = uniqueEmail("capped");
      const { limit } = service.app.runtime.deps.config.rateLimits.registerPerAddress;
      // The verified account's own sign-up counted once.
      for (let i = 1; i < limit; i++) expect((await register(taken, PASSWORD, { ip: `192.0.2.${i}` })).status).toBe(200);
      for (let i = 0; i < limit; i++) expect((await register(fresh, PASSWORD, { ip: `192.0.2.${i + 100}` })).status).toBe(200);
      const refusedTaken = await register(taken, PASSWORD, { ip: "192.0.2.250" });
      const refusedNew = await register(fresh, PASSWORD, { ip: "192.0.2.251" });
      expect(refusedTaken.status).toBe(429);
      expect(Number(refusedTaken.headers["retry-after"])).toBeGreaterThan(0);
      expect(refusedNew.status).toBe(429);
      expect(refusedNew.body).toEqual(refusedTaken.body);
    });

    it("mails nothing for a disabled account, and answers the same", async () => {
      const email = await verifiedAccount();
      await db().update(users).set({ disabledAt: new Date(service.app.clock.now()) }).where(eq(users.emailCanonical, email.toLowerCase()));
      outbox().clear();
      expect(data(await register(email))).toEqual({ status: "verification_required" });
      expect(outbox().list()).toEqual([]);
    });

    it("answers the same when the mail cannot be sent, and logs the failure without the address", async () => {
      const email = uniqueEmail("unsent");
      const mailer = service.app.runtime.deps.mailer;
      service.app.runtime.deps.mailer = { send: async () => Promise.reject(new Error("SES said no")) };
      let reply: Reply;
      try {
        reply = await register(email);
      } finally {
        service.app.runtime.deps.mailer = mailer;
      }
      expect(data(reply)).toEqual({ status: "verification_required" });
      const failure = service.app.logs.findLast((line) => line.event === "mail.failed");
      expect(failure).toMatchObject({ level: "error", kind: "email_verification" });
      expect(JSON.stringify(failure)).not.toContain(email);
      // The owner is not stuck: signing in with the right password sends a new link.
      expect(errorOf(await login(email)).reason).toBe("EMAIL_NOT_VERIFIED");
      expect(mailTo(email, "email_verification")).toBeDefined();
    });
  });

  describe("auth.login before the address is confirmed", () => {
    it("answers a wrong password as for any account, and the right one with EMAIL_NOT_VERIFIED and a fresh link", async () => {
      const email = uniqueEmail("pending");
      data(await register(email));
      const first = tokenOf(mailTo(email, "email_verification"));

      const wrong = await login(email, "not the right passphrase");
      const unknown = await login(uniqueEmail("nobody"), "not the right passphrase");
      expect(wrong.status).toBe(401);
      expect(wrong.raw).toBe(unknown.raw);

      const right = await login(email);
      expect(right.status).toBe(403);
      expect(errorOf(right)).toMatchObject({ code: "FORBIDDEN", reason: "EMAIL_NOT_VERIFIED" });
      expect(right.cookies).toEqual([]);
      expect(right.raw).not.toMatch(/accessToken|refreshToken/);
      // A fresh link went out, and it replaced the first.
      const second = tokenOf(mailTo(email, "email_verification"));
      expect(second).not.toBe(first);
      expect(errorOf(await verify(first)).reason).toBe("INVALID_TOKEN");
      data(await verify(second));
      expect(claims(data(await login(email)).accessToken).email_verified).toBe(true);
    });

    it("sends at most verificationMailPerAccount links an hour on sign-ins, and keeps answering EMAIL_NOT_VERIFIED", async () => {
      const email = uniqueEmail("spam");
      data(await register(email));
      outbox().clear();
      const { limit } = service.app.runtime.deps.config.rateLimits.verificationMailPerAccount;
      for (let i = 0; i < limit + 2; i++) expect(errorOf(await login(email)).reason).toBe("EMAIL_NOT_VERIFIED");
      expect(outbox().list().filter((mail) => mail.to === email)).toHaveLength(limit);
    });

    it("ends a run of failures with the right password, as a sign-in does", async () => {
      const email = uniqueEmail("locked");
      data(await register(email));
      const { limit } = service.app.runtime.deps.config.rateLimits.loginFailuresPerAccount;
      for (let i = 0; i < limit - 1; i++) expect((await login(email, "wrong passphrase here")).status).toBe(401);
      expect(errorOf(await login(email)).reason).toBe("EMAIL_NOT_VERIFIED");
      // The budget is whole again: as many wrong tries as before, and the right one still gets through.
      for (let i = 0; i < limit - 1; i++) expect((await login(email, "wrong passphrase here")).status).toBe(401);
      expect(errorOf(await login(email)).reason).toBe("EMAIL_NOT_VERIFIED");
    });
  });

  describe("account.verifyEmail", () => {
    it("confirms the address, does not sign in, and the next sign-in's token says email_verified", async () => {
      const email = uniqueEmail("confirm");
      data(await register(email));
      const reply = await verify(tokenOf(mailTo(email, "email_verification")));
      expect(data(reply)).toEqual({ success: true, email });
      expect(reply.cookies).toEqual([]);
      expect(reply.raw).not.toMatch(/accessToken|refreshToken/);
      expect((await userRow(email))!.emailVerifiedAt).not.toBeNull();
      const signedIn = data(await login(email));
      expect(signedIn.user.emailVerified).toBe(true);
      expect(claims(signedIn.accessToken).email_verified).toBe(true);
      expect(data(await client().query("auth.me", undefined, bearer(signedIn.accessToken))).user.emailVerified).toBe(true);
    });

    it("is single use, refuses malformed and foreign tokens alike, and expires after 24 hours", async () => {
      const email = uniqueEmail("once");
      data(await register(email));
      const token = tokenOf(mailTo(email, "email_verification"));
      data(await verify(token));
      const again = await verify(token);
      const malformed = await verify("not-a-token");
      const unknown = await verify("A".repeat(43));
      expect(again.status).toBe(400);
      expect(errorOf(again).reason).toBe("INVALID_TOKEN");
      expect(malformed.raw).toBe(again.raw);
      expect(unknown.raw).toBe(again.raw);

      const late = uniqueEmail("late");
      data(await register(late));
      const lateToken = tokenOf(mailTo(late, "email_verification"));
      service.app.clock.advance(24 * 60 * 60 * 1000 + 1000);
      expect(errorOf(await verify(lateToken)).reason).toBe("INVALID_TOKEN");
      expect((await userRow(late))!.emailVerifiedAt).toBeNull();
      // Expired tokens are the purge's.
      const purged = await purgeExpired({ db: db(), clock: service.app.clock });
      expect(purged.accountTokens).toBeGreaterThanOrEqual(1);
      expect(await db().select().from(accountTokens).where(eq(accountTokens.userId, (await userRow(late))!.id))).toEqual([]);
    });

    it("is bound to its purpose and to the address it was sent to", async () => {
      const email = uniqueEmail("bound");
      data(await register(email));
      const token = tokenOf(mailTo(email, "email_verification"));
      // A verification token does not reset a password.
      expect(errorOf(await client().mutate("account.resetPassword", { token, newPassword: "a brand new passphrase" })).reason).toBe("INVALID_TOKEN");
      // Once the account has another address, the link sent to the old one confirms nothing.
      const moved = uniqueEmail("moved");
      await db().update(users).set({ email: moved, emailCanonical: moved.toLowerCase() }).where(eq(users.emailCanonical, email.toLowerCase()));
      expect(errorOf(await verify(token)).reason).toBe("INVALID_TOKEN");
      expect((await userRow(moved))!.emailVerifiedAt).toBeNull();
    });

    it("changes nothing when the link is fetched with GET, as mail scanners do", async () => {
      const email = uniqueEmail("scanned");
      data(await register(email));
      const token = tokenOf(mailTo(email, "email_verification"));
      const input = encodeURIComponent(JSON.stringify({ token, password: PASSWORD }));
      const scanned = await client().request({ path: "/trpc/account.verifyEmail", query: `input=${input}` });
      expect(scanned.status).toBe(405);
      expect((await userRow(email))!.emailVerifiedAt).toBeNull();
      data(await verify(token));
    });

    it("lets exactly one of several concurrent redemptions of one token win", async () => {
      const email = uniqueEmail("race");
      data(await register(email));
      const token = tokenOf(mailTo(email, "email_verification"));
      const replies = await Promise.all(Array.from({ length: 5 }, () => verify(token)));
      expect(replies.filter((reply) => reply.status === 200)).toHaveLength(1);
      for (const reply of replies.filter((r) => r.status !== 200)) expect(errorOf(reply).reason).toBe("INVALID_TOKEN");
      const owner = (await userRow(email))!;
      const verified = await db()
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.userId, owner.id), eq(auditEvents.type, "email.verified")));
      expect(verified).toHaveLength(1);
    });

    it("does not confirm a disabled account", async () => {
      const email = uniqueEmail("disabled");
      data(await register(email));
      const token = tokenOf(mailTo(email, "email_verification"));
      await db().update(users).set({ disabledAt: new Date(service.app.clock.now()) }).where(eq(users.emailCanonical, email.toLowerCase()));
      expect(errorOf(await verify(token)).reason).toBe("INVALID_TOKEN");
    });

    it("limits redemptions per IP", async () => {
      const { limit } = service.app.runtime.deps.config.rateLimits.tokenRedeemPerIp;
      const sameIp = client();
      for (let i = 0; i < limit; i++) expect((await sameIp.mutate("account.verifyEmail", { token: "B".repeat(43), password: PASSWORD })).status).toBe(400);
      const refused = await sameIp.mutate("account.verifyEmail", { token: "B".repeat(43), password: PASSWORD });
      expect(refused.status).toBe(429);
      expect(errorOf(refused).reason).toBe("RATE_LIMITED");
    });
  });

  it("confirms nothing without the account's password: a squatter's account is not confirmed by the owner's click", async () => {
    // Someone signs up first with the victim's address and their own password; the victim gets
    // the link and follows it, with the password the victim knows.
    const victim = uniqueEmail("clicked");
    data(await register(victim, "the squatter's own passphrase"));
    const token = tokenOf(mailTo(victim, "email_verification"));
    const refused = await verify(token, "the victim's real passphrase");
    expect(refused.status).toBe(403);
    expect(errorOf(refused).reason).toBe("INVALID_PASSWORD");
    expect((await userRow(victim))!.emailVerifiedAt).toBeNull();
    // The token is not spent by a wrong password: the account's own password still confirms it.
    expect(data(await verify(token, "the squatter's own passphrase"))).toEqual({ success: true, email: victim });
  });

  it("lets the owner of an address someone registered first take it back with the sign-up notice's reset link", async () => {
    // Pre-hijacking: someone signs up with the victim's address and a password of their own, and
    // waits for the victim to confirm it. The victim signs up instead and gets the notice.
    const victim = uniqueEmail("victim");
    data(await register(victim, "the squatter's own passphrase"));
    data(await register(victim, "the victim's real passphrase"));
    const resetToken = tokenOf(mailTo(victim, "sign_up_attempt"));
    data(await client().mutate("account.resetPassword", { token: resetToken, newPassword: "the victim's real passphrase" }));
    // The reset proved the inbox: the address is confirmed, the password is the owner's, and the squatter's no longer works.
    expect((await userRow(victim))!.emailVerifiedAt).not.toBeNull();
    expect((await login(victim, "the squatter's own passphrase")).status).toBe(401);
    expect(claims(data(await login(victim, "the victim's real passphrase")).accessToken).email_verified).toBe(true);
  });
});

describe.each(backends)("email verification off on $name", (backend) => {
  const service = useTestApp(backend, { AUTHLITH_REQUIRE_EMAIL_VERIFICATION: "false" });
  const client = service.client;
  const outbox = () => service.app.runtime.outbox!;
  const signUp = async (email = uniqueEmail("open")) => {
    const signedIn = data(await client().mutate("auth.register", { email, password: PASSWORD }, tokenTransport));
    return { email, ...signedIn } as { email: string; accessToken: string; refreshToken: string; user: { id: string; emailVerified: boolean } };
  };
  const requestVerification = (accessToken: string) => client().mutate("account.requestVerification", undefined, bearer(accessToken));

  it("signs in at sign-up, unconfirmed, and refuses a taken address with CONFLICT (the documented trade-off)", async () => {
    const account = await signUp();
    expect(account.user.emailVerified).toBe(false);
    expect(claims(account.accessToken).email_verified).toBe(false);
    const again = await client().mutate("auth.register", { email: account.email, password: PASSWORD });
    expect(again.status).toBe(409);
    expect(outbox().lastTo(account.email, "email_verification")).toBeUndefined();
  });

  it("mails a link on request; following it confirms the address, and the claim follows at the next refresh", async () => {
    const account = await signUp();
    expect(data(await requestVerification(account.accessToken))).toEqual({ success: true, alreadyVerified: false });
    const token = tokenOf(outbox().lastTo(account.email, "email_verification"));
    expect(data(await client().mutate("account.verifyEmail", { token, password: PASSWORD }))).toEqual({ success: true, email: account.email });
    const refreshed = data(await client().mutate("auth.refresh", { refreshToken: account.refreshToken }, tokenTransport));
    expect(refreshed.user.emailVerified).toBe(true);
    expect(claims(refreshed.accessToken).email_verified).toBe(true);
    // Nothing more to confirm: no mail.
    outbox().clear();
    expect(data(await requestVerification(refreshed.accessToken))).toEqual({ success: true, alreadyVerified: true });
    expect(outbox().list()).toEqual([]);
  });

  it("needs a session, and limits links per account with Retry-After", async () => {
    expect((await client().mutate("account.requestVerification", undefined)).status).toBe(401);
    const account = await signUp();
    const { limit } = service.app.runtime.deps.config.rateLimits.verificationMailPerAccount;
    for (let i = 0; i < limit; i++) data(await requestVerification(account.accessToken));
    const refused = await requestVerification(account.accessToken);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
  });

  it("confirms the address with a completed password reset (the link reached the inbox)", async () => {
    const account = await signUp();
    data(await client().mutate("account.requestPasswordReset", { email: account.email }));
    const token = tokenOf(outbox().lastTo(account.email, "password_reset"));
    data(await client().mutate("account.resetPassword", { token, newPassword: "a brand new passphrase" }));
    const signedIn = data(await client().mutate("auth.login", { email: account.email, password: "a brand new passphrase" }));
    expect(signedIn.user.emailVerified).toBe(true);
  });
});

describe("requests that may send a mail answer no sooner than the mail answer floor", () => {
  // SES takes tens of milliseconds to accept a mail: without the floor, a request that mails (an
  // address with an account) would answer later than one that does not. Lower bounds only: the
  // bench measures differences, tests do not time.
  const FLOOR_MS = 150;
  let service: Awaited<ReturnType<typeof startTestApp>>;
  beforeAll(async () => {
    service = await startTestApp(pgliteBackend, { AUTHLITH_REQUIRE_EMAIL_VERIFICATION: "true" }, { mailAnswerFloorMs: FLOOR_MS });
    service.runtime.deps.mailer = { send: () => new Promise<void>((resolve) => setTimeout(resolve, 60)) };
  });
  afterAll(async () => {
    await service?.close();
  });
  let ip = 0;
  const timed = async (procedure: string, input: unknown) => {
    const started = performance.now();
    const reply = await service.client({ origin: null, ip: `192.0.2.${++ip}` }).mutate(procedure, input);
    return { reply, ms: performance.now() - started };
  };

  it("holds for password reset, known address or not", async () => {
    const email = uniqueEmail("floor");
    data(await service.client({ origin: null }).mutate("auth.register", { email, password: PASSWORD }));
    const known = await timed("account.requestPasswordReset", { email });
    const unknown = await timed("account.requestPasswordReset", { email: uniqueEmail("nobody") });
    expect(known.reply.status).toBe(200);
    expect(unknown.reply.raw).toBe(known.reply.raw);
    expect(known.ms).toBeGreaterThanOrEqual(FLOOR_MS - 5);
    expect(unknown.ms).toBeGreaterThanOrEqual(FLOOR_MS - 5);
  });

  it("holds for sign-up, new address or taken", async () => {
    const taken = uniqueEmail("taken-floor");
    data(await service.client({ origin: null }).mutate("auth.register", { email: taken, password: PASSWORD }));
    const fresh = await timed("auth.register", { email: uniqueEmail("fresh-floor"), password: PASSWORD });
    const again = await timed("auth.register", { email: taken, password: PASSWORD });
    expect(again.reply.raw).toBe(fresh.reply.raw);
    expect(fresh.ms).toBeGreaterThanOrEqual(FLOOR_MS - 5);
    expect(again.ms).toBeGreaterThanOrEqual(FLOOR_MS - 5);
  });

  it("is 0 with the development outbox and 400 ms with SES, unless configured", () => {
    const base = { AUTHLITH_ISSUER: "https://auth.example.test", AUTHLITH_SIGNING_KEYS: service.env.AUTHLITH_SIGNING_KEYS!, AUTHLITH_HMAC_SECRET: service.env.AUTHLITH_HMAC_SECRET! };
    expect(parseEnvConfig(base).auth.mailAnswerFloorMs).toBe(0);
    expect(parseEnvConfig({ ...base, AUTHLITH_MAIL_FROM: "auth@example.com" }).auth.mailAnswerFloorMs).toBe(400);
    expect(parseEnvConfig({ ...base, AUTHLITH_MAIL_FROM: "auth@example.com", AUTHLITH_MAIL_ANSWER_FLOOR_MS: "800" }).auth.mailAnswerFloorMs).toBe(800);
  });
});
