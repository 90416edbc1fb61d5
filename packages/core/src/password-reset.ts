import { sql, type SQL } from "drizzle-orm";
import { canonicalEmail, emailSubject, liftAccountLockout } from "./accounts";
import {
  ACCOUNT_TOKEN_TTL_SECONDS,
  isWellFormedAccountToken,
  issueAccountTokenCtes,
  newAccountToken,
  redeemAccountTokenCte,
  liveTokenOwner,
  redeemLimit,
} from "./account-tokens";
import { AuditEvent } from "./audit";
import { toIso } from "./clock";
import { queryRows } from "./db/client";
import type { Deps, RequestMeta } from "./deps";
import { deliver, withMailAnswerFloor } from "./mail/deliver";
import { passwordChangedMail, passwordResetMail } from "./mail/templates";
import { normalizePassword, passwordContextWords, passwordProblem, type PasswordProblem } from "./password-policy";
import { checkLimits, rateLimitIp } from "./rate-limit";
import { fail, ok, type Result } from "./result";

export type ResetRequestError = "RATE_LIMITED";

/**
 * Starts a password reset (docs/security.md §7, 23, 25). The answer is the same whether or not the address
 * has an account, and so is the work: limits counted per IP and per address (known or not), one
 * look-up, a token made, one more statement, a mail rendered and handed over. Disabled accounts
 * get no token: disabling must not be undone by a reset.
 */
export async function requestPasswordReset(deps: Deps, meta: RequestMeta, input: { email: string }): Promise<Result<void, ResetRequestError>> {
  const canonical = canonicalEmail(input.email);
  const subject = emailSubject(deps, canonical);
  const { resetRequestPerAccount, resetRequestPerIp } = deps.config.rateLimits;
  const limits = await checkLimits(deps, [
    { key: `reset:ip:${rateLimitIp(meta.ip)}`, limit: resetRequestPerIp, by: 1 },
    { key: `reset:account:${subject}`, limit: resetRequestPerAccount, by: 1 },
  ]);
  if (limits.state === "limited") return fail("RATE_LIMITED", limits.retryAfterSeconds);
  // Mailing takes time (SES: tens of milliseconds) that an unknown address would not.
  await withMailAnswerFloor(deps.config.mailAnswerFloorMs, () => issueReset(deps, meta, input.email, canonical, subject));
  return ok(undefined);
}

/** The look-up, the token and the mail of a reset request, or the audit event alone for an unknown address. */
async function issueReset(deps: Deps, meta: RequestMeta, email: string, canonical: string, subject: string): Promise<void> {
  const now = deps.clock.now();
  const [user] = await queryRows<{ id: string; email: string }>(
    deps.db,
    sql`SELECT id, email FROM users WHERE email_canonical = ${canonical}::text AND disabled_at IS NULL LIMIT 1`,
  );
  // Both paths make a token and a mail and write one statement (its commit is most of the cost):
  // a real account's token and audit event, or for an unknown address its audit event alone.
  const issued = newAccountToken("password_reset", user?.id ?? "00000000-0000-7000-8000-000000000000", now);
  const mail = passwordResetMail(deps.config.mail, user?.email ?? email, issued.token, ACCOUNT_TOKEN_TTL_SECONDS.password_reset / 60);
  const audit = (from: SQL) => sql`INSERT INTO audit_events (id, type, user_id, subject, ip, user_agent, request_id, created_at)
      SELECT gen_random_uuid(), ${AuditEvent.passwordResetRequested}::text, ${user?.id ?? null}::uuid, ${subject}::text,
        ${meta.ip}::text, ${meta.userAgent}::text, ${meta.requestId}::text, ${toIso(now)}::timestamptz ${from}`;
  if (!user) {
    await queryRows(deps.db, sql`${audit(sql``)} RETURNING id`);
  } else {
    await queryRows(deps.db, sql`WITH ${issueAccountTokenCtes(issued.row)}, audit AS (${audit(sql`FROM issued`)}) SELECT id FROM issued`);
    await deliver(deps, meta.requestId, mail);
  }
}

export type ResetError = "INVALID_TOKEN" | "WEAK_PASSWORD" | "RATE_LIMITED";

/**
 * Completes a reset (docs/security.md §23–24): the token is redeemed, the password replaced and every
 * session ended in one statement, so of two concurrent redemptions exactly one takes effect. It
 * does not sign in, it clears the account's lockout (a reset is how a locked-out owner gets back
 * in), and the owner is told by mail. A disabled account's token no longer works.
 */
export async function resetPassword(
  deps: Deps,
  meta: RequestMeta,
  input: { token: string; newPassword: string },
): Promise<Result<void, ResetError> & { weakReason?: PasswordProblem }> {
  const limits = await checkLimits(deps, [redeemLimit(deps, meta)]);
  if (limits.state === "limited") return fail("RATE_LIMITED", limits.retryAfterSeconds);
  if (!isWellFormedAccountToken(input.token)) return fail("INVALID_TOKEN");

  const now = deps.clock.now();
  // Read first, so a weak new password is refused without spending the token.
  const owner = await liveTokenOwner<{ id: string; email: string; name: string | null }>(
    deps.db,
    "password_reset",
    input.token,
    now,
    sql`u.id, u.email, u.name`,
  );
  if (!owner) return fail("INVALID_TOKEN");
  const weakReason = passwordProblem(input.newPassword, deps.config.password, passwordContextWords(owner));
  if (weakReason) return { ...fail("WEAK_PASSWORD"), weakReason };

  const passwordHash = await deps.hasher.hash(normalizePassword(input.newPassword));
  const subject = emailSubject(deps, canonicalEmail(owner.email));
  const rows = await queryRows<{ user_id: string; revoked: string[] | null }>(
    deps.db,
    sql`WITH ${redeemAccountTokenCte("password_reset", input.token, now)}, changed AS (
      UPDATE users AS u SET password_hash = ${passwordHash}::text, updated_at = ${toIso(now)}::timestamptz,
        -- The link reached this inbox: the address is confirmed (docs/security.md §36).
        email_verified_at = coalesce(u.email_verified_at, ${toIso(now)}::timestamptz)
        FROM redeemed WHERE u.id = redeemed.user_id AND u.disabled_at IS NULL
      RETURNING u.id
    ), revoked AS (
      UPDATE sessions AS s SET revoked_at = ${toIso(now)}::timestamptz, revoked_reason = 'password_reset'
        FROM changed WHERE s.user_id = changed.id AND s.revoked_at IS NULL
      RETURNING s.id
    ), audit AS (
      INSERT INTO audit_events (id, type, user_id, subject, ip, user_agent, request_id, created_at, details)
      SELECT gen_random_uuid(), ${AuditEvent.passwordReset}::text, changed.id, ${subject}::text, ${meta.ip}::text,
        ${meta.userAgent}::text, ${meta.requestId}::text, ${toIso(now)}::timestamptz,
        jsonb_build_object('revokedSessions', (SELECT count(*) FROM revoked))
        FROM changed
    )
    SELECT changed.id AS user_id, (SELECT array_agg(id::text) FROM revoked) AS revoked FROM changed`,
  );
  if (rows.length === 0) return fail("INVALID_TOKEN");
  await deps.revocations.publish(rows[0]!.revoked ?? []);
  // The lockout ends: the account's failure counters (Redis); in the Postgres fallback the reset's
  // audit event ends the run of failures, as a successful sign-in does.
  await liftAccountLockout(deps, subject).catch(() => {});
  await deliver(deps, meta.requestId, passwordChangedMail(deps.config.mail, owner.email, "reset"));
  return ok(undefined);
}
