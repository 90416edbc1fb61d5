import { createHash } from "node:crypto";

/**
 * A Bloom filter over a list of passwords: a fixed bit array, `hashes` positions per entry.
 * Membership is "possibly in the list" (with a known false-positive rate) or "certainly not":
 * a listed password is always found. Positions come from SHA-256 of the entry by double hashing
 * (Kirsch and Mitzenmacher): position i = (h1 + i·h2) mod bits.
 */
export interface BloomFilter {
  bits: number;
  hashes: number;
  /** The bit array, base64 (bit j is bit j % 8 of byte j >> 3). */
  data: string;
}

function positions(entry: string, bits: number, hashes: number): number[] {
  const digest = createHash("sha256").update(entry, "utf8").digest();
  const h1 = digest.readUInt32BE(0);
  const h2 = (digest.readUInt32BE(4) | 1) >>> 0; // odd, and unsigned
  const out: number[] = [];
  for (let i = 0; i < hashes; i++) out.push((h1 + i * h2) % bits);
  return out;
}

/** The form every entry and every candidate takes: NFKC, lower case. */
export const blocklistForm = (password: string): string => password.normalize("NFKC").toLowerCase();

/** Builds a filter for `entries` with about `bitsPerEntry` bits each (14.4 with 10 hashes: ≈ 0.1 %). */
export function buildBloomFilter(entries: Iterable<string>, options: { bitsPerEntry: number; hashes: number }): BloomFilter {
  const unique = new Set([...entries].map(blocklistForm));
  const bits = Math.ceil((unique.size * options.bitsPerEntry) / 8) * 8;
  const array = new Uint8Array(bits / 8);
  for (const entry of unique) for (const p of positions(entry, bits, options.hashes)) array[p >> 3]! |= 1 << (p & 7);
  return { bits, hashes: options.hashes, data: Buffer.from(array).toString("base64") };
}

/** A membership test over a filter; the bit array is decoded on the first call. */
export function bloomMembership(filter: BloomFilter): (candidate: string) => boolean {
  let array: Buffer | undefined;
  return (candidate) => {
    array ??= Buffer.from(filter.data, "base64");
    return positions(blocklistForm(candidate), filter.bits, filter.hashes).every((p) => (array![p >> 3]! & (1 << (p & 7))) !== 0);
  };
}

/** The false-positive rate a filter of this shape has for `entries` entries: (1 − e^(−k·n/m))^k. */
export const bloomFalsePositiveRate = (filter: Pick<BloomFilter, "bits" | "hashes">, entries: number): number =>
  (1 - Math.exp((-filter.hashes * entries) / filter.bits)) ** filter.hashes;
