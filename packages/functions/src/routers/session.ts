import { AuditEvent, confirmRecentAuthentication, listSessions, revokeSessions } from "@authlith/core";
import { clearCookie } from "../transport";
import { authedProcedure, publicError, router } from "../trpc";
import { passwordCheckError } from "./errors";
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
    const proof = await confirmRecentAuthentication(ctx.deps, { userId: ctx.auth.userId, authTime: ctx.auth.authTime, password: input?.password });
    if (!proof.ok) throw passwordCheckError(proof.code, proof.retryAfterSeconds);
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
