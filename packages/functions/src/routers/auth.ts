import {
  AuditEvent,
  findSessionByRefreshToken,
  login,
  passkeyLogin,
  passkeyLoginOptions,
  passwordMessage,
  verifyMfa,
  register,
  revokeSessions,
  rotateRefreshToken,
  type LoginError,
  type RefreshError,
  type RegisterError,
} from "@authlith/core";
import type { TRPCError } from "@trpc/server";
import { clearCookie, deliverTokens, presentedRefreshToken, requestedTransport } from "../transport";
import { authenticate, authedProcedure, publicError, publicProcedure, router } from "../trpc";
import { tooManyRequests } from "./errors";
import { loginInput, passkeyLoginInput, refreshInput, registerInput, verifyMfaInput } from "./schemas";

/** A second-factor challenge that is spent, expired or unknown: the sign-in starts again. */
const invalidChallenge = () => publicError("UNAUTHORIZED", "This sign-in has expired; sign in again", { reason: "MFA_CHALLENGE_INVALID" });

/** The one mapping from core failure codes to tRPC errors for the auth procedures. */
function toTRPCError(
  code: RegisterError | LoginError | RefreshError,
  retryAfterSeconds?: number,
): TRPCError {
  switch (code) {
    case "EMAIL_TAKEN":
      return publicError("CONFLICT", "An account with this email already exists", { reason: code });
    case "INVALID_CREDENTIALS":
      return publicError("UNAUTHORIZED", "Invalid email or password", { reason: code });
    case "RATE_LIMITED":
      return tooManyRequests(retryAfterSeconds);
    case "INVALID_REFRESH_TOKEN":
    case "REFRESH_TOKEN_REUSED":
      // One answer for both: a thief replaying an old token learns nothing from it.
      return publicError("UNAUTHORIZED", "Invalid or expired refresh token", { reason: "INVALID_REFRESH_TOKEN" });
    case "WEAK_PASSWORD":
      return publicError("BAD_REQUEST", "Invalid input", { fieldErrors: { password: ["Password is too weak"] } });
    case "EMAIL_NOT_VERIFIED":
      // Only after the password checked out: the owner is told, and a fresh link is on its way.
      return publicError("FORBIDDEN", "Confirm your email address first: we sent you a link", { reason: code });
  }
}

export const authRouter = router({
  /**
   * Creates an account. With email verification required (the default) the answer is
   * `{ status: "verification_required" }` whether or not the address already had an account, and
   * nothing is issued; with it off, the user is signed in at once (tokens, as from login).
   */
  register: publicProcedure.input(registerInput).mutation(async ({ ctx, input }) => {
    const result = await register(ctx.deps, ctx.meta, input);
    if (!result.ok) {
      if (result.code === "WEAK_PASSWORD" && result.weakReason) {
        const message = passwordMessage(result.weakReason, ctx.deps.config.password.minLength);
        throw publicError("BAD_REQUEST", "Invalid input", { fieldErrors: { password: [message] } });
      }
      throw toTRPCError(result.code, result.retryAfterSeconds);
    }
    if (result.value.status === "verification_required") return { status: "verification_required" as const };
    return deliverTokens(ctx, result.value.auth, requestedTransport(ctx));
  }),

  /**
   * Signs in with email and password. An account with a second factor gets no tokens and no
   * cookie yet: `{ mfaRequired: true, challengeId, methods, expiresAt, passkeyOptions? }`, which
   * `auth.verifyMfa` finishes.
   */
  login: publicProcedure.input(loginInput).mutation(async ({ ctx, input }) => {
    const deviceToken = input.deviceToken ?? ctx.cookies.get(ctx.http.cookie.deviceName);
    const result = await login(ctx.deps, ctx.meta, { ...input, deviceToken });
    if (!result.ok) throw toTRPCError(result.code, result.retryAfterSeconds);
    if ("mfaRequired" in result.value) return result.value;
    return deliverTokens(ctx, result.value, requestedTransport(ctx));
  }),

  /**
   * Finishes a sign-in with its second factor: a TOTP `code`, a `recoveryCode`, or a `passkey`
   * answer to the challenge's `passkeyOptions`. Tokens as from login.
   */
  verifyMfa: publicProcedure.input(verifyMfaInput).mutation(async ({ ctx, input }) => {
    const proof = input.code !== undefined ? { code: input.code } : input.recoveryCode !== undefined ? { recoveryCode: input.recoveryCode } : { passkey: input.passkey! };
    const result = await verifyMfa(ctx.deps, ctx.meta, { challengeId: input.challengeId, proof });
    if (result.ok) return deliverTokens(ctx, result.value, requestedTransport(ctx));
    if (result.code === "RATE_LIMITED") throw tooManyRequests(result.retryAfterSeconds);
    if (result.code === "INVALID_CHALLENGE") throw invalidChallenge();
    const attemptsLeft = result.attemptsLeft ?? 0;
    throw publicError("UNAUTHORIZED", attemptsLeft > 0 ? "That code is not correct" : "That code is not correct; sign in again", {
      reason: "INVALID_MFA_CODE",
      attemptsLeft,
    });
  }),

  /** Starts a sign-in with a passkey alone: options for `navigator.credentials.get` (no address needed). */
  passkeyOptions: publicProcedure.mutation(async ({ ctx }) => {
    const result = await passkeyLoginOptions(ctx.deps, ctx.meta);
    if (!result.ok) throw tooManyRequests(result.retryAfterSeconds);
    return result.value;
  }),

  /** Finishes a passkey sign-in with the browser's answer. Tokens as from login. */
  passkeyLogin: publicProcedure.input(passkeyLoginInput).mutation(async ({ ctx, input }) => {
    const result = await passkeyLogin(ctx.deps, ctx.meta, input);
    if (result.ok) return deliverTokens(ctx, result.value, requestedTransport(ctx));
    if (result.code === "INVALID_CHALLENGE") throw invalidChallenge();
    throw publicError("UNAUTHORIZED", "This passkey cannot sign in here", { reason: "PASSKEY_REJECTED" });
  }),

  /** Rotates the refresh token: from the cookie (browsers) or the input (token transport). */
  refresh: publicProcedure.input(refreshInput).mutation(async ({ ctx, input }) => {
    const presented = presentedRefreshToken(ctx, input?.refreshToken);
    if (!presented) throw publicError("UNAUTHORIZED", "No refresh token", { reason: "MISSING_REFRESH_TOKEN" });
    const result = await rotateRefreshToken(ctx.deps, ctx.meta, presented.token);
    if (!result.ok) {
      if (presented.transport === "cookie" && result.code !== "RATE_LIMITED") clearCookie(ctx);
      throw toTRPCError(result.code, result.retryAfterSeconds);
    }
    // A token that arrived in a cookie leaves in a cookie: script on the page never sees one.
    return deliverTokens(ctx, result.value, presented.transport);
  }),

  /**
   * Ends this session. Identified by the access token, or else by the refresh token (so a client
   * whose access token expired can still sign out). Always clears the cookie; succeeds even when
   * there was nothing to end.
   */
  logout: publicProcedure.input(refreshInput).mutation(async ({ ctx, input }) => {
    let target: { sessionId: string; userId: string } | null = null;
    const auth = await authenticate(ctx);
    if (auth.ok) {
      target = { sessionId: auth.claims.sessionId, userId: auth.claims.userId };
    } else {
      // A cookie sent without an allowed Origin is not used to end a session (CSRF), only cleared.
      const presented = input?.refreshToken
        ? presentedRefreshToken(ctx, input.refreshToken)
        : ctx.origin.allowed
          ? presentedRefreshToken(ctx, undefined)
          : null;
      if (presented) target = await findSessionByRefreshToken(ctx.deps, presented.token);
    }
    if (target) {
      await revokeSessions(ctx.deps, ctx.meta, {
        userId: target.userId,
        sessionIds: [target.sessionId],
        reason: "logout",
        audit: AuditEvent.loggedOut,
      });
    }
    clearCookie(ctx);
    return { success: true as const };
  }),

  /** Ends every session of the user, this one included. */
  logoutAll: authedProcedure.mutation(async ({ ctx }) => {
    const revoked = await revokeSessions(ctx.deps, ctx.meta, {
      userId: ctx.auth.userId,
      sessionIds: "all",
      reason: "logout_all",
      audit: AuditEvent.loggedOutAll,
    });
    clearCookie(ctx);
    return { success: true as const, revokedSessions: revoked.length };
  }),

  /** The signed-in user, from the access token alone (no database read). */
  me: authedProcedure.query(({ ctx }) => ({
    user: { id: ctx.auth.userId, email: ctx.auth.email, emailVerified: ctx.auth.emailVerified },
    session: { id: ctx.auth.sessionId, amr: ctx.auth.amr, authTime: new Date(ctx.auth.authTime).toISOString() },
    accessTokenExpiresAt: new Date(ctx.auth.expiresAt).toISOString(),
  })),
});
