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

  it("counts an IPv4-mapped IPv6 address as its IPv4 address, in any notation", () => {
    for (const mapped of ["::ffff:203.0.113.7", "::FFFF:203.0.113.7", "::ffff:cb00:7107", "0:0:0:0:0:ffff:cb00:7107", "0000:0000:0000:0000:0000:ffff:203.0.113.7"]) {
      expect(rateLimitIp(mapped), mapped).toBe("203.0.113.7");
    }
    // No longer one bucket with the loopback and every other mapped address.
    expect(rateLimitIp("::ffff:198.51.100.1")).toBe("198.51.100.1");
    expect(rateLimitIp("::ffff:198.51.100.1")).not.toBe(rateLimitIp("::1"));
    // Only ::ffff:0:0/96 is IPv4-mapped; its neighbours are ordinary IPv6.
    expect(rateLimitIp("::fffe:cb00:7107")).toBe("0:0:0:0::/64");
    expect(rateLimitIp("1::ffff:cb00:7107")).toBe("1:0:0:0::/64");
  });

  it("ignores a zone index, and counts what is not an address as itself", () => {
    expect(rateLimitIp("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(rateLimitIp("unknown")).toBe("unknown");
    expect(rateLimitIp("2001:db8::zz")).toBe("2001:db8::zz");
  });
});
