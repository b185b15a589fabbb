-- 002: releases are immutable whatever the statement: no change of id, content or route
-- (only eval_pass_id may be set later), no replacing an existing release, no delete.
DROP TRIGGER IF EXISTS releases_immutable_update;
CREATE TRIGGER releases_immutable_update BEFORE UPDATE ON releases
  WHEN NEW.id IS NOT OLD.id OR NEW.tuple IS NOT OLD.tuple OR NEW.full_hash IS NOT OLD.full_hash
    OR NEW.route IS NOT OLD.route OR NEW.created_by IS NOT OLD.created_by OR NEW.created_at IS NOT OLD.created_at
  BEGIN SELECT RAISE(ABORT, 'releases are immutable'); END;
-- INSERT OR REPLACE deletes the old row without firing delete triggers: refuse the insert.
CREATE TRIGGER releases_no_replace BEFORE INSERT ON releases
  WHEN EXISTS (SELECT 1 FROM releases WHERE id = NEW.id OR full_hash = NEW.full_hash)
  BEGIN SELECT RAISE(ABORT, 'releases are immutable'); END;
