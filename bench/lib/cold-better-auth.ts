/**
 * Better Auth as a Lambda would run it, for the cold-start comparison: its handler built on the
 * first request (Postgres through pg, email and password, as in the peer scenario), and that
 * request a get-session with a session cookie (a database read), the counterpart of authlith's
 * first `auth.me`. The API Gateway event becomes a Fetch Request, as any Lambda adapter for a
 * Fetch-based handler does.
 */
import { betterAuth } from "better-auth";
import { Pool } from "pg";

interface Event {
  headers?: Record<string, string | undefined>;
  cookies?: string[];
}

const BASE = "http://localhost:3000";
const create = () =>
  betterAuth({
    database: new Pool({ connectionString: process.env.BA_DATABASE_URL, max: 2 }),
    baseURL: BASE,
    secret: process.env.BA_SECRET,
    emailAndPassword: { enabled: true },
    rateLimit: { enabled: false },
    logger: { disabled: true },
    telemetry: { enabled: false },
  });
let auth: ReturnType<typeof create> | undefined;

export async function handler(event: Event) {
  auth ??= create();
  const response = await auth.handler(new Request(`${BASE}/api/auth/get-session`, { headers: { cookie: (event.cookies ?? []).join("; ") } }));
  const body = await response.text();
  return { statusCode: response.status === 200 && body !== "null" ? 200 : 401, body };
}
