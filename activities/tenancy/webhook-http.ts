import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { refusedAddress, refusedHost } from '../../core/tenancy/webhook-destination.js';

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to every address it has (the system resolver unless a test gives another). */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: HostResolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

export interface WebhookTransport {
  /** WEBHOOK_ALLOW_PRIVATE_NETWORKS: non-public destinations may be called. */
  allowPrivateNetworks: boolean;
  resolve: HostResolver;
}

export interface WebhookPost {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

/** The destination is not allowed: the request was never sent. */
export class WebhookDestinationRefused extends Error {
  override name = 'WebhookDestinationRefused';
}

/**
 * The one address the connection may use. A name is resolved here and every address it has is
 * checked (a name with one public and one private answer is refused), so a receiver cannot
 * rebind its name to an inside address between the check and the connect.
 */
async function pinnedAddress(url: URL, transport: WebhookTransport): Promise<ResolvedAddress> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const literal = isIP(host);
  const addresses = literal ? [{ address: host, family: literal }] : await transport.resolve(host);
  if (addresses.length === 0) throw new WebhookDestinationRefused(`${host} has no address`);
  if (!transport.allowPrivateNetworks) {
    const nameReason = refusedHost(url.hostname);
    if (nameReason) throw new WebhookDestinationRefused(`the webhook host is ${nameReason}`);
    for (const { address } of addresses) {
      const reason = refusedAddress(address);
      if (reason) throw new WebhookDestinationRefused(`the webhook host resolves to ${reason} (${address})`);
    }
  }
  return addresses[0]!;
}

/**
 * POSTs to the webhook over the checked address only and answers its status. Redirects are not
 * followed: a 3xx is the receiver's answer, which the caller counts as a failed delivery.
 */
export async function postWebhook(transport: WebhookTransport, post: WebhookPost): Promise<{ status: number }> {
  const url = new URL(post.url);
  const pinned = await pinnedAddress(url, transport);
  const pinnedLookup: LookupFunction = (_hostname, options, callback) => {
    if (options.all) callback(null, [pinned]);
    else callback(null, pinned.address, pinned.family);
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: 'POST',
        headers: { ...post.headers, 'content-length': String(Buffer.byteLength(post.body)) },
        lookup: pinnedLookup, // TLS still verifies the certificate against the URL's host name
        signal: AbortSignal.timeout(post.timeoutMs),
      },
      (response: IncomingMessage) => {
        response.resume(); // the body is not needed; drain it so the socket is released
        response.on('end', () => resolve({ status: response.statusCode ?? 0 }));
        response.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(post.body);
  });
}
