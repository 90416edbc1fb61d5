import type { Deps, RequestMeta } from "./deps";
import { auditEvents } from "./db/schema";
import { uuidv7 } from "./ids";

/** Audit event types: stable strings, stored as they are. */
export const AuditEvent = {
  registered: "user.registered",
  loginSucceeded: "login.succeeded",
  loginFailed: "login.failed",
  loginRateLimited: "login.rate_limited",
  refreshed: "session.refreshed",
  reuseDetected: "session.reuse_detected",
  loggedOut: "session.logged_out",
  loggedOutAll: "session.logged_out_all",
  revoked: "session.revoked",
  passwordResetRequested: "password.reset_requested",
  passwordReset: "password.reset",
  disabled: "user.disabled",
  deleted: "user.deleted",
  passwordChanged: "password.changed",
  emailChangeRequested: "email.change_requested",
  emailChanged: "email.changed",
  enabled: "user.enabled",
  /** A sign-up with an address that already has an account (its owner is mailed). */
  registerDuplicate: "user.register_duplicate",
  /** The right password for an account whose address is not verified yet (no session). */
  loginUnverified: "login.unverified",
  verificationRequested: "email.verification_requested",
  emailVerified: "email.verified",
  /** The right password for an account with a second factor: a challenge was issued, no session. */
  loginMfaRequired: "login.mfa_required",
  /** A wrong second-factor code, recovery code or passkey answer. */
  mfaFailed: "mfa.failed",
  /** The account-wide second-factor limit was reached (its owner is mailed). */
  mfaLocked: "mfa.locked",
  totpEnrolled: "mfa.totp_enrolled",
  totpEnabled: "mfa.totp_enabled",
  totpDisabled: "mfa.totp_disabled",
  recoveryCodeUsed: "mfa.recovery_code_used",
  recoveryCodesRegenerated: "mfa.recovery_codes_regenerated",
  passkeyAdded: "mfa.passkey_added",
  passkeyRenamed: "mfa.passkey_renamed",
  passkeyDeleted: "mfa.passkey_deleted",
  /** A passkey answered with a signature counter that did not grow: a cloned authenticator. */
  passkeyCloneDetected: "mfa.passkey_clone_detected",
  /** A sign-in with a passkey alone (usernameless). */
  passkeyLogin: "login.passkey",
} as const;
export type AuditEventType = (typeof AuditEvent)[keyof typeof AuditEvent];

export interface AuditFields {
  userId?: string | null;
  sessionId?: string | null;
  subject?: string | null;
  details?: Record<string, unknown>;
}

/** Records one event on its own. Hot paths write theirs inside the statement that does the work. */
export async function recordAuditEvent(deps: Deps, meta: RequestMeta, type: AuditEventType, fields: AuditFields = {}) {
  const now = deps.clock.now();
  await deps.db.insert(auditEvents).values({
    id: uuidv7(now),
    type,
    userId: fields.userId ?? null,
    sessionId: fields.sessionId ?? null,
    subject: fields.subject ?? null,
    ip: meta.ip,
    userAgent: meta.userAgent,
    requestId: meta.requestId,
    createdAt: new Date(now),
    details: fields.details ?? null,
  });
}
