-- aba: :restaurants restaurants, each with :initial_reviews reviews whose stars cycle 1..5
-- (an average of exactly 3.0 when :initial_reviews is a multiple of 5).
-- `avg` is what the page shows (rounded to one decimal); `stars_total` is kept next to it so a
-- new average can be computed exactly from what was read; `version` only ever grows.
CREATE TABLE restaurants (
    id           int PRIMARY KEY,
    avg          numeric(2,1) NOT NULL,
    review_count int NOT NULL,
    stars_total  int NOT NULL,
    version      bigint NOT NULL DEFAULT 0
);
CREATE TABLE reviews (
    id            bigserial PRIMARY KEY,
    restaurant_id int NOT NULL REFERENCES restaurants(id),
    stars         int NOT NULL CHECK (stars BETWEEN 1 AND 5)
);
INSERT INTO restaurants (id, avg, review_count, stars_total)
SELECT g, 0, 0, 0 FROM generate_series(1, :restaurants) AS g;
INSERT INTO reviews (restaurant_id, stars)
SELECT r, (k - 1) % 5 + 1
FROM generate_series(1, :restaurants) AS r, generate_series(1, :initial_reviews) AS k;
UPDATE restaurants r
SET review_count = v.n,
    stars_total  = v.total,
    avg          = coalesce(round(v.total::numeric / nullif(v.n, 0), 1), 0)
FROM (SELECT restaurant_id, count(*) AS n, sum(stars) AS total FROM reviews GROUP BY restaurant_id) v
WHERE v.restaurant_id = r.id;
