import { config } from "zod/mini";
import en from "zod/v4/locales/en.js";

/**
 * Schemas use zod's functional "mini" API: the same validation as the classic API at a fraction
 * of the bundle (≈ 16 KiB against ≈ 90 KiB tree-shaken) and of the cold-start time. Modules
 * import `* as z from "zod/mini"` (so the bundler keeps only what they use) and this module for
 * its one side effect: English messages, and only those.
 */
config(en());
