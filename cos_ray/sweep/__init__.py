"""Running a sweep: a spec's units on worker groups, their outcomes scored and written to the store, resumable."""
