import { describe, expect, it } from 'vitest';
import { formatIp4, formatMac, parseIp4, parseMac, parsePrefix4 } from '../../src/common/addr.js';

describe('addr', () => {
  it('parses and formats IPv4', () => {
    expect(parseIp4('10.65.0.24')).toBe(0x0a410018);
    expect(formatIp4(0xa9fe0101)).toBe('169.254.1.1');
    expect(parseIp4('10.1.2')).toBeNull();
    expect(parseIp4('256.1.1.1')).toBeNull();
  });
  it('parses prefixes strictly', () => {
    expect(parsePrefix4('10.65.0.0/26')).toEqual({ addr: 0x0a410000, len: 26, host: 0x0a410000 });
    expect(parsePrefix4('10.65.0.1/26')).toBeNull();
    expect(parsePrefix4('10.65.0.1/24', false)?.host).toBe(0x0a410001);
    expect(parsePrefix4('10.0.0.0/33')).toBeNull();
  });
  it('parses MACs', () => {
    expect(formatMac(parseMac('EE:ee:ee:ee:ee:0A')!)).toBe('ee:ee:ee:ee:ee:0a');
    expect(parseMac('ee:ee:ee:ee:ee')).toBeNull();
  });
});
