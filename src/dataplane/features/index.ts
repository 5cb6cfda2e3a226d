// The features a dataplane is built with, in one list so replay and the live workers build exactly
// the same graph. Each registers its nodes on the arcs of graph/arcs.ts; order here is only the
// tie-break among features without before/after constraints between them.
import type { GraphFeature } from '../graph/build.js';
import { spoofFeature } from './spoof/spoof-check.js';
import { encapFeature } from './encap/nodes.js';
import { natFeature } from './nat/nodes.js';
import { policyFeature } from './policy/nodes.js';

export const DATAPLANE_FEATURES: readonly GraphFeature[] = [
  spoofFeature,
  policyFeature,
  natFeature,
  encapFeature,
];
