"""`ivuscal batch`: archive analysis at scale on Dask's distributed scheduler (docs/batch.md).

    sources.py  SOURCE arguments -> the list of input files
    layout.py   where each pullback's report goes, its manifest, verification and atomic publishing
    task.py     the work of one pullback on a worker (the same analysis as `ivuscal analyze`)
    cluster.py  the embedded LocalCluster (or LocalCUDACluster) or an existing scheduler
    runner.py   submission, progress, outcomes
    cohort.py   the cohort table, its plots and, with simulator truth, the pooled evaluation
    cli.py      the command
"""
