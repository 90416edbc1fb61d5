import { describe, expect, it } from "vitest";
import { readDeployConfig, stageSettings } from "./settings";

describe("readDeployConfig", () => {
  it("normalises origins and drops duplicates", () => {
    expect(readDeployConfig({ AUTHLITH_ALLOWED_ORIGINS: " https://app.example.com/ ,https://APP.example.com,https://b.example.com" }, "prod")).toEqual({
      allowedOrigins: ["https://app.example.com", "https://b.example.com"],
      domain: undefined,
      signingAlg: "ES256",
      bastionCidrs: [],
    });
  });

  it("opens SSH to the bastion only to the listed networks, never to the whole internet", () => {
    expect(readDeployConfig({ AUTHLITH_BASTION_CIDRS: " 203.0.113.0/24, 198.51.100.7/32 " }, "alice").bastionCidrs).toEqual(["203.0.113.0/24", "198.51.100.7/32"]);
    expect(() => readDeployConfig({ AUTHLITH_BASTION_CIDRS: "0.0.0.0/0" }, "alice")).toThrow(/whole internet/);
    expect(() => readDeployConfig({ AUTHLITH_BASTION_CIDRS: "my-laptop" }, "alice")).toThrow(/not an IPv4 CIDR/);
    expect(() => readDeployConfig({ AUTHLITH_BASTION_CIDRS: "10.0.0.0/33" }, "alice")).toThrow(/not an IPv4 CIDR/);
  });

  it("requires a decision on origins in production, where an empty value means API-only", () => {
    expect(() => readDeployConfig({}, "prod")).toThrow(/AUTHLITH_ALLOWED_ORIGINS is not set for stage "prod"/);
    expect(() => readDeployConfig({}, "production")).toThrow(/AUTHLITH_ALLOWED_ORIGINS/);
    expect(readDeployConfig({ AUTHLITH_ALLOWED_ORIGINS: "" }, "prod").allowedOrigins).toEqual([]);
    expect(readDeployConfig({}, "alice").allowedOrigins).toEqual(["http://localhost:5173"]);
  });

  it("reads the mail sender (an address or a domain) and the app URL, refusing what is neither", () => {
    const base = { AUTHLITH_ALLOWED_ORIGINS: "https://app.example.com" };
    expect(readDeployConfig({ ...base, AUTHLITH_MAIL_SENDER: " Auth@Example.com ", AUTHLITH_APP_URL: "https://app.example.com/" }, "prod")).toMatchObject({
      mail: { sender: "auth@example.com" },
      appUrl: "https://app.example.com",
    });
    expect(readDeployConfig({ ...base, AUTHLITH_MAIL_SENDER: "example.com" }, "prod").mail).toEqual({ sender: "example.com" });
    expect(readDeployConfig(base, "prod")).not.toHaveProperty("mail");
    expect(() => readDeployConfig({ ...base, AUTHLITH_MAIL_SENDER: "no reply" }, "prod")).toThrow(/AUTHLITH_MAIL_SENDER/);
    expect(() => readDeployConfig({ ...base, AUTHLITH_APP_URL: "http://app.example.com" }, "prod")).toThrow(/AUTHLITH_APP_URL: .* must be https/);
    expect(readDeployConfig({ AUTHLITH_APP_URL: "http://localhost:5173" }, "alice").appUrl).toBe("http://localhost:5173");
  });

  it("refuses plain http origins in production and anything that is not a URL", () => {
    expect(() => readDeployConfig({ AUTHLITH_ALLOWED_ORIGINS: "http://app.example.com" }, "prod")).toThrow(/must be https/);
    expect(readDeployConfig({ AUTHLITH_ALLOWED_ORIGINS: "http://localhost:3000" }, "alice").allowedOrigins).toEqual(["http://localhost:3000"]);
    expect(() => readDeployConfig({ AUTHLITH_ALLOWED_ORIGINS: "app.example.com" }, "alice")).toThrow(/not a URL|must be https/);
    expect(() => readDeployConfig({ AUTHLITH_ALLOWED_ORIGINS: "ftp://x.example.com" }, "alice")).toThrow(/must be https/);
  });

  it("takes a custom domain, with a certificate only together with a domain", () => {
    expect(readDeployConfig({ AUTHLITH_ALLOWED_ORIGINS: "", AUTHLITH_DOMAIN: "Auth.Example.com" }, "prod").domain).toEqual({ name: "auth.example.com", certArn: undefined });
    expect(() => readDeployConfig({ AUTHLITH_ALLOWED_ORIGINS: "", AUTHLITH_DOMAIN: "https://auth.example.com" }, "prod")).toThrow(/not a host name/);
    expect(() => readDeployConfig({ AUTHLITH_ALLOWED_ORIGINS: "", AUTHLITH_DOMAIN_CERT_ARN: "arn:aws:acm:x" }, "prod")).toThrow(/without AUTHLITH_DOMAIN/);
  });

  it("accepts only the signing algorithms the service implements", () => {
    expect(readDeployConfig({ AUTHLITH_SIGNING_ALG: "RS256" }, "alice").signingAlg).toBe("RS256");
    expect(() => readDeployConfig({ AUTHLITH_SIGNING_ALG: "HS256" }, "alice")).toThrow(/ES256 or RS256/);
  });
});

describe("stageSettings", () => {
  it("makes prod and production production stages, everything else personal", () => {
    for (const stage of ["prod", "production"]) {
      expect(stageSettings(stage)).toMatchObject({ production: true, nat: "managed", postgres: { multiAz: true, proxy: true, deletionProtection: true } });
    }
    for (const stage of ["alice", "dev", "staging", "prod-copy"]) {
      expect(stageSettings(stage)).toMatchObject({ production: false, nat: "ec2", postgres: { multiAz: false, proxy: false, deletionProtection: false } });
    }
  });
});
