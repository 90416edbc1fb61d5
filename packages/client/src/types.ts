import type { InputOf, OutputOf } from "./rpc.js";

// The public shapes, derived from the server's router. The published declarations carry them
// expanded (scripts/build.ts), so an app that installs the client needs no server types.

/**
 * What a sign-in answers once every factor is proven (register, login, verifyMfa, a passkey) and
 * what a refresh answers. `refreshToken` and `deviceToken` only with the token transport.
 */
export type TokenResponse = OutputOf<"auth.refresh">;
/** A sign-in that went through: the client holds the session now. */
export type SignedIn = { status: "signed_in" } & TokenResponse;
/** The signed-in user. */
export type User = TokenResponse["user"];
/** `auth.me`: the user and session as the access token says (`session.amr`: how it signed in). */
export type Me = OutputOf<"auth.me">;
/** One of the user's sessions, as `sessions.list()` shows it. */
export type SessionInfo = OutputOf<"session.list">["sessions"][number];
/** `register()`: email, password (8–256 characters) and an optional name. */
export type RegisterInput = InputOf<"auth.register">;
/** `login()`: email and password. */
export type LoginInput = InputOf<"auth.login">;
/**
 * What `register()` resolves to: signed in at once (email verification off), or, with it on (the
 * server's default), a link was mailed and nobody is signed in. With verification on the answer is
 * the same whether or not the address already had an account (its owner is mailed instead).
 */
export type RegisterResult = SignedIn | { status: "verification_required" };
/** The server's answer to a password that checked out on an account with a second factor. */
type MfaRequired = Extract<OutputOf<"auth.login">, { mfaRequired: true }>;
/** A second factor a sign-in can be finished with. */
export type MfaMethod = MfaRequired["methods"][number];
/**
 * A sign-in waiting for its second factor: nobody is signed in yet. Finish it with `verifyMfa`
 * (a code from `methods`) or `verifyMfaWithPasskey` (when `passkeyOptions` is present) before
 * `expiresAt`; the challenge takes a few wrong codes, then the sign-in starts over.
 */
export type MfaChallenge = { status: "mfa_required" } & Omit<MfaRequired, "mfaRequired">;
/** What `login()` resolves to: signed in, or a second factor is due. */
export type LoginResult = SignedIn | MfaChallenge;
/** `verifyMfa()`: the challenge, and a code from the authenticator app or a recovery code. */
export type VerifyMfaInput = { challengeId: string; code: string } | { challengeId: string; recoveryCode: string };
/** The account's second factors, for its security settings (`mfa.status()`). */
export type MfaStatus = OutputOf<"mfa.status">;
/** One of the user's passkeys. */
export type PasskeyInfo = MfaStatus["passkeys"][number];
/** A new authenticator-app secret (`mfa.totp.enroll()`): `qrCode` is an SVG data URL for an `<img src>`. */
export type TotpEnrolment = OutputOf<"mfa.totp.enroll">;
/**
 * What proves a change to the account's second factors (the server says which it needs, as kind
 * "forbidden": REAUTHENTICATION_REQUIRED asks for the password, SECOND_FACTOR_REQUIRED for one of
 * the others). Adding a factor right after signing in needs none; removing one always needs a
 * second factor, and removing the last one the password too. At most one of `code`,
 * `recoveryCode` and `passkey`; `passkey: true` runs a passkey prompt in the browser.
 */
export type StepUpProof = { password?: string; code?: string; recoveryCode?: string; passkey?: true };
