import type { InputOf, OutputOf } from "./rpc.js";

// The public shapes, derived from the server's router. The published declarations carry them
// expanded (scripts/build.ts), so an app that installs the client needs no server types.

/** What register, login and refresh answer. `refreshToken` only with the token transport. */
export type TokenResponse = OutputOf<"auth", "login">;
/** The signed-in user. */
export type User = TokenResponse["user"];
/** `auth.me`: the user and session as the access token says. */
export type Me = OutputOf<"auth", "me">;
/** One of the user's sessions, as `sessions.list()` shows it. */
export type SessionInfo = OutputOf<"session", "list">["sessions"][number];
/** `register()`: email, password (8–256 characters) and an optional name. */
export type RegisterInput = InputOf<"auth", "register">;
/** `login()`: email and password. */
export type LoginInput = InputOf<"auth", "login">;
/**
 * What `register()` resolves to: signed in at once (email verification off), or, with it on (the
 * server's default), a link was mailed and nobody is signed in. With verification on the answer is
 * the same whether or not the address already had an account (its owner is mailed instead).
 */
export type RegisterResult = ({ status: "signed_in" } & TokenResponse) | { status: "verification_required" };
