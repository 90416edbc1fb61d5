import type { inferRouterError, inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "./router.js";

// The router's shapes, written out in full into the published router.d.ts by scripts/build.ts
// (nothing imports this module at run time).

/** Every procedure's input, by namespace and name. */
export type Inputs = inferRouterInputs<AppRouter>;
/** Every procedure's output, by namespace and name. */
export type Outputs = inferRouterOutputs<AppRouter>;
/** The error envelope's shape (`data.reason`, `data.fieldErrors`, `data.retryAfterSeconds`, ...). */
export type ErrorShape = inferRouterError<AppRouter>;
