import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { isoCBOR } from "@simplewebauthn/server/helpers";

/**
 * A software WebAuthn authenticator for tests in Node: it answers `navigator.credentials.create`
 * and `.get` options as a browser would hand them to a page (the JSON forms), with an ES256 key,
 * "none" attestation, and a signature counter the test can set (to play a cloned authenticator).
 * Browser tests use Chromium's own virtual authenticator instead.
 */
export interface SoftCredential {
  id: Buffer;
  key: KeyObject;
  userHandle: string;
  counter: number;
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");
const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest();

export interface AuthenticatorOptions {
  origin: string;
  /** User verification (PIN, biometrics) performed: the UV flag. */
  userVerified?: boolean;
  /** A synced passkey (backup eligible and backed up) rather than a device-bound one. */
  synced?: boolean;
  /** Counter step per use; 0 for an authenticator that keeps no counter. */
  counterStep?: number;
}

export function softAuthenticator(options: AuthenticatorOptions) {
  const credentials: SoftCredential[] = [];
  const flags = (attested: boolean) =>
    0x01 | (options.userVerified === false ? 0 : 0x04) | (options.synced ? 0x18 : 0) | (attested ? 0x40 : 0);
  const clientData = (type: string, challenge: string, origin = options.origin) =>
    Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));

  return {
    credentials,
    /** Answers creation options (`PublicKeyCredentialCreationOptionsJSON`). */
    create(creation: { challenge: string; rp: { id?: string }; user: { id: string } }, override: { origin?: string } = {}) {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const jwk = publicKey.export({ format: "jwk" });
      const cose = isoCBOR.encode(
        new Map<number, number | Uint8Array>([
          [1, 2],
          [3, -7],
          [-1, 1],
          [-2, Buffer.from(jwk.x!, "base64url")],
          [-3, Buffer.from(jwk.y!, "base64url")],
        ]),
      );
      const id = randomBytes(16);
      const counter = 0;
      const authData = Buffer.concat([
        sha256(creation.rp.id!),
        Buffer.from([flags(true)]),
        u32(counter),
        Buffer.alloc(16), // AAGUID: none
        Buffer.from([0, id.length]),
        id,
        Buffer.from(cose),
      ]);
      const attestationObject = isoCBOR.encode(new Map<string, unknown>([["fmt", "none"], ["attStmt", new Map()], ["authData", authData]]) as never);
      credentials.push({ id, key: privateKey, userHandle: creation.user.id, counter });
      return {
        id: b64(id),
        rawId: b64(id),
        type: "public-key" as const,
        response: {
          clientDataJSON: b64(clientData("webauthn.create", creation.challenge, override.origin)),
          attestationObject: b64(attestationObject),
          transports: ["internal"],
        },
        clientExtensionResults: {},
        authenticatorAttachment: "platform" as const,
      };
    },
    /** Answers request options (`PublicKeyCredentialRequestOptionsJSON`) with a credential it holds. */
    get(request: { challenge: string; rpId?: string }, override: { credential?: SoftCredential; counter?: number; origin?: string } = {}) {
      const credential = override.credential ?? credentials[credentials.length - 1]!;
      credential.counter = override.counter ?? credential.counter + (options.counterStep ?? 1);
      const authData = Buffer.concat([sha256(request.rpId!), Buffer.from([flags(false)]), u32(credential.counter)]);
      const clientDataJSON = clientData("webauthn.get", request.challenge, override.origin);
      const signature = sign("sha256", Buffer.concat([authData, sha256(clientDataJSON)]), credential.key);
      return {
        id: b64(credential.id),
        rawId: b64(credential.id),
        type: "public-key" as const,
        response: {
          clientDataJSON: b64(clientDataJSON),
          authenticatorData: b64(authData),
          signature: b64(signature),
          userHandle: credential.userHandle,
        },
        clientExtensionResults: {},
        authenticatorAttachment: "platform" as const,
      };
    },
  };
}

function u32(value: number) {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}
