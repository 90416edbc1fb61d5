/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The authlith API, e.g. https://auth.example.com. Default: this page's host, port 3000. */
  readonly VITE_AUTHLITH_URL?: string;
  /** The API's port when VITE_AUTHLITH_URL is not set (npm run dev:web sets it from PORT). */
  readonly VITE_AUTHLITH_PORT?: string;
}
