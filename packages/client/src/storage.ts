/**
 * Where the token transport keeps the refresh token (Node, React Native, servers): a file, the
 * keychain, a database row. Browsers use the cookie transport and never see a refresh token.
 */
export interface TokenStorage {
  get(): string | null | Promise<string | null>;
  set(token: string | null): void | Promise<void>;
}

/** Keeps the refresh token in this process only (the default). */
export const memoryStorage = (): TokenStorage => {
  let value: string | null = null;
  return { get: () => value, set: (token) => void (value = token) };
};
