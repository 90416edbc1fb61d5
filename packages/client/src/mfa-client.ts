import type { MfaSettings, MfaSignIn } from "./mfa.js";
import { passkeyCeremonies, passkeyNotOffered } from "./passkeys.js";
import type { InputOf, Rpc } from "./rpc.js";
import type { SignedIn, StepUpProof, TokenResponse } from "./types.js";

/** An authenticated call: the session's access token, refreshed and retried once as the client does. */
type Authed = <T>(call: (accessToken: string) => Promise<T>) => Promise<T>;
/** Takes a sign-in's tokens as the session, as a login does. */
type SignIn = (tokens: TokenResponse) => Promise<SignedIn>;

/** The second step of a sign-in, and the passkey sign-in: each ends in `signIn`, like a login. */
export function createMfaSignIn(rpc: Rpc, signIn: SignIn): MfaSignIn {
  return {
    verifyMfa: async (input) => signIn(await rpc("mutation", "auth.verifyMfa", input)),
    async verifyMfaWithPasskey(challenge) {
      if (!challenge.passkeyOptions) throw passkeyNotOffered();
      const passkey = await (await passkeyCeremonies()).get(challenge.passkeyOptions);
      return signIn(await rpc("mutation", "auth.verifyMfa", { challengeId: challenge.challengeId, passkey }));
    },
    async signInWithPasskey() {
      const passkeys = await passkeyCeremonies();
      const { challengeId, options } = await rpc("mutation", "auth.passkeyOptions", undefined);
      const response = await passkeys.get(options);
      return signIn(await rpc("mutation", "auth.passkeyLogin", { challengeId, response }));
    },
  };
}

type StepUpInput = NonNullable<InputOf<"mfa.totp.enroll">>;

/**
 * A proof as the server takes it. `passkey: true` becomes a ceremony of its own: a challenge from
 * `mfa.stepUpOptions`, the browser's prompt, and the signed answer. It runs before the call it
 * proves, so a retried call (after a refresh) does not prompt twice.
 */
async function stepUpInput(rpc: Rpc, authed: Authed, proof: StepUpProof): Promise<StepUpInput> {
  const { password, code, recoveryCode, passkey } = proof;
  const input: StepUpInput = {
    ...(password !== undefined && { password }),
    ...(code !== undefined && { code }),
    ...(recoveryCode !== undefined && { recoveryCode }),
  };
  if (!passkey) return input;
  const passkeys = await passkeyCeremonies();
  const { challengeId, options } = await authed((token) => rpc("mutation", "mfa.stepUpOptions", undefined, token));
  return { ...input, passkey: { challengeId, response: await passkeys.get(options) } };
}

/** The signed-in user's second factors, through the client's authenticated calls. */
export function createMfaSettings(rpc: Rpc, authed: Authed): MfaSettings {
  /** `proof` made into the input, then the call with it. */
  const proven = async <T>(proof: StepUpProof | undefined, call: (input: StepUpInput | undefined, token: string) => Promise<T>) => {
    const input = proof ? await stepUpInput(rpc, authed, proof) : undefined;
    return authed((token) => call(input, token));
  };
  return {
    status: () => authed((token) => rpc("query", "mfa.status", undefined, token)),
    totp: {
      enroll: (proof) => proven(proof, (input, token) => rpc("mutation", "mfa.totp.enroll", input, token)),
      confirm: (code) =>
        authed((token) => rpc("mutation", "mfa.totp.confirm", { code }, token)).then((r) => ({ recoveryCodes: r.recoveryCodes })),
      disable: (proof) =>
        proven(proof, (input, token) => rpc("mutation", "mfa.totp.disable", input ?? {}, token)).then((r) => ({ mfaEnabled: r.mfaEnabled })),
    },
    recoveryCodes: {
      regenerate: (proof) =>
        proven(proof, (input, token) => rpc("mutation", "mfa.recoveryCodes.regenerate", input, token)).then((r) => r.recoveryCodes),
    },
    passkeys: {
      async add(options = {}) {
        const { name, ...proof } = options;
        const passkeys = await passkeyCeremonies();
        const { challengeId, options: creation } = await proven(proof, (input, token) =>
          rpc("mutation", "mfa.passkey.registrationOptions", input, token),
        );
        const response = await passkeys.create(creation);
        const added = await authed((token) =>
          rpc("mutation", "mfa.passkey.verifyRegistration", { challengeId, response, ...(name !== undefined && { name }) }, token),
        );
        return { passkey: added.passkey, recoveryCodes: added.recoveryCodes };
      },
      list: () => authed((token) => rpc("query", "mfa.passkey.list", undefined, token)).then((r) => r.passkeys),
      rename: (passkeyId, name) =>
        authed((token) => rpc("mutation", "mfa.passkey.rename", { passkeyId, name }, token)).then((r) => r.passkey),
      delete: (passkeyId, proof) =>
        proven(proof, (input, token) => rpc("mutation", "mfa.passkey.delete", { ...input, passkeyId }, token)).then((r) => ({
          mfaEnabled: r.mfaEnabled,
        })),
    },
  };
}
