import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { compactVerify, exportJWK, generateKeyPair } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { signCompact } from "./access-token";
import { generateSigningKey, loadKeySet, type SigningAlgorithm, type SigningKeySetJson } from "./keys";

type SigningJwk = SigningKeySetJson["keys"][number];

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const RETAIN_MS = 600_000;
const options = (signingAlg: "ES256" | "RS256" = "ES256", retainAfterSupersededMs = RETAIN_MS) => ({
  signingAlg,
  retainAfterSupersededMs,
});

// A whole second, so active_from (seconds) and nowMs (milliseconds) line up exactly.
const T0 = Math.floor(Date.now() / 1000) * 1000;
const T0S = T0 / 1000;

let es1: SigningJwk;
let es2: SigningJwk;
let rs1: SigningJwk;

beforeAll(async () => {
  [es1, es2, rs1] = await Promise.all([
    generateSigningKey("ES256"),
    generateSigningKey("ES256"),
    generateSigningKey("RS256"),
  ]);
});

const at = (key: SigningJwk, activeFromSeconds: number): SigningJwk => ({ ...key, active_from: activeFromSeconds });

/** Proves a private/public pair belong together: sign with one, verify with the other. */
async function signAndVerify(privateKey: KeyObject, publicKey: CryptoKey, alg: SigningAlgorithm): Promise<boolean> {
  const encode = (value: string) => Buffer.from(value).toString("base64url");
  const jws = signCompact(privateKey, alg, `${encode(JSON.stringify({ alg }))}.${encode(`probe-${Math.random()}`)}`);
  try {
    await compactVerify(jws, publicKey);
    return true;
  } catch {
    return false;
  }
}

describe("generateSigningKey", () => {
  it("generates an ES256 P-256 private JWK whose kid is its thumbprint", async () => {
    expect(es1).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
    expect(typeof es1.d).toBe("string");
    expect(es1.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(es1.kid).not.toBe(es2.kid);
    expect(es1).not.toHaveProperty("active_from");
  });

  it("generates an RS256 RSA private JWK of 2048 bits", () => {
    expect(rs1).toMatchObject({ kty: "RSA", alg: "RS256", use: "sig" });
    for (const member of ["n", "e", "d", "p", "q", "dp", "dq", "qi"]) expect(rs1).toHaveProperty(member);
    expect(Buffer.from(rs1.n as string, "base64url")).toHaveLength(256);
  });

  it("records active_from when asked", async () => {
    const key = await generateSigningKey("ES256", { activeFromSeconds: 1234 });
    expect(key.active_from).toBe(1234);
  });
});

describe("loadKeySet", () => {
  it("loads a single ES256 key that signs and verifies", async () => {
    const set = await loadKeySet({ keys: [es1] }, options());
    expect(set.algorithms).toEqual(["ES256"]);
    const signing = set.signingKey(T0);
    expect(signing.kid).toBe(es1.kid);
    expect(signing.alg).toBe("ES256");
    expect(signing.key.type).toBe("private");
    expect(signing.key.asymmetricKeyType).toBe("ec");
    const verification = set.verificationKey(es1.kid, T0);
    expect(verification?.alg).toBe("ES256");
    expect(verification!.key.type).toBe("public");
    expect(await signAndVerify(signing.key, verification!.key, "ES256")).toBe(true);
  });

  it("loads a single RS256 key that signs and verifies", async () => {
    const set = await loadKeySet({ keys: [rs1] }, options("RS256"));
    expect(set.algorithms).toEqual(["RS256"]);
    const signing = set.signingKey(T0);
    expect(signing).toMatchObject({ kid: rs1.kid, alg: "RS256" });
    const verification = set.verificationKey(rs1.kid, T0);
    expect(await signAndVerify(signing.key, verification!.key, "RS256")).toBe(true);
  });

  it("a key's public half does not verify another key's signatures", async () => {
    const set = await loadKeySet({ keys: [es1, at(es2, T0S + 60)] }, options());
    const signing = set.signingKey(T0);
    expect(signing.kid).toBe(es1.kid);
    expect(await signAndVerify(signing.key, set.verificationKey(es1.kid, T0)!.key, "ES256")).toBe(true);
    expect(await signAndVerify(signing.key, set.verificationKey(es2.kid, T0)!.key, "ES256")).toBe(false);
  });

  it("signs with the configured algorithm in a mixed set and allows both for verification", async () => {
    const rsSigning = await loadKeySet({ keys: [es1, rs1] }, options("RS256"));
    expect(rsSigning.signingKey(T0)).toMatchObject({ kid: rs1.kid, alg: "RS256" });
    expect([...rsSigning.algorithms].sort()).toEqual(["ES256", "RS256"]);
    expect(rsSigning.publicJwks(T0).keys.map((k) => k.kid).sort()).toEqual([es1.kid, rs1.kid].sort());
    const esSigning = await loadKeySet({ keys: [rs1, es1] }, options("ES256"));
    expect(esSigning.signingKey(T0)).toMatchObject({ kid: es1.kid, alg: "ES256" });
    // The other algorithm's key stays published for verification.
    expect(esSigning.verificationKey(rs1.kid, T0 + 100 * RETAIN_MS)?.alg).toBe("RS256");
  });

  it("signs with the most recently activated key, whatever the order in the set", async () => {
    const old = at(es1, T0S - 1000);
    const current = at(es2, T0S - 100);
    const set = await loadKeySet({ keys: [current, old] }, options());
    expect(set.signingKey(T0).kid).toBe(es2.kid);
    expect(set.signingKey(T0 - 100_000).kid).toBe(es2.kid);
    expect(set.signingKey(T0 - 100_001).kid).toBe(es1.kid);
    expect(set.signingKey(T0 - 1_000_000).kid).toBe(es1.kid);
    const reversed = await loadKeySet({ keys: [old, current] }, options());
    expect(reversed.signingKey(T0).kid).toBe(es2.kid);
  });

  it("treats a key without active_from as active since the epoch", async () => {
    const set = await loadKeySet({ keys: [es1, at(es2, T0S)] }, options());
    expect(set.signingKey(0).kid).toBe(es1.kid);
    expect(set.signingKey(T0 - 1).kid).toBe(es1.kid);
    expect(set.signingKey(T0).kid).toBe(es2.kid);
  });

  it("keeps the old key published when its successor has no active_from (takeover time unknown)", async () => {
    const set = await loadKeySet({ keys: [es1, es2] }, options());
    const far = T0 + 365 * 24 * 3600 * 1000;
    expect(set.signingKey(far).kid).toBe(es2.kid);
    expect(set.publicJwks(far).keys.map((k) => k.kid).sort()).toEqual([es1.kid, es2.kid].sort());
    expect(set.verificationKey(es1.kid, far)).toBeDefined();
  });

  it("publishes a future key but does not sign with it until its time", async () => {
    const future = at(es2, T0S + 3600);
    const set = await loadKeySet({ keys: [at(es1, T0S - 3600), future] }, options());
    expect(set.publicJwks(T0).keys.map((k) => k.kid)).toContain(es2.kid);
    expect(set.verificationKey(es2.kid, T0)).toBeDefined();
    expect(set.signingKey(T0).kid).toBe(es1.kid);
    expect(set.signingKey(T0 + 3_600_000 - 1).kid).toBe(es1.kid);
    expect(set.signingKey(T0 + 3_600_000).kid).toBe(es2.kid);
  });

  it("refuses to sign when every key is still in the future", async () => {
    const set = await loadKeySet({ keys: [at(es1, T0S + 60)] }, options());
    expect(set.publicJwks(T0).keys).toHaveLength(1);
    expect(() => set.signingKey(T0)).toThrow(/no key is active/);
    expect(set.signingKey(T0 + 60_000).kid).toBe(es1.kid);
  });

  it("keeps a superseded key published until retainAfterSupersededMs after its successor activated", async () => {
    const successorFromMs = T0 + 60_000;
    const set = await loadKeySet({ keys: [at(es1, T0S - 60), at(es2, successorFromMs / 1000)] }, options());
    const kids = (nowMs: number) => set.publicJwks(nowMs).keys.map((k) => k.kid).sort();
    const both = [es1.kid, es2.kid].sort();

    expect(kids(T0)).toEqual(both);
    expect(kids(successorFromMs)).toEqual(both);
    expect(set.signingKey(successorFromMs).kid).toBe(es2.kid);
    expect(kids(successorFromMs + RETAIN_MS - 1)).toEqual(both);
    expect(set.verificationKey(es1.kid, successorFromMs + RETAIN_MS - 1)).toBeDefined();

    expect(kids(successorFromMs + RETAIN_MS)).toEqual([es2.kid]);
    expect(set.verificationKey(es1.kid, successorFromMs + RETAIN_MS)).toBeUndefined();
    expect(set.verificationKey(es1.kid, successorFromMs + 10 * RETAIN_MS)).toBeUndefined();
    // The successor itself stays, having no successor.
    expect(set.verificationKey(es2.kid, successorFromMs + 10 * RETAIN_MS)).toBeDefined();
  });

  it("retires each key of a three-key chain on its own successor's schedule", async () => {
    const es3 = await generateSigningKey("ES256");
    const set = await loadKeySet(
      { keys: [at(es3, T0S + 2000), at(es1, T0S), at(es2, T0S + 1000)] },
      options("ES256", 500_000),
    );
    const kids = (nowMs: number) => set.publicJwks(nowMs).keys.map((k) => k.kid).sort();
    expect(kids(T0)).toEqual([es1.kid, es2.kid, es3.kid].sort());
    expect(kids(T0 + 1_500_000)).toEqual([es2.kid, es3.kid].sort());
    expect(kids(T0 + 2_499_999)).toEqual([es2.kid, es3.kid].sort());
    expect(kids(T0 + 2_500_000)).toEqual([es3.kid]);
  });

  it("returns undefined for an unknown kid", async () => {
    const set = await loadKeySet({ keys: [es1] }, options());
    expect(set.verificationKey("no-such-kid", T0)).toBeUndefined();
    expect(set.verificationKey("", T0)).toBeUndefined();
    expect(set.verificationKey(es2.kid, T0)).toBeUndefined();
  });

  it("publicJwks never contains private members and marks every key use: sig", async () => {
    // Extra private members and key_ops in the input must not leak either.
    const noisyRs = { ...rs1, key_ops: ["sign"], ext: true, oth: [{ r: "x", d: "y", t: "z" }] };
    // And a key without `use` is still published with use: "sig".
    const { use: _use, ...es1WithoutUse } = es1;
    const set = await loadKeySet({ keys: [es1WithoutUse, noisyRs, at(es2, T0S + 60)] }, options("ES256"));
    const { keys } = set.publicJwks(T0);
    expect(keys).toHaveLength(3);
    for (const jwk of keys) {
      for (const member of PRIVATE_MEMBERS) expect(jwk, `${jwk.kid}.${member}`).not.toHaveProperty(member);
      expect(jwk).not.toHaveProperty("key_ops");
      expect(jwk).not.toHaveProperty("active_from");
      expect(jwk.use).toBe("sig");
      expect(typeof jwk.kid).toBe("string");
      expect(typeof jwk.alg).toBe("string");
    }
    const ec = keys.find((k) => k.kid === es1.kid)!;
    expect(ec).toMatchObject({ kty: "EC", crv: "P-256", x: es1.x, y: es1.y, alg: "ES256" });
    const rsa = keys.find((k) => k.kid === rs1.kid)!;
    expect(rsa).toMatchObject({ kty: "RSA", n: rs1.n, e: rs1.e, alg: "RS256" });
    // The serialized form carries no private material at all.
    const text = JSON.stringify(set.publicJwks(T0));
    for (const secret of [es1.d, es2.d, rs1.d, rs1.p, rs1.q, rs1.dp, rs1.dq, rs1.qi]) {
      expect(text).not.toContain(secret as string);
    }
  });

  it("does not mutate the input JSON", async () => {
    const input = { keys: [{ ...es1 }, { ...rs1 }] };
    const copy = structuredClone(input);
    const set = await loadKeySet(input, options());
    set.publicJwks(T0);
    expect(input).toEqual(copy);
  });

  it("rejects a duplicate kid", async () => {
    await expect(loadKeySet({ keys: [es1, { ...es2, kid: es1.kid }] }, options())).rejects.toThrow(/duplicate kid/);
    await expect(loadKeySet({ keys: [es1, es1] }, options())).rejects.toThrow(/duplicate kid/);
  });

  it("rejects an alg that does not match the key type", async () => {
    const mismatch = /ES256 keys must be EC P-256 and RS256 keys RSA/;
    await expect(loadKeySet({ keys: [{ ...rs1, alg: "ES256" }] }, options())).rejects.toThrow(mismatch);
    await expect(loadKeySet({ keys: [{ ...es1, alg: "RS256" }] }, options("RS256"))).rejects.toThrow(mismatch);
    await expect(loadKeySet({ keys: [{ ...es1, kty: "RSA" }] }, options())).rejects.toThrow(mismatch);
  });

  it("rejects an EC key on another curve labelled ES256", async () => {
    const { privateKey } = await generateKeyPair("ES384", { extractable: true });
    const p384 = { ...(await exportJWK(privateKey)), kid: "p384", alg: "ES256", use: "sig" };
    expect(p384.crv).toBe("P-384");
    await expect(loadKeySet({ keys: [p384] }, options())).rejects.toThrow(/must be EC P-256/);
  });

  it("rejects a set without a key of the configured algorithm", async () => {
    await expect(loadKeySet({ keys: [es1] }, options("RS256"))).rejects.toThrow(/no RS256 key/);
    await expect(loadKeySet({ keys: [rs1] }, options("ES256"))).rejects.toThrow(/no ES256 key/);
  });

  it("refuses an RSA key under 2048 bits, which node:crypto would sign with but jose would not verify", async () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
    const weak = { ...privateKey.export({ format: "jwk" }), kid: "weak", alg: "RS256", use: "sig" };
    await expect(loadKeySet({ keys: [weak] }, options("RS256"))).rejects.toThrow(/2048/);
    // The same shape at 2048 bits loads.
    const strong = { ...generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" }), kid: "ok", alg: "RS256" };
    await expect(loadKeySet({ keys: [strong] }, options("RS256"))).resolves.toBeDefined();
  });

  it("rejects malformed JSON shapes", async () => {
    const { d: _d, ...publicOnly } = es1;
    const shapes: unknown[] = [
      null,
      undefined,
      "keys",
      42,
      [],
      [es1],
      {},
      { keys: [] },
      { keys: "x" },
      { keys: {} },
      { keys: [null] },
      { keys: [{}] },
      { keys: [publicOnly] },
      { keys: [{ ...es1, d: "" }] },
      { keys: [{ ...es1, kid: "" }] },
      { keys: [{ ...es1, kid: "k".repeat(129) }] },
      { keys: [{ ...es1, kid: 7 }] },
      { keys: [{ ...es1, alg: "HS256" }] },
      { keys: [{ ...es1, alg: "none" }] },
      { keys: [{ ...es1, alg: "ES384" }] },
      { keys: [{ ...es1, kty: "oct" }] },
      { keys: [{ ...es1, active_from: -1 }] },
      { keys: [{ ...es1, active_from: 1.5 }] },
      { keys: [{ ...es1, active_from: String(T0S) }] },
      { keys: [{ ...es1, d: "not-a-valid-scalar" }] },
      // A private scalar of another key: node:crypto would take it, the probe signature refuses it.
      { keys: [{ ...es1, d: es2.d }] },
      { keys: [{ ...rs1, alg: "ES256" }] },
    ];
    for (const shape of shapes) {
      await expect(loadKeySet(shape, options()), JSON.stringify(shape)?.slice(0, 80)).rejects.toThrow();
    }
  });

  it("accepts a kid of exactly 128 characters", async () => {
    const set = await loadKeySet({ keys: [{ ...es1, kid: "k".repeat(128) }] }, options());
    expect(set.signingKey(T0).kid).toBe("k".repeat(128));
  });
});
