-- Fails (division by zero) unless the table and its index exist.
SELECT 1 / count(*) FROM pg_indexes WHERE schemaname = 'poststack' AND indexname = 'containers_service_id_idx';
SELECT id, service_id, name, runtime, image, container_id, host, ports, status, health, started_at, updated_at
FROM poststack.containers WHERE false;
