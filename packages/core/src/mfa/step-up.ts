import { sql, type SQL } from "drizzle-orm";
import { checkPassword, type PasswordCheckError } from "../account-changes";
import { queryRows, toNumber } from "../db/client";
import type { Deps, RequestMeta } from "../deps";
import { fail, ok, type Result } from "../result";
import { consumeChallenge } from "./challenges";
import { checkFactor, clearMfaBudgetSql, methodOf, recordFactorFailure, spendMfaBudget, type FactorMethod, type SecondFactorProof } from "./factors";
import type { AuthenticationResponseJSON } from "./webauthn";

/**
 * Proofs for changing an account's second factors (docs/security.md §42). Adding a factor or new
 * recovery codes takes a recent sign-in, or else the password and, on an account that already
 * has a factor, a second factor too: recovery codes minted with a password alone would turn a
 * stolen password into a bypass. Removing a factor always takes a second factor, and removing the
 * last one the password as well.
 */
export type StepUpProof =
  | { code: string }
  | { recoveryCode: string }
  | { passkey: { challengeId: string; response: AuthenticationResponseJSON } };

export interface StepUpInput {
  userId: string;
  sessionId: string;
  authTime: number;
  password?: string | undefined;
  proof?: StepUpProof | undefined;
}

export type StepUpError = PasswordCheckError | "REAUTHENTICATION_REQUIRED" | "SECOND_FACTOR_REQUIRED" | "INVALID_CODE" | "INVALID_CHALLENGE";

export interface Authorized {
  owner: { id: string; email: string; name: string | null };
  factors: { totp: boolean; passkeys: number };
  /** A CTE body with the owner's `user_id` (the change's statements read it as `factor`). */
  factor: SQL;
  method: FactorMethod | null;
}

/** A change's rule: who may add (`"add"`), remove (`"remove"`), or remove the last factor (`"remove_last"`). */
export type ChangeKind = "add" | "remove" | "remove_last";

/**
 * Checks the proofs a change of second factors needs, and spends the second factor given.
 * `refuse` says, from the account's factors, why the change cannot happen at all (e.g. removing
 * an app that is not there): it is asked before any proof is checked or spent, so a change that
 * is refused never costs the user a recovery code, a TOTP step or a passkey use.
 */
export async function authorizeMfaChange<Refusal extends string = never>(
  deps: Deps,
  meta: RequestMeta,
  input: StepUpInput,
  kind: ChangeKind | ((factors: Authorized["factors"]) => ChangeKind),
  refuse?: (factors: Authorized["factors"]) => Refusal | null,
): Promise<Result<Authorized, StepUpError | Refusal>> {
  const [row] = await queryRows<{ id: string; email: string; name: string | null; totp: boolean; passkeys: number | string }>(
    deps.db,
    sql`SELECT id, email, name,
        EXISTS (SELECT 1 FROM totp_factors t WHERE t.user_id = users.id AND t.confirmed_at IS NOT NULL) AS totp,
        (SELECT count(*) FROM passkeys p WHERE p.user_id = users.id) AS passkeys
      FROM users WHERE id = ${input.userId}::uuid AND disabled_at IS NULL`,
  );
  if (!row) return fail("REAUTHENTICATION_REQUIRED");
  const owner = { id: row.id, email: row.email, name: row.name };
  const factors = { totp: row.totp, passkeys: toNumber(row.passkeys) };
  const refusal = refuse?.(factors);
  if (refusal) return fail(refusal);
  const rule = typeof kind === "function" ? kind(factors) : kind;
  const recent = deps.clock.now() - input.authTime <= deps.config.reauthSeconds * 1000;
  const enrolled = factors.totp || factors.passkeys > 0;

  // A proof that is given is checked even where none is needed: a wrong one never passes.
  if ((rule === "remove_last" || !recent) && input.password === undefined) return fail("REAUTHENTICATION_REQUIRED");
  if (input.password !== undefined) {
    const checked = await checkPassword(deps, input.userId, input.password);
    if (!checked.ok) return checked;
  }
  const needsFactor = rule !== "add" || (enrolled && !recent);
  if (needsFactor && !input.proof) return fail("SECOND_FACTOR_REQUIRED");
  if (!input.proof) return ok({ owner, factors, factor: sql`SELECT ${owner.id}::uuid AS user_id`, method: null });
  const proved = await proveSecondFactor(deps, meta, owner, input.proof);
  if (!proved.ok) return proved;
  // The proof is spent before the change, in its own statement: a change that touches the same
  // row (removing the app a code came from) could not see that row's update in one statement.
  const [spent] = await queryRows<{ used: number | string }>(
    deps.db,
    sql`WITH used AS (${proved.value.use}), cleared AS (${clearMfaBudgetSql(owner.id, sql`EXISTS (SELECT 1 FROM used)`)})
      SELECT count(*) AS used FROM used`,
  );
  if (toNumber(spent?.used ?? 0) === 0) return fail("INVALID_CODE");
  return ok({ owner, factors, factor: sql`SELECT ${owner.id}::uuid AS user_id`, method: proved.value.method });
}

/** Checks a signed-in user's second factor (codes spend the account's budget). */
async function proveSecondFactor(
  deps: Deps,
  meta: RequestMeta,
  owner: { id: string; email: string },
  proof: StepUpProof,
): Promise<Result<{ use: SQL; method: FactorMethod }, "INVALID_CODE" | "INVALID_CHALLENGE" | "RATE_LIMITED">> {
  let factorProof: SecondFactorProof;
  let webauthnChallenge: string | null = null;
  let budgetAttempts: number | null = null;
  if ("passkey" in proof) {
    const challenge = await consumeChallenge(deps, proof.passkey.challengeId, "step_up", owner.id);
    // Spent, expired or someone else's: ask for a fresh one (mfa.stepUpOptions), not a new code.
    if (!challenge) return fail("INVALID_CHALLENGE");
    webauthnChallenge = challenge.webauthn_challenge;
    factorProof = { passkey: proof.passkey.response };
  } else {
    const budget = await spendMfaBudget(deps, owner.id);
    if (!budget.ok) return fail("RATE_LIMITED", budget.retryAfterSeconds);
    budgetAttempts = budget.attempts;
    factorProof = proof;
  }
  const checked = await checkFactor(deps, owner.id, factorProof, webauthnChallenge);
  if (!checked.ok) {
    await recordFactorFailure(deps, meta, owner, methodOf(factorProof), budgetAttempts, checked.cloned);
    return fail("INVALID_CODE");
  }
  return ok({ use: checked.use, method: checked.method });
}
