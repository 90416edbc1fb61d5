import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { generateSigningKey, SigningKeySetSchema, type SigningAlgorithm } from "@authlith/core";

/**
 * `npm run keys:generate` prints a new signing key set (JWK Set with the private key) and an HMAC
 * secret, the two secrets the service needs. With `--rotate '<current key set JSON>'` it prints
 * the current set plus a new key that starts signing after `--activate-in` seconds (default one
 * hour), so verifiers see it in the JWKS before any token signed with it exists.
 */
const { values } = parseArgs({
  options: {
    alg: { type: "string", default: "ES256" },
    rotate: { type: "string" },
    "activate-in": { type: "string", default: "3600" },
  },
});
const alg = values.alg as SigningAlgorithm;
if (alg !== "ES256" && alg !== "RS256") throw new Error("--alg must be ES256 or RS256");

if (values.rotate) {
  const current = SigningKeySetSchema.parse(JSON.parse(values.rotate));
  const activeFrom = Math.floor(Date.now() / 1000) + Number(values["activate-in"]);
  const next = await generateSigningKey(alg, { activeFromSeconds: activeFrom });
  process.stdout.write(`${JSON.stringify({ keys: [...current.keys, next] })}\n`);
  process.stderr.write(`new key ${next.kid} signs from ${new Date(activeFrom * 1000).toISOString()}\n`);
} else {
  const keySet = { keys: [await generateSigningKey(alg)] };
  process.stdout.write(`AUTHLITH_SIGNING_KEYS='${JSON.stringify(keySet)}'\n`);
  process.stdout.write(`AUTHLITH_HMAC_SECRET=${randomBytes(32).toString("base64url")}\n`);
}
