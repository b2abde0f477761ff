import type { PoolClient } from '../pool.js';

/** One active tenant with its pin, the template's newest approved version and the applied version's document (MSP scope). */
export interface ReportTenantRow {
  id: string;
  slug: string;
  name: string;
  template_id: string | null;
  template_name: string | null;
  version: number | null;
  applied_version: number | null;
  latest_approved: number | null;
  applied_document: Record<string, unknown> | null;
}

/** The report's tenants: every active one, or those pinned to `templateId`, by slug. */
export async function reportTenantRows(client: PoolClient, templateId: string | null): Promise<ReportTenantRow[]> {
  const { rows } = await client.query<ReportTenantRow>(
    `SELECT t.id, t.slug, t.name, a.template_id, tt.name AS template_name, a.version, a.applied_version,
            (SELECT max(v.version) FROM template_versions v WHERE v.template_id = a.template_id AND v.status = 'approved')::int
              AS latest_approved,
            av.document AS applied_document
       FROM tenants t
       LEFT JOIN template_assignments a ON a.tenant_id = t.id
       LEFT JOIN templates tt ON tt.id = a.template_id
       LEFT JOIN template_versions av ON av.template_id = a.template_id AND av.version = a.applied_version
      WHERE t.status = 'active' AND ($1::uuid IS NULL OR a.template_id = $1::uuid)
      ORDER BY t.slug`,
    [templateId],
  );
  return rows;
}
