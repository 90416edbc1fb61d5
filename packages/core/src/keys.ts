import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type JsonWebKey, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import * as z from "zod/mini";
import "./zod";

export const SIGNING_ALGORITHMS = ["ES256", "RS256"] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] as const;

const SigningJwk = z
  .looseObject({
    kid: z.string().check(z.minLength(1), z.maxLength(128)),
    alg: z.enum(SIGNING_ALGORITHMS),
    kty: z.enum(["EC", "RSA"]),
    d: z.string().check(z.minLength(1)),
    /**
     * Unix seconds from which this key may sign. Until then it is only published, so verifiers
     * cache it before the first token signed with it arrives (docs/security.md §15). Absent: always.
     */
    active_from: z.optional(z.int().check(z.nonnegative())),
  })
  .check(
    z.refine((k) => (k.alg === "ES256" ? k.kty === "EC" && k.crv === "P-256" : k.kty === "RSA"), {
      message: "ES256 keys must be EC P-256 and RS256 keys RSA",
    }),
  );

/** The signing key set as stored in the secret: a JWK Set whose keys include their private part. */
export const SigningKeySetSchema = z.looseObject({ keys: z.array(SigningJwk).check(z.minLength(1)) });
export type SigningKeySetJson = z.infer<typeof SigningKeySetSchema>;

interface LoadedKey {
  kid: string;
  alg: SigningAlgorithm;
  activeFromMs: number;
  /** node:crypto key: signing is synchronous, without WebCrypto's thread-pool round trip. */
  privateKey: KeyObject;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export interface KeySet {
  /** The key that signs now: the most recently activated key of the configured algorithm. */
  signingKey(nowMs: number): { kid: string; alg: SigningAlgorithm; key: KeyObject };
  /** Public key for a `kid` if that key is published at `nowMs`, else undefined. */
  verificationKey(kid: string, nowMs: number): { alg: SigningAlgorithm; key: CryptoKey } | undefined;
  /** The public JWK Set to publish at `nowMs`. */
  publicJwks(nowMs: number): { keys: JWK[] };
  /** Algorithms of the loaded keys: the verifier's allowlist. */
  readonly algorithms: SigningAlgorithm[];
}

/**
 * The private half as a node:crypto key, proven to belong to the published half: a probe signed
 * with it must verify under the JWK's own public members (node:crypto takes `x`/`y` as given and
 * does not check them against `d`), so a damaged or mismatched key is refused at start-up instead
 * of signing tokens nobody can verify.
 */
function signingKeyObject(kid: string, alg: SigningAlgorithm, jwk: Record<string, unknown>): KeyObject {
  const publicMembers = alg === "ES256" ? { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y } : { kty: "RSA", n: jwk.n, e: jwk.e };
  let privateKey: KeyObject | undefined;
  let valid = false;
  try {
    privateKey = createPrivateKey({ key: jwk as JsonWebKey, format: "jwk" });
    const publicKey = createPublicKey({ key: publicMembers as JsonWebKey, format: "jwk" });
    const probe = randomBytes(32);
    const dsaEncoding = "ieee-p1363" as const;
    const signature = sign("sha256", probe, alg === "ES256" ? { key: privateKey, dsaEncoding } : privateKey);
    // jose, which verifies, refuses RSA keys under 2048 bits: refuse them here rather than sign
    // tokens nobody accepts.
    const strongEnough = alg === "ES256" || (privateKey.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048;
    valid =
      strongEnough &&
      privateKey.asymmetricKeyType === (alg === "ES256" ? "ec" : "rsa") &&
      verify("sha256", probe, alg === "ES256" ? { key: publicKey, dsaEncoding } : publicKey, signature);
  } catch {
    valid = false;
  }
  if (!valid || !privateKey) {
    throw new Error(`signing key set: key "${kid}" is not a valid ${alg} private key for its public part (RSA: at least 2048 bits)`);
  }
  return privateKey;
}

/**
 * Loads the signing key set once per cold start. Publication rule: a key is published from the
 * moment it is in the set until `retainAfterSupersededMs` after a newer key took over signing,
 * i.e. until every token it signed has expired. Removing the old key from the secret afterwards is
 * tidy-up, not a requirement.
 */
export async function loadKeySet(
  json: unknown,
  options: { signingAlg: SigningAlgorithm; retainAfterSupersededMs: number },
): Promise<KeySet> {
  const parsed = SigningKeySetSchema.parse(json);
  const kids = new Set<string>();
  const loaded: LoadedKey[] = [];
  for (const jwk of parsed.keys) {
    if (kids.has(jwk.kid)) throw new Error(`signing key set: duplicate kid "${jwk.kid}"`);
    kids.add(jwk.kid);
    const { active_from, ...rest } = jwk;
    const publicJwk: JWK = { ...rest };
    for (const member of PRIVATE_MEMBERS) delete publicJwk[member];
    delete publicJwk.key_ops;
    delete publicJwk.ext;
    const privateKey = signingKeyObject(jwk.kid, jwk.alg, rest);
    const publicKey = await importJWK(publicJwk, jwk.alg);
    loaded.push({
      kid: jwk.kid,
      alg: jwk.alg,
      activeFromMs: (active_from ?? 0) * 1000,
      privateKey,
      publicKey: publicKey as CryptoKey,
      publicJwk: { ...publicJwk, use: "sig" },
    });
  }
  const signers = loaded
    .filter((k) => k.alg === options.signingAlg)
    .sort((a, b) => a.activeFromMs - b.activeFromMs);
  if (signers.length === 0) throw new Error(`signing key set: no ${options.signingAlg} key`);

  const currentSigner = (nowMs: number) => {
    let current: LoadedKey | undefined;
    for (const key of signers) if (key.activeFromMs <= nowMs) current = key;
    return current;
  };
  // A signer stops being published once its successor has been active for the retention time.
  // A successor without `active_from` took over at an unknown moment: the old key stays
  // published until an operator removes it, so its tokens never fail early.
  const isPublished = (key: LoadedKey, nowMs: number) => {
    const index = signers.indexOf(key);
    if (index === -1) return true; // keys of another algorithm are published (pre-announced rollover)
    const successor = signers[index + 1];
    if (!successor || successor.activeFromMs === 0) return true;
    return successor.activeFromMs + options.retainAfterSupersededMs > nowMs;
  };
  const byKid = new Map(loaded.map((k) => [k.kid, k]));

  return {
    algorithms: [...new Set(loaded.map((k) => k.alg))],
    signingKey(nowMs) {
      const key = currentSigner(nowMs);
      if (!key) throw new Error("signing key set: no key is active yet");
      return { kid: key.kid, alg: key.alg, key: key.privateKey };
    },
    verificationKey(kid, nowMs) {
      const key = byKid.get(kid);
      return key && isPublished(key, nowMs) ? { alg: key.alg, key: key.publicKey } : undefined;
    },
    publicJwks(nowMs) {
      return { keys: loaded.filter((k) => isPublished(k, nowMs)).map((k) => k.publicJwk) };
    },
  };
}

/**
 * Generates a signing key (for the dev server, tests and the key-generation script). The `kid`
 * is the RFC 7638 thumbprint, so it is stable and reveals nothing.
 */
export async function generateSigningKey(
  alg: SigningAlgorithm,
  options: { activeFromSeconds?: number } = {},
): Promise<SigningKeySetJson["keys"][number]> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return {
    ...jwk,
    kid,
    alg,
    kty: jwk.kty as "EC" | "RSA",
    d: jwk.d!,
    use: "sig",
    ...(options.activeFromSeconds === undefined ? {} : { active_from: options.activeFromSeconds }),
  };
}
