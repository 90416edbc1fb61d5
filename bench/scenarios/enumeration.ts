import type { Runtime } from "../../packages/functions/src/runtime";
import { alternate, summarize } from "../lib/stats";
import { benchClient, PASSWORD, registerBenchUser, timeInvocation } from "./latency";

/**
 * Whether answering reveals an account by its timing (docs/security.md §7): `account.requestPasswordReset`
 * for addresses that have an account and for addresses that do not, alternated, each address
 * asked once (so no rate-limit state or cache is shared between the two sides). The answer is
 * the same by construction; this measures the time.
 */
export async function measureResetEnumeration(runtime: Runtime, iterations: number, warmup: number) {
  const stamp = Date.now();
  const known: string[] = [];
  for (let i = 0; i < iterations + warmup; i++) {
    const email = `reset-${stamp}-${i}@bench.test`;
    await registerBenchUser(runtime, email);
    known.push(email);
  }
  let k = 0;
  let u = 0;
  const ask = (email: string) => async () => (await timeInvocation(runtime, "account.requestPasswordReset", { email })).ms;
  await alternate(warmup, () => ask(known[k++]!)(), () => ask(`nobody-${stamp}-${u++}@bench.test`)());
  const samples = await alternate(iterations, () => ask(known[k++]!)(), () => ask(`nobody-${stamp}-${u++}@bench.test`)());
  const existing = summarize(samples.a);
  const unknown = summarize(samples.b);
  return { existing, unknown, medianDifferenceMs: existing.median - unknown.median };
}

/**
 * The same for sign-up with email verification on (docs/security.md §7, §36): `auth.register` for
 * addresses that have an account and for new ones, alternated, each address once, on a runtime
 * with verification required. Both answer `{ status: "verification_required" }`; this measures
 * the time (each side hashes the password, runs one statement and hands over one mail).
 */
export async function measureRegisterEnumeration(verifying: Runtime, iterations: number, warmup: number) {
  const stamp = Date.now();
  const known: string[] = [];
  for (let i = 0; i < iterations + warmup; i++) {
    const email = `signup-${stamp}-${i}@bench.test`;
    await timeInvocation(verifying, "auth.register", { email, password: PASSWORD });
    known.push(email);
  }
  let k = 0;
  let u = 0;
  const signUp = (email: string) => async () => {
    const { ms, data } = await timeInvocation(verifying, "auth.register", { email, password: PASSWORD });
    if (data?.status !== "verification_required") throw new Error("sign-up did not answer verification_required");
    return ms;
  };
  await alternate(warmup, () => signUp(known[k++]!)(), () => signUp(`new-${stamp}-${u++}@bench.test`)());
  const samples = await alternate(iterations, () => signUp(known[k++]!)(), () => signUp(`new-${stamp}-${u++}@bench.test`)());
  const existing = summarize(samples.a);
  const unknown = summarize(samples.b);
  return { existing, unknown, medianDifferenceMs: existing.median - unknown.median };
}

/**
 * The same for sign-in (docs/security.md §5–6): a wrong password for an address with an account against
 * any password for an address without one, alternated. Both answer 401 alike; this measures time.
 */
export async function measureLoginEnumeration(runtime: Runtime, iterations: number, warmup: number) {
  const stamp = Date.now();
  const email = `login-enum-${stamp}@bench.test`;
  await registerBenchUser(runtime, email);
  const client = benchClient(runtime);
  let n = 0;
  const attempt = (address: () => string) => async () => {
    const event = client.event({
      method: "POST",
      path: "/trpc/auth.login",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: address(), password: "not the password at all" }),
    });
    const start = performance.now();
    const result = await runtime.handle(event);
    const ms = performance.now() - start;
    if (result.statusCode !== 401) throw new Error(`a failed sign-in answered ${result.statusCode}`);
    return ms;
  };
  const known = attempt(() => email);
  const unknown = attempt(() => `nobody-${stamp}-${n++}@bench.test`);
  await alternate(warmup, known, unknown);
  const samples = await alternate(iterations, known, unknown);
  const existing = summarize(samples.a);
  const missing = summarize(samples.b);
  return { existing, unknown: missing, medianDifferenceMs: existing.median - missing.median };
}
