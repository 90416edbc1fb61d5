import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";

/**
 * Encryption at rest for second-factor secrets (TOTP seeds): AES-256-GCM under a key derived with
 * HKDF-SHA256 from a server secret, each ciphertext tagged with its key's id. The first secret
 * encrypts; every listed one decrypts, so a secret can rotate: add the new one first, and each
 * secret is re-encrypted under it the next time it is used (docs/security.md §27).
 */
export interface SecretBox {
  /** The id of the key that encrypts. */
  readonly keyId: string;
  /** `iv ‖ ciphertext ‖ tag`, bound to `context` (the owner's id) as associated data. */
  seal(plaintext: Uint8Array, context: string): Buffer;
  /** The plaintext, or null if the key is unknown or the ciphertext or its context do not check out. */
  open(sealed: Uint8Array, keyId: string, context: string): Buffer | null;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
const INFO = "authlith mfa secret encryption v1";

export function createSecretBox(secrets: readonly Uint8Array[]): SecretBox {
  if (secrets.length === 0) throw new Error("secret box: at least one secret is required");
  const keys = secrets.map((secret) => {
    if (secret.length < 32) throw new Error("secret box: each secret must be at least 32 bytes");
    const key = Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), INFO, 32));
    // A fingerprint of the derived key: names it without revealing anything usable.
    const id = createHash("sha256").update("key id\n").update(key).digest("base64url").slice(0, 12);
    return { id, key };
  });
  const byId = new Map(keys.map((entry) => [entry.id, entry.key]));
  const current = keys[0]!;
  return {
    keyId: current.id,
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", current.key, iv);
      cipher.setAAD(Buffer.from(context));
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return Buffer.concat([iv, body, cipher.getAuthTag()]);
    },
    open(sealed, keyId, context) {
      const key = byId.get(keyId);
      if (!key || sealed.length < IV_BYTES + TAG_BYTES) return null;
      const bytes = Buffer.from(sealed);
      try {
        const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, IV_BYTES));
        decipher.setAAD(Buffer.from(context));
        decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
        return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]);
      } catch {
        return null;
      }
    },
  };
}
