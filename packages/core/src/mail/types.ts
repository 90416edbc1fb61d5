/** One mail, rendered: both bodies, and what it is for (logs and the dev outbox show `kind`). */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
  kind: MailKind;
  /** The one link the mail carries, if any (the dev outbox prints it). */
  link?: string;
}

export type MailKind =
  | "password_reset"
  | "password_changed"
  | "email_change"
  | "email_changed"
  | "email_in_use"
  | "email_verification"
  | "sign_up_attempt"
  | "mfa_factor_added"
  | "mfa_factor_removed"
  | "recovery_code_used"
  | "recovery_codes_regenerated"
  | "mfa_locked";

/**
 * Sends mail. Implementations: SES (mail/ses.ts) in AWS, the development outbox (mail/outbox.ts)
 * everywhere else. A send that fails rejects; callers go through `deliver` (mail/deliver.ts),
 * which logs the failure and never lets it change an answer.
 */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
}
