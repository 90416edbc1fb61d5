import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { createArgon2Hasher, DEFAULT_ARGON2, DUMMY_HASH_DEFAULT } from "./password";
import { normalizePassword } from "./password-policy";

// The hasher loads the addon with `require`; spying on that same module object calls through to
// the real library and lets the burn() tests see what was verified and how it ended.
const argon2 = createRequire(import.meta.url)("@node-rs/argon2") as typeof import("@node-rs/argon2");
const argon2Verify = argon2.verify;
const verifySpy = vi.spyOn(argon2, "verify");

const DEFAULT_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$";
// PHC string: 16-byte salt and 32-byte output, unpadded standard base64.
const PHC_DEFAULT = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/;
// Cheap parameters for tests that do not depend on the cost.
const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

const randomPassword = (bytes = 18): string => randomBytes(bytes).toString("base64url");

describe("hashing a normalized password", () => {
  it("a hash of the ligature spelling verifies the plain spelling after normalization", async () => {
    const hasher = createArgon2Hasher(CHEAP);
    const suffix = randomPassword(6);
    const stored = await hasher.hash(normalizePassword(`ﬁnance-${suffix}`));
    expect(await hasher.verify(stored, normalizePassword(`finance-${suffix}`))).toBe(true);
    expect(await hasher.verify(stored, `ﬁnance-${suffix}`)).toBe(false);
  });
});

describe("createArgon2Hasher (default parameters)", () => {
  const hasher = createArgon2Hasher();

  it("uses OWASP's second parameter set", () => {
    expect(DEFAULT_ARGON2).toEqual({ memoryCost: 19456, timeCost: 2, parallelism: 1 });
  });

  it("produces an argon2id v19 PHC string with the default parameters and a fresh salt", async () => {
    const password = randomPassword();
    const a = await hasher.hash(password);
    const b = await hasher.hash(password);
    expect(a.startsWith(DEFAULT_PREFIX)).toBe(true);
    expect(a).toMatch(PHC_DEFAULT);
    expect(b).toMatch(PHC_DEFAULT);
    expect(a).not.toBe(b);
    expect(hasher.needsRehash(a)).toBe(false);
  });

  it("verifies the right password and refuses a wrong one", async () => {
    const password = randomPassword();
    const stored = await hasher.hash(password);
    expect(await hasher.verify(stored, password)).toBe(true);
    expect(await hasher.verify(stored, password + "x")).toBe(false);
    expect(await hasher.verify(stored, password.slice(0, -1))).toBe(false);
    expect(await hasher.verify(stored, "")).toBe(false);
  });

  it("resolves false (does not throw) for a malformed stored hash", async () => {
    const password = randomPassword();
    const good = await hasher.hash(password);
    const malformed = [
      "",
      "not a hash",
      "$argon2id$",
      DEFAULT_PREFIX,
      `${DEFAULT_PREFIX}!!!!$!!!!`,
      good.slice(0, good.lastIndexOf("$")),
      good.replace("$argon2id$", "$argon2x$"),
      good.replace("m=19456", "m=abc"),
      "$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
      "\u0000",
    ];
    for (const stored of malformed) {
      await expect(hasher.verify(stored, password), JSON.stringify(stored)).resolves.toBe(false);
    }
  });

  it("needsRehash: true for weaker or other parameters and for anything not argon2id v19", async () => {
    const good = await hasher.hash(randomPassword());
    const tail = good.slice(DEFAULT_PREFIX.length);
    expect(hasher.needsRehash(good)).toBe(false);
    for (const prefix of [
      "$argon2id$v=19$m=4096,t=2,p=1$",
      "$argon2id$v=19$m=19456,t=1,p=1$",
      "$argon2id$v=19$m=19456,t=2,p=2$",
      "$argon2id$v=19$m=65536,t=3,p=4$",
      "$argon2id$v=19$m=194560,t=2,p=1$",
      "$argon2id$v=16$m=19456,t=2,p=1$",
      "$argon2i$v=19$m=19456,t=2,p=1$",
      "$argon2d$v=19$m=19456,t=2,p=1$",
    ]) {
      expect(hasher.needsRehash(prefix + tail), prefix).toBe(true);
    }
    expect(hasher.needsRehash("")).toBe(true);
    expect(hasher.needsRehash("$2b$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234")).toBe(true);
    expect(hasher.needsRehash("plaintext")).toBe(true);
  });

  it("does not truncate: 100-byte passwords sharing a 72-byte prefix are different passwords", async () => {
    const prefix = randomBytes(54).toString("base64url");
    expect(prefix).toHaveLength(72);
    const a = prefix + "A".repeat(28);
    const b = prefix + "B".repeat(28);
    expect(Buffer.byteLength(a)).toBe(100);
    expect(Buffer.byteLength(b)).toBe(100);
    const [hashA, hashB] = await Promise.all([hasher.hash(a), hasher.hash(b)]);
    expect(await hasher.verify(hashA, a)).toBe(true);
    expect(await hasher.verify(hashB, b)).toBe(true);
    expect(await hasher.verify(hashA, b)).toBe(false);
    expect(await hasher.verify(hashB, a)).toBe(false);
  });

  it("accepts a 256-code-point password of 4-byte characters (1024 bytes)", async () => {
    const password = "😀".repeat(255) + "😁";
    const stored = await hasher.hash(password);
    expect(await hasher.verify(stored, password)).toBe(true);
    expect(await hasher.verify(stored, "😀".repeat(256))).toBe(false);
  });
});

describe("DUMMY_HASH_DEFAULT and burn()", () => {
  beforeEach(() => {
    verifySpy.mockClear();
  });

  it("is an argon2id hash with the default parameters", () => {
    expect(DUMMY_HASH_DEFAULT).toMatch(PHC_DEFAULT);
    expect(createArgon2Hasher().needsRehash(DUMMY_HASH_DEFAULT)).toBe(false);
    expect(createArgon2Hasher(DEFAULT_ARGON2).needsRehash(DUMMY_HASH_DEFAULT)).toBe(false);
  });

  it("the library really verifies against it: resolves false, does not reject", async () => {
    // A hash the library could not parse would reject here; burn() would then swallow the error and
    // return at once, so an unknown email would cost nothing and be distinguishable by timing.
    await expect(argon2Verify(DUMMY_HASH_DEFAULT, randomPassword())).resolves.toBe(false);
    await expect(argon2Verify(DUMMY_HASH_DEFAULT, "")).resolves.toBe(false);
  });

  it("burn() on the default hasher resolves after one real verification against the dummy hash", async () => {
    const hasher = createArgon2Hasher();
    await expect(hasher.burn(randomPassword())).resolves.toBeUndefined();
    expect(verifySpy).toHaveBeenCalledTimes(1);
    expect(verifySpy.mock.calls[0]![0]).toBe(DUMMY_HASH_DEFAULT);
    // The library call itself resolved (false), it did not reject into the catch.
    await expect(verifySpy.mock.results[0]!.value).resolves.toBe(false);
  });

  it("burn() with custom parameters verifies against a hash made with those parameters, made once", async () => {
    const hasher = createArgon2Hasher(CHEAP);
    expect(hasher.needsRehash(DUMMY_HASH_DEFAULT)).toBe(true);
    await expect(hasher.burn(randomPassword())).resolves.toBeUndefined();
    await expect(hasher.burn(randomPassword())).resolves.toBeUndefined();
    expect(verifySpy).toHaveBeenCalledTimes(2);
    const [first, second] = verifySpy.mock.calls.map((call) => call[0] as string);
    expect(first).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(hasher.needsRehash(first!)).toBe(false);
    expect(second).toBe(first);
    for (const result of verifySpy.mock.results) await expect(result.value).resolves.toBe(false);
  });

  it("custom parameters are used for hash and needsRehash", async () => {
    const hasher = createArgon2Hasher(CHEAP);
    const password = randomPassword();
    const stored = await hasher.hash(password);
    expect(stored.startsWith("$argon2id$v=19$m=1024,t=1,p=1$")).toBe(true);
    expect(hasher.needsRehash(stored)).toBe(false);
    expect(createArgon2Hasher().needsRehash(stored)).toBe(true);
    // A hash made with other parameters still verifies (the parameters are in the string).
    expect(await createArgon2Hasher().verify(stored, password)).toBe(true);
  });
});
