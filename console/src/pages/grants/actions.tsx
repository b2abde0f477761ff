import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client';
import { ErrorNotice } from '../../components/Feedback';
import { grantKeys, type Grant } from './data';

export type GrantDecision = 'approve' | 'deny' | 'revoke' | 'relinquish';

/** One decision on a grant; the answer (the grant after it) replaces the cached one at once. */
export function useGrantDecision(grant: Pick<Grant, 'tenantId' | 'grantId'>) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ decision, comment }: { decision: GrantDecision; comment?: string }) =>
      unwrap(
        await api.POST(`/v1/tenants/{tenantId}/grants/{grantId}/${decision}`, {
          params: { path: { tenantId: grant.tenantId, grantId: grant.grantId } },
          body: comment?.trim() ? { comment: comment.trim() } : {},
        }),
      ),
    onSuccess: (updated) => {
      queryClient.setQueryData(grantKeys.one(updated.tenantId, updated.grantId), updated);
      void queryClient.invalidateQueries({ queryKey: grantKeys.all });
    },
  });
}

/** Extending an active grant by some minutes, with a reason (re-approved when the tenant's policy says so). */
export function ExtendForm({ grant }: { grant: Grant }) {
  const queryClient = useQueryClient();
  const [minutes, setMinutes] = useState('30');
  const [justification, setJustification] = useState('');
  const extend = useMutation({
    mutationFn: async () =>
      unwrap(
        await api.POST('/v1/tenants/{tenantId}/grants/{grantId}/extend', {
          params: { path: { tenantId: grant.tenantId, grantId: grant.grantId } },
          body: { additionalMinutes: Number(minutes), ...(justification.trim() ? { justification: justification.trim() } : {}) },
        }),
      ),
    onSuccess: (updated) => {
      queryClient.setQueryData(grantKeys.one(updated.tenantId, updated.grantId), updated);
      void queryClient.invalidateQueries({ queryKey: grantKeys.all });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    extend.mutate();
  };
  const id = `extend-${grant.grantId}`;
  return (
    <form onSubmit={submit} className="inline-form" aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>Extend</h3>
      <label htmlFor={`${id}-minutes`}>Additional minutes</label>
      <input id={`${id}-minutes`} type="number" min={1} inputMode="numeric" value={minutes} onChange={(e) => setMinutes(e.target.value)} />
      <label htmlFor={`${id}-why`}>Why (optional)</label>
      <input id={`${id}-why`} value={justification} onChange={(e) => setJustification(e.target.value)} />
      <p>
        <button type="submit" className="secondary" disabled={extend.isPending}>
          {extend.isPending ? 'Extending…' : 'Extend'}
        </button>
      </p>
      {extend.isSuccess && !extend.isPending ? (
        <p role="status" className="notice">
          {extend.data.pendingExtension ? 'Extension requested: it waits for the tenant’s approvers.' : 'Extended.'}
        </p>
      ) : null}
      <ErrorNotice error={extend.error} />
    </form>
  );
}
