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

  set(name: string, value: string): void {
    const key = name.toLowerCase();
    if (key === "set-cookie") this.cookies.splice(0, this.cookies.length, value);
    else this.#values.set(key, value);
  }

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    if (key === "set-cookie") this.cookies.push(value);
    else this.#values.set(key, this.#values.has(key) ? `${this.#values.get(key)}, ${value}` : value);
  }

  get(name: string): string | null {
    const key = name.toLowerCase();
    if (key === "set-cookie") return this.cookies.length ? this.cookies.join(", ") : null;
    return this.#values.get(key) ?? null;
  }

  toRecord(): Record<string, string> {
    return Object.fromEntries(this.#values);
  }
}
