import { passwordMessage, passwordShapeProblem, PASSWORD_LENGTH } from "@authlith/core/password-policy";
import * as z from "zod/mini";
import "@authlith/core/zod";

/** Inputs are strict: unknown keys are rejected (no mass assignment, docs/security.md §29). */
export const emailSchema = z.pipe(
  z.string().check(z.trim(), z.minLength(1), z.maxLength(254)),
  z.email({ message: "Invalid email address" }),
);

/** Bounds the work before hashing (4 UTF-16 units per code point at most); the policy is core's. */
export const passwordSchema = z.string().check(z.minLength(1), z.maxLength(PASSWORD_LENGTH.max * 4));

// No control characters in display names: they would end up in mail and UIs.
const NO_CONTROL_CHARS = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]*$/u;

/**
 * A new password: what core's policy can judge without context or configuration (characters,
 * the fixed length bounds), here, so it is reported with the other field errors, in the policy's
 * words. The rest (a configured minimum, the blocklist, context words) is core's, at the flow.
 */
export const newPasswordSchema = passwordSchema.check(
  z.superRefine((value: string, ctx) => {
    const problem = passwordShapeProblem(value);
    if (problem) ctx.issues.push({ code: "custom", message: passwordMessage(problem), input: value });
  }),
);

export const registerInput = z.strictObject({
  email: emailSchema,
  password: newPasswordSchema,
  name: z.nullish(z.string().check(z.trim(), z.minLength(1), z.maxLength(100), z.regex(NO_CONTROL_CHARS, "Invalid characters"))),
});

export const loginInput = z.strictObject({
  email: emailSchema,
  password: passwordSchema,
  /** Token transport: the known-device token from an earlier sign-in (browsers send a cookie). */
  deviceToken: z.optional(z.string().check(z.maxLength(200))),
});

export const refreshTokenField = z.string().check(z.minLength(1), z.maxLength(256));

/** Optional refresh token for the token transport; cookie clients send no input at all. */
export const refreshInput = z.optional(z.strictObject({ refreshToken: z.optional(refreshTokenField) }));

export const sessionIdInput = z.strictObject({ sessionId: z.uuid({ message: "Invalid session id" }) });

export const requestPasswordResetInput = z.strictObject({ email: emailSchema });

export const resetPasswordInput = z.strictObject({
  token: z.string().check(z.minLength(1), z.maxLength(128)),
  newPassword: newPasswordSchema,
});

export const changePasswordInput = z.strictObject({ currentPassword: passwordSchema, newPassword: newPasswordSchema });

export const deleteAccountInput = z.strictObject({ password: passwordSchema });

/** A sensitive operation's optional proof: the password, when the sign-in is not recent. */
export const reauthInput = z.optional(z.strictObject({ password: z.optional(passwordSchema) }));

export const changeEmailInput = z.strictObject({ password: passwordSchema, newEmail: emailSchema });

/** A mailed token, as the app read it from its link's `#token=` (shape checked by core). */
export const mailedTokenInput = z.strictObject({ token: z.string().check(z.minLength(1), z.maxLength(128)) });

export const confirmEmailChangeInput = mailedTokenInput;

/** The link's token and the account's password (the link proves the inbox, the password the account). */
export const verifyEmailInput = z.strictObject({ token: z.string().check(z.minLength(1), z.maxLength(128)), password: passwordSchema });

/** A second-factor challenge's id (256 random bits, base64url). */
const challengeIdField = z.string().check(z.regex(/^[A-Za-z0-9_-]{43}$/, "Invalid challenge"));

/** Six digits; spaces (as apps group them: "123 456") are forgiven. */
const totpCodeField = z.pipe(
  z.string().check(z.maxLength(16)),
  z.pipe(
    z.transform((code: string) => code.replace(/\s/g, "")),
    z.string().check(z.regex(/^\d{6}$/, "Enter the 6-digit code from your app")),
  ),
);

const recoveryCodeField = z.string().check(z.minLength(1), z.maxLength(32));

const base64url = (max: number) => z.string().check(z.maxLength(max), z.regex(/^[A-Za-z0-9_-]*$/, "Invalid encoding"));

/**
 * A passkey's answers, as `navigator.credentials` gives them (through @simplewebauthn/browser's
 * JSON): bounded, and not strict, since browsers add members as WebAuthn grows; the library
 * checks everything that matters.
 */
const clientExtensionResults = z._default(z.record(z.string().check(z.maxLength(64)), z.unknown()), {});
const attachment = z.optional(z.enum(["platform", "cross-platform"]));
export const authenticationResponse = z.object({
  id: base64url(1400),
  rawId: base64url(1400),
  type: z.literal("public-key"),
  response: z.object({
    clientDataJSON: base64url(8192),
    authenticatorData: base64url(8192),
    signature: base64url(2048),
    userHandle: z.optional(base64url(128)),
  }),
  clientExtensionResults,
  authenticatorAttachment: attachment,
});

export const registrationResponse = z.object({
  id: base64url(1400),
  rawId: base64url(1400),
  type: z.literal("public-key"),
  response: z.object({
    clientDataJSON: base64url(8192),
    attestationObject: base64url(32768),
    authenticatorData: z.optional(base64url(8192)),
    transports: z.optional(z.array(z.string().check(z.maxLength(32))).check(z.maxLength(10))),
    publicKeyAlgorithm: z.optional(z.number()),
    publicKey: z.optional(base64url(4096)),
  }),
  clientExtensionResults,
  authenticatorAttachment: attachment,
});

const exactlyOne = (keys: readonly string[], required: boolean) =>
  z.superRefine((value: Record<string, unknown>, ctx) => {
    const given = keys.filter((key) => value[key] !== undefined);
    if (given.length > 1 || (required && given.length === 0)) {
      ctx.issues.push({ code: "custom", message: `Give exactly one of: ${keys.join(", ")}`, input: value, path: [] });
    }
  });

/** `auth.verifyMfa`: the challenge and exactly one proof. */
export const verifyMfaInput = z
  .strictObject({
    challengeId: challengeIdField,
    code: z.optional(totpCodeField),
    recoveryCode: z.optional(recoveryCodeField),
    passkey: z.optional(authenticationResponse),
  })
  .check(exactlyOne(["code", "recoveryCode", "passkey"], true));

export const passkeyLoginInput = z.strictObject({ challengeId: challengeIdField, response: authenticationResponse });

/**
 * The proofs of a change to the account's factors: the password when the sign-in is not recent
 * (or the last factor goes), and at most one second factor (a passkey's answer to `mfa.stepUpOptions`).
 */
const stepUpShape = {
  password: z.optional(passwordSchema),
  code: z.optional(totpCodeField),
  recoveryCode: z.optional(recoveryCodeField),
  passkey: z.optional(z.strictObject({ challengeId: challengeIdField, response: authenticationResponse })),
};
export const stepUpInput = z.strictObject(stepUpShape).check(exactlyOne(["code", "recoveryCode", "passkey"], false));

export const optionalStepUpInput = z.optional(stepUpInput);

export const confirmTotpInput = z.strictObject({ code: totpCodeField });

const passkeyName = z.string().check(z.trim(), z.minLength(1), z.maxLength(64), z.regex(NO_CONTROL_CHARS, "Invalid characters"));

export const verifyPasskeyRegistrationInput = z.strictObject({
  challengeId: challengeIdField,
  response: registrationResponse,
  name: z.optional(passkeyName),
});

export const renamePasskeyInput = z.strictObject({ passkeyId: z.uuid({ message: "Invalid passkey id" }), name: passkeyName });

export const deletePasskeyInput = z
  .strictObject({ ...stepUpShape, passkeyId: z.uuid({ message: "Invalid passkey id" }) })
  .check(exactlyOne(["code", "recoveryCode", "passkey"], false));
