import type { MfaChallenge, MfaStatus, PasskeyInfo, SignedIn, StepUpProof, TotpEnrolment, VerifyMfaInput } from "./types.js";

// The client's second-factor API (implemented in mfa-client.ts). Passkey methods run the
// browser's prompt: a dismissed prompt fails with kind "cancelled" (reason PASSKEY_CANCELLED),
// a browser that cannot do it with kind "passkey".

/** Finishing a sign-in with a second factor, or signing in with a passkey alone. */
export interface MfaSignIn {
  /**
   * Finishes a sign-in that answered `{ status: "mfa_required" }` with a code from the
   * authenticator app or a recovery code; the client then holds the session, as after a login.
   * Fails with kind "unauthorized": reason INVALID_MFA_CODE (wrong code; the challenge takes a
   * few tries) or MFA_CHALLENGE_INVALID (expired or spent: sign in again); or "rate_limited".
   */
  verifyMfa(input: VerifyMfaInput): Promise<SignedIn>;
  /** Finishes a sign-in with one of the account's passkeys (`challenge.passkeyOptions`): fails like `verifyMfa`. */
  verifyMfaWithPasskey(challenge: MfaChallenge): Promise<SignedIn>;
  /**
   * Signs in with a passkey alone, no address or password: the browser offers the passkeys it
   * holds for this site. Fails with kind "unauthorized", reason PASSKEY_REJECTED (not a passkey
   * of an account here) or MFA_CHALLENGE_INVALID (the prompt was left open too long).
   */
  signInWithPasskey(): Promise<SignedIn>;
}

/**
 * The signed-in user's second factors. Changes need a `StepUpProof` when the server asks for one:
 * kind "forbidden" with reason REAUTHENTICATION_REQUIRED (add the password), SECOND_FACTOR_REQUIRED
 * (add a code, recovery code or passkey), INVALID_PASSWORD or INVALID_MFA_CODE.
 */
export interface MfaSettings {
  /** Whether sign-in asks for a second factor, the app, the passkeys and how many recovery codes are left. */
  status(): Promise<MfaStatus>;
  totp: {
    /**
     * A new authenticator-app secret to show (`qrCode`, or `secret` to type in). Nothing changes
     * at sign-in until `confirm` proves the app holds it. Fails with kind "conflict" (reason
     * TOTP_ALREADY_ENABLED) when an app is set up already.
     */
    enroll(proof?: StepUpProof): Promise<TotpEnrolment>;
    /**
     * Turns the app on with its first code. `recoveryCodes`: the account's first ten, to show
     * once (null when it had some already). A wrong code fails with kind "validation", `fieldErrors.code`.
     */
    confirm(code: string): Promise<{ recoveryCodes: string[] | null }>;
    /** Removes the app (a second factor; the password too if it is the last one). `mfaEnabled`: whether a factor remains. */
    disable(proof: StepUpProof): Promise<{ mfaEnabled: boolean }>;
  };
  recoveryCodes: {
    /** Ten new recovery codes, to show once; the old ones stop working. */
    regenerate(proof?: StepUpProof): Promise<string[]>;
  };
  passkeys: {
    /**
     * Creates a passkey in the browser (its prompt) and adds it to the account. `recoveryCodes`:
     * the account's first ten when this is its first factor, to show once, else null. Fails with
     * kind "passkey", reason PASSKEY_ALREADY_REGISTERED, when this authenticator has one already.
     */
    add(input?: { name?: string } & StepUpProof): Promise<{ passkey: PasskeyInfo; recoveryCodes: string[] | null }>;
    list(): Promise<PasskeyInfo[]>;
    rename(passkeyId: string, name: string): Promise<PasskeyInfo>;
    /** Removes a passkey (a second factor, which may be that passkey; the password too if it is the last one). */
    delete(passkeyId: string, proof: StepUpProof): Promise<{ mfaEnabled: boolean }>;
  };
}
