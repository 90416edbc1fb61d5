import type { Runtime } from "../../packages/functions/src/runtime";
import { alternate, summarize } from "../lib/stats";
import { registerBenchUser, timeInvocation } from "./latency";

/**
 * Whether answering reveals an account by its timing (SECURITY 7): `account.requestPasswordReset`
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
