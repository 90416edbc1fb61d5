/** Summary statistics of a sample of durations (ms) or rates. */
export interface Summary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}

export function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    min: sorted[0] ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

export const round = (value: number, digits = 3): number => Number(value.toFixed(digits));

/**
 * Runs two measurements alternately (A, B, A, B, ...) so that drift in the machine's speed hits
 * both equally, and returns both samples. Each function returns its own duration in ms.
 */
export async function alternate(
  iterations: number,
  a: () => Promise<number>,
  b: () => Promise<number>,
): Promise<{ a: number[]; b: number[] }> {
  const samplesA: number[] = [];
  const samplesB: number[] = [];
  for (let i = 0; i < iterations; i++) {
    if (i % 2 === 0) {
      samplesA.push(await a());
      samplesB.push(await b());
    } else {
      samplesB.push(await b());
      samplesA.push(await a());
    }
  }
  return { a: samplesA, b: samplesB };
}

export async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}
