import { bytesEqual, fromBase64Url, hmacSha256, randomSecret, sha256, TOKEN_SECRET_BYTES, toBase64Url } from "./crypto";
import { bytesToUuid, uuidToBytes } from "./ids";

/**
 * Refresh token wire format: base64url( session id (16 bytes) ‖ generation (uint32 BE) ‖ secret
 * (32 bytes) ‖ tag (16 bytes) ), 91 characters. The session id makes the look-up a primary-key
 * read; the secret has 256 bits from the CSPRNG (generation 0) or from HMAC (later generations);
 * only SHA-256(secret) is stored. The tag is a MAC under the server key over everything before it:
 * a token this service did not issue is refused in constant time, before any counter, query or
 * chain walk (so forged tokens naming a real session cannot spend its rate limit or CPU).
 *
 * Rotation derives the child from the parent under the same server key:
 *   secret[g+1] = HMAC-SHA256(hmacKey, "authlith/refresh/v1" ‖ sid ‖ g+1 ‖ secret[g])
 * so every concurrent refresh of one token computes the same child without reading anything first
 * (one SQL statement decides who rotates; the others recompute the same answer), an old token
 * without the server key reveals nothing about its children, and an older token can be proven to
 * belong to this session's chain by walking it forward, so only a genuine replay revokes a session.
 */
export interface RefreshToken {
  sessionId: string;
  generation: number;
  secret: Buffer;
}

const BODY_BYTES = 16 + 4 + TOKEN_SECRET_BYTES;
const TAG_BYTES = 16;
const TOKEN_BYTES = BODY_BYTES + TAG_BYTES;
export const REFRESH_TOKEN_LENGTH = Math.ceil((TOKEN_BYTES * 4) / 3);
const DERIVATION_LABEL = "authlith/refresh/v1";
const TAG_LABEL = "authlith/refresh-tag/v1";
/** Generations live in a Postgres `integer`; a session never gets near this (rate limits). */
export const MAX_GENERATION = 0x7fff_ffff;

const tagOf = (hmacKey: Uint8Array, body: Uint8Array) => hmacSha256(hmacKey, TAG_LABEL, body).subarray(0, TAG_BYTES);

export function encodeRefreshToken(hmacKey: Uint8Array, token: RefreshToken): string {
  const bytes = Buffer.alloc(TOKEN_BYTES);
  uuidToBytes(token.sessionId).copy(bytes, 0);
  bytes.writeUInt32BE(token.generation, 16);
  token.secret.copy(bytes, 20);
  tagOf(hmacKey, bytes.subarray(0, BODY_BYTES)).copy(bytes, BODY_BYTES);
  return toBase64Url(bytes);
}

/** Parses and authenticates the wire format; null for anything this service did not issue. */
export function decodeRefreshToken(hmacKey: Uint8Array, text: string): RefreshToken | null {
  if (text.length !== REFRESH_TOKEN_LENGTH) return null;
  const bytes = fromBase64Url(text);
  if (!bytes || bytes.length !== TOKEN_BYTES) return null;
  // One spelling per token: base64url's last character carries unused bits that decoding ignores.
  if (toBase64Url(bytes) !== text) return null;
  const body = bytes.subarray(0, BODY_BYTES);
  if (!bytesEqual(tagOf(hmacKey, body), bytes.subarray(BODY_BYTES))) return null;
  const generation = bytes.readUInt32BE(16);
  if (generation >= MAX_GENERATION) return null;
  return {
    sessionId: bytesToUuid(bytes.subarray(0, 16)),
    generation,
    secret: Buffer.from(bytes.subarray(20, BODY_BYTES)),
  };
}

export function newRefreshToken(sessionId: string): RefreshToken {
  return { sessionId, generation: 0, secret: randomSecret() };
}

export const hashRefreshSecret = (secret: Uint8Array): Buffer => sha256(secret);

/** The token that rotating `parent` produces. */
export function deriveChild(hmacKey: Uint8Array, parent: RefreshToken): RefreshToken {
  const generation = parent.generation + 1;
  const generationBytes = Buffer.alloc(4);
  generationBytes.writeUInt32BE(generation);
  const secret = hmacSha256(hmacKey, DERIVATION_LABEL, uuidToBytes(parent.sessionId), generationBytes, parent.secret);
  return { sessionId: parent.sessionId, generation, secret };
}

/**
 * Walks `presented` forward to `currentGeneration` and reports whether it lands on the stored
 * hash, i.e. whether `presented` is a genuine ancestor of the session's current token. Returns the
 * descendant at `currentGeneration` when it does. Bounded by `maxSteps`.
 */
export function descendTo(
  hmacKey: Uint8Array,
  presented: RefreshToken,
  currentGeneration: number,
  currentHash: Uint8Array,
  maxSteps: number,
): RefreshToken | null {
  const steps = currentGeneration - presented.generation;
  if (steps < 1 || steps > maxSteps) return null;
  let token = presented;
  for (let i = 0; i < steps; i++) token = deriveChild(hmacKey, token);
  return bytesEqual(hashRefreshSecret(token.secret), currentHash) ? token : null;
}
