import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from "@simplewebauthn/browser";
import { AuthClientError, networkError } from "./errors.js";
import type { InputOf, OutputOf } from "./rpc.js";

// The browser's side of the passkey ceremonies, through @simplewebauthn/browser. The library is
// loaded on first use (`import()`): an app bundler splits it into a chunk of its own, so the
// client's main bundle does not carry it and apps that never use passkeys never download it.

/** Options for `navigator.credentials.get`, as the server sends them. */
export type RequestOptions = OutputOf<"auth.passkeyOptions">["options"];
/** Options for `navigator.credentials.create`, as the server sends them. */
export type CreationOptions = OutputOf<"mfa.passkey.registrationOptions">["options"];
/** A passkey's signed answer to a challenge, as the server takes it. */
export type AuthenticationResponse = InputOf<"auth.passkeyLogin">["response"];
/** A new passkey, as the server takes it. */
export type RegistrationResponse = InputOf<"mfa.passkey.verifyRegistration">["response"];

const PASSKEY_REASONS: Record<string, string> = {
  InvalidStateError: "PASSKEY_ALREADY_REGISTERED",
  NotSupportedError: "PASSKEY_UNSUPPORTED",
};

/**
 * A failed ceremony as an AuthClientError. The browser says why only by the error's `name` (a
 * DOMException's, kept by the library's WebAuthnError): NotAllowedError is what a dismissed or
 * timed-out prompt throws, AbortError a ceremony replaced by a newer one.
 */
function ceremonyError(error: unknown): AuthClientError {
  const name = (error as { name?: unknown } | null)?.name;
  const message = error instanceof Error ? error.message : String(error);
  if (name === "NotAllowedError" || name === "AbortError") {
    return new AuthClientError("cancelled", "The passkey prompt was dismissed", { reason: "PASSKEY_CANCELLED", cause: error });
  }
  const reason = (typeof name === "string" && PASSKEY_REASONS[name]) || "PASSKEY_FAILED";
  return new AuthClientError("passkey", message || "The passkey could not be used", { reason, cause: error });
}

/** The browser's two ceremonies, each with its prompt; failures typed by `ceremonyError`. */
export interface PasskeyCeremonies {
  /** A passkey's signed answer to `options` (`navigator.credentials.get`). */
  get(options: RequestOptions): Promise<AuthenticationResponse>;
  /** A new passkey for `options` (`navigator.credentials.create`). */
  create(options: CreationOptions): Promise<RegistrationResponse>;
}

// The options are the JSON the server sent, handed on as they came. Only their types differ: the
// router's went through tRPC's JSON typing, where the binary members of WebAuthn's `extensions`
// (which authlith never sends) lost their DOM types; the library names those types.

/**
 * The ceremonies, once the library is loaded and the browser can run them. Called before the
 * server is asked for a challenge, so a browser without passkeys costs no request (and no
 * step-up code spent on a registration that cannot happen). A chunk that cannot be fetched
 * (offline) fails as kind "network".
 */
export async function passkeyCeremonies(): Promise<PasskeyCeremonies> {
  const library = await import("@simplewebauthn/browser").catch((error: unknown) => {
    throw networkError(error);
  });
  if (!library.browserSupportsWebAuthn()) {
    throw new AuthClientError("passkey", "This browser cannot use passkeys", { reason: "PASSKEY_UNSUPPORTED" });
  }
  const ceremony = async <T>(run: () => Promise<T>) => {
    try {
      return await run();
    } catch (error) {
      throw ceremonyError(error);
    }
  };
  return {
    get: (options) =>
      ceremony(async () => {
        const response = await library.startAuthentication({ optionsJSON: options as PublicKeyCredentialRequestOptionsJSON });
        return { ...response, clientExtensionResults: { ...response.clientExtensionResults } };
      }),
    create: (options) =>
      ceremony(async () => {
        const response = await library.startRegistration({ optionsJSON: options as PublicKeyCredentialCreationOptionsJSON });
        return { ...response, clientExtensionResults: { ...response.clientExtensionResults } };
      }),
  };
}

/** The error for a challenge that offers no passkey (`verifyMfaWithPasskey` without `passkeyOptions`). */
export const passkeyNotOffered = (): AuthClientError =>
  new AuthClientError("passkey", "This sign-in cannot be finished with a passkey", { reason: "PASSKEY_NOT_OFFERED" });
