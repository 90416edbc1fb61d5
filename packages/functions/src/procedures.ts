import type {
  AnyTRPCMutationProcedure,
  AnyTRPCProcedure,
  AnyTRPCQueryProcedure,
  AnyTRPCSubscriptionProcedure,
  TRPCProcedureType,
} from "@trpc/server";
import type { AppRouter } from "./router";

/**
 * Every procedure's path and type, for the fast HTTP path (http/trpc-fast.ts): the method a call
 * must use and whether a batch mixes types are decided before the procedure runs, and tRPC's
 * public API exposes a procedure's type only in TypeScript. This table is that type, written out:
 * it must list exactly the router's procedures with their types, or the build fails
 * (`ProcedureTypes<AppRouter>` below); the differential test then checks it against tRPC's own
 * adapter at run time.
 */
export const PROCEDURE_TYPES = {
  "account.changeEmail": "mutation",
  "account.changePassword": "mutation",
  "account.confirmEmailChange": "mutation",
  "account.delete": "mutation",
  "account.requestPasswordReset": "mutation",
  "account.resetPassword": "mutation",
  "account.requestVerification": "mutation",
  "account.verifyEmail": "mutation",
  "auth.register": "mutation",
  "auth.login": "mutation",
  "auth.refresh": "mutation",
  "auth.logout": "mutation",
  "auth.logoutAll": "mutation",
  "auth.me": "query",
  "auth.verifyMfa": "mutation",
  "auth.passkeyOptions": "mutation",
  "auth.passkeyLogin": "mutation",
  "mfa.status": "query",
  "mfa.stepUpOptions": "mutation",
  "mfa.totp.enroll": "mutation",
  "mfa.totp.confirm": "mutation",
  "mfa.totp.disable": "mutation",
  "mfa.recoveryCodes.regenerate": "mutation",
  "mfa.passkey.registrationOptions": "mutation",
  "mfa.passkey.verifyRegistration": "mutation",
  "mfa.passkey.list": "query",
  "mfa.passkey.rename": "mutation",
  "mfa.passkey.delete": "mutation",
  "session.list": "query",
  "session.revokeOthers": "mutation",
  "session.revoke": "mutation",
  "system.ping": "query",
} as const satisfies ProcedureTypes<AppRouter>;

// Compile-time completeness: the table has every path of the router (the `satisfies` above
// checks that each key it has is a procedure of that type and that none is missing).
type TypeOf<P> = P extends AnyTRPCQueryProcedure
  ? "query"
  : P extends AnyTRPCMutationProcedure
    ? "mutation"
    : P extends AnyTRPCSubscriptionProcedure
      ? "subscription"
      : never;

/** A router's own members that are not part of its record (its definition and caller factory). */
type RouterMember = `_${string}` | "createCaller";

interface Entry {
  path: string;
  type: TRPCProcedureType;
}

/** Nested routers are walked up to four levels deep. */
type Entries<R, Prefix extends string, Depth extends unknown[] = []> = Depth["length"] extends 4
  ? never
  : {
      [K in Exclude<keyof R & string, RouterMember>]: R[K] extends AnyTRPCProcedure
        ? { path: `${Prefix}${K}`; type: TypeOf<R[K]> }
        : Entries<R[K], `${Prefix}${K}.`, [...Depth, unknown]>;
    }[Exclude<keyof R & string, RouterMember>];

/** `{ "auth.login": "mutation", "auth.me": "query", ... }` for a router type. */
export type ProcedureTypes<R> = { [E in Extract<Entries<R, "">, Entry> as E["path"]]: E["type"] };

export type ProcedurePath = keyof typeof PROCEDURE_TYPES;

export const procedureTypeOf = (path: string): TRPCProcedureType | null =>
  Object.hasOwn(PROCEDURE_TYPES, path) ? PROCEDURE_TYPES[path as ProcedurePath] : null;
