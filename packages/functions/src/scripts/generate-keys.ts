import { newHmacSecret } from "./secrets";
import { parseArgs } from "node:util";
import { generateSigningKey, SigningKeySetSchema, type SigningAlgorithm } from "@authlith/core";

/**
 * `npm run keys:generate` makes the two secrets the service needs, a signing key set (JWK Set
 * with the private key) and an HMAC secret, and prints the exact commands that store them as SST
 * secrets for a stage (`--stage`, default prod), then the same values as environment variables
 * for `npm run dev` and tests.
 *
 * `--rotate '<current key set JSON>'` prints the current set plus a new key that starts signing
 * after `--activate-in` seconds (default one hour), so verifiers see it in the JWKS before any
 * token signed with it exists; the HMAC secret is left as it is.
 */
const { values } = parseArgs({
  options: {
    alg: { type: "string", default: "ES256" },
    rotate: { type: "string" },
    "activate-in": { type: "string", default: "3600" },
    stage: { type: "string", default: "prod" },
  },
});
const alg = values.alg as SigningAlgorithm;
if (alg !== "ES256" && alg !== "RS256") throw new Error("--alg must be ES256 or RS256");
const stage = values.stage;
if (!/^[a-zA-Z0-9-]+$/.test(stage)) throw new Error("--stage must be a stage name (letters, digits, -)");
const activateInSeconds = Number(values["activate-in"]);
if (!Number.isInteger(activateInSeconds) || activateInSeconds < 0) throw new Error("--activate-in must be a whole number of seconds");

/** JSON in single quotes: a JWK Set holds no single quote, so the shell passes it unchanged. */
const quoted = (text: string): string => {
  if (text.includes("'")) throw new Error("unexpected quote in generated secret");
  return `'${text}'`;
};
const out = (line = ""): boolean => process.stdout.write(`${line}\n`);

if (values.rotate) {
  const current = SigningKeySetSchema.parse(JSON.parse(values.rotate));
  const activeFrom = Math.floor(Date.now() / 1000) + activateInSeconds;
  const next = await generateSigningKey(alg, { activeFromSeconds: activeFrom });
  const keySet = JSON.stringify({ keys: [...current.keys, next] });
  out(`# Key ${next.kid} is published now and signs from ${new Date(activeFrom * 1000).toISOString()}.`);
  out(`# Store the new set, then deploy so the function reads it (secrets reach a Lambda on deploy):`);
  out(`npx sst secret set SigningKeys ${quoted(keySet)} --stage ${stage}`);
  out(`npx sst deploy --stage ${stage}`);
  out();
  out(`# For npm run dev or tests:`);
  out(`AUTHLITH_SIGNING_KEYS=${quoted(keySet)}`);
} else {
  const keySet = JSON.stringify({ keys: [await generateSigningKey(alg)] });
  const hmacSecret = newHmacSecret();
  out(`# Store both secrets for stage "${stage}" (run from the repository root), then deploy:`);
  out(`npx sst secret set SigningKeys ${quoted(keySet)} --stage ${stage}`);
  out(`npx sst secret set HmacSecret ${hmacSecret} --stage ${stage}`);
  out();
  out(`# For npm run dev or tests:`);
  out(`AUTHLITH_SIGNING_KEYS=${quoted(keySet)}`);
  out(`AUTHLITH_HMAC_SECRET=${hmacSecret}`);
}
