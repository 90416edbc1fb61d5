import { AuthClientError, createAuthClient, type SessionEvent, type SessionInfo } from "@authlith/client";

// The API on this page's host name (port 3000) unless VITE_AUTHLITH_URL says otherwise: the
// refresh cookie is first-party only when the page and the API are on the same site.
const apiUrl =
  import.meta.env.VITE_AUTHLITH_URL || `${location.protocol}//${location.hostname}:${import.meta.env.VITE_AUTHLITH_PORT || 3000}`;

// In a browser the client uses the cookie transport: the refresh token stays in an HttpOnly
// cookie, the access token in memory; tabs of this origin share refreshes and sign-outs.
const auth = createAuthClient({ url: apiUrl });

const $ = <T extends HTMLElement = HTMLElement>(selector: string): T => {
  const element = document.querySelector<T>(selector);
  if (!element) throw new Error(`missing ${selector}`);
  return element;
};

let meLoads = 0;

function setState(state: "signed-in" | "signed-out") {
  document.body.dataset.state = state;
  $("#signed-in").hidden = state !== "signed-in";
  $("#signed-out").hidden = state !== "signed-out";
}

function say(text: string | null, kind = "info") {
  const message = $("#message");
  message.hidden = text === null;
  message.textContent = text ?? "";
  message.dataset.kind = kind;
}

function clearFieldErrors(form: HTMLFormElement) {
  for (const small of form.querySelectorAll<HTMLElement>("[data-field-error]")) small.textContent = "";
}

/** Every failure the client reports has a `kind`: no message parsing. */
function showError(error: unknown, form?: HTMLFormElement) {
  if (!AuthClientError.is(error)) {
    say("Something went wrong.", "unknown");
    console.error(error);
    return;
  }
  switch (error.kind) {
    case "validation":
      if (error.reason === "INVALID_TOKEN") return say("This link is invalid or has expired. Ask for a new one.", error.kind);
      for (const [field, messages] of Object.entries(error.fieldErrors)) {
        const slot = form?.querySelector<HTMLElement>(`[data-field-error="${CSS.escape(field)}"]`);
        if (slot) slot.textContent = messages.join(" ");
      }
      return say("Please correct the highlighted fields.", error.kind);
    case "invalid_credentials":
      return say("Wrong email or password.", error.kind);
    case "rate_limited":
      return say(`Too many attempts. Try again in ${error.retryAfterSeconds ?? 60} seconds.`, error.kind);
    case "conflict":
      return say("An account with this email already exists.", error.kind);
    case "network":
      return say("Cannot reach the server. Check your connection and try again.", error.kind);
    case "unavailable":
      return say(`The service is busy. Try again in ${error.retryAfterSeconds ?? 5} seconds.`, error.kind);
    case "unauthorized":
      // The client has already signed this page out (see onSessionChange); that message stands.
      if (document.body.dataset.state === "signed-out") return;
      return say("Please sign in again.", error.kind);
    case "forbidden":
      if (error.reason === "INVALID_PASSWORD") return say("The password is not correct.", error.kind);
      if (error.reason === "REAUTHENTICATION_REQUIRED") return say("Please sign in again to do that.", error.kind);
      if (error.reason === "EMAIL_NOT_VERIFIED") return say("Confirm your email address first: we have sent you a new link.", error.kind);
      return say("This page's origin is not allowed by the auth server (AUTHLITH_ALLOWED_ORIGINS).", error.kind);
    default:
      return say(error.message, error.kind);
  }
}

function row(list: HTMLElement, term: string, value: string) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

async function loadMe() {
  try {
    const me = await auth.me();
    const list = $("#me");
    list.replaceChildren();
    row(list, "Email", me.user.email);
    row(list, "Email confirmed", me.user.emailVerified ? "yes" : "no");
    $("#unverified").hidden = me.user.emailVerified;
    row(list, "User id", me.user.id);
    row(list, "Session id", me.session.id);
    row(list, "Access token expires", new Date(me.accessTokenExpiresAt).toLocaleTimeString());
    list.dataset.sessionId = me.session.id;
    list.dataset.loads = String(++meLoads);
  } catch (error) {
    showError(error);
  }
}

function sessionItem(session: SessionInfo): HTMLLIElement {
  const item = document.createElement("li");
  item.dataset.sessionId = session.id;
  item.dataset.current = String(session.current);
  const device = document.createElement("div");
  device.className = "device";
  device.textContent = session.userAgent ?? "Unknown device";
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `${session.ip ?? "unknown IP"} · last used ${new Date(session.lastUsedAt).toLocaleString()}`;
  item.append(device, meta);
  if (session.current) {
    const here = document.createElement("strong");
    here.textContent = "This browser";
    item.append(here);
  } else {
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.textContent = "Revoke";
    revoke.addEventListener("click", async () => {
      try {
        await auth.sessions.revoke(session.id);
        say("Session revoked: that browser is signed out on its next request.");
        await loadSessions();
      } catch (error) {
        showError(error);
      }
    });
    item.append(revoke);
  }
  return item;
}

async function loadSessions() {
  try {
    const sessions = await auth.sessions.list();
    $("#sessions").replaceChildren(...sessions.map(sessionItem));
  } catch (error) {
    showError(error);
  }
}

function showSignedIn() {
  setState("signed-in");
  $("#status").textContent = `Signed in as ${auth.getUser()?.email ?? "…"}`;
  void loadMe();
  void loadSessions();
}

const SIGNED_OUT_MESSAGES = {
  logout: "You are signed out.",
  revoked: "This session was ended from another device.",
  expired: "Your session has expired. Please sign in again.",
} as const;

function showSignedOut(reason?: keyof typeof SIGNED_OUT_MESSAGES) {
  setState("signed-out");
  $("#status").textContent = "Signed out";
  $("#me").replaceChildren();
  $("#sessions").replaceChildren();
  if (reason) say(SIGNED_OUT_MESSAGES[reason]);
}

function logEvent(event: SessionEvent) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${event.type}${event.type === "signed_out" ? ` (${event.reason})` : ""}`;
  $("#events").append(item);
}

auth.onSessionChange((event) => {
  logEvent(event);
  if (event.type === "signed_in") showSignedIn();
  else if (event.type === "signed_out") showSignedOut(event.reason);
});

function onSubmit(form: HTMLFormElement, action: (fields: Record<string, string>) => Promise<unknown>) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    say(null);
    const fields = Object.fromEntries([...new FormData(form)].map(([key, value]) => [key, String(value)]));
    try {
      await action(fields);
      form.reset();
    } catch (error) {
      showError(error, form);
    }
  });
}

onSubmit($<HTMLFormElement>("#register"), async ({ email = "", password = "", name }) => {
  const result = await auth.register({ email, password, ...(name ? { name } : {}) });
  // With email verification on (the server's default) nobody is signed in yet.
  if (result.status === "verification_required") say(`Check your inbox: we sent a link to ${email} to confirm the address.`);
});
onSubmit($<HTMLFormElement>("#login"), ({ email = "", password = "" }) => auth.login({ email, password }));
onSubmit($<HTMLFormElement>("#forgot"), async ({ email = "" }) => {
  await auth.requestPasswordReset({ email });
  say("If an account exists for that address, a link to reset its password is on its way.");
});
onSubmit($<HTMLFormElement>("#change-password"), async ({ currentPassword = "", newPassword = "" }) => {
  const { revokedSessions } = await auth.changePassword({ currentPassword, newPassword });
  say(`Password changed. ${revokedSessions} other device(s) signed out.`);
  await loadSessions();
});
onSubmit($<HTMLFormElement>("#change-email"), async ({ newEmail = "", password = "" }) => {
  await auth.changeEmail({ newEmail, password });
  say(`A link is on its way to ${newEmail}: follow it to move your account there.`);
});
$("#request-verification").addEventListener("click", async () => {
  try {
    const { alreadyVerified } = await auth.requestVerification();
    say(alreadyVerified ? "Your address is already confirmed." : "A link is on its way: follow it to confirm your address.");
  } catch (error) {
    showError(error);
  }
});
onSubmit($<HTMLFormElement>("#delete-account"), async ({ password = "" }) => {
  await auth.deleteAccount({ password });
  say("Your account is deleted.");
});

// A reset link opens the app at /reset-password#token=…: the token stays in the fragment (never
// sent to any server) until this form POSTs it.
const resetToken = location.pathname.endsWith("/reset-password") ? new URLSearchParams(location.hash.slice(1)).get("token") : null;
$("#reset").hidden = resetToken === null;
onSubmit($<HTMLFormElement>("#reset-password"), async ({ newPassword = "" }) => {
  await auth.resetPassword({ token: resetToken ?? "", newPassword });
  history.replaceState(null, "", "/");
  $("#reset").hidden = true;
  say("Your password is changed and every device is signed out. Sign in with the new password.");
});
// Links from mails open the app at /verify-email#token=… (sign-up) or /confirm-email#token=… (a
// new address). Nothing happens until the button is pressed: a mail scanner that opens the link,
// even one that runs scripts, does not confirm anything.
const confirmKind = location.pathname.endsWith("/verify-email") ? "verify" : location.pathname.endsWith("/confirm-email") ? "email-change" : null;
// Read when the button is pressed: a newer link opened in this tab changes only the fragment.
const confirmToken = () => new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
$("#confirm").hidden = confirmKind === null || confirmToken() === "";
if (confirmKind === "email-change") $("#confirm-title").textContent = "Confirm your new email address";
$("#confirm-button").addEventListener("click", async () => {
  say(null);
  try {
    if (confirmKind === "verify") {
      await auth.verifyEmail({ token: confirmToken() });
      say(auth.getUser() ? "Your address is confirmed." : "Your address is confirmed. You can sign in now.");
    } else {
      const { email } = await auth.confirmEmailChange({ token: confirmToken() });
      say(`Your account now uses ${email}.`);
    }
    history.replaceState(null, "", "/");
    $("#confirm").hidden = true;
    if (auth.getUser()) void loadMe();
  } catch (error) {
    showError(error);
  }
});
$("#reload-me").addEventListener("click", () => void loadMe());
$("#reload-sessions").addEventListener("click", () => void loadSessions());
$("#logout").addEventListener("click", async () => {
  try {
    await auth.logout();
  } catch (error) {
    showError(error);
  }
});

// After a reload: the session comes back from the HttpOnly cookie (or from another open tab).
auth.restore().then(
  (user) => {
    // A restored session has already been shown by the signed_in event.
    if (!user) showSignedOut();
    else if (document.body.dataset.state !== "signed-in") showSignedIn();
  },
  (error: unknown) => {
    showSignedOut();
    showError(error);
  },
);
