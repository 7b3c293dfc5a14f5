-- distillation, query 1 of 2
SELECT run_id, method, task_id, score, video, commit_step, model, TRY_CAST(json_extract_string(settings, '$.steps') AS INTEGER) AS steps,
  TRY_CAST(json_extract_string(settings, '$.guidance') AS DOUBLE) AS guidance
FROM runs WHERE (sweep_id IN ('39710e1e8bd228d3', '81417c305c1abedd')) AND status = 'ok' AND score IS NOT NULL;

-- distillation, query 2 of 2
SELECT r.model, TRY_CAST(json_extract_string(r.settings, '$.steps') AS INTEGER) AS steps,
  TRY_CAST(json_extract_string(r.settings, '$.guidance') AS DOUBLE) AS guidance, s.step, avg(s.sigma) AS sigma,
  count(s.score) FILTER (WHERE r.method = 'baseline') AS runs,
  avg((s.score >= 0.9)::INTEGER) FILTER (WHERE r.method = 'baseline') AS x0_right,
  avg(s.candidates) FILTER (WHERE r.method = 'baseline') AS candidates,
  avg(s.answer_in_candidates::INTEGER) FILTER (WHERE r.method = 'baseline') AS answer_held,
  avg(s.x0_to_final) FILTER (WHERE r.method = 'baseline') AS x0_to_final,
  avg(s.x0_spread) AS x0_spread, count(s.x0_spread) AS spread_rows
FROM steps s JOIN runs r USING (run_id)
WHERE (r.sweep_id IN ('39710e1e8bd228d3', '81417c305c1abedd')) AND r.status = 'ok' GROUP BY ALL ORDER BY 1, 2 DESC, 3, 4;
