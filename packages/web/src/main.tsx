import { AuthClientError, authHeaders, authLink, createAuthClient, toAuthClientError, type SessionEvent, type SessionInfo } from "@authlith/client";
import { AuthProvider, useAuth, useSession } from "@authlith/client/react";
import type { AppRouter } from "@authlith/client/router";
import { QueryClient, QueryClientProvider, useMutation, useQuery } from "@tanstack/react-query";
import { createTRPCClient, httpBatchLink, TRPCClientError } from "@trpc/client";
import { createTRPCContext, createTRPCOptionsProxy } from "@trpc/tanstack-react-query";
import { createContext, useContext, useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import { createRoot } from "react-dom/client";
import type { NotesRouter } from "./api/notes";

// The API on this page's host name (port 3000) unless VITE_AUTHLITH_URL says otherwise: the
// refresh cookie is first-party only when the page and the API are on the same site.
const apiUrl =
  import.meta.env.VITE_AUTHLITH_URL || `${location.protocol}//${location.hostname}:${import.meta.env.VITE_AUTHLITH_PORT || 3000}`;

// In a browser the client uses the cookie transport: the refresh token stays in an HttpOnly
// cookie, the access token in memory; tabs of this origin share refreshes and sign-outs.
const auth = createAuthClient({ url: apiUrl });

const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false, refetchOnWindowFocus: false, staleTime: Infinity } } });
// authlith's procedures through tRPC's TanStack Query integration, over auth.trpc (authLink inside).
const { TRPCProvider, useTRPC } = createTRPCContext<AppRouter>();
// The app's own API (src/api/notes.ts, served at /api): the same tokens, through authLink.
const notesApi = createTRPCOptionsProxy<NotesRouter>({
  client: createTRPCClient<NotesRouter>({ links: [authLink(auth), httpBatchLink({ url: `${location.origin}/api`, headers: authHeaders })] }),
  queryClient,
});

// Query results belong to one user: a new sign-in starts from scratch, a sign-out forgets them.
auth.onSessionChange((event) => {
  if (event.type === "signed_in") void queryClient.resetQueries();
  if (event.type === "signed_out") queryClient.clear();
});

type Say = (text: string | null, kind?: string) => void;
const MessageContext = createContext<{ say: Say; showError: (error: unknown, form?: HTMLFormElement) => void }>(null!);
const useMessage = () => useContext(MessageContext);

const SIGNED_OUT_MESSAGES = {
  logout: "You are signed out.",
  revoked: "This session was ended from another device.",
  expired: "Your session has expired. Please sign in again.",
} as const;

/** An error from authlith's methods, or from a tRPC call (authlith's or the app's own API), as one kind. */
const describe = (error: unknown): AuthClientError | null =>
  AuthClientError.is(error) ? error : error instanceof TRPCClientError ? toAuthClientError(error) : null;

function Messages(props: { children: ReactNode }) {
  const [message, setMessage] = useState<{ text: string; kind: string } | null>(null);
  const say: Say = (text, kind = "info") => setMessage(text === null ? null : { text, kind });
  const session = useSession();
  const signedOut = useRef(false);
  signedOut.current = session.status === "signed_out";

  /** Every failure has a `kind`: no message parsing. */
  function showError(error: unknown, form?: HTMLFormElement) {
    const e = describe(error);
    if (!e) {
      console.error(error);
      return say("Something went wrong.", "unknown");
    }
    switch (e.kind) {
      case "validation":
        if (e.reason === "INVALID_TOKEN") return say("This link is invalid or has expired. Ask for a new one.", e.kind);
        for (const [field, messages] of Object.entries(e.fieldErrors)) {
          const slot = form?.querySelector<HTMLElement>(`[data-field-error="${CSS.escape(field)}"]`);
          if (slot) slot.textContent = messages.join(" ");
        }
        return say("Please correct the highlighted fields.", e.kind);
      case "invalid_credentials":
        return say("Wrong email or password.", e.kind);
      case "rate_limited":
        return say(`Too many attempts. Try again in ${e.retryAfterSeconds ?? 60} seconds.`, e.kind);
      case "conflict":
        return say("An account with this email already exists.", e.kind);
      case "network":
        return say("Cannot reach the server. Check your connection and try again.", e.kind);
      case "unavailable":
        return say(`The service is busy. Try again in ${e.retryAfterSeconds ?? 5} seconds.`, e.kind);
      case "unauthorized":
        // The client has already signed this page out (see the session events); that message stands.
        if (signedOut.current || auth.getUser() === null) return;
        return say("Please sign in again.", e.kind);
      case "forbidden":
        if (e.reason === "INVALID_PASSWORD") return say("The password is not correct.", e.kind);
        if (e.reason === "REAUTHENTICATION_REQUIRED") return say("Please sign in again to do that.", e.kind);
        if (e.reason === "EMAIL_NOT_VERIFIED") return say("Confirm your email address first: we have sent you a new link.", e.kind);
        return say("This page's origin is not allowed by the auth server (AUTHLITH_ALLOWED_ORIGINS).", e.kind);
      default:
        return say(e.message, e.kind);
    }
  }

  return (
    <MessageContext.Provider value={{ say, showError }}>
      <p id="message" data-testid="message" role="status" hidden={message === null} data-kind={message?.kind}>
        {message?.text}
      </p>
      {props.children}
    </MessageContext.Provider>
  );
}

/** A form whose fields arrive as strings; errors land in its `[data-field-error]` slots and the message line. */
function Form(props: { id: string; testid: string; title: string; submit: string; action: (fields: Record<string, string>) => Promise<unknown>; children: ReactNode }) {
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
    </form>
  );
}

function Field(props: { label: string; name: string; type?: string; autoComplete?: string; required?: boolean }) {
  return (
    <>
      <label>
        {props.label} <input name={props.name} type={props.type ?? "text"} autoComplete={props.autoComplete} required={props.required ?? true} />
      </label>
      <small data-field-error={props.name}></small>
    </>
  );
}

function SignedOut() {
  const { say } = useMessage();
  return (
    <section id="signed-out">
      <Form
        id="register"
        testid="register-form"
        title="Create an account"
        submit="Create account"
        action={async ({ email = "", password = "", name }) => {
          const result = await auth.register({ email, password, ...(name ? { name } : {}) });
          // With email verification on (the server's default) nobody is signed in yet.
          if (result.status === "verification_required") say(`Check your inbox: we sent a link to ${email} to confirm the address.`);
        }}
      >
        <Field label="Email" name="email" type="email" autoComplete="username" />
        <Field label="Password" name="password" type="password" autoComplete="new-password" />
        <Field label="Name" name="name" autoComplete="name" required={false} />
      </Form>
      <Form id="login" testid="login-form" title="Sign in" submit="Sign in" action={({ email = "", password = "" }) => auth.login({ email, password })}>
        <Field label="Email" name="email" type="email" autoComplete="username" />
        <Field label="Password" name="password" type="password" autoComplete="current-password" />
      </Form>
      <Form
        id="forgot"
        testid="forgot-form"
        title="Forgot your password?"
        submit="Mail me a link"
        action={async ({ email = "" }) => {
          await auth.requestPasswordReset({ email });
          say("If an account exists for that address, a link to reset its password is on its way.");
        }}
      >
        <Field label="Email" name="email" type="email" autoComplete="username" />
      </Form>
    </section>
  );
}

/** Links from mails open the app at /verify-email#token=…, /confirm-email#token=… or /reset-password#token=…. */
const linkKind = location.pathname.endsWith("/verify-email")
  ? "verify"
  : location.pathname.endsWith("/confirm-email")
    ? "email-change"
    : location.pathname.endsWith("/reset-password")
      ? "reset"
      : null;
/** Read when acted on: a newer link opened in this tab changes only the fragment. */
const linkToken = () => new URLSearchParams(location.hash.slice(1)).get("token") ?? "";

/**
 * Confirming an address: nothing happens until the button is pressed, so a mail scanner that
 * opens the link, even one that runs scripts, confirms nothing.
 */
function Confirm(props: { onDone(): void }) {
  const { say, showError } = useMessage();
  const [password, setPassword] = useState("");
  async function confirm() {
    say(null);
    try {
      if (linkKind === "verify") {
        // The link proves the inbox; the password proves the account is the inbox owner's.
        await auth.verifyEmail({ token: linkToken(), password });
        say(auth.getUser() ? "Your address is confirmed." : "Your address is confirmed. You can sign in now.");
      } else {
        const { email } = await auth.confirmEmailChange({ token: linkToken() });
        say(`Your account now uses ${email}.`);
      }
      history.replaceState(null, "", "/");
      props.onDone();
      if (auth.getUser()) void queryClient.invalidateQueries();
    } catch (error) {
      showError(error);
    }
  }
  return (
    <section id="confirm">
      <h2 id="confirm-title">{linkKind === "email-change" ? "Confirm your new email address" : "Confirm your email address"}</h2>
      <p>Following the link alone changes nothing: press the button to confirm.</p>
      {linkKind === "verify" && (
        <label>
          Your password <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
      )}
      <button id="confirm-button" type="button" onClick={confirm}>
        Confirm this address
      </button>
    </section>
  );
}

/** The token stays in the fragment (never sent to any server) until this form POSTs it. */
function Reset(props: { onDone(): void }) {
  const { say } = useMessage();
  return (
    <section id="reset">
      <Form
        id="reset-password"
        testid="reset-form"
        title="Choose a new password"
        submit="Set the new password"
        action={async ({ newPassword = "" }) => {
          await auth.resetPassword({ token: linkToken(), newPassword });
          history.replaceState(null, "", "/");
          props.onDone();
          say("Your password is changed and every device is signed out. Sign in with the new password.");
        }}
      >
        <Field label="New password" name="newPassword" type="password" autoComplete="new-password" />
      </Form>
    </section>
  );
}

function row(term: string, value: string) {
  return [<dt key={`${term}-t`}>{term}</dt>, <dd key={`${term}-d`}>{value}</dd>];
}

function Profile() {
  const trpc = useTRPC();
  const { say, showError } = useMessage();
  const me = useQuery(trpc.auth.me.queryOptions());
  // How many times `auth.me` has loaded (the browser tests count them).
  const loads = useRef(0);
  const seen = useRef(0);
  if (me.isSuccess && me.dataUpdatedAt !== seen.current) {
    seen.current = me.dataUpdatedAt;
    loads.current += 1;
  }
  useEffect(() => {
    if (me.error) showError(me.error);
  }, [me.error, me.errorUpdatedAt]);
  const user = me.data?.user;
  return (
    <>
      <h2>You</h2>
      <p id="unverified" hidden={!user || user.emailVerified}>
        Your email address is not confirmed yet.{" "}
        <button
          id="request-verification"
          type="button"
          onClick={async () => {
            try {
              const { alreadyVerified } = await auth.requestVerification();
              say(alreadyVerified ? "Your address is already confirmed." : "A link is on its way: follow it to confirm your address.");
            } catch (error) {
              showError(error);
            }
          }}
        >
          Mail me a link
        </button>
      </p>
      <dl id="me" data-testid="me" data-session-id={me.data?.session.id} data-loads={loads.current || undefined}>
        {me.data && [
          ...row("Email", me.data.user.email),
          ...row("Email confirmed", me.data.user.emailVerified ? "yes" : "no"),
          ...row("User id", me.data.user.id),
          ...row("Session id", me.data.session.id),
          ...row("Access token expires", new Date(me.data.accessTokenExpiresAt).toLocaleTimeString()),
        ]}
      </dl>
      <button id="reload-me" type="button" onClick={() => void me.refetch()}>
        Reload profile
      </button>
    </>
  );
}

function Sessions() {
  const trpc = useTRPC();
  const { say, showError } = useMessage();
  const sessions = useQuery(trpc.session.list.queryOptions());
  const revoke = useMutation(trpc.session.revoke.mutationOptions());
  useEffect(() => {
    if (sessions.error) showError(sessions.error);
  }, [sessions.error, sessions.errorUpdatedAt]);
  const item = (session: SessionInfo) => (
    <li key={session.id} data-session-id={session.id} data-current={String(session.current)}>
      <div className="device">{session.userAgent ?? "Unknown device"}</div>
      <div className="meta">{`${session.ip ?? "unknown IP"} · last used ${new Date(session.lastUsedAt).toLocaleString()}`}</div>
      {session.current ? (
        <strong>This browser</strong>
      ) : (
        <button
          type="button"
          onClick={async () => {
            try {
              await revoke.mutateAsync({ sessionId: session.id });
              say("Session revoked: that browser is signed out on its next request.");
              await sessions.refetch();
            } catch (error) {
              showError(error);
            }
          }}
        >
          Revoke
        </button>
      )}
    </li>
  );
  return (
    <>
      <h2>Your sessions</h2>
      <button id="reload-sessions" type="button" onClick={() => void sessions.refetch()}>
        Reload sessions
      </button>
      <ul id="sessions" data-testid="sessions">
        {sessions.data?.sessions.map(item)}
      </ul>
    </>
  );
}

/** The app's own API: notes kept per user, reached with the same tokens through authLink. */
function Notes() {
  const { showError } = useMessage();
  const notes = useQuery({ ...notesApi.notes.list.queryOptions(), enabled: false });
  const add = useMutation(notesApi.notes.add.mutationOptions());
  useEffect(() => {
    if (notes.error) showError(notes.error);
  }, [notes.error, notes.errorUpdatedAt]);
  return (
    <section id="notes" data-owner={notes.data?.owner}>
      <h2>Your notes (the app's own API)</h2>
      <button id="load-notes" type="button" onClick={() => void notes.refetch()}>
        Load notes
      </button>
      <ul id="notes-list">
        {notes.data?.notes.map((text, i) => (
          <li key={i}>{text}</li>
        ))}
      </ul>
      <Form
        id="add-note"
        testid="add-note-form"
        title="Add a note"
        submit="Add"
        action={async ({ text = "" }) => {
          await add.mutateAsync({ text });
          await notes.refetch();
        }}
      >
        <Field label="Note" name="text" />
      </Form>
    </section>
  );
}

function SignedIn() {
  const { say } = useMessage();
  return (
    <section id="signed-in">
      <Profile />
      <Sessions />
      <button
        id="logout"
        type="button"
        onClick={async () => {
          try {
            await auth.logout();
          } catch {
            // Signed out here whatever the server said (the client forgets the session either way).
          }
        }}
      >
        Log out
      </button>
      <Notes />
      <Form
        id="change-password"
        testid="change-password-form"
        title="Change your password"
        submit="Change password"
        action={async ({ currentPassword = "", newPassword = "" }) => {
          const { revokedSessions } = await auth.changePassword({ currentPassword, newPassword });
          say(`Password changed. ${revokedSessions} other device(s) signed out.`);
          await queryClient.invalidateQueries();
        }}
      >
        <Field label="Current password" name="currentPassword" type="password" autoComplete="current-password" />
        <Field label="New password" name="newPassword" type="password" autoComplete="new-password" />
      </Form>
      <Form
        id="change-email"
        testid="change-email-form"
        title="Change your email address"
        submit="Send a link to the new address"
        action={async ({ newEmail = "", password = "" }) => {
          await auth.changeEmail({ newEmail, password });
          say(`A link is on its way to ${newEmail}: follow it to move your account there.`);
        }}
      >
        <Field label="New email" name="newEmail" type="email" autoComplete="email" />
        <Field label="Password" name="password" type="password" autoComplete="current-password" />
      </Form>
      <Form
        id="delete-account"
        testid="delete-form"
        title="Delete your account"
        submit="Delete my account"
        action={async ({ password = "" }) => {
          await auth.deleteAccount({ password });
          say("Your account is deleted.");
        }}
      >
        <Field label="Password" name="password" type="password" autoComplete="current-password" />
      </Form>
    </section>
  );
}

function Events() {
  const [events, setEvents] = useState<string[]>([]);
  const { say } = useMessage();
  useEffect(
    () =>
      auth.onSessionChange((event: SessionEvent) => {
        setEvents((list) => [...list, `${new Date().toLocaleTimeString()} ${event.type}${event.type === "signed_out" ? ` (${event.reason})` : ""}`]);
        if (event.type === "signed_out") say(SIGNED_OUT_MESSAGES[event.reason]);
      }),
    [],
  );
  return (
    <>
      <h2>Session events</h2>
      <ol id="events" data-testid="events">
        {events.map((line, i) => (
          <li key={i}>{line}</li>
        ))}
      </ol>
    </>
  );
}

function App() {
  const session = useSession();
  const client = useAuth();
  const [link, setLink] = useState(linkKind !== null && linkToken() !== "" ? linkKind : null);
  const state = session.status === "loading" ? "loading" : session.status === "signed_in" ? "signed-in" : "signed-out";
  useEffect(() => {
    document.body.dataset.state = state;
  }, [state]);
  const status = session.status === "loading" ? "Loading…" : session.user ? `Signed in as ${session.user.email}` : "Signed out";
  return (
    <TRPCProvider trpcClient={client.trpc} queryClient={queryClient}>
      <header>
        <h1>authlith example</h1>
        <p id="status" data-testid="status">
          {status}
        </p>
      </header>
      <main>
        <Messages>
          {(link === "verify" || link === "email-change") && <Confirm onDone={() => setLink(null)} />}
          {link === "reset" && <Reset onDone={() => setLink(null)} />}
          {session.status === "signed_out" && <SignedOut />}
          {session.status === "signed_in" && <SignedIn key={session.user?.id} />}
          <Events />
        </Messages>
      </main>
    </TRPCProvider>
  );
}

createRoot(document.getElementById("root")!).render(
  <AuthProvider client={auth}>
    <QueryClientProvider client={queryClient}>
      <App />
    </QueryClientProvider>
  </AuthProvider>,
);
