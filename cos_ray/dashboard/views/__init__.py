"""The dashboard's views: each renders one page from small tables computed by `cos_ray.dashboard` in DuckDB."""
