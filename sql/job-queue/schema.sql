-- job-queue: :jobs pending jobs, and a log of every run of a job (a job runs once, ideally).
CREATE TABLE jobs (
    id     int PRIMARY KEY,
    status text NOT NULL DEFAULT 'pending',
    worker int
);
-- Workers look for the oldest pending job: an index on (status, id) finds it without a scan.
CREATE INDEX jobs_status ON jobs (status, id);
CREATE TABLE runs (
    id     bigserial PRIMARY KEY,
    job_id int NOT NULL,
    worker int NOT NULL
);
INSERT INTO jobs (id) SELECT g FROM generate_series(1, :jobs) AS g;
