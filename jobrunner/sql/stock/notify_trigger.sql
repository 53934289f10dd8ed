-- queue_job's post_init_hook: NOTIFY on every row change.
DROP TRIGGER IF EXISTS queue_job_notify ON queue_job;
CREATE OR REPLACE
    FUNCTION queue_job_notify() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.state != 'done' THEN
            PERFORM pg_notify('queue_job', OLD.uuid);
        END IF;
    ELSE
        PERFORM pg_notify('queue_job', NEW.uuid);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER queue_job_notify
    AFTER INSERT OR UPDATE OR DELETE
    ON queue_job
    FOR EACH ROW EXECUTE PROCEDURE queue_job_notify();
