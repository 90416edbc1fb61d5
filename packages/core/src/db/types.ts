import { customType } from "drizzle-orm/pg-core";

/** `bytea`, read back as a Uint8Array (postgres.js gives a Buffer, PGlite a Uint8Array: both are). */
export const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => "bytea",
});
