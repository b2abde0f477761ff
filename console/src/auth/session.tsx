import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { components } from '../api/schema';
import { clearSession, onSessionChange, readSession, storeSession, type StoredSession } from './token-store';

export type Me = components['schemas']['Me'];
export type Binding = Me['bindings'][number];

interface SessionValue {
  session: StoredSession | undefined;
  /** The signed-in caller (GET /v1/me), once loaded. */
  me: Me | undefined;
  /** Why the last session ended, to show on the sign-in page. */
  endedBecause: string | undefined;
  signIn: (session: StoredSession) => void;
  signOut: () => void;
}

const SessionContext = createContext<SessionValue | undefined>(undefined);

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [session, setSession] = useState(readSession);
  const [endedBecause, setEndedBecause] = useState<string>();
  useEffect(
    () =>
      onSessionChange((next, reason) => {
        setSession(next);
        setEndedBecause(reason);
        // Nothing one user saw may be shown to the next one in this tab.
        if (!next) queryClient.clear();
      }),
    [queryClient],
  );
  const me = useQuery({
    queryKey: ['me', session?.token.slice(-8)],
    queryFn: async () => unwrap(await api.GET('/v1/me')),
    enabled: session !== undefined,
    staleTime: 60_000,
  });
  const value = useMemo<SessionValue>(
    () => ({
      session,
      me: session ? me.data : undefined,
      endedBecause,
      signIn: (next) => storeSession(next),
      signOut: () => clearSession(),
    }),
    [session, me.data, endedBecause],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside SessionProvider');
  return value;
}

export type Role = Binding['role'];

/** Whether the caller holds one of `roles`, MSP-wide or in `tenantId` (any tenant when absent). */
export function hasRole(me: Me | undefined, roles: readonly Role[], tenantId?: string): boolean {
  return (me?.bindings ?? []).some(
    (b) => roles.includes(b.role) && (b.tenantId === null || tenantId === undefined || b.tenantId === tenantId),
  );
}
