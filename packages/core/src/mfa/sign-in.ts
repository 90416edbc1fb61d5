import { sql, type SQL } from "drizzle-orm";
import { AuditEvent, recordAuditEvent } from "../audit";
import { toIso } from "../clock";
import { queryRows, toNumber } from "../db/client";
import type { Deps, RequestMeta } from "../deps";
import { issueDeviceToken } from "../device";
import { canonicalEmail, emailSubject } from "../email-address";
import { deliver } from "../mail/deliver";
import { recoveryCodeUsedMail } from "../mail/templates";
import { rateLimitIp, spendBudgets } from "../rate-limit";
import { fail, ok, type Result } from "../result";
import { completeSignIn, insertAuditSql, insertSessionSql, newSession, toPublicUser, type AuthSuccess, type PublicUser } from "../sessions";
import { CHALLENGE_ID_PATTERN, challengeHash, consumeChallenge, newChallenge, storeChallenge } from "./challenges";
import {
  budgetRetryAfter,
  checkFactor,
  clearMfaBudgetSql,
  findPasskey,
  isGuessable,
  methodOf,
  recordFactorFailure,
  spendMfaBudgetSql,
  usePasskeySql,
  type FactorMethod,
  type SecondFactorProof,
} from "./factors";
import {
  authenticationOptions,
  checkAssertion,
  counterRegressed,
  passkeyAmr,
  type AuthenticationResponseJSON,
  type PasskeyRequestOptions,
  type StoredPasskey,
} from "./webauthn";

/** A sign-in whose password checked out, waiting for its second factor (docs/security.md §40). */
export interface MfaRequired {
  mfaRequired: true;
  /** Finishes the sign-in with `verifyMfa`; single use, `challengeAttempts` tries, `challengeTtlSeconds` long. */
  challengeId: string;
  methods: FactorMethod[];
  expiresAt: string;
  /** For `navigator.credentials.get`, when the account has passkeys. */
  passkeyOptions?: PasskeyRequestOptions;
}

export type SignedIn = AuthSuccess & { deviceToken: string };

/** The factors an account signs in with, read beside its password hash (a CTE-free select list item). */
export const MFA_METHODS_SQL = sql`ARRAY_REMOVE(ARRAY[
    CASE WHEN EXISTS (SELECT 1 FROM totp_factors t WHERE t.user_id = users.id AND t.confirmed_at IS NOT NULL) THEN 'totp' END,
    CASE WHEN EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = users.id) THEN 'passkey' END,
    CASE WHEN EXISTS (SELECT 1 FROM recovery_codes r WHERE r.user_id = users.id AND r.used_at IS NULL) THEN 'recovery_code' END
  ], NULL) AS mfa_methods`;

/** A second factor is required when the account has an app or a passkey (recovery codes only back them up). */
export const requiresSecondFactor = (methods: readonly string[]): boolean => methods.includes("totp") || methods.includes("passkey");

/** The passkeys of an account, for a ceremony's allow or exclude list. */
export async function passkeysOf(deps: Deps, userId: string): Promise<StoredPasskey[]> {
  const rows = await queryRows<{ credential_id: Uint8Array; public_key: Uint8Array; counter: number | string; transports: string[] }>(
    deps.db,
    sql`SELECT credential_id, public_key, counter, transports FROM passkeys WHERE user_id = ${userId}::uuid ORDER BY created_at`,
  );
  return rows.map((row) => ({ credentialId: row.credential_id, publicKey: row.public_key, counter: toNumber(row.counter), transports: row.transports }));
}

/** What a password sign-in answers when a second factor is due (after its challenge row committed). */
export async function mfaRequiredAnswer(
  deps: Deps,
  userId: string,
  methods: readonly string[],
  challenge: { id: string; webauthnChallenge: string | null; expiresAtMs: number },
): Promise<MfaRequired> {
  const answer: MfaRequired = {
    mfaRequired: true,
    challengeId: challenge.id,
    methods: methods.filter((m): m is FactorMethod => m === "totp" || m === "passkey" || m === "recovery_code"),
    expiresAt: toIso(challenge.expiresAtMs),
  };
  if (challenge.webauthnChallenge && methods.includes("passkey")) {
    answer.passkeyOptions = await authenticationOptions(deps, challenge.webauthnChallenge, await passkeysOf(deps, userId), "preferred");
  }
  return answer;
}

interface SpentChallenge {
  user_id: string;
  attempts: number;
  amr: string[];
  device_id: string | null;
  webauthn_challenge: string | null;
  email: string;
  name: string | null;
  email_verified: boolean;
  created_ms: number | string;
  budget_attempts: number | null;
  window_started_ms: number | string | null;
}

export type VerifyMfaError = "INVALID_CHALLENGE" | "INVALID_CODE" | "RATE_LIMITED";

/**
 * Finishes a sign-in with its second factor. Each try first spends, in one statement, an attempt
 * of the challenge (at most `challengeAttempts`, then it is dead) and, for a code, a unit of the
 * account's budget across all challenges (`mfaFailuresPerAccount`). A proof that checks out is
 * then spent, the challenge consumed and the session written in one statement, so two requests
 * with one code (or one challenge) cannot both sign in. A success gives the account's budget back.
 */
export async function verifyMfa(
  deps: Deps,
  meta: RequestMeta,
  input: { challengeId: string; proof: SecondFactorProof },
): Promise<Result<SignedIn, VerifyMfaError> & { attemptsLeft?: number }> {
  if (!CHALLENGE_ID_PATTERN.test(input.challengeId)) return fail("INVALID_CHALLENGE");
  const idHash = challengeHash(input.challengeId);
  const now = deps.clock.now();
  const nowIso = toIso(now);
  const guessable = isGuessable(input.proof);
  const [spent] = await queryRows<SpentChallenge>(
    deps.db,
    sql`WITH ch AS (
      UPDATE mfa_challenges SET attempts = attempts + 1
       WHERE id_hash = ${idHash}::bytea AND purpose = 'login' AND consumed_at IS NULL
         AND expires_at > ${nowIso}::timestamptz AND attempts < ${deps.config.mfa.challengeAttempts}::int
      RETURNING user_id, attempts, amr, device_id, webauthn_challenge
    ), budget AS (
      ${spendMfaBudgetSql(deps, sql`ch.user_id`, sql`FROM ch WHERE ${guessable}::boolean`)}
    )
    SELECT ch.user_id, ch.attempts, ch.amr, ch.device_id, ch.webauthn_challenge, u.email, u.name,
      u.email_verified_at IS NOT NULL AS email_verified, (extract(epoch FROM u.created_at) * 1000)::float8 AS created_ms,
      (SELECT attempts FROM budget) AS budget_attempts,
      (SELECT (extract(epoch FROM f.window_started_at) * 1000)::float8 FROM mfa_failures f WHERE f.user_id = ch.user_id) AS window_started_ms
    FROM ch JOIN users u ON u.id = ch.user_id AND u.disabled_at IS NULL`,
  );
  if (!spent) return fail("INVALID_CHALLENGE");
  if (guessable && spent.budget_attempts === null) return fail("RATE_LIMITED", budgetRetryAfter(deps, spent.window_started_ms));

  const owner = { id: spent.user_id, email: spent.email };
  const method = methodOf(input.proof);
  // A wrong proof says how many tries the challenge has left (0: the sign-in starts again).
  const wrong = () => ({ ...fail("INVALID_CODE"), attemptsLeft: Math.max(0, deps.config.mfa.challengeAttempts - spent.attempts) });
  const checked = await checkFactor(deps, spent.user_id, input.proof, spent.webauthn_challenge);
  if (!checked.ok) {
    await recordFactorFailure(deps, meta, owner, method, spent.budget_attempts, checked.cloned);
    return wrong();
  }

  const user = toPublicUser({ ...spent, id: spent.user_id, emailVerified: spent.email_verified, createdAtMs: spent.created_ms });
  const amr = [...new Set([...spent.amr, checked.amr, "mfa"])];
  const finished = await finishSignIn(deps, meta, {
    user,
    amr,
    use: checked.use,
    consume: sql`UPDATE mfa_challenges SET consumed_at = ${nowIso}::timestamptz FROM factor
       WHERE mfa_challenges.id_hash = ${idHash}::bytea AND mfa_challenges.consumed_at IS NULL AND mfa_challenges.expires_at > ${nowIso}::timestamptz
      RETURNING mfa_challenges.user_id`,
    audit: AuditEvent.loginSucceeded,
    details: { mfa: method },
  });
  if (finished === "factor_spent") {
    // The code (or recovery code) was right once but has been used: a replay, counted as a failure.
    await recordFactorFailure(deps, meta, owner, method, spent.budget_attempts);
    return wrong();
  }
  if (finished === "challenge_spent") return fail("INVALID_CHALLENGE");
  if (method === "recovery_code") {
    await recordAuditEvent(deps, meta, AuditEvent.recoveryCodeUsed, { userId: user.id, sessionId: finished.auth.session.id, details: { remaining: finished.recoveryCodesLeft } });
    await deliver(deps, meta.requestId, recoveryCodeUsedMail(deps.config.mail, user.email, finished.recoveryCodesLeft));
  }
  const subject = emailSubject(deps, canonicalEmail(user.email));
  return ok({ ...finished.auth, deviceToken: issueDeviceToken(deps.hmacKey, subject, deps.clock.now(), spent.device_id ?? undefined) });
}

/**
 * The write that ends a multi-step sign-in: spends the proof (`use`, as CTE `factor`), consumes
 * the challenge (`consume`, as CTE `ch`, which must read `factor`), and writes the session with
 * its `amr` and audit event, for an enabled account only; the account's second-factor budget is
 * given back. The access token is signed first, so a session is never written without one.
 */
async function finishSignIn(
  deps: Deps,
  meta: RequestMeta,
  input: { user: PublicUser; amr: readonly string[]; use: SQL; consume: SQL; audit: typeof AuditEvent.loginSucceeded | typeof AuditEvent.passkeyLogin; details: Record<string, unknown> },
): Promise<{ auth: AuthSuccess; recoveryCodesLeft: number } | "factor_spent" | "challenge_spent"> {
  const session = newSession(deps, meta, input.user.id);
  const auth = await completeSignIn(deps, input.user, session.token, session.absoluteExpiresAt, undefined, input.amr);
  const [row] = await queryRows<{ factor: number | string; signed_in: number | string; codes_left: number | string }>(
    deps.db,
    sql`WITH factor AS (${input.use}), ch AS (${input.consume}), s AS (
      ${insertSessionSql(session.row, sql`FROM users JOIN ch ON ch.user_id = users.id WHERE users.id = ${input.user.id}::uuid AND users.disabled_at IS NULL FOR SHARE OF users`, input.amr)}
      RETURNING id
    ), cleared AS (
      ${clearMfaBudgetSql(input.user.id, sql`EXISTS (SELECT 1 FROM s)`)}
    ), audit AS (
      ${insertAuditSql(deps, meta, input.audit, { userId: sql`${input.user.id}::uuid`, sessionId: sql`s.id`, from: sql`FROM s` }, input.details)}
    )
    SELECT (SELECT count(*) FROM factor) AS factor, (SELECT count(*) FROM s) AS signed_in,
      (SELECT count(*) FROM recovery_codes WHERE user_id = ${input.user.id}::uuid AND used_at IS NULL) AS codes_left`,
  );
  if (toNumber(row?.factor ?? 0) === 0) return "factor_spent";
  if (toNumber(row?.signed_in ?? 0) === 0) return "challenge_spent";
  // The count was read from the statement's snapshot: a recovery code spent by it still counted.
  const codesLeft = toNumber(row!.codes_left) - (input.details.mfa === "recovery_code" ? 1 : 0);
  return { auth, recoveryCodesLeft: Math.max(0, codesLeft) };
}

/** Starts a usernameless passkey sign-in: a challenge for `navigator.credentials.get` (per-IP limited). */
export async function passkeyLoginOptions(
  deps: Deps,
  meta: RequestMeta,
): Promise<Result<{ challengeId: string; options: PasskeyRequestOptions }, "RATE_LIMITED">> {
  const budget = await spendBudgets(deps, [
    { key: `passkey-challenge:ip:${rateLimitIp(meta.ip)}`, limit: deps.config.rateLimits.passkeyChallengesPerIp, always: true },
  ]);
  if (budget.state === "limited") return fail("RATE_LIMITED", budget.retryAfterSeconds);
  const challenge = newChallenge(deps, "passkey_login", { webauthn: true });
  await storeChallenge(deps, challenge);
  return ok({ challengeId: challenge.id, options: await authenticationOptions(deps, challenge.webauthnChallenge!, null, "required") });
}

export type PasskeyLoginError = "INVALID_CHALLENGE" | "PASSKEY_REJECTED";

/**
 * Signs in with a passkey alone. The challenge is spent by the first answer, right or wrong. The
 * passkey must verify its user (PIN or biometrics): possession plus that check is two factors
 * (`amr` [hwk|swk, mfa]). A counter that did not grow is a cloned authenticator: refused and
 * recorded. A disabled account, or one whose address is unverified where that is required,
 * is refused like an unknown passkey.
 */
export async function passkeyLogin(
  deps: Deps,
  meta: RequestMeta,
  input: { challengeId: string; response: AuthenticationResponseJSON },
): Promise<Result<SignedIn, PasskeyLoginError>> {
  const challenge = await consumeChallenge(deps, input.challengeId, "passkey_login");
  if (!challenge?.webauthn_challenge) return fail("INVALID_CHALLENGE");
  const passkey = await findPasskey(deps, input.response.rawId ?? input.response.id);
  if (!passkey) return fail("PASSKEY_REJECTED");
  const [owner] = await queryRows<{ id: string; email: string; name: string | null; email_verified: boolean; created_ms: number | string }>(
    deps.db,
    sql`SELECT id, email, name, email_verified_at IS NOT NULL AS email_verified, (extract(epoch FROM created_at) * 1000)::float8 AS created_ms
      FROM users WHERE id = ${passkey.userId}::uuid AND disabled_at IS NULL`,
  );
  if (!owner || (deps.config.requireEmailVerification && !owner.email_verified)) return fail("PASSKEY_REJECTED");
  const checked = await checkAssertion(deps, input.response, challenge.webauthn_challenge, passkey.stored, true);
  if (!checked) {
    await recordAuditEvent(deps, meta, AuditEvent.mfaFailed, { userId: owner.id, details: { method: "passkey", passwordless: true } });
    return fail("PASSKEY_REJECTED");
  }
  if (counterRegressed(passkey.stored.counter, checked.newCounter)) {
    await recordFactorFailure(deps, meta, owner, "passkey", null, { passkeyId: passkey.id });
    return fail("PASSKEY_REJECTED");
  }
  const user = toPublicUser({ ...owner, emailVerified: owner.email_verified, createdAtMs: owner.created_ms });
  const finished = await finishSignIn(deps, meta, {
    user,
    amr: [passkeyAmr(checked.deviceType), "mfa"],
    use: usePasskeySql(deps, passkey.id, checked.newCounter),
    // The challenge was consumed above; `ch` only carries the owner on to the session insert.
    consume: sql`SELECT ${owner.id}::uuid AS user_id FROM factor`,
    audit: AuditEvent.passkeyLogin,
    details: { passkeyId: passkey.id },
  });
  if (finished === "factor_spent") {
    // Another sign-in with a higher counter won the race, or the counter went backwards meanwhile.
    await recordFactorFailure(deps, meta, owner, "passkey", null, { passkeyId: passkey.id });
    return fail("PASSKEY_REJECTED");
  }
  if (finished === "challenge_spent") return fail("PASSKEY_REJECTED");
  const subject = emailSubject(deps, canonicalEmail(user.email));
  return ok({ ...finished.auth, deviceToken: issueDeviceToken(deps.hmacKey, subject, deps.clock.now()) });
}
