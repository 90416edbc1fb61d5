import { bytesEqual, fromBase64Url, hmacSha256, randomSecret, toBase64Url } from "./crypto";

/**
 * Known-device tokens (docs/security.md §10: "locking must not become a weapon"). A successful sign-in
 * hands the device a token bound to that account; later sign-in attempts that carry it count
 * against the device's own failure budget instead of the account's, so an attacker hammering the
 * account from elsewhere cannot lock out a device that has signed in before. Forging one needs the
 * server key; a stolen one only buys its own (equally limited) budget.
 *
 * Wire format: base64url( device id (16) ‖ issued at (uint32 s) ‖ account binding (16) ‖ tag (16) ).
 */
const ID_BYTES = 16;
const BINDING_BYTES = 16;
const TAG_BYTES = 16;
const BODY_BYTES = ID_BYTES + 4 + BINDING_BYTES;
const TOKEN_BYTES = BODY_BYTES + TAG_BYTES;
const TOKEN_LENGTH = Math.ceil((TOKEN_BYTES * 4) / 3);
/** A device that has not signed in for this long is a stranger again. */
export const DEVICE_TOKEN_TTL_SECONDS = 365 * 24 * 3600;

const binding = (hmacKey: Uint8Array, subject: string) =>
  hmacSha256(hmacKey, "authlith/device-binding/v1\0", subject).subarray(0, BINDING_BYTES);
const tagOf = (hmacKey: Uint8Array, body: Uint8Array) => hmacSha256(hmacKey, "authlith/device/v1\0", body).subarray(0, TAG_BYTES);

/** A new device token for the account `subject` (see `emailSubject`). */
export function issueDeviceToken(hmacKey: Uint8Array, subject: string, nowMs: number, deviceId?: string): string {
  const bytes = Buffer.alloc(TOKEN_BYTES);
  (deviceId ? Buffer.from(deviceId, "hex") : randomSecret(ID_BYTES)).copy(bytes, 0, 0, ID_BYTES);
  bytes.writeUInt32BE(Math.floor(nowMs / 1000), ID_BYTES);
  binding(hmacKey, subject).copy(bytes, ID_BYTES + 4);
  tagOf(hmacKey, bytes.subarray(0, BODY_BYTES)).copy(bytes, BODY_BYTES);
  return toBase64Url(bytes);
}

/** The device id of a genuine, unexpired token bound to `subject`; null for anything else. */
export function verifyDeviceToken(hmacKey: Uint8Array, text: string, subject: string, nowMs: number): string | null {
  if (text.length !== TOKEN_LENGTH) return null;
  const bytes = fromBase64Url(text);
  if (!bytes || bytes.length !== TOKEN_BYTES || toBase64Url(bytes) !== text) return null;
  if (!bytesEqual(tagOf(hmacKey, bytes.subarray(0, BODY_BYTES)), bytes.subarray(BODY_BYTES))) return null;
  if (!bytesEqual(binding(hmacKey, subject), bytes.subarray(ID_BYTES + 4, BODY_BYTES))) return null;
  const issuedAtMs = bytes.readUInt32BE(ID_BYTES) * 1000;
  if (issuedAtMs > nowMs + 60_000 || nowMs - issuedAtMs > DEVICE_TOKEN_TTL_SECONDS * 1000) return null;
  return bytes.subarray(0, ID_BYTES).toString("hex");
}
