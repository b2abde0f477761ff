import type { ReactNode } from 'react';
import { useQuery } from '@tanstack/react-query';
import { Link, Navigate, useNavigate } from 'react-router';
import { api, unwrap } from '../api/client';
import type { components } from '../api/schema';
import { ErrorNotice, Loading, EmptyState } from './Feedback';

export type Tenant = components['schemas']['Tenant'];

/** The tenants the caller may see (all of them for MSP-wide roles), by slug. */
export function useVisibleTenants() {
  return useQuery({
    queryKey: ['tenants'],
    queryFn: async () => unwrap(await api.GET('/v1/tenants')).tenants,
    staleTime: 60_000,
  });
}

/**
 * The tenant's own time zone (its policy's `timezone`), for <Time> to show on hover; UTC while it
 * loads or when the caller may not read the policy.
 */
export function useTenantZone(tenantId: string | undefined): string {
  const policy = useQuery({
    queryKey: ['policy', tenantId],
    queryFn: async () => unwrap(await api.GET('/v1/tenants/{tenantId}/policy', { params: { path: { tenantId: tenantId! } } })),
    enabled: tenantId !== undefined,
    staleTime: 300_000,
    retry: false,
  });
  return policy.data?.document.timezone ?? 'UTC';
}

/** A select that moves the page to another tenant (`/<area>/<tenantId>`), for callers who see several. */
export function TenantPicker({ area, current }: { area: string; current: string }) {
  const tenants = useVisibleTenants();
  const navigate = useNavigate();
  if (!tenants.data || tenants.data.length < 2) return null;
  return (
    <div className="tenant-picker">
      <label htmlFor={`${area}-tenant`}>Tenant</label>
      <select id={`${area}-tenant`} value={current} onChange={(event) => void navigate(`/${area}/${event.target.value}`)}>
        {tenants.data.map((tenant) => (
          <option key={tenant.id} value={tenant.id}>
            {tenant.name} ({tenant.slug})
          </option>
        ))}
      </select>
    </div>
  );
}

/** The tenant name of a tenant page's heading, when the caller can see the tenant. */
export function useTenantName(tenantId: string): string | undefined {
  return useVisibleTenants().data?.find((tenant) => tenant.id === tenantId)?.name;
}

/**
 * The landing page of a per-tenant area: straight to the only tenant of a tenant-bound caller,
 * otherwise a list of tenants to choose from.
 */
export function ChooseTenant({ area, title, intro }: { area: string; title: string; intro?: ReactNode }) {
  const tenants = useVisibleTenants();
  if (tenants.isPending) return <Loading what="tenants" />;
  if (tenants.error) return <ErrorNotice error={tenants.error} />;
  if (tenants.data.length === 1) return <Navigate to={`/${area}/${tenants.data[0]!.id}`} replace />;
  return (
    <section aria-labelledby={`${area}-choose`}>
      <h1 id={`${area}-choose`}>{title}</h1>
      {intro}
      {tenants.data.length === 0 ? (
        <EmptyState title="No tenants to show">
          <p>You have no role in any tenant yet. Ask your MSP admin for a role binding.</p>
        </EmptyState>
      ) : (
        <ul className="cards">
          {tenants.data.map((tenant) => (
            <li key={tenant.id}>
              <Link to={`/${area}/${tenant.id}`}>{tenant.name}</Link> <span className="muted">{tenant.slug}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
