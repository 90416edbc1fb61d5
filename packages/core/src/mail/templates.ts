import type { MailMessage } from "./types";

/**
 * The mails, plain text and simple HTML. Links point at the app (`appUrl`), which POSTs the token
 * to the API: a GET on a link (a mail scanner, a link preview) changes nothing (docs/security.md §25).
 */
export interface MailContext {
  appUrl: string;
  serviceName: string;
}

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

function render(kind: MailMessage["kind"], to: string, subject: string, paragraphs: string[], link?: { url: string; label: string }): MailMessage {
  const text = [...paragraphs, ...(link ? [`${link.label}: ${link.url}`] : [])].join("\n\n");
  const html = [
    "<!doctype html><html><body style=\"font-family: sans-serif; line-height: 1.5\">",
    ...paragraphs.map((p) => `<p>${escape(p)}</p>`),
    ...(link ? [`<p><a href="${escape(link.url)}">${escape(link.label)}</a></p>`] : []),
    "</body></html>",
  ].join("\n");
  return { to, subject, text, html, kind, ...(link ? { link: link.url } : {}) };
}

/** `<appUrl>/<path>#token=<token>`: in the fragment, so it never reaches a server's logs or a Referer. */
export const appLink = (context: MailContext, path: string, token: string): string =>
  `${context.appUrl.replace(/\/+$/, "")}/${path}#token=${encodeURIComponent(token)}`;

export function passwordResetMail(context: MailContext, to: string, token: string, validMinutes: number): MailMessage {
  return render(
    "password_reset",
    to,
    `Reset your ${context.serviceName} password`,
    [
      `Someone (we hope you) asked to reset the password of your ${context.serviceName} account.`,
      `The link below works once, for ${validMinutes} minutes. If you did not ask, ignore this mail: your password stays as it is.`,
    ],
    { url: appLink(context, "reset-password", token), label: "Choose a new password" },
  );
}

export function passwordChangedMail(context: MailContext, to: string, how: "reset" | "change"): MailMessage {
  return render("password_changed", to, `Your ${context.serviceName} password was changed`, [
    how === "reset"
      ? `The password of your ${context.serviceName} account was just reset, and every device was signed out.`
      : `The password of your ${context.serviceName} account was just changed, and your other devices were signed out.`,
    "If this was not you, reset your password at once and contact us.",
  ]);
}

export function emailChangeMail(context: MailContext, to: string, token: string): MailMessage {
  return render(
    "email_change",
    to,
    `Confirm your new ${context.serviceName} email address`,
    [
      `Someone (we hope you) asked to use this address for a ${context.serviceName} account.`,
      "The link below confirms it; it works once, for 24 hours. If you did not ask, ignore this mail.",
    ],
    { url: appLink(context, "confirm-email", token), label: "Confirm this address" },
  );
}

export function emailChangedMail(context: MailContext, to: string, newAddress: string): MailMessage {
  return render("email_changed", to, `Your ${context.serviceName} email address was changed`, [
    `The email address of your ${context.serviceName} account was just changed to ${newAddress}; this address no longer signs in.`,
    "If this was not you, reset your password from the new address's inbox at once, or contact us.",
  ]);
}

export function emailInUseMail(context: MailContext, to: string): MailMessage {
  return render("email_in_use", to, `Someone tried to use your address on ${context.serviceName}`, [
    `Someone asked to move another ${context.serviceName} account to this address. It already has an account, so nothing changed.`,
    "If this was you, sign in with this address instead. Otherwise you can ignore this mail.",
  ]);
}

export function verificationMail(context: MailContext, to: string, token: string): MailMessage {
  return render(
    "email_verification",
    to,
    `Confirm your ${context.serviceName} email address`,
    [
      `Someone (we hope you) created a ${context.serviceName} account with this address, or asked to confirm it.`,
      "The link below confirms that the address is yours; it works once, for 24 hours. If you did not sign up, ignore this mail: the account stays unconfirmed and cannot be used.",
    ],
    { url: appLink(context, "verify-email", token), label: "Confirm this address" },
  );
}

/**
 * To the owner of an address someone tried to sign up with. It carries a reset link, so that an
 * owner who forgot their password, or whose address was registered by someone else before they
 * could confirm it, can set their own password (a reset also confirms the address).
 */
export function signUpAttemptMail(context: MailContext, to: string, resetToken: string, validMinutes: number): MailMessage {
  return render(
    "sign_up_attempt",
    to,
    `Someone tried to sign up to ${context.serviceName} with your address`,
    [
      `Someone just tried to create a ${context.serviceName} account with this address. It already has one, so nothing changed.`,
      `If this was you, sign in instead. If you do not know the password, the link below sets a new one; it works once, for ${validMinutes} minutes. Otherwise you can ignore this mail.`,
    ],
    { url: appLink(context, "reset-password", resetToken), label: "Choose a new password" },
  );
}

/** The names mails use for the second factors. */
export type FactorKind = "totp" | "passkey";
const factorName = (kind: FactorKind, name?: string) =>
  kind === "totp" ? "an authenticator app" : name ? `the passkey "${name}"` : "a passkey";

export function factorAddedMail(context: MailContext, to: string, kind: FactorKind, name?: string): MailMessage {
  return render("mfa_factor_added", to, `A sign-in method was added to your ${context.serviceName} account`, [
    `${factorName(kind, name)[0]!.toUpperCase()}${factorName(kind, name).slice(1)} can now be used to sign in to your ${context.serviceName} account.`,
    "If this was not you, reset your password at once, remove it from your account's security settings, and contact us.",
  ]);
}

export function factorRemovedMail(context: MailContext, to: string, kind: FactorKind, name: string | undefined, remaining: number): MailMessage {
  return render("mfa_factor_removed", to, `A sign-in method was removed from your ${context.serviceName} account`, [
    `${factorName(kind, name)[0]!.toUpperCase()}${factorName(kind, name).slice(1)} was removed from your ${context.serviceName} account.`,
    remaining === 0
      ? "Your account no longer asks for a second step when you sign in: your password alone opens it."
      : "Your other sign-in methods still work.",
    "If this was not you, reset your password at once and contact us.",
  ]);
}

export function recoveryCodeUsedMail(context: MailContext, to: string, remaining: number): MailMessage {
  return render("recovery_code_used", to, `A recovery code was used to sign in to ${context.serviceName}`, [
    `One of your ${context.serviceName} recovery codes was just used to sign in. Each code works once; ${remaining} ${remaining === 1 ? "is" : "are"} left.`,
    remaining <= 3
      ? "You are running low: generate a new set from your account's security settings (the old ones stop working)."
      : "You can generate a new set at any time from your account's security settings.",
    "If this was not you, someone has your password and a recovery code: reset your password at once and contact us.",
  ]);
}

export function recoveryCodesRegeneratedMail(context: MailContext, to: string): MailMessage {
  return render("recovery_codes_regenerated", to, `New ${context.serviceName} recovery codes were generated`, [
    `A new set of recovery codes was just generated for your ${context.serviceName} account; the old codes no longer work.`,
    "If this was not you, reset your password at once and contact us.",
  ]);
}

/** To the owner, once per lock: someone who knows the password keeps failing the second step. */
export function mfaLockedMail(context: MailContext, to: string, minutes: number): MailMessage {
  return render("mfa_locked", to, `Someone is trying to sign in to your ${context.serviceName} account`, [
    `Someone entered your ${context.serviceName} password correctly, then failed the second sign-in step many times. Second-step codes are refused for the next ${minutes} minutes; a passkey still works.`,
    "If this was not you, your password is known to someone else: change it now (or reset it) so they cannot keep trying.",
  ]);
}
