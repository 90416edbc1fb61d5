import { sql } from "drizzle-orm";
import { canonicalEmail, emailSubject } from "./accounts";
import { AuditEvent } from "./audit";
import { toIso } from "./clock";
import { queryRows } from "./db/client";
import type { Deps, RequestMeta } from "./deps";

export type AccountStatusError = "NOT_FOUND";

export interface AccountStatusChange {
  userId: string;
  /** False when the account was already in the state asked for (nothing changed, nothing recorded). */
  changed: boolean;
  /** Sessions ended by this change (disabling ends them all). */
  revokedSessions: number;
}

/**
 * Disables an account (docs/security.md §19): in one statement it is marked disabled, every session of it
 * ends, and the change is recorded; then the sessions go on the revocation list, so its access
 * tokens are refused on their very next request. A disabled account cannot sign in (the answer is
 * that of a wrong password), refresh, or reset its way back: reset links are neither sent nor
 * honoured. Idempotent.
 */
export async function disableAccount(
  deps: Deps,
  meta: RequestMeta,
  input: { email: string; reason?: string },
): Promise<{ ok: true; value: AccountStatusChange } | { ok: false; code: AccountStatusError }> {
  const now = toIso(deps.clock.now());
  const canonical = canonicalEmail(input.email);
  const details = JSON.stringify({ reason: input.reason ?? null });
  const rows = await queryRows<{ id: string; changed: boolean; revoked: string[] | null }>(
    deps.db,
    sql`WITH target AS (
      SELECT id, disabled_at IS NULL AS enabled FROM users WHERE email_canonical = ${canonical}::text FOR UPDATE
    ), disabled AS (
      UPDATE users AS u SET disabled_at = ${now}::timestamptz, updated_at = ${now}::timestamptz
        FROM target WHERE u.id = target.id AND target.enabled
      RETURNING u.id
    ), revoked AS (
      UPDATE sessions AS s SET revoked_at = ${now}::timestamptz, revoked_reason = 'account_disabled'
        FROM target WHERE s.user_id = target.id AND s.revoked_at IS NULL
      RETURNING s.id
    ), audit AS (
      INSERT INTO audit_events (id, type, user_id, subject, ip, user_agent, request_id, created_at, details)
      SELECT gen_random_uuid(), ${AuditEvent.disabled}::text, id, ${emailSubject(deps, canonical)}::text, ${meta.ip}::text,
        ${meta.userAgent}::text, ${meta.requestId}::text, ${now}::timestamptz, ${details}::jsonb FROM disabled
    )
    SELECT target.id, EXISTS (SELECT 1 FROM disabled) AS changed, (SELECT array_agg(id::text) FROM revoked) AS revoked FROM target`,
  );
  const row = rows[0];
  if (!row) return { ok: false, code: "NOT_FOUND" };
  // A sign-in that held the account while this statement waited committed a session this
  // statement's snapshot could not see; no new one can start now. A second pass ends it.
  const late = await queryRows<{ id: string }>(
    deps.db,
    sql`UPDATE sessions SET revoked_at = ${now}::timestamptz, revoked_reason = 'account_disabled'
         WHERE user_id = ${row.id}::uuid AND revoked_at IS NULL RETURNING id`,
  );
  const revoked = [...(row.revoked ?? []), ...late.map((r) => r.id)];
  await deps.revocations.publish(revoked);
  return { ok: true, value: { userId: row.id, changed: row.changed, revokedSessions: revoked.length } };
}

/** Enables a disabled account again: it can sign in and reset its password. Sessions stay ended. Idempotent. */
export async function enableAccount(
  deps: Deps,
  meta: RequestMeta,
  input: { email: string },
): Promise<{ ok: true; value: AccountStatusChange } | { ok: false; code: AccountStatusError }> {
  const now = toIso(deps.clock.now());
  const canonical = canonicalEmail(input.email);
  const rows = await queryRows<{ id: string; changed: boolean }>(
    deps.db,
    sql`WITH target AS (
      SELECT id, disabled_at IS NOT NULL AS disabled FROM users WHERE email_canonical = ${canonical}::text FOR UPDATE
    ), enabled AS (
      UPDATE users AS u SET disabled_at = NULL, updated_at = ${now}::timestamptz
        FROM target WHERE u.id = target.id AND target.disabled
      RETURNING u.id
    ), audit AS (
      INSERT INTO audit_events (id, type, user_id, subject, ip, user_agent, request_id, created_at)
      SELECT gen_random_uuid(), ${AuditEvent.enabled}::text, id, ${emailSubject(deps, canonical)}::text, ${meta.ip}::text,
        ${meta.userAgent}::text, ${meta.requestId}::text, ${now}::timestamptz FROM enabled
    )
    SELECT target.id, EXISTS (SELECT 1 FROM enabled) AS changed FROM target`,
  );
  const row = rows[0];
  if (!row) return { ok: false, code: "NOT_FOUND" };
  return { ok: true, value: { userId: row.id, changed: row.changed, revokedSessions: 0 } };
}
