import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** 32 bytes from the CSPRNG: the entropy of every secret token this service issues. */
export const TOKEN_SECRET_BYTES = 32;

export function randomSecret(bytes = TOKEN_SECRET_BYTES): Buffer {
  return randomBytes(bytes);
}

export function sha256(data: Uint8Array | string): Buffer {
  return createHash("sha256").update(data).digest();
}

export function hmacSha256(key: Uint8Array, ...parts: (Uint8Array | string)[]): Buffer {
  const mac = createHmac("sha256", key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** Constant-time comparison; different lengths are simply unequal. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export const toBase64Url = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64url");

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Strict base64url decoding: returns null for any character outside the alphabet. */
export function fromBase64Url(text: string): Buffer | null {
  if (!BASE64URL.test(text)) return null;
  return Buffer.from(text, "base64url");
}
