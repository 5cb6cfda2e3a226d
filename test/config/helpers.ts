// Shared helpers for the config tests: a small valid base cluster and error-message assertions.
import { expect } from 'vitest';
import { ConfigError } from '../../src/common/errors.js';
import { loadConfigText } from '../../src/control/config/load.js';
import type { ClusterConfig } from '../../src/control/config/types.js';

/** One pool (pool-a 10.65.0.0/16) and two nodes (node-a 10.0.0.1/24, node-b 10.0.0.2/24). */
export const BASE = `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: { name: pool-a }
spec: { cidr: 10.65.0.0/16 }
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: node-a }
spec: { bgp: { ipv4Address: 10.0.0.1/24 }, ipv4VXLANTunnelAddr: 10.65.0.1 }
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: { name: node-b }
spec: { bgp: { ipv4Address: 10.0.0.2/24 }, ipv4VXLANTunnelAddr: 10.65.0.65 }
`;

/** A resource document in flow style: `res('IPPool', 'p', '{ cidr: 10.0.0.0/8 }')`. */
export function res(kind: string, name: string, spec: string, apiVersion = 'projectcalico.org/v3'): string {
  return `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: { name: ${name} }\nspec: ${spec}\n`;
}

/** BASE followed by the given documents. */
export function withBase(...docs: string[]): string {
  return [BASE, ...docs].join('\n---\n');
}

export function load(text: string): ClusterConfig {
  return loadConfigText(text, 'cluster.yaml');
}

/** Asserts that loading fails with exactly `message` (a string) or a message matching a RegExp. */
export function expectConfigError(text: string, message: string | RegExp): void {
  let caught: unknown;
  try {
    load(text);
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a ConfigError').toBeInstanceOf(ConfigError);
  const err = caught as ConfigError;
  expect(err.code).toBe('config-invalid');
  expect(err.message).not.toContain('\n');
  if (typeof message === 'string') expect(err.message).toBe(message);
  else expect(err.message).toMatch(message);
}
