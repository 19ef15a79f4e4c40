"""What tests read back from the deliveries table (flowbot itself only claims and
finishes deliveries, so these lookups live here, not on ``DeliveryStore``)."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.intake.deliveries import Delivery, DeliveryStatus, DeliveryStore, _row, deliveries_table


def find_delivery(store: DeliveryStore, delivery_id: str) -> Delivery | None:
    """The delivery recorded as ``delivery_id``, or None."""
    query = select(deliveries_table).where(deliveries_table.c.id == delivery_id)
    with store._engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _row(row)


def all_deliveries(store: DeliveryStore) -> list[Delivery]:
    with store._engine.connect() as conn:
        return [_row(r) for r in conn.execute(select(deliveries_table))]


def delivery_count(store: DeliveryStore, status: DeliveryStatus | None = None) -> int:
    """How many deliveries are recorded (with ``status``, if given)."""
    query = select(func.count()).select_from(deliveries_table)
    if status is not None:
        query = query.where(deliveries_table.c.status == status.value)
    with store._engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
