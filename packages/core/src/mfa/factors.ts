import { sql, type SQL } from "drizzle-orm";
import { AuditEvent, recordAuditEvent } from "../audit";
import { toIso } from "../clock";
import { queryRows, toNumber } from "../db/client";
import type { Deps, RequestMeta } from "../deps";
import { deliver } from "../mail/deliver";
import { mfaLockedMail } from "../mail/templates";
import { normalizeRecoveryCode, useRecoveryCodeSql } from "./recovery-codes";
import { matchTotpStep, readTotp, useTotpStepSql } from "./totp";
import { checkAssertion, counterRegressed, passkeyAmr, type AuthenticationResponseJSON, type StoredPasskey } from "./webauthn";

/** What proves the second factor: a TOTP code, a recovery code, or a passkey's answer. */
export type SecondFactorProof = { code: string } | { recoveryCode: string } | { passkey: AuthenticationResponseJSON };

export type FactorMethod = "totp" | "recovery_code" | "passkey";

export const methodOf = (proof: SecondFactorProof): FactorMethod =>
  "code" in proof ? "totp" : "recoveryCode" in proof ? "recovery_code" : "passkey";

/** Codes can be guessed, so they spend the account's budget; a passkey's signature cannot be. */
export const isGuessable = (proof: SecondFactorProof): boolean => !("passkey" in proof);

export type CheckedFactor =
  | {
      ok: true;
      method: FactorMethod;
      /** The RFC 8176 value it adds to the session's `amr`. */
      amr: string;
      /** The write that spends the proof (a CTE body returning `user_id`): it matches nothing if another request spent it first. */
      use: SQL;
    }
  | { ok: false; cloned?: { passkeyId: string } };

interface PasskeyRow {
  id: string;
  user_id: string;
  credential_id: Uint8Array;
  public_key: Uint8Array;
  counter: number | string;
  transports: string[];
}

/** A passkey by the credential id its answer names (base64url), of `userId` when given. */
export async function findPasskey(deps: Deps, credentialId: string, userId?: string) {
  const id = Buffer.from(credentialId, "base64url");
  if (id.length === 0 || id.length > 1023) return null;
  const [row] = await queryRows<PasskeyRow>(
    deps.db,
    sql`SELECT id, user_id, credential_id, public_key, counter, transports FROM passkeys
      WHERE credential_id = ${id}::bytea ${userId ? sql`AND user_id = ${userId}::uuid` : sql``}`,
  );
  if (!row) return null;
  const stored: StoredPasskey = { credentialId: row.credential_id, publicKey: row.public_key, counter: toNumber(row.counter), transports: row.transports };
  return { id: row.id, userId: row.user_id, stored };
}

/** Records the new counter, only if it grew (or both are 0: a synced passkey): a CTE body. */
export function usePasskeySql(deps: Deps, passkeyId: string, newCounter: number): SQL {
  return sql`UPDATE passkeys SET counter = ${newCounter}::bigint, last_used_at = ${toIso(deps.clock.now())}::timestamptz
    WHERE id = ${passkeyId}::uuid AND (counter < ${newCounter}::bigint OR (counter = 0 AND ${newCounter}::bigint = 0))
    RETURNING user_id`;
}

/**
 * Checks a second-factor proof for `userId`: the TOTP code against the decrypted secret, the
 * recovery code's shape, or the passkey's answer against `webauthnChallenge`. It writes nothing:
 * the caller runs `use` inside the statement that acts on it, so the proof is spent exactly once.
 */
export async function checkFactor(
  deps: Deps,
  userId: string,
  proof: SecondFactorProof,
  webauthnChallenge: string | null,
): Promise<CheckedFactor> {
  if ("code" in proof) {
    const factor = await readTotp(deps, userId);
    if (!factor?.confirmed) return { ok: false };
    const step = matchTotpStep(deps, factor.secret, proof.code);
    return step === null ? { ok: false } : { ok: true, method: "totp", amr: "otp", use: useTotpStepSql(deps, userId, factor, step) };
  }
  if ("recoveryCode" in proof) {
    const normalized = normalizeRecoveryCode(proof.recoveryCode);
    // A recovery code is a one-time password (RFC 8176 `otp`); the audit trail says which.
    return normalized ? { ok: true, method: "recovery_code", amr: "otp", use: useRecoveryCodeSql(deps, userId, normalized) } : { ok: false };
  }
  if (!webauthnChallenge) return { ok: false };
  const passkey = await findPasskey(deps, proof.passkey.rawId ?? proof.passkey.id, userId);
  if (!passkey) return { ok: false };
  const checked = await checkAssertion(deps, proof.passkey, webauthnChallenge, passkey.stored, false);
  if (!checked) return { ok: false };
  if (counterRegressed(passkey.stored.counter, checked.newCounter)) return { ok: false, cloned: { passkeyId: passkey.id } };
  return { ok: true, method: "passkey", amr: passkeyAmr(checked.deviceType), use: usePasskeySql(deps, passkey.id, checked.newCounter) };
}

/**
 * Spends one unit of the account's second-factor budget (`mfa_failures`), atomically in
 * Postgres (a CTE body returning `attempts`): no row when the window's budget is spent.
 */
export function spendMfaBudgetSql(deps: Deps, userId: SQL, from: SQL): SQL {
  const { limit, windowSeconds } = deps.config.rateLimits.mfaFailuresPerAccount;
  const now = deps.clock.now();
  const windowOver = sql`mfa_failures.window_started_at <= ${toIso(now - windowSeconds * 1000)}::timestamptz`;
  return sql`INSERT INTO mfa_failures (user_id, window_started_at, attempts)
    SELECT ${userId}, ${toIso(now)}::timestamptz, 1 ${from}
    ON CONFLICT (user_id) DO UPDATE SET
      window_started_at = CASE WHEN ${windowOver} THEN EXCLUDED.window_started_at ELSE mfa_failures.window_started_at END,
      attempts = CASE WHEN ${windowOver} THEN 1 ELSE mfa_failures.attempts + 1 END
    WHERE ${windowOver} OR mfa_failures.attempts < ${limit}::int
    RETURNING attempts`;
}

/** Seconds until the account's second-factor window ends (for a refused attempt's Retry-After). */
export function budgetRetryAfter(deps: Deps, windowStartedMs: number | string | null): number {
  const { windowSeconds } = deps.config.rateLimits.mfaFailuresPerAccount;
  const endsAt = (windowStartedMs === null ? deps.clock.now() : toNumber(windowStartedMs)) + windowSeconds * 1000;
  return Math.max(1, Math.ceil((endsAt - deps.clock.now()) / 1000));
}

/** The account's budget on its own (step-up proofs, which have no sign-in challenge). */
export async function spendMfaBudget(deps: Deps, userId: string): Promise<{ ok: true; attempts: number } | { ok: false; retryAfterSeconds: number }> {
  const [row] = await queryRows<{ attempts: number | null; window_started_ms: number | string | null }>(
    deps.db,
    sql`WITH spent AS (${spendMfaBudgetSql(deps, sql`${userId}::uuid`, sql``)})
      SELECT (SELECT attempts FROM spent) AS attempts,
        (SELECT (extract(epoch FROM window_started_at) * 1000)::float8 FROM mfa_failures WHERE user_id = ${userId}::uuid) AS window_started_ms`,
  );
  if (row?.attempts === null || row?.attempts === undefined) return { ok: false, retryAfterSeconds: budgetRetryAfter(deps, row?.window_started_ms ?? null) };
  return { ok: true, attempts: row.attempts };
}

/** Gives the budget back after a success. */
export const clearMfaBudgetSql = (userId: string, condition: SQL) =>
  sql`DELETE FROM mfa_failures WHERE user_id = ${userId}::uuid AND ${condition}`;

/**
 * Records a failed second-factor proof; when it used the budget's last unit, records the lock and
 * mails the owner (once per lock: only the attempt that reached the limit does).
 */
export async function recordFactorFailure(
  deps: Deps,
  meta: RequestMeta,
  user: { id: string; email: string },
  method: FactorMethod,
  budgetAttempts: number | null,
  cloned?: { passkeyId: string },
) {
  if (cloned) {
    await recordAuditEvent(deps, meta, AuditEvent.passkeyCloneDetected, { userId: user.id, details: { passkeyId: cloned.passkeyId } });
    deps.log.warn("passkey.clone_detected", { requestId: meta.requestId, userId: user.id, passkeyId: cloned.passkeyId });
  }
  await recordAuditEvent(deps, meta, AuditEvent.mfaFailed, { userId: user.id, details: { method } });
  const { limit, windowSeconds } = deps.config.rateLimits.mfaFailuresPerAccount;
  if (budgetAttempts === limit) {
    await recordAuditEvent(deps, meta, AuditEvent.mfaLocked, { userId: user.id });
    deps.log.warn("mfa.locked", { requestId: meta.requestId, userId: user.id, ip: meta.ip });
    await deliver(deps, meta.requestId, mfaLockedMail(deps.config.mail, user.email, Math.round(windowSeconds / 60)));
  }
}
