import { AuthClientError, type MfaChallenge, type MfaMethod } from "@authlith/client";
import { useState } from "react";
import { auth } from "./app-client";
import { Field, Form, useMessage } from "./ui";

/**
 * Sign-in: email and password, then, for an account with a second factor, the challenge screen;
 * or a passkey alone (a discoverable credential: no address typed).
 */
export function SignIn(props: { challenge: MfaChallenge | null; onChallenge(challenge: MfaChallenge | null): void }) {
  if (props.challenge) return <SecondFactor challenge={props.challenge} onRestart={() => props.onChallenge(null)} />;
  return (
    <Form
      id="login"
      testid="login-form"
      title="Sign in"
      submit="Sign in"
      action={async ({ email = "", password = "" }) => {
        const result = await auth.login({ email, password });
        if (result.status === "mfa_required") props.onChallenge(result);
      }}
      after={<PasskeySignIn />}
    >
      <Field label="Email" name="email" type="email" autoComplete="username webauthn" />
      <Field label="Password" name="password" type="password" autoComplete="current-password" />
    </Form>
  );
}

function PasskeySignIn() {
  const { say, showError } = useMessage();
  const [busy, setBusy] = useState(false);
  return (
    <p>
      <button
        id="passkey-sign-in"
        data-testid="passkey-sign-in"
        type="button"
        disabled={busy}
        onClick={async () => {
          say(null);
          setBusy(true);
          try {
            await auth.signInWithPasskey();
          } catch (error) {
            showError(error);
          } finally {
            setBusy(false);
          }
        }}
      >
        Sign in with a passkey
      </button>
    </p>
  );
}

type Mode = MfaMethod;

/** The second step of a sign-in: a code from the app, a recovery code, or a passkey. */
function SecondFactor(props: { challenge: MfaChallenge; onRestart(): void }) {
  const { challenge } = props;
  const { say, showError } = useMessage();
  const has = (method: Mode) => challenge.methods.includes(method);
  const [mode, setMode] = useState<Mode>(has("totp") ? "totp" : has("passkey") ? "passkey" : "recovery_code");
  const [busy, setBusy] = useState(false);

  /** A spent or expired challenge cannot be retried: back to the password. */
  async function finish(verify: () => Promise<unknown>) {
    try {
      await verify();
    } catch (error) {
      if (AuthClientError.is(error) && error.reason === "MFA_CHALLENGE_INVALID") props.onRestart();
      throw error;
    }
  }

  async function usePasskey() {
    say(null);
    setBusy(true);
    try {
      await finish(() => auth.verifyMfaWithPasskey(challenge));
    } catch (error) {
      showError(error);
    } finally {
      setBusy(false);
    }
  }

  const switches = (
    <p className="alternatives">
      {mode !== "totp" && has("totp") && (
        <button id="mfa-use-totp" type="button" onClick={() => setMode("totp")}>
          Use your authenticator app
        </button>
      )}
      {mode !== "recovery_code" && has("recovery_code") && (
        <button id="mfa-use-recovery-code" type="button" onClick={() => setMode("recovery_code")}>
          Use a recovery code
        </button>
      )}
      {mode !== "passkey" && has("passkey") && (
        <button id="mfa-use-passkey" type="button" disabled={busy} onClick={() => void usePasskey()}>
          Use a passkey
        </button>
      )}
      <button id="mfa-cancel" type="button" onClick={props.onRestart}>
        Cancel
      </button>
    </p>
  );

  return (
    <section id="mfa-challenge" data-testid="mfa-challenge" data-mode={mode} data-methods={challenge.methods.join(" ")}>
      {mode === "passkey" ? (
        <div className="panel">
          <h2>Confirm it is you</h2>
          <p>Use the passkey of this account to finish signing in.</p>
          <button id="mfa-passkey" type="button" disabled={busy} onClick={() => void usePasskey()}>
            Use a passkey
          </button>
          {switches}
        </div>
      ) : (
        <Form
          // A new form (and empty fields) when switching between code kinds.
          key={mode}
          id="mfa-code"
          testid="mfa-code-form"
          title="Confirm it is you"
          submit="Verify"
          action={async ({ code = "", recoveryCode = "" }) => {
            await finish(() =>
              mode === "totp"
                ? auth.verifyMfa({ challengeId: challenge.challengeId, code })
                : auth.verifyMfa({ challengeId: challenge.challengeId, recoveryCode }),
            );
          }}
          after={switches}
        >
          {mode === "totp" ? (
            <>
              <p>Enter the 6-digit code from your authenticator app.</p>
              <Field label="Code" name="code" inputMode="numeric" autoComplete="one-time-code" autoFocus />
            </>
          ) : (
            <>
              <p>Enter one of the recovery codes you saved when you set up two-step verification. Each works once.</p>
              <Field label="Recovery code" name="recoveryCode" autoComplete="off" autoFocus />
            </>
          )}
        </Form>
      )}
      <p className="meta">This sign-in waits until {new Date(challenge.expiresAt).toLocaleTimeString()}.</p>
    </section>
  );
}
