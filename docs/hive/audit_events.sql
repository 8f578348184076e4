-- docs/hive/audit_events.sql: Hive tables over meshd's audit events (docs/audit.md, "## Hive").
--
-- The Kafka Connect HDFS sink writes the topic meshd.audit as JSON lines into
-- ${topics.dir}/meshd.audit/dt=YYYY-MM-DD/ (one folder per UTC day). The columns mirror
-- docs/audit-event.schema.json (tests/unit/audit/check_hive_ddl.py checks that they agree).
-- ts stays a STRING here (RFC 3339, UTC, microseconds: 2026-12-01T16:40:00.123456Z): the
-- JsonSerDe's timestamp parsing differs between Hive versions, so the view below converts it.
-- Set LOCATION to your topics.dir; add new days with MSCK REPAIR TABLE meshd_audit_events.

CREATE EXTERNAL TABLE IF NOT EXISTS meshd_audit_events (
  `schema`    INT,
  `event_id`  STRING,
  `ts`        STRING,
  `type`      STRING,
  `outcome`   STRING,
  `reason`    STRING,
  `node`      STRING,
  `role`      STRING,
  `service`   STRING,
  `method`    STRING,
  `peer`      STRUCT<address:STRING, identity:STRING>,
  `trace_id`  STRING,
  `status`    INT,
  `instance`  STRING,
  `source`    STRING,
  `member`    STRING,
  `ready`     BOOLEAN,
  `dropped`   BIGINT,
  `truncated` BOOLEAN
)
PARTITIONED BY (`dt` STRING)
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
STORED AS TEXTFILE
LOCATION '/topics/meshd.audit'
TBLPROPERTIES ('meshd.audit.schema' = '1');

-- Every event with its time as a TIMESTAMP (UTC wall clock, microseconds kept):
-- "2026-12-01T16:40:00.123456Z" -> "2026-12-01 16:40:00.123456".
CREATE VIEW IF NOT EXISTS meshd_audit_events_v AS
SELECT e.*,
       CAST(concat(substr(e.`ts`, 1, 10), ' ', substr(e.`ts`, 12, 15)) AS TIMESTAMP) AS event_time
FROM meshd_audit_events e;

-- Each event once: delivery is at least once, so the same event_id can arrive twice (a
-- producer retry, a spool replay after a crash); keep the first copy. A copy always lands in
-- the same day, so the dedup stays within one dt partition.
CREATE VIEW IF NOT EXISTS meshd_audit_events_dedup AS
SELECT `schema`, event_id, ts, type, outcome, reason, node, role, service, method, peer,
       trace_id, status, instance, source, member, ready, dropped, truncated, event_time, dt
FROM (
  SELECT v.*, row_number() OVER (PARTITION BY v.dt, v.event_id ORDER BY v.ts) AS copy_no
  FROM meshd_audit_events_v v
) x
WHERE copy_no = 1;
