import { AuditEvent, checkPassword, listSessions, revokeSessions } from "@authlith/core";
import { clearCookie } from "../transport";
import { authedProcedure, publicError, router } from "../trpc";
import { reauthInput, sessionIdInput } from "./schemas";

export const sessionRouter = router({
  /** The user's active sessions: device, IP, created, last used, and which one is this. */
  list: authedProcedure.query(async ({ ctx }) => ({
    sessions: await listSessions(ctx.deps, ctx.auth.userId, ctx.auth.sessionId),
  })),

  /**
   * Ends every session of the user except this one ("sign out everywhere else"). Sensitive
   * (docs/security.md §22): it needs a sign-in within AUTHLITH_REAUTH_SECONDS, or the password.
   */
  revokeOthers: authedProcedure.input(reauthInput).mutation(async ({ ctx, input }) => {
    const recent = ctx.deps.clock.now() - ctx.auth.authTime <= ctx.deps.config.reauthSeconds * 1000;
    if (!recent) {
      if (input?.password === undefined) {
        throw publicError("FORBIDDEN", "Sign in again, or confirm with your password", { reason: "REAUTHENTICATION_REQUIRED" });
      }
      const checked = await checkPassword(ctx.deps, ctx.auth.userId, input.password);
      if (!checked.ok) {
        throw checked.code === "RATE_LIMITED"
          ? publicError("TOO_MANY_REQUESTS", "Too many attempts; try again later", { reason: "RATE_LIMITED", retryAfterSeconds: checked.retryAfterSeconds ?? 60 })
          : publicError("FORBIDDEN", "The password is not correct", { reason: "INVALID_PASSWORD" });
      }
    }
    const revoked = await revokeSessions(ctx.deps, ctx.meta, {
      userId: ctx.auth.userId,
      sessionIds: "all",
      keep: ctx.auth.sessionId,
      reason: "revoked_by_user",
      audit: AuditEvent.revoked,
    });
    return { success: true as const, revokedSessions: revoked.length };
  }),

  /** Ends one of the user's sessions; its access tokens stop working on their next request. */
  revoke: authedProcedure.input(sessionIdInput).mutation(async ({ ctx, input }) => {
    const revoked = await revokeSessions(ctx.deps, ctx.meta, {
      userId: ctx.auth.userId,
      sessionIds: [input.sessionId],
      reason: "revoked_by_user",
      audit: AuditEvent.revoked,
    });
    // Someone else's session and an unknown one look the same.
    if (revoked.length === 0) throw publicError("NOT_FOUND", "Session not found", { reason: "SESSION_NOT_FOUND" });
    if (input.sessionId === ctx.auth.sessionId) clearCookie(ctx);
    return { success: true as const };
  }),
});
