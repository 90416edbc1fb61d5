export { createVerifier, AccessTokenError, type AccessTokenClaims, type AccessTokenErrorCode, type Verifier, type VerifierOptions } from "./verifier.js";
