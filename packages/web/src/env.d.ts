/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The authlith API, e.g. https://auth.example.com. Default: this page's host, port 3000. */
  readonly VITE_AUTHLITH_URL?: string;
}
