-- mobstore fleet reconciliation over a Parquet export (mobstore export-parquet).
--
-- Generated from engine/membership.py by engine/fleet/sql.py (reconcile_sql_file); the same
-- rule and query as `mobstore fleet reconcile` and Store.reconcile_mob. Do not edit: the
-- tests check this file is exactly what the renderer writes. docs/fleet.md explains it.
--
-- Inputs (DuckDB variables; SET VARIABLE name = value; before running the file):
--   mob_id        VARCHAR, required       the mob to reconcile
--   accept_newer  BOOLEAN, default false  also accept realm "mob.<M>" and mob_member_binding
--   roster        LIST of STRUCT(profile VARCHAR, meerkat_id VARCHAR), optional
--                 the expected members, e.g. [{'profile': 'coder', 'meerkat_id': 'agent-7'}]
--                 or from a file: (SELECT list({'profile': profile, 'meerkat_id': meerkat_id})
--                                  FROM read_csv('roster.csv', all_varchar = true))
--   export_dir    VARCHAR, default '.'    the export directory (it holds bindings/store=<id>/)
--
--   (echo "SET VARIABLE mob_id = 'crew'; SET VARIABLE export_dir = 'out';"; cat out/reconcile.sql) | duckdb
--
-- Output: one row per finding, columns finding, store, session_id, profile, meerkat_id,
-- reason, comms_name, realm_id; findings member, broken (reason = the first rule the claim
-- fails), duplicate (a slot with more than one valid claim in the whole fleet), missing and
-- unexpected (against the roster, when one is set).
--
-- Other engines (Spark SQL, Trino): register bindings/ as a table partitioned by store (a
-- string) in place of the `bindings` CTE, give the `roster` CTE your roster table, and
-- replace each getvariable(...) expression with a parameter or literal; the rest is plain
-- SQL (CASE, IS DISTINCT FROM, UNION ALL, NOT EXISTS, NULLS FIRST).

WITH 
roster AS (SELECT r.profile, r.meerkat_id FROM (SELECT unnest(getvariable('roster')) AS r) AS given),
bindings AS (
    SELECT * FROM read_parquet(coalesce(getvariable('export_dir'), '.') || '/bindings/*/*.parquet',
                               hive_partitioning = true, hive_types = {'store': VARCHAR})
),
claims AS (
    SELECT b.*,
        CASE
            WHEN coalesce(CAST(getvariable('accept_newer') AS BOOLEAN), false) AND b.binding_mob_id = coalesce(CAST(getvariable('mob_id') AS VARCHAR), error('SET VARIABLE mob_id first')) THEN 'binding'
            WHEN b.comms_mob = coalesce(CAST(getvariable('mob_id') AS VARCHAR), error('SET VARIABLE mob_id first')) THEN 'comms'
        END AS via
    FROM bindings b
    WHERE b.comms_mob = coalesce(CAST(getvariable('mob_id') AS VARCHAR), error('SET VARIABLE mob_id first'))
    UNION ALL
    SELECT b.*, 'binding' FROM bindings b
    WHERE coalesce(CAST(getvariable('accept_newer') AS BOOLEAN), false) AND b.binding_mob_id = coalesce(CAST(getvariable('mob_id') AS VARCHAR), error('SET VARIABLE mob_id first')) AND (b.comms_mob IS DISTINCT FROM coalesce(CAST(getvariable('mob_id') AS VARCHAR), error('SET VARIABLE mob_id first')))
),
judged AS (
    SELECT store, session_id, comms_name, realm_id, 
    CASE via WHEN 'binding' THEN binding_role ELSE comms_profile END AS profile,
    CASE via WHEN 'binding' THEN binding_member ELSE comms_member END AS meerkat_id,
    CASE
        WHEN via = 'binding' THEN
            CASE
                WHEN comms_mob IS NOT NULL AND comms_parts = 3
                     AND (comms_mob IS DISTINCT FROM coalesce(CAST(getvariable('mob_id') AS VARCHAR), error('SET VARIABLE mob_id first')) OR comms_profile IS DISTINCT FROM binding_role
                          OR comms_member IS DISTINCT FROM binding_member)
                    THEN 'binding_conflicts_comms_name'
                WHEN binding_role = '' OR binding_member = '' THEN 'binding_empty_part'
            END
        WHEN comms_parts <> 3 THEN 'comms_name_not_three_parts'
        WHEN comms_mob = '' OR comms_profile = '' OR comms_member = '' THEN 'comms_name_empty_part'
        WHEN realm_id IS NULL THEN 'realm_missing'
        WHEN NOT (realm_id = 'mob:' || coalesce(CAST(getvariable('mob_id') AS VARCHAR), error('SET VARIABLE mob_id first')) OR (coalesce(CAST(getvariable('accept_newer') AS BOOLEAN), false) AND realm_id = 'mob.' || coalesce(CAST(getvariable('mob_id') AS VARCHAR), error('SET VARIABLE mob_id first')))) THEN 'realm_mismatch'
        WHEN has_peer_meta = 0 THEN 'peer_meta_missing'
        WHEN label_mob_id IS NULL AND label_role IS NULL AND label_meerkat_id IS NULL THEN 'labels_missing'
        WHEN label_mob_id IS DISTINCT FROM coalesce(CAST(getvariable('mob_id') AS VARCHAR), error('SET VARIABLE mob_id first')) THEN 'label_mob_id_mismatch'
        WHEN label_role IS DISTINCT FROM comms_profile THEN 'label_role_mismatch'
        WHEN label_meerkat_id IS DISTINCT FROM comms_member THEN 'label_meerkat_id_mismatch'
    END AS reason
    FROM claims
),
members AS (SELECT store, session_id, profile, meerkat_id FROM judged WHERE reason IS NULL),
slots AS (SELECT profile, meerkat_id, count(*) AS claims FROM members GROUP BY profile, meerkat_id),
wanted AS (SELECT DISTINCT r.profile, r.meerkat_id FROM roster r)
SELECT 'member' AS finding, store, session_id, profile, meerkat_id,
       CAST(NULL AS VARCHAR) AS reason, CAST(NULL AS VARCHAR) AS comms_name, CAST(NULL AS VARCHAR) AS realm_id
FROM members
UNION ALL
SELECT 'broken', store, session_id, profile, meerkat_id, reason, comms_name, realm_id
FROM judged WHERE reason IS NOT NULL
UNION ALL
SELECT 'duplicate', m.store, m.session_id, m.profile, m.meerkat_id, NULL, NULL, NULL
FROM members m JOIN slots s ON s.profile = m.profile AND s.meerkat_id = m.meerkat_id
WHERE s.claims > 1
UNION ALL
SELECT 'missing', NULL, NULL, w.profile, w.meerkat_id, NULL, NULL, NULL
FROM wanted w
WHERE NOT EXISTS (SELECT 1 FROM slots s WHERE s.profile = w.profile AND s.meerkat_id = w.meerkat_id)
UNION ALL
SELECT 'unexpected', m.store, m.session_id, m.profile, m.meerkat_id, NULL, NULL, NULL
FROM members m
WHERE (getvariable('roster') IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.profile = m.profile AND w.meerkat_id = m.meerkat_id)
ORDER BY finding, profile NULLS FIRST, meerkat_id NULLS FIRST, session_id NULLS FIRST, store NULLS FIRST;
