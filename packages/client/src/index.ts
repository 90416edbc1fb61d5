export { createAuthClient } from "./client.js";
export type { AuthClient, AuthClientOptions, AuthSession, AuthSnapshot, SessionEvent, SignedOutReason } from "./client.js";
export { AuthClientError } from "./errors.js";
export type { AuthErrorKind } from "./errors.js";
export { memoryStorage } from "./storage.js";
export type { TokenStorage } from "./storage.js";
export type {
  LoginInput,
  LoginResult,
  Me,
  MfaChallenge,
  MfaMethod,
  MfaStatus,
  PasskeyInfo,
  RegisterInput,
  RegisterResult,
  SessionInfo,
  SignedIn,
  StepUpProof,
  TokenResponse,
  TotpEnrolment,
  User,
  VerifyMfaInput,
} from "./types.js";
export type { MfaSettings, MfaSignIn } from "./mfa.js";
export { authLink, authHeaders, type AccessTokenSource } from "./link.js";
export type { AppRouter } from "./router.js";
export { toAuthClientError } from "./trpc-errors.js";
