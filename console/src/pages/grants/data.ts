import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import type { components } from '../../api/schema';

export type Grant = components['schemas']['Grant'];
export type Tenant = components['schemas']['Tenant'];
export type TenantPolicy = components['schemas']['TenantPolicy'];
export type GrantStatus = Grant['status'];

/** Statuses in which a grant still changes by itself: its page keeps asking. */
export const LIVE_STATUSES: readonly GrantStatus[] = ['pending_approval', 'scheduled', 'active', 'revoking'];

/** How often a live grant is read again: its page turns active or ended without a reload. */
export const LIVE_REFRESH_MS = 2000;

export const grantKeys = {
  all: ['grants'] as const,
  one: (tenantId: string, grantId: string) => ['grants', tenantId, grantId] as const,
  mine: (tenantId: string, actorId: string) => ['grants', tenantId, 'mine', actorId] as const,
};

/** The tenants the caller can see (every tenant for MSP staff, their own for tenant staff). */
export function useTenants() {
  return useQuery({
    queryKey: ['tenants'],
    queryFn: async () => unwrap(await api.GET('/v1/tenants', { params: { query: {} } })).tenants,
    staleTime: 60_000,
  });
}

/** A tenant's current policy: its time zone, and what its grant policy allows. */
export function useTenantPolicy(tenantId: string | undefined) {
  return useQuery({
    queryKey: ['policy', tenantId],
    queryFn: async () => unwrap(await api.GET('/v1/tenants/{tenantId}/policy', { params: { path: { tenantId: tenantId! } } })),
    enabled: Boolean(tenantId),
    staleTime: 60_000,
  });
}

export function statusClass(status: string): string {
  if (status === 'active' || status === 'applied' || status === 'completed') return 'status ok';
  if (['pending_approval', 'scheduled', 'revoking', 'pending', 'awaiting_approval', 'executing'].includes(status)) return 'status warn';
  if (['denied', 'failed', 'refused'].includes(status)) return 'status bad';
  return 'status';
}

export function statusLabel(status: string): string {
  return status.replace(/_/g, ' ');
}

export function minutes(seconds: number): string {
  const m = Math.round(seconds / 60);
  return m >= 120 && m % 60 === 0 ? `${m / 60} h` : `${m} min`;
}
