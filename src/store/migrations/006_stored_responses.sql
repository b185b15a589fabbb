-- 006: Responses API answers kept for previous_response_id and GET /v1/responses/{id}
-- (bridged mode), per tenant, until they expire. Written behind the data plane by the
-- control thread (once a second); loaded into the gateway's memory at start.
CREATE TABLE stored_responses (
  tenant      TEXT NOT NULL,
  id          TEXT NOT NULL,      -- resp_...
  body        TEXT NOT NULL,      -- JSON: {"conversation": [chat messages], "response": {...}}
  expires_at  INTEGER NOT NULL,   -- unix ms
  PRIMARY KEY (tenant, id)
);
CREATE INDEX stored_responses_expiry ON stored_responses(expires_at);
