import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DEVICE_TOKEN_TTL_SECONDS, issueDeviceToken, verifyDeviceToken } from "./device";

const key = randomBytes(32);
const NOW = Date.UTC(2026, 10, 27);

describe("device tokens", () => {
  it("verify for the account they were issued to and give a stable device id", () => {
    const token = issueDeviceToken(key, "subject-a", NOW);
    const id = verifyDeviceToken(key, token, "subject-a", NOW + 1000);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    // Re-issuing for the same device keeps its id (and so its failure budget).
    expect(verifyDeviceToken(key, issueDeviceToken(key, "subject-a", NOW + 5000, id!), "subject-a", NOW + 6000)).toBe(id);
    expect(verifyDeviceToken(key, issueDeviceToken(key, "subject-a", NOW), "subject-a", NOW)).not.toBe(id);
  });

  it("refuse another account, another key, tampering and garbage", () => {
    const token = issueDeviceToken(key, "subject-a", NOW);
    expect(verifyDeviceToken(key, token, "subject-b", NOW)).toBeNull();
    expect(verifyDeviceToken(randomBytes(32), token, "subject-a", NOW)).toBeNull();
    const bytes = Buffer.from(token, "base64url");
    for (const offset of [0, 16, 20, 36, 51]) {
      const forged = Buffer.from(bytes);
      forged[offset] = forged[offset]! ^ 1;
      expect(verifyDeviceToken(key, forged.toString("base64url"), "subject-a", NOW), `byte ${offset}`).toBeNull();
    }
    for (const garbage of ["", "x".repeat(70), `${token}A`, token.slice(1), token.replace(/.$/, "+")]) {
      expect(verifyDeviceToken(key, garbage, "subject-a", NOW)).toBeNull();
    }
  });

  it("expire after a year and refuse tokens from the future", () => {
    const token = issueDeviceToken(key, "subject-a", NOW);
    expect(verifyDeviceToken(key, token, "subject-a", NOW + DEVICE_TOKEN_TTL_SECONDS * 1000 - 1000)).not.toBeNull();
    expect(verifyDeviceToken(key, token, "subject-a", NOW + DEVICE_TOKEN_TTL_SECONDS * 1000 + 1000)).toBeNull();
    expect(verifyDeviceToken(key, issueDeviceToken(key, "subject-a", NOW + 3_600_000), "subject-a", NOW)).toBeNull();
  });
});
