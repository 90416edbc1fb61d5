import { AuthClientError, type MfaStatus, type PasskeyInfo, type StepUpProof, type TotpEnrolment } from "@authlith/client";
import { useQuery } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { auth } from "./app-client";
import { Field, Form, useMessage } from "./ui";

/** What the server asked for before it would make a change (FORBIDDEN, with these reasons). */
interface Needs {
  password: boolean;
  factor: boolean;
}

/** A change waiting for the user to prove it is them. */
interface PendingChange {
  title: string;
  needs: Needs;
  run(proof: StepUpProof): Promise<void>;
}

const STEP_UP_REASONS = new Set(["REAUTHENTICATION_REQUIRED", "SECOND_FACTOR_REQUIRED"]);

/**
 * The account's second factors: an authenticator app, passkeys, recovery codes. Adding one right
 * after signing in needs nothing more; later (AUTHLITH_REAUTH_SECONDS), and for any removal, the
 * server asks for the password and/or a second factor, and the step-up form collects them.
 */
export function Security() {
  const { say, showError } = useMessage();
  const status = useQuery({ queryKey: ["mfa", "status"], queryFn: () => auth.mfa.status() });
  const [enrolment, setEnrolment] = useState<TotpEnrolment | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [pending, setPending] = useState<PendingChange | null>(null);
  useEffect(() => {
    if (status.error) showError(status.error);
  }, [status.error, status.errorUpdatedAt]);

  const mfa = status.data;
  const factorCount = (mfa?.totp.enabled ? 1 : 0) + (mfa?.passkeys.length ?? 0);

  /**
   * Runs a change with the proofs given so far; when the server wants more, asks for it in the
   * step-up form and runs the change again from there. Other refusals go to the caller.
   */
  async function attempt(title: string, run: (proof: StepUpProof) => Promise<void>, needs: Needs = { password: false, factor: false }) {
    say(null);
    const change: PendingChange = {
      title,
      needs,
      run: async (proof) => {
        await run(proof);
        setPending(null);
        await status.refetch();
      },
    };
    if (needs.password || needs.factor) return setPending(change);
    try {
      await change.run({});
    } catch (error) {
      const more = stepUpNeeds(error, change.needs, mfa?.enabled ?? false);
      if (!more) throw error;
      setPending({ ...change, needs: more });
      showError(error);
    }
  }

  /** Removing a factor always takes a second factor; removing the last one the password too. */
  const removal = (): Needs => ({ factor: true, password: factorCount <= 1 });

  return (
    <section id="security" data-testid="security" data-mfa-enabled={mfa ? String(mfa.enabled) : undefined}>
      <h2>Security</h2>
      <p id="mfa-summary">
        {!mfa ? "Loading…" : mfa.enabled ? "Two-step verification is on: signing in with your password also asks for a second factor." : "Two-step verification is off."}
      </p>

      {pending && mfa && <StepUp change={pending} status={mfa} onNeeds={(needs) => setPending({ ...pending, needs })} onCancel={() => setPending(null)} />}

      {codes && (
        <div id="recovery-codes-shown" data-testid="recovery-codes-shown" className="panel">
          <h3>Your recovery codes</h3>
          <p>Keep these somewhere safe: each one signs you in once if you lose your authenticator app or passkey. They are shown only now.</p>
          <ol id="recovery-codes" data-testid="recovery-codes">
            {codes.map((code) => (
              <li key={code}>
                <code>{code}</code>
              </li>
            ))}
          </ol>
          <button id="recovery-codes-done" type="button" onClick={() => setCodes(null)}>
            I have saved them
          </button>
        </div>
      )}

      <div id="totp" data-testid="totp" data-enabled={mfa ? String(mfa.totp.enabled) : undefined} className="panel">
        <h3>Authenticator app</h3>
        {mfa?.totp.enabled ? (
          <>
            <p>On since {new Date(mfa.totp.enabledAt!).toLocaleString()}.</p>
            <button
              id="totp-disable"
              type="button"
              onClick={() =>
                void attempt(
                  "Remove the authenticator app",
                  async (proof) => {
                    await auth.mfa.totp.disable(proof);
                    say("The authenticator app is removed.");
                  },
                  removal(),
                ).catch(showError)
              }
            >
              Remove the authenticator app
            </button>
          </>
        ) : enrolment ? (
          <>
            <p>Scan this code with your authenticator app, or type the key below into it by hand.</p>
            <img id="totp-qr" data-testid="totp-qr" src={enrolment.qrCode} alt="QR code to add this account to an authenticator app" width={200} height={200} />
            <p>
              Key: <code id="totp-secret" data-testid="totp-secret">{enrolment.secret}</code>
            </p>
            <Form
              id="totp-confirm"
              testid="totp-confirm-form"
              title="Enter the code the app shows"
              submit="Turn on"
              action={async ({ code = "" }) => {
                const { recoveryCodes } = await auth.mfa.totp.confirm(code);
                setEnrolment(null);
                if (recoveryCodes) setCodes(recoveryCodes);
                say("Your authenticator app is set up: signing in now asks for its code.");
                await status.refetch();
              }}
              after={
                <button id="totp-cancel" type="button" onClick={() => setEnrolment(null)}>
                  Cancel
                </button>
              }
            >
              <Field label="Code" name="code" inputMode="numeric" autoComplete="one-time-code" />
            </Form>
          </>
        ) : (
          <button
            id="totp-enroll"
            type="button"
            disabled={!mfa}
            onClick={() =>
              void attempt("Set up an authenticator app", async (proof) => {
                setEnrolment(await auth.mfa.totp.enroll(isEmpty(proof) ? undefined : proof));
              }).catch(showError)
            }
          >
            Set up an authenticator app
          </button>
        )}
      </div>

      <div id="passkeys" data-testid="passkeys" className="panel">
        <h3>Passkeys</h3>
        <ul id="passkey-list" data-testid="passkey-list">
          {mfa?.passkeys.map((passkey) => (
            <PasskeyItem
              key={passkey.id}
              passkey={passkey}
              onChanged={() => void status.refetch()}
              onDelete={() =>
                void attempt(
                  `Delete the passkey “${passkey.name}”`,
                  async (proof) => {
                    await auth.mfa.passkeys.delete(passkey.id, proof);
                    say(`The passkey “${passkey.name}” is deleted.`);
                  },
                  removal(),
                ).catch(showError)
              }
            />
          ))}
        </ul>
        <Form
          id="passkey-add"
          testid="passkey-add-form"
          title="Add a passkey"
          submit="Add a passkey"
          action={async ({ name = "" }) => {
            const label = name.trim();
            await attempt("Add a passkey", async (proof) => {
              const { passkey, recoveryCodes } = await auth.mfa.passkeys.add({ ...(label ? { name: label } : {}), ...proof });
              if (recoveryCodes) setCodes(recoveryCodes);
              say(`The passkey “${passkey.name}” is added.`);
            });
          }}
        >
          <Field label="Name (optional)" name="name" required={false} />
        </Form>
      </div>

      <div id="recovery" data-testid="recovery" className="panel">
        <h3>Recovery codes</h3>
        <p>
          <span id="recovery-left" data-count={mfa?.recoveryCodesLeft}>
            {mfa ? `${mfa.recoveryCodesLeft} unused recovery code(s) left.` : ""}
          </span>
        </p>
        <button
          id="recovery-regenerate"
          type="button"
          disabled={!mfa?.enabled}
          onClick={() =>
            void attempt("Make new recovery codes", async (proof) => {
              setCodes(await auth.mfa.recoveryCodes.regenerate(isEmpty(proof) ? undefined : proof));
              say("New recovery codes: the old ones no longer work.");
            }).catch(showError)
          }
        >
          Make new recovery codes
        </button>
      </div>
    </section>
  );
}

const isEmpty = (proof: StepUpProof) => Object.keys(proof).length === 0;

/** What a refusal asks for beyond `had`, or null when it is not a step-up refusal. */
function stepUpNeeds(error: unknown, had: Needs, enrolled: boolean): Needs | null {
  if (!AuthClientError.is(error, "forbidden") || !error.reason || !STEP_UP_REASONS.has(error.reason)) return null;
  // Without a recent sign-in an enrolled account needs both (the server checks the password first).
  if (error.reason === "REAUTHENTICATION_REQUIRED") return { password: true, factor: had.factor || enrolled };
  return { password: had.password, factor: true };
}

function PasskeyItem(props: { passkey: PasskeyInfo; onChanged(): void; onDelete(): void }) {
  const { passkey } = props;
  const { say } = useMessage();
  const [renaming, setRenaming] = useState(false);
  return (
    <li data-passkey-id={passkey.id} data-name={passkey.name}>
      <strong className="name">{passkey.name}</strong>
      <div className="meta">
        {`added ${new Date(passkey.createdAt).toLocaleString()} · ${passkey.lastUsedAt ? `last used ${new Date(passkey.lastUsedAt).toLocaleString()}` : "never used"} · ${
          passkey.deviceType === "multiDevice" ? "synced" : "this device only"
        }${passkey.backedUp ? ", backed up" : ""}`}
      </div>
      {renaming ? (
        <Form
          id={`rename-${passkey.id}`}
          testid="passkey-rename-form"
          title="Rename"
          submit="Save"
          action={async ({ name = "" }) => {
            await auth.mfa.passkeys.rename(passkey.id, name.trim());
            setRenaming(false);
            say(`The passkey is now called “${name.trim()}”.`);
            props.onChanged();
          }}
        >
          <Field label="New name" name="name" />
        </Form>
      ) : (
        <button className="rename" type="button" onClick={() => setRenaming(true)}>
          Rename
        </button>
      )}
      <button
        className="delete"
        type="button"
        onClick={props.onDelete}
      >
        Delete
      </button>
    </li>
  );
}

/** Collects the proofs a change needs: the password and/or a second factor (a code, a recovery code, a passkey). */
function StepUp(props: { change: PendingChange; status: MfaStatus; onNeeds(needs: Needs): void; onCancel(): void }) {
  const { change, status } = props;
  const { say, showError } = useMessage();
  const [useRecovery, setUseRecovery] = useState(!status.totp.enabled);
  const [busy, setBusy] = useState(false);

  async function submit(form: HTMLFormElement, factor: StepUpProof) {
    for (const slot of form.querySelectorAll<HTMLElement>("[data-field-error]")) slot.textContent = "";
    say(null);
    const password = change.needs.password ? String(new FormData(form).get("password") ?? "") : undefined;
    if (password === "") {
      // Checked here: a passkey would otherwise be asked for before the server says no.
      form.querySelector<HTMLElement>("[data-field-error='password']")!.textContent = "Enter your password.";
      return say("Please correct the highlighted fields.", "validation");
    }
    setBusy(true);
    try {
      await change.run({ ...(password !== undefined ? { password } : {}), ...factor });
    } catch (error) {
      // The server wants more than it was given (e.g. a second factor after the password).
      const more = stepUpNeeds(error, change.needs, status.enabled);
      if (more && (more.password !== change.needs.password || more.factor !== change.needs.factor)) props.onNeeds(more);
      showError(error, form);
    } finally {
      setBusy(false);
    }
  }

  function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const fields = new FormData(event.currentTarget);
    const factor: StepUpProof = !change.needs.factor
      ? {}
      : useRecovery
        ? { recoveryCode: String(fields.get("recoveryCode") ?? "") }
        : { code: String(fields.get("code") ?? "") };
    void submit(event.currentTarget, factor);
  }

  return (
    <form id="step-up" data-testid="step-up-form" className="panel" noValidate onSubmit={onSubmit} data-needs={[change.needs.password && "password", change.needs.factor && "factor"].filter(Boolean).join(" ")}>
      <h3>Confirm it is you</h3>
      <p>{change.title}: the server needs to check it is really you.</p>
      {change.needs.password && <Field label="Your password" name="password" type="password" autoComplete="current-password" />}
      {change.needs.factor &&
        (useRecovery ? (
          <Field key="recoveryCode" label="A recovery code" name="recoveryCode" autoComplete="off" />
        ) : (
          <Field key="code" label="Code from your authenticator app" name="code" inputMode="numeric" autoComplete="one-time-code" />
        ))}
      <button type="submit" disabled={busy}>
        Confirm
      </button>
      {change.needs.factor && status.totp.enabled && (
        <button id="step-up-switch" type="button" onClick={() => setUseRecovery(!useRecovery)}>
          {useRecovery ? "Use your authenticator app" : "Use a recovery code"}
        </button>
      )}
      {change.needs.factor && status.passkeys.length > 0 && (
        <button
          id="step-up-passkey"
          type="button"
          disabled={busy}
          onClick={(event) => void submit(event.currentTarget.form!, { passkey: true })}
        >
          Use a passkey
        </button>
      )}
      <button id="step-up-cancel" type="button" onClick={props.onCancel}>
        Cancel
      </button>
    </form>
  );
}
