import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from "@simplewebauthn/server";
import type { Deps } from "../deps";
import { describeError } from "../log";

export type { AuthenticationResponseJSON, RegistrationResponseJSON };

type Transport = "ble" | "cable" | "hybrid" | "internal" | "nfc" | "smart-card" | "usb";
type UserVerification = "required" | "preferred" | "discouraged";
interface CredentialDescriptor {
  id: string;
  type: "public-key";
  transports?: Transport[];
}

/**
 * The options this service sends for `navigator.credentials.create`, as plain JSON: the library's
 * own type also describes extensions with binary members this service never sends, which a typed
 * client would otherwise have to carry.
 */
export interface PasskeyCreationOptions {
  challenge: string;
  rp: { id?: string; name: string };
  user: { id: string; name: string; displayName: string };
  pubKeyCredParams: { alg: number; type: "public-key" }[];
  timeout?: number;
  excludeCredentials?: CredentialDescriptor[];
  authenticatorSelection?: {
    authenticatorAttachment?: "platform" | "cross-platform";
    residentKey?: "discouraged" | "preferred" | "required";
    requireResidentKey?: boolean;
    userVerification?: UserVerification;
  };
  attestation?: "none" | "direct" | "enterprise" | "indirect";
  hints?: ("hybrid" | "security-key" | "client-device")[];
  extensions?: { credProps?: boolean };
}

/** The options this service sends for `navigator.credentials.get`, as plain JSON. */
export interface PasskeyRequestOptions {
  challenge: string;
  timeout?: number;
  rpId?: string;
  allowCredentials?: CredentialDescriptor[];
  userVerification?: UserVerification;
  hints?: ("hybrid" | "security-key" | "client-device")[];
}

/**
 * WebAuthn ceremonies through @simplewebauthn/server (docs/security.md §41). The library is loaded
 * on first use: a sign-in with a password never pays for its parsing at cold start.
 */
const library = () => import("@simplewebauthn/server");

/** The relying party: configured, else the app's own host and origin. */
export function relyingParty(deps: Deps): { rpId: string; rpName: string; origins: string[] } {
  if (deps.config.passkeys) return deps.config.passkeys;
  const app = new URL(deps.config.mail.appUrl);
  return { rpId: app.hostname, rpName: deps.config.mail.serviceName, origins: [app.origin] };
}

export interface StoredPasskey {
  credentialId: Uint8Array;
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
}

const toB64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");

export async function registrationOptions(
  deps: Deps,
  user: { id: string; email: string; name: string | null },
  existing: readonly StoredPasskey[],
  challenge: string,
): Promise<PasskeyCreationOptions> {
  const { generateRegistrationOptions } = await library();
  const rp = relyingParty(deps);
  const options = await generateRegistrationOptions({
    rpName: rp.rpName,
    rpID: rp.rpId,
    userName: user.email,
    userDisplayName: user.name ?? user.email,
    // The user handle is the account id: opaque, stable across email changes, no personal data.
    userID: new Uint8Array(Buffer.from(user.id.replaceAll("-", ""), "hex")),
    challenge: new Uint8Array(Buffer.from(challenge, "base64url")),
    timeout: deps.config.mfa.challengeTtlSeconds * 1000,
    attestationType: "none",
    excludeCredentials: existing.map((p) => ({ id: toB64(p.credentialId), transports: p.transports })),
    // Discoverable, so the passkey can sign in without an address (usernameless).
    authenticatorSelection: { residentKey: "required", userVerification: "preferred" },
  });
  // Plain JSON already (no extension with binary members is asked for): only the type narrows.
  return options as PasskeyCreationOptions;
}

export interface NewPasskey {
  credentialId: Buffer;
  publicKey: Buffer;
  counter: number;
  transports: string[];
  deviceType: "singleDevice" | "multiDevice";
  backedUp: boolean;
}

/** The new credential if the answer checks out (challenge, origin, RP ID, signature), else null. */
export async function checkRegistration(deps: Deps, response: RegistrationResponseJSON, expectedChallenge: string): Promise<NewPasskey | null> {
  const { verifyRegistrationResponse } = await library();
  const rp = relyingParty(deps);
  try {
    const result = await verifyRegistrationResponse({
      response,
      expectedChallenge,
      expectedOrigin: rp.origins,
      expectedRPID: rp.rpId,
      requireUserVerification: false,
    });
    if (!result.verified) return null;
    const { credential, credentialDeviceType, credentialBackedUp } = result.registrationInfo;
    return {
      credentialId: Buffer.from(credential.id, "base64url"),
      publicKey: Buffer.from(credential.publicKey),
      counter: credential.counter,
      transports: credential.transports ?? response.response.transports ?? [],
      deviceType: credentialDeviceType,
      backedUp: credentialBackedUp,
    };
  } catch (error) {
    deps.log.info("passkey.registration_rejected", describeError(error));
    return null;
  }
}

export async function authenticationOptions(
  deps: Deps,
  challenge: string,
  allow: readonly StoredPasskey[] | null,
  userVerification: "required" | "preferred",
): Promise<PasskeyRequestOptions> {
  const { generateAuthenticationOptions } = await library();
  const options = await generateAuthenticationOptions({
    rpID: relyingParty(deps).rpId,
    challenge: new Uint8Array(Buffer.from(challenge, "base64url")),
    timeout: deps.config.mfa.challengeTtlSeconds * 1000,
    userVerification,
    // None listed: the browser offers every passkey it holds for this site (usernameless).
    ...(allow ? { allowCredentials: allow.map((p) => ({ id: toB64(p.credentialId), transports: p.transports as never })) } : {}),
  });
  return options as PasskeyRequestOptions;
}

export interface CheckedAssertion {
  newCounter: number;
  deviceType: "singleDevice" | "multiDevice";
  userVerified: boolean;
}

/**
 * Checks a passkey's answer against the challenge, origin, RP ID and stored public key. The
 * signature counter is not checked here but by the caller's conditional UPDATE, atomically, where
 * a counter that did not grow is recorded as a clone (the library would only throw).
 */
export async function checkAssertion(
  deps: Deps,
  response: AuthenticationResponseJSON,
  expectedChallenge: string,
  passkey: StoredPasskey,
  requireUserVerification: boolean,
): Promise<CheckedAssertion | null> {
  const { verifyAuthenticationResponse } = await library();
  const rp = relyingParty(deps);
  try {
    const result = await verifyAuthenticationResponse({
      response,
      expectedChallenge,
      expectedOrigin: rp.origins,
      expectedRPID: rp.rpId,
      credential: { id: toB64(passkey.credentialId), publicKey: new Uint8Array(passkey.publicKey), counter: 0, transports: passkey.transports as never },
      requireUserVerification,
    });
    if (!result.verified) return null;
    const info = result.authenticationInfo;
    return { newCounter: info.newCounter, deviceType: info.credentialDeviceType, userVerified: info.userVerified };
  } catch (error) {
    deps.log.info("passkey.assertion_rejected", describeError(error));
    return null;
  }
}

/** A counter that must grow did not: the same credential answers from two authenticators. */
export const counterRegressed = (stored: number, presented: number): boolean => (stored > 0 || presented > 0) && presented <= stored;

/** The RFC 8176 method of a passkey: a device-bound key is hardware-held, a synced one is not. */
export const passkeyAmr = (deviceType: string): string => (deviceType === "singleDevice" ? "hwk" : "swk");
