import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { useSession } from '../../auth/session';

/**
 * Who an actor is, as the tenant's people may see it (GET /v1/tenants/{tenantId}/actors/{actorId}):
 * "you" for the caller, the name once read, a short id until then or when it cannot be read.
 */
export function ActorName({ tenantId, actorId }: { tenantId: string; actorId: string }) {
  const { me } = useSession();
  const mine = actorId === me?.actorId;
  const card = useQuery({
    queryKey: ['actor', tenantId, actorId],
    queryFn: async () => unwrap(await api.GET('/v1/tenants/{tenantId}/actors/{actorId}', { params: { path: { tenantId, actorId } } })),
    enabled: !mine,
    staleTime: Infinity,
    retry: false,
  });
  if (mine) return <span>you</span>;
  return <span title={actorId}>{card.data?.displayName ?? `actor ${actorId.slice(0, 8)}`}</span>;
}
