import { auditEvents, passkeys, recoveryCodes } from "@authlith/core/db/schema";
import { and, eq } from "drizzle-orm";
import * as OTPAuth from "otpauth";
import { describe, expect, it } from "vitest";
import { backends } from "../../core/test/support";
import { APP_ORIGIN, bearer, data, errorOf, PASSWORD, tokenTransport, uniqueEmail, useTestApp } from "./support/app";
import { softAuthenticator } from "./support/authenticator";

const claims = (accessToken: string) => JSON.parse(Buffer.from(accessToken.split(".")[1]!, "base64url").toString()) as { amr: string[]; sub: string };

describe.each(backends)("passkeys on $name", (backend) => {
  const service = useTestApp(backend);
  const client = service.client;
  const app = () => service.app;
  const db = () => app().runtime.deps.db;
  const outbox = () => app().runtime.outbox!;

  const signUp = async (email = uniqueEmail("passkey")) => {
    const body = data(await client().mutate("auth.register", { email, password: PASSWORD }, tokenTransport));
    return { email, accessToken: body.accessToken as string, userId: body.user.id as string };
  };

  /** Registers a passkey from `authenticator` for a signed-in account. */
  const register = async (accessToken: string, authenticator: ReturnType<typeof softAuthenticator>, input: Record<string, unknown> = {}) => {
    const started = data(await client().mutate("mfa.passkey.registrationOptions", undefined, bearer(accessToken)));
    const response = authenticator.create(started.options);
    return client().mutate("mfa.passkey.verifyRegistration", { challengeId: started.challengeId, response, ...input }, bearer(accessToken));
  };

  const passkeySignIn = async (authenticator: ReturnType<typeof softAuthenticator>, override = {}) => {
    const started = data(await client().mutate("auth.passkeyOptions"));
    return client().mutate("auth.passkeyLogin", { challengeId: started.challengeId, response: authenticator.get(started.options, override) }, tokenTransport);
  };

  it("registers a discoverable passkey bound to the app's RP ID, lists it, and brings recovery codes with the first factor", async () => {
    const account = await signUp();
    const started = data(await client().mutate("mfa.passkey.registrationOptions", undefined, bearer(account.accessToken)));
    expect(started.challengeId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(started.options.rp).toEqual({ id: new URL(APP_ORIGIN).hostname, name: "authlith" });
    expect(started.options.user.name).toBe(account.email);
    expect(Buffer.from(started.options.user.id, "base64url").toString("hex")).toBe(account.userId.replaceAll("-", ""));
    expect(started.options.authenticatorSelection).toMatchObject({ residentKey: "required" });
    expect(started.options.attestation).toBe("none");

    const authenticator = softAuthenticator({ origin: APP_ORIGIN });
    const response = authenticator.create(started.options);
    const added = data(await client().mutate("mfa.passkey.verifyRegistration", { challengeId: started.challengeId, response, name: "Laptop" }, bearer(account.accessToken)));
    expect(added.passkey).toMatchObject({ name: "Laptop", deviceType: "singleDevice", backedUp: false, lastUsedAt: null });
    expect(added.recoveryCodes).toHaveLength(10);
    expect(outbox().lastTo(account.email, "mfa_factor_added")?.text).toContain('passkey "Laptop"');
    // The challenge was single use.
    const again = await client().mutate("mfa.passkey.verifyRegistration", { challengeId: started.challengeId, response }, bearer(account.accessToken));
    expect(errorOf(again)).toMatchObject({ code: "BAD_REQUEST", reason: "MFA_CHALLENGE_INVALID" });

    const listed = data(await client().query("mfa.passkey.list", undefined, bearer(account.accessToken)));
    expect(listed.passkeys).toEqual([added.passkey]);
    // The next registration excludes it, and a second registration of it is refused.
    const next = data(await client().mutate("mfa.passkey.registrationOptions", undefined, bearer(account.accessToken)));
    expect(next.options.excludeCredentials).toEqual([{ id: response.id, type: "public-key", transports: ["internal"] }]);
    const second = data(await register(account.accessToken, softAuthenticator({ origin: APP_ORIGIN, synced: true })));
    expect(second.passkey).toMatchObject({ deviceType: "multiDevice", backedUp: true, name: "Synced passkey" });
    expect(second.recoveryCodes).toBeNull();
  });

  it("refuses an answer from another origin, for another challenge, or for another user", async () => {
    const account = await signUp();
    const authenticator = softAuthenticator({ origin: APP_ORIGIN });
    const started = data(await client().mutate("mfa.passkey.registrationOptions", undefined, bearer(account.accessToken)));
    const phished = authenticator.create(started.options, { origin: "https://app.example.test.evil.example" });
    expect(errorOf(await client().mutate("mfa.passkey.verifyRegistration", { challengeId: started.challengeId, response: phished }, bearer(account.accessToken)))).toMatchObject({
      reason: "PASSKEY_REJECTED",
    });
    const other = await signUp();
    const theirs = data(await client().mutate("mfa.passkey.registrationOptions", undefined, bearer(other.accessToken)));
    const response = authenticator.create(theirs.options);
    expect(errorOf(await client().mutate("mfa.passkey.verifyRegistration", { challengeId: theirs.challengeId, response }, bearer(account.accessToken)))).toMatchObject({
      reason: "MFA_CHALLENGE_INVALID",
    });
    expect(await db().select().from(passkeys).where(eq(passkeys.userId, account.userId))).toEqual([]);
  });

  it("signs in with a passkey alone (usernameless): one use per challenge, user verification required", async () => {
    const account = await signUp();
    const authenticator = softAuthenticator({ origin: APP_ORIGIN });
    data(await register(account.accessToken, authenticator));
    const started = data(await client().mutate("auth.passkeyOptions"));
    expect(started.options.rpId).toBe("app.example.test");
    expect(started.options.userVerification).toBe("required");
    expect(started.options.allowCredentials ?? []).toEqual([]);
    const response = authenticator.get(started.options);
    const signedIn = await client().mutate("auth.passkeyLogin", { challengeId: started.challengeId, response }, tokenTransport);
    expect(signedIn.status).toBe(200);
    expect(data(signedIn).user.id).toBe(account.userId);
    expect(claims(data(signedIn).accessToken).amr).toEqual(["hwk", "mfa"]);
    expect(errorOf(await client().mutate("auth.passkeyLogin", { challengeId: started.challengeId, response }, tokenTransport))).toMatchObject({
      code: "UNAUTHORIZED",
      reason: "MFA_CHALLENGE_INVALID",
    });
    const [stored] = await db().select().from(passkeys).where(eq(passkeys.userId, account.userId));
    expect(stored!.counter).toBe(1);
    expect(stored!.lastUsedAt).not.toBeNull();

    const noUv = softAuthenticator({ origin: APP_ORIGIN, userVerified: false });
    data(await register(account.accessToken, noUv));
    expect(errorOf(await passkeySignIn(noUv))).toMatchObject({ reason: "PASSKEY_REJECTED" });
    expect(errorOf(await passkeySignIn(authenticator, { origin: "https://evil.example" }))).toMatchObject({ reason: "PASSKEY_REJECTED" });
    // An unknown credential is refused the same way.
    const unknown = { ...authenticator.credentials[0]!, id: Buffer.alloc(16, 1) };
    expect(errorOf(await passkeySignIn(authenticator, { credential: unknown }))).toMatchObject({ reason: "PASSKEY_REJECTED" });
  });

  it("detects a cloned authenticator by its counter, refuses it and records it", async () => {
    const account = await signUp();
    const authenticator = softAuthenticator({ origin: APP_ORIGIN });
    data(await register(account.accessToken, authenticator));
    expect((await passkeySignIn(authenticator, { counter: 5 })).status).toBe(200);
    expect(errorOf(await passkeySignIn(authenticator, { counter: 3 }))).toMatchObject({ reason: "PASSKEY_REJECTED" });
    expect(errorOf(await passkeySignIn(authenticator, { counter: 5 }))).toMatchObject({ reason: "PASSKEY_REJECTED" });
    const clones = await db().select().from(auditEvents).where(and(eq(auditEvents.userId, account.userId), eq(auditEvents.type, "mfa.passkey_clone_detected")));
    expect(clones).toHaveLength(2);
    expect((await passkeySignIn(authenticator, { counter: 6 })).status).toBe(200);
    // A synced passkey that keeps no counter (always 0) is fine.
    const synced = softAuthenticator({ origin: APP_ORIGIN, synced: true, counterStep: 0 });
    data(await register(account.accessToken, synced));
    expect((await passkeySignIn(synced)).status).toBe(200);
    const again = await passkeySignIn(synced);
    expect(again.status).toBe(200);
    expect(claims(data(again).accessToken).amr).toEqual(["swk", "mfa"]);
  });

  it("is a second factor after the password: the challenge carries options for the account's passkeys", async () => {
    const account = await signUp();
    const authenticator = softAuthenticator({ origin: APP_ORIGIN });
    data(await register(account.accessToken, authenticator));
    const challenge = data(await client().mutate("auth.login", { email: account.email, password: PASSWORD }, tokenTransport));
    expect(challenge.methods).toEqual(["passkey", "recovery_code"]);
    expect(challenge.passkeyOptions.allowCredentials).toEqual([{ id: authenticator.credentials[0]!.id.toString("base64url"), type: "public-key", transports: ["internal"] }]);
    const signedIn = await client().mutate("auth.verifyMfa", { challengeId: challenge.challengeId, passkey: authenticator.get(challenge.passkeyOptions) }, tokenTransport);
    expect(claims(data(signedIn).accessToken).amr).toEqual(["pwd", "hwk", "mfa"]);

    // Someone else's passkey does not count for this account.
    const other = await signUp();
    const theirs = softAuthenticator({ origin: APP_ORIGIN });
    data(await register(other.accessToken, theirs));
    const next = data(await client().mutate("auth.login", { email: account.email, password: PASSWORD }, tokenTransport));
    expect(errorOf(await client().mutate("auth.verifyMfa", { challengeId: next.challengeId, passkey: theirs.get(next.passkeyOptions) }, tokenTransport))).toMatchObject({
      reason: "INVALID_MFA_CODE",
    });
  });

  it("renames and deletes: deleting takes a second factor, the last one the password too", async () => {
    const account = await signUp();
    const authenticator = softAuthenticator({ origin: APP_ORIGIN });
    const added = data(await register(account.accessToken, authenticator)).passkey;
    const auth = bearer(account.accessToken);
    expect(data(await client().mutate("mfa.passkey.rename", { passkeyId: added.id, name: "Work laptop" }, auth)).passkey.name).toBe("Work laptop");
    const stranger = await signUp();
    expect(errorOf(await client().mutate("mfa.passkey.rename", { passkeyId: added.id, name: "Mine" }, bearer(stranger.accessToken)))).toMatchObject({ code: "NOT_FOUND" });
    expect(errorOf(await client().mutate("mfa.passkey.rename", { passkeyId: added.id, name: "bad\u0000name" }, auth))).toMatchObject({ code: "BAD_REQUEST" });

    expect(errorOf(await client().mutate("mfa.passkey.delete", { passkeyId: added.id, password: PASSWORD }, auth))).toMatchObject({ reason: "SECOND_FACTOR_REQUIRED" });
    const step = data(await client().mutate("mfa.stepUpOptions", undefined, auth));
    const proof = { challengeId: step.challengeId, response: authenticator.get(step.options) };
    expect(errorOf(await client().mutate("mfa.passkey.delete", { passkeyId: added.id, passkey: proof }, auth))).toMatchObject({ reason: "REAUTHENTICATION_REQUIRED" });
    // A spent or unknown step-up challenge asks for a fresh one, not for another code.
    const spent = data(await client().mutate("mfa.stepUpOptions", undefined, auth));
    const answer = authenticator.get(spent.options);
    expect(data(await client().mutate("mfa.passkey.rename", { passkeyId: added.id, name: "Work laptop" }, auth)).passkey.name).toBe("Work laptop");
    const once = await client().mutate("mfa.passkey.delete", { passkeyId: added.id, password: "wrong password", passkey: { challengeId: spent.challengeId, response: answer } }, auth);
    expect(errorOf(once)).toMatchObject({ reason: "INVALID_PASSWORD" });
    expect(errorOf(await client().mutate("mfa.passkey.delete", { passkeyId: added.id, password: PASSWORD, passkey: { challengeId: "B".repeat(43), response: answer } }, auth))).toMatchObject({
      code: "BAD_REQUEST",
      reason: "MFA_CHALLENGE_INVALID",
    });
    const step2 = data(await client().mutate("mfa.stepUpOptions", undefined, auth));
    const deleted = await client().mutate("mfa.passkey.delete", { passkeyId: added.id, password: PASSWORD, passkey: { challengeId: step2.challengeId, response: authenticator.get(step2.options) } }, auth);
    expect(data(deleted)).toEqual({ success: true, mfaEnabled: false });
    expect(await db().select().from(passkeys).where(eq(passkeys.userId, account.userId))).toEqual([]);
    expect(await db().select().from(recoveryCodes).where(eq(recoveryCodes.userId, account.userId))).toEqual([]);
    expect(outbox().lastTo(account.email, "mfa_factor_removed")?.text).toContain("Work laptop");
    expect(data(await client().mutate("auth.login", { email: account.email, password: PASSWORD }, tokenTransport)).mfaRequired).toBeUndefined();
  });

  it("with an app as well, deleting a passkey takes a code, not the password", async () => {
    const account = await signUp();
    const auth = bearer(account.accessToken);
    const authenticator = softAuthenticator({ origin: APP_ORIGIN });
    const added = data(await register(account.accessToken, authenticator)).passkey;
    const enrolment = data(await client().mutate("mfa.totp.enroll", undefined, auth));
    const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(enrolment.secret) });
    expect(data(await client().mutate("mfa.totp.confirm", { code: totp.generate({ timestamp: app().clock.now() }) }, auth)).recoveryCodes).toBeNull();
    app().clock.advance(30_000);
    const deleted = await client().mutate("mfa.passkey.delete", { passkeyId: added.id, code: totp.generate({ timestamp: app().clock.now() }) }, auth);
    expect(data(deleted)).toEqual({ success: true, mfaEnabled: true });
    expect(data(await client().query("mfa.status", undefined, auth))).toMatchObject({ enabled: true, totp: { enabled: true }, passkeys: [], recoveryCodesLeft: 10 });
  });

  it("limits passkey sign-in challenges per IP", async () => {
    const ip = "198.51.100.77";
    const replies = [];
    for (let i = 0; i < 31; i++) replies.push(await client({ ip }).mutate("auth.passkeyOptions"));
    expect(replies.slice(0, 30).every((r) => r.status === 200)).toBe(true);
    expect(replies[30]!.status).toBe(429);
    expect(Number(replies[30]!.headers["retry-after"])).toBeGreaterThan(0);
  });
});
