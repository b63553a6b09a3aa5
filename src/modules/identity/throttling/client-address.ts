import { isIPv4, isIPv6 } from 'node:net';

/**
 * What a per-address throttle counts against. IPv4 addresses count one by one; IPv6 addresses by
 * their /64 prefix, because one subscriber usually holds a whole /64 and could otherwise rotate
 * through 2^64 addresses (OWASP Credential Stuffing Prevention Cheat Sheet; RFC 6177). IPv4-mapped
 * IPv6 addresses count as the IPv4 address they carry.
 */
export function throttleSubject(address: string): string {
  const a = address.trim().toLowerCase();
  if (isIPv4(a)) return a;
  const bare = a.replace(/%.*$/, '');
  if (!isIPv6(bare)) return `other:${a}`;
  const groups = expandIPv6(bare);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi, lo] = [groups[6] ?? 0, groups[7] ?? 0];
    return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (compressed or not, with or without embedded IPv4). */
export function expandIPv6(address: string): number[] {
  let s = address;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4 !== null) {
    const [b1, b2, b3, b4] = v4.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, v4.index)}${((b1 << 8) | b2).toString(16)}:${((b3 << 8) | b4).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...zeros, ...t].map((g) => Number.parseInt(g, 16));
}
