import * as z from "zod/mini";
import "@authlith/core/zod";

/** Inputs are strict: unknown keys are rejected (no mass assignment, SECURITY 29). */
export const emailSchema = z.pipe(
  z.string().check(z.trim(), z.minLength(1), z.maxLength(254)),
  z.email({ message: "Invalid email address" }),
);

/** Bounds the work before hashing; the policy (code points after NFKC) is checked in core. */
export const passwordSchema = z.string().check(z.minLength(1), z.maxLength(1024));

// No control characters in display names: they would end up in mail and UIs.
const NO_CONTROL_CHARS = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]*$/u;

const codePoints = (value: string) => [...value.normalize("NFKC")].length;

/**
 * A new password: the policy's fixed bounds (8–256 code points after NFKC) here, so they are
 * reported with the other field errors; a configured minimum above 8 is enforced by core.
 */
export const newPasswordSchema = passwordSchema.check(
  z.refine((value: string) => codePoints(value) >= 8, "Password must be at least 8 characters"),
  z.refine((value: string) => codePoints(value) <= 256, "Password must be at most 256 characters"),
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
