/**
 * The server's router type, for `createTRPCClient<AppRouter>` and tRPC's framework integrations.
 * In this repository it is the server's own; the published package carries a generated copy that
 * needs nothing but `@trpc/server`'s types (scripts/build.ts), so an app can import it from
 * `@authlith/client/router` without any server code or types.
 */
export type { AppRouter } from "@authlith/functions/router";
