import { passwordMessage, requestPasswordReset, resetPassword } from "@authlith/core";
import { publicError, publicProcedure, router } from "../trpc";
import { requestPasswordResetInput, resetPasswordInput } from "./schemas";

const tooManyRequests = (retryAfterSeconds: number | undefined) =>
  publicError("TOO_MANY_REQUESTS", "Too many attempts; try again later", { reason: "RATE_LIMITED", retryAfterSeconds: retryAfterSeconds ?? 60 });

export const accountRouter = router({
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
        throw publicError("BAD_REQUEST", "This link is invalid or has expired", { reason: "INVALID_TOKEN" });
      case "WEAK_PASSWORD":
        throw publicError("BAD_REQUEST", "Invalid input", {
          fieldErrors: { newPassword: [passwordMessage(result.weakReason!, ctx.deps.config.password.minLength)] },
        });
    }
  }),
});
