/** Read-only request headers, names lower-cased (what procedures see as `ctx.headers`). */
export interface RequestHeaders {
  get(name: string): string | null;
}

export function requestHeaders(record: Readonly<Record<string, string>>): RequestHeaders {
  return { get: (name) => record[name.toLowerCase()] ?? null };
}

/**
 * Response headers a procedure sets. `Set-Cookie` values are kept apart, one per cookie, because
 * API Gateway v2 answers carry them as a `cookies` array (joining them with commas would break
 * their `Expires` dates); other repeated headers are joined as HTTP allows.
 */
export class ResponseHeaders {
  readonly cookies: string[] = [];
  readonly #values = new Map<string, string>();

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    if (key === "set-cookie") this.cookies.push(value);
    else this.#values.set(key, this.#values.has(key) ? `${this.#values.get(key)}, ${value}` : value);
  }

  toRecord(): Record<string, string> {
    return Object.fromEntries(this.#values);
  }
}
