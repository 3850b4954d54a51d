-- job-queue (MariaDB 10.11): as schema.sql. Changes: text -> varchar (an indexed column);
-- bigserial -> bigint AUTO_INCREMENT; generate_series -> the SEQUENCE engine.
-- The (status, id) index matters more here than on PostgreSQL: without it a locking read scans
-- the primary key and, at REPEATABLE READ, keeps its locks on every done job it passed.
CREATE TABLE jobs (
    id     int PRIMARY KEY,
    status varchar(16) NOT NULL DEFAULT 'pending',
    worker int,
    INDEX jobs_status (status, id)
) ENGINE = InnoDB;
CREATE TABLE runs (
    id     bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    job_id int NOT NULL,
    worker int NOT NULL
) ENGINE = InnoDB;
INSERT INTO jobs (id) SELECT seq FROM seq_1_to_4294967295 WHERE seq <= :jobs;
