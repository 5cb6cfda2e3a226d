// The optional graph layers (encapsulation, NAT) a dataplane is built with. Kept in one place so
// replay and the live workers build exactly the same graph.
import type { GraphExtension } from './build.js';

export interface ExtensionSource {
  readonly env: unknown;
}

/** Extensions for a programmed node (none yet in the core; the encap and NAT layers add theirs). */
export function dataplaneExtensions(_prog: ExtensionSource, _seed: number): GraphExtension[] {
  return [];
}
