import { describe, expect, it } from "vitest";
import { newHmacSecret } from "./secrets";

describe("newHmacSecret", () => {
  it("gives 32 random bytes that never read as a command-line option", () => {
    // One base64url value in 64 starts with "-": 2,000 draws would show it about 31 times.
    const secrets = Array.from({ length: 2000 }, newHmacSecret);
    expect(secrets.filter((s) => s.startsWith("-"))).toEqual([]);
    for (const secret of secrets.slice(0, 50)) expect(Buffer.from(secret, "base64url")).toHaveLength(32);
    expect(new Set(secrets).size).toBe(secrets.length);
  });
});
