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
