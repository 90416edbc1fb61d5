/**
 * Where the password blocklist comes from (build and test time only; never imported by the
 * service): zxcvbn-ts's common-password list, itself compiled from breach corpora.
 */
export const BLOCKLIST_SHAPE = { bitsPerEntry: 14.4, hashes: 10 } as const;

export async function blocklistSource(): Promise<{ entries: string[]; source: string }> {
  const { dictionary } = await import("@zxcvbn-ts/language-common");
  return { entries: dictionary["passwords-common"] as string[], source: "@zxcvbn-ts/language-common 4.1.3 (passwords-common)" };
}
