"""Run inside the peers' own virtualenv (benchmarks/peers.py makes it):

    python peer.py procrastinate|pgqueuer install|enqueue N|work CONCURRENCY DSN

No-op `async def` tasks, each peer's cheapest path, as in
shared/reference/peer_benchmarks.md."""

import asyncio
import sys


async def procrastinate_main(action, arg, dsn):
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name="noop")
    async def noop():
        return None

    async with app.open_async():
        if action == "install":
            await app.schema_manager.apply_schema_async()
        elif action == "enqueue":
            await noop.batch_defer_async(*({} for _ in range(arg)))
        else:
            print("ready", flush=True)
            await app.run_worker_async(concurrency=arg, wait=True)


async def pgqueuer_main(action, arg, dsn):
    import asyncpg
    from pgqueuer import AsyncpgDriver, Queries, QueueManager

    conn = await asyncpg.connect(dsn)
    driver = AsyncpgDriver(conn)
    if action == "install":
        await Queries(driver).install()
    elif action == "enqueue":
        await Queries(driver).enqueue(["noop"] * arg, [None] * arg, [0] * arg)
    else:
        qm = QueueManager(Queries(driver))

        @qm.entrypoint("noop")
        async def noop(job):
            return None

        print("ready", flush=True)
        # pgqueuer requires max_concurrent_tasks >= 2 x batch_size
        await qm.run(batch_size=max(1, arg // 2), max_concurrent_tasks=arg)
    await conn.close()


if __name__ == "__main__":
    peer, action = sys.argv[1], sys.argv[2]
    arg = int(sys.argv[3]) if len(sys.argv) > 4 else 0
    dsn = sys.argv[-1]
    main = procrastinate_main if peer == "procrastinate" else pgqueuer_main
    asyncio.run(main(action, arg, dsn))
