-- The tables OCA queue_job 18.0.4.1.x has in an Odoo 18 database, as the ORM
-- creates them (records/args/kwargs are jsonb, channels carry their config), for running without Odoo:
-- tests, demo and benchmarks. Facts only: types, indexes, trigger.
CREATE TABLE IF NOT EXISTS ir_module_module (
    id serial PRIMARY KEY, name varchar NOT NULL, state varchar, latest_version varchar
);
INSERT INTO ir_module_module (name, state, latest_version)
VALUES ('base', 'installed', '18.0.1.3'), ('queue_job', 'installed', '18.0.4.1.2');
CREATE TABLE IF NOT EXISTS res_users   (id serial PRIMARY KEY);
CREATE TABLE IF NOT EXISTS res_company (id serial PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ir_model    (id serial PRIMARY KEY, model varchar);

CREATE TABLE queue_job_channel (
    id               serial NOT NULL PRIMARY KEY,
    name             varchar,
    complete_name    varchar,
    parent_id        int4 REFERENCES queue_job_channel(id) ON DELETE RESTRICT,
    removal_interval int4 NOT NULL,
    capacity         int4,
    sequential       boolean,
    throttle         int4,
    paused           boolean,
    capacity_default int4,
    sequential_default boolean,
    create_uid       int4 REFERENCES res_users(id) ON DELETE SET NULL,
    create_date      timestamp,
    write_uid        int4 REFERENCES res_users(id) ON DELETE SET NULL,
    write_date       timestamp,
    CONSTRAINT queue_job_channel_name_uniq UNIQUE (complete_name)
);
INSERT INTO queue_job_channel (name, complete_name, removal_interval) VALUES ('root', 'root', 30);

CREATE TABLE queue_job_function (
    id             serial NOT NULL PRIMARY KEY,
    name           varchar,
    model_id       int4 REFERENCES ir_model(id) ON DELETE CASCADE,
    method         varchar,
    on_fail_method varchar,
    channel_id     int4 NOT NULL REFERENCES queue_job_channel(id) ON DELETE RESTRICT,
    channel        varchar,
    retry_pattern  jsonb,
    related_action jsonb,
    allow_commit   boolean
);
CREATE INDEX queue_job_function__name_index ON queue_job_function (name);

CREATE TABLE queue_job (
    id                  serial NOT NULL PRIMARY KEY,
    uuid                varchar NOT NULL,
    graph_uuid          varchar,
    user_id             int4 REFERENCES res_users(id) ON DELETE SET NULL,
    company_id          int4 REFERENCES res_company(id) ON DELETE SET NULL,
    name                varchar,
    model_name          varchar,
    method_name         varchar,
    records             jsonb,
    dependencies        text,
    args                jsonb,
    kwargs              jsonb,
    func_string         varchar,
    state               varchar NOT NULL,
    priority            int4,
    exc_name            varchar,
    exc_message         varchar,
    exc_info            text,
    result              text,
    date_created        timestamp,
    date_started        timestamp,
    date_enqueued       timestamp,
    date_done           timestamp,
    exec_time           double precision,
    date_cancelled      timestamp,
    eta                 timestamp,
    retry               int4,
    max_retries         int4,
    channel_method_name varchar,
    job_function_id     int4 REFERENCES queue_job_function(id) ON DELETE SET NULL,
    channel             varchar,
    identity_key        varchar,
    worker_pid          int4
);
CREATE INDEX queue_job__uuid_index       ON queue_job (uuid);
CREATE INDEX queue_job__graph_uuid_index ON queue_job (graph_uuid);
CREATE INDEX queue_job__company_id_index ON queue_job (company_id);
CREATE INDEX queue_job__state_index      ON queue_job (state);
CREATE INDEX queue_job__channel_index    ON queue_job (channel);
CREATE INDEX queue_job_identity_key_state_partial_index ON queue_job (identity_key)
    WHERE state in ('pending', 'enqueued', 'wait_dependencies') AND identity_key IS NOT NULL;
CREATE INDEX queue_job_channel_date_done_date_created_index
    ON queue_job (channel, date_done, date_created);

CREATE TABLE queue_job_lock (
    id           serial NOT NULL PRIMARY KEY,
    queue_job_id int4 NOT NULL REFERENCES queue_job(id) ON DELETE CASCADE,
    create_uid   int4 REFERENCES res_users(id) ON DELETE SET NULL,
    create_date  timestamp,
    write_uid    int4 REFERENCES res_users(id) ON DELETE SET NULL,
    write_date   timestamp
);
CREATE INDEX queue_job_lock__queue_job_id_index ON queue_job_lock (queue_job_id);
-- The queue_job_notify trigger is in stock/notify_trigger.sql.
