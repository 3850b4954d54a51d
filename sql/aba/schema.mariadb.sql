-- aba (MariaDB 10.11): :restaurants restaurants, each with :initial_reviews reviews whose stars cycle 1..5.
-- Changes: numeric(2,1) -> DECIMAL(2,1); bigserial -> bigint AUTO_INCREMENT; generate_series ->
-- SEQUENCE engine; UPDATE ... FROM -> multi-table UPDATE ... JOIN; ::numeric -> CAST(... AS DECIMAL(20,4))
-- (MariaDB has no NUMERIC cast target); column-level REFERENCES written table-level (both forms create the FK on 10.11).
CREATE TABLE restaurants (
    id           int PRIMARY KEY,
    avg          decimal(2,1) NOT NULL,
    review_count int NOT NULL,
    stars_total  int NOT NULL,
    version      bigint NOT NULL DEFAULT 0
) ENGINE = InnoDB;
CREATE TABLE reviews (
    id            bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    restaurant_id int NOT NULL,
    stars         int NOT NULL CHECK (stars BETWEEN 1 AND 5),
    FOREIGN KEY (restaurant_id) REFERENCES restaurants (id)
) ENGINE = InnoDB;
INSERT INTO restaurants (id, avg, review_count, stars_total)
SELECT seq, 0, 0, 0 FROM seq_1_to_4294967295 WHERE seq <= :restaurants;
INSERT INTO reviews (restaurant_id, stars)
SELECT r.seq, (k.seq - 1) % 5 + 1
FROM seq_1_to_4294967295 AS r JOIN seq_1_to_4294967295 AS k
WHERE r.seq <= :restaurants AND k.seq <= :initial_reviews
ORDER BY r.seq, k.seq;
UPDATE restaurants r
JOIN (SELECT restaurant_id, count(*) AS n, sum(stars) AS total FROM reviews GROUP BY restaurant_id) v
  ON v.restaurant_id = r.id
SET r.review_count = v.n,
    r.stars_total  = v.total,
    r.avg          = coalesce(round(CAST(v.total AS DECIMAL(20,4)) / nullif(v.n, 0), 1), 0);
