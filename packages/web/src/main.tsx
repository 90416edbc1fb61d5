import { authHeaders, authLink, type MfaChallenge, type SessionEvent, type SessionInfo } from "@authlith/client";
import { AuthProvider, useAuth, useSession } from "@authlith/client/react";
import { QueryClientProvider, useMutation, useQuery } from "@tanstack/react-query";
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import { createTRPCOptionsProxy } from "@trpc/tanstack-react-query";
import { useEffect, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import type { NotesRouter } from "./api/notes";
import { auth, queryClient, TRPCProvider, useTRPC } from "./app-client";
import { Security } from "./security";
import { SignIn } from "./sign-in";
import { Field, Form, Messages, useMessage } from "./ui";

// The app's own API (src/api/notes.ts, served at /api): the same tokens, through authLink.
const notesApi = createTRPCOptionsProxy<NotesRouter>({
  client: createTRPCClient<NotesRouter>({ links: [authLink(auth), httpBatchLink({ url: `${location.origin}/api`, headers: authHeaders })] }),
  queryClient,
});

const SIGNED_OUT_MESSAGES = {
  logout: "You are signed out.",
  revoked: "This session was ended from another device.",
  expired: "Your session has expired. Please sign in again.",
} as const;

function SignedOut() {
  const { say } = useMessage();
  // A sign-in whose password checked out and that waits for its second factor.
  const [challenge, setChallenge] = useState<MfaChallenge | null>(null);
  if (challenge) {
    return (
      <section id="signed-out">
        <SignIn challenge={challenge} onChallenge={setChallenge} />
      </section>
    );
  }
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
      <SignIn challenge={null} onChallenge={setChallenge} />
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
      <dl
        id="me"
        data-testid="me"
        data-session-id={me.data?.session.id}
        data-amr={me.data?.session.amr.join(" ")}
        data-loads={loads.current || undefined}
      >
        {me.data && [
          ...row("Email", me.data.user.email),
          ...row("Email confirmed", me.data.user.emailVerified ? "yes" : "no"),
          ...row("User id", me.data.user.id),
          ...row("Session id", me.data.session.id),
          // How this session was signed in (RFC 8176 `amr`): pwd, otp, hwk/swk (a passkey), mfa.
          ...row("Signed in with", me.data.session.amr.join(", ")),
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
      <Security />
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
