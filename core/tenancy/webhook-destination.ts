/**
 * Where a tenant's webhook may point. Tenure's worker sits next to its database, Temporal and
 * cloud metadata endpoints; a webhook aimed at those would let a tenant admin make the worker
 * call them. Pure: the policy check uses it on URL hosts, delivery on every resolved address.
 */

export type AddressClass = 'public' | 'loopback' | 'private' | 'link-local' | 'multicast' | 'unspecified' | 'reserved';

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  return bytes.every((b) => b >= 0 && b <= 255) ? bytes : undefined;
}

/** Eight 16-bit groups, or undefined when `text` is not an IPv6 address (zone ids are refused). */
function parseIpv6(text: string): number[] | undefined {
  if (!/^[0-9a-f:.]+$/i.test(text)) return undefined;
  let head = text;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    head = text.slice(0, lastColon + 1);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const group = (g: string) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN);
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const split = (s: string) => (s === '' ? [] : s.split(':').map(group));
  const left = split(halves[0]!);
  const right = halves.length === 2 ? split(halves[1]!) : [];
  const given = left.length + right.length + tail.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return undefined;
  const groups = [...left, ...Array<number>(8 - given).fill(0), ...right, ...tail];
  return groups.every((g) => Number.isInteger(g)) ? groups : undefined;
}

function classifyIpv4([a, b]: number[]): AddressClass {
  if (a === 0) return 'unspecified'; // 0.0.0.0/8: "this network", reaches the host itself on Linux
  if (a === 127) return 'loopback';
  if (a === 10 || (a === 172 && b! >= 16 && b! <= 31) || (a === 192 && b === 168)) return 'private';
  if (a === 100 && b! >= 64 && b! <= 127) return 'private'; // carrier-grade NAT, RFC 6598
  if (a === 169 && b === 254) return 'link-local';
  if (a! >= 224 && a! <= 239) return 'multicast';
  if (a! >= 240) return 'reserved'; // including 255.255.255.255
  return 'public';
}

function classifyIpv6(g: number[]): AddressClass {
  if (g.every((x) => x === 0)) return 'unspecified';
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return 'loopback';
  // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible (::a.b.c.d) reach the IPv4 address.
  if (g.slice(0, 5).every((x) => x === 0) && (g[5] === 0xffff || g[5] === 0)) {
    return classifyIpv4([g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff]);
  }
  if ((g[0]! & 0xfe00) === 0xfc00) return 'private'; // fc00::/7 unique local
  if ((g[0]! & 0xffc0) === 0xfe80) return 'link-local'; // fe80::/10
  if ((g[0]! & 0xffc0) === 0xfec0) return 'private'; // fec0::/10, deprecated site-local
  if ((g[0]! & 0xff00) === 0xff00) return 'multicast';
  return 'public';
}

/** The class of an IP address literal (IPv6 with or without brackets), or undefined when it is not one. */
export function classifyAddress(address: string): AddressClass | undefined {
  const text = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const v4 = parseIpv4(text);
  if (v4) return classifyIpv4(v4);
  const v6 = parseIpv6(text);
  return v6 ? classifyIpv6(v6) : undefined;
}

/** Names that resolve to this host without asking DNS. */
function isLocalName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

/**
 * Why a webhook may not be sent to `hostname` (a URL's host: a name or an IP literal), or
 * undefined when it may. A name is only refused here when it is local by definition; what it
 * resolves to is checked again at delivery with `refusedAddress`.
 */
export function refusedHost(hostname: string): string | undefined {
  if (isLocalName(hostname)) return 'a loopback host name';
  return refusedAddress(hostname);
}

/** Why a webhook may not be sent to this address literal, or undefined when it is public (or not an address). */
export function refusedAddress(address: string): string | undefined {
  const kind = classifyAddress(address);
  return kind === undefined || kind === 'public' ? undefined : `a ${kind} address`;
}

/** The policy-write check for a webhook URL: a message when it is refused. */
export function refusedWebhookUrl(url: string): string | undefined {
  let hostname: string;
  try {
    hostname = new URL(url).hostname;
  } catch {
    return undefined; // the schema reports malformed URLs
  }
  const reason = refusedHost(hostname);
  return reason && `the webhook may not point at ${reason} (set WEBHOOK_ALLOW_PRIVATE_NETWORKS for on-premises receivers)`;
}
