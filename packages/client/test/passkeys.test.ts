import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { AuthClientError, createAuthClient, type MfaChallenge, type SessionEvent } from "../src/index";
import { fakeService, fakeSession, freePort, observedFetch, PASSWORD, startDevServer, uniqueEmail, type DevServer } from "./support/server";

// The passkey methods. A ceremony needs a browser and an authenticator (the example app's browser
// tests run real ones); here @simplewebauthn/browser is replaced by canned answers, and the tests
// check what the client asks the browser for, what it sends on, and how failures are typed.

const webauthn = vi.hoisted(() => ({
  browserSupportsWebAuthn: vi.fn(() => true),
  startAuthentication: vi.fn(),
  startRegistration: vi.fn(),
}));
vi.mock("@simplewebauthn/browser", () => webauthn);

/** A passkey's answer as the browser library gives it (well-formed; it signs nothing real). */
const ASSERTION = {
  id: "Y3JlZGVudGlhbA",
  rawId: "Y3JlZGVudGlhbA",
  type: "public-key",
  response: { clientDataJSON: "e30", authenticatorData: "AAAA", signature: "AAAA", userHandle: "dXNlcg" },
  clientExtensionResults: {},
  authenticatorAttachment: "platform",
} as const;
const ATTESTATION = {
  id: "bmV3LWNyZWRlbnRpYWw",
  rawId: "bmV3LWNyZWRlbnRpYWw",
  type: "public-key",
  response: { clientDataJSON: "e30", attestationObject: "o2NmbXRkbm9uZQ", transports: ["internal"] },
  clientExtensionResults: {},
  authenticatorAttachment: "platform",
} as const;

let dataDir: string;
let server: DevServer;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "authlith-client-passkeys-"));
  server = await startDevServer(dataDir, await freePort());
}, 90_000);
afterAll(async () => {
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});
beforeEach(() => {
  vi.clearAllMocks();
  webauthn.browserSupportsWebAuthn.mockReturnValue(true);
  webauthn.startAuthentication.mockResolvedValue(ASSERTION);
  webauthn.startRegistration.mockResolvedValue(ATTESTATION);
});

function newClient(fetch?: typeof globalThis.fetch) {
  const observed = observedFetch();
  const events: SessionEvent[] = [];
  const client = createAuthClient({ url: server.url, transport: "token", fetch: fetch ?? observed.fetch });
  client.onSessionChange((event) => events.push(event));
  return { client, observed, events };
}

const caught = (promise: Promise<unknown>) => promise.then(() => null, (error: unknown) => error as AuthClientError);

describe("passkey ceremonies, against a real dev server (the library's answers canned)", () => {
  it("signInWithPasskey: the server's options to the browser, its answer with the challenge to auth.passkeyLogin", async () => {
    const { client, observed, events } = newClient();
    const error = await caught(client.signInWithPasskey());
    const [options] = observed.inputsOf("auth.passkeyOptions");
    expect(options).toEqual({});
    const { optionsJSON } = webauthn.startAuthentication.mock.calls[0]![0];
    // Usernameless: no allow list, user verification required.
    expect(optionsJSON).toMatchObject({ challenge: expect.any(String), userVerification: "required" });
    expect(optionsJSON.allowCredentials ?? []).toEqual([]);
    expect(observed.inputsOf("auth.passkeyLogin")).toEqual([{ challengeId: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), response: ASSERTION }]);
    // The server knows no such passkey: typed, and nobody is signed in.
    expect(error).toMatchObject({ kind: "unauthorized", status: 401, reason: "PASSKEY_REJECTED" });
    expect(events).toEqual([]);
  });

  it("verifyMfaWithPasskey: the challenge's options to the browser, its answer as the challenge's passkey proof", async () => {
    const email = uniqueEmail("passkey-mfa");
    const { client, observed } = newClient();
    await client.register({ email, password: PASSWORD });
    const { secret } = await client.mfa.totp.enroll();
    const { TOTP, Secret } = await import("otpauth");
    await client.mfa.totp.confirm(new TOTP({ secret: Secret.fromBase32(secret) }).generate());

    const answer = await newClient().client.login({ email, password: PASSWORD });
    if (answer.status !== "mfa_required") throw new Error("expected a second-factor challenge");
    // An account without passkeys is offered none: typed, and nothing is sent.
    expect(answer.passkeyOptions).toBeUndefined();
    const before = observed.calls.length;
    expect(await caught(client.verifyMfaWithPasskey(answer))).toMatchObject({ kind: "passkey", reason: "PASSKEY_NOT_OFFERED" });
    expect(observed.calls.length).toBe(before);
    expect(webauthn.startAuthentication).not.toHaveBeenCalled();

    // With options (as an account with a passkey gets them), the ceremony's answer goes to auth.verifyMfa.
    const passkeyOptions = { challenge: "Y2hhbGxlbmdl", rpId: "localhost", allowCredentials: [{ id: ASSERTION.id, type: "public-key" as const }] };
    const challenge: MfaChallenge = { ...answer, methods: ["passkey", "totp"], passkeyOptions };
    const { client: signingIn, observed: sent } = newClient();
    const error = await caught(signingIn.verifyMfaWithPasskey(challenge));
    expect(webauthn.startAuthentication).toHaveBeenCalledWith({ optionsJSON: passkeyOptions });
    expect(sent.inputsOf("auth.verifyMfa")).toEqual([{ challengeId: answer.challengeId, passkey: ASSERTION }]);
    // This sign-in's challenge carries no passkey challenge: the answer cannot check out.
    expect(error).toMatchObject({ kind: "unauthorized", reason: "INVALID_MFA_CODE" });
    expect(signingIn.getUser()).toBeNull();
  });

  it("mfa.passkeys.add: registration options to the browser, the new credential and its name to verifyRegistration", async () => {
    const { client, observed } = newClient();
    const email = uniqueEmail("passkey-add");
    await client.register({ email, password: PASSWORD });
    const error = await caught(client.mfa.passkeys.add({ name: "Laptop" }));
    // Just signed in, no factor yet: no proof needed, none sent.
    expect(observed.inputsOf("mfa.passkey.registrationOptions")).toEqual([{}]);
    const { optionsJSON } = webauthn.startRegistration.mock.calls[0]![0];
    expect(optionsJSON).toMatchObject({ challenge: expect.any(String), user: { name: email }, authenticatorSelection: { residentKey: "required" } });
    expect(observed.inputsOf("mfa.passkey.verifyRegistration")).toEqual([
      { challengeId: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), response: ATTESTATION, name: "Laptop" },
    ]);
    // The canned attestation signs nothing: refused, typed.
    expect(error).toMatchObject({ kind: "validation", reason: "PASSKEY_REJECTED" });
    expect((await client.mfa.status()).passkeys).toEqual([]);
  });
});

describe("passkey step-up proofs (a stand-in service: a passkey that checks out)", () => {
  const signedIn = async (answers: Record<string, unknown>) => {
    const service = fakeService({ "auth.login": fakeSession(), ...answers });
    const client = createAuthClient({ url: "https://auth.example.com", transport: "token", fetch: service.fetch, crossTab: false });
    await client.login({ email: "ada@example.com", password: PASSWORD });
    return { client, service };
  };
  const stepUp = { challengeId: "c".repeat(43), options: { challenge: "c3RlcC11cA", allowCredentials: [{ id: "a2V5", type: "public-key" }] } };

  it("passkey: true runs mfa.stepUpOptions and the prompt first, then sends { passkey: { challengeId, response } } with the rest", async () => {
    const { client, service } = await signedIn({
      "mfa.stepUpOptions": stepUp,
      "mfa.totp.disable": { success: true, mfaEnabled: true },
      "mfa.passkey.delete": { success: true, mfaEnabled: false },
    });
    expect(await client.mfa.totp.disable({ passkey: true })).toEqual({ mfaEnabled: true });
    expect(await client.mfa.passkeys.delete("0190a0a0-0000-7000-8000-0000000000aa", { password: PASSWORD, passkey: true })).toEqual({ mfaEnabled: false });
    expect(service.procedures()).toEqual(["auth.login", "mfa.stepUpOptions", "mfa.totp.disable", "mfa.stepUpOptions", "mfa.passkey.delete"]);
    expect(webauthn.startAuthentication).toHaveBeenCalledTimes(2);
    expect(webauthn.startAuthentication).toHaveBeenCalledWith({ optionsJSON: stepUp.options });
    const proof = { challengeId: stepUp.challengeId, response: ASSERTION };
    expect(service.inputsOf("mfa.totp.disable")).toEqual([{ passkey: proof }]);
    expect(service.inputsOf("mfa.passkey.delete")).toEqual([{ password: PASSWORD, passkey: proof, passkeyId: "0190a0a0-0000-7000-8000-0000000000aa" }]);
  });

  it("mfa.passkeys.add with a passkey proof: the step-up ceremony, then the registration ceremony", async () => {
    const passkey = { id: "0190a0a0-0000-7000-8000-0000000000bb", name: "Key", createdAt: "", lastUsedAt: null, deviceType: "singleDevice", backedUp: false };
    const { client, service } = await signedIn({
      "mfa.stepUpOptions": stepUp,
      "mfa.passkey.registrationOptions": { challengeId: "r".repeat(43), options: { challenge: "cmVn", rp: { name: "authlith" } } },
      "mfa.passkey.verifyRegistration": { passkey, recoveryCodes: null },
    });
    expect(await client.mfa.passkeys.add({ passkey: true })).toEqual({ passkey, recoveryCodes: null });
    expect(service.inputsOf("mfa.passkey.registrationOptions")).toEqual([{ passkey: { challengeId: stepUp.challengeId, response: ASSERTION } }]);
    expect(webauthn.startRegistration).toHaveBeenCalledWith({ optionsJSON: { challenge: "cmVn", rp: { name: "authlith" } } });
    expect(service.inputsOf("mfa.passkey.verifyRegistration")).toEqual([{ challengeId: "r".repeat(43), response: ATTESTATION }]);
  });
});

describe("the browser's failures, typed", () => {
  const prompted = (error: unknown) => {
    webauthn.startAuthentication.mockRejectedValue(error);
    const { client, observed } = newClient();
    return { result: caught(client.signInWithPasskey()), observed };
  };

  it("a dismissed or timed-out prompt is kind cancelled, and nothing more is sent", async () => {
    const dismissed = new DOMException("The operation either timed out or was not allowed.", "NotAllowedError");
    const { result, observed } = prompted(dismissed);
    const error = await result;
    expect(error).toBeInstanceOf(AuthClientError);
    expect(error).toMatchObject({ kind: "cancelled", reason: "PASSKEY_CANCELLED", cause: dismissed });
    expect(AuthClientError.is(error, "cancelled")).toBe(true);
    expect(observed.count("auth.passkeyLogin")).toBe(0);
    // A ceremony replaced by a newer one, the same.
    expect(await prompted(new DOMException("aborted", "AbortError")).result).toMatchObject({ kind: "cancelled", reason: "PASSKEY_CANCELLED" });
  });

  it("anything else the browser refuses is kind passkey, with a reason", async () => {
    expect(await prompted(new DOMException("no", "SecurityError")).result).toMatchObject({ kind: "passkey", reason: "PASSKEY_FAILED", message: "no" });
    expect(await prompted(new Error("Authentication was not completed")).result).toMatchObject({ kind: "passkey", reason: "PASSKEY_FAILED" });

    webauthn.startRegistration.mockRejectedValue(new DOMException("already registered", "InvalidStateError"));
    const { client } = newClient();
    await client.register({ email: uniqueEmail("passkey-twice"), password: PASSWORD });
    expect(await caught(client.mfa.passkeys.add())).toMatchObject({ kind: "passkey", reason: "PASSKEY_ALREADY_REGISTERED" });

    webauthn.startAuthentication.mockClear();
    webauthn.browserSupportsWebAuthn.mockReturnValue(false);
    const { result, observed } = prompted(new Error("unreachable"));
    expect(await result).toMatchObject({ kind: "passkey", reason: "PASSKEY_UNSUPPORTED" });
    expect(webauthn.startAuthentication).not.toHaveBeenCalled();
    // Found out before the server was asked for a challenge.
    expect(observed.calls).toEqual([]);
  });
});
