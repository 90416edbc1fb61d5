import {
  changePassword,
  confirmEmailChange,
  deleteAccount,
  passwordMessage,
  requestEmailChange,
  requestPasswordReset,
  resetPassword,
  sendVerificationMail,
  verifyEmail,
} from "@authlith/core";
import { clearCookie } from "../transport";
import { authedProcedure, publicError, publicProcedure, router } from "../trpc";
import { passwordCheckError, tooManyRequests } from "./errors";
import {
  changeEmailInput,
  changePasswordInput,
  confirmEmailChangeInput,
  deleteAccountInput,
  requestPasswordResetInput,
  resetPasswordInput,
  verifyEmailInput,
} from "./schemas";

const invalidToken = () => publicError("BAD_REQUEST", "This link is invalid or has expired", { reason: "INVALID_TOKEN" });

export const accountRouter = router({
  /**
   * Mails a fresh verification link to the signed-in user's address (at most
   * `verificationMailPerAccount` per hour). `alreadyVerified`: nothing to do, nothing sent.
   */
  requestVerification: authedProcedure.mutation(async ({ ctx }) => {
    const sent = await sendVerificationMail(ctx.deps, ctx.meta, ctx.auth.userId);
    if (sent.outcome === "rate_limited") throw tooManyRequests(sent.retryAfterSeconds);
    return { success: true as const, alreadyVerified: sent.outcome === "already_verified" };
  }),

  /**
   * Confirms the address with the mailed token (its link's #token=) and the account's password.
   * Public: the link may be opened in another browser. It does not sign in; a signed-in client
   * sees `email_verified` at its next refresh.
   */
  verifyEmail: publicProcedure.input(verifyEmailInput).mutation(async ({ ctx, input }) => {
    const result = await verifyEmail(ctx.deps, ctx.meta, input);
    if (result.ok) return { success: true as const, email: result.value.email };
    if (result.code === "RATE_LIMITED") throw tooManyRequests(result.retryAfterSeconds);
    if (result.code === "INVALID_PASSWORD") throw passwordCheckError("INVALID_PASSWORD", undefined);
    throw invalidToken();
  }),

  /** Sets a new password, proven by the current one; every other session ends; the owner is told. */
  changePassword: authedProcedure.input(changePasswordInput).mutation(async ({ ctx, input }) => {
    const result = await changePassword(ctx.deps, ctx.meta, { userId: ctx.auth.userId, sessionId: ctx.auth.sessionId, ...input });
    if (result.ok) return { success: true as const, revokedSessions: result.value.revokedSessions };
    if (result.code === "WEAK_PASSWORD") {
      throw publicError("BAD_REQUEST", "Invalid input", {
        fieldErrors: { newPassword: [passwordMessage(result.weakReason!, ctx.deps.config.password.minLength)] },
      });
    }
    throw passwordCheckError(result.code, result.retryAfterSeconds);
  }),

  /**
   * Asks to move the account to a new address, proven by the password. Nothing changes until the
   * new address confirms; the answer is the same whether or not that address has an account.
   */
  changeEmail: authedProcedure.input(changeEmailInput).mutation(async ({ ctx, input }) => {
    const result = await requestEmailChange(ctx.deps, ctx.meta, { userId: ctx.auth.userId, ...input });
    if (result.ok) return { success: true as const };
    if (result.code === "SAME_EMAIL") throw publicError("BAD_REQUEST", "Invalid input", { fieldErrors: { newEmail: ["This is already your address"] } });
    throw passwordCheckError(result.code, result.retryAfterSeconds);
  }),

  /** Confirms an email change with the token mailed to the new address (its link's #token=). */
  confirmEmailChange: publicProcedure.input(confirmEmailChangeInput).mutation(async ({ ctx, input }) => {
    const result = await confirmEmailChange(ctx.deps, ctx.meta, input);
    if (result.ok) return { success: true as const, email: result.value.email };
    if (result.code === "EMAIL_TAKEN") throw publicError("CONFLICT", "This address has an account now", { reason: "EMAIL_TAKEN" });
    if (result.code === "RATE_LIMITED") throw tooManyRequests(result.retryAfterSeconds);
    throw invalidToken();
  }),

  /** Deletes the account, proven by its password: every session ends; the audit trail stays, pseudonymous. */
  delete: authedProcedure.input(deleteAccountInput).mutation(async ({ ctx, input }) => {
    const result = await deleteAccount(ctx.deps, ctx.meta, { userId: ctx.auth.userId, password: input.password });
    if (!result.ok) throw passwordCheckError(result.code, result.retryAfterSeconds);
    clearCookie(ctx);
    return { success: true as const };
  }),

  /**
   * Mails a reset link if the address has an account. The answer is the same either way, and so
   * is its cost (docs/security.md §7); only the rate limits can refuse, and they count unknown addresses too.
   */
  requestPasswordReset: publicProcedure.input(requestPasswordResetInput).mutation(async ({ ctx, input }) => {
    const result = await requestPasswordReset(ctx.deps, ctx.meta, input);
    if (!result.ok) throw tooManyRequests(result.retryAfterSeconds);
    return { success: true as const };
  }),

  /** Sets a new password with the mailed token. Ends every session; does not sign in. */
  resetPassword: publicProcedure.input(resetPasswordInput).mutation(async ({ ctx, input }) => {
    const result = await resetPassword(ctx.deps, ctx.meta, input);
    if (result.ok) return { success: true as const };
    switch (result.code) {
      case "RATE_LIMITED":
        throw tooManyRequests(result.retryAfterSeconds);
      case "INVALID_TOKEN":
        throw invalidToken();
      case "WEAK_PASSWORD":
        throw publicError("BAD_REQUEST", "Invalid input", {
          fieldErrors: { newPassword: [passwordMessage(result.weakReason!, ctx.deps.config.password.minLength)] },
        });
    }
  }),
});
