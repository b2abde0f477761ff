import { pipeline } from 'node:stream/promises';
import type { Response, Router } from 'express';
import { z } from 'zod';
import {
  BulkDecisionBody,
  CancelRunBody,
  CampaignRunDetailView,
  CampaignRunView,
  CampaignVersionView,
  CampaignView,
  CreateCampaignBody,
  DecisionResultView,
  ItemDecisionBody,
  MoveDeadlineBody,
  NudgeBody,
  NudgeResultView,
  ReassignBody,
  ReassignResultView,
  ReviewItemsQuery,
  ReviewNoticeView,
  ReviewItemView,
  ReviewView,
  ScheduleNoteBody,
  ScheduleView,
  UpdateCampaignBody,
} from '../../core/campaigns/schemas.js';
import { INT4_MAX, TenantTag, Uuid } from '../../core/tenancy/schemas.js';
import * as campaigns from '../../usecases/campaigns.js';
import * as standing from '../../usecases/campaigns/standing.js';
import { StandingQuery, StandingReportView, StandingReviewBody } from '../../core/campaigns/standing.js';
import type { DirectoryDeps } from '../../core/directory/connector.js';
import { forbidden } from '../../core/errors.js';
import { allowingBindings, tenantApproverBindings } from '../../core/tenancy/authz.js';
import { authorityFrom, principalOf } from '../auth.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { hiddenUnlessStanding, routeSet } from '../route.js';

const DefinitionParams = z.strictObject({ definitionId: Uuid });
const VersionParams = z.strictObject({ definitionId: Uuid, version: z.coerce.number().int().min(1).max(INT4_MAX) });
const RunParams = z.strictObject({ runId: Uuid });
const TenantParams = z.strictObject({ tenantId: Uuid });
const ItemParams = z.strictObject({ tenantId: Uuid, itemId: Uuid });
const ReviewParams = z.strictObject({ tenantId: Uuid, runId: Uuid });

/**
 * Recertification campaigns: definitions and runs are the MSP's (operators and admins write,
 * auditors read); each tenant's review items are decided only by that tenant's own reviewers.
 */
export function campaignRoutes(deps: campaigns.CampaignDeps & DirectoryDeps, registry: OpenAPIRegistry): Router {
  const { router, route } = routeSet(registry, 'campaigns');

  route({
    method: 'post',
    path: '/v1/campaigns',
    summary: 'Create a campaign definition (version 1)',
    body: CreateCampaignBody,
    access: { msp: 'campaign.manage' },
    responses: { 201: { description: 'Created.', schema: CampaignView } },
    handler: async ({ res, body, actor }) => {
      const view = await campaigns.createCampaign(deps, actor(), body);
      res.status(201).location(`/v1/campaigns/${view.id}`).json(view);
    },
  });

  route({
    method: 'get',
    path: '/v1/campaigns',
    summary: 'List campaign definitions',
    access: { msp: 'campaign.read' },
    responses: { 200: { description: 'Newest first.', schema: z.object({ campaigns: z.array(CampaignView) }) } },
    handler: async ({ res }) => {
      res.json({ campaigns: await campaigns.listCampaigns(deps.pool) });
    },
  });

  route({
    method: 'get',
    path: '/v1/campaigns/{definitionId}',
    summary: 'Read a campaign definition (its current version)',
    params: DefinitionParams,
    access: { msp: 'campaign.read' },
    responses: { 200: { description: 'The definition.', schema: CampaignView } },
    errors: { 404: 'No such campaign.' },
    handler: async ({ res, params }) => {
      res.json(await campaigns.getCampaign(deps.pool, params.definitionId));
    },
  });

  route({
    method: 'put',
    path: '/v1/campaigns/{definitionId}',
    summary: 'Write a new version of a campaign definition',
    description: 'Runs already started keep the version they started with.',
    params: DefinitionParams,
    body: UpdateCampaignBody,
    access: { msp: 'campaign.manage' },
    responses: { 200: { description: 'The definition at its new version.', schema: CampaignView } },
    errors: { 404: 'No such campaign.', 409: '`expectedVersion` is not the current version.' },
    handler: async ({ res, params, body, actor }) => {
      res.json(await campaigns.updateCampaign(deps, actor(), params.definitionId, body));
    },
  });

  route({
    method: 'delete',
    path: '/v1/campaigns/{definitionId}',
    summary: 'Delete a campaign definition (no run of it may be going)',
    description:
      'It leaves the list, takes no new version or run, and its Schedule is deleted. Its versions, runs, reviews and ' +
      'reports stay readable: evidence outlives the campaign. Audited on the MSP chain (`campaign.deleted`).',
    params: DefinitionParams,
    access: { msp: 'campaign.manage' },
    responses: { 204: { description: 'Deleted.' } },
    errors: { 404: 'No such campaign (or deleted already).', 409: 'A run of it is still going; cancel it or let it finish first.' },
    handler: async ({ res, params, actor }) => {
      await campaigns.deleteCampaign(deps, actor(), params.definitionId);
      res.status(204).end();
    },
  });

  route({
    method: 'get',
    path: '/v1/campaigns/{definitionId}/versions',
    summary: 'List the versions of a campaign definition',
    params: DefinitionParams,
    access: { msp: 'campaign.read' },
    responses: { 200: { description: 'Newest first.', schema: z.object({ versions: z.array(CampaignVersionView) }) } },
    errors: { 404: 'No such campaign.' },
    handler: async ({ res, params }) => {
      res.json({ versions: await campaigns.listCampaignVersions(deps.pool, params.definitionId) });
    },
  });

  route({
    method: 'get',
    path: '/v1/campaigns/{definitionId}/versions/{version}',
    summary: 'Read one version of a campaign definition',
    params: VersionParams,
    access: { msp: 'campaign.read' },
    responses: { 200: { description: 'The version.', schema: CampaignVersionView } },
    errors: { 404: 'No such campaign or version.' },
    handler: async ({ res, params }) => {
      res.json(await campaigns.getCampaignVersion(deps.pool, params.definitionId, params.version));
    },
  });

  route({
    method: 'post',
    path: '/v1/campaigns/{definitionId}/runs',
    summary: 'Start a run of the campaign now (ad hoc)',
    description: 'Starts `campaign/<definitionId>/<runNo>` with the current version; each tenant in scope gets its review.',
    params: DefinitionParams,
    access: { msp: 'campaign.manage' },
    responses: { 202: { description: 'Started; progress at /v1/campaign-runs/{runId}.', schema: CampaignRunView } },
    errors: { 404: 'No such campaign.' },
    handler: async ({ res, params, actor }) => {
      const run = await campaigns.startCampaignRun(deps, actor(), params.definitionId);
      res.status(202).location(`/v1/campaign-runs/${run.runId}`).json(run);
    },
  });

  route({
    method: 'get',
    path: '/v1/campaigns/{definitionId}/runs',
    summary: 'List the runs of a campaign',
    params: DefinitionParams,
    access: { msp: 'campaign.read' },
    responses: { 200: { description: 'Newest first.', schema: z.object({ runs: z.array(CampaignRunView) }) } },
    errors: { 404: 'No such campaign.' },
    handler: async ({ res, params }) => {
      res.json({ runs: await campaigns.listCampaignRuns(deps.pool, params.definitionId) });
    },
  });

  route({
    method: 'get',
    path: '/v1/campaigns/{definitionId}/schedule',
    summary: "The campaign's Temporal Schedule (from its recurrence)",
    description: 'One Schedule per definition with a recurrence, `campaign-schedule/<definitionId>`, visible in the Temporal UI.',
    params: DefinitionParams,
    access: { msp: 'campaign.read' },
    responses: { 200: { description: 'The Schedule, its next and recent starts.', schema: ScheduleView } },
    errors: { 404: 'No such campaign, or it has no recurrence.' },
    handler: async ({ res, params }) => {
      res.json(await campaigns.getCampaignSchedule(deps, params.definitionId));
    },
  });

  for (const action of ['pause', 'unpause', 'trigger'] as const) {
    route({
      method: 'post',
      path: `/v1/campaigns/{definitionId}/schedule/${action}`,
      summary: { pause: 'Pause the Schedule', unpause: 'Unpause the Schedule', trigger: 'Start a scheduled run now' }[action],
      ...(action === 'trigger' ? { description: 'Starts now, or right after a run of the Schedule still going (never two at once).' } : {}),
      params: DefinitionParams,
      body: ScheduleNoteBody,
      bodyOptional: true,
      access: { msp: 'campaign.manage' },
      responses: { 200: { description: 'The Schedule after the change.', schema: ScheduleView } },
      errors: { 404: 'No such campaign.', 409: 'The campaign has no recurrence, so it has no Schedule; nothing changed.' },
      handler: async ({ res, params, body, actor }) => {
        res.json(await campaigns.controlCampaignSchedule(deps, actor(), params.definitionId, action, body.note));
      },
    });
  }

  route({
    method: 'get',
    path: '/v1/campaign-runs/{runId}',
    summary: 'Progress of a run, per tenant',
    description: 'Counts per tenant (items by outcome and applied result); never the items themselves.',
    params: RunParams,
    access: { msp: 'campaign.read' },
    responses: { 200: { description: 'The run and its reviews.', schema: CampaignRunDetailView } },
    errors: { 404: 'No such run.' },
    handler: async ({ res, params }) => {
      res.json(await campaigns.getCampaignRun(deps.pool, params.runId));
    },
  });

  route({
    method: 'post',
    path: '/v1/campaign-runs/{runId}/cancel',
    summary: 'Cancel a run',
    description:
      'No further tenant review starts. Each review not yet settled stops: decisions its reviewers already recorded at the ' +
      'open stage are settled by the stage’s strategy, revocations settled are applied and read back, items nobody decided ' +
      'keep their access. A review already applying its revocations finishes as decided. Audited on the MSP chain ' +
      '(`campaign.run_cancelled`) and in each tenant’s chain (`review.cancelled`).',
    params: RunParams,
    body: CancelRunBody,
    bodyOptional: true,
    access: { msp: 'campaign.manage' },
    responses: { 200: { description: 'The run, cancelled; its reviews follow within moments.', schema: CampaignRunDetailView } },
    errors: { 404: 'No such run.', 409: 'The run has completed or was cancelled already.' },
    handler: async ({ res, params, body, principal, authority }) => {
      res.json(
        await campaigns.cancelCampaignRun(deps, params.runId, {
          actorId: principal.actorId,
          authority,
          ...(body.reason ? { reason: body.reason } : {}),
        }),
      );
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/reviews',
    summary: "List the tenant's reviews",
    params: TenantParams,
    access: { tenant: 'review.read' },
    responses: { 200: { description: 'Newest first.', schema: z.object({ reviews: z.array(ReviewView) }) } },
    handler: async ({ res, params }) => {
      res.json({ reviews: await campaigns.listReviews(deps.pool, params.tenantId) });
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/reviews/items',
    summary: 'Review items (a reviewer’s inbox with assignedTo=me)',
    params: TenantParams,
    query: ReviewItemsQuery,
    access: { tenant: 'review.read' },
    responses: {
      200: {
        description:
          'In item order; with assignedTo=me, also the caller’s notices (reminders, escalations, reassignments, nudges) of open reviews.',
        schema: z.object({
          items: z.array(ReviewItemView),
          nextCursor: z.string().nullable(),
          notices: z.array(ReviewNoticeView).optional(),
        }),
      },
    },
    handler: async ({ res, params, query, principal }) => {
      res.json(await campaigns.listReviewItems(deps.pool, principal, params.tenantId, query));
    },
  });

  const decideAccess = {
    check: (req: Parameters<typeof principalOf>[0], { tenantId }: { tenantId: string }) => {
      hiddenUnlessStanding(req, tenantId, 'tenant');
      return { authority: authorityFrom(req, campaigns.deciderBindings(principalOf(req), tenantId)), state: undefined };
    },
    forbidden:
      'A tenant_reviewer or tenant_approver bound in the tenant itself; never MSP staff. Each item must be assigned to the caller at its current stage.',
    hidden: true,
  };

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/reviews/items/{itemId}/decision',
    summary: 'Decide one review item (keep or revoke)',
    description: 'May be changed until the stage closes; the last decision wins and every change is audited.',
    params: ItemParams,
    body: ItemDecisionBody,
    access: decideAccess,
    responses: { 200: { description: 'Recorded.', schema: DecisionResultView } },
    errors: {
      404: 'No such item, or in a tenant where the caller has no standing (the same answer).',
      409: 'The stage deciding this item has closed.',
    },
    handler: async ({ res, params, body, principal, actor }) => {
      // The justification goes where decideItems reads it: beside the decisions, not inside one.
      const decisions = {
        decisions: [{ itemId: params.itemId, decision: body.decision }],
        ...(body.justification ? { justification: body.justification } : {}),
      };
      res.json(await campaigns.decideItems(deps, principal, actor(), params.tenantId, decisions, true));
    },
  });

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/reviews/decisions',
    summary: 'Decide up to 1,000 review items at once',
    description:
      'All or none; idempotent (a decision already recorded exactly so changes nothing). `recommended` accepts the item’s recommendation.',
    params: TenantParams,
    body: BulkDecisionBody,
    access: decideAccess,
    responses: { 200: { description: 'Recorded.', schema: DecisionResultView } },
    errors: { 409: 'The stage deciding one of the items has closed.' },
    handler: async ({ res, params, body, principal, actor }) => {
      res.json(await campaigns.decideItems(deps, principal, actor(), params.tenantId, body));
    },
  });

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/reviews/{runId}/deadline',
    summary: "Move the deadline of a review's open stage",
    description:
      'MSP staff extend a deadline, and may bring it forward only once no item of the review waits for a decision: closing a ' +
      'stage early would settle the undecided items by the non-response rule, a decision that belongs to the tenant. The ' +
      'tenant’s own approvers may bring it forward at any time; a time already past closes the stage now.',
    params: ReviewParams,
    body: MoveDeadlineBody,
    access: {
      check: (req, { tenantId }) => {
        hiddenUnlessStanding(req, tenantId, 'review');
        const principal = principalOf(req);
        const bindings = [...allowingBindings(principal, 'campaign.manage', tenantId), ...tenantApproverBindings(principal, tenantId)];
        if (!bindings.length) throw forbidden('Only MSP staff who run campaigns, or the tenant’s own approvers, move a review’s deadline.');
        return { authority: authorityFrom(req, bindings), state: undefined };
      },
      forbidden: 'An MSP admin or operator (extending, or closing a review with nothing undecided), or a tenant_approver of the tenant.',
      hidden: true,
    },
    responses: { 200: { description: 'The review after the move.', schema: ReviewView } },
    errors: { 409: 'No stage is open, or MSP staff brought forward a deadline while items still wait for the tenant’s reviewers.' },
    handler: async ({ res, params, body, principal, authority }) => {
      res.json(
        await campaigns.moveReviewDeadline(deps, params.tenantId, params.runId, {
          actorId: principal.actorId,
          closesAt: body.closesAt,
          authority: { ...authority, ...(body.comment ? { comment: body.comment } : {}) },
        }),
      );
    },
  });

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/reviews/{runId}/reassign',
    summary: "Reassign a reviewer's undecided items to another member of the tenant's staff",
    description:
      'MSP staff move the items still waiting for `from` at the open stage (or only `itemIds`) to `to`, who must hold ' +
      'tenant_reviewer or tenant_approver in this tenant and be its own staff (never MSP staff, never the subject). Items ' +
      '`from` decided already keep that decision. `to` gets a notice in the inbox and through the tenant’s webhook.',
    params: ReviewParams,
    body: ReassignBody,
    access: { tenant: 'campaign.manage', hiddenAs: 'review' },
    responses: { 200: { description: 'What moved and what stayed (with why).', schema: ReassignResultView } },
    errors: { 409: 'No stage is open.' },
    handler: async ({ res, params, body, principal, authority }) => {
      res.json(
        await campaigns.reassignReviewItems(deps, params.tenantId, params.runId, {
          actorId: principal.actorId,
          authority,
          from: body.from,
          to: body.to,
          ...(body.itemIds ? { itemIds: body.itemIds } : {}),
          ...(body.comment ? { comment: body.comment } : {}),
        }),
      );
    },
  });

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/reviews/{runId}/cancel',
    summary: "Cancel one tenant's review of a run",
    description:
      'As a run’s cancellation does to each review, for this tenant only: decisions already recorded at the open stage are ' +
      'settled by its strategy, settled revocations applied and read back, items nobody decided keep their access ' +
      '(`review.cancelled`). The run’s other reviews go on.',
    params: ReviewParams,
    body: CancelRunBody,
    bodyOptional: true,
    access: { tenant: 'campaign.manage', hiddenAs: 'review' },
    responses: { 200: { description: 'The review, cancelled.', schema: ReviewView } },
    errors: { 409: 'The review is applying its settled revocations, has completed, or was cancelled already.' },
    handler: async ({ res, params, body, principal, authority }) => {
      res.json(
        await campaigns.cancelReview(deps, params.tenantId, params.runId, {
          actorId: principal.actorId,
          authority,
          ...(body.reason ? { reason: body.reason } : {}),
        }),
      );
    },
  });

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/reviews/{runId}/nudge',
    summary: 'Remind the reviewers still owing decisions now',
    description:
      'Each (or each of `reviewerIds`) with undecided items at the open stage gets a notice in the inbox and through the tenant’s webhook.',
    params: ReviewParams,
    body: NudgeBody,
    bodyOptional: true,
    access: { tenant: 'campaign.manage', hiddenAs: 'review' },
    responses: { 200: { description: 'How many notices were written.', schema: NudgeResultView } },
    errors: { 409: 'No stage is open.' },
    handler: async ({ res, params, body, principal, authority }) => {
      res.json(
        await campaigns.nudgeReviewers(deps, params.tenantId, params.runId, {
          actorId: principal.actorId,
          authority,
          ...(body.reviewerIds ? { reviewerIds: body.reviewerIds } : {}),
          ...(body.comment ? { comment: body.comment } : {}),
        }),
      );
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/reviews/{runId}/report',
    summary: "A completed or cancelled review's report (JSON, CSV or a printable HTML page)",
    description:
      'The scope, reviewers, every decision with its justification, non-responses, guardrail holds and applied results. ' +
      'A review cancelled by MSP staff has one too (`report.status` `cancelled`, `report.cancellation`: who, when, why, ' +
      'what was decided until then and what was not; CSV: the `reviewStatus` column). ' +
      '`hash` is SHA-256 over the RFC 8785 canonical JSON of `report`; the same hash is in the tenant’s audit chain ' +
      '(`review.report_recorded`), so the report can be checked offline against an exported chain. CSV: one row per item ' +
      "(nested values as JSON; a cell starting with `=`, `+`, `-`, `@`, tab, carriage return or `'` gets a leading `'`), " +
      'with the hash in the `X-Report-Hash` header. HTML: the same report as one self-contained printable page (every value ' +
      'escaped, nothing loaded or run), with its hash and the chain event that carries it.',
    params: ReviewParams,
    query: z.strictObject({ format: z.enum(['json', 'csv', 'html']).default('json') }),
    access: { tenant: 'review.report', hiddenAs: 'review report' },
    responses: {
      200: {
        description: 'The report.',
        headers: z.object({ 'X-Report-Hash': z.string() }),
        content: {
          'application/json': { schema: z.object({ hash: z.string(), report: z.record(z.string(), z.unknown()) }) },
          'text/csv': { schema: z.string() },
          'text/html': { schema: z.string() },
        },
      },
    },
    errors: { 404: 'No finished (completed or cancelled) review of this run in the tenant, or none you have standing in.' },
    handler: async ({ res, params, query }) => {
      if (query.format === 'html') {
        const page = await campaigns.reviewReportPage(deps.pool, params.tenantId, params.runId);
        res.setHeader('X-Report-Hash', page.hash);
        // The page is evidence to read and print: it may load and run nothing, not even from us.
        res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'");
        res.setHeader('X-Content-Type-Options', 'nosniff');
        return void res.type('html').send(page.html);
      }
      const { report, hash } = await campaigns.getReviewReport(deps.pool, params.tenantId, params.runId);
      res.setHeader('X-Report-Hash', hash);
      if (query.format === 'json') return void res.json({ hash, report });
      res.type('text/csv');
      await pipeline(campaigns.reviewReportCsv(report), res);
    },
  });

  // ------------------------------------------------------------ standing privilege

  const standingResponses = {
    200: {
      description: 'The report; CSV: one row per entry (nested values as JSON, formula-like cells neutralised).',
      content: { 'application/json': { schema: StandingReportView }, 'text/csv': { schema: z.string() } },
    },
  };
  const sendStanding = async (res: Response, report: StandingReportView, format: 'json' | 'csv') => {
    if (format === 'json') return void res.json(report);
    res.type('text/csv');
    await pipeline(standing.standingCsv(report), res);
  };

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/standing-privilege',
    summary: "The tenant's standing privilege",
    description:
      'Privileged access (members of roles the target marks privileged) with no end date, no owner, no reviewer decision in ' +
      '`reviewDays`, or a holder that is disabled or has left; each entry names its reasons. Read from the target now.',
    params: TenantParams,
    query: StandingQuery,
    access: { tenant: 'privilege.report' },
    responses: standingResponses,
    handler: async ({ res, params, query }) => {
      await sendStanding(res, await standing.standingPrivilege(deps, [params.tenantId], query), query.format);
    },
  });

  route({
    method: 'get',
    path: '/v1/standing-privilege',
    summary: 'Standing privilege across tenants',
    description:
      'The per-tenant report over every active tenant (or those with `tag`); a tenant whose target cannot be read is listed in `unavailable`.',
    query: StandingQuery.extend({ tag: TenantTag.optional() }),
    access: { msp: 'privilege.report' },
    responses: standingResponses,
    handler: async ({ res, query }) => {
      const tenants = await standing.standingTenants(deps.pool, query.tag);
      await sendStanding(res, await standing.standingPrivilege(deps, tenants, query), query.format);
    },
  });

  route({
    method: 'post',
    path: '/v1/standing-privilege/reviews',
    summary: 'Start a review of exactly these',
    description:
      'An ad-hoc campaign scoped to exactly the listed access (by tenant, subject and role), started now; each tenant’s ' +
      'reviewers decide their own. Access the target no longer holds is not reviewed.',
    body: StandingReviewBody,
    access: { msp: 'campaign.manage' },
    responses: {
      202: {
        description: 'Started; progress at /v1/campaign-runs/{runId}.',
        schema: z.object({ campaign: CampaignView, run: CampaignRunView }),
      },
    },
    handler: async ({ res, body, actor }) => {
      const started = await standing.startStandingReview(deps, actor(), body);
      res.status(202).location(`/v1/campaign-runs/${started.run.runId}`).json(started);
    },
  });

  return router;
}
