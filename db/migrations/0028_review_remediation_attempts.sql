-- Up Migration

-- What a remediation attempt set out to do to an item, committed before it touches the target: a
-- grant's revoke, or the removal of access nothing recorded explains. Neither leaves a trace of
-- its own in the ledger that says it was this review's (a manual or template end does, by its end
-- reason), so a retry after the attempt did it but died before writing its result would
-- otherwise find the access gone and call it already absent.
ALTER TABLE review_items ADD COLUMN remediation_attempt jsonb;

-- Down Migration
ALTER TABLE review_items DROP COLUMN remediation_attempt;
