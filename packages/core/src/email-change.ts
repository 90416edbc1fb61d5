import { sql } from "drizzle-orm";
import { checkPassword, type Owner, type PasswordCheckError } from "./account-changes";
import { canonicalEmail } from "./accounts";
import { accountTokenHash, isWellFormedAccountToken, issueAccountTokenCtes, newAccountToken, redeemAccountTokenCte, redeemLimit } from "./account-tokens";
import { AuditEvent } from "./audit";
import { toIso } from "./clock";
import { queryRows } from "./db/client";
import type { Deps, RequestMeta } from "./deps";
import { deliver, withMailAnswerFloor } from "./mail/deliver";
import { emailChangedMail, emailChangeMail, emailInUseMail } from "./mail/templates";
import { checkLimits } from "./rate-limit";
import { fail, ok, type Result } from "./result";

/**
 * An email change (docs/security.md §26), in two steps. Asking needs the password; the change
 * takes effect only when the new address confirms it with the mailed link (24 hours, single use,
 * a newer request supersedes), and the old address is then told. The answer to the request is the
 * same whether or not the new address already has an account: that address's owner gets a notice
 * instead of a link, and nobody else learns anything.
 */
export async function requestEmailChange(
  deps: Deps,
  meta: RequestMeta,
  input: { userId: string; password: string; newEmail: string },
): Promise<Result<void, PasswordCheckError | "SAME_EMAIL">> {
  const checked = await checkPassword(deps, input.userId, input.password);
  if (!checked.ok) return checked;
  // A notice to a taken address and a link to a free one end together.
  return withMailAnswerFloor(deps.config.mailAnswerFloorMs, () => mailEmailChange(deps, meta, checked.value, input.newEmail));
}

async function mailEmailChange(
  deps: Deps,
  meta: RequestMeta,
  owner: Owner,
  requested: string,
): Promise<Result<void, PasswordCheckError | "SAME_EMAIL">> {
  const newEmail = requested.trim().normalize("NFC");
  const canonical = canonicalEmail(newEmail);
  if (canonical === canonicalEmail(owner.email)) return fail("SAME_EMAIL");
  const now = deps.clock.now();
  const [taken] = await queryRows<{ id: string }>(deps.db, sql`SELECT id FROM users WHERE email_canonical = ${canonical}::text`);
  if (taken) {
    await deliver(deps, meta.requestId, emailInUseMail(deps.config.mail, newEmail));
    return ok(undefined);
  }
  const issued = newAccountToken("email_change", owner.id, now, newEmail);
  await queryRows(
    deps.db,
    sql`WITH ${issueAccountTokenCtes(issued.row)}, audit AS (
      INSERT INTO audit_events (id, type, user_id, subject, ip, user_agent, request_id, created_at)
      SELECT gen_random_uuid(), ${AuditEvent.emailChangeRequested}::text, ${owner.id}::uuid, ${owner.subject}::text,
        ${meta.ip}::text, ${meta.userAgent}::text, ${meta.requestId}::text, ${toIso(now)}::timestamptz FROM issued
    )
    SELECT id FROM issued`,
  );
  await deliver(deps, meta.requestId, emailChangeMail(deps.config.mail, newEmail, issued.token));
  return ok(undefined);
}

export type ConfirmEmailChangeError = "INVALID_TOKEN" | "EMAIL_TAKEN" | "RATE_LIMITED";

/** Completes an email change with the token mailed to the new address; the address counts as verified. */
export async function confirmEmailChange(
  deps: Deps,
  meta: RequestMeta,
  input: { token: string },
): Promise<Result<{ email: string }, ConfirmEmailChangeError>> {
  const limits = await checkLimits(deps, [redeemLimit(deps, meta)]);
  if (limits.state === "limited") return fail("RATE_LIMITED", limits.retryAfterSeconds);
  if (!isWellFormedAccountToken(input.token)) return fail("INVALID_TOKEN");
  const now = deps.clock.now();
  const [pending] = await queryRows<{ email: string }>(
    deps.db,
    sql`SELECT email FROM account_tokens WHERE token_hash = ${accountTokenHash("email_change", input.token)}::bytea
         AND purpose = 'email_change' AND used_at IS NULL AND expires_at > ${toIso(now)}::timestamptz`,
  );
  if (!pending?.email) return fail("INVALID_TOKEN");
  let rows: { id: string; email: string; old_email: string }[];
  try {
    rows = await queryRows(
      deps.db,
      sql`WITH ${redeemAccountTokenCte("email_change", input.token, now)}, previous AS (
        SELECT u.id, u.email FROM users u JOIN redeemed ON u.id = redeemed.user_id WHERE u.disabled_at IS NULL
      ), changed AS (
        UPDATE users AS u SET email = ${pending.email}::text, email_canonical = ${canonicalEmail(pending.email)}::text,
          email_verified_at = ${toIso(now)}::timestamptz, updated_at = ${toIso(now)}::timestamptz
          FROM redeemed, previous WHERE u.id = redeemed.user_id AND previous.id = u.id AND redeemed.email = ${pending.email}::text
        RETURNING u.id, u.email
      ), audit AS (
        INSERT INTO audit_events (id, type, user_id, ip, user_agent, request_id, created_at)
        SELECT gen_random_uuid(), ${AuditEvent.emailChanged}::text, id, ${meta.ip}::text, ${meta.userAgent}::text,
          ${meta.requestId}::text, ${toIso(now)}::timestamptz FROM changed
      )
      SELECT changed.id, changed.email, previous.email AS old_email FROM changed JOIN previous ON previous.id = changed.id`,
    );
  } catch (error) {
    // The address was taken by a sign-up between the request and this confirmation.
    if ((error as { code?: string }).code === "23505") return fail("EMAIL_TAKEN");
    throw error;
  }
  const row = rows[0];
  if (!row) return fail("INVALID_TOKEN");
  await deliver(deps, meta.requestId, emailChangedMail(deps.config.mail, row.old_email, row.email));
  return ok({ email: row.email });
}
