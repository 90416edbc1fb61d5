import { AuthClientError, toAuthClientError } from "@authlith/client";
import { useSession } from "@authlith/client/react";
import { TRPCClientError } from "@trpc/client";
import { createContext, useContext, useRef, useState, type FormEvent, type ReactNode } from "react";
import { auth } from "./app-client";

type Say = (text: string | null, kind?: string, reason?: string) => void;
const MessageContext = createContext<{ say: Say; showError: (error: unknown, form?: HTMLFormElement) => void }>(null!);
export const useMessage = () => useContext(MessageContext);

/** An error from authlith's methods, or from a tRPC call (authlith's or the app's own API), as one kind. */
const describe = (error: unknown): AuthClientError | null =>
  AuthClientError.is(error) ? error : error instanceof TRPCClientError ? toAuthClientError(error) : null;

/** Messages for stable reason codes (the server's, and the client's for passkey prompts) that say more than the kind. */
const REASON_MESSAGES: Record<string, string> = {
  INVALID_MFA_CODE: "That code is not correct. Try again.",
  MFA_CHALLENGE_INVALID: "This sign-in has expired. Please sign in again.",
  SECOND_FACTOR_REQUIRED: "Confirm with a code from your authenticator app, a recovery code or a passkey.",
  PASSKEY_REJECTED: "This passkey cannot be used here.",
  PASSKEY_EXISTS: "This passkey is already registered.",
  TOTP_ALREADY_ENABLED: "An authenticator app is already set up: remove it first.",
  PASSKEY_CANCELLED: "The passkey request was cancelled or timed out.",
  PASSKEY_ALREADY_REGISTERED: "This device already holds a passkey for your account.",
  PASSKEY_UNSUPPORTED: "This browser cannot use passkeys.",
  PASSKEY_NOT_OFFERED: "This sign-in cannot be finished with a passkey.",
};

export function Messages(props: { children: ReactNode }) {
  const [message, setMessage] = useState<{ text: string; kind: string; reason: string | undefined } | null>(null);
  const say: Say = (text, kind = "info", reason) => setMessage(text === null ? null : { text, kind, reason });
  const session = useSession();
  const signedOut = useRef(false);
  signedOut.current = session.status === "signed_out";

  /** Every failure has a `kind` (and often a `reason`): no message parsing. */
  function showError(error: unknown, form?: HTMLFormElement) {
    const e = describe(error);
    if (!e) {
      console.error(error);
      return say("Something went wrong.", "unknown");
    }
    const byReason = e.reason ? REASON_MESSAGES[e.reason] : undefined;
    if (byReason) return say(byReason, e.kind, e.reason);
    switch (e.kind) {
      case "validation":
        if (e.reason === "INVALID_TOKEN") return say("This link is invalid or has expired. Ask for a new one.", e.kind, e.reason);
        for (const [field, messages] of Object.entries(e.fieldErrors)) {
          const slot = form?.querySelector<HTMLElement>(`[data-field-error="${CSS.escape(field)}"]`);
          if (slot) slot.textContent = messages.join(" ");
        }
        return say("Please correct the highlighted fields.", e.kind, e.reason);
      case "invalid_credentials":
        return say("Wrong email or password.", e.kind, e.reason);
      case "rate_limited":
        return say(`Too many attempts. Try again in ${e.retryAfterSeconds ?? 60} seconds.`, e.kind, e.reason);
      case "conflict":
        return say("An account with this email already exists.", e.kind, e.reason);
      case "network":
        return say("Cannot reach the server. Check your connection and try again.", e.kind, e.reason);
      case "unavailable":
        return say(`The service is busy. Try again in ${e.retryAfterSeconds ?? 5} seconds.`, e.kind, e.reason);
      case "unauthorized":
        // The client has already signed this page out (see the session events); that message stands.
        if (signedOut.current || auth.getUser() === null) return;
        return say("Please sign in again.", e.kind, e.reason);
      case "forbidden":
        if (e.reason === "INVALID_PASSWORD") return say("The password is not correct.", e.kind, e.reason);
        if (e.reason === "REAUTHENTICATION_REQUIRED") return say("Please confirm your password to do that.", e.kind, e.reason);
        if (e.reason === "EMAIL_NOT_VERIFIED") return say("Confirm your email address first: we have sent you a new link.", e.kind, e.reason);
        return say("This page's origin is not allowed by the auth server (AUTHLITH_ALLOWED_ORIGINS).", e.kind, e.reason);
      default:
        return say(e.message, e.kind, e.reason);
    }
  }

  return (
    <MessageContext.Provider value={{ say, showError }}>
      <p id="message" data-testid="message" role="status" hidden={message === null} data-kind={message?.kind} data-reason={message?.reason}>
        {message?.text}
      </p>
      {props.children}
    </MessageContext.Provider>
  );
}

/** A form whose fields arrive as strings; errors land in its `[data-field-error]` slots and the message line. */
export function Form(props: {
  id: string;
  testid: string;
  title: string;
  submit: string;
  action: (fields: Record<string, string>) => Promise<unknown>;
  children: ReactNode;
  /** Below the submit button (other ways out of the form). */
  after?: ReactNode;
}) {
  const { say, showError } = useMessage();
  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = event.currentTarget;
    for (const slot of form.querySelectorAll<HTMLElement>("[data-field-error]")) slot.textContent = "";
    say(null);
    const fields = Object.fromEntries([...new FormData(form)].map(([key, value]) => [key, String(value)]));
    try {
      await props.action(fields);
      form.reset();
    } catch (error) {
      showError(error, form);
    }
  }
  return (
    <form id={props.id} data-testid={props.testid} noValidate onSubmit={onSubmit}>
      <h2>{props.title}</h2>
      {props.children}
      <button type="submit">{props.submit}</button>
      {props.after}
    </form>
  );
}

export function Field(props: {
  label: string;
  name: string;
  type?: string;
  autoComplete?: string;
  required?: boolean;
  inputMode?: "numeric" | "text";
  autoFocus?: boolean;
}) {
  return (
    <>
      <label>
        {props.label}{" "}
        <input
          name={props.name}
          type={props.type ?? "text"}
          autoComplete={props.autoComplete}
          required={props.required ?? true}
          inputMode={props.inputMode}
          autoFocus={props.autoFocus}
        />
      </label>
      <small data-field-error={props.name}></small>
    </>
  );
}
