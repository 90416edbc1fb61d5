import { sql } from "drizzle-orm";
import { isWellFormedAccountToken, liveTokenOwner, issueAccountTokenCtes, newAccountToken, redeemAccountTokenCte, redeemLimit } from "./account-tokens";
import { passwordMatches } from "./password-policy";
import { AuditEvent } from "./audit";
import { toIso } from "./clock";
import { queryRows } from "./db/client";
import type { Deps, RequestMeta } from "./deps";
import { deliver } from "./mail/deliver";
import { verificationMail } from "./mail/templates";
import { checkLimits } from "./rate-limit";
import { fail, ok, type Result } from "./result";

/**
 * Email verification (docs/security.md §36). A verification token is bound to its purpose and to
 * the address it was mailed to: after an email change it no longer confirms anything. Following
 * the link confirms the address; it does not sign in (a leaked or scanned link must not be a
 * session), and the access token's `email_verified` claim follows the account at the next refresh.
 */

export type SendVerificationResult = "sent" | "already_verified" | "rate_limited";

/**
 * Mails a fresh verification link (superseding older ones) to an enabled, unverified account,
 * within the per-account cap. Used when the user asks, and on a sign-in that was refused only
 * because the address is unverified.
 */
export async function sendVerificationMail(
  deps: Deps,
  meta: RequestMeta,
  userId: string,
): Promise<{ outcome: SendVerificationResult; retryAfterSeconds?: number }> {
  const [user] = await queryRows<{ id: string; email: string; verified: boolean }>(
    deps.db,
    sql`SELECT id, email, email_verified_at IS NOT NULL AS verified FROM users WHERE id = ${userId}::uuid AND disabled_at IS NULL`,
  );
  if (!user || user.verified) return { outcome: "already_verified" };
  const limits = await checkLimits(deps, [{ key: `verify-mail:${userId}`, limit: deps.config.rateLimits.verificationMailPerAccount, by: 1 }]);
  if (limits.state === "limited") return { outcome: "rate_limited", retryAfterSeconds: limits.retryAfterSeconds };
  const now = deps.clock.now();
  const issued = newAccountToken("email_verification", user.id, now, user.email);
  await queryRows(
    deps.db,
    sql`WITH ${issueAccountTokenCtes(issued.row)}, audit AS (
      INSERT INTO audit_events (id, type, user_id, ip, user_agent, request_id, created_at)
      SELECT gen_random_uuid(), ${AuditEvent.verificationRequested}::text, ${user.id}::uuid, ${meta.ip}::text,
        ${meta.userAgent}::text, ${meta.requestId}::text, ${toIso(now)}::timestamptz FROM issued
    )
    SELECT id FROM issued`,
  );
  await deliver(deps, meta.requestId, verificationMail(deps.config.mail, user.email, issued.token));
  return { outcome: "sent" };
}

export type VerifyEmailError = "INVALID_TOKEN" | "INVALID_PASSWORD" | "RATE_LIMITED";

/**
 * Confirms an address with the mailed token and the account's password: the link proves the
 * inbox, the password proves the account is the inbox owner's. Without it, someone who signed up
 * first with a victim's address could wait for the victim to click a link and own a confirmed
 * account (docs/security.md §36). A wrong password leaves the token unspent. One statement then
 * redeems the token and marks the account verified, only while the account still has the address
 * the token was sent to and is enabled, so of two concurrent redemptions exactly one succeeds.
 */
export async function verifyEmail(
  deps: Deps,
  meta: RequestMeta,
  input: { token: string; password: string },
): Promise<Result<{ email: string }, VerifyEmailError>> {
  const limits = await checkLimits(deps, [redeemLimit(deps, meta)]);
  if (limits.state === "limited") return fail("RATE_LIMITED", limits.retryAfterSeconds);
  if (!isWellFormedAccountToken(input.token)) return fail("INVALID_TOKEN");
  const owner = await liveTokenOwner<{ password_hash: string }>(
    deps.db,
    "email_verification",
    input.token,
    deps.clock.now(),
    sql`u.password_hash`,
  );
  if (!owner) return fail("INVALID_TOKEN");
  if (!(await passwordMatches(deps.hasher, owner.password_hash, input.password))) return fail("INVALID_PASSWORD");
  const now = toIso(deps.clock.now());
  const [row] = await queryRows<{ id: string; email: string }>(
    deps.db,
    sql`WITH ${redeemAccountTokenCte("email_verification", input.token, deps.clock.now())}, verified AS (
      UPDATE users AS u SET email_verified_at = coalesce(u.email_verified_at, ${now}::timestamptz), updated_at = ${now}::timestamptz
        FROM redeemed WHERE u.id = redeemed.user_id AND u.email = redeemed.email AND u.disabled_at IS NULL
      RETURNING u.id, u.email
    ), audit AS (
      INSERT INTO audit_events (id, type, user_id, ip, user_agent, request_id, created_at)
      SELECT gen_random_uuid(), ${AuditEvent.emailVerified}::text, id, ${meta.ip}::text, ${meta.userAgent}::text,
        ${meta.requestId}::text, ${now}::timestamptz FROM verified
    )
    SELECT id, email FROM verified`,
  );
  if (!row) return fail("INVALID_TOKEN");
  return ok({ email: row.email });
}
