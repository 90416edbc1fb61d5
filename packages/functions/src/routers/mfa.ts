import {
  confirmTotp,
  deletePasskey,
  disableTotp,
  enrollTotp,
  listPasskeys,
  mfaStatus,
  passkeyRegistrationOptions,
  regenerateRecoveryCodes,
  renamePasskey,
  stepUpOptions,
  verifyPasskeyRegistration,
  type StepUpError,
  type StepUpInput,
} from "@authlith/core";
import type { z } from "zod/mini";
import { authedProcedure, publicError, router, type Context } from "../trpc";
import { passwordCheckError, tooManyRequests } from "./errors";
import {
  confirmTotpInput,
  deletePasskeyInput,
  optionalStepUpInput,
  renamePasskeyInput,
  stepUpInput,
  verifyPasskeyRegistrationInput,
} from "./schemas";

type Authed = Context & { auth: { userId: string; sessionId: string; authTime: number } };

/** The step-up proofs of a request, for core (docs/security.md §42). */
function stepUp(ctx: Authed, input: z.output<typeof stepUpInput> | undefined): StepUpInput {
  const proof =
    input?.code !== undefined
      ? { code: input.code }
      : input?.recoveryCode !== undefined
        ? { recoveryCode: input.recoveryCode }
        : input?.passkey !== undefined
          ? { passkey: input.passkey }
          : undefined;
  return { userId: ctx.auth.userId, sessionId: ctx.auth.sessionId, authTime: ctx.auth.authTime, password: input?.password, proof };
}

/** The one mapping from core's refusals of factor changes to tRPC errors. */
function refusal(code: StepUpError | string, retryAfterSeconds?: number) {
  switch (code) {
    case "RATE_LIMITED":
    case "REAUTHENTICATION_REQUIRED":
    case "INVALID_PASSWORD":
      return code === "RATE_LIMITED" ? tooManyRequests(retryAfterSeconds) : passwordCheckError(code, retryAfterSeconds);
    case "SECOND_FACTOR_REQUIRED":
      return publicError("FORBIDDEN", "Confirm with a code from your authenticator app, a recovery code or a passkey", { reason: code });
    case "INVALID_CODE":
      return publicError("FORBIDDEN", "That code is not correct", { reason: "INVALID_MFA_CODE" });
    case "TOTP_ALREADY_ENABLED":
      return publicError("CONFLICT", "An authenticator app is already set up; remove it first", { reason: code });
    case "PASSKEY_EXISTS":
      return publicError("CONFLICT", "This passkey is already registered", { reason: code });
    case "PASSKEY_NOT_FOUND":
      return publicError("NOT_FOUND", "Passkey not found", { reason: code });
    case "INVALID_CHALLENGE":
      return publicError("BAD_REQUEST", "This request has expired; start again", { reason: "MFA_CHALLENGE_INVALID" });
    case "PASSKEY_REJECTED":
      return publicError("BAD_REQUEST", "The passkey's answer could not be verified", { reason: code });
    default:
      // TOTP_NOT_ENABLED, MFA_NOT_ENABLED, NO_PASSKEYS, NO_ENROLMENT: nothing to act on.
      return publicError("BAD_REQUEST", "Nothing to do: this sign-in method is not set up", { reason: code });
  }
}

export const mfaRouter = router({
  /** The account's second factors: app, passkeys, recovery codes left. */
  status: authedProcedure.query(({ ctx }) => mfaStatus(ctx.deps, ctx.auth.userId)),

  /**
   * A passkey challenge for proving a second factor to `totp.disable`, `passkey.delete`,
   * `recoveryCodes.regenerate` and the others' `passkey` proof.
   */
  stepUpOptions: authedProcedure.mutation(async ({ ctx }) => {
    const result = await stepUpOptions(ctx.deps, ctx.auth.userId);
    if (!result.ok) throw refusal(result.code);
    return result.value;
  }),

  totp: router({
    /** A new secret, its `otpauth://` URI and QR code (recent sign-in, or the password). */
    enroll: authedProcedure.input(optionalStepUpInput).mutation(async ({ ctx, input }) => {
      const result = await enrollTotp(ctx.deps, ctx.meta, stepUp(ctx, input));
      if (!result.ok) throw refusal(result.code, result.retryAfterSeconds);
      return result.value;
    }),
    /** Activates the app with its first code; the first factor also brings ten recovery codes, shown once. */
    confirm: authedProcedure.input(confirmTotpInput).mutation(async ({ ctx, input }) => {
      const result = await confirmTotp(ctx.deps, ctx.meta, { userId: ctx.auth.userId, sessionId: ctx.auth.sessionId, code: input.code });
      if (result.ok) return { success: true as const, recoveryCodes: result.value.recoveryCodes };
      if (result.code === "INVALID_CODE") throw publicError("BAD_REQUEST", "Invalid input", { fieldErrors: { code: ["That code is not correct"] } });
      throw refusal(result.code);
    }),
    /** Removes the app: a second factor, and the password if it is the last factor. */
    disable: authedProcedure.input(stepUpInput).mutation(async ({ ctx, input }) => {
      const result = await disableTotp(ctx.deps, ctx.meta, stepUp(ctx, input));
      if (!result.ok) throw refusal(result.code, result.retryAfterSeconds);
      return { success: true as const, mfaEnabled: result.value.mfaEnabled };
    }),
  }),

  recoveryCodes: router({
    /** Ten new codes, shown once; the old ones stop working. */
    regenerate: authedProcedure.input(optionalStepUpInput).mutation(async ({ ctx, input }) => {
      const result = await regenerateRecoveryCodes(ctx.deps, ctx.meta, stepUp(ctx, input));
      if (!result.ok) throw refusal(result.code, result.retryAfterSeconds);
      return result.value;
    }),
  }),

  passkey: router({
    /** Options for `navigator.credentials.create` (recent sign-in, or the password). */
    registrationOptions: authedProcedure.input(optionalStepUpInput).mutation(async ({ ctx, input }) => {
      const result = await passkeyRegistrationOptions(ctx.deps, ctx.meta, stepUp(ctx, input));
      if (!result.ok) throw refusal(result.code, result.retryAfterSeconds);
      return result.value;
    }),
    /** Stores the passkey the browser created; the first factor also brings ten recovery codes. */
    verifyRegistration: authedProcedure.input(verifyPasskeyRegistrationInput).mutation(async ({ ctx, input }) => {
      const result = await verifyPasskeyRegistration(ctx.deps, ctx.meta, { userId: ctx.auth.userId, sessionId: ctx.auth.sessionId, ...input });
      if (!result.ok) throw refusal(result.code);
      return result.value;
    }),
    list: authedProcedure.query(async ({ ctx }) => ({ passkeys: await listPasskeys(ctx.deps, ctx.auth.userId) })),
    rename: authedProcedure.input(renamePasskeyInput).mutation(async ({ ctx, input }) => {
      const result = await renamePasskey(ctx.deps, ctx.meta, { userId: ctx.auth.userId, sessionId: ctx.auth.sessionId, ...input });
      if (!result.ok) throw refusal(result.code);
      return result.value;
    }),
    /** Deletes a passkey: a second factor, and the password if it is the last factor. */
    delete: authedProcedure.input(deletePasskeyInput).mutation(async ({ ctx, input }) => {
      const result = await deletePasskey(ctx.deps, ctx.meta, { ...stepUp(ctx, input), passkeyId: input.passkeyId });
      if (!result.ok) throw refusal(result.code, result.retryAfterSeconds);
      return { success: true as const, mfaEnabled: result.value.mfaEnabled };
    }),
  }),
});
