import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as OTPAuth from "otpauth";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthClientError, createAuthClient, memoryStorage, type MfaChallenge, type SessionEvent, type TokenStorage } from "../src/index";
import { expectSignedIn, freePort, observedFetch, PASSWORD, startDevServer, uniqueEmail, type DevServer } from "./support/server";

// Second factors through the client, against a real dev server: the codes are computed here from
// the secret the server handed out, as an authenticator app computes them.

let dataDir: string;
let server: DevServer;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "authlith-client-mfa-"));
  server = await startDevServer(dataDir, await freePort());
}, 90_000);
afterAll(async () => {
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/**
 * The app's code for the 30-second step `steps` from now. A code works once: the server takes
 * each step at most once, so a test that needs a second code takes the next step (still inside
 * the server's ±1 step window).
 */
const totp = (secret: string, steps = 0) =>
  new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(secret) }).generate({ timestamp: Date.now() + steps * 30_000 });

/** A code that is none of the current ones. */
const wrongCode = (secret: string) => {
  const current = new Set([-1, 0, 1].map((steps) => totp(secret, steps)));
  return ["000000", "111111", "222222", "333333"].find((code) => !current.has(code))!;
};

/** A storage that remembers every token it was given. */
function recordingStorage(): TokenStorage & { written: (string | null)[] } {
  const inner = memoryStorage();
  const written: (string | null)[] = [];
  return { written, get: () => inner.get(), set: (token) => (written.push(token), inner.set(token)) };
}

function newClient() {
  const observed = observedFetch();
  const storage = recordingStorage();
  const deviceStorage = recordingStorage();
  const events: SessionEvent[] = [];
  const client = createAuthClient({ url: server.url, transport: "token", fetch: observed.fetch, storage, deviceStorage });
  client.onSessionChange((event) => events.push(event));
  return { client, observed, storage, deviceStorage, events };
}

/** An account with an authenticator app, signed up through the client (which stays signed in). */
async function accountWithApp() {
  const owner = newClient();
  const email = uniqueEmail("mfa");
  await owner.client.register({ email, password: PASSWORD });
  const enrolment = await owner.client.mfa.totp.enroll();
  expect(enrolment.uri).toMatch(/^otpauth:\/\/totp\//);
  expect(enrolment.qrCode).toMatch(/^data:image\/svg\+xml;base64,/);
  const { recoveryCodes } = await owner.client.mfa.totp.confirm(totp(enrolment.secret));
  expect(recoveryCodes).toHaveLength(10);
  return { owner, email, secret: enrolment.secret, recoveryCodes: recoveryCodes! };
}

/** A password sign-in that must answer with a second-factor challenge. */
async function challenged(client: ReturnType<typeof newClient>["client"], email: string): Promise<MfaChallenge> {
  const answer = await client.login({ email, password: PASSWORD });
  if (answer.status !== "mfa_required") throw new Error("expected a second-factor challenge");
  return answer;
}

const caught = (promise: Promise<unknown>) => promise.then(() => null, (error: unknown) => error as AuthClientError);

describe("signing in with a second factor", () => {
  it("a password answers a challenge and changes nothing; the app's code finishes it like a login", async () => {
    const { email, secret } = await accountWithApp();
    const { client, observed, storage, deviceStorage, events } = newClient();

    const answer = await client.login({ email, password: PASSWORD });
    expect(answer).toEqual({ status: "mfa_required", challengeId: expect.any(String), methods: expect.any(Array), expiresAt: expect.any(String) });
    if (answer.status !== "mfa_required") return;
    expect([...answer.methods].sort()).toEqual(["recovery_code", "totp"]);
    expect(Date.parse(answer.expiresAt)).toBeGreaterThan(Date.now());
    // Nobody is signed in yet: no session held, stored, announced or restorable.
    expect(events).toEqual([]);
    expect(client.getUser()).toBeNull();
    expect(storage.written).toEqual([]);
    expect(deviceStorage.written).toEqual([]);
    await expect(client.me()).rejects.toMatchObject({ kind: "unauthorized", reason: "NOT_SIGNED_IN" });

    const code = totp(secret, 1);
    const signedIn = await client.verifyMfa({ challengeId: answer.challengeId, code });
    expect(signedIn).toMatchObject({ status: "signed_in", user: { email }, tokenType: "Bearer" });
    expect(observed.inputsOf("auth.verifyMfa")).toEqual([{ challengeId: answer.challengeId, code }]);
    // The session is established exactly as by a login: held, announced, both tokens stored.
    expect(events).toEqual([{ type: "signed_in", user: signedIn.user }]);
    expect(client.getUser()).toEqual(signedIn.user);
    expect(client.getSnapshot()).toMatchObject({ status: "signed_in", user: { email } });
    expect(storage.written).toEqual([signedIn.refreshToken]);
    expect(deviceStorage.written).toEqual([signedIn.deviceToken]);
    const me = await client.me();
    expect(me.session.amr).toEqual(expect.arrayContaining(["pwd", "otp", "mfa"]));
    expect(Date.parse(me.session.authTime)).toBeLessThanOrEqual(Date.now());

    // The challenge is spent: starting over is the only way on.
    expect(await caught(client.verifyMfa({ challengeId: answer.challengeId, code }))).toMatchObject({
      kind: "unauthorized",
      status: 401,
      reason: "MFA_CHALLENGE_INVALID",
    });
    expect(client.getUser()).toEqual(signedIn.user);
  });

  it("types a wrong code (the challenge stays usable), signs in with a recovery code once, and types a spent challenge", async () => {
    const { email, secret, recoveryCodes } = await accountWithApp();
    const { client, events } = newClient();

    const challenge = await challenged(client, email);
    const wrong = await caught(client.verifyMfa({ challengeId: challenge.challengeId, code: wrongCode(secret) }));
    expect(wrong).toBeInstanceOf(AuthClientError);
    expect(wrong).toMatchObject({ kind: "unauthorized", status: 401, reason: "INVALID_MFA_CODE" });
    expect(events).toEqual([]);
    const signedIn = expectSignedIn(await client.verifyMfa({ challengeId: challenge.challengeId, recoveryCode: recoveryCodes[0]! }));
    expect(signedIn.user.email).toBe(email);
    expect(events.map((event) => event.type)).toEqual(["signed_in"]);
    expect((await client.mfa.status()).recoveryCodesLeft).toBe(9);

    // A recovery code works once.
    const again = newClient().client;
    const next = await challenged(again, email);
    expect(await caught(again.verifyMfa({ challengeId: next.challengeId, recoveryCode: recoveryCodes[0]! }))).toMatchObject({
      kind: "unauthorized",
      reason: "INVALID_MFA_CODE",
    });
    // Five wrong codes spend the challenge (as expiry does): then MFA_CHALLENGE_INVALID, whatever the code.
    for (let attempt = 1; attempt < 5; attempt++) {
      expect(await caught(again.verifyMfa({ challengeId: next.challengeId, code: wrongCode(secret) }))).toMatchObject({ reason: "INVALID_MFA_CODE" });
    }
    expect(await caught(again.verifyMfa({ challengeId: next.challengeId, recoveryCode: recoveryCodes[1]! }))).toMatchObject({
      kind: "unauthorized",
      status: 401,
      reason: "MFA_CHALLENGE_INVALID",
    });
    expect(again.getUser()).toBeNull();
  });

  it("types the account's limit on wrong codes across challenges as rate_limited, with when to retry", async () => {
    const { email, secret, recoveryCodes } = await accountWithApp();
    const { client } = newClient();
    let limited: AuthClientError | null = null;
    // Ten wrong codes in 15 minutes per account, whatever the challenge (each takes five).
    for (let round = 0; round < 3 && !limited; round++) {
      const challenge = await challenged(client, email);
      for (let attempt = 0; attempt < 5 && !limited; attempt++) {
        const error = await caught(client.verifyMfa({ challengeId: challenge.challengeId, code: wrongCode(secret) }));
        if (error?.kind === "rate_limited") limited = error;
        else expect(error).toMatchObject({ reason: "INVALID_MFA_CODE" });
      }
    }
    expect(limited).toMatchObject({ kind: "rate_limited", status: 429, reason: "RATE_LIMITED" });
    expect(limited!.retryAfterSeconds).toBeGreaterThan(0);
    // A right recovery code is refused too while the limit holds.
    const challenge = await challenged(client, email);
    expect(await caught(client.verifyMfa({ challengeId: challenge.challengeId, recoveryCode: recoveryCodes[0]! }))).toMatchObject({ kind: "rate_limited" });
  });
});

describe("the account's second factors", () => {
  it("sends each step-up proof as given: the password, then a code; typed refusals until both are there", async () => {
    const { owner, email, secret, recoveryCodes } = await accountWithApp();
    const { client, observed } = owner;
    expect(await client.mfa.status()).toMatchObject({ enabled: true, totp: { enabled: true }, passkeys: [], recoveryCodesLeft: 10 });
    expect(await client.mfa.passkeys.list()).toEqual([]);
    expect(await caught(client.mfa.totp.enroll())).toMatchObject({ kind: "conflict", reason: "TOTP_ALREADY_ENABLED" });

    // The app is the last factor: removing it takes the password and a second factor.
    expect(await caught(client.mfa.totp.disable({}))).toMatchObject({ kind: "forbidden", status: 403, reason: "REAUTHENTICATION_REQUIRED" });
    expect(await caught(client.mfa.totp.disable({ password: "not the password" }))).toMatchObject({ kind: "forbidden", reason: "INVALID_PASSWORD" });
    expect(await caught(client.mfa.totp.disable({ password: PASSWORD }))).toMatchObject({ kind: "forbidden", reason: "SECOND_FACTOR_REQUIRED" });
    const wrong = wrongCode(secret);
    expect(await caught(client.mfa.totp.disable({ password: PASSWORD, code: wrong }))).toMatchObject({ kind: "forbidden", reason: "INVALID_MFA_CODE" });

    // Recent sign-in: new recovery codes need no proof; the old ones stop working.
    const fresh = await client.mfa.recoveryCodes.regenerate();
    expect(fresh).toHaveLength(10);
    expect(fresh).not.toContain(recoveryCodes[0]);

    const code = totp(secret, 1);
    expect(await client.mfa.totp.disable({ password: PASSWORD, code })).toEqual({ mfaEnabled: false });
    expect(observed.inputsOf("mfa.totp.disable")).toEqual([{}, { password: "not the password" }, { password: PASSWORD }, { password: PASSWORD, code: wrong }, { password: PASSWORD, code }]);
    expect(observed.inputsOf("mfa.recoveryCodes.regenerate")).toEqual([{}]);
    expect(await client.mfa.status()).toMatchObject({ enabled: false, totp: { enabled: false, enabledAt: null }, recoveryCodesLeft: 0 });

    // Without a factor, the password alone signs in again.
    expect(await newClient().client.login({ email, password: PASSWORD })).toMatchObject({ status: "signed_in", user: { email } });
  });

  it("sends a recovery code as the step-up proof", async () => {
    const { owner, recoveryCodes } = await accountWithApp();
    expect(await owner.client.mfa.totp.disable({ password: PASSWORD, recoveryCode: recoveryCodes[3]! })).toEqual({ mfaEnabled: false });
    expect(owner.observed.inputsOf("mfa.totp.disable")).toEqual([{ password: PASSWORD, recoveryCode: recoveryCodes[3] }]);
  });

  it("types a wrong first code as a field error of `code`", async () => {
    const { client } = newClient();
    await client.register({ email: uniqueEmail("mfa-confirm"), password: PASSWORD });
    const { secret } = await client.mfa.totp.enroll();
    const error = await caught(client.mfa.totp.confirm(wrongCode(secret)));
    expect(error).toMatchObject({ kind: "validation", status: 400 });
    expect(error!.fieldErrors.code).toEqual([expect.any(String)]);
    expect((await client.mfa.status()).enabled).toBe(false);
  });
});
