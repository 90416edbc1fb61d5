import type { Resource } from "sst";
import type { LinkedResources } from "../../functions/src/config";

/**
 * Compile-time check (`npm run typecheck -w @authlith/infra`): the linked resources declared in
 * sst-env.d.ts, which mirror what sst.config.ts links to the Auth function, have the shape the
 * handler reads. The infra tests check sst-env.d.ts against the evaluated links themselves.
 */
type Linked = Pick<Resource, keyof LinkedResources>;
export const linkedAsRead = (linked: Linked): Required<LinkedResources> => linked;
