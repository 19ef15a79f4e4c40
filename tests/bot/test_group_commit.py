"""Group commit: concurrent records are batched and each caller gets its own answer."""

import asyncio
import json
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from bot.intake.deliveries import DeliveryStore
from bot.intake.group_commit import Intake
from tests.bot.delivery_rows import delivery_count
from tests.clock import FakeClock


def test_concurrent_records_each_get_their_answer(sqlite_engine: Engine) -> None:
    store = DeliveryStore(sqlite_engine, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    intake = Intake(store, max_batch=8)
    payload = {"zen": "x"}
    body = json.dumps(payload).encode()

    async def main() -> list[bool]:
        ids = [f"d{n % 30}" for n in range(40)]  # ten ids delivered twice
        return await asyncio.gather(*(intake.record(i, "ping", body, payload) for i in ids))

    answers = asyncio.run(main())
    assert answers.count(True) == 30 and answers.count(False) == 10
    assert delivery_count(store) == 30


def test_a_database_failure_reaches_every_waiter(sqlite_engine: Engine) -> None:
    store = DeliveryStore(sqlite_engine, FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE webhook_deliveries")
    intake = Intake(store)

    async def main() -> list[object]:
        return await asyncio.gather(*(intake.record(f"d{n}", "ping", b"{}", {})
                                      for n in range(3)), return_exceptions=True)

    assert all(isinstance(result, Exception) for result in asyncio.run(main()))
