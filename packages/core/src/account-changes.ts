import { and, eq, isNull, sql } from "drizzle-orm";
import { sessions } from "./db/sessions.sql";
import { canonicalEmail, emailSubject } from "./accounts";
import { AuditEvent } from "./audit";
import { toIso } from "./clock";
import { queryRows } from "./db/client";
import type { Deps, RequestMeta } from "./deps";
import { deliver } from "./mail/deliver";
import { passwordChangedMail } from "./mail/templates";
import { normalizePassword, passwordContextWords, passwordMatches, passwordProblem, type PasswordProblem } from "./password-policy";
import { resetCounters, spendBudgets } from "./rate-limit";
import { fail, ok, type Result } from "./result";

/**
 * Changes a signed-in user makes to their own account, each proven by the current password
 * (docs/security.md §4, §22): checks spend a per-account budget (the size of sign-in's), so a
 * stolen access token cannot be used to guess the password here either.
 */
export type PasswordCheckError = "INVALID_PASSWORD" | "RATE_LIMITED";

export interface Owner {
  id: string;
  email: string;
  name: string | null;
  subject: string;
}

/**
 * Checks a signed-in user's password (re-authentication). Like sign-in, each check spends one
 * unit of a per-account budget before the hash, atomically, so concurrent guesses cannot exceed
 * it; a correct password gives the run back.
 */
export async function checkPassword(deps: Deps, userId: string, password: string): Promise<Result<Owner, PasswordCheckError>> {
  const key = `password-check:${userId}`;
  const budget = await spendBudgets(deps, [{ key, limit: deps.config.rateLimits.loginFailuresPerAccount }]);
  if (budget.state === "limited") return fail("RATE_LIMITED", budget.retryAfterSeconds);
  const [row] = await queryRows<{ id: string; email: string; name: string | null; password_hash: string }>(
    deps.db,
    sql`SELECT id, email, name, password_hash FROM users WHERE id = ${userId}::uuid AND disabled_at IS NULL`,
  );
  if (!row) {
    await deps.hasher.burn(normalizePassword(password));
    return fail("INVALID_PASSWORD");
  }
  if (!(await passwordMatches(deps.hasher, row.password_hash, password))) return fail("INVALID_PASSWORD");
  if (budget.state === "ok") await resetCounters(deps, [key]);
  return ok({ id: row.id, email: row.email, name: row.name, subject: emailSubject(deps, canonicalEmail(row.email)) });
}

/**
 * A sensitive operation's proof (docs/security.md §22): a sign-in within `reauthSeconds` (the access
 * token's `auth_time`), or else the password.
 */
export async function confirmRecentAuthentication(
  deps: Deps,
  input: { userId: string; authTime: number; password?: string },
): Promise<Result<void, PasswordCheckError | "REAUTHENTICATION_REQUIRED">> {
  if (deps.clock.now() - input.authTime <= deps.config.reauthSeconds * 1000) return ok(undefined);
  if (input.password === undefined) return fail("REAUTHENTICATION_REQUIRED");
  const checked = await checkPassword(deps, input.userId, input.password);
  return checked.ok ? ok(undefined) : checked;
}

export type ChangePasswordError = PasswordCheckError | "WEAK_PASSWORD";

/** Sets a new password; every other session ends at once, this one stays; the owner is told by mail. */
export async function changePassword(
  deps: Deps,
  meta: RequestMeta,
  input: { userId: string; sessionId: string; currentPassword: string; newPassword: string },
): Promise<Result<{ revokedSessions: number }, ChangePasswordError> & { weakReason?: PasswordProblem }> {
  const checked = await checkPassword(deps, input.userId, input.currentPassword);
  if (!checked.ok) return checked;
  const owner = checked.value;
  const weakReason = passwordProblem(input.newPassword, deps.config.password, passwordContextWords(owner));
  if (weakReason) return { ...fail("WEAK_PASSWORD"), weakReason };
  const passwordHash = await deps.hasher.hash(normalizePassword(input.newPassword));
  const now = toIso(deps.clock.now());
  const rows = await queryRows<{ revoked: string[] | null }>(
    deps.db,
    sql`WITH changed AS (
      UPDATE users SET password_hash = ${passwordHash}::text, updated_at = ${now}::timestamptz
       WHERE id = ${owner.id}::uuid AND disabled_at IS NULL
      RETURNING id
    ), revoked AS (
      UPDATE sessions AS s SET revoked_at = ${now}::timestamptz, revoked_reason = 'password_changed'
        FROM changed WHERE s.user_id = changed.id AND s.revoked_at IS NULL AND s.id <> ${input.sessionId}::uuid
      RETURNING s.id
    ), audit AS (
      INSERT INTO audit_events (id, type, user_id, session_id, subject, ip, user_agent, request_id, created_at, details)
      SELECT gen_random_uuid(), ${AuditEvent.passwordChanged}::text, changed.id, ${input.sessionId}::uuid, ${owner.subject}::text,
        ${meta.ip}::text, ${meta.userAgent}::text, ${meta.requestId}::text, ${now}::timestamptz,
        jsonb_build_object('revokedSessions', (SELECT count(*) FROM revoked)) FROM changed
    )
    SELECT (SELECT array_agg(id::text) FROM revoked) AS revoked FROM changed`,
  );
  if (rows.length === 0) return fail("INVALID_PASSWORD");
  const revoked = rows[0]!.revoked ?? [];
  await deps.revocations.publish(revoked);
  await deliver(deps, meta.requestId, passwordChangedMail(deps.config.mail, owner.email, "change"));
  return ok({ revokedSessions: revoked.length });
}

/**
 * Deletes the account: every session ends at once (the revocation list learns of them before the
 * rows go), the user row goes with its sessions and mailed tokens, and the audit trail stays,
 * under the pseudonymous subject (an HMAC of the email) instead of the user id.
 */
export async function deleteAccount(
  deps: Deps,
  meta: RequestMeta,
  input: { userId: string; password: string },
): Promise<Result<{ revokedSessions: number }, PasswordCheckError>> {
  const checked = await checkPassword(deps, input.userId, input.password);
  if (!checked.ok) return checked;
  const owner = checked.value;
  const now = toIso(deps.clock.now());
  const ended = await deps.db.transaction(async (tx) => {
    const active = await tx
      .select({ id: sessions.id })
      .from(sessions)
      .where(and(eq(sessions.userId, owner.id), isNull(sessions.revokedAt)))
      .for("update");
    // Refused from now on, before the rows go: never a moment where a token outlives its session unnoticed.
    await deps.revocations.publish(active.map((session) => session.id));
    await tx.execute(sql`UPDATE audit_events SET subject = ${owner.subject}::text WHERE user_id = ${owner.id}::uuid AND subject IS NULL`);
    await tx.execute(sql`DELETE FROM users WHERE id = ${owner.id}::uuid`);
    await tx.execute(sql`INSERT INTO audit_events (id, type, user_id, subject, ip, user_agent, request_id, created_at, details)
      VALUES (gen_random_uuid(), ${AuditEvent.deleted}::text, NULL, ${owner.subject}::text, ${meta.ip}::text, ${meta.userAgent}::text,
        ${meta.requestId}::text, ${now}::timestamptz, ${JSON.stringify({ revokedSessions: active.length })}::jsonb)`);
    return active.map((session) => session.id);
  });
  return ok({ revokedSessions: ended.length });
}
