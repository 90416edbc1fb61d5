import { and, count, eq, gt, inArray, sql } from "drizzle-orm";
import { AuditEvent, recordAuditEvent } from "./audit";
import { queryRows, writeIf } from "./db/client";
import { auditEvents, users } from "./db/schema";
import type { Deps, RequestMeta } from "./deps";
import { describeError } from "./log";
import { normalizePassword, passwordMatches } from "./password-policy";
import { firstTime, rateLimitIp, resetCounters, spendBudgets } from "./rate-limit";
import { issueDeviceToken, verifyDeviceToken } from "./device";
import { fail, ok, type Result } from "./result";
import { completeSignIn, insertAuditSql, insertSessionSql, newSession, toPublicUser, type AuthSuccess, type PublicUser } from "./sessions";
import { canonicalEmail, emailSubject } from "./email-address";
import { sendVerificationMail } from "./email-verification";
import { newChallenge } from "./mfa/challenges";
import { MFA_METHODS_SQL, mfaRequiredAnswer, requiresSecondFactor, type MfaRequired, type SignedIn } from "./mfa/sign-in";

export { canonicalEmail, emailSubject };

/** The sign-in budgets of an account (`account:<subject>`) or a known device (`device:<id>`): its window and its ceiling. */
const lockoutKeys = (scope: string) => [`login:${scope}`, `login:consecutive:${scope}`] as const;

/** Ends a run of failures: the budgets and their "locked once" markers. */
const liftLockout = (deps: Deps, keys: readonly string[]) => resetCounters(deps, [...keys, ...keys.map((key) => `once:${key}`)]);

/** Lifts an account's lockout (a password reset is how a locked-out owner gets back in). */
export const liftAccountLockout = (deps: Deps, subject: string) => liftLockout(deps, lockoutKeys(`account:${subject}`));

export interface LoginInput {
  email: string;
  password: string;
  /** A known-device token from an earlier sign-in to this account, if the device has one. */
  deviceToken?: string | undefined;
}

export type LoginError = "INVALID_CREDENTIALS" | "RATE_LIMITED" | "EMAIL_NOT_VERIFIED";

/**
 * Signs a user in with email and password (docs/security.md §5–10). Unknown email, wrong password and
 * disabled account are the same failure, and an unknown email costs one argon2 verification
 * too. Limits: attempts per IP, and failures per account (keyed by the email, known or not, so a
 * lock reveals nothing either). When Redis is down, the per-IP limit fails open and the
 * per-account limit is counted in Postgres from the audit trail.
 */
export async function login(deps: Deps, meta: RequestMeta, input: LoginInput): Promise<Result<SignedIn | MfaRequired, LoginError>> {
  const canonical = canonicalEmail(input.email);
  const subject = emailSubject(deps, canonical);
  const { loginPerIp, loginFailuresPerAccount, loginConsecutiveFailures } = deps.config.rateLimits;
  // A device that signed in to this account before has its own failure budget, so attempts
  // from elsewhere cannot lock it out; everyone else shares the account's.
  const deviceId = input.deviceToken ? verifyDeviceToken(deps.hmacKey, input.deviceToken, subject, deps.clock.now()) : null;
  const accountKeys = lockoutKeys(`account:${subject}`);
  const [windowKey, ceilingKey] = deviceId ? lockoutKeys(`device:${deviceId}`) : accountKeys;

  // Budgets are spent before the password is checked, atomically, so concurrent or batched
  // guesses each need a unit: at most `limit` verifications per window, however they arrive. Only
  // attempts that reach the password check count against the account (a refused one does not), a
  // success gives the run back, a failure keeps its unit. The budget check (Redis) and the user
  // look-up (a read) go out together: one wait, not two.
  const [limits, user] = await Promise.all([
    spendBudgets(deps, [
      { key: `login:ip:${rateLimitIp(meta.ip)}`, limit: loginPerIp, always: true },
      { key: windowKey, limit: loginFailuresPerAccount },
      { key: ceilingKey, limit: loginConsecutiveFailures },
    ]),
    findUserByEmail(deps, canonical),
  ]);
  if (limits.state === "limited") {
    // Record the moment an account (or device) locks, once per lock, not every refused attempt.
    if (limits.refusedAt > 0 && (await firstTime(deps, `${limits.refusedAt === 1 ? windowKey : ceilingKey}`, limits.retryAfterSeconds))) {
      const details = { scope: deviceId ? "device" : "account", ceiling: limits.refusedAt === 2 };
      await recordAuditEvent(deps, meta, AuditEvent.loginRateLimited, { userId: user?.publicUser.id ?? null, subject, details });
      deps.log.warn("login.locked", { requestId: meta.requestId, subject, ip: meta.ip, userAgent: meta.userAgent, ...details });
    }
    return fail("RATE_LIMITED", limits.retryAfterSeconds);
  }
  if (limits.state === "unavailable") {
    const failures = await countRecentFailures(deps, subject, loginFailuresPerAccount.windowSeconds);
    if (failures >= loginFailuresPerAccount.limit) return fail("RATE_LIMITED", loginFailuresPerAccount.windowSeconds);
  }

  const password = normalizePassword(input.password);
  const resetKeys = [...new Set([...accountKeys, windowKey, ceilingKey])];
  if (!user) {
    // An unknown email takes the same steps as a known one: a token signed and a transaction
    // open during one argon2 verification (of a dummy hash), rolled back, then the failure's
    // audit event.
    const signed = completeSignIn(deps, UNKNOWN_USER, newSession(deps, meta, UNKNOWN_USER.id).token, 0);
    signed.catch(() => {}); // settled below, perhaps after a wait for a slot
    await deps.signInSlots.run(() =>
      settleAll([writeIf(deps.db, sql`SELECT 1`, Promise.all([deps.hasher.burn(password), signed]).then(() => false)), signed]),
    );
    await recordAuditEvent(deps, meta, AuditEvent.loginFailed, { userId: null, subject });
    return fail("INVALID_CREDENTIALS");
  }

  // argon2 runs on the thread pool. Meanwhile the access token is signed and the session row and
  // its audit event are written in a transaction that commits only if the password checks out,
  // the account is not disabled and the token was signed: after the hash, only COMMIT is left.
  // A success ends the run of failures (the account's and this device's) in Redis, beside that
  // COMMIT; in the Postgres fallback it is ended by the success's audit event.
  const session = newSession(deps, meta, user.publicUser.id);
  const signed = completeSignIn(deps, user.publicUser, session.token, session.absoluteExpiresAt);
  // An account with a second factor gets a challenge instead of a session (docs/security.md §40):
  // written the same way, so the password check costs the same.
  const challenge = requiresSecondFactor(user.mfaMethods)
    ? newChallenge(deps, "login", { userId: user.publicUser.id, amr: ["pwd"], deviceId, webauthn: user.mfaMethods.includes("passkey") })
    : null;
  const mayEnter = user.publicUser.emailVerified || !deps.config.requireEmailVerification;
  signed.catch(() => {}); // settled below (settleAll), perhaps after a wait for a slot
  // One of the container's few connections is held from BEGIN to COMMIT, across the hash: sign-ins
  // take turns for all but one of them (deps.signInSlots), so a flood of sign-ins leaves a
  // connection for refreshes and everything else (bench/faults: the login flood).
  const { committed, signedIn, proven } = await deps.signInSlots.run(async () => {
    // The password checks out for an enabled account: the run of failures ends, whether or not a
    // session follows (an unverified address gets none, docs/security.md §36).
    const proven = Promise.all([passwordMatches(deps.hasher, user.passwordHash, input.password), signed]).then(([valid]) => valid && !user.disabled);
    const accepted = proven.then((valid) => valid && mayEnter);
    // writeIf observes it only once its transaction is open; a failure (an unsignable token) can
    // come sooner, and is reported through `signed` below.
    accepted.catch(() => {});
    const reset = proven.then(
      (valid) => (valid && limits.state === "ok" ? liftLockout(deps, resetKeys) : undefined),
      () => undefined,
    );
    const enabledUser = sql`FROM users WHERE id = ${user.publicUser.id}::uuid AND disabled_at IS NULL FOR SHARE`;
    const [committed, signedIn] = await settleAll([
      writeIf(
        deps.db,
        // Only while the account is enabled, holding it so (FOR SHARE) until COMMIT: a disable that
        // runs meanwhile waits for this sign-in and then ends its session too.
        challenge
          ? sql`WITH c AS (${challenge.insert(enabledUser)} RETURNING user_id)
            ${insertAuditSql(deps, meta, AuditEvent.loginMfaRequired, { userId: sql`user_id`, sessionId: sql`NULL::uuid`, subject, from: sql`FROM c` })}`
          : sql`WITH s AS (
          ${insertSessionSql(session.row, enabledUser)}
          RETURNING id
        )
        ${insertAuditSql(deps, meta, AuditEvent.loginSucceeded, { userId: sql`${user.publicUser.id}::uuid`, sessionId: sql`s.id`, subject, from: sql`FROM s` })}`,
        accepted,
      ),
      signed,
      reset,
    ]);
    return { committed, signedIn, proven };
  });
  if (!committed) {
    if (!mayEnter && (await proven)) {
      // Only the owner of the password learns that the address is unverified; a fresh link goes to it.
      await recordAuditEvent(deps, meta, AuditEvent.loginUnverified, { userId: user.publicUser.id, subject });
      await sendVerificationMail(deps, meta, user.publicUser.id);
      return fail("EMAIL_NOT_VERIFIED");
    }
    await recordAuditEvent(deps, meta, AuditEvent.loginFailed, { userId: user.publicUser.id, subject });
    return fail("INVALID_CREDENTIALS");
  }
  if (deps.hasher.needsRehash(user.passwordHash)) await upgradeHash(deps, user.publicUser.id, password);
  if (challenge) return ok(await mfaRequiredAnswer(deps, user.publicUser.id, user.mfaMethods, challenge));
  return ok({ ...signedIn, deviceToken: issueDeviceToken(deps.hmacKey, subject, deps.clock.now(), deviceId ?? undefined) });
}

/** Stands in for a user on the unknown-email path, so that it signs a token like a known one. */
const UNKNOWN_USER: PublicUser = {
  id: "00000000-0000-7000-8000-000000000000",
  email: "unknown@invalid",
  emailVerified: false,
  name: null,
  createdAt: new Date(0).toISOString(),
};

/**
 * Waits for every promise to settle (so nothing is left running, or rejecting unobserved, after
 * the answer goes out), then resolves with their values or rejects with the first failure.
 */
async function settleAll<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((outcome) => outcome.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

interface UserRow {
  id: string;
  email: string;
  name: string | null;
  password_hash: string;
  email_verified: boolean;
  created_ms: number | string;
  disabled: boolean;
  mfa_methods: string[];
}

/** The sign-in view of a user, by canonical email: one prepared statement. */
async function findUserByEmail(deps: Deps, canonical: string) {
  const [row] = await queryRows<UserRow>(
    deps.db,
    sql`SELECT id, email, name, password_hash, email_verified_at IS NOT NULL AS email_verified,
        (extract(epoch FROM created_at) * 1000)::float8 AS created_ms, disabled_at IS NOT NULL AS disabled,
        ${MFA_METHODS_SQL}
      FROM users WHERE email_canonical = ${canonical}::text LIMIT 1`,
  );
  if (!row) return null;
  const publicUser = toPublicUser({ ...row, emailVerified: row.email_verified, createdAtMs: row.created_ms });
  return { publicUser, passwordHash: row.password_hash, disabled: row.disabled, mfaMethods: row.mfa_methods };
}

/** Re-hashes with the current parameters after a successful sign-in (docs/security.md §3). Best effort. */
async function upgradeHash(deps: Deps, userId: string, password: string) {
  try {
    const passwordHash = await deps.hasher.hash(password);
    await deps.db
      .update(users)
      .set({ passwordHash, updatedAt: new Date(deps.clock.now()) })
      .where(eq(users.id, userId));
  } catch (error) {
    deps.log.warn("password.rehash_failed", { userId, ...describeError(error) });
  }
}

/** Failures for this account within the window and since its last successful sign-in. */
async function countRecentFailures(deps: Deps, subject: string, windowSeconds: number): Promise<number> {
  const since = new Date(deps.clock.now() - windowSeconds * 1000);
  const lastSuccess = deps.db
    .select({ at: sql`max(${auditEvents.createdAt})` })
    .from(auditEvents)
    // A success ends a run of failures, and so does a password reset (it is how an owner gets back in).
    .where(and(eq(auditEvents.subject, subject), inArray(auditEvents.type, [AuditEvent.loginSucceeded, AuditEvent.passwordReset])));
  const [row] = await deps.db
    .select({ failures: count() })
    .from(auditEvents)
    .where(
      and(
        eq(auditEvents.subject, subject),
        eq(auditEvents.type, AuditEvent.loginFailed),
        gt(auditEvents.createdAt, since),
        sql`${auditEvents.createdAt} > coalesce((${lastSuccess}), '-infinity'::timestamptz)`,
      ),
    );
  return row?.failures ?? 0;
}
