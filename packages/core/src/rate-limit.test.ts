import { describe, expect, it } from "vitest";
import { rateLimitIp } from "./rate-limit";

describe("rateLimitIp", () => {
  it("keeps IPv4 addresses as they are", () => {
    expect(rateLimitIp("203.0.113.7")).toBe("203.0.113.7");
  });

  it("counts IPv6 addresses by their /64, however they are written", () => {
    const key = rateLimitIp("2001:db8:85a3:12::1");
    expect(key).toBe("2001:db8:85a3:12::/64");
    for (const same of ["2001:db8:85a3:12:ffff:ffff:ffff:fffe", "2001:0db8:85a3:0012:0:0:0:9", "2001:DB8:85A3:12::abcd"]) {
      expect(rateLimitIp(same), same).toBe(key);
    }
    expect(rateLimitIp("2001:db8:85a3:13::1")).not.toBe(key);
    expect(rateLimitIp("::1")).toBe("0:0:0:0::/64");
    expect(rateLimitIp("fe80::")).toBe("fe80:0:0:0::/64");
  });
});
