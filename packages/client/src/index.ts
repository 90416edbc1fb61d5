export { createAuthClient } from "./client.js";
export type { AuthClient, AuthClientOptions, AuthSession, AuthSnapshot, SessionEvent, SignedOutReason } from "./client.js";
export { AuthClientError } from "./errors.js";
export type { AuthErrorKind } from "./errors.js";
export { memoryStorage } from "./storage.js";
export type { TokenStorage } from "./storage.js";
export type { LoginInput, Me, RegisterInput, RegisterResult, SessionInfo, TokenResponse, User } from "./types.js";
export { authLink, authHeaders, type AccessTokenSource } from "./link.js";
export type { AppRouter } from "./router.js";
