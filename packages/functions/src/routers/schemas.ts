import { z } from "zod";

/** Inputs are strict: unknown keys are rejected (no mass assignment, SECURITY 29). */
export const emailSchema = z.string().trim().min(1).max(254).pipe(z.email({ message: "Invalid email address" }));

/** Bounds the work before hashing; the policy (code points after NFKC) is checked in core. */
export const passwordSchema = z.string().min(1).max(1024);

// No control characters in display names: they would end up in mail and UIs.
const NO_CONTROL_CHARS = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]*$/u;

const codePoints = (value: string) => [...value.normalize("NFKC")].length;

/**
 * A new password: the policy's fixed bounds (8–256 code points after NFKC) here, so they are
 * reported with the other field errors; a configured minimum above 8 is enforced by core.
 */
export const newPasswordSchema = passwordSchema
  .refine((value) => codePoints(value) >= 8, "Password must be at least 8 characters")
  .refine((value) => codePoints(value) <= 256, "Password must be at most 256 characters");

export const registerInput = z.strictObject({
  email: emailSchema,
  password: newPasswordSchema,
  name: z.string().trim().min(1).max(100).regex(NO_CONTROL_CHARS, "Invalid characters").nullish(),
});

export const loginInput = z.strictObject({
  email: emailSchema,
  password: passwordSchema,
});

export const refreshTokenField = z.string().min(1).max(256);

/** Optional refresh token for the token transport; cookie clients send no input at all. */
export const refreshInput = z.strictObject({ refreshToken: refreshTokenField.optional() }).optional();

export const sessionIdInput = z.strictObject({ sessionId: z.uuid({ message: "Invalid session id" }) });
