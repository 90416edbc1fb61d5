export { CHALLENGE_ID_PATTERN } from "./challenges";
export type { FactorMethod, SecondFactorProof } from "./factors";
export {
  deletePasskey,
  disableTotp,
  listPasskeys,
  mfaStatus,
  passkeyRegistrationOptions,
  regenerateRecoveryCodes,
  renamePasskey,
  stepUpOptions,
  verifyPasskeyRegistration,
  type MfaStatus,
  type PasskeyInfo,
  type VerifyRegistrationError,
} from "./manage";
export { RECOVERY_CODE_COUNT } from "./recovery-codes";
export { passkeyLogin, passkeyLoginOptions, verifyMfa, type MfaRequired, type PasskeyLoginError, type SignedIn, type VerifyMfaError } from "./sign-in";
export type { StepUpError, StepUpInput, StepUpProof } from "./step-up";
export { confirmTotp, enrollTotp, type ConfirmTotpError, type EnrollTotpError, type TotpEnrolment } from "./totp";
export { createSecretBox, type SecretBox } from "./secret-box";
export type { AuthenticationResponseJSON, PasskeyCreationOptions, PasskeyRequestOptions, RegistrationResponseJSON } from "./webauthn";
