import { sql, type SQL } from "drizzle-orm";
import { accountTokenHash, ACCOUNT_TOKEN_TTL_SECONDS } from "./account-tokens";
import { AuditEvent } from "./audit";
import { toIso } from "./clock";
import { randomSecret, toBase64Url } from "./crypto";
import { queryRows } from "./db/client";
import type { Deps, RequestMeta } from "./deps";
import { issueDeviceToken } from "./device";
import { canonicalEmail, emailSubject, storedEmail } from "./email-address";
import { uuidv7 } from "./ids";
import { deliver, withMailAnswerFloor } from "./mail/deliver";
import { signUpAttemptMail, verificationMail } from "./mail/templates";
import { normalizePassword, passwordContextWords, passwordProblem, type PasswordProblem } from "./password-policy";
import { checkLimits, rateLimitIp } from "./rate-limit";
import { fail, ok, type Result } from "./result";
import { completeSignIn, insertAuditSql, insertSessionSql, newSession, type AuthSuccess, type PublicUser } from "./sessions";

export interface RegisterInput {
  email: string;
  password: string;
  name?: string | null | undefined;
}

export type RegisterError = "EMAIL_TAKEN" | "WEAK_PASSWORD" | "RATE_LIMITED";

/** Signed in at once (verification off), or nothing issued until the address is confirmed. */
export type RegisterOutcome = { status: "signed_in"; auth: AuthSuccess } | { status: "verification_required" };

/**
 * Creates an account (docs/security.md §7, §36). The password policy and the limits (per IP, and
 * per address whether or not it has an account) come first; then, with verification required,
 * a new address and a taken one are answered alike, or, with it off, the user is signed in at once.
 */
export async function register(
  deps: Deps,
  meta: RequestMeta,
  input: RegisterInput,
): Promise<Result<RegisterOutcome, RegisterError> & { weakReason?: PasswordProblem }> {
  const weakReason = passwordProblem(input.password, deps.config.password, passwordContextWords(input));
  if (weakReason) return { ...fail("WEAK_PASSWORD"), weakReason };

  const canonical = canonicalEmail(input.email);
  const subject = emailSubject(deps, canonical);
  const limits = await checkLimits(deps, [
    { key: `register:ip:${rateLimitIp(meta.ip)}`, limit: deps.config.rateLimits.registerPerIp, by: 1 },
    { key: `register:address:${subject}`, limit: deps.config.rateLimits.registerPerAddress, by: 1 },
  ]);
  if (limits.state === "limited") return fail("RATE_LIMITED", limits.retryAfterSeconds);
  // These limits fail open when Redis is down (docs/security.md §32).

  const account = {
    id: uuidv7(deps.clock.now()),
    email: storedEmail(input.email),
    canonical,
    subject,
    name: input.name?.trim() || null,
    passwordHash: await deps.hasher.hash(normalizePassword(input.password)),
  };
  if (deps.config.requireEmailVerification) {
    // Every path ends together: mailed or not (a disabled account, a lost race), fast mailer or slow.
    await withMailAnswerFloor(deps.config.mailAnswerFloorMs, () => registerUnverified(deps, meta, account));
    return ok({ status: "verification_required" });
  }
  const signedIn = await registerSignedIn(deps, meta, account);
  return signedIn ? ok({ status: "signed_in", auth: signedIn }) : fail("EMAIL_TAKEN");
}

interface NewAccount {
  id: string;
  email: string;
  canonical: string;
  /** The address's pseudonymous subject (rate-limit keys, audit events, device tokens). */
  subject: string;
  name: string | null;
  passwordHash: string;
}

const insertUserSql = (account: NewAccount, now: number) =>
  sql`INSERT INTO users (id, email, email_canonical, password_hash, name, created_at, updated_at)
      VALUES (${account.id}::uuid, ${account.email}::text, ${account.canonical}::text, ${account.passwordHash}::text,
        ${account.name}::text, ${toIso(now)}::timestamptz, ${toIso(now)}::timestamptz)
      ON CONFLICT (email_canonical) DO NOTHING
      RETURNING id`;

/**
 * Verification off: user, session and audit event are written by one statement, so there is
 * never a user without its session or a token without its committed row. Null: the address is taken.
 */
async function registerSignedIn(deps: Deps, meta: RequestMeta, account: NewAccount): Promise<AuthSuccess | null> {
  const now = deps.clock.now();
  const session = newSession(deps, meta, account.id);
  const rows = await queryRows<{ id: string }>(
    deps.db,
    sql`WITH u AS (
      ${insertUserSql(account, now)}
    ), s AS (
      ${insertSessionSql(session.row, sql`FROM u`)}
      RETURNING id
    ), a AS (
      ${insertAuditSql(deps, meta, AuditEvent.registered, { userId: sql`u.id`, sessionId: sql`${session.row.id}::uuid`, from: sql`FROM u` })}
    )
    SELECT id FROM u`,
  );
  if (rows.length === 0) return null;
  const user: PublicUser = { id: account.id, email: account.email, emailVerified: false, name: account.name, createdAt: toIso(now) };
  const signedIn = await completeSignIn(deps, user, session.token, session.absoluteExpiresAt);
  return { ...signedIn, deviceToken: issueDeviceToken(deps.hmacKey, account.subject, now) };
}

/**
 * Verification on: the same statement and the same mail work whether or not the address is taken,
 * so neither the answer nor its timing tells (the bench measures the difference). A new address
 * gets its account (unverified, no session) and a verification link. A taken one gets a notice
 * with a reset link instead: the owner who forgot the password can set one, and so can an owner
 * whose address someone registered first, which also confirms the address and ends that
 * someone's sessions (a reset ends them all). A disabled account is mailed nothing.
 */
async function registerUnverified(deps: Deps, meta: RequestMeta, account: NewAccount): Promise<void> {
  const now = deps.clock.now();
  const token = toBase64Url(randomSecret());
  const { subject } = account;
  const tokenRow = (purpose: "email_verification" | "password_reset", userId: SQL, email: SQL) =>
    sql`SELECT ${uuidv7(now)}::uuid, ${userId}, ${purpose}::text, ${email}, ${accountTokenHash(purpose, token)}::bytea,
        ${toIso(now)}::timestamptz, ${toIso(now + ACCOUNT_TOKEN_TTL_SECONDS[purpose] * 1000)}::timestamptz`;
  const audit = (type: string, from: string) =>
    sql`SELECT gen_random_uuid(), ${type}::text, id, ${subject}::text, ${meta.ip}::text, ${meta.userAgent}::text,
        ${meta.requestId}::text, ${toIso(now)}::timestamptz FROM ${sql.raw(from)}`;
  // `existing` reads the snapshot the statement started from: the account that was there before,
  // never the one this statement inserts.
  const [row] = await queryRows<{ id: string; email: string; created: boolean }>(
    deps.db,
    sql`WITH u AS (
      ${insertUserSql(account, now)}
    ), existing AS (
      SELECT id, email FROM users WHERE email_canonical = ${account.canonical}::text AND disabled_at IS NULL
    ), superseded AS (
      DELETE FROM account_tokens WHERE user_id IN (SELECT id FROM existing) AND purpose = 'password_reset' AND used_at IS NULL
    ), issued AS (
      INSERT INTO account_tokens (id, user_id, purpose, email, token_hash, created_at, expires_at)
      ${tokenRow("email_verification", sql`u.id`, sql`${account.email}::text`)} FROM u
      UNION ALL
      ${tokenRow("password_reset", sql`existing.id`, sql`NULL::text`)} FROM existing
      RETURNING id
    ), audit AS (
      INSERT INTO audit_events (id, type, user_id, subject, ip, user_agent, request_id, created_at)
      ${audit(AuditEvent.registered, "u")}
      UNION ALL
      ${audit(AuditEvent.registerDuplicate, "existing")}
    )
    SELECT id, ${account.email}::text AS email, true AS created FROM u
    UNION ALL
    SELECT id, email, false AS created FROM existing`,
  );
  // No row: a disabled account, or a sign-up for the same address that committed while this one ran.
  if (!row) return;
  const mail = row.created
    ? verificationMail(deps.config.mail, row.email, token)
    : signUpAttemptMail(deps.config.mail, row.email, token, ACCOUNT_TOKEN_TTL_SECONDS.password_reset / 60);
  await deliver(deps, meta.requestId, mail);
}
