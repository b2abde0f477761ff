-- Up Migration

-- API processes keep who a token or OIDC subject is for a few seconds (api/principals.ts). Any
-- change to what a principal is built from tells every one of them, on commit, to forget: a
-- revoked token, a disabled actor, a role binding added or removed, a tenant suspended. NOTIFY is
-- transactional, so a change rolled back tells nobody, and one committed is heard after it is
-- visible. Statement-level, so a bulk change sends one notification.
CREATE FUNCTION tenure_notify_auth_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('tenure_auth', TG_TABLE_NAME);
  RETURN NULL;
END $$;

-- Not on last_used_at: recording use must not empty every cache.
CREATE TRIGGER api_tokens_auth_change AFTER UPDATE OF revoked_at, expires_at, actor_id, token_hash OR DELETE ON api_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION tenure_notify_auth_change();
CREATE TRIGGER actors_auth_change AFTER UPDATE OR DELETE ON actors
  FOR EACH STATEMENT EXECUTE FUNCTION tenure_notify_auth_change();
CREATE TRIGGER role_bindings_auth_change AFTER INSERT OR UPDATE OR DELETE ON role_bindings
  FOR EACH STATEMENT EXECUTE FUNCTION tenure_notify_auth_change();
CREATE TRIGGER tenants_auth_change AFTER UPDATE OF status OR DELETE ON tenants
  FOR EACH STATEMENT EXECUTE FUNCTION tenure_notify_auth_change();

-- Who a token or an OIDC subject is, in one round trip: the MSP scope is set for this statement's
-- own transaction (set_config local), then the token, its actor and the actor's live bindings (MSP-wide
-- and in active tenants) are read as one JSON value. NULL when nothing matches. Row-level
-- security applies as for any query of the service.
CREATE FUNCTION tenure_auth_principal(p_token_hash bytea, p_oidc_subject text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  v_token_id uuid;
  v_expires_at timestamptz;
  v_revoked_at timestamptz;
  v_actor_id uuid;
  v_result jsonb;
  -- Called inside a caller's transaction, the caller's scope is put back before returning.
  v_msp text := coalesce(current_setting('tenure.msp_scope', true), '');
  v_tenant text := coalesce(current_setting('tenure.tenant_id', true), '');
BEGIN
  PERFORM set_config('tenure.msp_scope', 'on', true), set_config('tenure.tenant_id', '', true);
  IF p_token_hash IS NOT NULL THEN
    SELECT id, actor_id, expires_at, revoked_at INTO v_token_id, v_actor_id, v_expires_at, v_revoked_at
      FROM api_tokens WHERE token_hash = p_token_hash;
  ELSE
    SELECT id INTO v_actor_id FROM actors WHERE oidc_subject = p_oidc_subject;
  END IF;
  IF v_actor_id IS NOT NULL THEN
    SELECT jsonb_build_object(
           'tokenId', v_token_id,
           'expiresAt', v_expires_at,
           'revokedAt', v_revoked_at,
           'actorId', a.id,
           'status', a.status,
           'kind', a.kind,
           'displayName', a.display_name,
           'bindings', coalesce((
             SELECT jsonb_agg(jsonb_build_object('id', b.id, 'role', b.role, 'tenantId', b.tenant_id) ORDER BY b.id)
               FROM role_bindings b LEFT JOIN tenants t ON t.id = b.tenant_id
              WHERE b.actor_id = a.id AND (b.tenant_id IS NULL OR t.status = 'active')), '[]'::jsonb))
      INTO v_result
      FROM actors a WHERE a.id = v_actor_id;
  END IF;
  PERFORM set_config('tenure.msp_scope', v_msp, true), set_config('tenure.tenant_id', v_tenant, true);
  RETURN v_result;
END $$;

-- Down Migration
DROP FUNCTION tenure_auth_principal(bytea, text);
DROP TRIGGER tenants_auth_change ON tenants;
DROP TRIGGER role_bindings_auth_change ON role_bindings;
DROP TRIGGER actors_auth_change ON actors;
DROP TRIGGER api_tokens_auth_change ON api_tokens;
DROP FUNCTION tenure_notify_auth_change();
