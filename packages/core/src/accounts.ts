import { and, count, eq, gt, sql } from "drizzle-orm";
import { AuditEvent, recordAuditEvent } from "./audit";
import { toIso } from "./clock";
import { hmacSha256 } from "./crypto";
import { queryRows } from "./db/client";
import { auditEvents, users } from "./db/schema";
import type { Deps, RequestMeta } from "./deps";
import { uuidv7 } from "./ids";
import { describeError } from "./log";
import { checkPasswordPolicy, normalizePassword } from "./password";
import { checkLimits, countFailure, resetCounter } from "./rate-limit";
import { fail, ok, type Result } from "./result";
import { completeSignIn, insertAuditSql, insertSessionSql, newSession, type AuthSuccess, type PublicUser } from "./sessions";

/** The form of an email used for uniqueness and look-ups. */
export const canonicalEmail = (email: string): string => email.trim().normalize("NFC").toLowerCase();

/**
 * A pseudonymous, stable identifier for an email, for rate-limit keys and audit records of
 * sign-in attempts: the same for known and unknown addresses, and not reversible without the key.
 */
export const emailSubject = (deps: Deps, canonical: string): string =>
  hmacSha256(deps.hmacKey, "authlith/subject/email\0", canonical).toString("base64url").slice(0, 32);

export interface RegisterInput {
  email: string;
  password: string;
  name?: string | null | undefined;
}

export type RegisterError = "EMAIL_TAKEN" | "WEAK_PASSWORD" | "RATE_LIMITED";

/**
 * Creates a user and signs them in. User, session and audit event are written by one statement,
 * so there is never a user without its session or a token without its committed row.
 */
export async function register(
  deps: Deps,
  meta: RequestMeta,
  input: RegisterInput,
): Promise<Result<AuthSuccess, RegisterError> & { weakReason?: "TOO_SHORT" | "TOO_LONG" }> {
  const password = normalizePassword(input.password);
  const policy = checkPasswordPolicy(password, deps.config.password);
  if (!policy.ok) return { ...fail("WEAK_PASSWORD"), weakReason: policy.reason };

  const limits = await checkLimits(deps, [
    { key: `register:ip:${meta.ip}`, limit: deps.config.rateLimits.registerPerIp, by: 1 },
  ]);
  if (limits.state === "limited") return fail("RATE_LIMITED", limits.retryAfterSeconds);
  // Per-IP limits fail open when Redis is down (SECURITY 32).

  const now = deps.clock.now();
  const userId = uuidv7(now);
  const email = input.email.trim().normalize("NFC");
  const passwordHash = await deps.hasher.hash(password);
  const session = newSession(deps, meta, userId);
  const name = input.name?.trim() || null;
  const rows = await queryRows<{ id: string }>(
    deps.db,
    sql`WITH u AS (
      INSERT INTO users (id, email, email_canonical, password_hash, name, created_at, updated_at)
      VALUES (${userId}::uuid, ${email}::text, ${canonicalEmail(email)}::text, ${passwordHash}::text, ${name}::text,
        ${toIso(now)}::timestamptz, ${toIso(now)}::timestamptz)
      ON CONFLICT (email_canonical) DO NOTHING
      RETURNING id
    ), s AS (
      ${insertSessionSql(session.row, sql`FROM u`)}
      RETURNING id
    ), a AS (
      ${insertAuditSql(deps, meta, AuditEvent.registered, { userId: sql`u.id`, sessionId: sql`${session.row.id}::uuid`, from: sql`FROM u` })}
    )
    SELECT id FROM u`,
  );
  if (rows.length === 0) return fail("EMAIL_TAKEN");
  const user: PublicUser = { id: userId, email, emailVerified: false, name, createdAt: toIso(now) };
  return ok(await completeSignIn(deps, user, session.token, session.absoluteExpiresAt));
}

export interface LoginInput {
  email: string;
  password: string;
}

export type LoginError = "INVALID_CREDENTIALS" | "RATE_LIMITED";

/**
 * Signs a user in with email and password (SECURITY 5–10). Unknown email, wrong password and
 * disabled account are the same failure, and an unknown email costs one argon2 verification
 * too. Limits: attempts per IP, and failures per account (keyed by the email, known or not, so a
 * lock reveals nothing either). When Redis is down, the per-IP limit fails open and the
 * per-account limit is counted in Postgres from the audit trail.
 */
export async function login(deps: Deps, meta: RequestMeta, input: LoginInput): Promise<Result<AuthSuccess, LoginError>> {
  const canonical = canonicalEmail(input.email);
  const subject = emailSubject(deps, canonical);
  const { loginPerIp, loginFailuresPerAccount } = deps.config.rateLimits;
  const accountKey = `login:account:${subject}`;

  const limits = await checkLimits(deps, [
    { key: `login:ip:${meta.ip}`, limit: loginPerIp, by: 1 },
    { key: accountKey, limit: loginFailuresPerAccount, by: 0 },
  ]);
  if (limits.state === "limited") {
    return fail("RATE_LIMITED", limits.retryAfterSeconds);
  }
  if (limits.state === "unavailable") {
    const failures = await countRecentFailures(deps, subject, loginFailuresPerAccount.windowSeconds);
    if (failures >= loginFailuresPerAccount.limit) return fail("RATE_LIMITED", loginFailuresPerAccount.windowSeconds);
  }

  const [user] = await deps.db
    .select({
      id: users.id,
      email: users.email,
      name: users.name,
      passwordHash: users.passwordHash,
      emailVerifiedAt: users.emailVerifiedAt,
      createdAt: users.createdAt,
      disabledAt: users.disabledAt,
    })
    .from(users)
    .where(eq(users.emailCanonical, canonical))
    .limit(1);
  const password = normalizePassword(input.password);
  const valid = user ? await deps.hasher.verify(user.passwordHash, password) : (await deps.hasher.burn(password), false);

  if (!user || !valid || user.disabledAt) {
    await Promise.all([
      countFailure(deps, accountKey, loginFailuresPerAccount),
      recordAuditEvent(deps, meta, AuditEvent.loginFailed, { userId: user?.id ?? null, subject }),
    ]);
    return fail("INVALID_CREDENTIALS");
  }

  const session = newSession(deps, meta, user.id);
  await queryRows(
    deps.db,
    sql`WITH s AS (
      ${insertSessionSql(session.row)}
      RETURNING id
    )
    ${insertAuditSql(deps, meta, AuditEvent.loginSucceeded, { userId: sql`${user.id}::uuid`, sessionId: sql`s.id`, subject, from: sql`FROM s` })}`,
  );
  // A success ends the run of failures, in Redis and (by its audit event) in the Postgres fallback.
  if (limits.state === "ok" && limits.counts[1]! > 0) await resetCounter(deps, accountKey);
  if (deps.hasher.needsRehash(user.passwordHash)) await upgradeHash(deps, user.id, password);

  return ok(
    await completeSignIn(
      deps,
      {
        id: user.id,
        email: user.email,
        emailVerified: user.emailVerifiedAt !== null,
        name: user.name,
        createdAt: user.createdAt.toISOString(),
      },
      session.token,
      session.absoluteExpiresAt,
    ),
  );
}

/** Re-hashes with the current parameters after a successful sign-in (SECURITY 3). Best effort. */
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
    .where(and(eq(auditEvents.subject, subject), eq(auditEvents.type, AuditEvent.loginSucceeded)));
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
